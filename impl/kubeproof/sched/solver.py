"""The Z3 batch solver: place many pods at once, optimally, or say why they cannot be placed.

Theory of operation
-------------------
``solve(nodes, pods)`` takes pods with ``node_name`` set as running (counted
against their node; fixed, unless "least-preemption" evicts them) and places
the others, the *batch*, so that they
could be bound in some order with every kube-scheduler Filter passing at each
bind (`solver_encode` has the exact rules).  The answer carries that binding
order.

Optimization is lexicographic:

1. the number of placed pods, maximal (non-gang; a pod may stay pending), or
   all of them (``gang=True``: all or none);
2. then the objective: ``"score"`` (maximize the sum over placed pods of
   s(p, n), the framework's weighted, normalized score of p's node with p
   scheduled first against the running pods, by the profile of ``config``
   that p names: `solver_score` says exactly what it is and what it leaves
   out -- the batch pods' effect on each other's scores),
   ``"fewest-nodes"`` (minimize the nodes that host at least one pod, running
   or placed), ``"placed"`` (nothing beyond the count), or
   ``"least-preemption"`` (below).

Least preemption.  Only with this objective may running pods be evicted, by
DefaultPreemption's rules as the batch sees them: a running pod r may be
evicted only if a batch pod of strictly higher priority whose
``preemptionPolicy`` is not ``Never`` is bound to r's node (kube removes
victims only from the node it nominates, and only of lower priority than the
preemptor); so a pod of equal or higher priority than every such preemptor
is never evicted, and a ``Never`` pod evicts nothing (it may use room that
others freed).  Victims go first, then the batch binds in `order`, every
bind passing the filters against the running pods that are kept and the
batch pods bound before: an evicted pod counts for nothing (resources, pod
count, host ports, either direction of anti-affinity, affinity partners,
spread counts).  After the most pods placed, the levels are:

2a. fewest PodDisruptionBudget violations, counted as the sum over budgets
    of max(0, evicted pods it covers - disruptionsAllowed).  kube counts the
    victims that push some budget below zero and prefers the candidate with
    the fewest; the two counts agree when no pod is covered by two budgets.
    Violating a budget is allowed (kube does it when nothing else helps) but
    costs more than any number of evictions;
2b. fewest evicted pods;
2c. the least important victims: the fewest victims at the highest priority
    any victim has, then at the next priority, and so on (so, first, the
    lowest highest-victim priority: kube's second criterion).

kube, choosing a node for one pod, puts a lower highest-victim priority
before fewer victims; here the count comes first, as the objective asked for
is least preemption, and priorities decide between equally small sets.
`objective_value` is the number of evicted pods; `objective_bound` the least
number proved necessary among placements that place as many pods with as
few budget violations; `evicted` and `pdb_violations` say which and how many.

Each level is an anytime search over `z3.Solver` calls on the finite-domain
(SAT + pseudo-Boolean) engine: first an optimistic probe at the level's bound
(everyone placed; every pod on its best node; no new node; no eviction),
then bisection, then, if a probe times out, a creep down from the best
placement found; a level's result is then held while the next is searched.
A level is optimal when a bound is met or an "at least this good" query is
proved unsatisfiable.  Linear relaxations (`solver_bound`) bound the pods
placed, the score, the nodes and the evictions.  Before 2b, the evictions of
the placement found so far are cut down with every batch pod held where it
is (cheap checks: kube's reprieve, in spirit), so that the search proper
starts from a placement that evicts only what it needs.  (z3.Optimize
was measured on these formulas: on a timeout its default MaxSAT engine
returns no usable model -- 0 pods placed where this search had placed 89 --
and its arithmetic optimizer did not find a first model of a 100-pod
problem in 10 s; nor did its MaxSAT engine answer "least evictions" for a
20-pod problem in 30 s, where this search finds 7 and proves 5 in 10 s.)

Time enters only through the injected ``clock`` (the CLI and the benchmarks
pass ``time.monotonic``): ``timeout_s`` of it bounds the optimization, and
on expiry the best placement found so far is returned with status
``"feasible-timeout"``.  Without a clock (the default) there is no time
limit: every check runs to its end, ``timeout_s`` and ``explain_timeout_s``
are unused, and the answer depends only on the input and ``seed``.

Pods left pending get a reason: kube-scheduler's own message form evaluated
against the cluster after the placement ("0/5 nodes are available: 3
Insufficient cpu, ..."), and, when there is time, the minimized unsatisfiable
core of "this pod placed too" (`solver_explain`).  An infeasible gang gets
`conflicts`: which pods and which constraints cannot hold together.  An
evicted pod's reason names its preemptor.

Statuses: ``optimal``; ``feasible-timeout`` (a valid placement, not proved
optimal); ``infeasible`` (gang only: proved impossible); ``timeout`` (gang
only: neither a placement nor a proof within the limit).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import z3
from attrs import evolve, field, frozen

from .config import SchedulerConfig
from .model import FrozenMap, Node, Pod
from .solver_bound import lp_evictions_bound, lp_nodes_bound, lp_placed_bound, lp_score_bound
from .solver_encode import Encoding, count_true
from .solver_explain import Conflict, Explainer
from .solver_problem import Budget, Problem, SolverInputError, kube_message
from .solver_score import framework_scores, score_node_classes

__all__ = [
    "OBJECTIVES",
    "Conflict",
    "SolveResult",
    "SolverInputError",
    "placement_feasible",
    "solve",
]

OBJECTIVES: Final = ("score", "fewest-nodes", "placed", "least-preemption")
Clock = Callable[[], float]


def _map(data: Mapping[str, Any]) -> FrozenMap[Any]:
    return data if isinstance(data, FrozenMap) else FrozenMap(data)


@frozen
class SolveResult:
    """A placement of the batch, how good it is, and why pods were left out.

    `placements` lists every pod ("namespace/name"): the running ones on their
    node (None for an evicted one), then the placed batch pods in `order` (a
    binding order in which every bind passes the filters, once the `evicted`
    pods are gone), then the pending ones with None.
    """

    placements: Mapping[str, str | None] = field(converter=_map)
    optimal: bool
    status: str
    objective: str
    objective_value: int | None
    objective_bound: int | None = None
    """The best value the solver proved possible (upper for score, lower for nodes)."""
    reasons: Mapping[str, str] = field(factory=dict, converter=_map)
    conflicts: tuple[Conflict, ...] = ()
    order: tuple[str, ...] = ()
    evicted: tuple[str, ...] = ()
    """Running pods evicted to make room ("least-preemption" only), in input order."""
    pdb_violations: int = 0
    """Evictions beyond the PodDisruptionBudgets' allowance, summed over budgets."""

    @property
    def placed(self) -> int:
        return len(self.order)


def _deadline(clock: Clock | None, seconds: float) -> float:
    return math.inf if clock is None else clock() + seconds


class _Search:
    """Bounded checks against one incremental solver (unbounded without a clock)."""

    def __init__(self, solver: Any, deadline: float, clock: Clock | None) -> None:
        self.solver = solver
        self.deadline = deadline
        self.clock = clock

    def left(self) -> float:
        return math.inf if self.clock is None else self.deadline - self.clock()

    def check(self, extra: Sequence[Any], share: float = 1.0) -> tuple[Any, Any]:
        left = self.left()
        if left <= 0:
            return z3.unknown, None
        if left < math.inf:
            self.solver.set("timeout", max(1, int(left * share * 1000)))
        self.solver.push()
        self.solver.add(*extra)
        r = self.solver.check()
        m = self.solver.model() if r == z3.sat else None
        self.solver.pop()
        return r, m

    def minimize(
        self,
        at_most: Callable[[int], Any],
        value: Callable[[Any], int],
        lower: int,
        current: int,
        model: Any,
    ) -> tuple[int, Any, int]:
        """Lower `current` (achieved by `model`, or trivially if None) towards `lower`.

        Returns (best value, its model, proved lower bound).
        """
        # `proven`: every value below it is impossible.  `hopeless`: values
        # below it were not found in the time given to them (not a proof).
        proven = hopeless = lower
        first = True
        while proven < current and self.left() > 0:
            if hopeless >= current:
                mid, share = current - 1, 1.0  # last resort: one step, all the time left
            elif first:
                mid, share = hopeless, 0.25  # optimistic probe at the bound
            else:
                mid, share = (hopeless + current - 1) // 2, 0.5
            first = False
            r, m = self.check([at_most(mid)], share)
            if r == z3.sat:
                current, model = value(m), m
            elif r == z3.unsat:
                proven = hopeless = max(hopeless, mid + 1)
            elif share == 1.0:
                break
            else:
                hopeless = mid + 1
        return current, model, proven


def _validate(objective: str, timeout_s: float) -> None:
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; expected one of {OBJECTIVES}")
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be positive, got {timeout_s}")


def solve(
    nodes: Sequence[Node],
    pods: Sequence[Pod],
    *,
    objective: str = "score",
    gang: bool = False,
    timeout_s: float = 10.0,
    seed: int = 0,
    explain: bool = True,
    explain_timeout_s: float | None = None,
    clock: Clock | None = None,
    pdbs: Sequence[Budget] = (),
    config: SchedulerConfig | None = None,
) -> SolveResult:
    """Place the pending pods among `pods` on `nodes`; see the module docstring.

    `objective`: one of `OBJECTIVES`.  `gang`: all batch pods or none.
    `clock`: seconds, e.g. ``time.monotonic``; with it `timeout_s` bounds the
    optimization and explanations of pending pods get `explain_timeout_s`
    more (default: `timeout_s`); without it (None) nothing is bounded.
    ``explain=False`` skips the unsat cores.  `pdbs`: the
    PodDisruptionBudgets that "least-preemption" respects.  `config`: the
    KubeSchedulerConfiguration whose profiles score the pods for "score"
    (default: the default profile; see `solver_score`).  `seed` seeds Z3.
    Raises `SolverInputError` (a ValueError) for inconsistent input and
    ValueError for a bad objective or timeout.
    """
    _validate(objective, timeout_s)
    preempt = objective == "least-preemption"
    prob = Problem(nodes, pods, preemption=preempt, pdbs=pdbs)
    nb = len(prob.batch)
    if nb == 0:
        value = _value_nodes(prob, {}) if objective == "fewest-nodes" else 0
        return SolveResult(_running(prob), True, "optimal", objective, value, value)
    deadline = _deadline(clock, timeout_s)
    scores: list[dict[int, int]] = []
    if objective == "score":
        scores = framework_scores(prob, config)
        prob.node_class = score_node_classes(prob, scores)
    explain_budget = timeout_s if explain_timeout_s is None else explain_timeout_s
    ctx = z3.Context()
    enc = Encoding(prob, ctx)
    solver = z3.SolverFor("QF_FD", ctx=ctx)
    solver.set("random_seed", seed)
    solver.add(*enc.constraints)
    search = _Search(solver, deadline, clock)
    hopeful = [pi for pi in range(nb) if prob.candidates[pi]]

    model: Any = None
    level1_optimal = True
    if gang:
        if len(hopeful) < nb:
            return _infeasible_gang(prob, seed, explain_budget, clock, objective)
        solver.add(*[enc.placed[pi] for pi in range(nb)])
        r, model = search.check([])
        if r == z3.unsat:
            return _infeasible_gang(prob, seed, explain_budget, clock, objective)
        if r != z3.sat:
            return _timeout_gang(prob, objective)
        unplaced = proven = 0
    else:

        def unplaced_at_most(k: int) -> Any:
            return z3.PbLe([(z3.Not(enc.placed[pi]), 1) for pi in hopeful], k)

        def count_unplaced(m: Any) -> int:
            return len(hopeful) - count_true(m, [enc.placed[pi] for pi in hopeful])

        # The LP relaxation bounds the count from above; the search starts there.
        lp = lp_placed_bound(prob, hopeful, _lp_ms(search))
        least = len(hopeful) - lp if lp is not None and lp < len(hopeful) else 0
        unplaced, model, proven = search.minimize(
            unplaced_at_most, count_unplaced, least, len(hopeful), None
        )
        level1_optimal = proven >= unplaced
        if hopeful:
            solver.add(unplaced_at_most(unplaced))
        if model is None:
            r, model = search.check([])
            if r != z3.sat:  # no time left even for the empty placement
                r, model = _empty_model(enc)

    # Level 2: the objective, with the number of placed pods held.
    pdb_violations = 0
    if preempt:
        value, bound, level2_optimal, model, pdb_violations = _least_preemption(
            prob, enc, search, model, hopeful, len(hopeful) - unplaced
        )
    else:
        value, bound, level2_optimal, model = _optimize_objective(
            prob,
            enc,
            search,
            objective,
            scores,
            model,
            level1_optimal,
            len(hopeful) - unplaced,
            hopeful,
            len(hopeful) - proven,
        )
    placement = enc.placement(model)
    order = enc.binding_order(model, placement)
    evicted = sorted(enc.evicted(model))
    placements = _running(prob)
    placements.update((prob.running[qi].key, None) for qi in evicted)
    placements.update((prob.batch[pi].key, prob.nodes[placement[pi]].name) for pi in order)
    for pi in range(nb):
        placements.setdefault(prob.batch[pi].key, None)
    optimal = level1_optimal and level2_optimal
    result = SolveResult(
        placements,
        optimal,
        "optimal" if optimal else "feasible-timeout",
        objective,
        value,
        bound,
        order=tuple(prob.batch[pi].key for pi in order),
        evicted=tuple(prob.running[qi].key for qi in evicted),
        pdb_violations=pdb_violations,
    )
    reasons = _eviction_reasons(prob, order, placement, evicted)
    pending = [pi for pi in range(nb) if pi not in placement]
    if pending:
        reasons.update(
            _reasons(
                prob, placement, evicted, pending, optimal, explain, seed, explain_budget, clock
            )
        )
    if reasons:
        result = evolve(result, reasons=reasons)
    return result


def _running(prob: Problem) -> dict[str, str | None]:
    return {p.key: p.node_name for p in prob.running}


def _empty_model(enc: Encoding) -> tuple[Any, Any]:
    s = z3.SolverFor("QF_FD", ctx=enc.ctx)
    s.add(*enc.constraints)
    s.add(*[z3.Not(v) for v in enc.a.values()])
    r = s.check()
    return r, s.model()


def _value_nodes(prob: Problem, placement: Mapping[int, int]) -> int:
    used = {ni for ni, on in enumerate(prob.running_on) if on}
    used.update(placement.values())
    return len(used)


def _optimize_objective(
    prob: Problem,
    enc: Encoding,
    search: _Search,
    objective: str,
    scores: Sequence[Mapping[int, int]],
    model: Any,
    level1_optimal: bool,
    placed_count: int,
    hopeful: Sequence[int],
    placed_bound: int,
) -> tuple[int, int, bool, Any]:
    if objective == "placed":
        return placed_count, placed_count if level1_optimal else placed_bound, True, model
    if objective == "score":
        best = {pi: max(scores[pi].values()) for pi in hopeful}
        # Loss form: what placed pods give up against their best node, plus the
        # best score of every pod left pending.  Small non-negative weights with
        # a small bound propagate far better than "sum of scores >= target".
        loss_terms = [
            (enc.a[pi, ni], best[pi] - s)
            for pi in hopeful
            for ni, s in scores[pi].items()
            if best[pi] - s > 0
        ] + [(z3.Not(enc.placed[pi]), best[pi]) for pi in hopeful if best[pi] > 0]

        def loss_at_most(k: int) -> Any:
            return z3.PbLe(loss_terms, k) if loss_terms else enc.true

        def loss(m: Any) -> int:
            placement = enc.placement(m)
            return sum(best[pi] for pi in hopeful) - sum(
                scores[pi][ni] for pi, ni in placement.items()
            )

        # With the count of placed pods optimal, the pods left pending lose at
        # least the smallest best-scores among them; the LP relaxation may know
        # better.
        pending = len(hopeful) - placed_count
        total = sum(best.values())
        lower = sum(sorted(best.values())[:pending]) if level1_optimal else 0
        if level1_optimal and loss(model) > lower:
            lp = lp_score_bound(prob, scores, hopeful, placed_count, _lp_ms(search))
            if lp is not None:
                lower = max(lower, total - lp)
        current, model, proven = search.minimize(loss_at_most, loss, lower, loss(model), model)
        return total - current, total - proven, proven >= current, model
    used: dict[int, Any] = {}
    for (_pi, ni), v in enc.a.items():
        if not prob.running_on[ni]:
            used.setdefault(ni, z3.Bool(f"used_{ni}", enc.ctx))
            search.solver.add(z3.Implies(v, used[ni]))
    fixed = sum(1 for on in prob.running_on if on)

    def nodes_at_most(k: int) -> Any:
        return z3.PbLe([(u, 1) for u in used.values()], k) if used else enc.true

    def new_nodes(m: Any) -> int:
        return _value_nodes(prob, enc.placement(m)) - fixed

    lower = 1 if placed_count and not fixed else 0
    if level1_optimal and new_nodes(model) > lower:
        lp = lp_nodes_bound(prob, hopeful, placed_count, _lp_ms(search))
        if lp is not None:
            lower = max(lower, lp)
    current, model, proven = search.minimize(
        nodes_at_most, new_nodes, lower, new_nodes(model), model
    )
    return fixed + current, fixed + proven, proven >= current, model


def _least_preemption(
    prob: Problem,
    enc: Encoding,
    search: _Search,
    model: Any,
    hopeful: Sequence[int],
    placed_count: int,
) -> tuple[int, int, bool, Any, int]:
    """Levels 2a-2c (module docstring): (evictions, proved lower bound, optimal, model, PDB violations)."""
    if not enc.evict:
        return 0, 0, True, model, 0
    solver = search.solver
    optimal = True
    evict = enc.evict

    def at_most(lits: Sequence[Any]) -> Callable[[int], Any]:
        return lambda k: z3.PbLe([(x, 1) for x in lits], k)

    # 2a: budgets.  The o-literals may only overcount; the value is read exactly.
    excess, rules = enc.pdb_excess()
    violations = 0
    if excess:
        solver.add(*rules)

        def broken(m: Any) -> int:
            return prob.pdb_violations(enc.evicted(m))

        violations, model, proven = search.minimize(
            at_most(excess), broken, 0, broken(model), model
        )
        optimal = optimal and proven >= violations
        solver.add(at_most(excess)(violations))
    # 2b: evictions, from the LP relaxation's lower bound up.
    lits = list(evict.values())
    model = _reprieve(search, enc, model, lits)
    lower = 0
    if count_true(model, lits) > 0:
        lp = lp_evictions_bound(prob, hopeful, placed_count, _lp_ms(search))
        lower = min(lp, count_true(model, lits)) if lp is not None else 0
    count, model, count_proven = search.minimize(
        at_most(lits), lambda m: count_true(m, lits), lower, count_true(model, lits), model
    )
    optimal = optimal and count_proven >= count
    # 2c: the fewest victims at each priority, from the highest down.
    solver.add(at_most(lits)(count))
    accounted = 0
    for prio in sorted({prob.running[qi].priority for qi in evict}, reverse=True):
        if accounted >= count:
            break
        level = [v for qi, v in evict.items() if prob.running[qi].priority == prio]
        here, model, proven = search.minimize(
            at_most(level),
            lambda m, level=level: count_true(m, level),  # type: ignore[misc]
            0,
            count_true(model, level),
            model,
        )
        optimal = optimal and proven >= here
        solver.add(at_most(level)(here))
        accounted += here
    return count, count_proven, optimal, model, violations


def _reprieve(search: _Search, enc: Encoding, model: Any, lits: Sequence[Any]) -> Any:
    """Evict fewer pods with every batch pod where `model` puts it (kube's reprieve, in spirit).

    The placement found by a level that did not care about evictions evicts
    pods it need not; with the placement held the checks are cheap, so the
    count comes down before the search proper starts.  (Letting the pods of
    a few nodes move as well, a local search, was measured on the benchmark
    and did no better in the same time.)
    """
    held = [
        v if z3.is_true(model.eval(v, model_completion=True)) else z3.Not(v) for v in enc.a.values()
    ]
    current = count_true(model, lits)
    while current > 0 and search.left() > 0:
        r, m = search.check([*held, z3.PbLe([(x, 1) for x in lits], current - 1)], 0.05)
        if r != z3.sat:
            break
        model, current = m, count_true(m, lits)
    return model


def _lp_ms(search: _Search) -> int | None:
    # The relaxation is worth a tenth of the time left, never more.
    left = search.left()
    return None if left == math.inf else max(1, int(left * 100))


def _infeasible_gang(
    prob: Problem, seed: int, budget: float, clock: Clock | None, objective: str
) -> SolveResult:
    explainer = Explainer(prob, seed=seed, deadline=_deadline(clock, budget), clock=clock)
    everyone = list(range(len(prob.batch)))
    core = explainer.core(everyone)
    if core is None:
        conflict = Conflict(
            tuple(p.key for p in prob.batch),
            (),
            "the gang cannot be placed, but no explanation was found within the time limit",
        )
    else:
        conflict = explainer.words(core, gang=True)
    reasons = {}
    for pi, p in enumerate(prob.batch):
        if not prob.candidates[pi]:
            reasons[p.key] = _no_candidate(prob, pi)
        else:
            reasons[p.key] = f"gang cannot be placed: {conflict.message}"
    return SolveResult(
        _running(prob) | dict.fromkeys((p.key for p in prob.batch), None),
        True,
        "infeasible",
        objective,
        None,
        None,
        reasons,
        (conflict,),
    )


def _timeout_gang(prob: Problem, objective: str) -> SolveResult:
    msg = "no placement of the whole gang was found within the time limit, and none was proved impossible"
    return SolveResult(
        _running(prob) | dict.fromkeys((p.key for p in prob.batch), None),
        False,
        "timeout",
        objective,
        None,
        None,
        dict.fromkeys((p.key for p in prob.batch), msg),
        (Conflict(tuple(p.key for p in prob.batch), (), msg),),
    )


def _no_candidate(prob: Problem, pi: int) -> str:
    msg = kube_message(prob, pi)
    if prob.preemption and prob.running:
        msg += " Preemption does not help: no node admits it even with every evictable pod gone."
    return msg


def _eviction_reasons(
    prob: Problem, order: Sequence[int], placement: Mapping[int, int], evicted: Sequence[int]
) -> dict[str, str]:
    out: dict[str, str] = {}
    for qi in evicted:
        q = prob.running[qi]
        ni = prob.running_node[qi]
        by = next(
            prob.batch[pi]
            for pi in order
            if placement[pi] == ni
            and pi in prob.preemptors
            and prob.batch[pi].priority > q.priority
        )
        out[q.key] = (
            f"preempted by {by.key} (priority {by.priority}) to make room on node {q.node_name}"
        )
    return out


def _after(prob: Problem, placement: Mapping[int, int], evicted: Sequence[int], pi: int) -> Problem:
    """The cluster after the placement, with pod pi as the only pending pod."""
    gone = set(evicted)
    kept = [q for qi, q in enumerate(prob.running) if qi not in gone]
    placed = [evolve(prob.batch[qi], node_name=prob.nodes[ni].name) for qi, ni in placement.items()]
    return Problem(prob.nodes, [*kept, *placed, prob.batch[pi]])


def _reasons(
    prob: Problem,
    placement: Mapping[int, int],
    evicted: Sequence[int],
    pending: Sequence[int],
    optimal: bool,
    explain: bool,
    seed: int,
    budget: float,
    clock: Clock | None,
) -> dict[str, str]:
    out: dict[str, str] = {}
    explainer: Explainer | None = None
    deadline = _deadline(clock, budget)
    for pi in pending:
        key = prob.batch[pi].key
        if not prob.candidates[pi]:
            out[key] = _no_candidate(prob, pi)
            continue
        after = kube_message(_after(prob, placement, evicted, pi), 0)
        out[key] = f"After the placement, {after}"
        if not optimal:
            out[key] += " The solver stopped at its time limit before proving it cannot be placed."
            continue
        if not explain or (clock is not None and clock() >= deadline):
            continue
        if explainer is None:
            explainer = Explainer(prob, seed=seed, deadline=deadline, clock=clock)
        core = explainer.core([pi, *placement])
        if core is not None:
            others = [
                prob.batch[qi].key
                for qi in sorted(int(str(f[1])) for f in core if f[0] == "place")
                if qi != pi
            ]
            conflict = explainer.words(core, gang=False)
            if others:
                out[key] += (
                    f" Placing it as well would leave one of {', '.join(others)} pending: "
                    + "; ".join(conflict.constraints)
                    + "."
                )
            else:
                out[key] += " " + conflict.message[:1].upper() + conflict.message[1:] + "."
    return out


def placement_feasible(
    nodes: Sequence[Node], pods: Sequence[Pod], pod_key: str, node_name: str
) -> bool:
    """Can the pending pod `pod_key`, alone, be bound to `node_name` (the Z3 encoding's verdict)?

    Running pods (``node_name`` set) count; other pending pods are ignored.
    """
    target = [p for p in pods if p.key == pod_key]
    if len(target) != 1 or target[0].node_name:
        raise SolverInputError(f"{pod_key} is not exactly one pending pod")
    prob = Problem(nodes, [p for p in pods if p.node_name] + target)
    if node_name not in prob.node_index:
        raise SolverInputError(f"node {node_name!r} is not given")
    ni = prob.node_index[node_name]
    if (0, ni) not in (enc := Encoding(prob, z3.Context(), symmetry=False)).a:
        return False
    s = z3.SolverFor("QF_FD", ctx=enc.ctx)
    s.add(*enc.constraints)
    return bool(s.check(enc.a[0, ni]) == z3.sat)
