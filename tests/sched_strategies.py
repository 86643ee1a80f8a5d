"""Hypothesis strategies for small clusters and pods (scheduler tests)."""

from __future__ import annotations

from hypothesis import strategies as st

from kubeproof.sched.model import (
    Affinity,
    LabelSelector,
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
    Taint,
    Toleration,
    TopologySpreadConstraint,
    WeightedPodAffinityTerm,
)
from tests.sched_helpers import node, pod

ZONE = "topology.kubernetes.io/zone"
HOST = "kubernetes.io/hostname"
APPS = ("web", "db", "cache")


@st.composite
def nodes_st(draw: st.DrawFn, max_nodes: int = 6) -> list[Node]:
    n = draw(st.integers(1, max_nodes))
    out = []
    for i in range(n):
        taints = draw(
            st.lists(
                st.builds(
                    Taint,
                    st.sampled_from(["dedicated", "spot"]),
                    st.sampled_from(["NoSchedule", "PreferNoSchedule", "NoExecute"]),
                    st.sampled_from(["", "gpu"]),
                ),
                max_size=1,
            )
        )
        out.append(
            node(
                f"n{i}",
                cpu=draw(st.sampled_from([500, 1000, 2000, 4000])),
                mem=draw(st.sampled_from([1000, 4000, 8000])),
                pods=draw(st.integers(1, 6)),
                labels={ZONE: draw(st.sampled_from(["a", "b", "c"]))},
                taints=taints,
                unschedulable=draw(st.booleans()) and draw(st.booleans()),
            )
        )
    return out


def _affinity(draw: st.DrawFn) -> Affinity | None:
    kind = draw(st.sampled_from(["none", "none", "anti", "aff", "node", "pref"]))
    app = draw(st.sampled_from(APPS))
    key = draw(st.sampled_from([HOST, ZONE]))
    term = PodAffinityTerm(key, LabelSelector({"app": app}))
    if kind == "anti":
        return Affinity(pod_anti_affinity=PodAntiAffinity((term,)))
    if kind == "aff":
        return Affinity(pod_affinity=PodAffinity((term,)))
    if kind == "node":
        req = NodeSelectorRequirement(ZONE, "In", (draw(st.sampled_from(["a", "b"])),))
        return Affinity(node_affinity=NodeAffinity(NodeSelector((NodeSelectorTerm((req,)),))))
    if kind == "pref":
        req = NodeSelectorRequirement(ZONE, "In", ("a",))
        return Affinity(
            node_affinity=NodeAffinity(
                preferred=(PreferredSchedulingTerm(5, NodeSelectorTerm((req,))),)
            ),
            pod_affinity=PodAffinity(preferred=(WeightedPodAffinityTerm(3, term),)),
        )
    return None


@st.composite
def pod_st(draw: st.DrawFn, name: str, node_name: str = "") -> Pod:
    app = draw(st.sampled_from(APPS))
    spread: tuple[TopologySpreadConstraint, ...] = ()
    if draw(st.integers(0, 4)) == 0:
        spread = (
            TopologySpreadConstraint(
                draw(st.integers(1, 2)),
                draw(st.sampled_from([ZONE, HOST])),
                draw(st.sampled_from(["DoNotSchedule", "ScheduleAnyway"])),
                LabelSelector({"app": app}),
            ),
        )
    tolerations: tuple[Toleration, ...] = ()
    if draw(st.booleans()):
        tolerations = (Toleration("dedicated", "Exists"),)
    return pod(
        name,
        draw(st.sampled_from([None, 0, 100, 300, 700, 1500])),
        draw(st.sampled_from([None, 100, 1000, 3000])),
        labels={"app": app},
        node_name=node_name,
        priority=draw(st.sampled_from([0, 0, 10, 100])),
        tolerations=tolerations,
        affinity=_affinity(draw),
        spread=spread,
        host_ports=draw(st.sampled_from([(), (), (8080,)])),
    )


@st.composite
def clusters(
    draw: st.DrawFn, max_nodes: int = 6, max_pods: int = 8
) -> tuple[list[Node], list[Pod], list[Pod]]:
    """(nodes, running pods that fit their nodes, pending pods)."""
    nodes = draw(nodes_st(max_nodes))
    running: list[Pod] = []
    used: dict[str, list[int]] = {n.name: [0, 0, 0] for n in nodes}
    for i in range(draw(st.integers(0, 4))):
        target = draw(st.sampled_from(nodes))
        p = draw(pod_st(f"run{i}", target.name))
        r = p.requests()
        u = used[target.name]
        a = target.allocatable
        if (
            u[0] + r.milli_cpu <= a.milli_cpu
            and u[1] + r.memory <= a.memory
            and u[2] + 1 <= a.pods
            and not p.host_ports()
        ):
            u[0] += r.milli_cpu
            u[1] += r.memory
            u[2] += 1
            running.append(p)
    pending = [draw(pod_st(f"p{i}")) for i in range(draw(st.integers(1, max_pods)))]
    return nodes, running, pending
