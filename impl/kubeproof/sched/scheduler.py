"""The greedy scheduler: kube-scheduler's scheduling cycle, one pod at a time (v1.32).

Theory of operation
-------------------
State: a `Snapshot` of nodes with the pods on them, an *active queue* of
pending pods ordered by PrioritySort (higher priority first, then earlier
arrival), and a set of *parked* (unschedulable) pods.  A pod given with
``spec.nodeName`` is running: it is added to its node before anything is
scheduled, and counts against it.  `run` pops pods until the active queue
is empty; each pop is one cycle (`schedule_one`):

1. PreFilter.  A rejection here is the pod's answer for every node.
2. A pod nominated by an earlier preemption tries its nominated node first.
3. Filter, over the nodes in node-tree order starting where the previous
   cycle stopped (kube's ``nextStartNodeIndex``), until
   ``numFeasibleNodesToFind`` nodes pass: all nodes below 100, else
   ``percentageOfNodesToScore`` (adaptive when 0: ``max(50 - n/125, 5)``
   percent), at least 100.
4. No feasible node: PostFilter (preemption).  If it nominates a node, the
   victims are deleted and the pod goes back to the queue; otherwise the pod
   is parked with kube's message ("0/N nodes are available: ...").
5. One feasible node is taken as is; otherwise PreScore, Score,
   NormalizeScore, weights, and the highest total wins.  Ties are broken
   uniformly at random with the injected RNG (kube uses reservoir sampling
   over the max-score nodes: the same distribution; we draw once).
6. Assume (add to the node), Reserve, Permit, Bind.

Parked pods return to the queue when an event could make them schedulable,
as kube's queueing hints say: a bound pod that matches one of their required
pod-affinity terms or a topology spread selector, or any pod deletion
(preemption).  Kube's backoff timers and periodic flush need a clock and are
not modelled; a parked pod with no such event stays pending.

Everything is deterministic given the inputs and the RNG's seed.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from attrs import field, frozen

from .config import SchedulerConfig
from .framework import (
    CycleState,
    Interner,
    NodeInfo,
    PodInfo,
    PreFilterResult,
    Snapshot,
    Status,
    fit_error_message,
    unresolvable,
)
from .load import PodDisruptionBudget
from .model import Node, Pod
from .runtime import ClusterState, Framework, PluginScores
from .selectors import compile_selector

__all__ = [
    "Explanation",
    "NodeExplanation",
    "Preemption",
    "ScheduleResult",
    "Scheduler",
    "num_feasible_nodes_to_find",
    "schedule",
]

MIN_FEASIBLE_NODES_TO_FIND: Final = 100
MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND: Final = 5
NO_NODES_AVAILABLE: Final = "no nodes available to schedule pods"
_HINTED: Final = ("InterPodAffinity", "PodTopologySpread")


def num_feasible_nodes_to_find(profile_pct: int | None, global_pct: int, num_nodes: int) -> int:
    """`numFeasibleNodesToFind` (v1.32)."""
    if num_nodes < MIN_FEASIBLE_NODES_TO_FIND:
        return num_nodes
    pct = profile_pct if profile_pct is not None else global_pct
    if pct == 0:
        pct = max(50 - num_nodes // 125, MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND)
    return max(num_nodes * pct // 100, MIN_FEASIBLE_NODES_TO_FIND)


@frozen
class NodeExplanation:
    """One node's verdicts for one pod."""

    node: str
    filters: tuple[tuple[str, str], ...]
    """(plugin, "passed" | "skipped" | the plugin's reasons), for every filter plugin."""
    feasible: bool
    scores: tuple[tuple[str, int], ...] = ()
    """(plugin, normalized score x weight) when the node was scored."""
    total: int | None = None
    note: str = ""


@frozen
class Explanation:
    pod: str
    node: str | None
    message: str
    nodes: tuple[NodeExplanation, ...]
    weights: tuple[tuple[str, int], ...] = ()


@frozen
class Preemption:
    """A running pod deleted so that a higher-priority pod could have its node."""

    victim: str
    preemptor: str
    node: str


@frozen
class ScheduleResult:
    placements: Mapping[str, str | None]
    """Every pod key -> its node, or None when it is pending (or was preempted)."""
    reasons: Mapping[str, str]
    """Why each pod without a node has none."""
    bound: tuple[tuple[str, str], ...] = ()
    """(pod, node) in the order the scheduler bound them."""
    preempted: tuple[str, ...] = ()
    explanations: Mapping[str, Explanation] = field(factory=dict)
    preemptions: tuple[Preemption, ...] = ()
    """Who preempted whom, on which node, in order (``preempted`` is its victims)."""

    @property
    def all_placed(self) -> bool:
        return all(v is not None for v in self.placements.values())


class _Parked:
    __slots__ = ("message", "pi", "plugins")

    def __init__(self, pi: PodInfo, plugins: frozenset[str], message: str) -> None:
        self.pi = pi
        self.plugins = plugins
        self.message = message


class Scheduler:
    """A deterministic kube-scheduler over a fixed set of nodes."""

    def __init__(
        self,
        nodes: Sequence[Node],
        pods: Iterable[Pod] = (),
        config: SchedulerConfig | None = None,
        *,
        rng: random.Random | None = None,
        pdbs: Sequence[PodDisruptionBudget] = (),
        explain: Iterable[str] = (),
    ) -> None:
        self.config = config if config is not None else SchedulerConfig.default()
        self.cluster = ClusterState(
            Snapshot(nodes), rng if rng is not None else random.Random(0), pdbs
        )
        self.frameworks = {
            p.scheduler_name: Framework(p, self.cluster) for p in self.config.profiles
        }
        self.next_start = 0
        self.explain_keys = frozenset(explain)
        self.interner = Interner()
        self._queue: list[tuple[int, int, str]] = []
        self._seq = 0
        self.pods: dict[str, PodInfo] = {}
        self.placements: dict[str, str | None] = {}
        self.reasons: dict[str, str] = {}
        self.nominated_node: dict[str, str] = {}
        self.parked: dict[str, _Parked] = {}
        self._parked_hinted: dict[str, set[str]] = {name: set() for name in _HINTED}
        self.bound: list[tuple[str, str]] = []
        self.preempted: list[str] = []
        self.preemptions: list[Preemption] = []
        self.explanations: dict[str, Explanation] = {}
        for pod in pods:
            self.add_pod(pod)

    @property
    def snapshot(self) -> Snapshot:
        return self.cluster.snapshot

    # -- input ---------------------------------------------------------------

    def add_pod(self, pod: Pod) -> None:
        """A running pod (``node_name`` set) joins its node; a pending one the queue."""
        if pod.key in self.pods:
            raise ValueError(f"pod {pod.key} was added twice")
        pi = PodInfo(pod, self.interner)
        self.pods[pod.key] = pi
        if pod.node_name:
            if self.snapshot.get(pod.node_name) is None:
                raise ValueError(f"pod {pod.key} runs on unknown node {pod.node_name!r}")
            self.snapshot.add_pod(pi, pod.node_name)
            self.placements[pod.key] = pod.node_name
            return
        self.placements[pod.key] = None
        self.reasons[pod.key] = "not scheduled yet"
        fwk = self.frameworks.get(pod.scheduler_name)
        gate = fwk.run_pre_enqueue(pi) if fwk is not None else None
        if gate is not None:
            # PreEnqueue rejected it: the pod never enters the active queue.
            self.reasons[pod.key] = gate.message
            return
        if pod.nominated_node_name:
            self.nominated_node[pod.key] = pod.nominated_node_name
            self.cluster.nominate(pi, pod.nominated_node_name)
        self._push(pi)

    def _push(self, pi: PodInfo) -> None:
        # PrioritySort: priority desc, then the time the pod entered the queue.
        heapq.heappush(self._queue, (-pi.priority, self._seq, pi.key))
        self._seq += 1

    # -- the loop ------------------------------------------------------------

    def run(self) -> ScheduleResult:
        """Schedule until no pending pod can make progress."""
        while self._queue:
            self.schedule_one()
        return self.result()

    def result(self) -> ScheduleResult:
        reasons = {k: self.reasons[k] for k, v in self.placements.items() if v is None}
        return ScheduleResult(
            dict(self.placements),
            reasons,
            tuple(self.bound),
            tuple(self.preempted),
            dict(self.explanations),
            tuple(self.preemptions),
        )

    def schedule_one(self) -> str | None:
        """One scheduling cycle for the first pod in the queue; the node it got, if any."""
        if not self._queue:
            return None
        _, _, key = heapq.heappop(self._queue)
        pi = self.pods[key]
        fwk = self.frameworks.get(pi.pod.scheduler_name)
        if fwk is None:
            self.reasons[key] = f"no scheduler profile named {pi.pod.scheduler_name!r}"
            return None
        state = CycleState()
        host, statuses, pre_msg, detail = self._schedule_pod(fwk, state, pi)
        if host is None:
            self._handle_failure(fwk, state, pi, statuses, pre_msg, detail)
            return None
        return self._assume_and_bind(fwk, state, pi, host, detail)

    def _schedule_pod(
        self, fwk: Framework, state: CycleState, pi: PodInfo
    ) -> tuple[NodeInfo | None, dict[str, Status], str, _Detail | None]:
        snap = self.snapshot
        all_nodes = snap.node_infos
        detail = _Detail() if pi.key in self.explain_keys else None
        if not all_nodes:
            return None, {}, "", detail
        pre_res, st, narrowing = fwk.run_pre_filter(state, pi)
        if st is not None:
            # Every node gets the PreFilter status; the message is PreFilter's.
            return None, {ni.name: st for ni in all_nodes}, st.message, detail
        nominated = self.nominated_node.get(pi.key)
        if nominated:
            ni = snap.get(nominated)
            if ni is not None and fwk.run_filter_with_nominated(state, pi, ni) is None:
                if detail is not None:
                    detail.feasible = [ni]
                return ni, {}, "", detail
        nodes = _narrowed(all_nodes, pre_res)
        absent: Status | None = None
        if pre_res is not None and pre_res.node_names is not None:
            absent = unresolvable(
                f"node(s) didn't satisfy plugin(s) [{' '.join(sorted(narrowing))}]"
            ).with_plugin(narrowing[0])
        feasible, statuses = self._find_feasible(fwk, state, pi, nodes)
        processed = len(feasible) + len(statuses)
        self.next_start = (self.next_start + processed) % len(all_nodes)
        if absent is not None:
            for ni in all_nodes:
                if ni.name not in statuses and ni not in feasible:
                    statuses[ni.name] = absent
        if detail is not None:
            detail.feasible = list(feasible)
            detail.excluded = absent
        if not feasible:
            return None, statuses, "", detail
        if len(feasible) == 1:
            if detail is not None:
                # Not needed to choose; computed on a copy so the table can show it.
                shadow = state.clone()
                detail.totals = _score(fwk, shadow, pi, feasible, detail.scores)
                detail.skip_score = shadow.skip_score
            return feasible[0], statuses, "", detail
        scores = detail.scores if detail is not None else None
        totals = _score(fwk, state, pi, feasible, scores)
        if detail is not None:
            detail.totals = totals
            detail.skip_score = state.skip_score
        best = max(totals)
        ties = [i for i, t in enumerate(totals) if t == best]
        pick = ties[0] if len(ties) == 1 else ties[self.cluster.rng.randrange(len(ties))]
        return feasible[pick], statuses, "", detail

    def _find_feasible(
        self,
        fwk: Framework,
        state: CycleState,
        pi: PodInfo,
        nodes: Sequence[NodeInfo],
        every: bool = False,
    ) -> tuple[list[NodeInfo], dict[str, Status]]:
        """The feasible nodes the cycle scores (`every`: all of them, in node-tree order)."""
        n = len(nodes)
        statuses: dict[str, Status] = {}
        if n == 0:
            return [], statuses
        want = num_feasible_nodes_to_find(
            fwk.profile.percentage_of_nodes_to_score, self.config.percentage_of_nodes_to_score, n
        )
        if not fwk.score_plugins:
            want = 1
        start = self.next_start % n
        if every:
            want, start = n, 0
        if not fwk.active_filters(state) and not self.cluster.nominated:
            return [nodes[(start + i) % n] for i in range(min(want, n))], statuses
        feasible: list[NodeInfo] = []
        i = 0
        while i < n and len(feasible) < want:
            size = min(n - i, max(want - len(feasible), 32))
            lo = (start + i) % n
            chunk = nodes[lo : lo + size]
            if len(chunk) < size:
                chunk = [*chunk, *nodes[: size - len(chunk)]]
            verdicts = fwk.filter_nodes(state, pi, chunk)
            for ni, st in zip(chunk, verdicts, strict=True):
                i += 1
                if st is None:
                    feasible.append(ni)
                    if len(feasible) >= want:
                        break
                else:
                    statuses[ni.name] = st
        return feasible, statuses

    def score_nodes(self, pod: Pod) -> dict[str, int]:
        """The framework's score of every node on which `pod` could be bound now.

        One scheduling cycle's PreFilter, Filter, PreScore, Score,
        NormalizeScore and weights (the code the cycle runs), for `pod`
        against the pods on the nodes now, with the profile its
        ``schedulerName`` names, except that every node is filtered (no
        percentageOfNodesToScore sampling, no nominated node first) and
        every feasible node is scored, even a single one.  Returns node name
        -> weighted, normalized total, in node-tree order; empty when no node
        passes.  Changes nothing: the pod is not queued, the cycle's
        starting node does not move, no RNG is drawn.  Raises KeyError when
        no profile has the pod's ``schedulerName``.
        """
        fwk = self.frameworks[pod.scheduler_name]
        pi = PodInfo(pod, self.interner)
        state = CycleState()
        pre_res, st, _ = fwk.run_pre_filter(state, pi)
        if st is not None:
            return {}
        nodes = _narrowed(self.snapshot.node_infos, pre_res)
        feasible, _ = self._find_feasible(fwk, state, pi, nodes, every=True)
        if not feasible:
            return {}
        totals = _score(fwk, state, pi, feasible)
        return {ni.name: t for ni, t in zip(feasible, totals, strict=True)}

    # -- outcomes ------------------------------------------------------------

    def _assume_and_bind(
        self,
        fwk: Framework,
        state: CycleState,
        pi: PodInfo,
        host: NodeInfo,
        detail: _Detail | None,
    ) -> str | None:
        if detail is not None:
            self.explanations[pi.key] = self._explain(fwk, state, pi, detail, host.name, "")
        node = host.name
        self.snapshot.add_pod(pi, node)
        st = fwk.run_reserve(state, pi, node)
        if st is None:
            st = fwk.run_permit(state, pi, node)
            if st is None:
                st = fwk.run_bind(state, pi, node)
            if st is not None:
                fwk.run_unreserve(state, pi, node)
        if st is not None:
            self.snapshot.remove_pod(pi)
            self._park(pi, frozenset({st.plugin}), f"{st.plugin}: {st.message}")
            return None
        self.placements[pi.key] = node
        self.reasons.pop(pi.key, None)
        self.bound.append((pi.key, node))
        self.nominated_node.pop(pi.key, None)
        self.cluster.unnominate(pi)
        self._on_pod_added(pi)
        return node

    def _handle_failure(
        self,
        fwk: Framework,
        state: CycleState,
        pi: PodInfo,
        statuses: dict[str, Status],
        pre_msg: str,
        detail: _Detail | None,
    ) -> None:
        num_nodes = len(self.snapshot)
        if num_nodes == 0:
            self._park(pi, frozenset(), NO_NODES_AVAILABLE)
            return
        rejectors = frozenset(st.plugin for st in statuses.values())
        post_msg = ""
        res, st = fwk.run_post_filter(state, pi, statuses)
        if res is not None and res.nominated_node_name:
            node = res.nominated_node_name
            for victim_key in res.victims:
                self._delete_pod(victim_key, pi.key, node)
            # prepareCandidate: lower-priority pods nominated to the node lose it.
            for other in list(self.cluster.nominated.get(node, ())):
                if other.priority < pi.priority:
                    self.cluster.unnominate(other)
                    self.nominated_node.pop(other.key, None)
            self.nominated_node[pi.key] = node
            self.cluster.nominate(pi, node)
            self.reasons[pi.key] = fit_error_message(num_nodes, statuses.values(), pre_msg)
            if detail is not None:
                self.explanations[pi.key] = self._explain(
                    fwk, state, pi, detail, None, self.reasons[pi.key]
                )
            self._push(pi)
            self._requeue_all()
            return
        if st is not None:
            post_msg = st.message
        if res is not None and not res.nominated_node_name:
            self.nominated_node.pop(pi.key, None)
            self.cluster.unnominate(pi)
        message = fit_error_message(num_nodes, statuses.values(), pre_msg, post_msg)
        if detail is not None:
            self.explanations[pi.key] = self._explain(fwk, state, pi, detail, None, message)
        self._park(pi, rejectors, message)

    def _delete_pod(self, key: str, preemptor: str, node: str) -> None:
        pi = self.pods[key]
        self.snapshot.remove_pod(pi)
        self.placements[key] = None
        self.reasons[key] = f"preempted by {preemptor} to make room on node {node}"
        self.preempted.append(key)
        self.preemptions.append(Preemption(key, preemptor, node))
        self.bound = [(k, n) for k, n in self.bound if k != key]

    def _park(self, pi: PodInfo, plugins: frozenset[str], message: str) -> None:
        self.reasons[pi.key] = message
        self.parked[pi.key] = _Parked(pi, plugins, message)
        for name in _HINTED:
            if name in plugins:
                self._parked_hinted[name].add(pi.key)

    def _unpark(self, key: str) -> None:
        parked = self.parked.pop(key)
        for keys in self._parked_hinted.values():
            keys.discard(key)
        self._push(parked.pi)

    def _requeue_all(self) -> None:
        for key in list(self.parked):
            self._unpark(key)

    def _on_pod_added(self, added: PodInfo) -> None:
        """Queueing hints for an assigned pod: who might fit now?"""
        wake: set[str] = set()
        for key in self._parked_hinted["InterPodAffinity"]:
            q = self.parked[key].pi
            if any(t.matches(added) for t in q.required_affinity_terms):
                wake.add(key)
        for key in self._parked_hinted["PodTopologySpread"]:
            q = self.parked[key].pi
            if q.namespace != added.namespace:
                continue
            for c in q.pod.topology_spread_constraints:
                if compile_selector(c.label_selector).matches(added.labels):
                    wake.add(key)
                    break
        for key in sorted(wake, key=lambda k: self.parked[k].pi.priority, reverse=True):
            self._unpark(key)

    # -- explanations ----------------------------------------------------------

    def _explain(
        self,
        fwk: Framework,
        state: CycleState,
        pi: PodInfo,
        detail: _Detail,
        chosen: str | None,
        message: str,
    ) -> Explanation:
        feasible_names = [ni.name for ni in detail.feasible]
        scored = {name: i for i, name in enumerate(feasible_names)} if detail.totals else {}
        rows = []
        for ni in self.snapshot.node_infos:
            filters: list[tuple[str, str]] = []
            passed = True
            for pl in fwk.filter_plugins:
                if pl.name in state.skip_filter:
                    filters.append((pl.name, "skipped"))
                    continue
                st = pl.filter(state, pi, ni)
                filters.append((pl.name, "passed" if st is None else st.message))
                passed = passed and st is None
            note = ""
            if detail.excluded is not None and ni.name not in feasible_names and passed:
                note = detail.excluded.message
            scores: tuple[tuple[str, int], ...] = ()
            total = None
            if ni.name in scored:
                j = scored[ni.name]
                scores = tuple((name, vals[j]) for name, vals in detail.scores.items())
                total = detail.totals[j]
            elif passed and not note:
                note = "feasible, not scored (percentageOfNodesToScore)"
            rows.append(NodeExplanation(ni.name, tuple(filters), passed, scores, total, note))
        weights = tuple(
            (pl.name, fwk.weights.get(pl.name, 1))
            for pl in fwk.score_plugins
            if pl.name not in detail.skip_score
        )
        return Explanation(pi.key, chosen, message, tuple(rows), weights)


def _narrowed(nodes: list[NodeInfo], pre_res: PreFilterResult | None) -> list[NodeInfo]:
    """The nodes PreFilter's result leaves (`nodes` itself when it names none)."""
    if pre_res is None or pre_res.node_names is None:
        return nodes
    names = pre_res.node_names
    return [ni for ni in nodes if ni.name in names]


def _score(
    fwk: Framework,
    state: CycleState,
    pi: PodInfo,
    feasible: Sequence[NodeInfo],
    detail: PluginScores | None = None,
) -> list[int]:
    """PreScore, then Score, NormalizeScore and weights: each node's total, in order."""
    fwk.run_pre_score(state, pi, feasible)
    return fwk.run_score(state, pi, feasible, detail)


class _Detail:
    """What a cycle keeps for an explanation."""

    __slots__ = ("excluded", "feasible", "scores", "skip_score", "totals")

    def __init__(self) -> None:
        self.skip_score: set[str] = set()
        self.feasible: list[NodeInfo] = []
        self.scores: PluginScores = {}
        self.totals: list[int] = []
        self.excluded: Status | None = None


def schedule(
    nodes: Sequence[Node],
    pods: Iterable[Pod],
    config: SchedulerConfig | None = None,
    *,
    seed: int = 0,
    pdbs: Sequence[PodDisruptionBudget] = (),
    explain: Iterable[str] = (),
) -> ScheduleResult:
    """Schedule every pending pod greedily; a convenience over `Scheduler`."""
    return Scheduler(nodes, pods, config, rng=random.Random(seed), pdbs=pdbs, explain=explain).run()
