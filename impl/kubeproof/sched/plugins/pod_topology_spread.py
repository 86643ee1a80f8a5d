"""PodTopologySpread (kube-scheduler v1.32).

Theory of operation
-------------------
A constraint spreads the pods matching its selector (in the incoming pod's
namespace) over the *domains* of a topology key (the values of a node label).
The pod's own constraints are used; a pod with none gets the profile's
default constraints (the system defaults: hostname maxSkew 3 and zone
maxSkew 5, both ScheduleAnyway), whose selector is the pod's
`default_spread_selector`; with no such selector there are none.  Each
constraint's selector also ANDs ``key In (pod's value)`` for each of its
``matchLabelKeys`` the pod carries.  A nil or empty selector counts no pod.

A node *counts* for a constraint when it has every constraint's key and
passes the inclusion policies: nodeAffinityPolicy Honor (default) requires
the pod's nodeSelector/required node affinity to match it, nodeTaintsPolicy
Honor (default Ignore) requires the pod to tolerate its NoSchedule/NoExecute
taints.

*Filter* (DoNotSchedule constraints): a node without the key is
UnschedulableAndUnresolvable ("node(s) didn't match pod topology spread
constraints (missing required label)"); otherwise, with ``match`` the number
of matching pods in the node's domain, ``self`` 1 if the pod matches the
selector and ``min`` the smallest count over the counted domains (0 when
there are fewer domains than ``minDomains``), the node is Unschedulable
("node(s) didn't match pod topology spread constraints") when
``match + self - min > maxSkew``.  The minimum is kept as kube's two-entry
"critical paths", updated by AddPod/RemovePod.

*Score* (ScheduleAnyway constraints, weight 2): with ``w_i = ln(domains_i +
2)`` (for the hostname key, domains = the scored nodes), a node's raw score
is ``round(sum_i count_i * w_i + (maxSkew_i - 1))``; nodes missing a key (own
constraints) are ignored and score 0.  Normalize: ``100 * (max + min - s) //
max`` (100 everywhere when max is 0), so fewer matching pods is better.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

from ..config import PluginArgs, PodTopologySpreadArgs
from ..framework import (
    MAX_NODE_SCORE,
    SKIP,
    CycleState,
    Handle,
    NodeInfo,
    PodInfo,
    PreFilterResult,
    Status,
    StatusCode,
)
from ..model import TopologySpreadConstraint
from ..selectors import NOTHING, Selector, compile_selector, find_untolerated_taint
from .node_resources import go_round

__all__ = ["HOSTNAME", "SYSTEM_DEFAULT_CONSTRAINTS", "ZONE", "PodTopologySpread"]

HOSTNAME: Final = "kubernetes.io/hostname"
ZONE: Final = "topology.kubernetes.io/zone"
ERR_CONSTRAINTS: Final = "node(s) didn't match pod topology spread constraints"
ERR_LABEL: Final = ERR_CONSTRAINTS + " (missing required label)"
SYSTEM_DEFAULT_CONSTRAINTS: Final = (
    TopologySpreadConstraint(3, HOSTNAME, "ScheduleAnyway"),
    TopologySpreadConstraint(5, ZONE, "ScheduleAnyway"),
)
_MAX_INT32: Final = 2**31 - 1
_DO_NOT_SCHEDULE: Final = frozenset({"NoSchedule", "NoExecute"})
_PRE_FILTER: Final = "PodTopologySpread/preFilter"
_PRE_SCORE: Final = "PodTopologySpread/preScore"

_LABEL: Final = Status(StatusCode.UnschedulableAndUnresolvable, (ERR_LABEL,), "PodTopologySpread")
_SKEW: Final = Status(StatusCode.Unschedulable, (ERR_CONSTRAINTS,), "PodTopologySpread")

Pair = tuple[str, str]


class _Constraint:
    __slots__ = ("honor_affinity", "honor_taints", "key", "max_skew", "min_domains", "selector")

    def __init__(self, c: TopologySpreadConstraint, pod: PodInfo, selector: Selector) -> None:
        self.max_skew = c.max_skew
        self.key = c.topology_key
        self.min_domains = c.min_domains if c.min_domains is not None else 1
        self.honor_affinity = c.node_affinity_policy == "Honor"
        self.honor_taints = c.node_taints_policy == "Honor"
        extra = [
            (k, "In", frozenset({pod.labels[k]})) for k in c.match_label_keys if k in pod.labels
        ]
        if extra and not selector.nothing:
            selector = Selector(selector.equals, selector.exprs + tuple(extra))
        self.selector = selector

    def includes(self, pod: PodInfo, node: NodeInfo) -> bool:
        """`matchNodeInclusionPolicies`."""
        if self.honor_affinity and not pod.required_affinity.matches(node.node):
            return False
        return not (
            self.honor_taints
            and find_untolerated_taint(node.taints, pod.pod.tolerations, _DO_NOT_SCHEDULE)
            is not None
        )


def _count(pods: Sequence[PodInfo], selector: Selector, namespace: str) -> int:
    """`countPodsMatchSelector`: an empty selector counts nothing."""
    if selector.empty or selector.nothing:
        return 0
    return sum(1 for p in pods if p.namespace == namespace and selector.matches(p.labels))


def _has_keys(labels: dict[str, str], constraints: Sequence[_Constraint]) -> bool:
    return all(c.key in labels for c in constraints)


class _CriticalPaths:
    """The two domains with the fewest matching pods (kube's criticalPaths).

    Kept incrementally, as kube does; after AddPod/RemovePod it can miss a
    third domain that became the minimum, exactly as kube's can.
    """

    __slots__ = ("nums", "values")

    def __init__(self) -> None:
        self.values = ["", ""]
        self.nums = [_MAX_INT32, _MAX_INT32]

    def clone(self) -> _CriticalPaths:
        c = _CriticalPaths()
        c.values = list(self.values)
        c.nums = list(self.nums)
        return c

    def update(self, value: str, num: int) -> None:
        v, n = self.values, self.nums
        i = 0 if value == v[0] else 1 if value == v[1] else -1
        if i >= 0:
            n[i] = num
            if n[0] > n[1]:
                v.reverse()
                n.reverse()
        elif num < n[0]:
            v[1], n[1] = v[0], n[0]
            v[0], n[0] = value, num
        elif num < n[1]:
            v[1], n[1] = value, num

    @property
    def min(self) -> int:
        return self.nums[0]


class _PreFilterState:
    __slots__ = ("constraints", "critical", "domains", "match")

    def __init__(self, constraints: list[_Constraint]) -> None:
        self.constraints = constraints
        self.match: dict[Pair, int] = {}
        self.domains: dict[str, int] = {}
        self.critical: dict[str, _CriticalPaths] = {}

    def clone(self) -> _PreFilterState:
        c = _PreFilterState(self.constraints)
        c.match = dict(self.match)
        c.domains = self.domains
        c.critical = {k: v.clone() for k, v in self.critical.items()}
        return c


class PodTopologySpread:
    name = "PodTopologySpread"

    def __init__(self, args: PluginArgs | None, handle: Handle) -> None:
        a = args if isinstance(args, PodTopologySpreadArgs) else PodTopologySpreadArgs()
        self.system_defaulted = a.defaulting_type == "System"
        self.default_constraints = (
            SYSTEM_DEFAULT_CONSTRAINTS if self.system_defaulted else a.default_constraints
        )
        self.handle = handle

    def _constraints(self, pod: PodInfo, action: str) -> list[_Constraint]:
        own = pod.pod.topology_spread_constraints
        if own:
            return [
                _Constraint(c, pod, compile_selector(c.label_selector))
                for c in own
                if c.when_unsatisfiable == action
            ]
        chosen = [c for c in self.default_constraints if c.when_unsatisfiable == action]
        if not chosen:
            return []
        dsel = pod.pod.default_spread_selector
        selector = compile_selector(dsel) if dsel is not None else NOTHING
        if selector.empty or selector.nothing:
            return []
        return [_Constraint(c, pod, selector) for c in chosen]

    # -- filter ------------------------------------------------------------

    def pre_filter(
        self, state: CycleState, pod: PodInfo
    ) -> tuple[PreFilterResult | None, Status | None]:
        constraints = self._constraints(pod, "DoNotSchedule")
        if not constraints:
            return None, SKIP
        s = _PreFilterState(constraints)
        for ni in self.handle.snapshot.node_infos:
            labels = ni.labels
            if not _has_keys(labels, constraints):
                continue
            counts: dict[Pair, int] = {}
            for c in constraints:
                if not c.includes(pod, ni):
                    continue
                counts[(c.key, labels[c.key])] = _count(ni.pods, c.selector, pod.namespace)
            for pair, n in counts.items():
                s.match[pair] = s.match.get(pair, 0) + n
        for key, _value in s.match:
            s.domains[key] = s.domains.get(key, 0) + 1
        for c in constraints:
            s.critical[c.key] = _CriticalPaths()
        for (key, value), n in s.match.items():
            s.critical[key].update(value, n)
        state.write(_PRE_FILTER, s)
        return None, None

    def _update(
        self, state: CycleState, pod: PodInfo, other: PodInfo, node: NodeInfo, d: int
    ) -> None:
        s: _PreFilterState | None = state.read(_PRE_FILTER)
        if s is None or other.namespace != pod.namespace:
            return
        labels = node.labels
        if not _has_keys(labels, s.constraints):
            return
        for c in s.constraints:
            if not c.selector.matches(other.labels) or not c.includes(pod, node):
                continue
            pair = (c.key, labels[c.key])
            s.match[pair] = s.match.get(pair, 0) + d
            s.critical[c.key].update(pair[1], s.match[pair])

    def add_pod(self, state: CycleState, pod: PodInfo, added: PodInfo, node: NodeInfo) -> None:
        self._update(state, pod, added, node, 1)

    def remove_pod(self, state: CycleState, pod: PodInfo, removed: PodInfo, node: NodeInfo) -> None:
        self._update(state, pod, removed, node, -1)

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        s: _PreFilterState | None = state.read(_PRE_FILTER)
        if s is None or not s.constraints:
            return None
        labels = node.labels
        for c in s.constraints:
            value = labels.get(c.key)
            if value is None:
                return _LABEL
            paths = s.critical.get(c.key)
            if paths is None or c.key not in s.domains:
                # kube logs an internal error and skips the constraint.
                continue
            min_match = paths.min if s.domains[c.key] >= c.min_domains else 0
            self_match = 1 if c.selector.matches(pod.labels) else 0
            skew = s.match.get((c.key, value), 0) + self_match - min_match
            if skew > c.max_skew:
                return _SKEW
        return None

    # -- score -------------------------------------------------------------

    def pre_score(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]
    ) -> Status | None:
        snap = self.handle.snapshot
        if not nodes or not len(snap):
            return SKIP
        constraints = self._constraints(pod, "ScheduleAnyway")
        if not constraints:
            return SKIP
        require_all = bool(pod.pod.topology_spread_constraints) or not self.system_defaulted
        ignored: set[str] = set()
        pair_counts: dict[Pair, int] = {}
        sizes = [0] * len(constraints)
        for ni in nodes:
            if require_all and not _has_keys(ni.labels, constraints):
                ignored.add(ni.name)
                continue
            for i, c in enumerate(constraints):
                if c.key == HOSTNAME:
                    continue
                pair = (c.key, ni.labels.get(c.key, ""))
                if pair not in pair_counts:
                    pair_counts[pair] = 0
                    sizes[i] += 1
        weights = []
        for i, c in enumerate(constraints):
            size = len(nodes) - len(ignored) if c.key == HOSTNAME else sizes[i]
            weights.append(math.log(float(size + 2)))
        for ni in snap.node_infos:
            labels = ni.labels
            if require_all and not _has_keys(labels, constraints):
                continue
            for c in constraints:
                if not c.includes(pod, ni):
                    continue
                pair = (c.key, labels.get(c.key, ""))
                if pair not in pair_counts:
                    continue
                pair_counts[pair] += _count(ni.pods, c.selector, pod.namespace)
        state.write(_PRE_SCORE, (constraints, weights, pair_counts, ignored))
        return None

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        pre = state.read(_PRE_SCORE)
        if pre is None:
            return 0
        constraints, weights, pair_counts, ignored = pre
        if node.name in ignored:
            return 0
        total = 0.0
        for c, w in zip(constraints, weights, strict=True):
            value = node.labels.get(c.key)
            if value is None:
                continue
            if c.key == HOSTNAME:
                cnt = _count(node.pods, c.selector, pod.namespace)
            else:
                cnt = pair_counts.get((c.key, value), 0)
            total += float(cnt) * w + float(c.max_skew - 1)
        return go_round(total)

    def normalize_score(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo], scores: list[int]
    ) -> None:
        pre = state.read(_PRE_SCORE)
        if pre is None:
            return
        ignored = pre[3]
        lo, hi = 2**63 - 1, 0
        for ni, s in zip(nodes, scores, strict=True):
            if ni.name in ignored:
                continue
            lo = min(lo, s)
            hi = max(hi, s)
        for i, ni in enumerate(nodes):
            if ni.name in ignored:
                scores[i] = 0
            elif hi == 0:
                scores[i] = MAX_NODE_SCORE
            else:
                scores[i] = MAX_NODE_SCORE * (hi + lo - scores[i]) // hi
