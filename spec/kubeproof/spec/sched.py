"""The scheduler's invariants, checked on bindings by a checker written apart from the scheduler.

Theory of operation
-------------------
A scheduler (greedy or the Z3 batch solver) produces *bindings*: pod P goes
to node N.  kube-scheduler checks its hard constraints when it binds a pod,
against the pods already on the cluster then (running pods and the pods bound
before); a later binding never invalidates an earlier one ("...
IgnoredDuringExecution").  This checker replays a sequence of bindings on the
starting cluster and, at each one, re-evaluates every hard constraint from
its definition.  It imports only the model's value types; every rule below is
written out here, as plainly as possible, so that it can be read against
kube-scheduler (v1.32) directly.

=========================  ==================================================
invariant                  at each binding of pod P to node N
=========================  ==================================================
SCHED-NO-OVERCOMMIT        N's pod count stays within allocatable pods, and
                           for every resource P requests (cpu, memory,
                           ephemeral-storage, extended resources), the
                           requests of the pods on N stay within N's
                           allocatable.  Resources P does not request are not
                           checked: pods placed by other means may overcommit
                           them, and the scheduler does not make that worse.
SCHED-HARD-CONSTRAINTS     N exists; N is schedulable or P tolerates
                           node.kubernetes.io/unschedulable:NoSchedule; P
                           tolerates N's NoSchedule and NoExecute taints; N
                           matches P's nodeSelector and required node
                           affinity; no host port of P conflicts with one on
                           N; P's required pod affinity holds (or P is the
                           first pod of its kind); no pod in P's domain
                           matches P's required anti-affinity, and P matches
                           no anti-affinity term of a pod in that pod's domain
                           (both directions); every DoNotSchedule topology
                           spread constraint of P has skew <= maxSkew.
SCHED-BIND-ONCE            P exists, was pending (a running pod is never
                           moved or re-bound), and has not been bound earlier
                           in the sequence.
SCHED-PREEMPTION-          (for a placement that evicts running pods) every
JUSTIFIED                  evicted pod V was running, is evicted once and is
                           placed nowhere, and some pod bound to V's node in
                           the sequence has a priority strictly higher than
                           V's and a preemptionPolicy other than Never: what
                           kube's DefaultPreemption allows (it evicts only on
                           the node it nominates, only lower priorities).
=========================  ==================================================

Evictions happen before the first binding: `check_placement` with
``evicted=`` replays the bindings on the starting cluster *without* the
evicted pods, so they count for nothing (resources, ports, affinity,
anti-affinity, spread), and then checks SCHED-PREEMPTION-JUSTIFIED.  Two
helpers judge an answer that claims to be optimal: `superfluous_evictions`
(victims whose return would leave every binding valid) and
`pdb_violations` (evictions beyond what PodDisruptionBudgets allow, summed
over the budgets; a budget covers the pods of its namespace that have labels
and that its non-empty selector selects, as kube-scheduler counts them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, Protocol

from attrs import frozen

from kubeproof.sched.model import (
    LabelSelector,
    LabelSelectorRequirement,
    Node,
    NodeSelectorRequirement,
    NodeSelectorTerm,
    Pod,
    PodAffinityTerm,
    Taint,
    Toleration,
)
from kubeproof.sim.observe import Violation

__all__ = [
    "BIND_ONCE",
    "HARD_CONSTRAINTS",
    "INVARIANTS",
    "NO_OVERCOMMIT",
    "PREEMPTION_JUSTIFIED",
    "Bind",
    "BindingChecker",
    "check_bindings",
    "check_placement",
    "pdb_violations",
    "superfluous_evictions",
]

NO_OVERCOMMIT: Final = "SCHED-NO-OVERCOMMIT"
HARD_CONSTRAINTS: Final = "SCHED-HARD-CONSTRAINTS"
BIND_ONCE: Final = "SCHED-BIND-ONCE"
PREEMPTION_JUSTIFIED: Final = "SCHED-PREEMPTION-JUSTIFIED"
INVARIANTS: Final = (NO_OVERCOMMIT, HARD_CONSTRAINTS, BIND_ONCE, PREEMPTION_JUSTIFIED)


@frozen
class Bind:
    """One binding event: the pod ``namespace/name`` is bound to the node."""

    pod: str
    node: str


# --------------------------------------------------------------------------- matching rules


def labels_selected(sel: LabelSelector | None, labels: Mapping[str, str]) -> bool:
    """metav1.LabelSelector: a missing selector selects nothing, an empty one everything."""
    if sel is None:
        return False
    for key, value in sel.match_labels.items():
        if key not in labels or labels[key] != value:
            return False
    for req in sel.match_expressions:
        if req.operator == "In" and not (req.key in labels and labels[req.key] in req.values):
            return False
        if req.operator == "NotIn" and req.key in labels and labels[req.key] in req.values:
            return False
        if req.operator == "Exists" and req.key not in labels:
            return False
        if req.operator == "DoesNotExist" and req.key in labels:
            return False
    return True


def _selector_has_requirements(sel: LabelSelector | None) -> bool:
    return sel is not None and bool(sel.match_labels or sel.match_expressions)


def _integer(text: str) -> int | None:
    body = text[1:] if text[:1] in "+-" else text
    if not body or not all(ch in "0123456789" for ch in body):
        return None
    return int(text)


def _expression_holds(req: NodeSelectorRequirement, labels: Mapping[str, str]) -> bool:
    has = req.key in labels
    if req.operator == "In":
        return has and labels[req.key] in req.values
    if req.operator == "NotIn":
        return bool(req.values) and (not has or labels[req.key] not in req.values)
    if req.operator == "Exists":
        return has
    if req.operator == "DoesNotExist":
        return not has
    if req.operator in ("Gt", "Lt"):
        if not has or len(req.values) != 1:
            return False
        mine, bound = _integer(labels[req.key]), _integer(req.values[0])
        if mine is None or bound is None:
            return False
        return mine > bound if req.operator == "Gt" else mine < bound
    return False


def _field_holds(req: NodeSelectorRequirement, node: Node) -> bool:
    if req.key != "metadata.name" or len(req.values) != 1:
        return False
    if req.operator == "In":
        return node.name == req.values[0]
    if req.operator == "NotIn":
        return node.name != req.values[0]
    return False


def _term_holds(term: NodeSelectorTerm, node: Node) -> bool:
    if not term.match_expressions and not term.match_fields:
        return False  # an empty term selects no node
    for req in term.match_expressions:
        if not _expression_holds(req, node.labels):
            return False
    return all(_field_holds(req, node) for req in term.match_fields)


def node_affinity_holds(pod: Pod, node: Node) -> bool:
    for key, value in pod.node_selector.items():
        if node.labels.get(key) != value:
            return False
    if pod.affinity is None or pod.affinity.node_affinity is None:
        return True
    required = pod.affinity.node_affinity.required
    if required is None:
        return True
    return any(_term_holds(t, node) for t in required.terms)


def toleration_matches(tol: Toleration, taint: Taint) -> bool:
    if tol.effect != "" and tol.effect != taint.effect:
        return False
    if tol.key != "" and tol.key != taint.key:
        return False
    if tol.operator == "Exists":
        return True
    if tol.operator in ("", "Equal"):
        return tol.value == taint.value
    return False


def tolerated(pod: Pod, taint: Taint) -> bool:
    return any(toleration_matches(t, taint) for t in pod.tolerations)


def blocking_taints(pod: Pod, node: Node) -> list[Taint]:
    return [
        t for t in node.taints if t.effect in ("NoSchedule", "NoExecute") and not tolerated(pod, t)
    ]


def host_ports(pod: Pod) -> list[tuple[str, str, int]]:
    """(host IP, protocol, host port) of every regular container port with a host port."""
    out = []
    for c in pod.containers:
        for p in c.ports:
            if p.host_port > 0:
                out.append((p.host_ip or "0.0.0.0", p.protocol or "TCP", p.host_port))
    return out


def ports_clash(a: tuple[str, str, int], b: tuple[str, str, int]) -> bool:
    if a[1] != b[1] or a[2] != b[2]:
        return False
    return a[0] == b[0] or a[0] == "0.0.0.0" or b[0] == "0.0.0.0"


def requested(pod: Pod) -> dict[str, int]:
    """What NodeResourcesFit checks for this pod: each non-zero request but "pods"."""
    req = pod.requests()
    amounts = {
        "cpu": req.milli_cpu,
        "memory": req.memory,
        "ephemeral-storage": req.ephemeral_storage,
    }
    for name, value in req.scalar.items():
        amounts[name] = value
    return {k: v for k, v in amounts.items() if v > 0 and k != "pods"}


@frozen
class _Term:
    key: str
    selector: LabelSelector | None
    namespaces: frozenset[str]
    namespace_selector: LabelSelector | None

    def selects(self, pod: Pod) -> bool:
        namespace_ok = pod.namespace in self.namespaces or (
            self.namespace_selector is not None
            and labels_selected(self.namespace_selector, pod.namespace_labels)
        )
        return namespace_ok and labels_selected(self.selector, pod.labels)


def _effective_term(owner: Pod, term: PodAffinityTerm) -> _Term:
    selector = term.label_selector
    if selector is not None:
        # matchLabelKeys / mismatchLabelKeys, as the API server merges them.
        extra = []
        for key in term.match_label_keys:
            if key in owner.labels:
                extra.append(LabelSelectorRequirement(key, "In", (owner.labels[key],)))
        for key in term.mismatch_label_keys:
            if key in owner.labels:
                extra.append(LabelSelectorRequirement(key, "NotIn", (owner.labels[key],)))
        if extra:
            selector = LabelSelector(
                selector.match_labels, tuple(selector.match_expressions) + tuple(extra)
            )
    if not term.namespaces and term.namespace_selector is None:
        namespaces = frozenset([owner.namespace])
    else:
        namespaces = frozenset(term.namespaces)
    return _Term(term.topology_key, selector, namespaces, term.namespace_selector)


def affinity_terms(pod: Pod) -> list[_Term]:
    if pod.affinity is None or pod.affinity.pod_affinity is None:
        return []
    return [_effective_term(pod, t) for t in pod.affinity.pod_affinity.required]


def anti_affinity_terms(pod: Pod) -> list[_Term]:
    if pod.affinity is None or pod.affinity.pod_anti_affinity is None:
        return []
    return [_effective_term(pod, t) for t in pod.affinity.pod_anti_affinity.required]


# --------------------------------------------------------------------------- the checker


class BindingChecker:
    """Replays bindings from a starting cluster; `bind` returns the violations of one binding."""

    def __init__(self, nodes: Sequence[Node], pods: Sequence[Pod]) -> None:
        self.nodes: dict[str, Node] = {n.name: n for n in nodes}
        self.pods: dict[str, Pod] = {p.key: p for p in pods}
        # Where each pod is now; pending pods are absent.
        self.where: dict[str, str] = {p.key: p.node_name for p in pods if p.node_name}
        self.bound_here: set[str] = set()
        self.step = 0

    def pods_on(self, node: str) -> list[Pod]:
        return [self.pods[k] for k, n in self.where.items() if n == node]

    def bind(self, pod_key: str, node_name: str) -> list[Violation]:
        step = self.step
        self.step += 1
        evidence: dict[str, Any] = {"pod": pod_key, "node": node_name}
        pod = self.pods.get(pod_key)
        if pod is None:
            return [Violation(BIND_ONCE, step, f"bound pod {pod_key} does not exist", evidence)]
        if pod.node_name:
            return [
                Violation(
                    BIND_ONCE,
                    step,
                    f"pod {pod_key} was running on {pod.node_name} and was bound again to "
                    f"{node_name}",
                    {**evidence, "running_on": pod.node_name},
                )
            ]
        if pod_key in self.bound_here:
            return [
                Violation(
                    BIND_ONCE,
                    step,
                    f"pod {pod_key} was already bound to {self.where[pod_key]}",
                    {**evidence, "bound_to": self.where[pod_key]},
                )
            ]
        node = self.nodes.get(node_name)
        if node is None:
            self.bound_here.add(pod_key)
            return [Violation(HARD_CONSTRAINTS, step, f"node {node_name} does not exist", evidence)]
        found = [
            Violation(inv, step, f"binding {pod_key} to {node_name}: {msg}", {**evidence, **ev})
            for inv, msg, ev in self._problems(pod, node)
        ]
        self.where[pod_key] = node_name
        self.bound_here.add(pod_key)
        return found

    # ------------------------------------------------------------------ the rules

    def _problems(self, pod: Pod, node: Node) -> Iterable[tuple[str, str, dict[str, Any]]]:
        here = self.pods_on(node.name)
        yield from self._resources(pod, node, here)
        if node.unschedulable and not tolerated(
            pod, Taint("node.kubernetes.io/unschedulable", "NoSchedule")
        ):
            yield HARD_CONSTRAINTS, "the node is unschedulable", {"constraint": "NodeUnschedulable"}
        for taint in blocking_taints(pod, node):
            yield (
                HARD_CONSTRAINTS,
                f"taint {taint.key}={taint.value}:{taint.effect} is not tolerated",
                {"constraint": "TaintToleration", "taint": str(taint)},
            )
        if not node_affinity_holds(pod, node):
            yield (
                HARD_CONSTRAINTS,
                "the node does not match the pod's node selector/affinity",
                {"constraint": "NodeAffinity"},
            )
        for other in here:
            for mine in host_ports(pod):
                for theirs in host_ports(other):
                    if ports_clash(mine, theirs):
                        yield (
                            HARD_CONSTRAINTS,
                            f"host port {mine[1]}/{mine[2]} is already used by {other.key}",
                            {"constraint": "NodePorts", "other": other.key},
                        )
        yield from self._pod_affinity(pod, node)
        yield from self._anti_affinity(pod, node)
        yield from self._spread(pod, node)

    def _resources(
        self, pod: Pod, node: Node, here: Sequence[Pod]
    ) -> Iterable[tuple[str, str, dict[str, Any]]]:
        if len(here) + 1 > node.allocatable.pods:
            yield (
                NO_OVERCOMMIT,
                f"{len(here) + 1} pods on a node that allows {node.allocatable.pods}",
                {"resource": "pods", "total": len(here) + 1, "allocatable": node.allocatable.pods},
            )
        for name, amount in requested(pod).items():
            total = amount + sum(requested(q).get(name, 0) for q in here)
            if total > node.allocatable.get(name):
                yield (
                    NO_OVERCOMMIT,
                    f"{name} requests total {total}, allocatable {node.allocatable.get(name)}",
                    {"resource": name, "total": total, "allocatable": node.allocatable.get(name)},
                )

    def _domain(self, pod_key: str, key: str) -> str | None:
        return self.nodes[self.where[pod_key]].labels.get(key)

    def _pod_affinity(self, pod: Pod, node: Node) -> Iterable[tuple[str, str, dict[str, Any]]]:
        terms = affinity_terms(pod)
        if not terms:
            return
        for t in terms:
            if t.key not in node.labels:
                yield (
                    HARD_CONSTRAINTS,
                    f"the node has no label {t.key!r} for a pod affinity term",
                    {"constraint": "InterPodAffinity"},
                )
                return
        matching = [k for k in self.where if all(t.selects(self.pods[k]) for t in terms)]
        satisfied = all(
            any(self._domain(k, t.key) == node.labels[t.key] for k in matching) for t in terms
        )
        if satisfied:
            return
        # The first pod of a group with affinity to itself may go anywhere the
        # keys exist, if no matching pod is counted yet anywhere.
        counted = any(
            any(t.key in self.nodes[self.where[k]].labels for t in terms) for k in matching
        )
        if not counted and all(t.selects(pod) for t in terms):
            return
        yield (
            HARD_CONSTRAINTS,
            "no pod matching its required pod affinity is in its topology domain",
            {"constraint": "InterPodAffinity"},
        )

    def _anti_affinity(self, pod: Pod, node: Node) -> Iterable[tuple[str, str, dict[str, Any]]]:
        for t in anti_affinity_terms(pod):
            if t.key not in node.labels:
                continue
            for k in self.where:
                if self._domain(k, t.key) == node.labels[t.key] and t.selects(self.pods[k]):
                    yield (
                        HARD_CONSTRAINTS,
                        f"its required anti-affinity matches {k} in {t.key}={node.labels[t.key]}",
                        {"constraint": "InterPodAntiAffinity", "other": k},
                    )
        for k in self.where:
            for t in anti_affinity_terms(self.pods[k]):
                theirs = self._domain(k, t.key)
                if theirs is not None and node.labels.get(t.key) == theirs and t.selects(pod):
                    yield (
                        HARD_CONSTRAINTS,
                        f"{k}'s required anti-affinity matches it in {t.key}={theirs}",
                        {"constraint": "InterPodAntiAffinity", "other": k},
                    )

    def _spread(self, pod: Pod, node: Node) -> Iterable[tuple[str, str, dict[str, Any]]]:
        hard = [
            c for c in pod.topology_spread_constraints if c.when_unsatisfiable == "DoNotSchedule"
        ]
        keys = [c.topology_key for c in hard]
        for c in hard:
            if c.topology_key not in node.labels:
                yield (
                    HARD_CONSTRAINTS,
                    f"the node has no label {c.topology_key!r} for a spread constraint",
                    {"constraint": "PodTopologySpread"},
                )
                continue
            selector = c.label_selector
            if selector is not None and c.match_label_keys:
                extra = tuple(
                    LabelSelectorRequirement(k, "In", (pod.labels[k],))
                    for k in c.match_label_keys
                    if k in pod.labels
                )
                if extra:
                    selector = LabelSelector(
                        selector.match_labels, tuple(selector.match_expressions) + extra
                    )
            counts: dict[str, int] = {}
            for m in self.nodes.values():
                if not all(k in m.labels for k in keys):
                    continue
                if c.node_affinity_policy != "Ignore" and not node_affinity_holds(pod, m):
                    continue
                if c.node_taints_policy == "Honor" and blocking_taints(pod, m):
                    continue
                value = m.labels[c.topology_key]
                counts.setdefault(value, 0)
                if not _selector_has_requirements(selector):
                    continue  # an empty selector counts no pods
                for q in self.pods_on(m.name):
                    if q.namespace == pod.namespace and labels_selected(selector, q.labels):
                        counts[value] += 1
            min_domains = c.min_domains if c.min_domains is not None else 1
            minimum = min(counts.values()) if len(counts) >= min_domains else 0
            mine = counts.get(node.labels[c.topology_key], 0)
            self_match = 1 if labels_selected(selector, pod.labels) else 0
            skew = mine + self_match - minimum
            if skew > c.max_skew:
                yield (
                    HARD_CONSTRAINTS,
                    f"topology spread over {c.topology_key!r}: skew {skew} > maxSkew {c.max_skew}",
                    {"constraint": "PodTopologySpread", "skew": skew, "max_skew": c.max_skew},
                )


def check_bindings(
    nodes: Sequence[Node], pods: Sequence[Pod], binds: Sequence[Bind]
) -> list[Violation]:
    """Replay `binds` in order from the cluster `nodes` + `pods`; every violation, in order."""
    checker = BindingChecker(nodes, pods)
    out: list[Violation] = []
    for b in binds:
        out.extend(checker.bind(b.pod, b.node))
    return out


def check_placement(
    nodes: Sequence[Node],
    pods: Sequence[Pod],
    placements: Mapping[str, str | None],
    order: Sequence[str] | None = None,
    evicted: Sequence[str] = (),
) -> list[Violation]:
    """Check a placement (pod key -> node or None) as bindings made in `order`.

    `order` defaults to the iteration order of `placements`.  An entry for a
    running pod must name the node it runs on (it is then not a binding),
    unless the pod is among `evicted`: those are removed from the cluster
    before the first binding, must be placed nowhere (None or no entry), and
    each needs a preemptor (SCHED-PREEMPTION-JUSTIFIED).
    """
    by_key = {p.key: p for p in pods}
    out: list[Violation] = []
    gone: set[str] = set()
    for key in evicted:
        victim = by_key.get(key)
        where = placements.get(key)
        if victim is None or not victim.node_name:
            out.append(
                Violation(
                    PREEMPTION_JUSTIFIED,
                    -1,
                    f"evicted pod {key} was not running",
                    {"pod": key},
                )
            )
        elif key in gone:
            out.append(
                Violation(PREEMPTION_JUSTIFIED, -1, f"pod {key} is evicted twice", {"pod": key})
            )
        else:
            gone.add(key)
        if where is not None:
            out.append(
                Violation(
                    PREEMPTION_JUSTIFIED,
                    -1,
                    f"evicted pod {key} is still placed on {where}",
                    {"pod": key, "node": where},
                )
            )
    keys = list(order) if order is not None else list(placements)
    in_order = set(keys)
    for key, node in placements.items():
        pod = by_key.get(key)
        if key in gone:
            continue
        if pod is not None and pod.node_name:
            if node != pod.node_name:
                out.append(
                    Violation(
                        BIND_ONCE,
                        -1,
                        f"running pod {key} on {pod.node_name} is placed on {node}",
                        {"pod": key, "node": node, "running_on": pod.node_name},
                    )
                )
        elif node is not None and key not in in_order:
            out.append(
                Violation(
                    BIND_ONCE,
                    -1,
                    f"pod {key} is placed on {node} but missing from the binding order",
                    {"pod": key, "node": node},
                )
            )
    binds = [
        Bind(key, node)
        for key in keys
        if (node := placements.get(key)) is not None
        and not (key in by_key and by_key[key].node_name)
    ]
    remaining = [p for p in pods if p.key not in gone]
    out += check_bindings(nodes, remaining, binds)
    for key in sorted(gone):
        victim = by_key[key]
        preemptors = [
            by_key[b.pod]
            for b in binds
            if b.node == victim.node_name
            and b.pod in by_key
            and by_key[b.pod].priority > victim.priority
            and by_key[b.pod].preemption_policy != "Never"
        ]
        if not preemptors:
            out.append(
                Violation(
                    PREEMPTION_JUSTIFIED,
                    -1,
                    f"pod {key} (priority {victim.priority}) on {victim.node_name} is evicted, "
                    "but no pod of higher priority that may preempt is bound to that node",
                    {"pod": key, "node": victim.node_name, "priority": victim.priority},
                )
            )
    return out


def superfluous_evictions(
    nodes: Sequence[Node],
    pods: Sequence[Pod],
    placements: Mapping[str, str | None],
    order: Sequence[str] | None,
    evicted: Sequence[str],
) -> list[str]:
    """The evicted pods that could have stayed: with any one of them back, every binding holds."""
    by_key = {p.key: p for p in pods}
    out = []
    for key in evicted:
        back = {**placements, key: by_key[key].node_name}
        rest = [k for k in evicted if k != key]
        found = check_placement(nodes, pods, back, order, rest)
        if not any(v.invariant in (NO_OVERCOMMIT, HARD_CONSTRAINTS) for v in found):
            out.append(key)
    return out


class Budget(Protocol):
    """A PodDisruptionBudget: its namespace, selector and status.disruptionsAllowed."""

    @property
    def namespace(self) -> str: ...
    @property
    def selector(self) -> LabelSelector: ...
    @property
    def disruptions_allowed(self) -> int: ...


def pdb_violations(pods: Sequence[Pod], pdbs: Sequence[Budget], evicted: Sequence[str]) -> int:
    """Evictions beyond what each budget allows, summed over the budgets."""
    gone = [p for p in pods if p.key in set(evicted)]
    total = 0
    for b in pdbs:
        covered = sum(
            1
            for p in gone
            if p.labels
            and p.namespace == b.namespace
            and _selector_has_requirements(b.selector)
            and labels_selected(b.selector, p.labels)
        )
        total += max(0, covered - max(b.disruptions_allowed, 0))
    return total
