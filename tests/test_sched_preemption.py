"""DefaultPreemption: victims and node choice by kube-scheduler v1.32's rules."""

from __future__ import annotations

from kubeproof.sched.load import PodDisruptionBudget
from kubeproof.sched.model import (
    Affinity,
    LabelSelector,
    NodeAffinity,
    NodeSelector,
    NodeSelectorRequirement,
    NodeSelectorTerm,
)
from kubeproof.sched.scheduler import Scheduler
from tests.sched_helpers import node, pod, run


def test_victims_are_the_fewest_lowest_priority_pods() -> None:
    nodes = [node("n", cpu=1000)]
    running = [pod(f"p{i}", 300, priority=i, node_name="n") for i in (1, 2, 3)]
    r = run(nodes, [*running, pod("boss", 500, priority=10)])
    # All three removed; reprieve from the most important: p3 fits back
    # (300 + 500 <= 1000), p2 would not (900 + ... > 1000), nor p1.
    assert r.placements["default/boss"] == "n"
    assert r.placements["default/p3"] == "n"
    assert set(r.preempted) == {"default/p1", "default/p2"}
    assert r.reasons["default/p1"] == "preempted by default/boss to make room on node n"
    assert {(p.victim, p.preemptor, p.node) for p in r.preemptions} == {
        ("default/p1", "default/boss", "n"),
        ("default/p2", "default/boss", "n"),
    }


def test_node_with_lowest_highest_victim_priority() -> None:
    nodes = [node("a", cpu=1000), node("b", cpu=1000)]
    running = [pod("va", 800, priority=5, node_name="a"), pod("vb", 800, priority=1, node_name="b")]
    r = run(nodes, [*running, pod("boss", 500, priority=10)])
    assert r.placements["default/boss"] == "b"
    assert r.preempted == ("default/vb",)


def test_smallest_priority_sum_then_fewest_victims() -> None:
    nodes = [node("two", cpu=1000), node("one", cpu=1000)]
    running = [
        pod("t1", 400, priority=1, node_name="two"),
        pod("t2", 400, priority=1, node_name="two"),
        pod("o1", 900, priority=1, node_name="one"),
    ]
    r = run(nodes, [*running, pod("boss", 900, priority=10)])
    assert r.placements["default/boss"] == "one"
    assert r.preempted == ("default/o1",)


def test_latest_start_time_breaks_ties() -> None:
    nodes = [node("old", cpu=1000), node("new", cpu=1000)]
    running = [
        pod("o", 800, priority=1, node_name="old", start_time=100),
        pod("n", 800, priority=1, node_name="new", start_time=200),
    ]
    r = run(nodes, [*running, pod("boss", 500, priority=10)])
    assert r.placements["default/boss"] == "new"


def test_pdb_violations_are_avoided_first() -> None:
    nodes = [node("guarded", cpu=1000), node("free", cpu=1000)]
    running = [
        pod("g", 800, priority=1, labels={"app": "g"}, node_name="guarded"),
        pod("f", 800, priority=5, labels={"app": "f"}, node_name="free"),
    ]
    pdb = PodDisruptionBudget("default", "g-pdb", LabelSelector({"app": "g"}), 0)
    s = Scheduler(nodes, [*running, pod("boss", 500, priority=10)], pdbs=[pdb])
    r = s.run()
    # "guarded" has the lower-priority victim but would violate the PDB.
    assert r.placements["default/boss"] == "free"
    assert r.preempted == ("default/f",)


def test_not_eligible_and_not_helpful_messages() -> None:
    nodes = [node("n", cpu=1000)]
    running = [pod("low", 800, priority=1, node_name="n")]
    never = pod("polite", 500, priority=10, preemption_policy="Never")
    r = run(nodes, [*running, never])
    assert r.reasons["default/polite"] == (
        "0/1 nodes are available: 1 Insufficient cpu."
        " preemption: not eligible due to preemptionPolicy=Never."
    )
    req = NodeSelectorRequirement("zone", "In", ("mars",))
    aff = Affinity(node_affinity=NodeAffinity(NodeSelector((NodeSelectorTerm((req,)),))))
    r2 = run(nodes, [*running, pod("lost", 100, priority=10, affinity=aff)])
    assert r2.reasons["default/lost"] == (
        "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."
        " preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
    )


def test_preemption_that_cannot_help_reports_the_filter() -> None:
    nodes = [node("n", cpu=1000)]
    running = [
        pod("low", 200, priority=1, node_name="n"),
        pod("peer", 700, priority=10, node_name="n"),
    ]
    r = run(nodes, [*running, pod("boss", 900, priority=10)])
    # Removing "low" frees 200m only; the peer has the same priority and stays.
    assert r.placements["default/boss"] is None
    assert r.reasons["default/boss"] == (
        "0/1 nodes are available: 1 Insufficient cpu."
        " preemption: 0/1 nodes are available: 1 Insufficient cpu."
    )
    assert r.placements["default/low"] == "n"


def test_equal_priority_never_preempts() -> None:
    nodes = [node("n", cpu=1000)]
    r = run(nodes, [pod("a", 800, priority=3, node_name="n"), pod("b", 800, priority=3)])
    assert r.placements["default/a"] == "n" and r.placements["default/b"] is None
    assert "No preemption victims found for incoming pod" in r.reasons["default/b"]
