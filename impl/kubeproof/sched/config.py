"""Scheduler profiles: a subset of `KubeSchedulerConfiguration` (kubescheduler.config.k8s.io/v1).

Theory of operation
-------------------
A configuration names one or more profiles; each profile says which plugins
run at which extension point, with which score weight and which arguments.
kube-scheduler (v1.32) resolves a profile in three steps, and so do we:

1. *Merge with the defaults* (`mergePlugins`).  The default profile enables
   every default plugin through ``multiPoint``.  For each extension point
   (and for multiPoint itself) the user's ``disabled`` names remove default
   plugins (``*`` removes them all), a user ``enabled`` entry naming a
   default plugin replaces it in place (keeping the default order), and other
   user entries are appended.
2. *Expand multiPoint* (`expandMultiPointPlugins`).  Every plugin enabled in
   multiPoint joins each extension point it implements, unless that point
   disables it or all (``*``); a plugin also enabled explicitly at the point
   keeps its explicit place.  Order per point: explicit entries that override
   multiPoint ones, then multiPoint entries, then the other explicit entries.
3. *Score weights* (`getScoreWeights`): the weight from the score point's
   entry if any, else from the multiPoint entry; 0 means 1.

Plugin arguments come from ``pluginConfig``; each plugin's args are parsed
into a frozen value here, with kube-scheduler's defaults and validation, so a
bad configuration is rejected before any pod is scheduled.

`ConfigError` carries a message naming the offending field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from attrs import field, frozen

from .model import DEFAULT_SCHEDULER_NAME, NodeAffinity, TopologySpreadConstraint

__all__ = [
    "DEFAULT_MULTIPOINT",
    "DEFAULT_WEIGHTS",
    "EXTENSION_POINTS",
    "BalancedAllocationArgs",
    "ConfigError",
    "DefaultPreemptionArgs",
    "InterPodAffinityArgs",
    "NodeAffinityArgs",
    "NodeResourcesFitArgs",
    "PluginEntry",
    "PluginSet",
    "PodTopologySpreadArgs",
    "Profile",
    "ResourceSpec",
    "SchedulerConfig",
    "ScoringStrategy",
    "UtilizationShapePoint",
]


class ConfigError(ValueError):
    """A KubeSchedulerConfiguration that kube-scheduler would refuse."""


EXTENSION_POINTS: Final = (
    "preEnqueue",
    "queueSort",
    "preFilter",
    "filter",
    "postFilter",
    "preScore",
    "score",
    "reserve",
    "permit",
    "preBind",
    "bind",
    "postBind",
)

# pkg/scheduler/apis/config/v1/default_plugins.go (v1.32): the multiPoint
# list, in order, with the weights of the score plugins.  The volume plugins
# are listed because a configuration may name them; this package does not
# model volumes, so they accept every pod (see plugins/volumes.py).
DEFAULT_MULTIPOINT: Final[tuple[tuple[str, int], ...]] = (
    ("SchedulingGates", 0),
    ("PrioritySort", 0),
    ("NodeUnschedulable", 0),
    ("NodeName", 0),
    ("TaintToleration", 3),
    ("NodeAffinity", 2),
    ("NodePorts", 0),
    ("NodeResourcesFit", 1),
    ("VolumeRestrictions", 0),
    ("NodeVolumeLimits", 0),
    ("VolumeBinding", 0),
    ("VolumeZone", 0),
    ("PodTopologySpread", 2),
    ("InterPodAffinity", 2),
    ("DefaultPreemption", 0),
    ("NodeResourcesBalancedAllocation", 1),
    ("ImageLocality", 1),
    ("DefaultBinder", 0),
)
DEFAULT_WEIGHTS: Final = {name: w for name, w in DEFAULT_MULTIPOINT if w}


# --------------------------------------------------------------------------- plugin args


@frozen
class ResourceSpec:
    name: str
    weight: int = 1


@frozen
class UtilizationShapePoint:
    utilization: int
    score: int


_DEFAULT_RESOURCES: Final = (ResourceSpec("cpu", 1), ResourceSpec("memory", 1))


@frozen
class ScoringStrategy:
    type: str = "LeastAllocated"  # LeastAllocated | MostAllocated | RequestedToCapacityRatio
    resources: tuple[ResourceSpec, ...] = _DEFAULT_RESOURCES
    shape: tuple[UtilizationShapePoint, ...] = ()


@frozen
class NodeResourcesFitArgs:
    ignored_resources: frozenset[str] = frozenset()
    ignored_resource_groups: frozenset[str] = frozenset()
    scoring_strategy: ScoringStrategy = field(factory=ScoringStrategy)


@frozen
class BalancedAllocationArgs:
    resources: tuple[ResourceSpec, ...] = _DEFAULT_RESOURCES


@frozen
class InterPodAffinityArgs:
    hard_pod_affinity_weight: int = 1
    ignore_preferred_terms_of_existing_pods: bool = False


@frozen
class PodTopologySpreadArgs:
    default_constraints: tuple[TopologySpreadConstraint, ...] = ()
    defaulting_type: str = "System"  # System | List


@frozen
class DefaultPreemptionArgs:
    min_candidate_nodes_percentage: int = 10
    min_candidate_nodes_absolute: int = 100


@frozen
class NodeAffinityArgs:
    added_affinity: NodeAffinity | None = None


PluginArgs = (
    NodeResourcesFitArgs
    | BalancedAllocationArgs
    | InterPodAffinityArgs
    | PodTopologySpreadArgs
    | DefaultPreemptionArgs
    | NodeAffinityArgs
)

_DEFAULT_ARGS: Final[Mapping[str, PluginArgs]] = {
    "NodeResourcesFit": NodeResourcesFitArgs(),
    "NodeResourcesBalancedAllocation": BalancedAllocationArgs(),
    "InterPodAffinity": InterPodAffinityArgs(),
    "PodTopologySpread": PodTopologySpreadArgs(),
    "DefaultPreemption": DefaultPreemptionArgs(),
    "NodeAffinity": NodeAffinityArgs(),
}


# --------------------------------------------------------------------------- profiles


@frozen
class PluginEntry:
    name: str
    weight: int = 0


@frozen
class PluginSet:
    enabled: tuple[PluginEntry, ...] = ()
    disabled: tuple[str, ...] = ()


@frozen
class Profile:
    """One resolved profile: for each extension point, the plugin names in order."""

    scheduler_name: str = DEFAULT_SCHEDULER_NAME
    points: Mapping[str, tuple[str, ...]] = field(factory=dict)
    weights: Mapping[str, int] = field(factory=dict)
    args: Mapping[str, PluginArgs] = field(factory=lambda: dict(_DEFAULT_ARGS))
    percentage_of_nodes_to_score: int | None = None

    def plugins_at(self, point: str) -> tuple[str, ...]:
        return self.points.get(point, ())

    def arg(self, name: str) -> PluginArgs | None:
        return self.args.get(name)


@frozen
class SchedulerConfig:
    profiles: tuple[Profile, ...]
    percentage_of_nodes_to_score: int = 0
    """0 means kube-scheduler's adaptive percentage (`50 - nodes/125`, at least 5)."""

    def profile(self, scheduler_name: str) -> Profile | None:
        for p in self.profiles:
            if p.scheduler_name == scheduler_name:
                return p
        return None

    @staticmethod
    def default() -> SchedulerConfig:
        return SchedulerConfig(profiles=(resolve_profile(DEFAULT_SCHEDULER_NAME, {}, ()),))


# --------------------------------------------------------------------------- resolution


# Which extension points each known plugin implements (the reflection check
# in expandMultiPointPlugins).  PreFilter/PreScore are listed where the
# plugin has them in v1.32.
PLUGIN_POINTS: Final[Mapping[str, frozenset[str]]] = {
    "SchedulingGates": frozenset({"preEnqueue"}),
    "PrioritySort": frozenset({"queueSort"}),
    "NodeUnschedulable": frozenset({"filter"}),
    "NodeName": frozenset({"filter"}),
    "TaintToleration": frozenset({"filter", "preScore", "score"}),
    "NodeAffinity": frozenset({"preFilter", "filter", "preScore", "score"}),
    "NodePorts": frozenset({"preFilter", "filter"}),
    "NodeResourcesFit": frozenset({"preFilter", "filter", "preScore", "score"}),
    "VolumeRestrictions": frozenset({"preFilter", "filter"}),
    "NodeVolumeLimits": frozenset({"filter"}),
    "VolumeBinding": frozenset({"preFilter", "filter", "reserve", "preBind", "preScore", "score"}),
    "VolumeZone": frozenset({"preFilter", "filter"}),
    "EBSLimits": frozenset({"filter"}),
    "GCEPDLimits": frozenset({"filter"}),
    "AzureDiskLimits": frozenset({"filter"}),
    "PodTopologySpread": frozenset({"preFilter", "filter", "preScore", "score"}),
    "InterPodAffinity": frozenset({"preFilter", "filter", "preScore", "score"}),
    "DefaultPreemption": frozenset({"postFilter"}),
    "NodeResourcesBalancedAllocation": frozenset({"preScore", "score"}),
    "ImageLocality": frozenset({"score"}),
    "DefaultBinder": frozenset({"bind"}),
}


def _merge_set(default: PluginSet, custom: PluginSet) -> PluginSet:
    # mergePluginSet: disabled defaults drop out, a re-configured default is
    # replaced in place, other custom entries are appended.
    disabled = set(custom.disabled) | set(default.disabled)
    custom_index = {e.name: i for i, e in enumerate(custom.enabled)}
    replaced: set[int] = set()
    enabled: list[PluginEntry] = []
    if "*" not in disabled:
        for entry in default.enabled:
            if entry.name in disabled:
                continue
            if entry.name in custom_index:
                replaced.add(custom_index[entry.name])
                entry = custom.enabled[custom_index[entry.name]]
            enabled.append(entry)
    enabled.extend(e for i, e in enumerate(custom.enabled) if i not in replaced)
    return PluginSet(tuple(enabled), (*custom.disabled, *default.disabled))


def resolve_profile(
    scheduler_name: str,
    custom: Mapping[str, PluginSet],
    plugin_config: Sequence[tuple[str, PluginArgs]],
    percentage_of_nodes_to_score: int | None = None,
) -> Profile:
    """Resolve one profile exactly as kube-scheduler v1.32 does (see module doc)."""
    defaults = {"multiPoint": PluginSet(tuple(PluginEntry(n, w) for n, w in DEFAULT_MULTIPOINT))}
    merged = {
        point: _merge_set(defaults.get(point, PluginSet()), custom.get(point, PluginSet()))
        for point in ("multiPoint", *EXTENSION_POINTS)
    }
    for point, pset in merged.items():
        for entry in pset.enabled:
            if entry.name not in PLUGIN_POINTS:
                raise ConfigError(
                    f"profile {scheduler_name!r}: plugin {entry.name!r} does not exist"
                )
            if point != "multiPoint" and point not in PLUGIN_POINTS[entry.name]:
                raise ConfigError(
                    f"profile {scheduler_name!r}: plugin {entry.name!r} does not extend {point}"
                )
    points: dict[str, tuple[str, ...]] = {}
    multi = merged["multiPoint"].enabled
    for point in EXTENSION_POINTS:
        pset = merged[point]
        explicit = [e.name for e in pset.enabled]
        if len(set(explicit)) != len(explicit):
            raise ConfigError(f"profile {scheduler_name!r}: a plugin is enabled twice in {point}")
        if "*" in pset.disabled:
            points[point] = tuple(explicit)
            continue
        override: list[str] = []
        from_multi: list[str] = []
        for entry in multi:
            if point not in PLUGIN_POINTS[entry.name] or entry.name in pset.disabled:
                continue
            if entry.name in explicit:
                override.append(entry.name)
                continue
            if entry.name in from_multi:
                raise ConfigError(
                    f"profile {scheduler_name!r}: plugin {entry.name!r} already registered"
                    f" as {point}"
                )
            from_multi.append(entry.name)
        ordered = [n for n in explicit if n in override] + from_multi
        ordered += [n for n in explicit if n not in ordered]
        points[point] = tuple(ordered)
    weights: dict[str, int] = {}
    for entry in (*merged["score"].enabled, *multi):
        if "score" not in PLUGIN_POINTS[entry.name] or entry.name in weights:
            continue
        if entry.weight < 0:
            raise ConfigError(f"profile {scheduler_name!r}: plugin {entry.name!r} has weight < 0")
        weights[entry.name] = entry.weight or 1
    if len(points["queueSort"]) != 1:
        raise ConfigError(f"profile {scheduler_name!r}: exactly one queueSort plugin is needed")
    if not points["bind"]:
        raise ConfigError(f"profile {scheduler_name!r}: at least one bind plugin is needed")
    args: dict[str, PluginArgs] = dict(_DEFAULT_ARGS)
    seen: set[str] = set()
    for name, parsed in plugin_config:
        if name in seen:
            raise ConfigError(f"profile {scheduler_name!r}: pluginConfig repeats {name!r}")
        seen.add(name)
        args[name] = parsed
    if percentage_of_nodes_to_score is not None and not 0 <= percentage_of_nodes_to_score <= 100:
        raise ConfigError(
            f"profile {scheduler_name!r}: percentageOfNodesToScore must be in 0..100,"
            f" not {percentage_of_nodes_to_score}"
        )
    return Profile(scheduler_name, points, weights, args, percentage_of_nodes_to_score)


# --------------------------------------------------------------------------- parsing


def _mapping(raw: object, where: str) -> Mapping[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
    return raw


def _list(raw: object, where: str) -> Sequence[Any]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: expected a list, got {type(raw).__name__}")
    return raw


def _int(raw: object, where: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise ConfigError(f"{where}: expected an integer, got {raw!r}")
    return raw


def _str(raw: object, where: str) -> str:
    if not isinstance(raw, str):
        raise ConfigError(f"{where}: expected a string, got {raw!r}")
    return raw


def _plugin_set(raw: object, where: str) -> PluginSet:
    m = _mapping(raw, where)
    enabled = []
    for i, e in enumerate(_list(m.get("enabled"), f"{where}.enabled")):
        em = _mapping(e, f"{where}.enabled[{i}]")
        name = _str(em.get("name"), f"{where}.enabled[{i}].name")
        weight = _int(em.get("weight", 0), f"{where}.enabled[{i}].weight")
        enabled.append(PluginEntry(name, weight))
    disabled = tuple(
        _str(_mapping(d, f"{where}.disabled[{i}]").get("name"), f"{where}.disabled[{i}].name")
        for i, d in enumerate(_list(m.get("disabled"), f"{where}.disabled"))
    )
    return PluginSet(tuple(enabled), disabled)


def _resources(raw: object, where: str) -> tuple[ResourceSpec, ...]:
    specs = []
    for i, r in enumerate(_list(raw, where)):
        rm = _mapping(r, f"{where}[{i}]")
        weight = _int(rm.get("weight", 0), f"{where}[{i}].weight") or 1
        if not 1 <= weight <= 100:
            raise ConfigError(f"{where}[{i}].weight: resource weight {weight} not in [1, 100]")
        specs.append(ResourceSpec(_str(rm.get("name"), f"{where}[{i}].name"), weight))
    return tuple(specs) or _DEFAULT_RESOURCES


def _fit_args(m: Mapping[str, Any], where: str) -> NodeResourcesFitArgs:
    ignored = frozenset(
        _str(x, f"{where}.ignoredResources") for x in _list(m.get("ignoredResources"), where)
    )
    groups = frozenset(
        _str(x, f"{where}.ignoredResourceGroups")
        for x in _list(m.get("ignoredResourceGroups"), where)
    )
    sm = _mapping(m.get("scoringStrategy"), f"{where}.scoringStrategy")
    kind = _str(sm.get("type", "LeastAllocated"), f"{where}.scoringStrategy.type")
    if kind not in ("LeastAllocated", "MostAllocated", "RequestedToCapacityRatio"):
        raise ConfigError(f"{where}.scoringStrategy.type: unsupported value {kind!r}")
    resources = _resources(sm.get("resources"), f"{where}.scoringStrategy.resources")
    shape: list[UtilizationShapePoint] = []
    if kind == "RequestedToCapacityRatio":
        rw = f"{where}.scoringStrategy.requestedToCapacityRatio.shape"
        rm = _mapping(sm.get("requestedToCapacityRatio"), rw)
        for i, p in enumerate(_list(rm.get("shape"), rw)):
            pm = _mapping(p, f"{rw}[{i}]")
            u = _int(pm.get("utilization", 0), f"{rw}[{i}].utilization")
            s = _int(pm.get("score", 0), f"{rw}[{i}].score")
            if not 0 <= u <= 100:
                raise ConfigError(f"{rw}[{i}].utilization: {u} not in [0, 100]")
            if not 0 <= s <= 10:
                raise ConfigError(f"{rw}[{i}].score: {s} not in [0, 10]")
            if shape and u <= shape[-1].utilization:
                raise ConfigError(
                    f"{rw}[{i}].utilization: values must be sorted in increasing order"
                )
            shape.append(UtilizationShapePoint(u, s))
        if not shape:
            raise ConfigError(f"{rw}: at least one point is required")
    return NodeResourcesFitArgs(ignored, groups, ScoringStrategy(kind, resources, tuple(shape)))


def _plugin_args(name: str, raw: object, where: str) -> PluginArgs:
    # Imported here: the loader depends on this module for config parsing.
    from .load import parse_node_affinity, parse_spread_constraints

    m = _mapping(raw, where)
    if name == "NodeResourcesFit":
        return _fit_args(m, where)
    if name == "NodeResourcesBalancedAllocation":
        return BalancedAllocationArgs(_resources(m.get("resources"), f"{where}.resources"))
    if name == "InterPodAffinity":
        w = _int(m.get("hardPodAffinityWeight", 1), f"{where}.hardPodAffinityWeight")
        if not 0 <= w <= 100:
            raise ConfigError(f"{where}.hardPodAffinityWeight: {w} not in [0, 100]")
        ignore = m.get("ignorePreferredTermsOfExistingPods", False)
        if not isinstance(ignore, bool):
            raise ConfigError(f"{where}.ignorePreferredTermsOfExistingPods: expected a boolean")
        return InterPodAffinityArgs(w, ignore)
    if name == "PodTopologySpread":
        dtype = _str(m.get("defaultingType", "System"), f"{where}.defaultingType")
        if dtype not in ("System", "List"):
            raise ConfigError(f"{where}.defaultingType: unsupported value {dtype!r}")
        try:
            constraints = parse_spread_constraints(
                m.get("defaultConstraints"), f"{where}.defaultConstraints", allow_selector=False
            )
        except ValueError as e:
            raise ConfigError(str(e)) from None
        if dtype == "System" and constraints:
            raise ConfigError(
                f"{where}.defaultConstraints: must be empty when defaultingType is System"
            )
        return PodTopologySpreadArgs(constraints, dtype)
    if name == "DefaultPreemption":
        pct = _int(m.get("minCandidateNodesPercentage", 10), f"{where}.minCandidateNodesPercentage")
        ab = _int(m.get("minCandidateNodesAbsolute", 100), f"{where}.minCandidateNodesAbsolute")
        if not 0 <= pct <= 100 or ab < 0 or (pct == 0 and ab == 0):
            raise ConfigError(f"{where}: minCandidateNodes values out of range")
        return DefaultPreemptionArgs(pct, ab)
    if name == "NodeAffinity":
        try:
            added = parse_node_affinity(m.get("addedAffinity"), f"{where}.addedAffinity")
        except ValueError as e:
            raise ConfigError(str(e)) from None
        return NodeAffinityArgs(added)
    raise ConfigError(f"{where}: plugin {name!r} takes no arguments here")


def parse_config(doc: Mapping[str, Any]) -> SchedulerConfig:
    """Parse a KubeSchedulerConfiguration document (already decoded from YAML)."""
    api = doc.get("apiVersion")
    if api != "kubescheduler.config.k8s.io/v1":
        raise ConfigError(
            f"KubeSchedulerConfiguration: apiVersion {api!r} is not supported"
            " (only kubescheduler.config.k8s.io/v1)"
        )
    pct = _int(doc.get("percentageOfNodesToScore", 0) or 0, "percentageOfNodesToScore")
    if not 0 <= pct <= 100:
        raise ConfigError(f"percentageOfNodesToScore: {pct} not in [0, 100]")
    profiles = []
    names: set[str] = set()
    raw_profiles = _list(doc.get("profiles"), "profiles") or [{}]
    for i, raw in enumerate(raw_profiles):
        where = f"profiles[{i}]"
        pm = _mapping(raw, where)
        name = _str(pm.get("schedulerName", DEFAULT_SCHEDULER_NAME), f"{where}.schedulerName")
        if name in names:
            raise ConfigError(f"{where}.schedulerName: duplicate profile {name!r}")
        names.add(name)
        plugins = _mapping(pm.get("plugins"), f"{where}.plugins")
        custom = {}
        for point, pset in plugins.items():
            if point not in ("multiPoint", *EXTENSION_POINTS):
                raise ConfigError(f"{where}.plugins.{point}: unknown extension point")
            custom[point] = _plugin_set(pset, f"{where}.plugins.{point}")
        plugin_config = []
        for j, pc in enumerate(_list(pm.get("pluginConfig"), f"{where}.pluginConfig")):
            pcm = _mapping(pc, f"{where}.pluginConfig[{j}]")
            pname = _str(pcm.get("name"), f"{where}.pluginConfig[{j}].name")
            plugin_config.append(
                (pname, _plugin_args(pname, pcm.get("args"), f"{where}.pluginConfig[{j}].args"))
            )
        ppct = pm.get("percentageOfNodesToScore")
        profiles.append(
            resolve_profile(
                name,
                custom,
                plugin_config,
                None if ppct is None else _int(ppct, f"{where}.percentageOfNodesToScore"),
            )
        )
    sorts = {p.plugins_at("queueSort") for p in profiles}
    if len(sorts) > 1:
        raise ConfigError("profiles: all profiles must use the same queueSort plugin")
    return SchedulerConfig(tuple(profiles), pct)
