"""The Z3 solver's reading of kube-scheduler's filters: what a pod may share a node or a domain with.

Theory of operation
-------------------
The batch solver (`solver_encode`) turns kube-scheduler's Filter plugins
(pinned: v1.32) into constraints.  Everything a filter reads that does not
depend on where the *batch* goes is decided here, in plain Python, once per
(pod, node) or (pod, pod) pair; the encoder only has to combine the answers.
The predicates are written from kube-scheduler's definitions, apart from the
greedy scheduler's plugins, so that the differential tests compare two
readings of the same rules.

=======================  ===================================================
predicate                kube-scheduler source it follows
=======================  ===================================================
`selector_matches`       metav1.LabelSelectorAsSelector: None matches nothing,
                         an empty selector matches everything
`node_affinity_matches`  nodeSelector (every key equal) AND required node
                         affinity (terms ORed; an empty term matches nothing;
                         Gt/Lt compare int64 label values; matchFields reads
                         metadata.name)
`tolerates`              v1.Toleration.ToleratesTaint (empty effect or key
                         matches all; Exists ignores the value)
`untolerated_taint`      the first NoSchedule/NoExecute taint no toleration
                         tolerates (TaintToleration Filter)
`unschedulable_blocks`   NodeUnschedulable (tolerating
                         node.kubernetes.io/unschedulable:NoSchedule exempts)
`pods_ports_conflict`    NodePorts: same protocol and port, and the same host
                         IP or either one the wildcard 0.0.0.0
`Term`                   framework.AffinityTerm: namespaces (own namespace by
                         default) or namespaceSelector, then the label selector;
                         matchLabelKeys/mismatchLabelKeys merged as the API
                         server does on create
`Spread`                 a DoNotSchedule topology spread constraint after
                         PodTopologySpread's own matchLabelKeys merge, with
                         minDomains defaulted to 1
=======================  ===================================================

A pod's resource request is `Pod.requests()` (kube's `resource.PodRequests`);
the ``pods`` entry of a pod's request is ignored, as kube ignores it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from attrs import frozen

from .model import (
    CPU,
    EPHEMERAL_STORAGE,
    MEMORY,
    PODS,
    ContainerPort,
    LabelSelector,
    LabelSelectorRequirement,
    Node,
    NodeSelectorRequirement,
    NodeSelectorTerm,
    Pod,
    PodAffinityTerm,
    Resources,
    Taint,
    Toleration,
)

__all__ = [
    "FILTER_ORDER",
    "UNSCHEDULABLE_TAINT_KEY",
    "WILDCARD_IP",
    "Spread",
    "Term",
    "anti_affinity_terms",
    "describe_selector",
    "node_affinity_matches",
    "node_term_matches",
    "pod_affinity_terms",
    "pods_ports_conflict",
    "ports_conflict",
    "request_amounts",
    "selector_is_everything",
    "selector_matches",
    "spread_constraints",
    "tolerates",
    "unschedulable_blocks",
    "untolerated_taint",
]

WILDCARD_IP: Final = "0.0.0.0"
UNSCHEDULABLE_TAINT_KEY: Final = "node.kubernetes.io/unschedulable"

FILTER_ORDER: Final = (
    "NodeUnschedulable",
    "NodeName",
    "TaintToleration",
    "NodeAffinity",
    "NodePorts",
    "NodeResourcesFit",
    "PodTopologySpread",
    "InterPodAffinity",
)
"""The default profile's Filter order: the first failing plugin names a node's reason."""

_INT64 = re.compile(r"[+-]?[0-9]+\Z")


def _parse_int64(text: str) -> int | None:
    # strconv.ParseInt(s, 10, 64): optional sign, decimal digits, int64 range.
    if not _INT64.match(text):
        return None
    v = int(text)
    return v if -(2**63) <= v < 2**63 else None


# --------------------------------------------------------------------------- label selectors


def _requirement_matches(req: LabelSelectorRequirement, labels: Mapping[str, str]) -> bool:
    has = req.key in labels
    if req.operator == "In":
        return has and labels[req.key] in req.values
    if req.operator == "NotIn":
        return not has or labels[req.key] not in req.values
    if req.operator == "Exists":
        return has
    if req.operator == "DoesNotExist":
        return not has
    return False


def selector_matches(sel: LabelSelector | None, labels: Mapping[str, str]) -> bool:
    """Does the (metav1) label selector select an object with these labels?"""
    if sel is None:
        return False
    for k, v in sel.match_labels.items():
        if labels.get(k) != v:
            return False
    return all(_requirement_matches(r, labels) for r in sel.match_expressions)


def selector_is_everything(sel: LabelSelector | None) -> bool:
    """True for a non-nil selector without requirements (`labels.Selector.Empty()`)."""
    return sel is not None and not sel.match_labels and not sel.match_expressions


def _with_requirements(
    sel: LabelSelector, extra: Iterable[LabelSelectorRequirement]
) -> LabelSelector:
    return LabelSelector(sel.match_labels, (*sel.match_expressions, *extra))


# --------------------------------------------------------------------------- node affinity


def _node_requirement_matches(req: NodeSelectorRequirement, labels: Mapping[str, str]) -> bool:
    if req.operator in ("Gt", "Lt"):
        if req.key not in labels or len(req.values) != 1:
            return False
        want = _parse_int64(req.values[0])
        have = _parse_int64(labels[req.key])
        if want is None or have is None:
            return False
        return have > want if req.operator == "Gt" else have < want
    if req.operator in ("In", "NotIn") and not req.values:
        return False  # a parse error in kube: the whole term is dropped
    return _requirement_matches(LabelSelectorRequirement(req.key, req.operator, req.values), labels)


def _field_matches(req: NodeSelectorRequirement, node: Node) -> bool:
    # nodeSelectorRequirementsAsFieldSelector: only metadata.name, only In/NotIn
    # with exactly one value; anything else is a parse error (term dropped).
    if req.key != "metadata.name" or len(req.values) != 1:
        return False
    if req.operator == "In":
        return node.name == req.values[0]
    if req.operator == "NotIn":
        return node.name != req.values[0]
    return False


def node_term_matches(term: NodeSelectorTerm, node: Node) -> bool:
    """One nodeSelectorTerm: its requirements ANDed; an empty term matches no node."""
    if not term.match_expressions and not term.match_fields:
        return False
    return all(_node_requirement_matches(r, node.labels) for r in term.match_expressions) and all(
        _field_matches(r, node) for r in term.match_fields
    )


def node_affinity_matches(pod: Pod, node: Node) -> bool:
    """NodeAffinity's Filter: nodeSelector AND requiredDuringScheduling node affinity."""
    for k, v in pod.node_selector.items():
        if node.labels.get(k) != v:
            return False
    na = pod.affinity.node_affinity if pod.affinity is not None else None
    if na is None or na.required is None:
        return True
    return any(node_term_matches(t, node) for t in na.required.terms)


# --------------------------------------------------------------------------- taints


def tolerates(tol: Toleration, taint: Taint) -> bool:
    """`Toleration.ToleratesTaint`, operator by operator."""
    if tol.effect and tol.effect != taint.effect:
        return False
    if tol.key and tol.key != taint.key:
        return False
    if tol.operator in ("", "Equal"):
        return tol.value == taint.value
    return tol.operator == "Exists"


def untolerated_taint(
    pod: Pod, node: Node, effects: tuple[str, ...] = ("NoSchedule", "NoExecute")
) -> Taint | None:
    """The first of the node's taints with one of `effects` that the pod does not tolerate."""
    for taint in node.taints:
        if taint.effect in effects and not any(tolerates(t, taint) for t in pod.tolerations):
            return taint
    return None


def unschedulable_blocks(pod: Pod, node: Node) -> bool:
    """NodeUnschedulable: an unschedulable node admits only pods tolerating its taint."""
    if not node.unschedulable:
        return False
    taint = Taint(UNSCHEDULABLE_TAINT_KEY, "NoSchedule")
    return not any(tolerates(t, taint) for t in pod.tolerations)


# --------------------------------------------------------------------------- host ports


def _sanitized(p: ContainerPort) -> tuple[str, str, int]:
    return (p.host_ip or WILDCARD_IP, p.protocol or "TCP", p.host_port)


def ports_conflict(a: ContainerPort, b: ContainerPort) -> bool:
    """`HostPortInfo.CheckConflict` between two host ports (symmetric)."""
    ip_a, proto_a, port_a = _sanitized(a)
    ip_b, proto_b, port_b = _sanitized(b)
    if port_a <= 0 or port_a != port_b or proto_a != proto_b:
        return False
    return ip_a == ip_b or WILDCARD_IP in (ip_a, ip_b)


def pods_ports_conflict(a: Pod, b: Pod) -> bool:
    """Can these two pods not share a node because of their host ports?"""
    pa, pb = a.host_ports(), b.host_ports()
    return any(ports_conflict(x, y) for x in pa for y in pb)


# --------------------------------------------------------------------------- resources


def request_amounts(req: Resources) -> dict[str, int]:
    """The resources NodeResourcesFit checks for this request: every non-zero one but pods."""
    out = {
        CPU: req.milli_cpu,
        MEMORY: req.memory,
        EPHEMERAL_STORAGE: req.ephemeral_storage,
    }
    out.update(req.scalar)
    return {k: v for k, v in out.items() if v > 0 and k != PODS}


# --------------------------------------------------------------------------- pod affinity


@frozen
class Term:
    """A required (anti-)affinity term as kube-scheduler holds it (`framework.AffinityTerm`)."""

    topology_key: str
    selector: LabelSelector | None
    namespaces: frozenset[str]
    namespace_selector: LabelSelector | None

    def matches(self, pod: Pod) -> bool:
        """`AffinityTerm.Matches`: the pod's namespace is selected, then its labels."""
        in_ns = pod.namespace in self.namespaces or (
            self.namespace_selector is not None
            and selector_matches(self.namespace_selector, pod.namespace_labels)
        )
        return in_ns and selector_matches(self.selector, pod.labels)

    def describe(self) -> str:
        return f"{describe_selector(self.selector)} (topology key {self.topology_key})"


def _term(owner: Pod, t: PodAffinityTerm) -> Term:
    sel = t.label_selector
    if sel is not None and (t.match_label_keys or t.mismatch_label_keys):
        # The API server merges these into the selector when the pod is created
        # (only for keys the pod has, and only into a non-nil selector).
        extra = [
            LabelSelectorRequirement(k, "In", (owner.labels[k],))
            for k in t.match_label_keys
            if k in owner.labels
        ]
        extra += [
            LabelSelectorRequirement(k, "NotIn", (owner.labels[k],))
            for k in t.mismatch_label_keys
            if k in owner.labels
        ]
        sel = _with_requirements(sel, extra)
    if not t.namespaces and t.namespace_selector is None:
        namespaces = frozenset({owner.namespace})
    else:
        namespaces = frozenset(t.namespaces)
    return Term(t.topology_key, sel, namespaces, t.namespace_selector)


def pod_affinity_terms(pod: Pod) -> tuple[Term, ...]:
    """The pod's required pod-affinity terms."""
    pa = pod.affinity.pod_affinity if pod.affinity is not None else None
    return tuple(_term(pod, t) for t in pa.required) if pa is not None else ()


def anti_affinity_terms(pod: Pod) -> tuple[Term, ...]:
    """The pod's required pod-anti-affinity terms."""
    pa = pod.affinity.pod_anti_affinity if pod.affinity is not None else None
    return tuple(_term(pod, t) for t in pa.required) if pa is not None else ()


# --------------------------------------------------------------------------- topology spread


@frozen
class Spread:
    """A DoNotSchedule topology spread constraint as PodTopologySpread's Filter reads it."""

    max_skew: int
    topology_key: str
    selector: LabelSelector | None
    min_domains: int
    honor_affinity: bool
    honor_taints: bool

    def eligible(self, pod: Pod, node: Node, keys: Sequence[str]) -> bool:
        """Does this node's domain count for the pod (`matchNodeInclusionPolicies`)?"""
        if any(k not in node.labels for k in keys):
            return False
        if self.honor_affinity and not node_affinity_matches(pod, node):
            return False
        return not (self.honor_taints and untolerated_taint(pod, node) is not None)

    def counts(self, pod: Pod, other: Pod) -> bool:
        """Is `other` one of the pods this constraint of `pod` counts?"""
        if selector_is_everything(self.selector):
            return False  # countPodsMatchSelector returns 0 for an empty selector
        return other.namespace == pod.namespace and selector_matches(self.selector, other.labels)

    def matches_self(self, pod: Pod) -> bool:
        """The Filter's selfMatchNum: the selector alone, without the namespace."""
        return selector_matches(self.selector, pod.labels)

    def describe(self) -> str:
        return (
            f"maxSkew {self.max_skew} over {self.topology_key!r} for pods "
            f"{describe_selector(self.selector)}"
            + (f", minDomains {self.min_domains}" if self.min_domains > 1 else "")
        )


def spread_constraints(pod: Pod) -> tuple[Spread, ...]:
    """The pod's DoNotSchedule constraints (the system defaults are all ScheduleAnyway)."""
    out = []
    for c in pod.topology_spread_constraints:
        if c.when_unsatisfiable != "DoNotSchedule":
            continue
        sel = c.label_selector
        if sel is not None and c.match_label_keys:
            extra = [
                LabelSelectorRequirement(k, "In", (pod.labels[k],))
                for k in c.match_label_keys
                if k in pod.labels
            ]
            if extra:
                sel = _with_requirements(sel, extra)
        out.append(
            Spread(
                c.max_skew,
                c.topology_key,
                sel,
                c.min_domains if c.min_domains is not None else 1,
                c.node_affinity_policy != "Ignore",
                c.node_taints_policy == "Honor",
            )
        )
    return tuple(out)


# --------------------------------------------------------------------------- words


def describe_selector(sel: LabelSelector | None) -> str:
    """A label selector in kubectl's `-l` syntax."""
    if sel is None:
        return "<none>"
    parts = [f"{k}={v}" for k, v in sel.match_labels.items()]
    for r in sel.match_expressions:
        if r.operator == "Exists":
            parts.append(r.key)
        elif r.operator == "DoesNotExist":
            parts.append(f"!{r.key}")
        else:
            op = "in" if r.operator == "In" else "notin"
            parts.append(f"{r.key} {op} ({','.join(r.values)})")
    return ",".join(parts) if parts else "<all pods>"
