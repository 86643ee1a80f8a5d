"""Reading nodes, pods and a scheduler configuration from Kubernetes YAML or JSON.

Theory of operation
-------------------
The input is text: one or more YAML documents (JSON is YAML), each a
Kubernetes object or a ``List`` of objects.  Parsing is pure (text in, values
out).  Each object becomes a value of `model` or `config`:

=========================  ==================================================
kind                        becomes
=========================  ==================================================
Node                        `Node` (allocatable defaults to capacity)
Pod                         `Pod` (pending, or running if spec.nodeName is set)
KubeSchedulerConfiguration  `SchedulerConfig` (at most one)
Namespace                   labels for `namespaceSelector` (`Pod.namespace_labels`)
Service, ReplicaSet,        selectors for the default topology spread
StatefulSet,                (`Pod.default_spread_selector`, as `DefaultSelector`:
ReplicationController       Services selecting the pod, and its controller)
PriorityClass               `Pod.priority` for ``priorityClassName`` (admission)
PodDisruptionBudget         `PodDisruptionBudget`, read by preemption
anything else               ignored
=========================  ==================================================

What the API server would do before the scheduler sees an object is done
here: a container's requests default to its limits, a pod's priority comes
from its PriorityClass, allocatable defaults to capacity.  Everything is
validated; an invalid object raises `InputError` whose message names the
object (``Pod default/web-0``) and the field path
(``spec.containers[0].resources.requests.cpu``).
"""

from __future__ import annotations

import calendar
import datetime
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

import attrs
import yaml
from attrs import frozen

from .config import ConfigError, SchedulerConfig, parse_config
from .model import (
    LABEL_OPERATORS,
    NODE_SELECTOR_OPERATORS,
    TAINT_EFFECTS,
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
from .quantity import QuantityError, resource_value

__all__ = [
    "Cluster",
    "InputError",
    "PodDisruptionBudget",
    "load_cluster",
    "load_objects",
    "parse_label_selector",
    "parse_node",
    "parse_node_affinity",
    "parse_pod",
    "parse_spread_constraints",
]

SYSTEM_PRIORITY_CLASSES: Final = {
    "system-cluster-critical": 2000000000,
    "system-node-critical": 2000001000,
}


class InputError(ValueError):
    """Input that is not a valid set of Kubernetes objects; the message says where."""


@frozen
class PodDisruptionBudget:
    namespace: str
    name: str
    selector: LabelSelector
    disruptions_allowed: int


@frozen
class Cluster:
    """Everything read from the input."""

    nodes: tuple[Node, ...]
    pods: tuple[Pod, ...]
    config: SchedulerConfig
    pdbs: tuple[PodDisruptionBudget, ...] = ()


# --------------------------------------------------------------------------- helpers


class _Ctx:
    """Names the object being parsed, so that every error says where it is."""

    def __init__(self, obj: str) -> None:
        self.obj = obj

    def fail(self, path: str, msg: str) -> InputError:
        return InputError(f"{self.obj}: {path}: {msg}" if path else f"{self.obj}: {msg}")

    def mapping(self, raw: object, path: str) -> Mapping[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, Mapping):
            raise self.fail(path, f"expected a mapping, got {_kind(raw)}")
        return raw

    def seq(self, raw: object, path: str) -> Sequence[Any]:
        if raw is None:
            return ()
        if not isinstance(raw, list):
            raise self.fail(path, f"expected a list, got {_kind(raw)}")
        return raw

    def text(self, raw: object, path: str, default: str | None = None) -> str:
        if raw is None and default is not None:
            return default
        if not isinstance(raw, str):
            raise self.fail(path, f"expected a string, got {_kind(raw)}")
        return raw

    def integer(self, raw: object, path: str, default: int | None = None) -> int:
        if raw is None and default is not None:
            return default
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise self.fail(path, f"expected an integer, got {_kind(raw)}")
        return raw

    def flag(self, raw: object, path: str) -> bool:
        if raw is None:
            return False
        if not isinstance(raw, bool):
            raise self.fail(path, f"expected true or false, got {_kind(raw)}")
        return raw

    def str_map(self, raw: object, path: str) -> FrozenMap[str]:
        m = self.mapping(raw, path)
        out = {}
        for k, v in m.items():
            if not isinstance(k, str):
                raise self.fail(path, f"key {k!r} is not a string")
            if not isinstance(v, str):
                # Kubernetes label values are strings; YAML `zone: 1` is an error there too.
                raise self.fail(f"{path}.{k}", f"expected a string, got {_kind(v)}")
            out[k] = v
        return FrozenMap(out)

    def resources(self, raw: object, path: str) -> tuple[Resources, frozenset[str]]:
        m = self.mapping(raw, path)
        amounts = {}
        for name, q in m.items():
            if not isinstance(name, str) or not name:
                raise self.fail(path, f"resource name {name!r} is not a string")
            try:
                amount = resource_value(name, q)
            except QuantityError as e:
                raise self.fail(f"{path}.{name}", str(e)) from None
            if amount < 0:
                raise self.fail(f"{path}.{name}", "must be greater than or equal to 0")
            amounts[name] = amount
        return Resources.from_mapping(amounts), frozenset(amounts)


def _kind(raw: object) -> str:
    if raw is None:
        return "null"
    if isinstance(raw, bool):
        return "a boolean"
    if isinstance(raw, (int, float)):
        return f"the number {raw!r}"
    if isinstance(raw, str):
        return f"the string {raw!r}"
    if isinstance(raw, list):
        return "a list"
    if isinstance(raw, Mapping):
        return "a mapping"
    return type(raw).__name__


_RFC3339 = re.compile(r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(\.\d+)?([Zz]|[+-]\d\d:\d\d)")


def _timestamp(c: _Ctx, raw: object, path: str) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, datetime.datetime):
        # PyYAML turns an unquoted timestamp into a datetime.
        return calendar.timegm(raw.utctimetuple())
    m = _RFC3339.fullmatch(c.text(raw, path))
    if m is None:
        raise c.fail(path, f"{raw!r} is not an RFC 3339 time")
    y, mo, d, h, mi, s = (int(x) for x in m.groups()[:6])
    t = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))
    tz = m.group(8)
    if tz not in ("Z", "z"):
        sign = 1 if tz[0] == "+" else -1
        t -= sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60)
    return t


# --------------------------------------------------------------------------- selectors


def _label_selector(c: _Ctx, raw: object, path: str) -> LabelSelector | None:
    if raw is None:
        return None
    m = c.mapping(raw, path)
    exprs = []
    for i, e in enumerate(c.seq(m.get("matchExpressions"), f"{path}.matchExpressions")):
        ep = f"{path}.matchExpressions[{i}]"
        em = c.mapping(e, ep)
        key = c.text(em.get("key"), f"{ep}.key")
        op = c.text(em.get("operator"), f"{ep}.operator")
        if op not in LABEL_OPERATORS:
            raise c.fail(f"{ep}.operator", f"{op!r} is not a valid label selector operator")
        values = tuple(
            c.text(v, f"{ep}.values[{j}]") for j, v in enumerate(c.seq(em.get("values"), ep))
        )
        if op in ("In", "NotIn") and not values:
            raise c.fail(f"{ep}.values", f"must be non-empty for operator {op}")
        if op in ("Exists", "DoesNotExist") and values:
            raise c.fail(f"{ep}.values", f"must be empty for operator {op}")
        exprs.append(LabelSelectorRequirement(key, op, values))
    return LabelSelector(c.str_map(m.get("matchLabels"), f"{path}.matchLabels"), tuple(exprs))


def parse_label_selector(raw: object, where: str = "selector") -> LabelSelector | None:
    return _label_selector(_Ctx(where), raw, "")


def _node_selector_reqs(
    c: _Ctx, raw: object, path: str, fields: bool
) -> tuple[NodeSelectorRequirement, ...]:
    out = []
    for i, e in enumerate(c.seq(raw, path)):
        ep = f"{path}[{i}]"
        em = c.mapping(e, ep)
        key = c.text(em.get("key"), f"{ep}.key")
        op = c.text(em.get("operator"), f"{ep}.operator")
        values = tuple(
            c.text(v, f"{ep}.values[{j}]") for j, v in enumerate(c.seq(em.get("values"), ep))
        )
        if fields:
            if key != "metadata.name":
                raise c.fail(f"{ep}.key", f"{key!r} is not a supported field selector")
            if op not in ("In", "NotIn") or len(values) != 1:
                raise c.fail(ep, "matchFields supports only In/NotIn with exactly one value")
        elif op not in NODE_SELECTOR_OPERATORS:
            raise c.fail(f"{ep}.operator", f"{op!r} is not a valid node selector operator")
        if op in ("In", "NotIn") and not values:
            raise c.fail(f"{ep}.values", f"must be non-empty for operator {op}")
        if op in ("Exists", "DoesNotExist") and values:
            raise c.fail(f"{ep}.values", f"must be empty for operator {op}")
        if op in ("Gt", "Lt"):
            if len(values) != 1:
                raise c.fail(f"{ep}.values", f"must have one value for operator {op}")
            try:
                int(values[0])
            except ValueError:
                raise c.fail(f"{ep}.values[0]", f"{values[0]!r} is not an integer") from None
        out.append(NodeSelectorRequirement(key, op, values))
    return tuple(out)


def _node_selector_term(c: _Ctx, raw: object, path: str) -> NodeSelectorTerm:
    m = c.mapping(raw, path)
    return NodeSelectorTerm(
        _node_selector_reqs(c, m.get("matchExpressions"), f"{path}.matchExpressions", False),
        _node_selector_reqs(c, m.get("matchFields"), f"{path}.matchFields", True),
    )


def _node_affinity(c: _Ctx, raw: object, path: str) -> NodeAffinity | None:
    if raw is None:
        return None
    m = c.mapping(raw, path)
    required = None
    rp = f"{path}.requiredDuringSchedulingIgnoredDuringExecution"
    if m.get("requiredDuringSchedulingIgnoredDuringExecution") is not None:
        rm = c.mapping(m["requiredDuringSchedulingIgnoredDuringExecution"], rp)
        terms = tuple(
            _node_selector_term(c, t, f"{rp}.nodeSelectorTerms[{i}]")
            for i, t in enumerate(c.seq(rm.get("nodeSelectorTerms"), f"{rp}.nodeSelectorTerms"))
        )
        if not terms:
            raise c.fail(f"{rp}.nodeSelectorTerms", "must have at least one term")
        required = NodeSelector(terms)
    preferred = []
    pp = f"{path}.preferredDuringSchedulingIgnoredDuringExecution"
    for i, t in enumerate(c.seq(m.get("preferredDuringSchedulingIgnoredDuringExecution"), pp)):
        tm = c.mapping(t, f"{pp}[{i}]")
        w = c.integer(tm.get("weight"), f"{pp}[{i}].weight")
        if not 1 <= w <= 100:
            raise c.fail(f"{pp}[{i}].weight", f"{w} must be in the range 1-100")
        preferred.append(
            PreferredSchedulingTerm(
                w, _node_selector_term(c, tm.get("preference"), f"{pp}[{i}].preference")
            )
        )
    return NodeAffinity(required, tuple(preferred))


def parse_node_affinity(raw: object, where: str = "nodeAffinity") -> NodeAffinity | None:
    return _node_affinity(_Ctx(where), raw, "")


def _pod_affinity_term(c: _Ctx, raw: object, path: str) -> PodAffinityTerm:
    m = c.mapping(raw, path)
    key = c.text(m.get("topologyKey"), f"{path}.topologyKey")
    if not key:
        raise c.fail(f"{path}.topologyKey", "can not be empty")
    return PodAffinityTerm(
        key,
        _label_selector(c, m.get("labelSelector"), f"{path}.labelSelector"),
        tuple(
            c.text(n, f"{path}.namespaces[{i}]")
            for i, n in enumerate(c.seq(m.get("namespaces"), f"{path}.namespaces"))
        ),
        _label_selector(c, m.get("namespaceSelector"), f"{path}.namespaceSelector"),
        tuple(c.text(k, f"{path}.matchLabelKeys") for k in c.seq(m.get("matchLabelKeys"), path)),
        tuple(
            c.text(k, f"{path}.mismatchLabelKeys") for k in c.seq(m.get("mismatchLabelKeys"), path)
        ),
    )


def _pod_affinity_terms(
    c: _Ctx, m: Mapping[str, Any], path: str
) -> tuple[tuple[PodAffinityTerm, ...], tuple[WeightedPodAffinityTerm, ...]]:
    rp = f"{path}.requiredDuringSchedulingIgnoredDuringExecution"
    required = tuple(
        _pod_affinity_term(c, t, f"{rp}[{i}]")
        for i, t in enumerate(c.seq(m.get("requiredDuringSchedulingIgnoredDuringExecution"), rp))
    )
    pp = f"{path}.preferredDuringSchedulingIgnoredDuringExecution"
    preferred = []
    for i, t in enumerate(c.seq(m.get("preferredDuringSchedulingIgnoredDuringExecution"), pp)):
        tm = c.mapping(t, f"{pp}[{i}]")
        w = c.integer(tm.get("weight"), f"{pp}[{i}].weight")
        if not 1 <= w <= 100:
            raise c.fail(f"{pp}[{i}].weight", f"{w} must be in the range 1-100")
        preferred.append(
            WeightedPodAffinityTerm(
                w, _pod_affinity_term(c, tm.get("podAffinityTerm"), f"{pp}[{i}].podAffinityTerm")
            )
        )
    return required, tuple(preferred)


def _affinity(c: _Ctx, raw: object, path: str) -> Affinity | None:
    if raw is None:
        return None
    m = c.mapping(raw, path)
    pod_aff = pod_anti = None
    if m.get("podAffinity") is not None:
        req, pref = _pod_affinity_terms(
            c, c.mapping(m["podAffinity"], f"{path}.podAffinity"), f"{path}.podAffinity"
        )
        pod_aff = PodAffinity(req, pref)
    if m.get("podAntiAffinity") is not None:
        req, pref = _pod_affinity_terms(
            c, c.mapping(m["podAntiAffinity"], f"{path}.podAntiAffinity"), f"{path}.podAntiAffinity"
        )
        pod_anti = PodAntiAffinity(req, pref)
    return Affinity(
        _node_affinity(c, m.get("nodeAffinity"), f"{path}.nodeAffinity"), pod_aff, pod_anti
    )


def _spread_constraints(
    c: _Ctx, raw: object, path: str, allow_selector: bool = True
) -> tuple[TopologySpreadConstraint, ...]:
    out = []
    for i, t in enumerate(c.seq(raw, path)):
        tp = f"{path}[{i}]"
        m = c.mapping(t, tp)
        skew = c.integer(m.get("maxSkew"), f"{tp}.maxSkew")
        if skew <= 0:
            raise c.fail(f"{tp}.maxSkew", f"{skew} must be greater than zero")
        key = c.text(m.get("topologyKey"), f"{tp}.topologyKey")
        if not key:
            raise c.fail(f"{tp}.topologyKey", "can not be empty")
        when = c.text(m.get("whenUnsatisfiable"), f"{tp}.whenUnsatisfiable")
        if when not in ("DoNotSchedule", "ScheduleAnyway"):
            raise c.fail(f"{tp}.whenUnsatisfiable", f"unsupported value {when!r}")
        min_domains = None
        if m.get("minDomains") is not None:
            min_domains = c.integer(m["minDomains"], f"{tp}.minDomains")
            if min_domains <= 0:
                raise c.fail(f"{tp}.minDomains", f"{min_domains} must be greater than zero")
            if when != "DoNotSchedule":
                raise c.fail(
                    f"{tp}.minDomains", "can only be used with whenUnsatisfiable=DoNotSchedule"
                )
        policies = []
        for fname, default in (("nodeAffinityPolicy", "Honor"), ("nodeTaintsPolicy", "Ignore")):
            v = c.text(m.get(fname), f"{tp}.{fname}", default)
            if v not in ("Honor", "Ignore"):
                raise c.fail(f"{tp}.{fname}", f"unsupported value {v!r}")
            policies.append(v)
        selector = _label_selector(c, m.get("labelSelector"), f"{tp}.labelSelector")
        if not allow_selector and selector is not None:
            raise c.fail(f"{tp}.labelSelector", "must not be set in default constraints")
        keys = tuple(c.text(k, f"{tp}.matchLabelKeys") for k in c.seq(m.get("matchLabelKeys"), tp))
        out.append(
            TopologySpreadConstraint(
                skew, key, when, selector, min_domains, policies[0], policies[1], keys
            )
        )
    return tuple(out)


def parse_spread_constraints(
    raw: object, where: str = "topologySpreadConstraints", allow_selector: bool = True
) -> tuple[TopologySpreadConstraint, ...]:
    return _spread_constraints(_Ctx(where), raw, "", allow_selector)


# --------------------------------------------------------------------------- nodes and pods


def _name(c: _Ctx, meta: Mapping[str, Any]) -> str:
    name = c.text(meta.get("name"), "metadata.name")
    if not name:
        raise c.fail("metadata.name", "can not be empty")
    return name


def parse_node(raw: Mapping[str, Any], index: int = 0) -> Node:
    """One `v1.Node` object (already decoded)."""
    meta = raw.get("metadata")
    c = _Ctx(f"Node #{index}")
    meta = c.mapping(meta, "metadata")
    name = _name(c, meta)
    c = _Ctx(f"Node {name}")
    spec = c.mapping(raw.get("spec"), "spec")
    status = c.mapping(raw.get("status"), "status")
    capacity, _ = c.resources(status.get("capacity"), "status.capacity")
    if status.get("allocatable") is None:
        allocatable = capacity
    else:
        allocatable, _ = c.resources(status.get("allocatable"), "status.allocatable")
    taints = []
    for i, t in enumerate(c.seq(spec.get("taints"), "spec.taints")):
        tp = f"spec.taints[{i}]"
        tm = c.mapping(t, tp)
        key = c.text(tm.get("key"), f"{tp}.key")
        if not key:
            raise c.fail(f"{tp}.key", "can not be empty")
        effect = c.text(tm.get("effect"), f"{tp}.effect")
        if effect not in TAINT_EFFECTS:
            raise c.fail(f"{tp}.effect", f"{effect!r} is not a valid taint effect")
        taints.append(Taint(key, effect, c.text(tm.get("value"), f"{tp}.value", "")))
    images = []
    for i, im in enumerate(c.seq(status.get("images"), "status.images")):
        ip = f"status.images[{i}]"
        imm = c.mapping(im, ip)
        names = tuple(
            c.text(n, f"{ip}.names[{j}]")
            for j, n in enumerate(c.seq(imm.get("names"), f"{ip}.names"))
        )
        images.append(ContainerImage(names, c.integer(imm.get("sizeBytes"), f"{ip}.sizeBytes", 0)))
    conditions = {}
    for i, cond in enumerate(c.seq(status.get("conditions"), "status.conditions")):
        cm = c.mapping(cond, f"status.conditions[{i}]")
        conditions[c.text(cm.get("type"), f"status.conditions[{i}].type")] = c.text(
            cm.get("status"), f"status.conditions[{i}].status", "Unknown"
        )
    return Node(
        name=name,
        labels=c.str_map(meta.get("labels"), "metadata.labels"),
        allocatable=allocatable,
        capacity=capacity,
        taints=tuple(taints),
        unschedulable=c.flag(spec.get("unschedulable"), "spec.unschedulable"),
        images=tuple(images),
        conditions=FrozenMap(conditions),
    )


def _container(c: _Ctx, raw: object, path: str) -> Container:
    m = c.mapping(raw, path)
    name = c.text(m.get("name"), f"{path}.name", "")
    res = c.mapping(m.get("resources"), f"{path}.resources")
    limits, limit_names = c.resources(res.get("limits"), f"{path}.resources.limits")
    requests, request_names = c.resources(res.get("requests"), f"{path}.resources.requests")
    # API defaulting (SetDefaults_Pod): a resource with a limit and no request
    # requests its limit.
    missing = limit_names - request_names
    if missing:
        amounts = {n: requests.get(n) for n in request_names}
        amounts.update({n: limits.get(n) for n in missing})
        requests = Resources.from_mapping(amounts)
        request_names = request_names | missing
    for n in request_names & limit_names:
        if requests.get(n) > limits.get(n):
            raise c.fail(
                f"{path}.resources.requests.{n}", "must be less than or equal to the limit"
            )
    ports = []
    for i, p in enumerate(c.seq(m.get("ports"), f"{path}.ports")):
        pp = f"{path}.ports[{i}]"
        pm = c.mapping(p, pp)
        cport = c.integer(pm.get("containerPort"), f"{pp}.containerPort")
        hport = c.integer(pm.get("hostPort"), f"{pp}.hostPort", 0)
        for label, v in (("containerPort", cport), ("hostPort", hport)):
            if not 0 <= v <= 65535 or (label == "containerPort" and v == 0):
                raise c.fail(f"{pp}.{label}", f"{v} must be between 1 and 65535")
        proto = c.text(pm.get("protocol"), f"{pp}.protocol", "TCP")
        if proto not in ("TCP", "UDP", "SCTP"):
            raise c.fail(f"{pp}.protocol", f"unsupported value {proto!r}")
        ports.append(
            ContainerPort(cport, hport, proto, c.text(pm.get("hostIP"), f"{pp}.hostIP", ""))
        )
    return Container(
        name=name,
        image=c.text(m.get("image"), f"{path}.image", ""),
        requests=requests,
        limits=limits,
        requested_names=request_names,
        ports=tuple(ports),
        restart_policy=c.text(m.get("restartPolicy"), f"{path}.restartPolicy", ""),
    )


def parse_pod(
    raw: Mapping[str, Any],
    index: int = 0,
    priority_classes: Mapping[str, tuple[int, str | None]] | None = None,
    default_priority: tuple[int, str | None] | None = None,
) -> Pod:
    """One `v1.Pod` object (already decoded), with admission's priority resolution."""
    c = _Ctx(f"Pod #{index}")
    meta = c.mapping(raw.get("metadata"), "metadata")
    name = _name(c, meta)
    namespace = c.text(meta.get("namespace"), "metadata.namespace", "default") or "default"
    c = _Ctx(f"Pod {namespace}/{name}")
    spec = c.mapping(raw.get("spec"), "spec")
    status = c.mapping(raw.get("status"), "status")
    containers = tuple(
        _container(c, x, f"spec.containers[{i}]")
        for i, x in enumerate(c.seq(spec.get("containers"), "spec.containers"))
    )
    if not containers:
        raise c.fail("spec.containers", "a pod needs at least one container")
    init = tuple(
        _container(c, x, f"spec.initContainers[{i}]")
        for i, x in enumerate(c.seq(spec.get("initContainers"), "spec.initContainers"))
    )
    overhead, _ = c.resources(spec.get("overhead"), "spec.overhead")
    tolerations = []
    for i, t in enumerate(c.seq(spec.get("tolerations"), "spec.tolerations")):
        tp = f"spec.tolerations[{i}]"
        tm = c.mapping(t, tp)
        key = c.text(tm.get("key"), f"{tp}.key", "")
        op = c.text(tm.get("operator"), f"{tp}.operator", "Equal") or "Equal"
        if op not in ("Equal", "Exists"):
            raise c.fail(f"{tp}.operator", f"{op!r} is not a valid toleration operator")
        value = c.text(tm.get("value"), f"{tp}.value", "")
        if op == "Exists" and value:
            raise c.fail(f"{tp}.value", "must be empty when operator is Exists")
        if not key and op != "Exists":
            raise c.fail(f"{tp}.operator", "must be Exists when key is empty")
        effect = c.text(tm.get("effect"), f"{tp}.effect", "")
        if effect and effect not in TAINT_EFFECTS:
            raise c.fail(f"{tp}.effect", f"{effect!r} is not a valid taint effect")
        secs = tm.get("tolerationSeconds")
        tolerations.append(
            Toleration(
                key,
                op,
                value,
                effect,
                None if secs is None else c.integer(secs, f"{tp}.tolerationSeconds"),
            )
        )
    priority_classes = priority_classes or {}
    policy: str | None = None
    if spec.get("priority") is not None:
        priority = c.integer(spec.get("priority"), "spec.priority")
    elif spec.get("priorityClassName"):
        pcname = c.text(spec.get("priorityClassName"), "spec.priorityClassName")
        if pcname in priority_classes:
            priority, policy = priority_classes[pcname]
        elif pcname in SYSTEM_PRIORITY_CLASSES:
            priority = SYSTEM_PRIORITY_CLASSES[pcname]
        else:
            raise c.fail(
                "spec.priorityClassName", f"no PriorityClass with name {pcname!r} was found"
            )
    elif default_priority is not None:
        priority, policy = default_priority
    else:
        priority = 0
    preemption = c.text(
        spec.get("preemptionPolicy"), "spec.preemptionPolicy", policy or "PreemptLowerPriority"
    )
    if preemption not in ("PreemptLowerPriority", "Never"):
        raise c.fail("spec.preemptionPolicy", f"unsupported value {preemption!r}")
    return Pod(
        name=name,
        namespace=namespace,
        uid=c.text(meta.get("uid"), "metadata.uid", ""),
        labels=c.str_map(meta.get("labels"), "metadata.labels"),
        containers=containers,
        init_containers=init,
        overhead=overhead,
        node_name=c.text(spec.get("nodeName"), "spec.nodeName", ""),
        node_selector=c.str_map(spec.get("nodeSelector"), "spec.nodeSelector"),
        affinity=_affinity(c, spec.get("affinity"), "spec.affinity"),
        tolerations=tuple(tolerations),
        topology_spread_constraints=_spread_constraints(
            c, spec.get("topologySpreadConstraints"), "spec.topologySpreadConstraints"
        ),
        priority=priority,
        preemption_policy=preemption,
        scheduler_name=c.text(spec.get("schedulerName"), "spec.schedulerName", "default-scheduler")
        or "default-scheduler",
        start_time=_timestamp(c, status.get("startTime"), "status.startTime"),
        nominated_node_name=c.text(status.get("nominatedNodeName"), "status.nominatedNodeName", ""),
        scheduling_gates=tuple(
            c.text(
                c.mapping(g, f"spec.schedulingGates[{i}]").get("name"),
                f"spec.schedulingGates[{i}].name",
            )
            for i, g in enumerate(c.seq(spec.get("schedulingGates"), "spec.schedulingGates"))
        ),
    )


# --------------------------------------------------------------------------- documents


def _documents(text: str) -> list[tuple[int, Mapping[str, Any]]]:
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as e:
        raise InputError(f"not valid YAML: {e}") from None
    out: list[tuple[int, Mapping[str, Any]]] = []
    for i, doc in enumerate(docs):
        if doc is None:
            continue
        if not isinstance(doc, Mapping):
            raise InputError(f"document {i + 1}: expected a Kubernetes object, got {_kind(doc)}")
        kind = doc.get("kind")
        if not isinstance(kind, str) or not kind:
            raise InputError(f"document {i + 1}: has no kind")
        if kind.endswith("List") and kind != "KubeSchedulerConfigurationList":
            items = doc.get("items")
            if not isinstance(items, list):
                raise InputError(f"document {i + 1}: {kind}.items must be a list")
            for j, item in enumerate(items):
                if not isinstance(item, Mapping):
                    raise InputError(f"document {i + 1}: items[{j}] is not an object")
                ik = item.get("kind")
                if not isinstance(ik, str) or not ik:
                    raise InputError(f"document {i + 1}: items[{j}] has no kind")
                out.append((i + 1, item))
        else:
            out.append((i + 1, doc))
    return out


def _selector_from_map(raw: object) -> LabelSelector | None:
    if not isinstance(raw, Mapping) or not raw:
        return None
    return LabelSelector(FrozenMap({str(k): str(v) for k, v in raw.items()}))


def _matches(sel: LabelSelector, labels: Mapping[str, str]) -> bool:
    for k, v in sel.match_labels.items():
        if labels.get(k) != v:
            return False
    for r in sel.match_expressions:
        has = r.key in labels
        if r.operator == "In" and not (has and labels[r.key] in r.values):
            return False
        if r.operator == "NotIn" and has and labels[r.key] in r.values:
            return False
        if r.operator == "Exists" and not has:
            return False
        if r.operator == "DoesNotExist" and has:
            return False
    return True


def _controller(obj: Mapping[str, Any]) -> tuple[str, str] | None:
    """(kind, name) of the pod's controlling owner reference, if any."""
    meta = obj.get("metadata")
    refs = meta.get("ownerReferences") if isinstance(meta, Mapping) else None
    for ref in refs if isinstance(refs, list) else ():
        if isinstance(ref, Mapping) and ref.get("controller") is True:
            return (str(ref.get("kind", "")), str(ref.get("name", "")))
    return None


def _default_selector(
    pod: Pod,
    controller: tuple[str, str] | None,
    workloads: Sequence[tuple[str, str, str, LabelSelector]],
) -> LabelSelector | None:
    # kube-scheduler's helper.DefaultSelector (v1.32): the selectors of every
    # Service in the pod's namespace that selects it, ANDed with the selector of
    # the pod's *controlling* ReplicationController, ReplicaSet or StatefulSet
    # (its ownerReference with controller: true), not of every workload whose
    # selector happens to match; None when that is empty.
    labels: dict[str, str] = {}
    exprs: list[LabelSelectorRequirement] = []
    for ns, kind, name, sel in workloads:
        if ns != pod.namespace:
            continue
        if kind == "Service" and not _matches(sel, pod.labels):
            continue
        if kind != "Service" and controller != (kind, name):
            continue
        labels.update(sel.match_labels)
        exprs.extend(sel.match_expressions)
    if not labels and not exprs:
        return None
    return LabelSelector(FrozenMap(labels), tuple(exprs))


def load_cluster(text: str) -> Cluster:
    """Parse every object in `text`; raise `InputError` naming the first bad one."""
    docs = _documents(text)
    nodes: list[Node] = []
    raw_pods: list[tuple[int, Mapping[str, Any]]] = []
    config: SchedulerConfig | None = None
    ns_labels: dict[str, FrozenMap[str]] = {}
    workloads: list[tuple[str, str, str, LabelSelector]] = []
    classes: dict[str, tuple[int, str | None]] = {}
    default_class: tuple[int, str | None] | None = None
    raw_pdbs: list[Mapping[str, Any]] = []
    names: set[str] = set()
    for docno, obj in docs:
        kind = obj["kind"]
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
        assert isinstance(meta, Mapping)
        if kind == "Node":
            node = parse_node(obj, len(nodes))
            if node.name in names:
                raise InputError(f"Node {node.name}: defined twice")
            names.add(node.name)
            nodes.append(node)
        elif kind == "Pod":
            raw_pods.append((docno, obj))
        elif kind == "KubeSchedulerConfiguration":
            if config is not None:
                raise InputError("more than one KubeSchedulerConfiguration in the input")
            try:
                config = parse_config(obj)
            except ConfigError as e:
                raise InputError(f"KubeSchedulerConfiguration: {e}") from None
        elif kind == "Namespace":
            c = _Ctx(f"Namespace #{docno}")
            ns_labels[_name(c, meta)] = c.str_map(meta.get("labels"), "metadata.labels")
        elif kind in ("Service", "ReplicationController", "ReplicaSet", "StatefulSet"):
            c = _Ctx(f"{kind} {meta.get('name', '#' + str(docno))}")
            ns = c.text(meta.get("namespace"), "metadata.namespace", "default") or "default"
            spec = c.mapping(obj.get("spec"), "spec")
            if kind in ("Service", "ReplicationController"):
                sel = _selector_from_map(c.mapping(spec.get("selector"), "spec.selector"))
            else:
                sel = _label_selector(c, spec.get("selector"), "spec.selector")
                if sel is not None and not sel.match_labels and not sel.match_expressions:
                    sel = None
            if sel is not None:
                workloads.append((ns, kind, str(meta.get("name", "")), sel))
        elif kind == "PriorityClass":
            c = _Ctx(f"PriorityClass #{docno}")
            pname = _name(c, meta)
            value = c.integer(obj.get("value"), "value")
            policy = c.text(obj.get("preemptionPolicy"), "preemptionPolicy", "PreemptLowerPriority")
            classes[pname] = (value, policy)
            if c.flag(obj.get("globalDefault"), "globalDefault"):
                default_class = (value, policy)
        elif kind == "PodDisruptionBudget":
            raw_pdbs.append(obj)
    pods: list[Pod] = []
    keys: set[str] = set()
    for i, (_docno, obj) in enumerate(raw_pods):
        pod = parse_pod(obj, i, classes, default_class)
        if pod.key in keys:
            raise InputError(f"Pod {pod.key}: defined twice")
        keys.add(pod.key)
        extra: dict[str, Any] = {"namespace_labels": ns_labels.get(pod.namespace, FrozenMap())}
        if workloads:
            extra["default_spread_selector"] = _default_selector(pod, _controller(obj), workloads)
        pods.append(_evolve(pod, extra))
    node_names = {n.name for n in nodes}
    for pod in pods:
        if pod.node_name and pod.node_name not in node_names:
            raise InputError(f"Pod {pod.key}: spec.nodeName: node {pod.node_name!r} is not defined")
    pdbs = tuple(_pdb(obj, pods) for obj in raw_pdbs)
    return Cluster(tuple(nodes), tuple(pods), config or SchedulerConfig.default(), pdbs)


def _evolve(pod: Pod, changes: Mapping[str, Any]) -> Pod:
    return attrs.evolve(pod, **changes)


def _pdb(obj: Mapping[str, Any], pods: Sequence[Pod]) -> PodDisruptionBudget:
    meta = obj.get("metadata")
    c = _Ctx("PodDisruptionBudget")
    meta = c.mapping(meta, "metadata")
    name = _name(c, meta)
    ns = c.text(meta.get("namespace"), "metadata.namespace", "default") or "default"
    c = _Ctx(f"PodDisruptionBudget {ns}/{name}")
    spec = c.mapping(obj.get("spec"), "spec")
    status = c.mapping(obj.get("status"), "status")
    selector = _label_selector(c, spec.get("selector"), "spec.selector") or LabelSelector()
    if status.get("disruptionsAllowed") is not None:
        allowed = c.integer(status["disruptionsAllowed"], "status.disruptionsAllowed")
    else:
        # No status: compute what the disruption controller would, taking
        # every matching running pod as healthy and as the expected count.
        healthy = sum(
            1 for p in pods if p.namespace == ns and p.node_name and _matches(selector, p.labels)
        )
        allowed = healthy
        for fname in ("minAvailable", "maxUnavailable"):
            raw = spec.get(fname)
            if raw is None:
                continue
            if isinstance(raw, str) and raw.endswith("%"):
                try:
                    pct = int(raw[:-1])
                except ValueError:
                    raise c.fail(f"spec.{fname}", f"{raw!r} is not a percentage") from None
                # minAvailable rounds up, maxUnavailable rounds up too (intstr).
                amount = -(-healthy * pct // 100)
            else:
                amount = c.integer(raw, f"spec.{fname}")
            allowed = healthy - amount if fname == "minAvailable" else amount
        allowed = max(allowed, 0)
    return PodDisruptionBudget(ns, name, selector, allowed)


def load_objects(text: str) -> tuple[tuple[Node, ...], tuple[Pod, ...], SchedulerConfig]:
    """Parse `text` into ``(nodes, pods, config)``; the config is the default if absent."""
    cluster = load_cluster(text)
    return cluster.nodes, cluster.pods, cluster.config
