"""The Z3 batch solver's "least-preemption" objective: evictions checked, justified and minimal.

Semantics pinned: kube-scheduler v1.32 (DefaultPreemption's victim rules as
the batch sees them; see `kubeproof.sched.solver`).  The spec's checker
replays every placement without the evicted pods; a brute force over
eviction sets and placements, judged by the same checker, finds the best
cost on tiny clusters.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import attrs
import pytest
from hypothesis import Phase, find, given, settings

from kubeproof.sched.load import PodDisruptionBudget
from kubeproof.sched.model import (
    Affinity,
    Container,
    ContainerPort,
    LabelSelector,
    Node,
    Pod,
    PodAffinity,
    PodAffinityTerm,
    PodAntiAffinity,
    Resources,
    TopologySpreadConstraint,
)
from kubeproof.sched.scheduler import Scheduler
from kubeproof.sched.solver import SolveResult, solve
from kubeproof.spec.sched import (
    NO_OVERCOMMIT,
    PREEMPTION_JUSTIFIED,
    check_placement,
    pdb_violations,
    superfluous_evictions,
)
from tests.mutants.sched_mutants import PREEMPTION_MUTANTS
from tests.sched_solver_strategies import HOST, PRIORITIES, ZONE, preemption_clusters

GI = 1 << 30
PCluster = tuple[list[Node], list[Pod], list[PodDisruptionBudget]]
LP = "least-preemption"


def node(name: str, cpu: int = 1000, pods: int = 110, zone: str = "") -> Node:
    alloc = Resources(cpu, 8 * GI, 0, pods)
    labels = {HOST: name, **({ZONE: zone} if zone else {})}
    return Node(name, labels=labels, allocatable=alloc, capacity=alloc)


def pod(
    name: str,
    cpu: int = 0,
    priority: int = 0,
    *,
    node_name: str = "",
    ports: tuple[ContainerPort, ...] = (),
    **kw: object,
) -> Pod:
    req = Resources(cpu, 0)
    c = Container("c", requests=req, requested_names=frozenset({"cpu"}), ports=ports)
    return Pod(name, containers=(c,), node_name=node_name, priority=priority, **kw)  # type: ignore[arg-type]


def least(
    nodes: Sequence[Node],
    pods: Sequence[Pod],
    pdbs: Sequence[PodDisruptionBudget] = (),
    **kw: object,
) -> SolveResult:
    return solve(nodes, pods, objective=LP, explain=False, pdbs=pdbs, **kw)  # type: ignore[arg-type]


def assert_valid(
    nodes: Sequence[Node], pods: Sequence[Pod], pdbs: Sequence[PodDisruptionBudget], r: SolveResult
) -> None:
    """Everything a least-preemption answer promises, judged by the spec alone."""
    assert check_placement(nodes, pods, r.placements, r.order, r.evicted) == []
    by_key = {p.key: p for p in pods}
    assert all(by_key[k].node_name and r.placements[k] is None for k in r.evicted)
    assert r.objective_value == len(r.evicted)
    assert r.pdb_violations == pdb_violations(pods, pdbs, r.evicted)
    preemptors = [p.priority for p in pods if not p.node_name and p.preemption_policy != "Never"]
    assert all(by_key[k].priority < max(preemptors) for k in r.evicted)
    assert all(r.reasons[k].startswith("preempted by ") for k in r.evicted)
    if r.optimal:
        assert superfluous_evictions(nodes, pods, r.placements, r.order, r.evicted) == []


def cost(
    pods: Sequence[Pod], pdbs: Sequence[PodDisruptionBudget], placed: int, evicted: Sequence[str]
) -> tuple[int, int, int, tuple[int, ...]]:
    """The lexicographic cost the objective minimizes (module docstring of the solver)."""
    prio = {p.key: p.priority for p in pods}
    levels = sorted({p.priority for p in pods if p.node_name}, reverse=True)
    histogram = tuple(sum(1 for k in evicted if prio[k] == t) for t in levels)
    return (-placed, pdb_violations(pods, pdbs, evicted), len(evicted), histogram)


def brute_force(
    nodes: Sequence[Node], pods: Sequence[Pod], pdbs: Sequence[PodDisruptionBudget]
) -> tuple[int, int, int, tuple[int, ...]]:
    """The least cost over every eviction set, placement and binding order the checker accepts."""
    running = [p for p in pods if p.node_name]
    batch = [p for p in pods if not p.node_name]
    best: tuple[int, int, int, tuple[int, ...]] | None = None
    for n in range(len(running) + 1):
        for victims in itertools.combinations(running, n):
            gone = [v.key for v in victims]
            for where in itertools.product([None, *(x.name for x in nodes)], repeat=len(batch)):
                placed = [(p, w) for p, w in zip(batch, where, strict=True) if w is not None]
                c = cost(pods, pdbs, len(placed), gone)
                if best is not None and c >= best:
                    continue
                if not all(
                    any(
                        w == v.node_name
                        and p.priority > v.priority
                        and p.preemption_policy != "Never"
                        for p, w in placed
                    )
                    for v in victims
                ):
                    continue
                placements = {p.key: w for p, w in zip(batch, where, strict=True)}
                if any(
                    check_placement(nodes, pods, placements, [p.key for p, _ in order], gone) == []
                    for order in itertools.permutations(placed)
                ):
                    best = c
    assert best is not None  # placing nothing and evicting nothing is always valid
    return best


# --------------------------------------------------------------------------- properties


@settings(max_examples=80)
@given(preemption_clusters())
def test_every_least_preemption_placement_passes_the_spec_checker(c: PCluster) -> None:
    nodes, pods, pdbs = c
    r = least(nodes, pods, pdbs)
    assert r.status == "optimal"
    assert_valid(nodes, pods, pdbs, r)
    running = [p.key for p in pods if p.node_name]
    assert list(r.placements)[: len(running) + r.placed] == running + list(r.order)


@settings(max_examples=50)
@given(preemption_clusters())
def test_evictions_place_at_least_as_many_pods(c: PCluster) -> None:
    nodes, pods, pdbs = c
    with_evictions = least(nodes, pods, pdbs)
    without = solve(nodes, pods, objective="placed", explain=False)
    assert with_evictions.placed >= without.placed
    if with_evictions.placed == without.placed:
        assert with_evictions.evicted == ()  # evicting for nothing is never least


@settings(max_examples=100)
@given(preemption_clusters(max_nodes=3, max_running=3, max_batch=3, pressed=True))
def test_eviction_cost_is_minimal_against_brute_force(c: PCluster) -> None:
    nodes, pods, pdbs = c
    r = least(nodes, pods, pdbs)
    assert r.optimal
    assert_valid(nodes, pods, pdbs, r)
    assert cost(pods, pdbs, r.placed, r.evicted) == brute_force(nodes, pods, pdbs)
    assert r.objective_bound == r.objective_value


@settings(max_examples=30)
@given(preemption_clusters())
def test_equal_priority_pods_are_never_evicted(c: PCluster) -> None:
    nodes, pods, pdbs = c
    same = [attrs.evolve(p, priority=PRIORITIES[1]) for p in pods]
    r = least(nodes, same, pdbs)
    assert r.evicted == ()
    assert r.placed == solve(nodes, same, objective="placed", explain=False).placed


# --------------------------------------------------------------------------- hand-made cases


def test_one_high_priority_pod_evicts_the_cheaper_of_two() -> None:
    # Either victim frees enough; the lower priority one goes.  kube's
    # DefaultPreemption makes the same choice.
    nodes = [node("n1", 1000)]
    running = [
        pod("low", 400, priority=1, node_name="n1", labels={"app": "low"}),
        pod("mid", 400, priority=3, node_name="n1", labels={"app": "mid"}),
    ]
    pods = [*running, pod("boss", 500, priority=10)]
    r = least(nodes, pods)
    assert r.status == "optimal" and r.placements["default/boss"] == "n1"
    assert r.evicted == ("default/low",) and r.objective_value == r.objective_bound == 1
    assert r.reasons["default/low"] == (
        "preempted by default/boss (priority 10) to make room on node n1"
    )
    assert_valid(nodes, pods, [], r)
    assert Scheduler(nodes, pods).run().preempted == r.evicted
    # A budget that protects "low" makes "mid" the cheaper victim (budgets first).
    guard = PodDisruptionBudget("default", "guard", LabelSelector({"app": "low"}), 0)
    r = least(nodes, pods, [guard])
    assert r.evicted == ("default/mid",) and r.pdb_violations == 0
    # Fewest victims before their priorities: one priority-3 pod over two priority-1 pods.
    running = [
        pod("a", 300, priority=1, node_name="n1"),
        pod("b", 300, priority=1, node_name="n1"),
        pod("c", 600, priority=3, node_name="n1"),
    ]
    r = least([node("n1", 1200)], [*running, pod("boss", 600, priority=10)])
    assert r.evicted == ("default/c",)


def test_equal_priority_pod_stays_and_the_preemptor_waits() -> None:
    nodes = [node("n1", 1000)]
    pods = [pod("peer", 800, priority=5, node_name="n1"), pod("new", 500, priority=5)]
    r = least(nodes, pods)
    assert r.status == "optimal" and r.evicted == () and r.placements["default/new"] is None
    assert r.placements["default/peer"] == "n1"


def test_never_pod_evicts_nothing_but_uses_room_others_free() -> None:
    nodes = [node("n1", 1000)]
    low = pod("low", 900, priority=1, node_name="n1")
    polite = pod("polite", 300, priority=10, preemption_policy="Never")
    r = least(nodes, [low, polite])
    assert r.evicted == () and r.placements["default/polite"] is None
    boss = pod("boss", 600, priority=10)
    r = least(nodes, [low, polite, boss])
    assert r.placed == 2 and r.evicted == ("default/low",)
    assert r.reasons["default/low"].startswith("preempted by default/boss")
    assert_valid(nodes, [low, polite, boss], [], r)


def test_gang_feasible_only_with_evictions() -> None:
    nodes = [node("n1"), node("n2")]
    running = [
        pod("r1", 500, priority=0, node_name="n1"),
        pod("r2", 500, priority=0, node_name="n2"),
        pod("r3", 100, priority=0, node_name="n2"),
    ]
    gang = [pod(f"g{i}", 600, priority=10) for i in range(2)]
    pods = [*running, *gang]
    plain = solve(nodes, pods, gang=True, objective="placed", explain_timeout_s=5)
    assert plain.status == "infeasible"
    r = solve(nodes, pods, gang=True, objective=LP)
    assert r.status == "optimal" and r.placed == 2
    assert set(r.evicted) == {"default/r1", "default/r2"}  # r3 alone frees too little
    assert_valid(nodes, pods, [], r)


def _anti(selector: dict[str, str], key: str = HOST) -> Affinity:
    term = PodAffinityTerm(key, LabelSelector(selector))
    return Affinity(pod_anti_affinity=PodAntiAffinity((term,)))


SPREAD = (TopologySpreadConstraint(1, ZONE, label_selector=LabelSelector({"app": "s"})),)

# Only evicting the low-priority pod lets "boss" in, for each kind of contribution.
RELEASE: dict[str, tuple[list[Node], list[Pod]]] = {
    "host port": (
        [node("n1")],
        [
            pod("low", priority=1, node_name="n1", ports=(ContainerPort(80, 8080),)),
            pod("boss", priority=10, ports=(ContainerPort(80, 8080),)),
        ],
    ),
    "pod count": (
        [node("n1", pods=1)],
        [pod("low", priority=1, node_name="n1"), pod("boss", priority=10)],
    ),
    "the running pod's anti-affinity": (
        [node("n1")],
        [
            pod("low", priority=1, node_name="n1", affinity=_anti({"app": "boss"})),
            pod("boss", priority=10, labels={"app": "boss"}),
        ],
    ),
    "the incoming pod's anti-affinity": (
        [node("n1")],
        [
            pod("low", priority=1, node_name="n1", labels={"app": "x"}),
            pod("boss", priority=10, affinity=_anti({"app": "x"})),
        ],
    ),
    "spread count": (
        [node("a1", zone="a"), node("b1", 0, zone="b")],
        [
            pod("low", priority=1, node_name="a1", labels={"app": "s"}),
            pod("boss", 100, priority=10, labels={"app": "s"}, topology_spread_constraints=SPREAD),
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(RELEASE))
def test_an_evicted_pod_releases_every_constraint(name: str) -> None:
    nodes, pods = RELEASE[name]
    assert solve(nodes, pods, objective="placed", explain=False).placed == 0
    r = least(nodes, pods)
    assert r.placed == 1 and r.evicted == ("default/low",)
    assert_valid(nodes, pods, [], r)


def test_a_kept_pod_still_counts_as_an_affinity_partner() -> None:
    # "web" needs a db pod in its zone; the only one is low priority.  Evicting
    # it would free the room "web" needs but break its affinity: nothing fits.
    nodes = [node("n1", 1000, zone="a")]
    term = PodAffinityTerm(ZONE, LabelSelector({"app": "db"}))
    aff = Affinity(pod_affinity=PodAffinity((term,)))
    pods = [
        pod("db", 600, priority=1, node_name="n1", labels={"app": "db"}),
        pod("web", 500, priority=10, affinity=aff),
    ]
    r = least(nodes, pods)
    assert r.placed == 0 and r.evicted == ()
    roomy = [node("n1", 2000, zone="a")]
    r = least(roomy, pods)
    assert r.placed == 1 and r.evicted == ()


def test_time_limit_returns_the_best_placement_so_far() -> None:
    nodes = [node(f"n{i}", 4000) for i in range(8)]
    running = [
        pod(f"low-{i}", 1000 + 100 * (i % 4), priority=i % 3, node_name=f"n{i % 8}")
        for i in range(16)
    ]
    batch = [pod(f"p{i}", 300 + 170 * (i % 7), priority=5 + i % 2) for i in range(30)]
    r = least(nodes, [*running, *batch], timeout_s=0.3, clock=ticking_clock())
    assert r.status in ("optimal", "feasible-timeout")
    assert check_placement(nodes, [*running, *batch], r.placements, r.order, r.evicted) == []


def ticking_clock(step: float = 0.01) -> Callable[[], float]:
    """A clock that advances `step` seconds each time it is read (no wall clock)."""
    now = [0.0]

    def clock() -> float:
        now[0] += step
        return now[0]

    return clock


# --------------------------------------------------------------------------- mutants


CONCRETE: dict[str, tuple[list[Node], list[Pod]]] = {
    "evict_equal_priority": (
        [node("n1", 1000)],
        [pod("peer", 800, priority=5, node_name="n1"), pod("new", 500, priority=5)],
    ),
    "evictions_not_released": (
        [node("n1", 1000)],
        [pod("low", 800, priority=1, node_name="n1"), pod("boss", 500, priority=10)],
    ),
}


@pytest.mark.parametrize("name", sorted(PREEMPTION_MUTANTS))
def test_preemption_mutant_is_caught_on_a_concrete_cluster(name: str) -> None:
    broken, invariant = PREEMPTION_MUTANTS[name]
    nodes, pods = CONCRETE[name]
    r = broken(nodes, pods, [])
    found = check_placement(nodes, pods, r.placements, r.order, r.evicted)
    assert invariant in {v.invariant for v in found}
    assert_valid(nodes, pods, [], least(nodes, pods))


@pytest.mark.parametrize("name", sorted(PREEMPTION_MUTANTS))
def test_preemption_mutant_is_caught_on_generated_clusters(name: str) -> None:
    """Within a bounded number of generated clusters, no shrinking."""
    broken, invariant = PREEMPTION_MUTANTS[name]

    def caught(c: PCluster) -> bool:
        nodes, pods, pdbs = c
        r = broken(nodes, pods, pdbs)
        found = check_placement(nodes, pods, r.placements, r.order, r.evicted)
        return invariant in {v.invariant for v in found}

    nodes, pods, pdbs = find(
        preemption_clusters(),
        caught,
        settings=settings(
            max_examples=100, phases=[Phase.generate], database=None, derandomize=True
        ),
    )
    assert_valid(nodes, pods, pdbs, least(nodes, pods, pdbs))
    assert invariant in (PREEMPTION_JUSTIFIED, NO_OVERCOMMIT)
