"""A batch-scheduling problem, checked and pre-digested for the Z3 encoding.

Theory of operation
-------------------
`Problem.build(nodes, pods)` splits the pods into *running* ones (``node_name``
set: fixed, counted against their node) and the *batch* (the rest), checks
the input (unique names, running pods on known nodes), and computes, once,
everything that does not depend on where the batch goes:

* per node: the requests of its running pods, hence what is free of every
  resource and of the pod count;
* per batch pod and node: the *static* filter failures, i.e. the reasons that
  hold whatever the rest of the batch does.  These are the monotone filters
  (adding pods can only make them worse): NodeUnschedulable,
  TaintToleration, NodeAffinity, NodePorts and NodeResourcesFit against the
  running pods alone, required anti-affinity against running pods in both
  directions, and a missing topology label for a pod-affinity term or a spread
  constraint.  A node with no static failure is a *candidate*; the encoder
  makes variables only for candidates.
* `alone_failures`: every filter, including the order-dependent ones
  (required pod affinity with its first-pod exception, topology spread skew),
  evaluated against the running pods only: the verdict kube-scheduler would
  give if this pod were the next one scheduled.  It words the reason for a pod
  that has no candidate at all, in kube-scheduler's message form
  (`kube_message`, which always counts every running pod).
* identical pods (equal in every field but name and uid) share a *class*,
  and so do empty nodes that no pod can tell apart; the encoder breaks the
  symmetry between the members of a class.

With ``preemption=True`` (the solver's "least-preemption" objective) some
running pods are *evictable*: those of lower priority than a batch pod that
may preempt (``preemptionPolicy`` is not ``Never``) and that has the running
pod's node among its candidates.  Everything above is then computed against
the *fixed* running pods only (the others may be gone when the batch binds),
so `used`, `free`, the candidates and the static failures describe the node
with every evictable pod evicted; the encoder adds each evictable pod back
behind a "kept" Boolean.  The evictable set is a fixpoint: candidates computed
with fewer fixed pods are a superset of the true ones, so a pod that no
candidate preemptor can reach is fixed, and the candidates are computed
again until nothing changes.  `pdb_members` lists, per PodDisruptionBudget,
the evictable pods it covers (kube's `filterPodsWithPDBViolation` matching:
same namespace, a pod with labels, a non-empty selector that selects them)
and how many disruptions it allows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Final, Protocol

import attrs

from .model import PODS, LabelSelector, Node, Pod
from .solver_match import (
    FILTER_ORDER,
    Spread,
    Term,
    anti_affinity_terms,
    node_affinity_matches,
    pod_affinity_terms,
    pods_ports_conflict,
    request_amounts,
    selector_is_everything,
    selector_matches,
    spread_constraints,
    unschedulable_blocks,
    untolerated_taint,
)

__all__ = ["Budget", "Failure", "Problem", "SolverInputError", "kube_message"]

Failure = tuple[str, str]
"""(filter plugin, kube-scheduler's reason text)."""

R_UNSCHEDULABLE: Final = "node(s) were unschedulable"
R_AFFINITY: Final = "node(s) didn't match Pod's node affinity/selector"
R_PORTS: Final = "node(s) didn't have free ports for the requested pod ports"
R_SPREAD_LABEL: Final = (
    "node(s) didn't match pod topology spread constraints (missing required label)"
)
R_SPREAD: Final = "node(s) didn't match pod topology spread constraints"
R_POD_AFFINITY: Final = "node(s) didn't match pod affinity rules"
R_POD_ANTI: Final = "node(s) didn't match pod anti-affinity rules"
R_EXISTING_ANTI: Final = "node(s) didn't satisfy existing pods anti-affinity rules"


class SolverInputError(ValueError):
    """The nodes and pods given to the solver are inconsistent."""


class Budget(Protocol):
    """A PodDisruptionBudget as preemption reads it (`kubeproof.sched.load.PodDisruptionBudget`)."""

    @property
    def namespace(self) -> str: ...
    @property
    def selector(self) -> LabelSelector: ...
    @property
    def disruptions_allowed(self) -> int: ...


def pdb_covers(pdb: Budget, pod: Pod) -> bool:
    """Does the budget count this pod (kube's `filterPodsWithPDBViolation`)?"""
    return (
        bool(pod.labels)
        and pdb.namespace == pod.namespace
        and not selector_is_everything(pdb.selector)
        and selector_matches(pdb.selector, pod.labels)
    )


class Problem:
    """Nodes, running pods and the batch, with the static facts the encoder needs."""

    def __init__(
        self,
        nodes: Sequence[Node],
        pods: Sequence[Pod],
        *,
        preemption: bool = False,
        pdbs: Sequence[Budget] = (),
    ) -> None:
        self.nodes: tuple[Node, ...] = tuple(nodes)
        self.node_index: dict[str, int] = {}
        for i, n in enumerate(self.nodes):
            if n.name in self.node_index:
                raise SolverInputError(f"node {n.name!r} is given twice")
            self.node_index[n.name] = i
        seen: set[str] = set()
        running: list[Pod] = []
        batch: list[Pod] = []
        for p in pods:
            if p.key in seen:
                raise SolverInputError(f"pod {p.key} is given twice")
            seen.add(p.key)
            if p.node_name:
                if p.node_name not in self.node_index:
                    raise SolverInputError(
                        f"pod {p.key} runs on node {p.node_name!r}, which is not given"
                    )
                running.append(p)
            else:
                batch.append(p)
        self.running: tuple[Pod, ...] = tuple(running)
        self.batch: tuple[Pod, ...] = tuple(batch)
        self.running_node: tuple[int, ...] = tuple(self.node_index[p.node_name] for p in running)
        on: list[list[int]] = [[] for _ in self.nodes]
        for qi, ni in enumerate(self.running_node):
            on[ni].append(qi)
        self.running_on: tuple[tuple[int, ...], ...] = tuple(tuple(x) for x in on)
        self.running_requests: tuple[dict[str, int], ...] = tuple(
            request_amounts(q.requests()) for q in running
        )

        self.requests: tuple[dict[str, int], ...] = tuple(
            request_amounts(p.requests()) for p in batch
        )
        self.affinity: tuple[tuple[Term, ...], ...] = tuple(pod_affinity_terms(p) for p in batch)
        self.anti: tuple[tuple[Term, ...], ...] = tuple(anti_affinity_terms(p) for p in batch)
        self.spread: tuple[tuple[Spread, ...], ...] = tuple(spread_constraints(p) for p in batch)
        self.running_anti: tuple[tuple[Term, ...], ...] = tuple(
            anti_affinity_terms(q) for q in running
        )
        self.preemption = preemption
        self.preemptors: tuple[int, ...] = ()
        evictable: frozenset[int] = frozenset()
        if preemption:
            self.preemptors = tuple(
                pi for pi, p in enumerate(batch) if p.preemption_policy != "Never"
            )
            top = max((batch[pi].priority for pi in self.preemptors), default=None)
            if top is not None:
                evictable = frozenset(qi for qi, q in enumerate(running) if q.priority < top)
        while True:
            self._digest(evictable)
            if not evictable:
                break
            reachable = frozenset(
                qi
                for qi in evictable
                if any(
                    batch[pi].priority > running[qi].priority
                    and self.running_node[qi] in self.candidate_set[pi]
                    for pi in self.preemptors
                )
            )
            if reachable == evictable:
                break
            evictable = reachable
        self.pdb_members: tuple[tuple[tuple[int, ...], int], ...] = tuple(
            (
                tuple(qi for qi in self.evictable if pdb_covers(b, running[qi])),
                b.disruptions_allowed,
            )
            for b in pdbs
        )
        classes: dict[Pod, int] = {}
        self.pod_class: tuple[int, ...] = tuple(
            classes.setdefault(attrs.evolve(p, name="", uid=""), len(classes)) for p in batch
        )
        self.node_class: tuple[int, ...] = self._node_classes()

    def _digest(self, evictable: frozenset[int]) -> None:
        """Everything that depends on which running pods are fixed."""
        self.evictable: tuple[int, ...] = tuple(sorted(evictable))
        self.fixed: tuple[bool, ...] = tuple(qi not in evictable for qi in range(len(self.running)))
        self.fixed_on: tuple[tuple[int, ...], ...] = tuple(
            tuple(qi for qi in qs if self.fixed[qi]) for qs in self.running_on
        )
        self.evictable_on: tuple[tuple[int, ...], ...] = tuple(
            tuple(qi for qi in qs if not self.fixed[qi]) for qs in self.running_on
        )
        used: list[Counter[str]] = [Counter() for _ in self.nodes]
        for ni, qs in enumerate(self.fixed_on):
            for qi in qs:
                used[ni].update(self.running_requests[qi])
                used[ni][PODS] += 1
        self.used: tuple[Counter[str], ...] = tuple(used)
        """Per node, the fixed running pods' requests and their count (``pods``)."""
        self.static: tuple[tuple[tuple[Failure, ...], ...], ...] = tuple(
            tuple(self._static_failures(pi, ni) for ni in range(len(self.nodes)))
            for pi in range(len(self.batch))
        )
        self.candidates: tuple[tuple[int, ...], ...] = tuple(
            tuple(ni for ni, f in enumerate(row) if not f) for row in self.static
        )
        self.candidate_set: tuple[frozenset[int], ...] = tuple(
            frozenset(c) for c in self.candidates
        )

    def pdb_violations(self, evicted: Sequence[int]) -> int:
        """Evictions beyond what the budgets allow, summed over the budgets."""
        gone = set(evicted)
        return sum(
            max(0, sum(1 for qi in members if qi in gone) - max(allowed, 0))
            for members, allowed in self.pdb_members
        )

    def _node_classes(self) -> tuple[int, ...]:
        """Nodes no pod could tell apart share a class (the encoder breaks their symmetry).

        Two empty nodes are interchangeable when they agree on allocatable,
        taints, unschedulable and every label some pod reads -- except labels
        that are only topology keys and unique per node (the hostname): those
        only need to be present on both.  A pod that names nodes (matchFields)
        makes every node its own class.
        """
        selected: set[str] = set()
        topology: set[str] = set()
        for p in (*self.batch, *self.running):
            selected.update(p.node_selector)
            na = p.affinity.node_affinity if p.affinity is not None else None
            terms = []
            if na is not None:
                terms += list(na.required.terms) if na.required is not None else []
                terms += [t.preference for t in na.preferred]
            for t in terms:
                if t.match_fields:
                    return tuple(range(len(self.nodes)))
                selected.update(r.key for r in t.match_expressions)
            topology.update(
                t.topology_key for t in (*pod_affinity_terms(p), *anti_affinity_terms(p))
            )
            topology.update(c.topology_key for c in p.topology_spread_constraints)
        unique = {
            k
            for k in topology - selected
            if len({n.labels[k] for n in self.nodes if k in n.labels})
            == sum(1 for n in self.nodes if k in n.labels)
        }
        read = selected | topology
        classes: dict[object, int] = {}
        out = []
        for ni, n in enumerate(self.nodes):
            if self.running_on[ni]:
                out.append(classes.setdefault(("node", ni), len(classes)))
                continue
            sig = (
                n.allocatable,
                n.taints,
                n.unschedulable,
                frozenset((k, v) for k, v in n.labels.items() if k in read and k not in unique),
                frozenset(k for k in n.labels if k in unique),
            )
            out.append(classes.setdefault(sig, len(classes)))
        return tuple(out)

    # ----------------------------------------------------------------- capacity

    def free(self, ni: int, resource: str) -> int:
        """Allocatable minus the fixed running pods' requests (may be negative)."""
        return self.nodes[ni].allocatable.get(resource) - self.used[ni][resource]

    # ----------------------------------------------------------------- static filters

    def spread_keys(self, pi: int) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.topology_key for c in self.spread[pi]))

    def _static_failures(self, pi: int, ni: int) -> tuple[Failure, ...]:
        pod, node = self.batch[pi], self.nodes[ni]
        out: list[Failure] = []
        if unschedulable_blocks(pod, node):
            out.append(("NodeUnschedulable", R_UNSCHEDULABLE))
        taint = untolerated_taint(pod, node)
        if taint is not None:
            out.append(("TaintToleration", f"node(s) had untolerated taint {taint}"))
        if not node_affinity_matches(pod, node):
            out.append(("NodeAffinity", R_AFFINITY))
        if pod.host_ports() and any(
            pods_ports_conflict(pod, self.running[qi]) for qi in self.fixed_on[ni]
        ):
            out.append(("NodePorts", R_PORTS))
        out.extend(("NodeResourcesFit", r) for r in self.resource_failures(pi, ni))
        if any(k not in node.labels for k in self.spread_keys(pi)):
            out.append(("PodTopologySpread", R_SPREAD_LABEL))
        if any(t.topology_key not in node.labels for t in self.affinity[pi]):
            out.append(("InterPodAffinity", R_POD_AFFINITY))
        elif self._anti_blocked(pi, ni):
            out.append(("InterPodAffinity", R_POD_ANTI))
        elif self._existing_anti_blocked(pi, ni):
            out.append(("InterPodAffinity", R_EXISTING_ANTI))
        return tuple(out)

    def resource_failures(self, pi: int, ni: int) -> list[str]:
        """NodeResourcesFit against the fixed running pods: "Too many pods", "Insufficient X"."""
        out = []
        node = self.nodes[ni]
        if len(self.fixed_on[ni]) + 1 > node.allocatable.pods:
            out.append("Too many pods")
        out.extend(
            f"Insufficient {r}"
            for r, amount in self.requests[pi].items()
            if amount > self.free(ni, r)
        )
        return out

    def _anti_blocked(self, pi: int, ni: int) -> bool:
        labels = self.nodes[ni].labels
        for t in self.anti[pi]:
            v = labels.get(t.topology_key)
            if v is None:
                continue
            for qi, qn in enumerate(self.running_node):
                if (
                    self.fixed[qi]
                    and self.nodes[qn].labels.get(t.topology_key) == v
                    and t.matches(self.running[qi])
                ):
                    return True
        return False

    def _existing_anti_blocked(self, pi: int, ni: int) -> bool:
        labels = self.nodes[ni].labels
        pod = self.batch[pi]
        for qi, terms in enumerate(self.running_anti):
            if not self.fixed[qi]:
                continue
            qlabels = self.nodes[self.running_node[qi]].labels
            for t in terms:
                v = qlabels.get(t.topology_key)
                if v is not None and labels.get(t.topology_key) == v and t.matches(pod):
                    return True
        return False

    # ----------------------------------------------------------------- verdict against running pods

    def affinity_ok_alone(self, pi: int, ni: int) -> bool:
        """InterPodAffinity's required affinity with only the running pods existing."""
        terms = self.affinity[pi]
        if not terms:
            return True
        labels = self.nodes[ni].labels
        if any(t.topology_key not in labels for t in terms):
            return False
        matching = [qi for qi, q in enumerate(self.running) if all(t.matches(q) for t in terms)]
        ok = all(
            any(
                self.nodes[self.running_node[qi]].labels.get(t.topology_key)
                == labels[t.topology_key]
                for qi in matching
            )
            for t in terms
        )
        if ok:
            return True
        counted = any(
            any(t.topology_key in self.nodes[self.running_node[qi]].labels for t in terms)
            for qi in matching
        )
        return not counted and all(t.matches(self.batch[pi]) for t in terms)

    def spread_ok_alone(self, pi: int, ni: int) -> bool:
        """PodTopologySpread's skew check with only the running pods existing."""
        pod, node = self.batch[pi], self.nodes[ni]
        keys = self.spread_keys(pi)
        for c in self.spread[pi]:
            if c.topology_key not in node.labels:
                return False
            counts: dict[str, int] = {}
            for m in self.nodes:
                if c.eligible(pod, m, keys):
                    counts.setdefault(m.labels[c.topology_key], 0)
            for qi, q in enumerate(self.running):
                m = self.nodes[self.running_node[qi]]
                if c.eligible(pod, m, keys) and c.counts(pod, q):
                    counts[m.labels[c.topology_key]] += 1
            low = min(counts.values()) if len(counts) >= c.min_domains else 0
            self_match = 1 if c.matches_self(pod) else 0
            if counts.get(node.labels[c.topology_key], 0) + self_match - low > c.max_skew:
                return False
        return True

    def alone_failures(self, pi: int, ni: int) -> tuple[Failure, ...]:
        """Every filter's verdict for this pod on this node, the batch left out."""
        out = list(self.static[pi][ni])
        if not self.spread_ok_alone(pi, ni) and not any(f == "PodTopologySpread" for f, _ in out):
            out.append(("PodTopologySpread", R_SPREAD))
        if not self.affinity_ok_alone(pi, ni) and not any(f == "InterPodAffinity" for f, _ in out):
            out.append(("InterPodAffinity", R_POD_AFFINITY))
        return tuple(out)


def first_plugin_reasons(failures: Sequence[Failure]) -> list[str]:
    """The reasons kube-scheduler reports for a node: those of the first failing plugin."""
    for plugin in FILTER_ORDER:
        reasons = [r for f, r in failures if f == plugin]
        if reasons:
            return reasons
    return []


def kube_message(problem: Problem, pi: int) -> str:
    """``K/N nodes are available: ...`` for this batch pod, scheduled alone now.

    Every running pod counts, evictable or not: this is kube-scheduler's
    Filter verdict, before any preemption.
    """
    if problem.evictable:
        problem = Problem(problem.nodes, [*problem.running, problem.batch[pi]])
        pi = 0
    hist: Counter[str] = Counter()
    available = 0
    for ni in range(len(problem.nodes)):
        reasons = first_plugin_reasons(problem.alone_failures(pi, ni))
        available += not reasons
        for r in reasons:
            hist[r] += 1
    parts = sorted(f"{v} {k}" for k, v in hist.items())
    msg = f"{available}/{len(problem.nodes)} nodes are available"
    return msg + (": " + ", ".join(parts) + "." if parts else ".")
