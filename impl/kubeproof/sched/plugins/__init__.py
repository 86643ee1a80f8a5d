"""The default plugins of kube-scheduler v1.32, and the table of plugins by name.

`REGISTRY` maps a plugin name (as a KubeSchedulerConfiguration spells it) to
a factory ``(args, handle) -> plugin``.  A profile instantiates each plugin
it names once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from ..config import PluginArgs
from ..framework import Handle, Plugin
from .basic import (
    DefaultBinder,
    NodeName,
    NodePorts,
    NodeUnschedulable,
    PrioritySort,
    SchedulingGates,
    VolumeNoop,
)
from .default_preemption import DefaultPreemption
from .image_locality import ImageLocality
from .inter_pod_affinity import InterPodAffinity
from .node_affinity import NodeAffinity
from .node_resources import BalancedAllocation, Fit
from .pod_topology_spread import PodTopologySpread
from .taint_toleration import TaintToleration

__all__ = ["REGISTRY", "PluginFactory"]

PluginFactory = Callable[[PluginArgs | None, Handle], Plugin]


def _volume(name: str) -> PluginFactory:
    return lambda args, handle: VolumeNoop(name)


REGISTRY: Final[Mapping[str, PluginFactory]] = {
    "PrioritySort": PrioritySort,
    "SchedulingGates": SchedulingGates,
    "NodeUnschedulable": NodeUnschedulable,
    "NodeName": NodeName,
    "TaintToleration": TaintToleration,
    "NodeAffinity": NodeAffinity,
    "NodePorts": NodePorts,
    "NodeResourcesFit": Fit,
    "PodTopologySpread": PodTopologySpread,
    "InterPodAffinity": InterPodAffinity,
    "DefaultPreemption": DefaultPreemption,
    "NodeResourcesBalancedAllocation": BalancedAllocation,
    "ImageLocality": ImageLocality,
    "DefaultBinder": DefaultBinder,
    **{
        name: _volume(name)
        for name in (
            "VolumeRestrictions",
            "NodeVolumeLimits",
            "VolumeBinding",
            "VolumeZone",
            "EBSLimits",
            "GCEPDLimits",
            "AzureDiskLimits",
        )
    },
}
