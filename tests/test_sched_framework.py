"""The scheduling cycle and the framework (pinned: kube-scheduler v1.32)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubeproof.sched.framework import (
    CycleState,
    PodInfo,
    Status,
    StatusCode,
    fit_error_message,
    node_tree_order,
)
from kubeproof.sched.model import Pod, Taint, Toleration
from kubeproof.sched.scheduler import Scheduler, num_feasible_nodes_to_find
from tests.sched_helpers import Env, config, node, pod, run
from tests.sched_strategies import clusters

HEAD = "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n"


@pytest.mark.parametrize(
    ("profile", "global_pct", "n", "expected"),
    [
        (None, 0, 50, 50),  # fewer than 100 nodes: all
        (None, 0, 100, 100),  # 50% of 100 = 50, raised to the minimum 100
        (None, 0, 1000, 420),  # 50 - 1000/125 = 42%
        (None, 0, 5000, 500),  # 50 - 40 = 10%
        (None, 0, 6000, 300),  # 50 - 48 = 2%, floored at 5%
        (None, 30, 1000, 300),  # the global setting
        (70, 30, 1000, 700),  # the profile's setting wins
        (None, 100, 5000, 5000),
    ],
)
def test_num_feasible_nodes_to_find(
    profile: int | None, global_pct: int, n: int, expected: int
) -> None:
    assert num_feasible_nodes_to_find(profile, global_pct, n) == expected


def test_fit_error_message_sorts_entries_as_strings() -> None:
    statuses = [Status(StatusCode.Unschedulable, ("Insufficient cpu",))] * 10 + [
        Status(StatusCode.UnschedulableAndUnresolvable, ("node(s) had untolerated taint {k: v}",))
    ] * 2
    # "10 ..." sorts before "2 ..." as strings, as kube's sort.Strings does.
    assert fit_error_message(12, statuses) == (
        "0/12 nodes are available: 10 Insufficient cpu, 2 node(s) had untolerated taint {k: v}."
    )
    assert fit_error_message(3, statuses[:1], pre_filter_msg="x") == "0/3 nodes are available: x."
    assert fit_error_message(1, statuses[:1], post_filter_msg="preemption: y.") == (
        "0/1 nodes are available: 1 Insufficient cpu. preemption: y."
    )


def test_message_form_end_to_end() -> None:
    taint = Taint("dedicated", "NoSchedule", "gpu")
    nodes = [node(f"small{i}", cpu=1000) for i in range(3)] + [
        node(f"gpu{i}", cpu=8000, taints=[taint]) for i in range(2)
    ]
    r = run(nodes, [pod("big", 2000)])
    assert r.reasons["default/big"] == (
        "0/5 nodes are available: 2 node(s) had untolerated taint {dedicated: gpu},"
        " 3 Insufficient cpu. preemption: 0/5 nodes are available:"
        " 2 Preemption is not helpful for scheduling,"
        " 3 No preemption victims found for incoming pod."
    )


def test_each_reason_of_a_node_counts() -> None:
    r = run([node("n", cpu=100, mem=100)], [pod("p", 200, 200)])
    assert r.reasons["default/p"].startswith(
        "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory."
    )


def test_running_pods_count_against_their_node() -> None:
    nodes = [node("a", cpu=1000), node("b", cpu=1000)]
    r = run(nodes, [pod("r", 800, node_name="a"), pod("p", 500)])
    assert r.placements == {"default/r": "a", "default/p": "b"}


def test_priority_order() -> None:
    nodes = [node("only", cpu=1000)]
    pods = [pod("low", 600, priority=1), pod("high", 600, priority=100)]
    r = run(nodes, pods)
    assert r.placements["default/high"] == "only"
    assert r.bound[0] == ("default/high", "only")


def test_ties_broken_by_the_seeded_rng() -> None:
    nodes = [node(f"n{i}") for i in range(8)]
    choices = {run(nodes, [pod("p", 100)], seed=s).placements["default/p"] for s in range(30)}
    assert len(choices) > 3  # uniform among the 8 equal nodes
    a = run(nodes, [pod(f"p{i}", 100) for i in range(20)], seed=7)
    b = run(nodes, [pod(f"p{i}", 100) for i in range(20)], seed=7)
    assert a.placements == b.placements


def test_percentage_of_nodes_to_score_rotates_the_start() -> None:
    cfg = config(HEAD + "percentageOfNodesToScore: 50\n")
    nodes = [node(f"n{i:03}") for i in range(200)]
    s = Scheduler(nodes, [pod("a", 100), pod("b", 100)], cfg, rng=random.Random(0))
    s.schedule_one()
    assert s.next_start == 100  # 200 * 50% = 100 nodes were evaluated
    s.schedule_one()
    assert s.next_start == 0


def test_node_tree_order_interleaves_zones() -> None:
    z = "topology.kubernetes.io/zone"
    nodes = [
        node("a1", labels={z: "a"}),
        node("a2", labels={z: "a"}),
        node("a3", labels={z: "a"}),
        node("b1", labels={z: "b"}),
    ]
    assert [n.name for n in node_tree_order(nodes)] == ["a1", "b1", "a2", "a3"]


def test_explanation_lists_every_plugin_on_every_node() -> None:
    nodes = [node("a", cpu=1000), node("b", cpu=4000), node("t", taints=[Taint("k", "NoSchedule")])]
    r = run(nodes, [pod("p", 800)], explain=["default/p"])
    e = r.explanations["default/p"]
    assert e.node == "b" == r.placements["default/p"]
    rows = {n.node: n for n in e.nodes}
    assert set(rows) == {"a", "b", "t"}
    assert dict(rows["t"].filters)["TaintToleration"].startswith("node(s) had untolerated")
    assert dict(rows["t"].filters)["NodeResourcesFit"] == "passed"  # every plugin, not the first
    assert not rows["t"].feasible
    assert rows["b"].total is not None and rows["a"].total is not None
    assert rows["b"].total >= rows["a"].total
    assert sum(s for _, s in rows["b"].scores) == rows["b"].total


def test_nominated_pods_hold_their_place() -> None:
    env = Env([node("n", cpu=1000)])
    high = PodInfo(pod("high", 600, priority=10))
    env.cluster.nominate(high, "n")
    low = PodInfo(pod("low", 600, priority=1))
    st = env.fwk.run_filter_with_nominated(CycleState(), low, env.ni("n"))
    assert st is not None and st.reasons == ("Insufficient cpu",)
    # A pod of higher priority than the nominated one ignores it.
    top = PodInfo(pod("top", 600, priority=100))
    assert env.fwk.run_filter_with_nominated(CycleState(), top, env.ni("n")) is None


def test_parked_pod_retried_when_its_affinity_target_arrives() -> None:
    from kubeproof.sched.model import (
        Affinity,
        LabelSelector,
        PodAffinity,
        PodAffinityTerm,
    )

    aff = Affinity(
        pod_affinity=PodAffinity(
            (PodAffinityTerm("kubernetes.io/hostname", LabelSelector({"app": "db"})),)
        )
    )
    nodes = [node("a"), node("b")]
    # The follower comes first and fails (no db pod, and it is not a db pod itself);
    # once db is bound, the queueing hint wakes it and it joins db's node.
    r = run(
        nodes,
        [pod("follower", 100, priority=5, affinity=aff), pod("db", 100, labels={"app": "db"})],
    )
    assert r.placements["default/follower"] == r.placements["default/db"] is not None


def test_tolerations_let_pods_onto_tainted_nodes() -> None:
    nodes = [node("gpu", taints=[Taint("dedicated", "NoSchedule", "gpu")])]
    tol = Toleration("dedicated", "Equal", "gpu", "NoSchedule")
    r = run(nodes, [pod("p", 100, tolerations=[tol]), pod("q", 100)])
    assert r.placements == {"default/p": "gpu", "default/q": None}


@settings(max_examples=40)
@given(clusters())
def test_batch_filter_and_score_agree_with_per_node(data: tuple) -> None:  # type: ignore[type-arg]
    nodes, running, pending = data
    env = Env(nodes, running)
    for p in pending[:3]:
        pi = PodInfo(p)
        state = CycleState()
        _, st, _ = env.fwk.run_pre_filter(state, pi)
        if st is not None:
            continue
        infos = env.snapshot.node_infos
        batch = env.fwk.filter_nodes(state, pi, infos)
        single = [env.fwk.run_filter(state, pi, ni) for ni in infos]
        assert batch == single
        feasible = [ni for ni, v in zip(infos, single, strict=True) if v is None]
        if not feasible:
            continue
        env.fwk.run_pre_score(state, pi, feasible)
        for pl in env.fwk.score_plugins:
            if pl.name in state.skip_score or not hasattr(pl, "score_many"):
                continue
            assert pl.score_many(state, pi, feasible) == [
                pl.score(state, pi, ni) for ni in feasible
            ], pl.name


def test_scheduling_gates_keep_a_pod_out_of_the_queue() -> None:
    import attrs

    gated = attrs.evolve(pod("g", 100), scheduling_gates=("example.com/wait",))
    r = run([node("n")], [gated, pod("free", 100)])
    assert r.placements == {"default/g": None, "default/free": "n"}
    assert r.reasons["default/g"] == "Scheduling is blocked due to non-empty scheduling gates"


@settings(max_examples=40)
@given(clusters(), st.data())
def test_prefilter_add_and_remove_pod_match_recomputation(
    c: tuple,  # type: ignore[type-arg]
    data: st.DataObject,
) -> None:
    """AddPod/RemovePod (used by preemption and nominated pods) equal a fresh PreFilter.

    Checked for InterPodAffinity's verdicts and PodTopologySpread's per-domain
    counts.  (PodTopologySpread's two-entry minimum is incremental in kube and
    can go stale; we keep kube's behaviour, so it is not compared here.)
    """
    nodes, running, pending = c
    p = PodInfo(pending[0])
    if len(pending) < 2:
        return
    extra = PodInfo(data.draw(st.sampled_from(pending[1:])))
    where = data.draw(st.sampled_from([n.name for n in nodes]))
    before = Env(nodes, running)
    after = Env(nodes, [*running, attrs_evolve(extra.pod, where)])
    s1 = CycleState()
    _, st1, _ = before.fwk.run_pre_filter(s1, p)
    s2 = CycleState()
    _, st2, _ = after.fwk.run_pre_filter(s2, p)
    if st1 is not None or st2 is not None:
        return
    before.fwk.run_pre_filter_add_pod(s1, p, extra, after.ni(where))
    ipa = after.fwk.instances["InterPodAffinity"]
    if "InterPodAffinity" not in s1.skip_filter and "InterPodAffinity" not in s2.skip_filter:
        for ni in after.snapshot.node_infos:
            assert ipa.filter(s1, p, ni) == ipa.filter(s2, p, ni)
    sp1 = s1.read("PodTopologySpread/preFilter")
    sp2 = s2.read("PodTopologySpread/preFilter")
    if sp1 is not None and sp2 is not None:
        assert {k: v for k, v in sp1.match.items() if v} == {
            k: v for k, v in sp2.match.items() if v
        }
    # And back again: removing it from the "after" state gives the "before" verdicts.
    after.fwk.run_pre_filter_remove_pod(s2, p, extra, before.ni(where))
    fresh = CycleState()
    before.fwk.run_pre_filter(fresh, p)
    if "InterPodAffinity" not in s2.skip_filter and "InterPodAffinity" not in fresh.skip_filter:
        for ni in before.snapshot.node_infos:
            assert ipa.filter(s2, p, ni) == ipa.filter(fresh, p, ni)


def attrs_evolve(p: Pod, node_name: str) -> Pod:
    import attrs

    return attrs.evolve(p, node_name=node_name)


@settings(max_examples=40)
@given(clusters())
def test_memoized_batch_scores_stay_exact_after_many_cycles(c: tuple) -> None:  # type: ignore[type-arg]
    """Per-node score memos (keyed on node generation) agree with fresh scoring."""
    nodes, running, pending = c
    s = Scheduler(nodes, [*running, *pending], rng=random.Random(1))
    s.run()
    fwk = s.frameworks["default-scheduler"]
    import attrs

    # Twins of scheduled pods ask for the same amounts, so the memos are warm
    # and some of their nodes changed since they were last scored.
    twins = [s.pods[key].pod for key, _ in reversed(s.bound)] + pending
    for p in twins:
        pi = PodInfo(attrs.evolve(p, name=p.name + "-twin"), s.interner)
        state = CycleState()
        _, st_, _ = fwk.run_pre_filter(state, pi)
        if st_ is not None:
            continue
        infos = s.snapshot.node_infos
        single = [fwk.run_filter(state, pi, ni) for ni in infos]
        assert fwk.filter_nodes(state, pi, infos) == single
        feasible = [ni for ni, v in zip(infos, single, strict=True) if v is None]
        if not feasible:
            continue
        fwk.run_pre_score(state, pi, feasible)
        for pl in fwk.score_plugins:
            if pl.name not in state.skip_score and hasattr(pl, "score_many"):
                want = [pl.score(state, pi, ni) for ni in feasible]
                assert pl.score_many(state, pi, feasible) == want, pl.name
