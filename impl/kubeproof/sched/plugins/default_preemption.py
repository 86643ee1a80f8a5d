"""DefaultPreemption: the PostFilter that evicts lower-priority pods (kube-scheduler v1.32).

Theory of operation
-------------------
Runs only when no node passed Filter.  Steps, as kube's `Evaluator.Preempt`:

1. *Eligibility*: a pod with ``preemptionPolicy: Never`` does not preempt
   ("not eligible due to preemptionPolicy=Never.").
2. *Potential nodes*: those whose filter status was Unschedulable; nodes
   rejected as UnschedulableAndUnresolvable get "Preemption is not helpful
   for scheduling".
3. *Dry run* over the potential nodes, starting at a random offset (from the
   injected RNG) and stopping once there are ``max(10% of them, 100)``
   candidates (at least one without PDB violation).  On a copy of each node:
   remove every pod of lower priority (none: "No preemption victims found for
   incoming pod"); if the pod still does not fit, the filter status is the
   node's; otherwise *reprieve* the removed pods one by one, most important
   first (priority, then earlier start), PDB-violating ones before the others,
   keeping each that leaves the pod fitting.  What is not reprieved are the
   victims.
4. *Pick a node*, lexicographically: fewest PDB violations, lowest highest
   victim priority, smallest sum of (priority + 2^31), fewest victims, latest
   earliest start time among the highest-priority victims, first.

The result nominates the node and lists the victims; the scheduler deletes
them.  When no node qualifies the status is ``preemption: 0/N nodes are
available: ...`` with the dry run's per-node reasons.

Not modelled: graceful termination (victims vanish at once), PDB
``disruptedPods``, extenders, asynchronous preemption, and the check that
a previous nomination's victims are still terminating.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from ..config import DefaultPreemptionArgs, PluginArgs
from ..framework import (
    CycleState,
    Handle,
    NodeInfo,
    PodInfo,
    PostFilterResult,
    Status,
    StatusCode,
    fit_error_message,
    unresolvable,
    unschedulable,
)
from ..load import PodDisruptionBudget
from ..selectors import compile_selector

__all__ = ["DefaultPreemption", "Victims", "more_important"]

NOT_HELPFUL: Final = "Preemption is not helpful for scheduling"
NO_VICTIMS: Final = "No preemption victims found for incoming pod"
NOT_ELIGIBLE_NEVER: Final = "not eligible due to preemptionPolicy=Never."
_NOW: Final = 2**62  # GetPodStartTime: a pod without a start time started "now".


def _start(p: PodInfo) -> int:
    t = p.pod.start_time
    return _NOW if t is None else t


def more_important(p: PodInfo) -> tuple[int, int]:
    """Sort key for `MoreImportantPod`: higher priority, then earlier start, first."""
    return (-p.priority, _start(p))


class Victims:
    __slots__ = ("node", "num_pdb_violations", "pods")

    def __init__(self, node: str, pods: list[PodInfo], num_pdb_violations: int) -> None:
        self.node = node
        self.pods = pods
        self.num_pdb_violations = num_pdb_violations


def _split_by_pdb(
    pods: Sequence[PodInfo], pdbs: Sequence[PodDisruptionBudget]
) -> tuple[list[PodInfo], list[PodInfo]]:
    """`filterPodsWithPDBViolation`: (violating, non-violating), order kept."""
    allowed = [p.disruptions_allowed for p in pdbs]
    selectors = [compile_selector(p.selector) for p in pdbs]
    violating: list[PodInfo] = []
    ok: list[PodInfo] = []
    for pi in pods:
        violated = False
        if pi.labels:
            for i, pdb in enumerate(pdbs):
                sel = selectors[i]
                if pdb.namespace != pi.namespace or sel.empty or not sel.matches(pi.labels):
                    continue
                allowed[i] -= 1
                if allowed[i] < 0:
                    violated = True
        (violating if violated else ok).append(pi)
    return violating, ok


def _earliest_start_of_highest(victims: Sequence[PodInfo]) -> int:
    best_pri = victims[0].priority
    earliest = _start(victims[0])
    for p in victims:
        if p.priority == best_pri:
            earliest = min(earliest, _start(p))
        elif p.priority > best_pri:
            best_pri = p.priority
            earliest = _start(p)
    return earliest


def pick_one_node(candidates: Sequence[Victims]) -> Victims:
    """`pickOneNodeForPreemption`."""
    for c in candidates:
        if not c.pods:
            return c
    rules = (
        lambda c: -c.num_pdb_violations,
        lambda c: -c.pods[0].priority,
        lambda c: -sum(p.priority + 2**31 for p in c.pods),
        lambda c: -len(c.pods),
        lambda c: _earliest_start_of_highest(c.pods),
    )
    remaining = list(candidates)
    for rule in rules:
        best = max(rule(c) for c in remaining)
        remaining = [c for c in remaining if rule(c) == best]
        if len(remaining) == 1:
            break
    return remaining[0]


class DefaultPreemption:
    name = "DefaultPreemption"

    def __init__(self, args: PluginArgs | None, handle: Handle) -> None:
        a = args if isinstance(args, DefaultPreemptionArgs) else DefaultPreemptionArgs()
        self.min_pct = a.min_candidate_nodes_percentage
        self.min_abs = a.min_candidate_nodes_absolute
        self.handle = handle

    def num_candidates(self, num_nodes: int) -> int:
        n = num_nodes * self.min_pct // 100
        return min(max(n, self.min_abs), num_nodes)

    def post_filter(
        self, state: CycleState, pod: PodInfo, statuses: Mapping[str, Status]
    ) -> tuple[PostFilterResult | None, Status | None]:
        if pod.pod.preemption_policy == "Never":
            return None, unschedulable("preemption: " + NOT_ELIGIBLE_NEVER)
        nodes = self.handle.snapshot.node_infos
        potential: list[NodeInfo] = []
        node_statuses: dict[str, Status] = {}
        for ni in nodes:
            st = statuses.get(ni.name)
            if st is None or st.code == StatusCode.UnschedulableAndUnresolvable:
                node_statuses[ni.name] = unresolvable(NOT_HELPFUL)
            else:
                potential.append(ni)
        candidates: list[Victims] = []
        if potential:
            offset = self.handle.rng.randrange(len(potential))
            want = self.num_candidates(len(potential))
            non_violating: list[Victims] = []
            violating: list[Victims] = []
            for i in range(len(potential)):
                ni = potential[(offset + i) % len(potential)]
                victims, st = self.select_victims_on_node(state.clone(), pod, ni.clone())
                if victims is not None and victims.pods:
                    (non_violating if victims.num_pdb_violations == 0 else violating).append(
                        victims
                    )
                    if non_violating and len(non_violating) + len(violating) >= want:
                        break
                    continue
                if st is None:
                    st = Status(
                        StatusCode.Error,
                        (f"expected at least one victim pod on node {ni.name!r}",),
                    )
                node_statuses[ni.name] = st
            candidates = non_violating + violating
        if not candidates:
            msg = fit_error_message(len(nodes), node_statuses.values())
            return PostFilterResult(), unschedulable("preemption: " + msg)
        best = pick_one_node(candidates)
        return PostFilterResult(best.node, tuple(p.key for p in best.pods)), None

    def select_victims_on_node(
        self, state: CycleState, pod: PodInfo, ni: NodeInfo
    ) -> tuple[Victims | None, Status | None]:
        """`SelectVictimsOnNode` on a copy of the node and the cycle state."""
        h = self.handle
        potential = [p for p in ni.pods if p.priority < pod.priority]
        if not potential:
            return None, unresolvable(NO_VICTIMS)
        for p in potential:
            ni.remove_pod(p)
            h.run_pre_filter_remove_pod(state, pod, p, ni)
        st = h.run_filter_with_nominated(state, pod, ni)
        if st is not None:
            return None, st
        potential.sort(key=more_important)
        violating, non_violating = _split_by_pdb(potential, h.pdbs)
        victims: list[PodInfo] = []
        num_violations = 0

        def reprieve(p: PodInfo) -> bool:
            ni.add_pod(p)
            h.run_pre_filter_add_pod(state, pod, p, ni)
            if h.run_filter_with_nominated(state, pod, ni) is None:
                return True
            ni.remove_pod(p)
            h.run_pre_filter_remove_pod(state, pod, p, ni)
            victims.append(p)
            return False

        for p in violating:
            if not reprieve(p):
                num_violations += 1
        for p in non_violating:
            reprieve(p)
        if violating and non_violating:
            victims.sort(key=more_important)
        return Victims(ni.name, victims, num_violations), None
