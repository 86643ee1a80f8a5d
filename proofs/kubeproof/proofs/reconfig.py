"""Membership changes: joint-consensus quorums, and single-member changes, are safe.

Theory of operation
-------------------
A change of voters from ``C_old`` to ``C_new`` is safe when no decision
(an election, a commit) can be taken by a quorum of one configuration while
a disjoint quorum of the other takes a conflicting one: every quorum of the
configuration in force must intersect every quorum of the one before it
(invariant RAFT-CONFIG-SAFETY).  etcd goes through the joint configuration
``C_old,new``, whose quorums are the sets holding a majority of ``C_old``
*and* a majority of ``C_new``; the steps are ``C_old -> C_old,new -> C_new``.

All configurations here are subsets of a universe of ``width`` members,
encoded as bit-vectors (see `bits`), with etcd's majority ``|c|/2 + 1``.
Membership is symbolic: one query covers every pair of configurations of up
to ``width`` voters, of any sizes and any overlap.

``joint-quorums-intersect``.  For all non-empty ``C_old``, ``C_new`` and all
``J`` holding a majority of both, and every ``Q`` holding a majority of
``C_old`` (first query) or of ``C_new`` (second query), ``J`` and ``Q`` share
a voter of that configuration.  Both steps of the transition are covered:
``C_old -> C_old,new`` by the first query, ``C_old,new -> C_new`` by the
second.  (Splitting the two keeps each query small; the claim is their
conjunction.)

``single-change-quorums-intersect``.  Raft's other method (Ongaro's thesis,
§4.1): if ``C_old`` and ``C_new`` differ by at most one voter, any majority
of ``C_old`` and any majority of ``C_new`` share a voter of both, so such a
change needs no joint phase.

False variants, which Z3 must refute: a direct change between arbitrary
configurations (no joint phase), and a "single" change of two voters.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import z3

from .bits import bits_of, is_majority, popcount
from .result import Clock, Obligation, Proof, discharge, members, model_int

JOINT_NAME = "joint-quorums-intersect"
SINGLE_NAME = "single-change-quorums-intersect"
# Widths keep each proof near a second: the single-change query is the harder one for
# Z3's bit-blaster (about 0.3 s at 9 members, 1-3 s at 12 and 3-12 s at 16).
JOINT_WIDTH = 16
SINGLE_WIDTH = 9


def joint_quorums_intersect(width: int = JOINT_WIDTH, *, clock: Clock = time.perf_counter) -> Proof:
    """A quorum of C_old,new intersects every quorum of C_old and of C_new."""
    _check_width(width)
    return discharge(
        JOINT_NAME,
        f"for all non-empty configurations C_old, C_new of up to {width} voters, a set"
        " holding a majority of C_old and a majority of C_new (a joint quorum) shares a"
        " voter with every majority of C_old and with every majority of C_new",
        (_joint_obligation(width, side) for side in ("C_old", "C_new")),
        bounds=f"configs over {width} members",
        clock=clock,
    )


def direct_change_quorums_intersect(
    width: int = JOINT_WIDTH, *, clock: Clock = time.perf_counter
) -> Proof:
    """False variant: change C_old to C_new directly, with no joint phase."""
    _check_width(width)
    return discharge(
        "direct-change-quorums-intersect",
        f"(false) for all non-empty configurations C_old, C_new of up to {width} voters,"
        " every majority of C_old shares a voter with every majority of C_new",
        [_change_obligation(width, max_difference=None)],
        bounds=f"configs over {width} members",
        clock=clock,
    )


def single_change_quorums_intersect(
    width: int = SINGLE_WIDTH, *, clock: Clock = time.perf_counter
) -> Proof:
    """Configurations differing by one voter: their majorities intersect."""
    _check_width(width)
    return discharge(
        SINGLE_NAME,
        f"for all non-empty configurations C_old, C_new of up to {width} voters that"
        " differ by at most one voter, every majority of C_old shares a voter of both"
        " with every majority of C_new",
        [_change_obligation(width, max_difference=1)],
        bounds=f"configs over {width} members",
        clock=clock,
    )


def double_change_quorums_intersect(
    width: int = SINGLE_WIDTH, *, clock: Clock = time.perf_counter
) -> Proof:
    """False variant: two voters changed at once, no joint phase."""
    _check_width(width)
    return discharge(
        "double-change-quorums-intersect",
        f"(false) for all non-empty configurations C_old, C_new of up to {width} voters"
        " that differ by at most two voters, every majority of C_old shares a voter of"
        " both with every majority of C_new",
        [_change_obligation(width, max_difference=2)],
        bounds=f"configs over {width} members",
        clock=clock,
    )


def _check_width(width: int) -> None:
    if width < 1:
        raise ValueError(f"width must be at least 1, got {width}")


def _fewer_members(universe: Any) -> Callable[[Any], Any]:
    """Shrinks a counterexample to one over fewer members."""
    width = universe.size()
    size = popcount(universe, width)
    return lambda model: z3.ULT(size, model.eval(size, model_completion=True))


def _relabel(values: Iterable[int]) -> list[frozenset[int]]:
    """Sets of bits from a model, renumbered so that C_old ∪ C_new is 0..k-1.

    Majorities are symmetric under renaming members, so the renumbered sets are
    the same counterexample, only easier to read.  Members outside both
    configurations are dropped: they count in no majority.
    """
    old, new, *rest = (bits_of(v, v.bit_length()) for v in values)
    rank = {m: r for r, m in enumerate(sorted(old | new))}
    return [frozenset(rank[m] for m in s if m in rank) for s in (old, new, *rest)]


def _majority(s: frozenset[int], c: frozenset[int]) -> bool:
    return len(s & c) >= len(c) // 2 + 1


def _joint_obligation(width: int, side: str) -> Obligation:
    ctx = z3.Context()
    old, new, joint, quorum = (z3.BitVec(v, width, ctx) for v in ("C_old", "C_new", "J", "Q"))
    config = old if side == "C_old" else new
    premises = (
        old != 0,
        new != 0,
        is_majority(joint, old, width),
        is_majority(joint, new, width),
        is_majority(quorum, config, width),
    )
    claim = (joint & quorum & config) != 0

    def replay(model: Any) -> tuple[bool, str]:
        o, n, j, q = _relabel(model_int(model, v) for v in (old, new, joint, quorum))
        c = o if side == "C_old" else n
        violated = bool(o and n) and _majority(j, o) and _majority(j, n) and _majority(q, c)
        violated = violated and not j & q & c
        return violated, (
            f"C_old = {members(o)}, C_new = {members(n)}: J = {members(j & (o | n))} holds a"
            f" majority of both, Q = {members(q & c)} a majority of {side}, and they share"
            f" no voter of {side}"
        )

    return Obligation(f"quorums of {side}", premises, claim, replay, _fewer_members(old | new))


def _change_obligation(width: int, max_difference: int | None) -> Obligation:
    ctx = z3.Context()
    old, new, q_old, q_new = (
        z3.BitVec(v, width, ctx) for v in ("C_old", "C_new", "Q_old", "Q_new")
    )
    premises: tuple[Any, ...] = (
        old != 0,
        new != 0,
        is_majority(q_old, old, width),
        is_majority(q_new, new, width),
    )
    if max_difference is not None:
        premises += (z3.ULE(popcount(old ^ new, width), max_difference),)
    claim = (q_old & q_new & old & new) != 0

    def replay(model: Any) -> tuple[bool, str]:
        o, n, qo, qn = _relabel(model_int(model, v) for v in (old, new, q_old, q_new))
        near = max_difference is None or len(o ^ n) <= max_difference
        violated = bool(o and n) and near and _majority(qo, o) and _majority(qn, n)
        violated = violated and not qo & qn & o & n
        return violated, (
            f"C_old = {members(o)}, C_new = {members(n)} (differing by {len(o ^ n)}):"
            f" Q_old = {members(qo & o)} is a majority of C_old and Q_new = {members(qn & n)}"
            " a majority of C_new, and they share no voter of both"
        )

    label = "a direct change" if max_difference is None else f"|C_old Δ C_new| <= {max_difference}"
    return Obligation(label, premises, claim, replay, _fewer_members(old | new))
