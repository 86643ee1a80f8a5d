"""The scheduler's view of Kubernetes objects: nodes, pods and what they ask for.

Theory of operation
-------------------
These are frozen values holding exactly the fields of `v1.Node` and `v1.Pod`
that kube-scheduler (pinned: v1.32) reads, already validated and converted:

* resource amounts are integers in the scheduler's base units (`Resources`:
  milli-CPU, bytes of memory and ephemeral storage, a count of pods, and
  extended/hugepages resources in units), parsed by `quantity`;
* label maps and selectors are `FrozenMap`s and tuples, so every value is
  hashable and safe to share between the greedy scheduler, the Z3 solver and
  the spec's checker;
* enumerations (operators, effects, policies) are the strings Kubernetes
  uses, checked at load time, so a value never holds an unknown operator.

A pod with `node_name` set is running (bound) on that node; a pod without it
is pending.  Two derived quantities follow kube-scheduler exactly:

* `Pod.requests()` is `resource.PodRequests`: the larger of the sum over
  regular containers (plus restartable "sidecar" init containers) and every
  init container's request (plus the sidecars started before it), plus the
  pod overhead.  Filtering (does it fit?) uses this.
* `Pod.non_zero_requests()` is the same sum with a container's *missing*
  cpu or memory request counted as 100m / 200Mi (`DefaultMilliCPURequest`,
  `DefaultMemoryRequest`).  Only scoring uses it, so that many best-effort
  pods do not all land on one node.

Two fields carry context that kube-scheduler reads from other objects, so a
pod stays a self-contained value: `namespace_labels` (the labels of the
pod's Namespace, which `namespaceSelector` in pod affinity terms matches)
and `default_spread_selector` (the selector built by `DefaultSelector` from
the Services, ReplicaSets, StatefulSets and ReplicationControllers that
select the pod; the system default topology spread constraints use it).
`load.load_objects` fills both from the objects in the input.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Final, TypeVar

from attrs import field, frozen

__all__ = [
    "CPU",
    "DEFAULT_MEMORY_REQUEST",
    "DEFAULT_MILLI_CPU_REQUEST",
    "DEFAULT_SCHEDULER_NAME",
    "EPHEMERAL_STORAGE",
    "KUBE_VERSION",
    "LABEL_OPERATORS",
    "MEMORY",
    "NODE_SELECTOR_OPERATORS",
    "PODS",
    "TAINT_EFFECTS",
    "Affinity",
    "Container",
    "ContainerImage",
    "ContainerPort",
    "FrozenMap",
    "LabelSelector",
    "LabelSelectorRequirement",
    "Node",
    "NodeAffinity",
    "NodeSelector",
    "NodeSelectorRequirement",
    "NodeSelectorTerm",
    "Pod",
    "PodAffinity",
    "PodAffinityTerm",
    "PodAntiAffinity",
    "PreferredSchedulingTerm",
    "Resources",
    "Taint",
    "Toleration",
    "TopologySpreadConstraint",
    "WeightedPodAffinityTerm",
]

KUBE_VERSION: Final = "v1.32"
"""The kube-scheduler release whose semantics this package reproduces."""

CPU: Final = "cpu"
MEMORY: Final = "memory"
EPHEMERAL_STORAGE: Final = "ephemeral-storage"
PODS: Final = "pods"

DEFAULT_MILLI_CPU_REQUEST: Final = 100
"""pkg/scheduler/util.DefaultMilliCPURequest: scoring's cpu for a container without one."""
DEFAULT_MEMORY_REQUEST: Final = 200 * 1024 * 1024
"""pkg/scheduler/util.DefaultMemoryRequest: scoring's memory for a container without one."""

DEFAULT_SCHEDULER_NAME: Final = "default-scheduler"

LABEL_OPERATORS: Final = frozenset({"In", "NotIn", "Exists", "DoesNotExist"})
NODE_SELECTOR_OPERATORS: Final = frozenset({"In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"})
TAINT_EFFECTS: Final = frozenset({"NoSchedule", "PreferNoSchedule", "NoExecute"})

V = TypeVar("V")


class FrozenMap(Mapping[str, V]):
    """An immutable, hashable string-keyed mapping (labels, selectors, scalars)."""

    __slots__ = ("_data", "_hash")

    def __init__(self, data: Mapping[str, V] | Iterable[tuple[str, V]] = ()) -> None:
        self._data: dict[str, V] = dict(data)
        self._hash: int | None = None

    def __getitem__(self, key: str) -> V:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def get(self, key: str, default: V | None = None) -> V | None:  # type: ignore[override]
        # Spelled out (not inherited) because it is on every hot path.
        return self._data.get(key, default)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._data.items()))
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FrozenMap):
            return self._data == other._data
        if isinstance(other, Mapping):
            return self._data == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"


def _str_map(data: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> FrozenMap[str]:
    return data if isinstance(data, FrozenMap) else FrozenMap(data)


def _int_map(data: Mapping[str, int] | Iterable[tuple[str, int]] = ()) -> FrozenMap[int]:
    # Zero entries are dropped so that equal amounts compare equal.
    items = data.items() if isinstance(data, Mapping) else data
    return FrozenMap((k, v) for k, v in items if v != 0)


# --------------------------------------------------------------------------- resources


@frozen
class Resources:
    """Amounts of resources in the scheduler's integer base units.

    `scalar` holds every other resource (extended resources such as
    ``nvidia.com/gpu``, ``hugepages-2Mi``); `pods` is only meaningful in a
    node's allocatable and capacity.
    """

    milli_cpu: int = 0
    memory: int = 0
    ephemeral_storage: int = 0
    pods: int = 0
    scalar: FrozenMap[int] = field(factory=FrozenMap, converter=_int_map)

    def get(self, name: str) -> int:
        """The amount of the resource named as in a Kubernetes ResourceList."""
        if name == CPU:
            return self.milli_cpu
        if name == MEMORY:
            return self.memory
        if name == EPHEMERAL_STORAGE:
            return self.ephemeral_storage
        if name == PODS:
            return self.pods
        return self.scalar.get(name, 0) or 0

    def names(self) -> tuple[str, ...]:
        """The names of the resources with a non-zero amount, native ones first."""
        native = [
            n
            for n, v in (
                (CPU, self.milli_cpu),
                (MEMORY, self.memory),
                (EPHEMERAL_STORAGE, self.ephemeral_storage),
                (PODS, self.pods),
            )
            if v
        ]
        return (*native, *sorted(self.scalar))

    def is_zero(self) -> bool:
        return not (
            self.milli_cpu or self.memory or self.ephemeral_storage or self.pods or self.scalar
        )

    def __add__(self, other: Resources) -> Resources:
        scalar = dict(self.scalar)
        for k, v in other.scalar.items():
            scalar[k] = scalar.get(k, 0) + v
        return Resources(
            self.milli_cpu + other.milli_cpu,
            self.memory + other.memory,
            self.ephemeral_storage + other.ephemeral_storage,
            self.pods + other.pods,
            scalar,
        )

    def max(self, other: Resources) -> Resources:
        """The per-resource maximum (how an init container bounds a pod)."""
        scalar = dict(self.scalar)
        for k, v in other.scalar.items():
            scalar[k] = max(scalar.get(k, 0), v)
        return Resources(
            max(self.milli_cpu, other.milli_cpu),
            max(self.memory, other.memory),
            max(self.ephemeral_storage, other.ephemeral_storage),
            max(self.pods, other.pods),
            scalar,
        )

    @staticmethod
    def from_mapping(amounts: Mapping[str, int]) -> Resources:
        """Build from base-unit integers keyed by Kubernetes resource name."""
        scalar = {
            k: v for k, v in amounts.items() if k not in (CPU, MEMORY, EPHEMERAL_STORAGE, PODS)
        }
        return Resources(
            amounts.get(CPU, 0),
            amounts.get(MEMORY, 0),
            amounts.get(EPHEMERAL_STORAGE, 0),
            amounts.get(PODS, 0),
            scalar,
        )


# --------------------------------------------------------------------------- node


@frozen
class Taint:
    key: str
    effect: str  # NoSchedule | PreferNoSchedule | NoExecute
    value: str = ""

    def __str__(self) -> str:
        # The form kube-scheduler prints in "had untolerated taint {k: v}".
        return f"{{{self.key}: {self.value}}}"


@frozen
class ContainerImage:
    """One entry of `node.status.images`: the names an image is known by, and its size."""

    names: tuple[str, ...]
    size_bytes: int = 0


@frozen
class Node:
    name: str
    labels: FrozenMap[str] = field(factory=FrozenMap, converter=_str_map)
    allocatable: Resources = field(factory=Resources)
    capacity: Resources = field(factory=Resources)
    taints: tuple[Taint, ...] = ()
    unschedulable: bool = False
    images: tuple[ContainerImage, ...] = ()
    conditions: FrozenMap[str] = field(factory=FrozenMap, converter=_str_map)
    """Condition type -> status.  Recorded only: since taint-based conditions
    (v1.18) the scheduler reads node health from taints, not conditions."""


# --------------------------------------------------------------------------- selectors


@frozen
class LabelSelectorRequirement:
    key: str
    operator: str  # In | NotIn | Exists | DoesNotExist
    values: tuple[str, ...] = ()


@frozen
class LabelSelector:
    """A `metav1.LabelSelector`.  The empty selector matches everything."""

    match_labels: FrozenMap[str] = field(factory=FrozenMap, converter=_str_map)
    match_expressions: tuple[LabelSelectorRequirement, ...] = ()


@frozen
class NodeSelectorRequirement:
    key: str
    operator: str  # In | NotIn | Exists | DoesNotExist | Gt | Lt
    values: tuple[str, ...] = ()


@frozen
class NodeSelectorTerm:
    """Requirements ANDed together; `match_fields` may only name ``metadata.name``."""

    match_expressions: tuple[NodeSelectorRequirement, ...] = ()
    match_fields: tuple[NodeSelectorRequirement, ...] = ()


@frozen
class NodeSelector:
    """Terms ORed together."""

    terms: tuple[NodeSelectorTerm, ...] = ()


@frozen
class PreferredSchedulingTerm:
    weight: int
    preference: NodeSelectorTerm


@frozen
class NodeAffinity:
    required: NodeSelector | None = None
    preferred: tuple[PreferredSchedulingTerm, ...] = ()


@frozen
class PodAffinityTerm:
    """Pods matching `label_selector`, in the term's namespaces, in the node's topology domain.

    Namespaces: the union of `namespaces` and the namespaces whose labels
    match `namespace_selector`; when both are absent, the pod's own.  An empty
    `namespace_selector` (not None) selects every namespace.  A None
    `label_selector` matches no pod.
    """

    topology_key: str
    label_selector: LabelSelector | None = None
    namespaces: tuple[str, ...] = ()
    namespace_selector: LabelSelector | None = None
    match_label_keys: tuple[str, ...] = ()
    mismatch_label_keys: tuple[str, ...] = ()


@frozen
class WeightedPodAffinityTerm:
    weight: int
    term: PodAffinityTerm


@frozen
class PodAffinity:
    required: tuple[PodAffinityTerm, ...] = ()
    preferred: tuple[WeightedPodAffinityTerm, ...] = ()


@frozen
class PodAntiAffinity:
    required: tuple[PodAffinityTerm, ...] = ()
    preferred: tuple[WeightedPodAffinityTerm, ...] = ()


@frozen
class Affinity:
    node_affinity: NodeAffinity | None = None
    pod_affinity: PodAffinity | None = None
    pod_anti_affinity: PodAntiAffinity | None = None


@frozen
class Toleration:
    """A `v1.Toleration`.

    An empty key with Exists tolerates every taint; an empty effect, every effect.
    """

    key: str = ""
    operator: str = "Equal"  # Equal | Exists
    value: str = ""
    effect: str = ""  # "" | NoSchedule | PreferNoSchedule | NoExecute
    toleration_seconds: int | None = None


@frozen
class TopologySpreadConstraint:
    max_skew: int
    topology_key: str
    when_unsatisfiable: str = "DoNotSchedule"  # DoNotSchedule | ScheduleAnyway
    label_selector: LabelSelector | None = None
    min_domains: int | None = None
    node_affinity_policy: str = "Honor"  # Honor | Ignore
    node_taints_policy: str = "Ignore"  # Honor | Ignore
    match_label_keys: tuple[str, ...] = ()


# --------------------------------------------------------------------------- pod


@frozen
class ContainerPort:
    container_port: int
    host_port: int = 0
    protocol: str = "TCP"
    host_ip: str = ""


@frozen
class Container:
    name: str
    image: str = ""
    requests: Resources = field(factory=Resources)
    limits: Resources = field(factory=Resources)
    requested_names: frozenset[str] = frozenset()
    """The resource names the container's requests list (even with a zero
    amount); scoring's non-zero defaults apply only to names missing here."""
    ports: tuple[ContainerPort, ...] = ()
    restart_policy: str = ""
    """For init containers: ``Always`` makes it a restartable sidecar."""


def _non_zero(c: Container) -> Resources:
    cpu = c.requests.milli_cpu if CPU in c.requested_names else DEFAULT_MILLI_CPU_REQUEST
    mem = c.requests.memory if MEMORY in c.requested_names else DEFAULT_MEMORY_REQUEST
    if cpu == c.requests.milli_cpu and mem == c.requests.memory:
        return c.requests
    return Resources(cpu, mem, c.requests.ephemeral_storage, c.requests.pods, c.requests.scalar)


@frozen
class Pod:
    name: str
    namespace: str = "default"
    uid: str = ""
    labels: FrozenMap[str] = field(factory=FrozenMap, converter=_str_map)
    containers: tuple[Container, ...] = ()
    init_containers: tuple[Container, ...] = ()
    overhead: Resources = field(factory=Resources)
    node_name: str = ""
    """The node the pod is bound to; empty for a pending pod."""
    node_selector: FrozenMap[str] = field(factory=FrozenMap, converter=_str_map)
    affinity: Affinity | None = None
    tolerations: tuple[Toleration, ...] = ()
    topology_spread_constraints: tuple[TopologySpreadConstraint, ...] = ()
    priority: int = 0
    preemption_policy: str = "PreemptLowerPriority"  # or Never
    scheduler_name: str = DEFAULT_SCHEDULER_NAME
    start_time: int | None = None
    """status.startTime in seconds since the epoch (preemption orders victims by it)."""
    nominated_node_name: str = ""
    scheduling_gates: tuple[str, ...] = ()
    """spec.schedulingGates names; a gated pod is not scheduled (SchedulingGates)."""
    namespace_labels: FrozenMap[str] = field(factory=FrozenMap, converter=_str_map)
    default_spread_selector: LabelSelector | None = None

    @property
    def key(self) -> str:
        """``NAMESPACE/NAME``, how the CLI and the JSON output name a pod."""
        return f"{self.namespace}/{self.name}"

    def requests(self) -> Resources:
        """The pod's effective request (`resource.PodRequests`, v1.32)."""
        return _pod_requests(self, non_zero=False)

    def non_zero_requests(self) -> Resources:
        """The effective request with scoring's defaults for missing cpu/memory requests."""
        return _pod_requests(self, non_zero=True)

    def host_ports(self) -> tuple[ContainerPort, ...]:
        """The container ports that claim a host port (NodePorts reads regular containers)."""
        return tuple(p for c in self.containers for p in c.ports if p.host_port > 0)


def _pod_requests(pod: Pod, non_zero: bool) -> Resources:
    req = Resources()
    for c in pod.containers:
        req = req + (_non_zero(c) if non_zero else c.requests)
    # Sidecars (restartPolicy Always) run beside the regular containers and
    # beside every init container that starts after them.
    init_max = Resources()
    sidecars = Resources()
    for c in pod.init_containers:
        creq = _non_zero(c) if non_zero else c.requests
        if c.restart_policy == "Always":
            req = req + creq
            sidecars = sidecars + creq
            creq = sidecars
        else:
            creq = creq + sidecars
        init_max = init_max.max(creq)
    return req.max(init_max) + pod.overhead
