"""InterPodAffinity (kube-scheduler v1.32).

Theory of operation
-------------------
A *topology pair* is (key, value) of a node label; a term "holds on a node"
when some counted pod runs on a node with the same value for the term's
topology key.  PreFilter counts, per topology pair:

* ``existing_anti``: existing pods' *required anti-affinity* terms that match
  the incoming pod (the symmetric check), counted at the existing pod's node;
* ``affinity``: existing pods matching *all* of the incoming pod's required
  affinity terms, counted once per term at that pod's node;
* ``anti``: existing pods matching each of the incoming pod's required
  anti-affinity terms.

It Skips when all three are empty.  Filter then rejects a node

1. lacking a required affinity term's topology key, or whose domain has no
   matching pod -- unless no pod anywhere matches and the pod matches all its
   own terms (the first pod of a self-affine group) -- with
   UnschedulableAndUnresolvable "node(s) didn't match pod affinity rules";
2. whose domain holds a pod matching a required anti-affinity term:
   Unschedulable "node(s) didn't match pod anti-affinity rules";
3. carrying a label pair where an existing pod's anti-affinity forbids the
   incoming pod: Unschedulable "node(s) didn't satisfy existing pods
   anti-affinity rules".

AddPod/RemovePod update the three counts (preemption and nominated pods).

Score (weight 2): per topology pair, ``+w`` for each preferred affinity term
of the incoming pod matched by an existing pod there, ``-w`` for preferred
anti-affinity, ``+hardPodAffinityWeight`` for each existing pod's *required*
affinity term the incoming pod matches, ``+/-w`` for existing pods'
preferred (anti-)affinity terms the incoming pod matches.  A node's raw score
sums the pairs of its labels.  Normalize: ``int(100 * (s - min) / (max -
min))`` in doubles over the scored nodes; 0 when all are equal.  Without
preferred terms of its own, only nodes hosting pods with affinity are
visited.  Namespace selectors are matched against the other pod's
namespace labels (`Pod.namespace_labels`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from ..config import InterPodAffinityArgs, PluginArgs
from ..framework import (
    MAX_NODE_SCORE,
    SKIP,
    AffinityTerm,
    CycleState,
    Handle,
    NodeInfo,
    PodInfo,
    PreFilterResult,
    Status,
    StatusCode,
)

__all__ = ["InterPodAffinity"]

ERR_AFFINITY = "node(s) didn't match pod affinity rules"
ERR_ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
ERR_EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"

_AFFINITY: Final = Status(
    StatusCode.UnschedulableAndUnresolvable, (ERR_AFFINITY,), "InterPodAffinity"
)
_ANTI: Final = Status(StatusCode.Unschedulable, (ERR_ANTI_AFFINITY,), "InterPodAffinity")
_EXISTING: Final = Status(
    StatusCode.Unschedulable, (ERR_EXISTING_ANTI_AFFINITY,), "InterPodAffinity"
)

Pair = tuple[str, str]
_PRE_FILTER: Final = "InterPodAffinity/preFilter"
_PRE_SCORE: Final = "InterPodAffinity/preScore"


def _bump(counts: dict[Pair, int], labels: dict[str, str], key: str, delta: int) -> None:
    value = labels.get(key)
    if value is None:
        return
    pair = (key, value)
    n = counts.get(pair, 0) + delta
    if n == 0:
        counts.pop(pair, None)
    else:
        counts[pair] = n


def _matches_all(terms: Sequence[AffinityTerm], pod: PodInfo) -> bool:
    return bool(terms) and all(t.matches(pod) for t in terms)


class _PreFilterState:
    __slots__ = ("affinity", "anti", "existing_anti", "pod")

    def __init__(self, pod: PodInfo) -> None:
        self.pod = pod
        self.existing_anti: dict[Pair, int] = {}
        self.affinity: dict[Pair, int] = {}
        self.anti: dict[Pair, int] = {}

    def clone(self) -> _PreFilterState:
        c = _PreFilterState(self.pod)
        c.existing_anti = dict(self.existing_anti)
        c.affinity = dict(self.affinity)
        c.anti = dict(self.anti)
        return c

    def update(self, other: PodInfo, node: NodeInfo, delta: int) -> None:
        labels = node.labels
        for t in other.required_anti_affinity_terms:
            if t.matches(self.pod):
                _bump(self.existing_anti, labels, t.topology_key, delta)
        req = self.pod.required_affinity_terms
        if _matches_all(req, other):
            for t in req:
                _bump(self.affinity, labels, t.topology_key, delta)
        for t in self.pod.required_anti_affinity_terms:
            if t.matches(other):
                _bump(self.anti, labels, t.topology_key, delta)


class InterPodAffinity:
    name = "InterPodAffinity"

    def __init__(self, args: PluginArgs | None, handle: Handle) -> None:
        a = args if isinstance(args, InterPodAffinityArgs) else InterPodAffinityArgs()
        self.hard_weight = a.hard_pod_affinity_weight
        self.ignore_existing_preferred = a.ignore_preferred_terms_of_existing_pods
        self.handle = handle

    # -- filter ------------------------------------------------------------

    def pre_filter(
        self, state: CycleState, pod: PodInfo
    ) -> tuple[PreFilterResult | None, Status | None]:
        snap = self.handle.snapshot
        s = _PreFilterState(pod)
        # Replicas share term and label objects (`Interner`), so "does this
        # term match that pod" is memoized by identity within the cycle.
        incoming: dict[int, bool] = {}
        existing_anti = s.existing_anti
        for ni in snap.have_pods_with_required_anti_affinity():
            labels = ni.labels
            for other in ni.pods_with_required_anti_affinity:
                for t in other.required_anti_affinity_terms:
                    hit = incoming.get(id(t))
                    if hit is None:
                        hit = incoming[id(t)] = t.matches(pod)
                    if hit:
                        value = labels.get(t.topology_key)
                        if value is not None:
                            pair = (t.topology_key, value)
                            existing_anti[pair] = existing_anti.get(pair, 0) + 1
        req, anti = pod.required_affinity_terms, pod.required_anti_affinity_terms
        if req or anti:
            seen: dict[tuple[str, int, int], tuple[bool, tuple[bool, ...]]] = {}
            affinity, anti_counts = s.affinity, s.anti
            for ni in snap.node_infos:
                if not ni.pods:
                    continue
                labels = ni.labels
                for other in ni.pods:
                    k = (other.namespace, id(other.labels), id(other.namespace_labels))
                    verdict = seen.get(k)
                    if verdict is None:
                        verdict = seen[k] = (
                            _matches_all(req, other),
                            tuple(t.matches(other) for t in anti),
                        )
                    if verdict[0]:
                        for t in req:
                            _bump(affinity, labels, t.topology_key, 1)
                    for t, hit in zip(anti, verdict[1], strict=True):
                        if hit:
                            _bump(anti_counts, labels, t.topology_key, 1)
        if not s.existing_anti and not req and not anti:
            return None, SKIP
        state.write(_PRE_FILTER, s)
        return None, None

    def add_pod(self, state: CycleState, pod: PodInfo, added: PodInfo, node: NodeInfo) -> None:
        s = state.read(_PRE_FILTER)
        if s is not None:
            s.update(added, node, 1)

    def remove_pod(self, state: CycleState, pod: PodInfo, removed: PodInfo, node: NodeInfo) -> None:
        s = state.read(_PRE_FILTER)
        if s is not None:
            s.update(removed, node, -1)

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        s: _PreFilterState | None = state.read(_PRE_FILTER)
        if s is None:
            return None
        labels = node.labels
        pods_exist = True
        for t in pod.required_affinity_terms:
            value = labels.get(t.topology_key)
            if value is None:
                return _AFFINITY
            if s.affinity.get((t.topology_key, value), 0) <= 0:
                pods_exist = False
        if not pods_exist and not (
            not s.affinity and _matches_all(pod.required_affinity_terms, pod)
        ):
            return _AFFINITY
        if s.anti:
            for t in pod.required_anti_affinity_terms:
                value = labels.get(t.topology_key)
                if value is not None and s.anti.get((t.topology_key, value), 0) > 0:
                    return _ANTI
        if s.existing_anti:
            for pair in labels.items():
                if s.existing_anti.get(pair, 0) > 0:
                    return _EXISTING
        return None

    # -- score -------------------------------------------------------------

    def pre_score(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]
    ) -> Status | None:
        if not nodes:
            return SKIP
        pref, pref_anti = pod.preferred_affinity_terms, pod.preferred_anti_affinity_terms
        has_constraints = bool(pref or pref_anti)
        if self.ignore_existing_preferred and not has_constraints:
            return SKIP
        snap = self.handle.snapshot
        visit = snap.node_infos if has_constraints else snap.have_pods_with_affinity()
        scores: dict[str, dict[str, int]] = {}

        def add(key: str, labels: dict[str, str], amount: int) -> None:
            value = labels.get(key)
            if value is not None:
                by_value = scores.setdefault(key, {})
                by_value[value] = by_value.get(value, 0) + amount

        for ni in visit:
            labels = ni.labels
            if not labels:
                continue
            for other in ni.pods if has_constraints else ni.pods_with_affinity:
                for t in pref:
                    if t.matches(other):
                        add(t.topology_key, labels, t.weight)
                for t in pref_anti:
                    if t.matches(other):
                        add(t.topology_key, labels, -t.weight)
                if self.hard_weight > 0:
                    for t in other.required_affinity_terms:
                        if t.matches(pod):
                            add(t.topology_key, labels, self.hard_weight)
                for t in other.preferred_affinity_terms:
                    if t.matches(pod):
                        add(t.topology_key, labels, t.weight)
                for t in other.preferred_anti_affinity_terms:
                    if t.matches(pod):
                        add(t.topology_key, labels, -t.weight)
        if not scores:
            return SKIP
        state.write(_PRE_SCORE, scores)
        return None

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        scores: dict[str, dict[str, int]] | None = state.read(_PRE_SCORE)
        if not scores:
            return 0
        total = 0
        labels = node.labels
        for key, by_value in scores.items():
            value = labels.get(key)
            if value is not None:
                total += by_value.get(value, 0)
        return total

    def normalize_score(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo], scores: list[int]
    ) -> None:
        if not state.read(_PRE_SCORE) or not scores:
            return
        lo, hi = min(scores), max(scores)
        diff = hi - lo
        if diff <= 0:
            scores[:] = [0] * len(scores)
            return
        scores[:] = [int(float(MAX_NODE_SCORE) * (float(s - lo) / float(diff))) for s in scores]
