"""Linear-programming bounds for the solver's objectives, computed with z3.Optimize.

Theory of operation
-------------------
Proving that no placement beats the best one found is the hard half of an
optimization; the SAT search alone rarely closes the last gap of a
bin-packing-like objective.  A linear relaxation gives a bound cheaply:
identical pods are aggregated into one real variable per (pod class, node),
``y[k, n]`` in ``[0, size of k]``, subject to

* each class placed at most its size, and the classes together at least the
  number of pods the first level placed (for the score and node bounds);
* every node's capacity, resource by resource, and its pod count;
* at most one pod per topology domain for a class whose required
  anti-affinity matches its own pods;
* for a class whose spread constraint counts only its own batch pods, the
  final skew bound that sequential binding implies (see `_spread_rows`);

and z3.Optimize (simplex over the rationals) maximizes the pods placed, or
the score, or minimizes the nodes used (with a real "node used" fraction
``u[n]`` that scales the node's capacity).  The other constraints (ports,
affinity, spread and anti-affinity between classes) are dropped, which only
loosens the bound, so it stays valid: the integer optimum is at most the
floor of the relaxed count or score (at least the ceiling of the relaxed
node count).  When the search meets the bound, optimality is
proved without any unsatisfiability proof.

In a preemption problem the capacities are those left by the *fixed*
running pods (every evictable pod gone) and a spread row counts the
evictable pods of a domain only where that loosens it, so the bound on the
pods placed stays valid whatever is evicted.  For the least number of
evictions, each evictable pod q gets a real ``keep[q]`` in [0, 1] that adds
its requests to its node's rows (a row whose evictable pods alone exceed the
room holds only in proportion to a fractional "busy" share, as the encoding's
row holds only while a pod asking for the resource is there), ``1 - keep[q]``
is at most the higher-priority preemptors placed on q's node, and the sum of
``1 - keep`` is minimized; the ceiling of the optimum bounds the count from
below.  A timeout of None means no time limit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

import z3

from .model import PODS
from .solver_problem import Problem

__all__ = ["lp_evictions_bound", "lp_nodes_bound", "lp_placed_bound", "lp_score_bound"]


def _classes(prob: Problem, hopeful: Sequence[int]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for pi in hopeful:
        out.setdefault(prob.pod_class[pi], []).append(pi)
    return out


def _relaxation(
    prob: Problem,
    hopeful: Sequence[int],
    placed: int,
    ctx: z3.Context,
    use: Mapping[int, Any],
    keep: Mapping[int, Any] | None = None,
) -> tuple[Any, dict[tuple[int, int], Any]]:
    opt = z3.Optimize(ctx=ctx)
    classes = _classes(prob, hopeful)
    y: dict[tuple[int, int], Any] = {}
    for k, members in classes.items():
        rep = members[0]
        for ni in prob.candidates[rep]:
            v = z3.Real(f"y_{k}_{ni}", ctx)
            y[k, ni] = v
            opt.add(v >= 0, v <= len(members))
        opt.add(
            z3.Sum([y[k, ni] for ni in prob.candidates[rep]] or [z3.RealVal(0, ctx)])
            <= len(members)
        )
    opt.add(z3.Sum(list(y.values()) or [z3.RealVal(0, ctx)]) >= placed)
    for k, members in classes.items():
        first = prob.batch[members[0]]
        # A class whose anti-affinity term matches its own pods has at most one
        # pod per domain of the term's key.
        for t in prob.anti[members[0]]:
            if not t.matches(first):
                continue
            domains: dict[str, list[Any]] = {}
            for (kk, ni), v in y.items():
                value = prob.nodes[ni].labels.get(t.topology_key)
                if kk == k and value is not None:
                    domains.setdefault(value, []).append(v)
            for vs in domains.values():
                opt.add(z3.Sum(vs) <= 1)
        for ci, c in enumerate(prob.spread[members[0]]):
            _spread_rows(prob, opt, y, k, members, ci, c, ctx)
    for ni in range(len(prob.nodes)):
        here = [(k, v) for (k, n), v in y.items() if n == ni]
        if not here:
            continue
        scale = use.get(ni, z3.RealVal(1, ctx))
        soft = prob.evictable_on[ni] if keep is not None else ()
        pods_free = max(0, prob.nodes[ni].allocatable.pods - len(prob.fixed_on[ni]))
        row = _Row(opt, ctx, ni, classes)
        row.add(
            PODS,
            [(k, v, 1) for k, v in here],
            [(keep[qi], 1) for qi in soft] if keep else [],
            pods_free,
            scale,
        )
        names = {r for k, _ in here for r in prob.requests[classes[k][0]]} - {PODS}
        for r in names:
            row.add(
                r,
                [(k, v, prob.requests[classes[k][0]].get(r, 0)) for k, v in here],
                [
                    (keep[qi], w)
                    for qi in soft
                    if keep and (w := prob.running_requests[qi].get(r, 0)) > 0
                ],
                max(0, prob.free(ni, r)),
                scale,
            )
    if keep:
        # An evicted pod needs a preemptor of higher priority on its node.
        for qi, kq in keep.items():
            q = prob.running[qi]
            by = [
                v
                for (k, ni), v in y.items()
                if ni == prob.running_node[qi]
                and classes[k][0] in prob.preemptors
                and prob.batch[classes[k][0]].priority > q.priority
            ]
            opt.add(1 - kq <= z3.Sum(by or [z3.RealVal(0, ctx)]))
    return opt, y


class _Row:
    """One node's capacity rows; with evictable pods, relaxed from `Encoding._capped`."""

    def __init__(self, opt: Any, ctx: z3.Context, ni: int, classes: Mapping[int, Sequence[int]]):
        self.opt, self.ctx, self.ni, self.classes = opt, ctx, ni, classes

    def add(
        self,
        r: str,
        batch: Sequence[tuple[int, Any, int]],
        soft: Sequence[tuple[Any, int]],
        cap: int,
        scale: Any,
    ) -> None:
        lhs = z3.Sum([v * w for _, v, w in batch if w] + [kq * w for kq, w in soft])
        over = max(0, sum(w for _, w in soft) - cap)
        if not over:
            self.opt.add(lhs <= cap * scale)
            return
        # The row holds only while a pod asking for r is on the node: a
        # fractional "busy" at least each such class's share.
        busy = z3.Real(f"busy_{self.ni}_{r}", self.ctx)
        self.opt.add(busy >= 0, busy <= 1)
        for k, v, w in batch:
            if w:
                self.opt.add(v <= len(self.classes[k]) * busy)
        self.opt.add(lhs <= cap + over * (1 - busy))


def _spread_rows(
    prob: Problem,
    opt: Any,
    y: Mapping[tuple[int, int], Any],
    k: int,
    members: Sequence[int],
    ci: int,
    c: Any,
    ctx: z3.Context,
) -> None:
    # When every pod the constraint counts in the batch is of this class, the
    # last pod bound into a domain u saw count(u) + 1 - min <= maxSkew, and the
    # minimum only grows afterwards: finally R_u + x_u - (R_v + x_v) <= maxSkew
    # for every domain u that received a pod.  Relaxed to hold for x_u = 0 too.
    rep_i = members[0]
    rep = prob.batch[rep_i]
    counted = [qi for qi, q in enumerate(prob.batch) if c.counts(rep, q)]
    if not counted or any(qi not in members for qi in counted):
        return
    keys = prob.spread_keys(rep_i)
    key = c.topology_key
    eligible = [ni for ni, n in enumerate(prob.nodes) if c.eligible(rep, n, keys)]
    values = sorted({prob.nodes[ni].labels[key] for ni in eligible})
    # Fixed pods always count; evictable ones may or may not: `low` and `high`
    # bound a domain's running count.
    low = dict.fromkeys(values, 0)
    high = dict.fromkeys(values, 0)
    for qi, q in enumerate(prob.running):
        qn = prob.running_node[qi]
        if qn in eligible and c.counts(rep, q):
            high[prob.nodes[qn].labels[key]] += 1
            if prob.fixed[qi]:
                low[prob.nodes[qn].labels[key]] += 1
    x = {
        v: z3.Sum(
            [
                yy
                for (kk, ni), yy in y.items()
                if kk == k and ni in eligible and prob.nodes[ni].labels[key] == v
            ]
            or [z3.RealVal(0, ctx)]
        )
        for v in values
    }
    if len(values) >= c.min_domains:
        for u in values:
            for v in values:
                if u != v:
                    slack = max(0, c.max_skew + high[v] - low[u])
                    opt.add(x[u] - x[v] <= slack)
    else:
        for u in values:
            opt.add(x[u] <= max(0, c.max_skew - low[u]))


def _limit(opt: Any, timeout_ms: int | None) -> None:
    if timeout_ms is not None:
        opt.set("timeout", max(1, timeout_ms))


def _value(x: Any) -> Fraction | None:
    if z3.is_int_value(x):
        return Fraction(x.as_long())
    if z3.is_rational_value(x):
        return Fraction(x.numerator_as_long(), x.denominator_as_long())
    return None  # unbounded or an infinitesimal: no usable bound


def lp_score_bound(
    prob: Problem,
    scores: Sequence[Mapping[int, int]],
    hopeful: Sequence[int],
    placed: int,
    timeout_ms: int | None,
) -> int | None:
    """An upper bound on the score of any placement of `placed` pods, or None."""
    ctx = z3.Context()
    opt, y = _relaxation(prob, hopeful, placed, ctx, {})
    classes = _classes(prob, hopeful)
    goal = z3.Sum(
        [v * scores[classes[k][0]][ni] for (k, ni), v in y.items()] or [z3.RealVal(0, ctx)]
    )
    handle = opt.maximize(goal)
    _limit(opt, timeout_ms)
    if opt.check() != z3.sat:
        return None
    upper = _value(handle.upper())
    return None if upper is None else math.floor(upper)


def lp_placed_bound(prob: Problem, hopeful: Sequence[int], timeout_ms: int | None) -> int | None:
    """An upper bound on the number of pods any placement places, or None."""
    ctx = z3.Context()
    opt, y = _relaxation(prob, hopeful, 0, ctx, {})
    handle = opt.maximize(z3.Sum(list(y.values()) or [z3.RealVal(0, ctx)]))
    _limit(opt, timeout_ms)
    if opt.check() != z3.sat:
        return None
    upper = _value(handle.upper())
    return None if upper is None else math.floor(upper)


def lp_nodes_bound(
    prob: Problem, hopeful: Sequence[int], placed: int, timeout_ms: int | None
) -> int | None:
    """A lower bound on the new nodes (no running pods) any placement of `placed` pods uses."""
    ctx = z3.Context()
    use = {ni: z3.Real(f"u_{ni}", ctx) for ni in range(len(prob.nodes)) if not prob.running_on[ni]}
    opt, _ = _relaxation(prob, hopeful, placed, ctx, use)
    for u in use.values():
        opt.add(u >= 0, u <= 1)
    handle = opt.minimize(z3.Sum(list(use.values()) or [z3.RealVal(0, ctx)]))
    _limit(opt, timeout_ms)
    if opt.check() != z3.sat:
        return None
    lower = _value(handle.lower())
    return None if lower is None else math.ceil(lower)


def lp_evictions_bound(
    prob: Problem, hopeful: Sequence[int], placed: int, timeout_ms: int | None
) -> int | None:
    """A lower bound on the evictions any placement of `placed` pods needs, or None."""
    ctx = z3.Context()
    keep = {qi: z3.Real(f"keep_{qi}", ctx) for qi in prob.evictable}
    opt, _ = _relaxation(prob, hopeful, placed, ctx, {}, keep)
    for kq in keep.values():
        opt.add(kq >= 0, kq <= 1)
    handle = opt.minimize(z3.Sum([1 - kq for kq in keep.values()] or [z3.RealVal(0, ctx)]))
    _limit(opt, timeout_ms)
    if opt.check() != z3.sat:
        return None
    lower = _value(handle.lower())
    return None if lower is None else math.ceil(lower)
