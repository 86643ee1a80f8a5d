"""The small default plugins (kube-scheduler v1.32).

Theory of operation
-------------------
=====================  ==============================================================
PrioritySort           queue order: higher ``priority`` first, then earlier arrival
SchedulingGates        PreEnqueue: a pod with scheduling gates is not queued
                       ("Scheduling is blocked due to non-empty scheduling gates")
NodeUnschedulable      Filter: a node with ``spec.unschedulable`` is rejected
                       (unresolvable, "node(s) were unschedulable") unless the pod
                       tolerates the taint ``node.kubernetes.io/unschedulable:NoSchedule``
NodeName               Filter: ``spec.nodeName``, if set, must name the node
                       (unresolvable, "node(s) didn't match the requested node name")
NodePorts              PreFilter (Skip when the pod asks for no host port), Filter:
                       a wanted (hostIP, protocol, hostPort) conflicts with a used one
                       when the protocol and port are equal and either IP is 0.0.0.0
                       or the IPs are equal ("node(s) didn't have free ports for the
                       requested pod ports", Unschedulable)
DefaultBinder          Bind: always succeeds (the caller records the binding)
Volume plugins         VolumeRestrictions, NodeVolumeLimits, VolumeBinding, VolumeZone,
                       EBSLimits, GCEPDLimits, AzureDiskLimits: volumes are not
                       modelled, so they Skip every pod
=====================  ==============================================================
"""

from __future__ import annotations

from collections.abc import Sequence

from ..config import PluginArgs
from ..framework import (
    SKIP,
    CycleState,
    Handle,
    NodeInfo,
    PodInfo,
    PreFilterResult,
    Status,
    unresolvable,
    unschedulable,
)
from ..model import Taint
from ..selectors import tolerates_any

__all__ = [
    "DefaultBinder",
    "NodeName",
    "NodePorts",
    "NodeUnschedulable",
    "PrioritySort",
    "SchedulingGates",
    "VolumeNoop",
]

ERR_UNSCHEDULABLE = "node(s) were unschedulable"
ERR_NODE_NAME = "node(s) didn't match the requested node name"
ERR_NODE_PORTS = "node(s) didn't have free ports for the requested pod ports"
ERR_GATED = "Scheduling is blocked due to non-empty scheduling gates"
_ST_UNSCHEDULABLE = unresolvable(ERR_UNSCHEDULABLE).with_plugin("NodeUnschedulable")
_ST_NODE_NAME = unresolvable(ERR_NODE_NAME).with_plugin("NodeName")
_ST_PORTS = unschedulable(ERR_NODE_PORTS).with_plugin("NodePorts")
_UNSCHEDULABLE_TAINT = Taint("node.kubernetes.io/unschedulable", "NoSchedule")


class PrioritySort:
    name = "PrioritySort"

    def __init__(self, args: PluginArgs | None, handle: Handle) -> None:
        pass

    @staticmethod
    def sort_key(priority: int, arrival: int) -> tuple[int, int]:
        """Smaller sorts first: higher priority, then earlier arrival (kube's Timestamp)."""
        return (-priority, arrival)


class SchedulingGates:
    name = "SchedulingGates"

    def __init__(self, args: PluginArgs | None, handle: Handle) -> None:
        pass

    def pre_enqueue(self, pod: PodInfo) -> Status | None:
        if pod.pod.scheduling_gates:
            return unresolvable(ERR_GATED)
        return None


class NodeUnschedulable:
    name = "NodeUnschedulable"

    def __init__(self, args: PluginArgs | None, handle: Handle) -> None:
        self.handle = handle

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        if not node.unschedulable:
            return None
        if tolerates_any(pod.pod.tolerations, _UNSCHEDULABLE_TAINT):
            return None
        return _ST_UNSCHEDULABLE

    def filter_many(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]
    ) -> dict[int, Status]:
        out: dict[int, Status] = {}
        if not self.handle.snapshot.any_unschedulable:
            return out
        for i, ni in enumerate(nodes):
            if ni.unschedulable:
                st = self.filter(state, pod, ni)
                if st is not None:
                    out[i] = st
        return out


class NodeName:
    name = "NodeName"

    def __init__(self, args: PluginArgs | None, handle: Handle) -> None:
        pass

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        want = pod.pod.node_name
        if not want or want == node.name:
            return None
        return _ST_NODE_NAME

    def filter_many(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]
    ) -> dict[int, Status]:
        if not pod.pod.node_name:
            return {}
        return {
            i: st for i, ni in enumerate(nodes) if (st := self.filter(state, pod, ni)) is not None
        }


def port_conflict(used: dict[str, set[tuple[str, int]]], ip: str, proto: str, port: int) -> bool:
    """`HostPortInfo.CheckConflict`."""
    if port <= 0:
        return False
    pp = (proto, port)
    if ip == "0.0.0.0":
        return any(pp in s for s in used.values())
    return pp in used.get("0.0.0.0", ()) or pp in used.get(ip, ())


class NodePorts:
    name = "NodePorts"

    def __init__(self, args: PluginArgs | None, handle: Handle) -> None:
        pass

    def pre_filter(
        self, state: CycleState, pod: PodInfo
    ) -> tuple[PreFilterResult | None, Status | None]:
        return None, (SKIP if not pod.ports else None)

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        used = node.used_ports
        if used and any(port_conflict(used, ip, proto, port) for ip, proto, port in pod.ports):
            return _ST_PORTS
        return None


class DefaultBinder:
    name = "DefaultBinder"

    def __init__(self, args: PluginArgs | None, handle: Handle) -> None:
        pass

    def bind(self, state: CycleState, pod: PodInfo, node_name: str) -> Status | None:
        return None


class VolumeNoop:
    """A volume plugin: volumes are not modelled, so it has nothing to say."""

    def __init__(self, name: str) -> None:
        self.name = name

    def pre_filter(
        self, state: CycleState, pod: PodInfo
    ) -> tuple[PreFilterResult | None, Status | None]:
        return None, SKIP

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        return None

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Status:
        return SKIP

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        return 0

    def reserve(self, state: CycleState, pod: PodInfo, node_name: str) -> Status | None:
        return None

    def unreserve(self, state: CycleState, pod: PodInfo, node_name: str) -> None:
        return None
