"""The scheduling framework: extension points, plugin protocols, cycle state, node state.

Theory of operation
-------------------
This is kube-scheduler's framework (pkg/scheduler/framework, v1.32) as a pure
library.  A *profile* lists, per extension point, the plugins to run; one
scheduling cycle for one pod runs them in this order::

    PreFilter -> Filter (per node) -> [PostFilter if no node fits]
              -> PreScore -> Score (per node) -> NormalizeScore -> x weight, summed
              -> Reserve -> Permit -> Bind

Statuses follow kube's codes.  ``None`` is Success (kube's nil status).
``Unschedulable`` means "not now" (preemption may help);
``UnschedulableAndUnresolvable`` means preemption cannot help; ``Skip`` from
PreFilter/PreScore means "this plugin has nothing to say about this pod", and
the framework then does not run that plugin's Filter/Score for the pod.

Per-pod facts are computed once into a `PodInfo` (requests, host ports,
compiled affinity terms); per-node facts live in a `NodeInfo` that is updated
*incrementally* when a pod is added or removed (requested resources, used
ports, pods with affinity), as kube's scheduler cache does, so that a cycle
never re-sums a node's pods.  The `Snapshot` holds every `NodeInfo` in
kube's node-tree order (zones interleaved) plus the sets of nodes hosting pods
with (anti-)affinity.

Plugins are objects satisfying small Protocols (`FilterPlugin`,
`ScorePlugin`, ...).  For speed, a filter or score plugin may also offer a
batch form (`filter_many`, `score_many`) over a list of nodes; it must agree
exactly with the per-node form (tests check this), which the explanation
tables use.
"""

from __future__ import annotations

import enum
import itertools
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Final, Protocol, runtime_checkable

from attrs import frozen

from .load import PodDisruptionBudget
from .model import (
    CPU,
    EPHEMERAL_STORAGE,
    MEMORY,
    FrozenMap,
    Node,
    Pod,
    PodAffinityTerm,
    WeightedPodAffinityTerm,
)
from .selectors import NOTHING, RequiredNodeAffinity, Selector, compile_selector

__all__ = [
    "MAX_NODE_SCORE",
    "AffinityTerm",
    "CycleState",
    "FilterPlugin",
    "Handle",
    "NodeInfo",
    "NodeScore",
    "PermitPlugin",
    "Plugin",
    "PodInfo",
    "PostFilterPlugin",
    "PostFilterResult",
    "PreFilterExtensions",
    "PreFilterPlugin",
    "PreFilterResult",
    "PreScorePlugin",
    "ReservePlugin",
    "ScorePlugin",
    "Snapshot",
    "Status",
    "StatusCode",
    "default_normalize_score",
]

MAX_NODE_SCORE: Final = 100
MIN_NODE_SCORE: Final = 0


class StatusCode(enum.IntEnum):
    Success = 0
    Error = 1
    Unschedulable = 2
    UnschedulableAndUnresolvable = 3
    Wait = 4
    Skip = 5


@frozen
class Status:
    """A plugin's verdict when it is not plain success (success is ``None``)."""

    code: StatusCode
    reasons: tuple[str, ...] = ()
    plugin: str = ""

    @property
    def message(self) -> str:
        return ", ".join(self.reasons)

    def is_rejected(self) -> bool:
        return self.code in (StatusCode.Unschedulable, StatusCode.UnschedulableAndUnresolvable)

    def with_plugin(self, plugin: str) -> Status:
        return self if self.plugin == plugin else Status(self.code, self.reasons, plugin)


SKIP: Final = Status(StatusCode.Skip)


def unschedulable(*reasons: str) -> Status:
    return Status(StatusCode.Unschedulable, reasons)


def unresolvable(*reasons: str) -> Status:
    return Status(StatusCode.UnschedulableAndUnresolvable, reasons)


@frozen
class PreFilterResult:
    """A PreFilter plugin's narrowing of the candidate nodes (None: all nodes)."""

    node_names: frozenset[str] | None = None

    def merge(self, other: PreFilterResult | None) -> PreFilterResult:
        if other is None or other.node_names is None:
            return self
        if self.node_names is None:
            return other
        return PreFilterResult(self.node_names & other.node_names)


@frozen
class PostFilterResult:
    nominated_node_name: str = ""
    victims: tuple[str, ...] = ()
    """Keys of the pods to delete so that the pod fits on the nominated node."""


@frozen
class NodeScore:
    name: str
    total: int
    per_plugin: tuple[tuple[str, int], ...] = ()
    """(plugin, normalized score x weight) pairs."""


class CycleState:
    """Per-cycle scratch data written by PreFilter/PreScore, read by Filter/Score."""

    __slots__ = ("data", "skip_filter", "skip_score")

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.skip_filter: set[str] = set()
        self.skip_score: set[str] = set()

    def write(self, key: str, value: object) -> None:
        self.data[key] = value

    def read(self, key: str) -> Any:
        return self.data.get(key)

    def clone(self) -> CycleState:
        c = CycleState()
        for k, v in self.data.items():
            clone = getattr(v, "clone", None)
            c.data[k] = clone() if clone is not None else v
        c.skip_filter = set(self.skip_filter)
        c.skip_score = set(self.skip_score)
        return c


# --------------------------------------------------------------------------- pods


class AffinityTerm:
    """A compiled pod (anti-)affinity term (`framework.AffinityTerm`)."""

    __slots__ = ("key", "namespace_selector", "namespaces", "selector", "topology_key", "weight")

    def __init__(self, pod: Pod, term: PodAffinityTerm, weight: int = 0) -> None:
        extra: list[tuple[str, str, frozenset[str]]] = []
        # matchLabelKeys / mismatchLabelKeys (beta, on in v1.32): the pod's own
        # value for each key is ANDed into the selector as In / NotIn.
        if term.label_selector is not None:
            for k in term.match_label_keys:
                if k in pod.labels:
                    extra.append((k, "In", frozenset({pod.labels[k]})))
            for k in term.mismatch_label_keys:
                if k in pod.labels:
                    extra.append((k, "NotIn", frozenset({pod.labels[k]})))
        self.selector: Selector = compile_selector(term.label_selector, extra)
        if not term.namespaces and term.namespace_selector is None:
            self.namespaces: frozenset[str] = frozenset({pod.namespace})
        else:
            self.namespaces = frozenset(term.namespaces)
        self.namespace_selector: Selector = (
            NOTHING
            if term.namespace_selector is None
            else compile_selector(term.namespace_selector)
        )
        self.topology_key = term.topology_key
        self.weight = weight
        self.key = (
            self.namespaces,
            self.namespace_selector.nothing,
            self.namespace_selector.equals,
            self.namespace_selector.exprs,
            self.selector.nothing,
            self.selector.equals,
            self.selector.exprs,
            self.topology_key,
            weight,
        )
        """Equal keys mean equal terms (what `Interner` shares)."""

    def matches(self, other: PodInfo) -> bool:
        """`AffinityTerm.Matches`: namespace (by name or by labels), then the selector."""
        if other.namespace in self.namespaces or (
            not self.namespace_selector.nothing
            and self.namespace_selector.matches(other.namespace_labels)
        ):
            return self.selector.matches(other.labels)
        return False


class Interner:
    """Shares equal affinity terms and label sets between the PodInfos of one scheduler.

    Replicas of one workload carry equal terms and labels; sharing one object
    lets plugins memoize "does this term match that pod" by identity within a
    cycle instead of re-evaluating it for every replica.
    """

    def __init__(self) -> None:
        self.terms: dict[tuple[object, ...], AffinityTerm] = {}
        self.labels: dict[frozenset[tuple[str, str]], dict[str, str]] = {}
        self.namespace_labels: dict[FrozenMap[str], FrozenMap[str]] = {}

    def term(self, t: AffinityTerm) -> AffinityTerm:
        return self.terms.setdefault(t.key, t)

    def label_set(self, labels: dict[str, str]) -> dict[str, str]:
        return self.labels.setdefault(frozenset(labels.items()), labels)

    def namespace_label_set(self, labels: FrozenMap[str]) -> FrozenMap[str]:
        return self.namespace_labels.setdefault(labels, labels)


def _terms(
    pod: Pod, terms: Iterable[PodAffinityTerm], intern: Interner | None
) -> tuple[AffinityTerm, ...]:
    out = (AffinityTerm(pod, t) for t in terms)
    return tuple(intern.term(t) if intern is not None else t for t in out)


def _weighted(
    pod: Pod, terms: Iterable[WeightedPodAffinityTerm], intern: Interner | None
) -> tuple[AffinityTerm, ...]:
    # A zero weight contributes nothing (kube skips such terms).
    out = (AffinityTerm(pod, t.term, t.weight) for t in terms if t.weight)
    return tuple(intern.term(t) if intern is not None else t for t in out)


class PodInfo:
    """A pod with everything the plugins derive from it, computed once."""

    __slots__ = (
        "has_pod_affinity",
        "key",
        "labels",
        "namespace",
        "namespace_labels",
        "nz_cpu",
        "nz_mem",
        "pod",
        "ports",
        "preferred_affinity_terms",
        "preferred_anti_affinity_terms",
        "priority",
        "req",
        "req_cpu",
        "req_eph",
        "req_mem",
        "req_scalar",
        "required_affinity",
        "required_affinity_terms",
        "required_anti_affinity_terms",
    )

    def __init__(self, pod: Pod, intern: Interner | None = None) -> None:
        self.pod = pod
        self.key = pod.key
        self.namespace = pod.namespace
        labels = dict(pod.labels)
        self.labels: dict[str, str] = intern.label_set(labels) if intern is not None else labels
        self.namespace_labels: FrozenMap[str] = (
            intern.namespace_label_set(pod.namespace_labels)
            if intern is not None
            else pod.namespace_labels
        )
        self.priority = pod.priority
        req = pod.requests()
        self.req = req
        self.req_cpu = req.milli_cpu
        self.req_mem = req.memory
        self.req_eph = req.ephemeral_storage
        self.req_scalar: dict[str, int] = dict(req.scalar)
        nz = pod.non_zero_requests()
        self.nz_cpu = nz.milli_cpu
        self.nz_mem = nz.memory
        # HostPortInfo.sanitize: an empty host IP binds all addresses.
        self.ports: tuple[tuple[str, str, int], ...] = tuple(
            (p.host_ip or "0.0.0.0", p.protocol or "TCP", p.host_port) for p in pod.host_ports()
        )
        aff = pod.affinity
        pa = aff.pod_affinity if aff else None
        paa = aff.pod_anti_affinity if aff else None
        self.has_pod_affinity = pa is not None or paa is not None
        self.required_affinity_terms = _terms(pod, pa.required, intern) if pa else ()
        self.required_anti_affinity_terms = _terms(pod, paa.required, intern) if paa else ()
        self.preferred_affinity_terms = _weighted(pod, pa.preferred, intern) if pa else ()
        self.preferred_anti_affinity_terms = _weighted(pod, paa.preferred, intern) if paa else ()
        self.required_affinity = RequiredNodeAffinity(pod)

    def __repr__(self) -> str:
        return f"PodInfo({self.key})"


# --------------------------------------------------------------------------- nodes


class NodeInfo:
    """A node plus the aggregate of the pods on it, updated incrementally."""

    __slots__ = (
        "alloc_cpu",
        "alloc_eph",
        "alloc_mem",
        "alloc_pods",
        "alloc_scalar",
        "clock",
        "generation",
        "image_states",
        "labels",
        "name",
        "node",
        "nz_cpu",
        "nz_mem",
        "pods",
        "pods_with_affinity",
        "pods_with_required_anti_affinity",
        "prefer_no_schedule",
        "req_cpu",
        "req_eph",
        "req_mem",
        "req_scalar",
        "taints",
        "unschedulable",
        "used_ports",
    )

    def __init__(self, node: Node, clock: Iterator[int] | None = None) -> None:
        self.node = node
        self.name = node.name
        # Generations come from a counter shared by a snapshot and its clones,
        # so that (name, generation) names one content: plugins may memoize
        # per-node results on it (kube's NodeInfo.Generation, nextGeneration()).
        self.clock: Iterator[int] = clock if clock is not None else itertools.count(1)
        self.labels: dict[str, str] = dict(node.labels)
        self.taints = node.taints
        self.prefer_no_schedule = tuple(t for t in node.taints if t.effect == "PreferNoSchedule")
        self.unschedulable = node.unschedulable
        a = node.allocatable
        self.alloc_cpu = a.milli_cpu
        self.alloc_mem = a.memory
        self.alloc_eph = a.ephemeral_storage
        self.alloc_pods = a.pods
        self.alloc_scalar: dict[str, int] = dict(a.scalar)
        self.pods: list[PodInfo] = []
        self.pods_with_affinity: list[PodInfo] = []
        self.pods_with_required_anti_affinity: list[PodInfo] = []
        self.req_cpu = 0
        self.req_mem = 0
        self.req_eph = 0
        self.req_scalar: dict[str, int] = {}
        self.nz_cpu = 0
        self.nz_mem = 0
        self.used_ports: dict[str, set[tuple[str, int]]] = {}
        self.image_states: dict[str, tuple[int, int]] = {}
        """image name -> (size in bytes, number of nodes that have it)."""
        self.generation = next(self.clock)

    def __repr__(self) -> str:
        return f"NodeInfo({self.name}, pods={len(self.pods)})"

    def requested(self, resource: str) -> int:
        if resource == CPU:
            return self.req_cpu
        if resource == MEMORY:
            return self.req_mem
        if resource == EPHEMERAL_STORAGE:
            return self.req_eph
        return self.req_scalar.get(resource, 0)

    def allocatable(self, resource: str) -> int:
        if resource == CPU:
            return self.alloc_cpu
        if resource == MEMORY:
            return self.alloc_mem
        if resource == EPHEMERAL_STORAGE:
            return self.alloc_eph
        if resource == "pods":
            return self.alloc_pods
        return self.alloc_scalar.get(resource, 0)

    def add_pod(self, pi: PodInfo) -> None:
        self.pods.append(pi)
        if pi.has_pod_affinity:
            self.pods_with_affinity.append(pi)
        if pi.required_anti_affinity_terms:
            self.pods_with_required_anti_affinity.append(pi)
        self._update(pi, 1)

    def remove_pod(self, pi: PodInfo) -> None:
        for i, p in enumerate(self.pods):
            if p.key == pi.key:
                del self.pods[i]
                break
        else:
            raise KeyError(f"pod {pi.key} is not on node {self.name}")
        self.pods_with_affinity = [p for p in self.pods_with_affinity if p.key != pi.key]
        self.pods_with_required_anti_affinity = [
            p for p in self.pods_with_required_anti_affinity if p.key != pi.key
        ]
        self._update(pi, -1)

    def _update(self, pi: PodInfo, sign: int) -> None:
        self.req_cpu += sign * pi.req_cpu
        self.req_mem += sign * pi.req_mem
        self.req_eph += sign * pi.req_eph
        for k, v in pi.req_scalar.items():
            self.req_scalar[k] = self.req_scalar.get(k, 0) + sign * v
        self.nz_cpu += sign * pi.nz_cpu
        self.nz_mem += sign * pi.nz_mem
        for ip, proto, port in pi.ports:
            if sign > 0:
                self.used_ports.setdefault(ip, set()).add((proto, port))
            else:
                used = self.used_ports.get(ip)
                if used is not None:
                    used.discard((proto, port))
                    if not used:
                        del self.used_ports[ip]
        self.generation = next(self.clock)

    def clone(self) -> NodeInfo:
        c = NodeInfo.__new__(NodeInfo)
        for slot in NodeInfo.__slots__:
            setattr(c, slot, getattr(self, slot))
        c.pods = list(self.pods)
        c.pods_with_affinity = list(self.pods_with_affinity)
        c.pods_with_required_anti_affinity = list(self.pods_with_required_anti_affinity)
        c.req_scalar = dict(self.req_scalar)
        c.used_ports = {k: set(v) for k, v in self.used_ports.items()}
        return c


def node_tree_order(nodes: Sequence[Node]) -> list[Node]:
    """kube's nodeTree listing: zones in order of appearance, one node per zone per round."""
    zones: dict[str, list[Node]] = {}
    for n in nodes:
        region = n.labels.get("topology.kubernetes.io/region", "") or ""
        zone = n.labels.get("topology.kubernetes.io/zone", "") or ""
        zones.setdefault(f"{region}:\x00:{zone}", []).append(n)
    out: list[Node] = []
    lists = list(zones.values())
    i = 0
    while len(out) < len(nodes):
        for lst in lists:
            if i < len(lst):
                out.append(lst[i])
        i += 1
    return out


class Snapshot:
    """All nodes in node-tree order, with the pods on them."""

    def __init__(self, nodes: Sequence[Node]) -> None:
        clock = itertools.count(1)
        self.node_infos: list[NodeInfo] = [NodeInfo(n, clock) for n in node_tree_order(nodes)]
        self.by_name: dict[str, NodeInfo] = {ni.name: ni for ni in self.node_infos}
        if len(self.by_name) != len(self.node_infos):
            raise ValueError("two nodes have the same name")
        # ImageStateSummary: size from the first node reporting the name,
        # and on how many nodes the name is present.
        sizes: dict[str, int] = {}
        counts: dict[str, int] = {}
        for n in nodes:
            seen: set[str] = set()
            for image in n.images:
                for name in image.names:
                    sizes.setdefault(name, image.size_bytes)
                    if name not in seen:
                        seen.add(name)
                        counts[name] = counts.get(name, 0) + 1
        self.images: dict[str, tuple[int, int]] = {k: (sizes[k], counts[k]) for k in sizes}
        for ni in self.node_infos:
            ni.image_states = {
                name: self.images[name] for image in ni.node.images for name in image.names
            }
        # Nodes never change after the snapshot is built, so these flags let
        # plugins skip a pass over nodes that cannot matter.
        self.any_taints = any(ni.taints for ni in self.node_infos)
        self.any_prefer_no_schedule = any(ni.prefer_no_schedule for ni in self.node_infos)
        self.any_unschedulable = any(ni.unschedulable for ni in self.node_infos)
        self.with_affinity: dict[str, NodeInfo] = {}
        self.with_required_anti_affinity: dict[str, NodeInfo] = {}
        self.pod_node: dict[str, str] = {}
        """pod key -> node name, for every pod on a node."""

    def __len__(self) -> int:
        return len(self.node_infos)

    def get(self, name: str) -> NodeInfo | None:
        return self.by_name.get(name)

    def add_pod(self, pi: PodInfo, node_name: str) -> NodeInfo:
        ni = self.by_name[node_name]
        if pi.key in self.pod_node:
            raise ValueError(f"pod {pi.key} is already on node {self.pod_node[pi.key]}")
        ni.add_pod(pi)
        self.pod_node[pi.key] = node_name
        self._index(ni)
        return ni

    def remove_pod(self, pi: PodInfo) -> NodeInfo:
        ni = self.by_name[self.pod_node.pop(pi.key)]
        ni.remove_pod(pi)
        self._index(ni)
        return ni

    def _index(self, ni: NodeInfo) -> None:
        if ni.pods_with_affinity:
            self.with_affinity[ni.name] = ni
        else:
            self.with_affinity.pop(ni.name, None)
        if ni.pods_with_required_anti_affinity:
            self.with_required_anti_affinity[ni.name] = ni
        else:
            self.with_required_anti_affinity.pop(ni.name, None)

    def have_pods_with_affinity(self) -> list[NodeInfo]:
        return list(self.with_affinity.values())

    def have_pods_with_required_anti_affinity(self) -> list[NodeInfo]:
        return list(self.with_required_anti_affinity.values())


# --------------------------------------------------------------------------- protocols


class Handle(Protocol):
    """What the framework offers plugins (kube's `framework.Handle`)."""

    @property
    def snapshot(self) -> Snapshot: ...

    @property
    def rng(self) -> random.Random: ...

    @property
    def pdbs(self) -> Sequence[PodDisruptionBudget]: ...

    def run_filter_with_nominated(
        self, state: CycleState, pod: PodInfo, node: NodeInfo
    ) -> Status | None: ...

    def run_pre_filter_add_pod(
        self, state: CycleState, pod: PodInfo, added: PodInfo, node: NodeInfo
    ) -> None: ...

    def run_pre_filter_remove_pod(
        self, state: CycleState, pod: PodInfo, removed: PodInfo, node: NodeInfo
    ) -> None: ...


@runtime_checkable
class Plugin(Protocol):
    name: str


@runtime_checkable
class PreFilterExtensions(Protocol):
    def add_pod(self, state: CycleState, pod: PodInfo, added: PodInfo, node: NodeInfo) -> None: ...

    def remove_pod(
        self, state: CycleState, pod: PodInfo, removed: PodInfo, node: NodeInfo
    ) -> None: ...


@runtime_checkable
class PreFilterPlugin(Plugin, Protocol):
    def pre_filter(
        self, state: CycleState, pod: PodInfo
    ) -> tuple[PreFilterResult | None, Status | None]: ...


@runtime_checkable
class FilterPlugin(Plugin, Protocol):
    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None: ...


class BatchFilterPlugin(FilterPlugin, Protocol):
    def filter_many(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]
    ) -> dict[int, Status]:
        """The failures among `nodes`, by index; must agree with `filter`."""
        ...


@runtime_checkable
class PostFilterPlugin(Plugin, Protocol):
    def post_filter(
        self, state: CycleState, pod: PodInfo, statuses: Mapping[str, Status]
    ) -> tuple[PostFilterResult | None, Status | None]: ...


@runtime_checkable
class PreScorePlugin(Plugin, Protocol):
    def pre_score(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]
    ) -> Status | None: ...


@runtime_checkable
class ScorePlugin(Plugin, Protocol):
    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int: ...


class BatchScorePlugin(ScorePlugin, Protocol):
    def score_many(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[int]:
        """Raw scores for `nodes`, in order; must agree with `score`."""
        ...


class NormalizingScorePlugin(ScorePlugin, Protocol):
    def normalize_score(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo], scores: list[int]
    ) -> None:
        """Rewrite `scores` in place into 0..100."""
        ...


@runtime_checkable
class ReservePlugin(Plugin, Protocol):
    def reserve(self, state: CycleState, pod: PodInfo, node_name: str) -> Status | None: ...

    def unreserve(self, state: CycleState, pod: PodInfo, node_name: str) -> None: ...


@runtime_checkable
class PermitPlugin(Plugin, Protocol):
    def permit(self, state: CycleState, pod: PodInfo, node_name: str) -> Status | None: ...


@runtime_checkable
class BindPlugin(Plugin, Protocol):
    def bind(self, state: CycleState, pod: PodInfo, node_name: str) -> Status | None: ...


# --------------------------------------------------------------------------- helpers


def default_normalize_score(scores: list[int], reverse: bool) -> None:
    """`helper.DefaultNormalizeScore(MaxNodeScore, reverse, scores)`."""
    max_count = max(scores, default=0)
    if max_count <= 0:
        if reverse:
            scores[:] = [MAX_NODE_SCORE] * len(scores)
        return
    if reverse:
        scores[:] = [MAX_NODE_SCORE - MAX_NODE_SCORE * s // max_count for s in scores]
    else:
        scores[:] = [MAX_NODE_SCORE * s // max_count for s in scores]


def go_div(a: int, b: int) -> int:
    """Go's integer division (truncates toward zero), for possibly negative operands."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


NO_NODE_AVAILABLE_MSG: Final = "0/{} nodes are available"


def fit_error_message(
    num_all_nodes: int,
    statuses: Iterable[Status],
    pre_filter_msg: str = "",
    post_filter_msg: str = "",
) -> str:
    """`FitError.Error()` (v1.32): the "0/N nodes are available: ..." message.

    Each node's status contributes each of its reasons once to a histogram;
    the entries ``"<count> <reason>"`` are sorted *as strings* (so "10 x"
    sorts before "2 y", as in kube) and joined with ", ".  When PreFilter
    rejected the pod its message replaces the histogram.  PostFilter's
    message (preemption's) follows after a space.
    """
    msg = NO_NODE_AVAILABLE_MSG.format(num_all_nodes) + ":"
    if pre_filter_msg:
        msg += f" {pre_filter_msg}."
    else:
        histogram: dict[str, int] = {}
        for st in statuses:
            for reason in st.reasons:
                histogram[reason] = histogram.get(reason, 0) + 1
        entries = sorted(f"{n} {reason}" for reason, n in histogram.items())
        if entries:
            msg += f" {', '.join(entries)}."
    if post_filter_msg:
        msg += " " + post_filter_msg
    return msg
