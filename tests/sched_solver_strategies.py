"""Hypothesis strategies for small scheduling problems: nodes, running pods, a pending batch.

Every hard-constraint feature kube-scheduler filters on is drawn: resources
(cpu, memory, pod count, an extended resource), host ports with protocols and
host IPs, taints of each effect against tolerations of every shape,
unschedulable nodes, nodeSelector and required node affinity with every
operator and matchFields, required pod affinity and anti-affinity over the
hostname and zone keys with namespaces and namespaceSelector, and DoNotSchedule
topology spread with maxSkew, minDomains and the inclusion policies.  Values
come from small pools so that pods and nodes actually interact.
`preemption_clusters` adds priorities, preemptionPolicy and
PodDisruptionBudgets.
"""

from __future__ import annotations

from functools import cache

import attrs
from hypothesis import strategies as st

from kubeproof.sched.load import PodDisruptionBudget
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

HOST = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"
GPU = "example.com/gpu"
GI = 1 << 30
NAMESPACE_LABELS = {"default": {"team": "a"}, "other": {"team": "b"}}

TAINTS = (
    Taint("dedicated", "NoSchedule", "gpu"),
    Taint("dedicated", "NoExecute", "db"),
    Taint("spot", "PreferNoSchedule", "true"),
    Taint("maintenance", "NoSchedule"),
)
TOLERATIONS = (
    Toleration("dedicated", "Equal", "gpu", "NoSchedule"),
    Toleration("dedicated", "Equal", "db", ""),
    Toleration("dedicated", "Exists", "", "NoSchedule"),
    Toleration("dedicated", "Equal", "gpu", "NoExecute"),
    Toleration("maintenance", "Exists"),
    Toleration("", "Exists", "", "NoSchedule"),
    Toleration("node.kubernetes.io/unschedulable", "Exists", "", "NoSchedule"),
)
APPS = ("web", "db", "cache")


@cache
def _label_selector() -> st.SearchStrategy[LabelSelector | None]:
    req = st.builds(
        LabelSelectorRequirement,
        st.just("app"),
        st.sampled_from(("In", "NotIn")),
        st.lists(st.sampled_from(APPS), min_size=1, max_size=2, unique=True).map(tuple),
    ) | st.builds(
        LabelSelectorRequirement,
        st.sampled_from(("app", "tier")),
        st.sampled_from(("Exists", "DoesNotExist")),
    )
    return st.one_of(
        st.builds(lambda a: LabelSelector({"app": a}), st.sampled_from(APPS)),
        st.builds(lambda rs: LabelSelector({}, tuple(rs)), st.lists(req, min_size=1, max_size=2)),
        st.just(LabelSelector()),
        st.none(),
    )


@st.composite
def nodes(draw: st.DrawFn, max_nodes: int = 4) -> list[Node]:
    out = []
    for i in range(draw(st.integers(1, max_nodes))):
        labels = {HOST: f"n{i}"}
        zone = draw(st.sampled_from(("a", "b", "c", None)))
        if zone is not None:
            labels[ZONE] = zone
        disk = draw(st.sampled_from(("ssd", "hdd", None)))
        if disk is not None:
            labels["disk"] = disk
        if draw(st.booleans()):
            labels["rank"] = str(draw(st.integers(1, 5)))
        alloc = Resources(
            draw(st.sampled_from((0, 1000, 2000, 4000))),
            draw(st.sampled_from((GI, 2 * GI, 4 * GI))),
            0,
            draw(st.sampled_from((1, 2, 3, 110))),
            {GPU: draw(st.sampled_from((0, 1, 2)))},
        )
        taints = tuple(draw(st.lists(st.sampled_from(TAINTS), max_size=2, unique=True)))
        out.append(
            Node(
                f"n{i}",
                labels=labels,
                allocatable=alloc,
                capacity=alloc,
                taints=taints,
                unschedulable=draw(st.integers(0, 9)) == 0,
            )
        )
    return out


@cache
def _node_affinity(node_names: tuple[str, ...]) -> st.SearchStrategy[NodeAffinity]:
    expr = st.one_of(
        st.builds(
            NodeSelectorRequirement,
            st.just(ZONE),
            st.sampled_from(("In", "NotIn")),
            st.lists(st.sampled_from(("a", "b", "c")), min_size=1, max_size=2, unique=True).map(
                tuple
            ),
        ),
        st.builds(
            NodeSelectorRequirement,
            st.sampled_from(("disk", ZONE, "rank")),
            st.sampled_from(("Exists", "DoesNotExist")),
        ),
        st.builds(
            NodeSelectorRequirement,
            st.just("rank"),
            st.sampled_from(("Gt", "Lt")),
            st.integers(1, 5).map(lambda v: (str(v),)),
        ),
    )
    field = st.builds(
        NodeSelectorRequirement,
        st.just("metadata.name"),
        st.sampled_from(("In", "NotIn")),
        st.sampled_from(node_names).map(lambda n: (n,)),
    )
    term = st.builds(
        NodeSelectorTerm,
        st.lists(expr, max_size=2).map(tuple),
        st.lists(field, max_size=1).map(tuple),
    )
    return st.builds(
        lambda terms: NodeAffinity(NodeSelector(tuple(terms))),
        st.lists(term, min_size=1, max_size=2),
    )


@cache
def _pod_term() -> st.SearchStrategy[PodAffinityTerm]:
    return st.builds(
        PodAffinityTerm,
        st.sampled_from((HOST, ZONE)),
        _label_selector(),
        st.sampled_from(((), ("other",), ("default", "other"))),
        st.sampled_from((None, None, LabelSelector(), LabelSelector({"team": "b"}))),
    )


@cache
def _spread() -> st.SearchStrategy[TopologySpreadConstraint]:
    return st.builds(
        TopologySpreadConstraint,
        st.integers(1, 2),
        st.sampled_from((ZONE, HOST)),
        st.just("DoNotSchedule"),
        _label_selector(),
        st.sampled_from((None, None, 2, 4)),
        st.sampled_from(("Honor", "Ignore")),
        st.sampled_from(("Ignore", "Honor")),
    )


@cache
def _pod_affinity() -> st.SearchStrategy[PodAffinity | None]:
    return (
        st.none()
        | st.none()
        | st.none()
        | st.builds(
            lambda ts: PodAffinity(tuple(ts)), st.lists(_pod_term(), min_size=1, max_size=2)
        )
    )


@cache
def _pod_anti_affinity() -> st.SearchStrategy[PodAntiAffinity | None]:
    return (
        st.none()
        | st.none()
        | st.builds(
            lambda ts: PodAntiAffinity(tuple(ts)), st.lists(_pod_term(), min_size=1, max_size=2)
        )
    )


@cache
def _tolerations() -> st.SearchStrategy[list[Toleration]]:
    return st.lists(st.sampled_from(TOLERATIONS), max_size=3, unique=True)


@st.composite
def pods(
    draw: st.DrawFn, node_names: list[str], name: str, running_on: str = "", focus: str = ""
) -> Pod:
    ns = draw(st.sampled_from(("default", "default", "other")))
    labels = {}
    app = draw(st.sampled_from((*APPS, None))) if not focus else "web"
    if app is not None:
        labels["app"] = app
    if draw(st.booleans()):
        labels["tier"] = "front"
    requests = Resources(
        draw(st.sampled_from((0, 100, 500, 1000, 2000))),
        draw(st.sampled_from((0, GI // 4, GI))),
        0,
        0,
        {GPU: draw(st.sampled_from((0, 0, 1)))},
    )
    ports: tuple[ContainerPort, ...] = ()
    if draw(st.integers(0, 3)) == 0:
        ports = (
            ContainerPort(
                80,
                draw(st.sampled_from((80, 8080))),
                draw(st.sampled_from(("TCP", "TCP", "UDP"))),
                draw(st.sampled_from(("", "", "10.0.0.1", "10.0.0.2"))),
            ),
        )
    container = Container(
        "c", requests=requests, requested_names=frozenset(requests.names()), ports=ports
    )
    node_selector = draw(st.sampled_from(({}, {}, {}, {"disk": "ssd"}, {ZONE: "a"})))
    node_aff = draw(st.none() | st.none() | _node_affinity(tuple(node_names)))
    pod_aff = draw(_pod_affinity())
    pod_anti = draw(_pod_anti_affinity())
    affinity = None
    if node_aff or pod_aff or pod_anti:
        affinity = Affinity(node_aff, pod_aff, pod_anti)
    spread: tuple[TopologySpreadConstraint, ...] = ()
    if focus == "anti":
        ns = "default"
        pod_aff = None
        pod_anti = (
            PodAntiAffinity(
                (
                    PodAffinityTerm(
                        draw(st.sampled_from((HOST, ZONE))), LabelSelector({"app": "web"})
                    ),
                )
            )
            if running_on
            else None
        )
        affinity = Affinity(node_aff, None, pod_anti) if node_aff or pod_anti else None
    if focus == "spread":
        ns = "default"
        spread = (
            TopologySpreadConstraint(
                draw(st.integers(1, 2)), ZONE, label_selector=LabelSelector({"app": "web"})
            ),
        )
    elif draw(st.integers(0, 3)) == 0:
        # One constraint per topology key: kube v1.32 and later differ when
        # two constraints of a pod share a key.
        first = draw(_spread())
        spread = (first,)
        if draw(st.booleans()):
            second = draw(_spread())
            if second.topology_key != first.topology_key:
                spread = (first, second)
    return Pod(
        name,
        namespace=ns,
        labels=labels,
        containers=(container,),
        node_name=running_on,
        node_selector=node_selector,
        affinity=affinity,
        tolerations=tuple(draw(_tolerations())),
        topology_spread_constraints=spread,
        namespace_labels=NAMESPACE_LABELS[ns],
    )


@st.composite
def clusters(
    draw: st.DrawFn,
    max_nodes: int = 4,
    max_running: int = 3,
    max_batch: int = 5,
    focus: str = "",
) -> tuple[list[Node], list[Pod]]:
    """(nodes, pods): some pods running (node_name set), the rest pending.

    `focus` makes one feature bite, for tests that need it to: "spread" gives
    every pod the label app=web and a zone spread constraint counting app=web;
    "anti" labels every pod app=web and gives only the running pods a required
    anti-affinity against app=web.
    """
    ns = draw(nodes(max_nodes))
    names = [n.name for n in ns]
    out = []
    for i in range(draw(st.integers(0, max_running))):
        out.append(draw(pods(names, f"run-{i}", draw(st.sampled_from(names)), focus)))
    for i in range(draw(st.integers(1, max_batch))):
        out.append(draw(pods(names, f"pod-{i}", focus=focus)))
    return ns, out


PRIORITIES = (0, 5, 10)


@st.composite
def _pressed_nodes(draw: st.DrawFn, max_nodes: int) -> list[Node]:
    out = []
    for i in range(draw(st.integers(1, max_nodes))):
        alloc = Resources(
            draw(st.sampled_from((1000, 1000, 2000))), 4 * GI, 0, draw(st.sampled_from((2, 3, 110)))
        )
        labels = {HOST: f"n{i}", ZONE: draw(st.sampled_from(("a", "b")))}
        out.append(Node(f"n{i}", labels=labels, allocatable=alloc, capacity=alloc))
    return out


@st.composite
def _pressed_pod(draw: st.DrawFn, name: str, running_on: str = "") -> Pod:
    """A pod that competes for room: cpu, sometimes a host port, anti-affinity, affinity, spread."""
    ns = draw(st.sampled_from(("default", "default", "default", "other")))
    app = draw(st.sampled_from(APPS))
    cpu = draw(st.sampled_from((300, 500, 700, 1000)))
    ports = (ContainerPort(80, 8080),) if draw(st.integers(0, 4)) == 0 else ()
    container = Container(
        "c", requests=Resources(cpu), requested_names=frozenset({"cpu"}), ports=ports
    )
    anti = aff = None
    kind = draw(st.integers(0, 9))
    term = PodAffinityTerm(
        draw(st.sampled_from((HOST, ZONE))), LabelSelector({"app": draw(st.sampled_from(APPS))})
    )
    if kind <= 1:
        anti = PodAntiAffinity((term,))
    elif kind == 2:
        aff = PodAffinity((term,))
    affinity = Affinity(None, aff, anti) if aff or anti else None
    spread: tuple[TopologySpreadConstraint, ...] = ()
    if kind == 3:
        spread = (TopologySpreadConstraint(1, ZONE, label_selector=LabelSelector({"app": app})),)
    return Pod(
        name,
        namespace=ns,
        labels={"app": app},
        containers=(container,),
        node_name=running_on,
        affinity=affinity,
        topology_spread_constraints=spread,
        namespace_labels=NAMESPACE_LABELS[ns],
    )


@st.composite
def preemption_clusters(
    draw: st.DrawFn,
    max_nodes: int = 3,
    max_running: int = 4,
    max_batch: int = 3,
    pressed: bool | None = None,
) -> tuple[list[Node], list[Pod], list[PodDisruptionBudget]]:
    """(nodes, pods, budgets) where preemption can matter.

    A third of the clusters are drawn as in `clusters` (every filter
    feature), the rest are *pressed*: small nodes full of running pods that compete with the
    batch for cpu, the pod count, a host port, anti-affinity, affinity
    partners and spread.  Every pod gets a priority from a small pool, so
    that equal priorities are common; a fifth of the batch has
    ``preemptionPolicy: Never``.  Running pods are placed regardless of the
    filters, as running pods may be.  Up to two PodDisruptionBudgets select
    pods by app label, allowing 0 or 1 disruption.  `pressed` forces the
    kind of cluster.
    """
    if pressed is None:
        pressed = draw(st.integers(0, 2)) > 0
    ns = draw(_pressed_nodes(max_nodes) if pressed else nodes(max_nodes))
    names = [n.name for n in ns]

    def one(name: str, running_on: str = "") -> Pod:
        if pressed:
            return draw(_pressed_pod(name, running_on))
        return draw(pods(names, name, running_on))

    out = []
    for i in range(draw(st.integers(min(2, max_running) if pressed else 1, max_running))):
        p = one(f"run-{i}", draw(st.sampled_from(names)))
        out.append(attrs.evolve(p, priority=draw(st.sampled_from(PRIORITIES))))
    for i in range(draw(st.integers(1, max_batch))):
        p = one(f"pod-{i}")
        policy = "Never" if draw(st.integers(0, 4)) == 0 else "PreemptLowerPriority"
        out.append(
            attrs.evolve(
                p, priority=draw(st.sampled_from(PRIORITIES[1:])), preemption_policy=policy
            )
        )
    budgets = [
        PodDisruptionBudget(
            draw(st.sampled_from(("default", "default", "other"))),
            f"pdb-{i}",
            LabelSelector({"app": draw(st.sampled_from(APPS))}),
            draw(st.integers(0, 1)),
        )
        for i in range(draw(st.integers(0, 2)))
    ]
    return ns, out, budgets
