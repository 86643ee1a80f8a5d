"""Each default plugin against kube-scheduler's documented behaviour.

Pinned: kube-scheduler v1.32.  Expected scores are computed by hand from the
formulas in the plugin docstrings (and /work/shared/reference/kube-scheduler.md),
integer arithmetic as Go does it; the arithmetic is written out in comments.
"""

from __future__ import annotations

import pytest

from kubeproof.sched.model import (
    Affinity,
    ContainerImage,
    LabelSelector,
    LabelSelectorRequirement,
    Node,
    NodeAffinity,
    NodeSelector,
    NodeSelectorRequirement,
    NodeSelectorTerm,
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
from kubeproof.sched.plugins.basic import port_conflict
from kubeproof.sched.plugins.image_locality import normalized_image_name
from kubeproof.sched.plugins.node_resources import broken_linear, go_round
from kubeproof.sched.selectors import tolerates
from tests.sched_helpers import MI, Env, config, node, pod, run

HEAD = "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n"


def fit_config(body: str) -> str:
    return HEAD + "profiles:\n- pluginConfig:\n  - name: NodeResourcesFit\n    args:\n" + body


# --------------------------------------------------------------------- NodeResourcesFit


def test_fit_filter_reasons() -> None:
    env = Env(
        [
            node("small", cpu=1000, mem=1000),
            node("full", cpu=4000, mem=4000, pods=1),
            node("gpu", cpu=4000, mem=4000, scalar={"nvidia.com/gpu": 1}),
        ],
        running=[pod("r1", 600, 100, node_name="small"), pod("r2", 0, 0, node_name="full")],
    )
    got = env.filter_reasons(pod("p", 500, 2000, scalar={"nvidia.com/gpu": 2}))
    # 500 > 1000-600 and 2000 > 1000-100; one more pod than allowed; 2 GPUs > 1.
    assert got["small"] == (
        "NodeResourcesFit: Insufficient cpu, Insufficient memory, Insufficient nvidia.com/gpu"
    )
    assert got["full"].startswith("NodeResourcesFit: Too many pods")
    assert got["gpu"] == "NodeResourcesFit: Insufficient nvidia.com/gpu"


def test_fit_pod_without_requests_checks_pod_count_only() -> None:
    env = Env(
        [node("n", cpu=1000, mem=1000, pods=2)], running=[pod("r", 1000, 1000, node_name="n")]
    )
    assert env.filter_reasons(pod("p")) == {"n": ""}


def test_fit_ignored_extended_resources() -> None:
    cfg = config(fit_config("      ignoredResources: [example.com/foo]\n"))
    env = Env([node("n")], config=cfg)
    assert env.filter_reasons(pod("p", scalar={"example.com/foo": 5})) == {"n": ""}
    assert (
        "Insufficient example.com/bar"
        in env.filter_reasons(pod("q", scalar={"example.com/bar": 5}))["n"]
    )


def _two_nodes() -> Env:
    # n1: 4000m / 10000 bytes with a pod requesting 1000m / 2000; n2: 6000m / 10000, empty.
    return Env(
        [node("n1", cpu=4000, mem=10000), node("n2", cpu=6000, mem=10000)],
        running=[pod("r", 1000, 2000, node_name="n1")],
    )


def test_least_allocated() -> None:
    env = _two_nodes()
    got = env.scores(pod("p", 1000, 2000), "NodeResourcesFit")
    # n1: cpu (4000-2000)*100/4000 = 50, mem (10000-4000)*100/10000 = 60 -> (50+60)/2 = 55
    # n2: cpu (6000-1000)*100/6000 = 83, mem (10000-2000)*100/10000 = 80 -> 163/2 = 81
    assert got == {"n1": 55, "n2": 81}


def test_least_allocated_resource_weights() -> None:
    cfg = config(
        fit_config(
            "      scoringStrategy:\n        type: LeastAllocated\n"
            "        resources: [{name: cpu, weight: 3}, {name: memory, weight: 1}]\n"
        )
    )
    env = Env([node("n2", cpu=6000, mem=10000)], config=cfg)
    # (83*3 + 80*1) / 4 = 329/4 = 82
    assert env.scores(pod("p", 1000, 2000), "NodeResourcesFit") == {"n2": 82}


def test_non_zero_defaults_only_for_scoring() -> None:
    env = Env([node("n", cpu=4000, mem=1024 * MI)])
    # A pod with no requests is scored as 100m / 200Mi:
    # cpu (4000-100)*100/4000 = 97, mem (1024-200)*100/1024 = 80 -> 177/2 = 88
    assert env.scores(pod("p"), "NodeResourcesFit") == {"n": 88}


def test_most_allocated() -> None:
    cfg = config(fit_config("      scoringStrategy: {type: MostAllocated}\n"))
    env = Env(
        [node("n1", cpu=4000, mem=10000), node("n2", cpu=1000, mem=10000)],
        running=[pod("r", 1000, 2000, node_name="n1")],
        config=cfg,
    )
    # n1: cpu 2000*100/4000 = 50, mem 4000*100/10000 = 40 -> 45
    # n2: cpu 1000 capped at 1000 -> 100, mem 2000*100/10000 = 20 -> 60
    assert env.scores(pod("p", 1000, 2000), "NodeResourcesFit") == {"n1": 45, "n2": 60}


def test_requested_to_capacity_ratio() -> None:
    shape = (
        "      scoringStrategy:\n        type: RequestedToCapacityRatio\n"
        "        requestedToCapacityRatio:\n          shape:\n"
        "          - {utilization: 0, score: 0}\n          - {utilization: 30, score: 5}\n"
        "          - {utilization: 100, score: 10}\n"
    )
    env = Env(
        [node("n1", cpu=4000, mem=10000)],
        running=[pod("r", 1000, 2000, node_name="n1")],
        config=config(fit_config(shape)),
    )
    # Shape scaled x10: (0,0) (30,50) (100,100).
    # cpu utilization 2000*100/4000 = 50 -> 50 + (100-50)*(50-30)/(100-30) = 50 + 1000/70 = 64
    # mem utilization 4000*100/10000 = 40 -> 50 + 50*10/70 = 57
    # round((64 + 57) / 2) = round(60.5) = 61 (Go rounds half away from zero)
    assert env.scores(pod("p", 1000, 2000), "NodeResourcesFit") == {"n1": 61}


def test_broken_linear_truncates_toward_zero_like_go() -> None:
    # A decreasing shape: 100 + (0-100)*(33-0)/100 = 100 - 33 (Go truncates -33.0 to -33)
    assert broken_linear(((0, 100), (100, 0)), 33) == 67
    assert broken_linear(((10, 100), (100, 0)), 5) == 100  # flat before the first point
    assert broken_linear(((0, 0), (50, 70)), 90) == 70  # flat after the last
    # -70*7/50 = -9.8 -> -9 in Go (Python's // would give -10)
    assert broken_linear(((0, 70), (50, 0)), 7) == 61
    assert go_round(46.5) == 47 and go_round(2.5) == 3 and go_round(0.49999999999999994) == 0


def test_balanced_allocation_two_and_three_resources() -> None:
    env = _two_nodes()
    got = env.scores(pod("p", 1000, 2000), "NodeResourcesBalancedAllocation")
    # n1: cpu 2000/4000 = 0.5, mem 4000/10000 = 0.4 -> std 0.05 -> int(95.0...) = 95
    # n2: cpu 1000/6000 = 0.1667, mem 0.2 -> std 0.01667 -> int(98.33) = 98
    assert got == {"n1": 95, "n2": 98}
    cfg = config(
        HEAD + "profiles:\n- pluginConfig:\n  - name: NodeResourcesBalancedAllocation\n"
        "    args: {resources: [{name: cpu}, {name: memory}, {name: example.com/gpu}]}\n"
    )
    env3 = Env([node("g", cpu=4000, mem=10000, scalar={"example.com/gpu": 4})], config=cfg)
    p = pod("p", 2000, 4000, scalar={"example.com/gpu": 1})
    # fractions 0.5, 0.4, 0.25: mean 0.38333, population std 0.10274 -> int(89.7) = 89
    assert env3.scores(p, "NodeResourcesBalancedAllocation") == {"g": 89}


def test_balanced_allocation_uses_actual_requests() -> None:
    env = Env([node("n", cpu=4000, mem=4000)], running=[pod("r", 2000, 0, node_name="n")])
    # The pod requests nothing: fractions 0.5 and 0 -> std 0.25 -> 75 (no 100m/200Mi defaults).
    assert env.scores(pod("p"), "NodeResourcesBalancedAllocation") == {"n": 75}


# --------------------------------------------------------------------- TaintToleration


def test_toleration_matching_rules() -> None:
    t = Taint("dedicated", "NoSchedule", "gpu")
    assert tolerates(Toleration("dedicated", "Equal", "gpu", "NoSchedule"), t)
    assert tolerates(Toleration("dedicated", "Equal", "gpu", ""), t)  # empty effect: all
    assert tolerates(Toleration("dedicated", "Exists"), t)
    assert tolerates(Toleration("", "Exists"), t)  # empty key + Exists: everything
    assert not tolerates(Toleration("dedicated", "Equal", "cpu"), t)  # key alone is not enough
    assert not tolerates(Toleration("dedicated", "Equal", "gpu", "NoExecute"), t)
    assert not tolerates(Toleration("other", "Exists"), t)


def test_taint_filter_message_and_effects() -> None:
    env = Env(
        [
            node("gpu", taints=[Taint("dedicated", "NoSchedule", "gpu")]),
            node("evict", taints=[Taint("maintenance", "NoExecute")]),
            node("soft", taints=[Taint("spot", "PreferNoSchedule", "true")]),
        ]
    )
    got = env.filter_reasons(pod("p"))
    assert got == {
        "gpu": "TaintToleration: node(s) had untolerated taint {dedicated: gpu}",
        "evict": "TaintToleration: node(s) had untolerated taint {maintenance: }",
        "soft": "",
    }
    tolerant = pod("q", tolerations=[Toleration("", "Exists")])
    assert set(env.filter_reasons(tolerant).values()) == {""}


def test_taint_score_reverse_normalized() -> None:
    soft = [Taint("a", "PreferNoSchedule"), Taint("b", "PreferNoSchedule")]
    env = Env([node("n0"), node("n1", taints=soft[:1]), node("n2", taints=soft)])
    # raw intolerable PreferNoSchedule counts 0, 1, 2 -> 100 - 100*s/2
    assert env.scores(pod("p"), "TaintToleration") == {"n0": 100, "n1": 50, "n2": 0}
    # A NoSchedule toleration does not count for PreferNoSchedule taints.
    p = pod("q", tolerations=[Toleration("a", "Exists", effect="NoSchedule")])
    assert env.scores(p, "TaintToleration") == {"n0": 100, "n1": 50, "n2": 0}
    p2 = pod("r", tolerations=[Toleration("a", "Exists")])
    assert env.scores(p2, "TaintToleration") == {"n0": 100, "n1": 100, "n2": 0}


def test_node_unschedulable() -> None:
    env = Env([node("cordoned", unschedulable=True), node("ok")])
    assert env.filter_reasons(pod("p")) == {
        "cordoned": "NodeUnschedulable: node(s) were unschedulable",
        "ok": "",
    }
    t = Toleration("node.kubernetes.io/unschedulable", "Exists", effect="NoSchedule")
    assert env.filter_reasons(pod("q", tolerations=[t]))["cordoned"] == ""


# --------------------------------------------------------------------- NodeAffinity


def _req(key: str, op: str, *values: str) -> NodeSelectorRequirement:
    return NodeSelectorRequirement(key, op, values)


def _required(*terms: NodeSelectorTerm) -> Affinity:
    return Affinity(node_affinity=NodeAffinity(required=NodeSelector(terms)))


@pytest.mark.parametrize(
    ("requirement", "matching"),
    [
        (_req("zone", "In", "a", "b"), {"a1", "b1"}),
        (_req("zone", "NotIn", "a"), {"b1", "bare"}),  # a missing label is "not in"
        (_req("gpu", "Exists"), {"b1"}),
        (_req("gpu", "DoesNotExist"), {"a1", "bare"}),
        (_req("cores", "Gt", "8"), {"b1"}),
        (_req("cores", "Lt", "16"), {"a1"}),  # "x" on bare is no integer: no match
    ],
)
def test_node_affinity_operators(requirement: NodeSelectorRequirement, matching: set[str]) -> None:
    env = Env(
        [
            node("a1", labels={"zone": "a", "cores": "8"}),
            node("b1", labels={"zone": "b", "gpu": "true", "cores": "32"}),
            node("bare", labels={"cores": "x"}),
        ]
    )
    got = env.filter_reasons(pod("p", affinity=_required(NodeSelectorTerm((requirement,)))))
    assert {n for n, r in got.items() if not r} == matching
    assert {r for r in got.values() if r} <= {
        "NodeAffinity: node(s) didn't match Pod's node affinity/selector"
    }


def test_node_selector_and_terms_semantics() -> None:
    env = Env([node("a1", labels={"zone": "a"}), node("b1", labels={"zone": "b", "ssd": "1"})])
    ored = _required(
        NodeSelectorTerm((_req("zone", "In", "a"),)), NodeSelectorTerm((_req("ssd", "Exists"),))
    )
    assert set(env.filter_reasons(pod("p", affinity=ored)).values()) == {""}
    # nodeSelector AND required affinity
    both = pod("q", affinity=ored, node_selector={"zone": "b"})
    assert env.filter_reasons(both)["a1"] != "" and env.filter_reasons(both)["b1"] == ""
    # An empty term matches nothing.
    empty = _required(NodeSelectorTerm())
    assert all(env.filter_reasons(pod("r", affinity=empty)).values())


def test_node_affinity_match_fields_narrows_candidates() -> None:
    nodes = [node("n1"), node("n2"), node("n3")]
    by_name = _required(NodeSelectorTerm(match_fields=(_req("metadata.name", "In", "n2"),)))
    r = run(nodes, [pod("p", affinity=by_name)])
    assert r.placements["default/p"] == "n2"
    big = pod("q", 100_000, affinity=by_name)
    r = run(nodes, [big])
    # The two nodes PreFilter excluded count under its message.
    assert r.reasons["default/q"].startswith(
        "0/3 nodes are available: 1 Insufficient cpu, "
        "2 node(s) didn't satisfy plugin(s) [NodeAffinity]."
    )


def test_node_affinity_preferred_score() -> None:
    env = Env(
        [
            node("both", labels={"zone": "a", "ssd": "1"}),
            node("one", labels={"ssd": "1"}),
            node("none"),
        ]
    )
    aff = Affinity(
        node_affinity=NodeAffinity(
            preferred=(
                PreferredSchedulingTerm(20, NodeSelectorTerm((_req("zone", "In", "a"),))),
                PreferredSchedulingTerm(30, NodeSelectorTerm((_req("ssd", "Exists"),))),
            )
        )
    )
    # raw 50, 30, 0 -> 100*s/50 = 100, 60, 0
    assert env.scores(pod("p", affinity=aff), "NodeAffinity") == {"both": 100, "one": 60, "none": 0}


# --------------------------------------------------------------------- NodePorts, NodeName


def test_host_port_conflicts() -> None:
    used = {"0.0.0.0": {("TCP", 80)}, "10.0.0.1": {("TCP", 443)}}
    assert port_conflict(used, "0.0.0.0", "TCP", 80)
    assert port_conflict(used, "10.0.0.2", "TCP", 80)  # 0.0.0.0 on the node covers all IPs
    assert port_conflict(used, "0.0.0.0", "TCP", 443)  # wanting all IPs hits any IP
    assert not port_conflict(used, "10.0.0.2", "TCP", 443)
    assert not port_conflict(used, "0.0.0.0", "UDP", 80)


def test_node_ports_filter() -> None:
    env = Env([node("a"), node("b")], running=[pod("r", host_ports=[8080], node_name="a")])
    assert env.filter_reasons(pod("p", host_ports=[8080])) == {
        "a": "NodePorts: node(s) didn't have free ports for the requested pod ports",
        "b": "",
    }


def test_node_name_filter() -> None:
    env = Env([node("a"), node("b")])
    p = pod("p")
    p = type(p)(**{**{f: getattr(p, f) for f in ("name", "containers")}, "node_name": "b"})
    got = env.filter_reasons(p)
    assert got == {"a": "NodeName: node(s) didn't match the requested node name", "b": ""}


# --------------------------------------------------------------------- InterPodAffinity


def _term(labels: dict[str, str], key: str, **kw: object) -> PodAffinityTerm:
    return PodAffinityTerm(key, LabelSelector(labels), **kw)  # type: ignore[arg-type]


ZONES = [
    node("a1", labels={"zone": "a"}),
    node("a2", labels={"zone": "a"}),
    node("b1", labels={"zone": "b"}),
]


def test_required_anti_affinity_and_symmetry() -> None:
    anti = Affinity(pod_anti_affinity=PodAntiAffinity((_term({"app": "web"}, "zone"),)))
    env = Env(ZONES, running=[pod("w", labels={"app": "web"}, node_name="a1")])
    got = env.filter_reasons(pod("p", labels={"app": "web"}, affinity=anti))
    msg = "InterPodAffinity: node(s) didn't match pod anti-affinity rules"
    assert got == {"a1": msg, "a2": msg, "b1": ""}
    # The existing pod's anti-affinity also keeps a plain pod out of its zone.
    env2 = Env(ZONES, running=[pod("w", labels={"app": "x"}, affinity=anti, node_name="a1")])
    got2 = env2.filter_reasons(pod("q", labels={"app": "web"}))
    msg2 = "InterPodAffinity: node(s) didn't satisfy existing pods anti-affinity rules"
    assert got2 == {"a1": msg2, "a2": msg2, "b1": ""}


def test_required_affinity_and_first_pod_exception() -> None:
    aff = Affinity(pod_affinity=PodAffinity((_term({"app": "db"}, "zone"),)))
    env = Env(ZONES, running=[pod("db", labels={"app": "db"}, node_name="b1")])
    got = env.filter_reasons(pod("p", affinity=aff))
    msg = "InterPodAffinity: node(s) didn't match pod affinity rules"
    assert got == {"a1": msg, "a2": msg, "b1": ""}
    # No db pod anywhere, and the pod matches its own term: allowed anywhere.
    lone = Env(ZONES)
    assert set(lone.filter_reasons(pod("db0", labels={"app": "db"}, affinity=aff)).values()) == {""}
    # ... but not when it does not match its own term.
    assert all(lone.filter_reasons(pod("x", affinity=aff)).values())
    # A node without the topology key never satisfies required affinity.
    env3 = Env(
        [node("nokey"), node("b1", labels={"zone": "b"})],
        running=[pod("db", labels={"app": "db"}, node_name="b1")],
    )
    assert env3.filter_reasons(pod("p", affinity=aff))["nokey"] == msg


def test_affinity_namespaces_and_namespace_selector() -> None:
    other_ns = pod("db", labels={"app": "db"}, namespace="data", node_name="b1")
    env = Env(ZONES, running=[other_ns])
    own_ns = Affinity(pod_affinity=PodAffinity((_term({"app": "db"}, "zone"),)))
    # The term defaults to the pod's own namespace: the db pod in "data" does not count,
    # and the pod does not match its own term -> rejected everywhere.
    assert all(env.filter_reasons(pod("p", affinity=own_ns)).values())
    listed = Affinity(
        pod_affinity=PodAffinity((_term({"app": "db"}, "zone", namespaces=("data",)),))
    )
    assert env.filter_reasons(pod("q", affinity=listed))["b1"] == ""
    import attrs

    labelled = attrs.evolve(other_ns, namespace_labels={"team": "data"})
    env2 = Env(ZONES, running=[labelled])
    by_label = Affinity(
        pod_affinity=PodAffinity(
            (_term({"app": "db"}, "zone", namespace_selector=LabelSelector({"team": "data"})),)
        )
    )
    assert env2.filter_reasons(pod("r", affinity=by_label))["b1"] == ""
    everything = Affinity(
        pod_affinity=PodAffinity(
            (_term({"app": "db"}, "zone", namespace_selector=LabelSelector()),)
        )
    )
    assert env.filter_reasons(pod("s", affinity=everything))["b1"] == ""


def test_inter_pod_affinity_preferred_score() -> None:
    aff = Affinity(
        pod_affinity=PodAffinity(
            preferred=(WeightedPodAffinityTerm(10, _term({"app": "db"}, "zone")),)
        ),
        pod_anti_affinity=PodAntiAffinity(
            preferred=(WeightedPodAffinityTerm(4, _term({"app": "web"}, "kubernetes.io/hostname")),)
        ),
    )
    env = Env(
        ZONES,
        running=[
            pod("db", labels={"app": "db"}, node_name="a1"),
            pod("web", labels={"app": "web"}, node_name="a2"),
        ],
    )
    # Raw: a1 = +10 (zone a has db); a2 = +10 - 4 (web on a2 itself); b1 = 0.
    # Normalize: int(100 * (s - 0) / (10 - 0)) -> 100, 60, 0.
    assert env.scores(pod("p", affinity=aff), "InterPodAffinity") == {"a1": 100, "a2": 60, "b1": 0}


def test_existing_pods_required_affinity_scores_hard_weight() -> None:
    aff = Affinity(pod_affinity=PodAffinity((_term({"app": "cache"}, "zone"),)))
    env = Env(ZONES, running=[pod("client", labels={"app": "x"}, affinity=aff, node_name="b1")])
    # The incoming cache pod matches the client's required term: +1 (hardPodAffinityWeight)
    # for zone b -> normalized 100 on b1, 0 elsewhere.
    got = env.scores(pod("c", labels={"app": "cache"}), "InterPodAffinity")
    assert got == {"a1": 0, "a2": 0, "b1": 100}


# --------------------------------------------------------------------- PodTopologySpread


def _spread(key: str, skew: int = 1, when: str = "DoNotSchedule", **kw: object):  # type: ignore[no-untyped-def]
    return TopologySpreadConstraint(skew, key, when, LabelSelector({"app": "api"}), **kw)  # type: ignore[arg-type]


def _api(name: str, node_name: str = "", **kw: object):  # type: ignore[no-untyped-def]
    return pod(name, labels={"app": "api"}, node_name=node_name, **kw)  # type: ignore[arg-type]


def test_spread_filter_skew() -> None:
    env = Env(ZONES, running=[_api("x", "a1"), _api("y", "a2")])
    got = env.filter_reasons(_api("p", spread=[_spread("zone")]))
    # zone a: 2 + 1 - min(0) = 3 > 1 ; zone b: 0 + 1 - 0 = 1 <= 1
    msg = "PodTopologySpread: node(s) didn't match pod topology spread constraints"
    assert got == {"a1": msg, "a2": msg, "b1": ""}
    wide = env.filter_reasons(_api("q", spread=[_spread("zone", skew=3)]))
    assert set(wide.values()) == {""}


def test_spread_missing_label_and_min_domains() -> None:
    env = Env([*ZONES, node("nolabel")], running=[_api("x", "a1")])
    got = env.filter_reasons(_api("p", spread=[_spread("zone")]))
    assert got["nolabel"] == (
        "PodTopologySpread: node(s) didn't match pod topology spread constraints"
        " (missing required label)"
    )
    assert got["b1"] == "" and got["a2"] != ""
    # minDomains 3 > 2 domains: the global minimum is taken as 0, so zone b
    # (0 + 1 - 0 = 1) passes and zone a (1 + 1 - 0 = 2) fails even with maxSkew 1.
    got2 = env.filter_reasons(_api("q", spread=[_spread("zone", min_domains=3)]))
    assert got2["b1"] == "" and got2["a1"] != ""
    env2 = Env(ZONES, running=[_api("x", "a1"), _api("z", "b1")])
    # zones a:1 b:1, minDomains 3 -> min 0: every node has skew 2 > 1.
    assert all(
        v
        for k, v in env2.filter_reasons(_api("r", spread=[_spread("zone", min_domains=3)])).items()
    )


def test_spread_node_affinity_policy() -> None:
    env = Env(ZONES, running=[_api("x", "a1")])
    # nodeSelector zone=a: with Honor (default) zone b does not count, so the
    # minimum is 1 (zone a) and a1/a2 pass; with Ignore, zone b's 0 is the minimum.
    honor = _api("p", spread=[_spread("zone")], node_selector={"zone": "a"})
    assert env.filter_reasons(honor)["a2"] == ""
    ignore = _api(
        "q", spread=[_spread("zone", node_affinity_policy="Ignore")], node_selector={"zone": "a"}
    )
    assert "PodTopologySpread" in env.filter_reasons(ignore)["a2"]


def test_spread_node_taints_policy() -> None:
    tainted = node("b1", labels={"zone": "b"}, taints=[Taint("k", "NoSchedule")])
    env = Env([*ZONES[:2], tainted], running=[_api("x", "a1")])
    honor = _api("p", spread=[_spread("zone", node_taints_policy="Honor")])
    assert env.filter_reasons(honor)["a2"] == ""  # zone b is not a domain: min is 1
    ignore = _api("q", spread=[_spread("zone")])
    assert "PodTopologySpread" in env.filter_reasons(ignore)["a2"]


def test_spread_score() -> None:
    hosts = [node("h0"), node("h1"), node("h2")]
    env = Env(hosts, running=[_api("x", "h0"), _api("y", "h0"), _api("z", "h1")])
    p = _api("p", spread=[_spread("kubernetes.io/hostname", when="ScheduleAnyway")])
    # weight ln(3 + 2) = 1.609; raw round(cnt * 1.609 + 0): h0 = round(3.22) = 3,
    # h1 = round(1.61) = 2, h2 = 0.  Normalize 100*(max+min-s)/max: 0, 33, 100.
    assert env.scores(p, "PodTopologySpread") == {"h0": 0, "h1": 33, "h2": 100}


def test_system_default_spreading_uses_the_service_selector() -> None:
    import attrs

    hosts = [node("h0"), node("h1")]
    sel = LabelSelector({"app": "api"})
    running = [attrs.evolve(_api("x", "h0"), default_spread_selector=sel)]
    env = Env(hosts, running=running)
    p = attrs.evolve(_api("p"), default_spread_selector=sel)
    # hostname maxSkew 3: h0 raw = round(1 * ln(4) + 2) = 3, h1 = round(0 + 2) = 2.
    # (zone: no node has the label; system defaults do not require it.)
    # Normalize: h0 = 100*(3+2-3)/3 = 66, h1 = 100*(3+2-2)/3 = 100.
    assert env.scores(p, "PodTopologySpread") == {"h0": 66, "h1": 100}
    assert env.scores(_api("q"), "PodTopologySpread") == {"h0": 0, "h1": 0}  # no selector: skip


# --------------------------------------------------------------------- ImageLocality


def test_image_locality() -> None:
    size = 300 * MI
    img = (ContainerImage(("nginx:latest",), size),)
    nodes = [
        Node("with1", images=img, allocatable=Resources(4000, 2**33, 0, 110)),
        Node("with2", images=img, allocatable=Resources(4000, 2**33, 0, 110)),
        node("without1"),
        node("without2"),
    ]
    env = Env(nodes)
    got = env.scores(pod("p", image="nginx"), "ImageLocality")
    # spread 2/4: int(300Mi * 0.5) = 157286400; (157286400 - 23Mi) * 100 // (1000Mi - 23Mi) = 12
    assert got == {"with1": 12, "with2": 12, "without1": 0, "without2": 0}
    assert normalized_image_name("nginx") == "nginx:latest"
    assert normalized_image_name("reg:5000/nginx") == "reg:5000/nginx:latest"
    assert normalized_image_name("nginx:1.27") == "nginx:1.27"


def test_label_selector_requirement_type() -> None:
    r = LabelSelectorRequirement("k", "In", ("v",))
    assert r.values == ("v",)


def test_fit_ignored_resource_groups() -> None:
    cfg = config(fit_config("      ignoredResourceGroups: [example.com]\n"))
    env = Env([node("n")], config=cfg)
    assert env.filter_reasons(pod("p", scalar={"example.com/bar": 5})) == {"n": ""}
    # hugepages are native, never ignored
    assert (
        "Insufficient hugepages-2Mi"
        in env.filter_reasons(pod("q", scalar={"hugepages-2Mi": 1}))["n"]
    )
