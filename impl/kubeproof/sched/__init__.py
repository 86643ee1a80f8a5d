"""kubeproof.sched: kube-scheduler (v1.32) as a pure, deterministic core.

The model (`model`), quantities (`quantity`), input parsing (`load`),
profiles (`config`), the plugin framework (`framework`), the default plugins
(`plugins`), the greedy scheduling cycle (`scheduler`) and the explanations
(`explain`).  Import the names below from here.
"""

from .config import ConfigError, Profile, SchedulerConfig
from .load import Cluster, InputError, PodDisruptionBudget, load_cluster, load_objects
from .model import (
    KUBE_VERSION,
    Affinity,
    Container,
    ContainerImage,
    ContainerPort,
    FrozenMap,
    LabelSelector,
    LabelSelectorRequirement,
    Node,
    NodeAffinity,
    NodeSelector,
    NodeSelectorRequirement,
    NodeSelectorTerm,
    Pod,
    PodAffinity,
    PodAffinityTerm,
    PodAntiAffinity,
    PreferredSchedulingTerm,
    Resources,
    Taint,
    Toleration,
    TopologySpreadConstraint,
    WeightedPodAffinityTerm,
)
from .quantity import QuantityError, milli_value, parse_quantity, value
from .scheduler import (
    Explanation,
    NodeExplanation,
    Preemption,
    Scheduler,
    ScheduleResult,
    schedule,
)

__all__ = [
    "KUBE_VERSION",
    "Affinity",
    "Cluster",
    "ConfigError",
    "Container",
    "ContainerImage",
    "ContainerPort",
    "Explanation",
    "FrozenMap",
    "InputError",
    "LabelSelector",
    "LabelSelectorRequirement",
    "Node",
    "NodeAffinity",
    "NodeExplanation",
    "NodeSelector",
    "NodeSelectorRequirement",
    "NodeSelectorTerm",
    "Pod",
    "PodAffinity",
    "PodAffinityTerm",
    "PodAntiAffinity",
    "PodDisruptionBudget",
    "Preemption",
    "PreferredSchedulingTerm",
    "Profile",
    "QuantityError",
    "Resources",
    "ScheduleResult",
    "Scheduler",
    "SchedulerConfig",
    "Taint",
    "Toleration",
    "TopologySpreadConstraint",
    "WeightedPodAffinityTerm",
    "load_cluster",
    "load_objects",
    "milli_value",
    "parse_quantity",
    "schedule",
    "value",
]
