"""The Z3 batch solver against the spec's checker, the greedy scheduler, and itself.

Semantics pinned: kube-scheduler v1.32 (`kubeproof.sched.model.KUBE_VERSION`).
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import pytest
from hypothesis import given, settings

from kubeproof.sched.config import parse_config
from kubeproof.sched.model import (
    Affinity,
    Container,
    LabelSelector,
    Node,
    NodeAffinity,
    NodeSelectorRequirement,
    NodeSelectorTerm,
    Pod,
    PodAffinity,
    PodAffinityTerm,
    PodAntiAffinity,
    PreferredSchedulingTerm,
    Resources,
    TopologySpreadConstraint,
    WeightedPodAffinityTerm,
)
from kubeproof.sched.scheduler import schedule
from kubeproof.sched.solver import SolverInputError, placement_feasible, solve
from kubeproof.sched.solver_problem import Problem
from kubeproof.spec.sched import check_placement
from tests.sched_solver_strategies import HOST, ZONE, clusters

GI = 1 << 30
Cluster = tuple[list[Node], list[Pod]]


def node(name: str, cpu: int = 4000, pods: int = 110, zone: str = "", **labels: str) -> Node:
    alloc = Resources(cpu, 8 * GI, 0, pods)
    extra = {ZONE: zone} if zone else {}
    return Node(name, labels={HOST: name, **extra, **labels}, allocatable=alloc, capacity=alloc)


def pod(name: str, cpu: int = 0, *, node_name: str = "", **kw: object) -> Pod:
    req = Resources(cpu, 0)
    c = Container("c", requests=req, requested_names=frozenset({"cpu"}))
    return Pod(name, containers=(c,), node_name=node_name, **kw)  # type: ignore[arg-type]


def greedy_placed(nodes: list[Node], pods: list[Pod]) -> int:
    r = schedule(nodes, pods)
    return sum(1 for p in pods if not p.node_name and r.placements[p.key] is not None)


# --------------------------------------------------------------------------- properties


@settings(max_examples=60)
@given(clusters())
def test_every_solver_placement_passes_the_spec_checker(c: Cluster) -> None:
    nodes, pods = c
    r = solve(nodes, pods, timeout_s=30, explain=False)
    assert r.status in ("optimal", "feasible-timeout")
    assert check_placement(nodes, pods, r.placements, r.order) == []
    assert set(r.placements) == {p.key for p in pods}
    running = [p.key for p in pods if p.node_name]
    assert list(r.placements)[: len(running) + r.placed] == running + list(r.order)
    assert all(r.placements[p.key] == p.node_name for p in pods if p.node_name)


@settings(max_examples=60)
@given(clusters())
def test_solver_places_at_least_as_many_pods_as_greedy(c: Cluster) -> None:
    nodes, pods = c
    r = solve(nodes, pods, timeout_s=30, explain=False)
    assert r.optimal  # small instances: always proved
    assert r.placed >= greedy_placed(nodes, pods)


@settings(max_examples=40)
@given(clusters(max_batch=4))
def test_gang_is_all_or_nothing_and_agrees_with_the_count(c: Cluster) -> None:
    nodes, pods = c
    batch = [p for p in pods if not p.node_name]
    free = solve(nodes, pods, timeout_s=30, explain=False)
    gang = solve(nodes, pods, gang=True, timeout_s=30, explain_timeout_s=5)
    if free.placed == len(batch):
        assert gang.status == "optimal" and gang.placed == len(batch)
        assert check_placement(nodes, pods, gang.placements, gang.order) == []
    else:
        assert gang.status == "infeasible" and gang.placed == 0
        assert gang.conflicts and gang.conflicts[0].pods
        assert set(gang.conflicts[0].pods) <= {p.key for p in batch}
        assert set(gang.reasons) == {p.key for p in batch}
        assert all(gang.placements[p.key] is None for p in batch)


def _one_pending(c: Cluster) -> tuple[list[Node], list[Pod], Pod]:
    nodes, pods = c
    pending = [p for p in pods if not p.node_name]
    return nodes, [p for p in pods if p.node_name] + pending[:1], pending[0]


@settings(max_examples=60)
@given(clusters())
def test_greedy_filter_verdict_equals_the_encoding_for_one_pod(c: Cluster) -> None:
    nodes, pods, target = _one_pending(c)
    greedy = schedule(nodes, pods, explain=[target.key])
    verdicts = {n.node: n.feasible for n in greedy.explanations[target.key].nodes}
    for n in nodes:
        assert verdicts[n.name] == placement_feasible(nodes, pods, target.key, n.name), n.name


@settings(max_examples=60)
@given(clusters())
def test_encoding_for_one_pod_equals_the_problems_direct_verdict(c: Cluster) -> None:
    nodes, pods, target = _one_pending(c)
    prob = Problem(nodes, pods)
    for ni, n in enumerate(nodes):
        direct = not prob.alone_failures(0, ni)
        assert direct == placement_feasible(nodes, pods, target.key, n.name), n.name


@settings(max_examples=30)
@given(clusters(max_batch=4))
def test_fewest_nodes_uses_no_more_nodes_than_the_score_placement(c: Cluster) -> None:
    nodes, pods = c
    by_score = solve(nodes, pods, timeout_s=30, explain=False)
    by_nodes = solve(nodes, pods, objective="fewest-nodes", timeout_s=30, explain=False)
    assert by_nodes.placed == by_score.placed
    used = {p.node_name for p in pods if p.node_name} | {
        n for n in by_score.placements.values() if n is not None
    }
    assert by_nodes.objective_value is not None and by_nodes.objective_value <= len(used)
    assert check_placement(nodes, pods, by_nodes.placements, by_nodes.order) == []


# --------------------------------------------------------------------------- greedy fails, z3 does not


def test_bin_packing_order_greedy_leaves_the_big_pod_pending() -> None:
    # LeastAllocated spreads the two small pods over both nodes; the big one
    # then fits nowhere.  Packing both small pods on one node fits all three.
    nodes = [node("n1", 2000), node("n2", 2000)]
    pods = [pod("small-1", 1000), pod("small-2", 1000), pod("big", 2000)]
    assert greedy_placed(nodes, pods) == 2
    r = solve(nodes, pods)
    assert r.status == "optimal" and r.placed == 3
    assert r.placements["default/big"] in ("n1", "n2")
    assert check_placement(nodes, pods, r.placements, r.order) == []


def test_anti_affinity_order_greedy_blocks_the_constrained_pod() -> None:
    # "free" goes first and takes the roomier node n1; "picky" may only run on
    # n1 and refuses to share a node with app=free.
    nodes = [node("n1", 4000, disk="ssd"), node("n2", 2000)]
    anti = Affinity(
        pod_anti_affinity=PodAntiAffinity((PodAffinityTerm(HOST, LabelSelector({"app": "free"})),))
    )
    pods = [
        pod("free", 500, labels={"app": "free"}),
        pod("picky", 500, node_selector={"disk": "ssd"}, affinity=anti),
    ]
    assert greedy_placed(nodes, pods) == 1
    r = solve(nodes, pods)
    assert r.placed == 2
    assert dict(r.placements) == {"default/picky": "n1", "default/free": "n2"}
    assert check_placement(nodes, pods, r.placements, r.order) == []


def test_spread_order_greedy_fills_the_zone_the_spread_pod_needs() -> None:
    # Three zones; c has one small node.  "filler" goes first and, by its soft
    # preference, takes c1.  The three spread pods (maxSkew 1 over zones) then
    # need one pod in each zone: the third one finds c1 full.  The solver puts
    # the filler elsewhere.
    nodes = [
        node("a1", 4000, zone="a"),
        node("b1", 4000, zone="b"),
        node("c1", 1000, zone="c"),
    ]
    prefer_c = NodeAffinity(
        preferred=(
            PreferredSchedulingTerm(
                100, NodeSelectorTerm((NodeSelectorRequirement(ZONE, "In", ("c",)),))
            ),
        )
    )
    c = TopologySpreadConstraint(1, ZONE, label_selector=LabelSelector({"app": "s"}))
    pods = [
        pod("filler", 1000, affinity=Affinity(node_affinity=prefer_c)),
        *(
            pod(f"s-{i}", 1000, labels={"app": "s"}, topology_spread_constraints=(c,))
            for i in range(3)
        ),
    ]
    assert greedy_placed(nodes, pods) == 3
    r = solve(nodes, pods)
    assert r.placed == 4 and r.placements["default/filler"] != "c1"
    assert check_placement(nodes, pods, r.placements, r.order) == []


def test_affinity_needs_its_partner_bound_first() -> None:
    nodes = [node("n1", 1000, zone="a"), node("n2", 1000, zone="b")]
    aff = Affinity(pod_affinity=PodAffinity((PodAffinityTerm(ZONE, LabelSelector({"app": "db"})),)))
    pods = [pod("web", 500, affinity=aff), pod("db", 500, labels={"app": "db"})]
    r = solve(nodes, pods)
    assert r.placed == 2
    assert r.order == ("default/db", "default/web")  # the partner first
    assert r.placements["default/db"] == r.placements["default/web"]
    # Binding them the other way round breaks the rule, and the checker says so.
    bad = check_placement(nodes, pods, r.placements, ["default/web", "default/db"])
    assert bad and bad[0].invariant == "SCHED-HARD-CONSTRAINTS"


# --------------------------------------------------------------------------- explanations


def test_infeasible_gang_names_the_pods_and_the_constraints() -> None:
    nodes = [
        node("a1", 4000, zone="a"),
        node("a2", 4000, zone="a"),
        node("b1", 16000, zone="b"),
    ]
    pods = [pod(f"web-{i}", 4000, node_selector={ZONE: "a"}) for i in range(3)]
    r = solve(nodes, pods, gang=True)
    assert r.status == "infeasible" and r.placed == 0
    (conflict,) = r.conflicts
    assert set(conflict.pods) == {"default/web-0", "default/web-1", "default/web-2"}
    assert (
        "12 cpu" in conflict.message and "a1 4" in conflict.message and "a2 4" in conflict.message
    )
    assert "NodeAffinity" in conflict.message
    assert all("gang cannot be placed" in why for why in r.reasons.values())


def test_pending_pod_reason_names_the_pods_it_competes_with() -> None:
    nodes = [node("n1", 2000)]
    pods = [pod("a", 1500), pod("b", 1500)]
    r = solve(nodes, pods)
    assert r.placed == 1
    (pending,) = [k for k, v in r.placements.items() if v is None]
    why = r.reasons[pending]
    assert "0/1 nodes are available: 1 Insufficient cpu." in why
    other = "default/a" if pending == "default/b" else "default/b"
    assert other in why and "n1 has 2 cpu free" in why


def test_pod_with_no_candidate_gets_kube_scheduler_message() -> None:
    nodes = [node("n1", 1000), node("n2", 1000)]
    pods = [pod("huge", 3000)]
    r = solve(nodes, pods)
    assert r.reasons["default/huge"] == "0/2 nodes are available: 2 Insufficient cpu."


# --------------------------------------------------------------------------- limits and input


def ticking_clock(step: float = 0.01) -> Callable[[], float]:
    """A clock that advances `step` seconds each time it is read (no wall clock)."""
    now = [0.0]

    def clock() -> float:
        now[0] += step
        return now[0]

    return clock


def test_time_limit_still_returns_a_valid_placement() -> None:
    nodes = [node(f"n{i}", 4000 + 500 * (i % 3)) for i in range(12)]
    pods = [pod(f"p{i}", 300 + 170 * (i % 7)) for i in range(40)]
    r = solve(nodes, pods, timeout_s=0.05, explain=False, clock=ticking_clock())
    assert r.status in ("optimal", "feasible-timeout")
    assert check_placement(nodes, pods, r.placements, r.order) == []


def test_same_seed_same_answer() -> None:
    nodes = [node(f"n{i}", 2000) for i in range(4)]
    pods = [pod(f"p{i}", 700) for i in range(9)]
    a, b = solve(nodes, pods, seed=3), solve(nodes, pods, seed=3)
    assert a.status == b.status == "optimal"
    assert dict(a.placements) == dict(b.placements) and a.order == b.order


def test_bad_input_is_named() -> None:
    nodes = [node("n1")]
    with pytest.raises(SolverInputError, match="n1"):
        solve([node("n1"), node("n1")], [pod("a")])
    with pytest.raises(SolverInputError, match="nowhere"):
        solve(nodes, [pod("a", node_name="nowhere")])
    with pytest.raises(SolverInputError, match="given twice"):
        solve(nodes, [pod("a"), pod("a")])
    with pytest.raises(ValueError, match="objective"):
        solve(nodes, [pod("a")], objective="cheapest")
    with pytest.raises(ValueError, match="timeout_s"):
        solve(nodes, [pod("a")], timeout_s=0)


def test_running_pods_count_against_their_node() -> None:
    nodes = [node("n1", 2000, pods=2), node("n2", 1000)]
    pods = [pod("old", 1500, node_name="n1"), pod("new", 1000)]
    r = solve(nodes, pods)
    assert r.placements == {"default/old": "n1", "default/new": "n2"}
    # With the running pod gone n1 is the roomier choice: the score sees it.
    r2 = solve(nodes, [attrs.evolve(pods[1])])
    assert r2.placements == {"default/new": "n1"}


# --------------------------------------------------------------------------- the score objective


def greedy_score_table(nodes: list[Node], pods: list[Pod], key: str) -> dict[str, int]:
    """The greedy cycle's totals for the pending pod `key` (its explanation's score table)."""
    e = schedule(nodes, pods, explain=[key]).explanations[key]
    return {n.node: n.total for n in e.nodes if n.total is not None}


@settings(max_examples=60)
@given(clusters())
def test_one_pod_score_optimum_is_a_node_greedy_scores_highest(c: Cluster) -> None:
    nodes, pods, target = _one_pending(c)
    table = greedy_score_table(nodes, pods, target.key)
    r = solve(nodes, pods, explain=False)
    assert r.status == "optimal"
    where = r.placements[target.key]
    if not table:
        assert where is None
        return
    assert where is not None and table[where] == max(table.values())
    assert r.objective_value == r.objective_bound == max(table.values())


def test_score_counts_preferred_pod_affinity_to_running_pods() -> None:
    # n1 is idle, n2 half full, but the pod prefers the zone of the running db:
    # InterPodAffinity (weight 2) outweighs LeastAllocated and BalancedAllocation.
    nodes = [node("n1", 4000, zone="a"), node("n2", 4000, zone="b")]
    near_db = PodAffinityTerm(ZONE, LabelSelector({"app": "db"}))
    aff = Affinity(pod_affinity=PodAffinity(preferred=(WeightedPodAffinityTerm(100, near_db),)))
    pods = [
        pod("db", 2000, node_name="n2", labels={"app": "db"}),
        pod("web", 500, affinity=aff),
    ]
    table = greedy_score_table(nodes, pods, "default/web")
    assert table["n2"] > table["n1"]
    r = solve(nodes, pods)
    assert r.placements["default/web"] == "n2"
    assert r.objective_value == table["n2"]


MOST_ALLOCATED = parse_config(
    {
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "profiles": [
            {
                "schedulerName": "default-scheduler",
                "plugins": {
                    "score": {
                        "disabled": [{"name": "*"}],
                        "enabled": [{"name": "NodeResourcesFit", "weight": 1}],
                    }
                },
                "pluginConfig": [
                    {
                        "name": "NodeResourcesFit",
                        "args": {"scoringStrategy": {"type": "MostAllocated"}},
                    }
                ],
            }
        ],
    }
)


def test_profile_weights_change_the_score_optimum() -> None:
    # The default profile spreads (LeastAllocated); a profile scoring only
    # NodeResourcesFit with MostAllocated packs onto the busy node.
    nodes = [node("busy", 4000), node("idle", 4000)]
    pods = [pod("r", 2000, node_name="busy"), pod("a", 500), pod("b", 500)]
    spread = solve(nodes, pods)
    assert spread.placements["default/a"] == spread.placements["default/b"] == "idle"
    packed = solve(nodes, pods, config=MOST_ALLOCATED)
    assert packed.status == "optimal"
    assert packed.placements["default/a"] == packed.placements["default/b"] == "busy"
    # The value is the profile's own score: each pod scored first, on "busy".
    table = schedule(nodes, pods[:2], MOST_ALLOCATED, explain=["default/a"])
    busy = next(n for n in table.explanations["default/a"].nodes if n.node == "busy")
    assert busy.scores == (("NodeResourcesFit", busy.total),)
    assert packed.objective_value == 2 * (busy.total or 0)
