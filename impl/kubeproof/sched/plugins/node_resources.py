"""NodeResourcesFit and NodeResourcesBalancedAllocation (kube-scheduler v1.32).

Theory of operation
-------------------
*Filter* (NodeResourcesFit): a node fits a pod when one more pod is allowed
(``len(pods)+1 <= allocatable.pods``, else "Too many pods") and, for every
resource the pod requests (> 0), ``request <= allocatable - requested``
(else "Insufficient <name>").  Requests are `Pod.requests()`; the node's
``requested`` is the sum over its pods.  A pod that requests nothing is
checked for the pod count only.  Extended resources named in
``ignoredResources`` (or whose prefix is in ``ignoredResourceGroups``) are
not checked.  The status is Unschedulable (v1.34 later made "larger than the
whole node" unresolvable; v1.32 does not).

*Score* (NodeResourcesFit, weight 1) looks at each configured resource r with
``alloc_r > 0``; for cpu and memory it counts *non-zero* requests (missing
requests count as 100m / 200Mi), for the rest actual requests, and skips an
extended resource the pod does not request.  With ``req_r`` = node's + pod's:

====================  ======================================================
LeastAllocated        ``s_r = (alloc_r - req_r) * 100 // alloc_r`` (0 if over)
MostAllocated         ``s_r = min(req_r, alloc_r) * 100 // alloc_r``
RequestedToCapacity   ``s_r = f(req_r * 100 // alloc_r)`` (``f(100)`` if over),
Ratio                 f piecewise linear through the shape (scores x10);
                      only ``s_r > 0`` enter the mean, which is rounded
====================  ======================================================

and the node's score is ``sum(w_r * s_r) // sum(w_r)``.

*Score* (NodeResourcesBalancedAllocation, weight 1) uses actual requests:
``f_r = min(req_r / alloc_r, 1)`` over the resources with ``alloc_r > 0``;
``std = |f_1 - f_2| / 2`` for two resources, the population standard
deviation for more, 0 for fewer; score ``int((1 - std) * 100)`` in IEEE
doubles, exactly as Go computes it.  (v1.33 skips best-effort pods and later
versions score the change in balance; v1.32 does neither.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..config import (
    BalancedAllocationArgs,
    NodeResourcesFitArgs,
    PluginArgs,
    ResourceSpec,
)
from ..framework import (
    MAX_NODE_SCORE,
    CycleState,
    Handle,
    NodeInfo,
    PodInfo,
    PreFilterResult,
    Status,
    go_div,
    unschedulable,
)
from ..model import CPU, EPHEMERAL_STORAGE, MEMORY, PODS

__all__ = ["BalancedAllocation", "Fit"]

_NATIVE = (CPU, MEMORY, EPHEMERAL_STORAGE, PODS)
MAX_UTILIZATION = 100


def _is_scalar(name: str) -> bool:
    return name not in _NATIVE


def _pod_request(pod: PodInfo, name: str, non_zero: bool) -> int:
    if name == CPU:
        return pod.nz_cpu if non_zero else pod.req_cpu
    if name == MEMORY:
        return pod.nz_mem if non_zero else pod.req_mem
    if name == EPHEMERAL_STORAGE:
        return pod.req_eph
    return pod.req_scalar.get(name, 0)


def alloc_and_request(
    ni: NodeInfo, name: str, pod_request: int, use_requested: bool
) -> tuple[int, int]:
    """`calculateResourceAllocatableRequest`: (allocatable, requested incl. the pod)."""
    if pod_request == 0 and _is_scalar(name):
        return 0, 0
    if name == CPU:
        return ni.alloc_cpu, (ni.req_cpu if use_requested else ni.nz_cpu) + pod_request
    if name == MEMORY:
        return ni.alloc_mem, (ni.req_mem if use_requested else ni.nz_mem) + pod_request
    if name == EPHEMERAL_STORAGE:
        return ni.alloc_eph, ni.req_eph + pod_request
    if name in ni.alloc_scalar:
        return ni.alloc_scalar[name], ni.req_scalar.get(name, 0) + pod_request
    return 0, 0


def _least(req: int, cap: int) -> int:
    if cap == 0 or req > cap:
        return 0
    return (cap - req) * MAX_NODE_SCORE // cap


def _most(req: int, cap: int) -> int:
    if cap == 0:
        return 0
    return min(req, cap) * MAX_NODE_SCORE // cap


def go_round(x: float) -> int:
    """Go's math.Round: half away from zero."""
    a = abs(x)
    r = math.floor(a)
    if a - r >= 0.5:
        r += 1
    return r if x >= 0 else -r


def broken_linear(shape: Sequence[tuple[int, int]], p: int) -> int:
    """`helper.BuildBrokenLinearFunction` with Go's truncating division."""
    for i, (u, s) in enumerate(shape):
        if p <= u:
            if i == 0:
                return s
            u0, s0 = shape[i - 1]
            return s0 + go_div((s - s0) * (p - u0), u - u0)
    return shape[-1][1]


class Fit:
    """NodeResourcesFit: PreFilter, Filter, PreScore, Score."""

    name = "NodeResourcesFit"

    def __init__(self, args: PluginArgs | None, handle: Handle) -> None:
        a = args if isinstance(args, NodeResourcesFitArgs) else NodeResourcesFitArgs()
        self.ignored = a.ignored_resources
        self.ignored_groups = a.ignored_resource_groups
        self.strategy = a.scoring_strategy.type
        self.resources: tuple[ResourceSpec, ...] = a.scoring_strategy.resources
        # RequestedToCapacityRatio: shape scores scaled from 0..10 to 0..100.
        self.shape = tuple(
            (p.utilization, p.score * (MAX_NODE_SCORE // 10)) for p in a.scoring_strategy.shape
        )
        names = tuple(r.name for r in self.resources)
        self._fast = self.strategy == "LeastAllocated" and names == (CPU, MEMORY)
        self._wcpu = self.resources[0].weight if self._fast else 0
        self._wmem = self.resources[1].weight if self._fast else 0
        self._memo_key: tuple[int, int] | None = None
        self._memo: dict[str, tuple[int, int]] = {}

    # -- filter ------------------------------------------------------------

    def pre_filter(
        self, state: CycleState, pod: PodInfo
    ) -> tuple[PreFilterResult | None, Status | None]:
        return None, None

    def _checked_scalars(self, pod: PodInfo) -> list[tuple[str, int]]:
        out = []
        for name in sorted(pod.req_scalar):
            q = pod.req_scalar[name]
            if q == 0:
                continue
            # An extended resource may be ignored by name or by group.
            # (IsExtendedResourceName: not native, i.e. has a domain that is
            # not kubernetes.io's.)
            extended = "/" in name and "kubernetes.io/" not in name
            if extended and (name in self.ignored or name.split("/", 1)[0] in self.ignored_groups):
                continue
            out.append((name, q))
        return out

    def insufficient(self, pod: PodInfo, ni: NodeInfo) -> list[str]:
        """`fitsRequest`: the reasons the node cannot take the pod (empty: it fits)."""
        reasons = []
        if len(ni.pods) + 1 > ni.alloc_pods:
            reasons.append("Too many pods")
        if not (pod.req_cpu or pod.req_mem or pod.req_eph or pod.req_scalar):
            return reasons
        if pod.req_cpu > 0 and pod.req_cpu > ni.alloc_cpu - ni.req_cpu:
            reasons.append("Insufficient cpu")
        if pod.req_mem > 0 and pod.req_mem > ni.alloc_mem - ni.req_mem:
            reasons.append("Insufficient memory")
        if pod.req_eph > 0 and pod.req_eph > ni.alloc_eph - ni.req_eph:
            reasons.append("Insufficient ephemeral-storage")
        for name, q in self._checked_scalars(pod):
            if q > ni.alloc_scalar.get(name, 0) - ni.req_scalar.get(name, 0):
                reasons.append(f"Insufficient {name}")
        return reasons

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        reasons = self.insufficient(pod, node)
        return unschedulable(*reasons) if reasons else None

    def filter_many(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]
    ) -> dict[int, Status]:
        cpu, mem, eph = pod.req_cpu, pod.req_mem, pod.req_eph
        scalars = self._checked_scalars(pod)
        out: dict[int, Status] = {}
        for i, ni in enumerate(nodes):
            # The common test inline; the full reasons only for failures.
            if (
                len(ni.pods) >= ni.alloc_pods
                or (cpu and cpu > ni.alloc_cpu - ni.req_cpu)
                or (mem and mem > ni.alloc_mem - ni.req_mem)
                or (eph and eph > ni.alloc_eph - ni.req_eph)
                or (
                    scalars
                    and any(
                        q > ni.alloc_scalar.get(n, 0) - ni.req_scalar.get(n, 0) for n, q in scalars
                    )
                )
            ):
                st = self.filter(state, pod, ni)
                if st is not None:
                    out[i] = st
        return out

    # -- score -------------------------------------------------------------

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> None:
        return None

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        total = weights = 0
        for spec in self.resources:
            alloc, req = alloc_and_request(
                node, spec.name, _pod_request(pod, spec.name, True), False
            )
            if alloc == 0:
                continue
            if self.strategy == "LeastAllocated":
                s = _least(req, alloc)
            elif self.strategy == "MostAllocated":
                s = _most(req, alloc)
            else:
                util = MAX_UTILIZATION if req > alloc else req * MAX_UTILIZATION // alloc
                s = broken_linear(self.shape, util)
                if s <= 0:
                    # RequestedToCapacityRatio leaves zero scores out of the mean.
                    continue
            total += s * spec.weight
            weights += spec.weight
        if weights == 0:
            return 0
        if self.strategy == "RequestedToCapacityRatio":
            return go_round(total / weights)
        return total // weights

    def score_many(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[int]:
        if not self._fast:
            return [self.score(state, pod, ni) for ni in nodes]
        # LeastAllocated over cpu and memory, inlined: the default profile's hot
        # loop.  A node's score depends only on its content (its generation)
        # and the pod's non-zero cpu/memory, so scores are memoized per node
        # while consecutive pods ask for the same amounts (replicas do).
        pc, pm, wc, wm = pod.nz_cpu, pod.nz_mem, self._wcpu, self._wmem
        if (pc, pm) != self._memo_key:
            self._memo_key = (pc, pm)
            self._memo = {}
        memo = self._memo
        out = []
        for ni in nodes:
            gen = ni.generation
            hit = memo.get(ni.name)
            if hit is not None and hit[0] == gen:
                out.append(hit[1])
                continue
            ac, am = ni.alloc_cpu, ni.alloc_mem
            total = weights = 0
            if ac:
                rc = ni.nz_cpu + pc
                total = ((ac - rc) * 100 // ac if rc <= ac else 0) * wc
                weights = wc
            if am:
                rm = ni.nz_mem + pm
                total += ((am - rm) * 100 // am if rm <= am else 0) * wm
                weights += wm
            score = total // weights if weights else 0
            memo[ni.name] = (gen, score)
            out.append(score)
        return out


class BalancedAllocation:
    """NodeResourcesBalancedAllocation: PreScore, Score."""

    name = "NodeResourcesBalancedAllocation"

    def __init__(self, args: PluginArgs | None, handle: Handle) -> None:
        a = args if isinstance(args, BalancedAllocationArgs) else BalancedAllocationArgs()
        self.resources = tuple(r.name for r in a.resources)
        self._fast = self.resources == (CPU, MEMORY)
        self._memo_key: tuple[int, int] | None = None
        self._memo: dict[str, tuple[int, int]] = {}

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> None:
        return None

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        fractions = []
        for name in self.resources:
            alloc, req = alloc_and_request(node, name, _pod_request(pod, name, False), True)
            if alloc == 0:
                continue
            fractions.append(min(req / alloc, 1.0))
        return _balanced(fractions)

    def score_many(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[int]:
        if not self._fast:
            return [self.score(state, pod, ni) for ni in nodes]
        pc, pm = pod.req_cpu, pod.req_mem
        if (pc, pm) != self._memo_key:
            self._memo_key = (pc, pm)
            self._memo = {}
        memo = self._memo
        out = []
        for ni in nodes:
            gen = ni.generation
            hit = memo.get(ni.name)
            if hit is not None and hit[0] == gen:
                out.append(hit[1])
                continue
            ac, am = ni.alloc_cpu, ni.alloc_mem
            if ac and am:
                fc = (ni.req_cpu + pc) / ac
                fm = (ni.req_mem + pm) / am
                if fc > 1.0:
                    fc = 1.0
                if fm > 1.0:
                    fm = 1.0
                score = int((1 - abs((fc - fm) / 2)) * 100)
            else:
                score = self.score(state, pod, ni)
            memo[ni.name] = (gen, score)
            out.append(score)
        return out


def _balanced(fractions: list[float]) -> int:
    std = 0.0
    if len(fractions) == 2:
        std = abs((fractions[0] - fractions[1]) / 2)
    elif len(fractions) > 2:
        mean = sum(fractions) / len(fractions)
        # Go sums left to right; so does this loop.
        acc = 0.0
        for f in fractions:
            acc = acc + (f - mean) * (f - mean)
        std = math.sqrt(acc / len(fractions))
    return int((1 - std) * MAX_NODE_SCORE)
