"""The spec's scheduler checker: each rule on hand-made bindings, every greedy binding, the mutants.

Semantics pinned: kube-scheduler v1.32.
"""

from __future__ import annotations

import pytest
from hypothesis import Phase, find, given, settings

from kubeproof.sched.model import (
    Affinity,
    Container,
    ContainerPort,
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
    Resources,
    Taint,
    Toleration,
    TopologySpreadConstraint,
)
from kubeproof.sched.scheduler import schedule
from kubeproof.sched.solver import solve
from kubeproof.spec.sched import (
    BIND_ONCE,
    HARD_CONSTRAINTS,
    NO_OVERCOMMIT,
    Bind,
    check_bindings,
    check_placement,
)
from tests.mutants.sched_mutants import MUTANTS, mutant_solve
from tests.sched_solver_strategies import HOST, ZONE, clusters

GI = 1 << 30
GPU = "example.com/gpu"
Cluster = tuple[list[Node], list[Pod]]
MAX_EXAMPLES = 200
FOCUS = {"spread_skew_off_by_one": "spread", "anti_affinity_one_way": "anti"}


def node(name: str, cpu: int = 4000, pods: int = 110, gpu: int = 0, **kw: object) -> Node:
    labels = {HOST: name, **kw.pop("labels", {})}  # type: ignore[dict-item]
    alloc = Resources(cpu, 4 * GI, 0, pods, {GPU: gpu})
    return Node(name, labels=labels, allocatable=alloc, capacity=alloc, **kw)  # type: ignore[arg-type]


def pod(
    name: str,
    cpu: int = 0,
    *,
    gpu: int = 0,
    ports: tuple[ContainerPort, ...] = (),
    node_name: str = "",
    **kw: object,
) -> Pod:
    req = Resources(cpu, 0, 0, 0, {GPU: gpu})
    c = Container("c", requests=req, requested_names=frozenset(req.names()), ports=ports)
    return Pod(name, containers=(c,), node_name=node_name, **kw)  # type: ignore[arg-type]


def bind(nodes: list[Node], pods: list[Pod], *pairs: tuple[str, str]) -> list[tuple[str, str]]:
    found = check_bindings(nodes, pods, [Bind(f"default/{p}", n) for p, n in pairs])
    return [(v.invariant, v.message) for v in found]


def kinds(found: list[tuple[str, str]]) -> set[str]:
    return {inv for inv, _ in found}


# --------------------------------------------------------------------------- SCHED-NO-OVERCOMMIT


def test_overcommit_by_one_unit_is_caught_and_exact_fit_is_not() -> None:
    nodes = [node("n1", 1000, gpu=1)]
    assert bind(nodes, [pod("a", 600), pod("b", 400)], ("a", "n1"), ("b", "n1")) == []
    found = bind(nodes, [pod("a", 600), pod("b", 401)], ("a", "n1"), ("b", "n1"))
    assert kinds(found) == {NO_OVERCOMMIT} and "cpu" in found[0][1]
    found = bind(nodes, [pod("g1", gpu=1), pod("g2", gpu=1)], ("g1", "n1"), ("g2", "n1"))
    assert kinds(found) == {NO_OVERCOMMIT} and GPU in found[0][1]


def test_pod_count_and_running_pods_count() -> None:
    nodes = [node("n1", pods=2)]
    pods = [pod("old", node_name="n1"), pod("a"), pod("b")]
    found = bind(nodes, pods, ("a", "n1"), ("b", "n1"))
    assert kinds(found) == {NO_OVERCOMMIT} and "3 pods" in found[0][1]


def test_running_overcommit_is_not_the_binders_fault_unless_it_asks_for_more() -> None:
    nodes = [node("n1", 1000)]
    pods = [pod("old", 1500, node_name="n1"), pod("zero"), pod("more", 1)]
    assert bind(nodes, pods, ("zero", "n1")) == []
    assert kinds(bind(nodes, pods, ("more", "n1"))) == {NO_OVERCOMMIT}


# --------------------------------------------------------------------------- node-level rules


def test_taints_and_the_shapes_of_tolerations() -> None:
    t = Taint("dedicated", "NoSchedule", "gpu")
    nodes = [node("n1", taints=(t,))]

    def verdict(*tols: Toleration) -> set[str]:
        return kinds(bind(nodes, [pod("p", tolerations=tols)], ("p", "n1")))

    assert verdict() == {HARD_CONSTRAINTS}
    assert verdict(Toleration("dedicated", "Equal", "gpu")) == set()
    assert verdict(Toleration("dedicated", "Equal", "db")) == {HARD_CONSTRAINTS}  # value differs
    assert verdict(Toleration("dedicated", "Exists")) == set()
    assert verdict(Toleration("dedicated", "Exists", "", "NoExecute")) == {HARD_CONSTRAINTS}
    assert verdict(Toleration("", "Exists")) == set()  # tolerates everything
    soft = [node("n1", taints=(Taint("spot", "PreferNoSchedule"),))]
    assert bind(soft, [pod("p")], ("p", "n1")) == []


def test_unschedulable_node_admits_only_the_tolerating_pod() -> None:
    nodes = [node("n1", unschedulable=True)]
    tol = Toleration("node.kubernetes.io/unschedulable", "Exists", "", "NoSchedule")
    assert kinds(bind(nodes, [pod("p")], ("p", "n1"))) == {HARD_CONSTRAINTS}
    assert bind(nodes, [pod("p", tolerations=(tol,))], ("p", "n1")) == []


def test_node_selector_and_every_affinity_operator() -> None:
    nodes = [node("n1", labels={"rank": "3", "disk": "ssd"})]

    def ok(
        *reqs: NodeSelectorRequirement, fields: tuple[NodeSelectorRequirement, ...] = ()
    ) -> bool:
        aff = Affinity(NodeAffinity(NodeSelector((NodeSelectorTerm(tuple(reqs), fields),))))
        return bind(nodes, [pod("p", affinity=aff)], ("p", "n1")) == []

    assert ok(NodeSelectorRequirement("disk", "In", ("ssd", "nvme")))
    assert not ok(NodeSelectorRequirement("disk", "NotIn", ("ssd",)))
    assert ok(NodeSelectorRequirement("zone", "NotIn", ("a",)))  # absent key: NotIn holds
    assert ok(NodeSelectorRequirement("rank", "Gt", ("2",)))
    assert not ok(NodeSelectorRequirement("rank", "Lt", ("3",)))
    assert not ok(NodeSelectorRequirement("zone", "Exists"))
    assert ok(NodeSelectorRequirement("zone", "DoesNotExist"))
    assert ok(fields=(NodeSelectorRequirement("metadata.name", "In", ("n1",)),))
    assert not ok(fields=(NodeSelectorRequirement("metadata.name", "NotIn", ("n1",)),))
    assert not ok()  # an empty term selects no node
    sel = kinds(bind(nodes, [pod("p", node_selector={"disk": "hdd"})], ("p", "n1")))
    assert sel == {HARD_CONSTRAINTS}


def test_host_ports_protocol_and_host_ip() -> None:
    nodes = [node("n1")]

    def clash(a: ContainerPort, b: ContainerPort) -> bool:
        pods = [pod("a", ports=(a,)), pod("b", ports=(b,))]
        return bool(bind(nodes, pods, ("a", "n1"), ("b", "n1")))

    assert clash(ContainerPort(80, 8080), ContainerPort(81, 8080))
    assert not clash(ContainerPort(80, 8080), ContainerPort(80, 8081))
    assert not clash(ContainerPort(80, 8080, "TCP"), ContainerPort(80, 8080, "UDP"))
    assert not clash(
        ContainerPort(80, 8080, "TCP", "10.0.0.1"), ContainerPort(80, 8080, "TCP", "10.0.0.2")
    )
    assert clash(ContainerPort(80, 8080, "TCP", "10.0.0.1"), ContainerPort(80, 8080, "TCP"))
    assert clash(ContainerPort(80, 8080, "TCP"), ContainerPort(80, 8080, "TCP", "10.0.0.1"))


# --------------------------------------------------------------------------- inter-pod rules


def _anti(selector: dict[str, str], key: str = HOST) -> Affinity:
    return Affinity(
        pod_anti_affinity=PodAntiAffinity((PodAffinityTerm(key, LabelSelector(selector)),))
    )


def test_anti_affinity_is_checked_in_both_directions() -> None:
    nodes = [node("n1", labels={ZONE: "a"}), node("n2", labels={ZONE: "a"})]
    # The incoming pod's own term.
    pods = [pod("web", labels={"app": "web"}), pod("x", affinity=_anti({"app": "web"}, ZONE))]
    assert kinds(bind(nodes, pods, ("web", "n1"), ("x", "n2"))) == {HARD_CONSTRAINTS}
    # The existing pod's term matching the incoming pod (the reverse check).
    pods = [pod("x", affinity=_anti({"app": "web"}, ZONE)), pod("web", labels={"app": "web"})]
    found = bind(nodes, pods, ("x", "n1"), ("web", "n2"))
    assert (
        kinds(found) == {HARD_CONSTRAINTS} and "default/x's required anti-affinity" in found[0][1]
    )
    # Another namespace is out of the term's reach.
    pods = [
        pod("web", labels={"app": "web"}, namespace="other"),
        pod("x", affinity=_anti({"app": "web"})),
    ]
    assert check_bindings(nodes, pods, [Bind("other/web", "n1"), Bind("default/x", "n1")]) == []


def test_namespace_selector_widens_the_term() -> None:
    nodes = [node("n1")]
    term = PodAffinityTerm(HOST, LabelSelector({"app": "web"}), (), LabelSelector({"team": "b"}))
    x = pod("x", affinity=Affinity(pod_anti_affinity=PodAntiAffinity((term,))))
    web = pod("web", labels={"app": "web"}, namespace="other", namespace_labels={"team": "b"})
    found = check_bindings([*nodes], [web, x], [Bind("other/web", "n1"), Bind("default/x", "n1")])
    assert {v.invariant for v in found} == {HARD_CONSTRAINTS}


def test_affinity_needs_a_partner_unless_it_is_the_first_of_its_kind() -> None:
    nodes = [node("n1", labels={ZONE: "a"}), node("n2", labels={ZONE: "b"})]
    term = PodAffinityTerm(ZONE, LabelSelector({"app": "db"}))
    aff = Affinity(pod_affinity=PodAffinity((term,)))
    # First pod of a self-affine group: allowed anywhere.
    first = [pod("db-0", labels={"app": "db"}, affinity=aff)]
    assert bind(nodes, first, ("db-0", "n2")) == []
    # Not self-matching and no partner anywhere: rejected.
    assert kinds(bind(nodes, [pod("web", affinity=aff)], ("web", "n1"))) == {HARD_CONSTRAINTS}
    # A partner in the other zone: rejected; in the same zone: accepted.
    pods = [pod("db", labels={"app": "db"}), pod("web", affinity=aff)]
    assert kinds(bind(nodes, pods, ("db", "n2"), ("web", "n1"))) == {HARD_CONSTRAINTS}
    assert bind(nodes, pods, ("db", "n1"), ("web", "n1")) == []
    # A node without the topology key never satisfies the term.
    keyless = [node("n3")]
    assert kinds(bind(keyless, first, ("db-0", "n3"))) == {HARD_CONSTRAINTS}


def _spread(
    skew: int = 1, min_domains: int | None = None, selector: LabelSelector | None = None
) -> tuple[TopologySpreadConstraint, ...]:
    sel = LabelSelector({"app": "s"}) if selector is None else selector
    return (TopologySpreadConstraint(skew, ZONE, label_selector=sel, min_domains=min_domains),)


def test_spread_skew_is_measured_at_each_binding() -> None:
    nodes = [node("a1", labels={ZONE: "a"}), node("b1", labels={ZONE: "b"})]
    pods = [
        pod(f"s{i}", labels={"app": "s"}, topology_spread_constraints=_spread()) for i in range(3)
    ]
    assert bind(nodes, pods, ("s0", "a1"), ("s1", "b1"), ("s2", "a1")) == []
    found = bind(nodes, pods, ("s0", "a1"), ("s1", "a1"))
    assert kinds(found) == {HARD_CONSTRAINTS} and "skew 2 > maxSkew 1" in found[0][1]
    # Off by one: maxSkew 2 allows what maxSkew 1 refuses.
    wide = [
        pod(f"s{i}", labels={"app": "s"}, topology_spread_constraints=_spread(2)) for i in range(2)
    ]
    assert bind(nodes, wide, ("s0", "a1"), ("s1", "a1")) == []


def test_spread_min_domains_and_the_empty_selector() -> None:
    nodes = [node("a1", labels={ZONE: "a"}), node("b1", labels={ZONE: "b"})]
    # Fewer eligible domains (2) than minDomains (3): the global minimum is 0.
    pods = [
        pod(f"s{i}", labels={"app": "s"}, topology_spread_constraints=_spread(1, 3))
        for i in range(2)
    ]
    assert kinds(bind(nodes, pods, ("s0", "a1"), ("s1", "b1"))) == set()
    pods3 = [*pods, pod("s2", labels={"app": "s"}, topology_spread_constraints=_spread(1, 3))]
    assert kinds(bind(nodes, pods3, ("s0", "a1"), ("s1", "b1"), ("s2", "a1"))) == {HARD_CONSTRAINTS}
    # An empty selector counts no pods at all.
    empty = [
        pod(f"s{i}", topology_spread_constraints=_spread(selector=LabelSelector()))
        for i in range(3)
    ]
    assert bind(nodes, empty, ("s0", "a1"), ("s1", "a1"), ("s2", "a1")) == []


def test_spread_counts_only_eligible_nodes() -> None:
    # b2 is excluded by the pod's node affinity (policy Honor): its pods do not count.
    nodes = [
        node("a1", labels={ZONE: "a", "pool": "x"}),
        node("b1", labels={ZONE: "b", "pool": "x"}),
        node("b2", labels={ZONE: "b", "pool": "y"}),
    ]
    sel = NodeSelectorTerm((NodeSelectorRequirement("pool", "In", ("x",)),))
    aff = Affinity(NodeAffinity(NodeSelector((sel,))))
    pods = [
        pod("old-0", labels={"app": "s"}, node_name="b2"),
        pod("old-1", labels={"app": "s"}, node_name="b2"),
        pod("s", labels={"app": "s"}, affinity=aff, topology_spread_constraints=_spread()),
    ]
    assert bind(nodes, pods, ("s", "b1")) == []


# --------------------------------------------------------------------------- SCHED-BIND-ONCE


def test_bind_once() -> None:
    nodes = [node("n1"), node("n2")]
    pods = [pod("old", node_name="n1"), pod("a")]
    assert kinds(bind(nodes, pods, ("a", "n1"), ("a", "n2"))) == {BIND_ONCE}
    assert kinds(bind(nodes, pods, ("old", "n2"))) == {BIND_ONCE}
    assert kinds(bind(nodes, pods, ("ghost", "n1"))) == {BIND_ONCE}
    assert kinds(bind(nodes, pods, ("a", "n9"))) == {HARD_CONSTRAINTS}
    moved = check_placement(nodes, pods, {"default/old": "n2", "default/a": "n1"})
    assert [v.invariant for v in moved] == [BIND_ONCE]
    assert check_placement(nodes, pods, {"default/old": "n1", "default/a": "n1"}) == []


def test_violation_names_step_and_evidence() -> None:
    nodes = [node("n1", 1000)]
    found = check_bindings(
        nodes, [pod("a", 800), pod("b", 800)], [Bind("default/a", "n1"), Bind("default/b", "n1")]
    )
    (v,) = found
    assert v.step == 1 and v.evidence["resource"] == "cpu" and v.evidence["total"] == 1600


# --------------------------------------------------------------------------- schedulers vs the checker


@settings(max_examples=60)
@given(clusters())
def test_every_greedy_binding_passes_the_checker(c: Cluster) -> None:
    nodes, pods = c
    r = schedule(nodes, pods)
    assert check_bindings(nodes, pods, [Bind(p, n) for p, n in r.bound]) == []


# --------------------------------------------------------------------------- mutants


def _node_req(cpu: int, pods: int = 110) -> Node:
    return node("n1", cpu, pods)


CONCRETE: dict[str, Cluster] = {
    "overcommit_by_one": ([node("n1", 1000)], [pod("a", 600), pod("b", 401)]),
    "anti_affinity_one_way": (
        [node("n1"), node("n2", 1000)],
        [
            pod("x", node_name="n1", affinity=_anti({"app": "web"})),
            pod("web", 2000, labels={"app": "web"}),
        ],
    ),
    "toleration_key_only": (
        [node("n1", taints=(Taint("dedicated", "NoSchedule", "gpu"),))],
        [pod("p", tolerations=(Toleration("dedicated", "Equal", "db", "NoSchedule"),))],
    ),
    "spread_skew_off_by_one": (
        [node("a1", labels={ZONE: "a"}), node("b1", 500, labels={ZONE: "b"})],
        [
            pod(f"s{i}", 500, labels={"app": "s"}, topology_spread_constraints=_spread())
            for i in range(3)
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutant_is_caught_on_a_concrete_cluster(name: str) -> None:
    misread, invariant = MUTANTS[name]
    nodes, pods = CONCRETE[name]
    broken = mutant_solve(misread, nodes, pods)
    found = check_placement(nodes, pods, broken.placements, broken.order)
    assert invariant in {v.invariant for v in found}
    honest = solve(nodes, pods, explain=False)
    assert check_placement(nodes, pods, honest.placements, honest.order) == []


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutant_is_caught_on_generated_clusters(name: str) -> None:
    """Within a bounded number of generated clusters, no shrinking."""
    misread, invariant = MUTANTS[name]

    def caught(c: Cluster) -> bool:
        nodes, pods = c
        broken = mutant_solve(misread, nodes, pods)
        found = check_placement(nodes, pods, broken.placements, broken.order)
        return invariant in {v.invariant for v in found}

    nodes, pods = find(
        clusters(focus=FOCUS.get(name, "")),
        caught,
        settings=settings(
            max_examples=MAX_EXAMPLES, phases=[Phase.generate], database=None, derandomize=True
        ),
    )
    honest = solve(nodes, pods, explain=False)
    assert check_placement(nodes, pods, honest.placements, honest.order) == []


def test_requirement_operators_in_label_selectors() -> None:
    nodes = [node("n1")]
    sel = LabelSelector({}, (LabelSelectorRequirement("app", "NotIn", ("db",)),))
    x = pod(
        "x", affinity=Affinity(pod_anti_affinity=PodAntiAffinity((PodAffinityTerm(HOST, sel),)))
    )
    assert kinds(bind(nodes, [pod("q"), x], ("q", "n1"), ("x", "n1"))) == {HARD_CONSTRAINTS}
    assert bind(nodes, [pod("q", labels={"app": "db"}), x], ("q", "n1"), ("x", "n1")) == []
