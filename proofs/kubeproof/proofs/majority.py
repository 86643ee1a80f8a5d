"""Majority quorums intersect: for each cluster size up to a bound, and for all sizes.

Theory of operation
-------------------
Raft's safety rests on one fact: any two majorities of the same voters share
a voter (so two leaders cannot both win term t, and a committed entry is on
some voter of every future leader's quorum).  etcd's majority of ``n``
voters is ``n / 2 + 1`` of them (integer division).  Two proofs:

``majority-quorums-intersect`` (bounded).  For each size ``n = 1..max_size``
the voters are bits ``0..n-1`` of a bit-vector; ``Q1`` and ``Q2`` are
arbitrary subsets.  The negated claim is
``|Q1| >= n/2+1  and  |Q2| >= n/2+1  and  Q1 & Q2 == 0``; ``unsat`` for each
``n`` proves the claim for that size.  The encoding is exact: every pair of
subsets is some pair of bit-vector values, and population count is exact.

``majority-quorums-intersect-all-sizes`` (symbolic, every ``n >= 1``).
Cardinality is not a first-order notion, so it is defined by recursion and
the claim is proved by induction, with Z3 discharging each part:

- ``Q1``, ``Q2`` are arbitrary ``Array(Int, Bool)`` (arbitrary sets of
  integers; the cluster's members are ``0..n-1``, which any ``n``-member
  cluster is after renaming).
- ``c1(k)``, ``c2(k)``, ``cb(k)``, ``cu(k)`` are the numbers of members of
  ``Q1``, ``Q2``, ``Q1 ∩ Q2`` and ``Q1 ∪ Q2`` among ``0..k-1``, defined by
  ``c(0) = 0`` and ``c(k+1) = c(k) + [k ∈ set]``; ``w(k)`` is a witness
  defined by ``w(k+1) = k if k ∈ Q1 ∩ Q2 else w(k)``.  In Z3 they are
  uninterpreted functions, and the solver is only ever given these defining
  equations (at the points in question) as hypotheses.  The real counting
  and witness functions satisfy them, so they are true facts, and any
  conclusion Z3 draws from them holds of the real counts: that is why an
  ``unsat`` here is a proof about real sets.
- Invariant ``Inv(k)``: ``0 <= cb(k) <= c1(k), c2(k)``;
  ``c1(k) + c2(k) = cb(k) + cu(k)`` (inclusion–exclusion);
  ``cu(k) <= k`` (the pigeonhole part: the union fits among ``k`` members);
  and ``cb(k) >= 1`` implies ``w(k)`` is a common member below ``k``.
- Obligation *base*: the definitions at 0 imply ``Inv(0)``.
  Obligation *step*: for every ``k >= 0``, every ``Q1, Q2`` and all values of
  the functions, ``Inv(k)`` and the recursion from ``k`` to ``k+1`` imply
  ``Inv(k+1)``.  By induction on ``k`` (the one step taken outside Z3, by
  the ordinary induction principle) ``Inv(k)`` holds for every ``k >= 0``.
- Obligation *conclusion*: for every ``n >= 1``, ``Inv(n)`` with
  ``c1(n) >= n/2+1`` and ``c2(n) >= n/2+1`` implies
  ``exists j. 0 <= j < n and j ∈ Q1 and j ∈ Q2``.  (The negation, a
  universally quantified formula, is given to Z3 as such.)

Each obligation is a validity check: its negation must be ``unsat``.

The false variant, "at least half" (``(n+1)/2``, which equals the majority
for odd ``n``), must come out proved for odd sizes and refuted at the first
even one: two halves of an even cluster can be disjoint.  Its symbolic
counterexample is a set of counts; the replay builds real sets with those
counts (``Q1`` = the first ``c1`` members, ``Q2`` the ``c2`` members from
``c1 - cb`` on) and re-checks them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import z3

from .bits import bits_of, popcount
from .result import Clock, Obligation, Proof, discharge, members, model_int

# The size of a quorum of n voters: concrete (bounded proofs) and symbolic.
Threshold = Callable[[int], int]
SymbolicThreshold = Callable[[Any], Any]

MAJORITY_NAME = "majority-quorums-intersect"
ALL_SIZES_NAME = "majority-quorums-intersect-all-sizes"


def etcd_majority(n: int) -> int:
    return n // 2 + 1


def at_least_half(n: int) -> int:
    return (n + 1) // 2


def majority_quorums_intersect(max_size: int = 9, *, clock: Clock = time.perf_counter) -> Proof:
    """For each cluster size 1..max_size: any two majorities share a member."""
    return _bounded(
        MAJORITY_NAME,
        f"for every cluster size n = 1..{max_size}, any two sets of members each of size"
        " >= n/2+1 (etcd's majority) share a member",
        etcd_majority,
        "n/2+1",
        max_size,
        clock,
    )


def half_quorums_intersect(max_size: int = 9, *, clock: Clock = time.perf_counter) -> Proof:
    """False variant: "at least half" is a quorum (wrong for even sizes)."""
    return _bounded(
        "half-quorums-intersect",
        f"(false) for every cluster size n = 1..{max_size}, any two sets of members each"
        " of size >= (n+1)/2 share a member",
        at_least_half,
        "(n+1)/2",
        max_size,
        clock,
    )


def majority_quorums_intersect_all_sizes(*, clock: Clock = time.perf_counter) -> Proof:
    """For every cluster size n >= 1, by induction over counting functions."""
    return _symbolic(
        ALL_SIZES_NAME,
        "for every cluster size n >= 1, any two sets of members each of size >= n/2+1"
        " share a member",
        lambda n: n / 2 + 1,
        "n/2+1",
        etcd_majority,
        clock,
    )


def half_quorums_intersect_all_sizes(*, clock: Clock = time.perf_counter) -> Proof:
    """False variant of the symbolic proof: "at least half" is a quorum."""
    return _symbolic(
        "half-quorums-intersect-all-sizes",
        "(false) for every cluster size n >= 1, any two sets of members each of size"
        " >= (n+1)/2 share a member",
        lambda n: (n + 1) / 2,
        "(n+1)/2",
        at_least_half,
        clock,
    )


# --- bounded: one bit-vector query per size -----------------------------------------------


def _bounded(
    name: str,
    statement: str,
    threshold: Threshold,
    threshold_words: str,
    max_size: int,
    clock: Clock,
) -> Proof:
    if max_size < 1:
        raise ValueError(f"max_size must be at least 1, got {max_size}")
    return discharge(
        name,
        statement,
        (_size_obligation(n, threshold, threshold_words) for n in range(1, max_size + 1)),
        bounds=f"n = 1..{max_size}",
        clock=clock,
    )


def _size_obligation(n: int, threshold: Threshold, threshold_words: str) -> Obligation:
    ctx = z3.Context()
    q1 = z3.BitVec("Q1", n, ctx)
    q2 = z3.BitVec("Q2", n, ctx)
    quorum = threshold(n)
    premises = (z3.UGE(popcount(q1, n), quorum), z3.UGE(popcount(q2, n), quorum))
    claim = (q1 & q2) != 0

    def replay(model: Any) -> tuple[bool, str]:
        a = bits_of(model_int(model, q1), n)
        b = bits_of(model_int(model, q2), n)
        violated = len(a) >= quorum and len(b) >= quorum and not a & b
        return violated, (
            f"Q1 = {members(a)} and Q2 = {members(b)} each hold >= {threshold_words} = {quorum}"
            f" of the {n} members {members(range(n))}, and share no member"
        )

    return Obligation(f"n = {n}", premises, claim, replay)


# --- symbolic: induction over counting functions -------------------------------------------


class _Counting:
    """The sets, counting functions and witness of the induction, in one context."""

    def __init__(self, ctx: Any) -> None:
        int_sort, bool_sort = z3.IntSort(ctx), z3.BoolSort(ctx)
        self.ctx = ctx
        self.q1 = z3.Array("Q1", int_sort, bool_sort)
        self.q2 = z3.Array("Q2", int_sort, bool_sort)
        self.c1 = z3.Function("c1", int_sort, int_sort)
        self.c2 = z3.Function("c2", int_sort, int_sort)
        self.cb = z3.Function("c_both", int_sort, int_sort)
        self.cu = z3.Function("c_union", int_sort, int_sort)
        self.w = z3.Function("witness", int_sort, int_sort)

    def common(self, j: Any) -> Any:
        return z3.And(z3.Select(self.q1, j), z3.Select(self.q2, j))

    def base(self) -> Any:
        zero = z3.IntVal(0, self.ctx)
        return z3.And(*(f(zero) == 0 for f in (self.c1, self.c2, self.cb, self.cu)))

    def recursion(self, k: Any) -> Any:
        """The defining equations from k to k + 1."""
        one, zero = z3.IntVal(1, self.ctx), z3.IntVal(0, self.ctx)
        in1, in2 = z3.Select(self.q1, k), z3.Select(self.q2, k)
        return z3.And(
            self.c1(k + 1) == self.c1(k) + z3.If(in1, one, zero),
            self.c2(k + 1) == self.c2(k) + z3.If(in2, one, zero),
            self.cb(k + 1) == self.cb(k) + z3.If(z3.And(in1, in2), one, zero),
            self.cu(k + 1) == self.cu(k) + z3.If(z3.Or(in1, in2), one, zero),
            self.w(k + 1) == z3.If(z3.And(in1, in2), k, self.w(k)),
        )

    def invariant(self, k: Any) -> Any:
        c1, c2, cb, cu, w = self.c1(k), self.c2(k), self.cb(k), self.cu(k), self.w(k)
        return z3.And(
            cb >= 0,
            cb <= c1,
            cb <= c2,
            c1 + c2 == cb + cu,
            cu <= k,
            z3.Implies(cb >= 1, z3.And(w >= 0, w < k, self.common(w))),
        )


def _symbolic(
    name: str,
    statement: str,
    threshold: SymbolicThreshold,
    threshold_words: str,
    concrete: Threshold,
    clock: Clock,
) -> Proof:
    return discharge(
        name,
        statement,
        _induction(threshold, threshold_words, concrete),
        bounds="all n >= 1, by induction",
        clock=clock,
    )


def _induction(
    threshold: SymbolicThreshold, threshold_words: str, concrete: Threshold
) -> Iterator[Obligation]:
    enc = _Counting(z3.Context())
    yield Obligation(
        "induction base (k = 0)", (enc.base(),), enc.invariant(z3.IntVal(0, enc.ctx)), _no_replay
    )

    enc = _Counting(z3.Context())
    k = z3.Int("k", enc.ctx)
    yield Obligation(
        "induction step (k to k+1)",
        (k >= 0, enc.invariant(k), enc.recursion(k)),
        enc.invariant(k + 1),
        _no_replay,
    )

    enc = _Counting(z3.Context())
    n, j = z3.Int("n", enc.ctx), z3.Int("j", enc.ctx)
    premises = (n >= 1, enc.invariant(n), enc.c1(n) >= threshold(n), enc.c2(n) >= threshold(n))
    claim = z3.Exists([j], z3.And(j >= 0, j < n, enc.common(j)))

    def replay(model: Any) -> tuple[bool, str]:
        size = model_int(model, n)
        c1, c2, cb = (model_int(model, f(n)) for f in (enc.c1, enc.c2, enc.cb))
        a = frozenset(range(c1))
        b = frozenset(range(c1 - cb, c1 - cb + c2))
        quorum = concrete(size)
        inside = all(0 <= m < size for m in a | b)
        violated = inside and len(a) >= quorum and len(b) >= quorum and not a & b
        return violated, (
            f"n = {size}: Q1 = {members(a)} and Q2 = {members(b)} each hold"
            f" >= {threshold_words} = {quorum} members, and share no member"
        )

    def smaller(model: Any) -> Any:
        return n < model.eval(n, model_completion=True)

    yield Obligation("conclusion", premises, claim, replay, smaller)


def _no_replay(model: Any) -> tuple[bool, str]:
    # A model of a negated base or step case would be a gap in the induction, not a
    # counterexample to the claim: never confirmed, so it is reported as unknown.
    return False, f"the induction does not go through: {model}"
