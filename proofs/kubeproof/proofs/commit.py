"""The commit rule: etcd's order statistic of match indexes is "the largest index a majority has".

Theory of operation
-------------------
A leader knows, for each voter, the last index of its log known to match the
leader's (``match``; the leader's own is its last persisted index).  etcd
computes the committed index of ``n`` voters (quorum/majority.go,
``CommittedIndex``) by sorting the matches ascending and taking the one at
position ``n - (n/2 + 1)``.  (Sorting descending and taking position
``n/2``, as `kubeproof.raft.quorum` does, is the same element:
``desc[j] = asc[n-1-j]``.)  The rule it must implement is Raft's: an index
is committed once a majority of voters have it.

``commit-index-is-majority-index``.  For each ``n = 1..max_size`` and all
integer matches ``m_1..m_n >= 0``: with ``c`` the element at position
``n - (n/2+1)`` of the ascending sort of the matches, for every integer
``i``,

    (at least n/2+1 voters have match >= i)   <=>   i <= c.

So ``c`` is exactly the largest index a majority has (the "<=" side: a
majority has ``c``; the "=>" side: no majority has anything above ``c``).

The sort is encoded by its specification, not by an algorithm: variables
``s_0 <= s_1 <= ... <= s_{n-1}`` and a permutation ``p`` (``n`` distinct
positions in ``0..n-1``) with ``s_j = m_{p_j}``.  Every run of any correct
sort is such an ``(s, p)``, so a claim proved for all of them holds for
etcd's insertion sort, whatever its tie-breaking.  The matches are
unbounded integers (``>= 0``), which covers etcd's uint64 indexes.

``joint-commit-index``.  A joint configuration commits
``min(committed(C_old), committed(C_new))`` (quorum/joint.go), an empty half
counting as committing everything (etcd returns ``MaxUint64``).  Claim, for
every pair of sizes up to ``max_size`` (at least one half non-empty):

    (a majority of C_old AND a majority of C_new have match >= i)
        <=>   i <= min(c_old, c_new).

The two halves get independent match variables.  A voter in both halves has
one match, so configurations that share voters are the special case where
some variables are equal: a claim for all values of independent variables
covers it.  The claim is symmetric in the two halves, so sizes
``(a, b)`` with ``a <= b`` suffice.

False variants: the upper median (position ``n/2`` of the ascending sort,
off by one for even ``n``) and a joint rule taking the max instead of the min.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import z3

from .result import Clock, Obligation, Proof, discharge, model_int

# Which element of the ascending sort of n matches the rule commits.
Position = Callable[[int], int]

COMMIT_NAME = "commit-index-is-majority-index"
JOINT_COMMIT_NAME = "joint-commit-index"
MAJORITY_MAX_SIZE = 9
JOINT_MAX_SIZE = 7


def etcd_position(n: int) -> int:
    return n - (n // 2 + 1)


def upper_median(n: int) -> int:
    return n // 2


def commit_index_is_majority_index(
    max_size: int = MAJORITY_MAX_SIZE, *, clock: Clock = time.perf_counter
) -> Proof:
    """etcd's sorted-matches rule commits exactly the largest index a majority has."""
    return _majority(
        COMMIT_NAME,
        f"for n = 1..{max_size} voters and all match indexes, the element at position"
        " n - (n/2+1) of the ascending sort of the matches is the largest index that"
        " a majority (n/2+1) of voters have",
        etcd_position,
        "n - (n/2+1)",
        max_size,
        clock,
    )


def upper_median_is_majority_index(
    max_size: int = MAJORITY_MAX_SIZE, *, clock: Clock = time.perf_counter
) -> Proof:
    """False variant: the median off by one (position n/2 of the ascending sort)."""
    return _majority(
        "upper-median-is-majority-index",
        f"(false) for n = 1..{max_size} voters and all match indexes, the element at"
        " position n/2 of the ascending sort of the matches is the largest index that a"
        " majority of voters have",
        upper_median,
        "n/2",
        max_size,
        clock,
    )


def joint_commit_index(
    max_size: int = JOINT_MAX_SIZE, *, clock: Clock = time.perf_counter
) -> Proof:
    """min of the halves' committed indexes is what a majority of both have."""
    return _joint(
        JOINT_COMMIT_NAME,
        f"for joint configurations of up to {max_size} voters in each half and all match"
        " indexes, min(committed(C_old), committed(C_new)) is the largest index that a"
        " majority of C_old and a majority of C_new both have",
        "min",
        max_size,
        clock,
    )


def joint_commit_max_index(
    max_size: int = JOINT_MAX_SIZE, *, clock: Clock = time.perf_counter
) -> Proof:
    """False variant: a joint configuration committing the max of its halves."""
    return _joint(
        "joint-commit-max-index",
        f"(false) for joint configurations of up to {max_size} voters in each half,"
        " max(committed(C_old), committed(C_new)) is the largest index that a majority"
        " of C_old and a majority of C_new both have",
        "max",
        max_size,
        clock,
    )


# --- plain-Python rules, for replaying counterexamples ----------------------------------


def majority_has(matches: Sequence[int], i: int) -> bool:
    """At least n/2+1 of the matches are >= i (an empty config has everything)."""
    n = len(matches)
    return n == 0 or sum(m >= i for m in matches) >= n // 2 + 1


def committed_at(matches: Sequence[int], position: Position) -> int | None:
    """The element at `position(n)` of the ascending sort; None (everything) if empty."""
    if not matches:
        return None
    return sorted(matches)[position(len(matches))]


# --- encoding ----------------------------------------------------------------------------


def _check_size(max_size: int) -> None:
    if max_size < 1:
        raise ValueError(f"max_size must be at least 1, got {max_size}")


def _sorted_element(ctx: Any, values: Sequence[Any], position: int, tag: str) -> tuple[Any, Any]:
    """(premises that `s` sorts `values` ascending, the element at `position`)."""
    n = len(values)
    s = [z3.Int(f"{tag}sorted{j}", ctx) for j in range(n)]
    p = [z3.Int(f"{tag}perm{j}", ctx) for j in range(n)]
    facts: list[Any] = []
    for j in range(n):
        facts += [p[j] >= 0, p[j] < n]
        facts += [z3.Implies(p[j] == k, s[j] == values[k]) for k in range(n)]
    if n > 1:
        facts.append(z3.Distinct(*p))
    facts += [s[j] <= s[j + 1] for j in range(n - 1)]
    return z3.And(*facts), s[position]


def _count_at_least(ctx: Any, values: Sequence[Any], i: Any) -> Any:
    one, zero = z3.IntVal(1, ctx), z3.IntVal(0, ctx)
    return z3.Sum([z3.If(v >= i, one, zero) for v in values])


def _has_majority(ctx: Any, values: Sequence[Any], i: Any) -> Any:
    return _count_at_least(ctx, values, i) >= len(values) // 2 + 1


def _shrink_sum(ctx: Any, values: Sequence[Any], i: Any) -> Callable[[Any], Any]:
    """Asks for a counterexample with smaller numbers."""
    size = z3.Sum([*values, i])
    return lambda model: size < model.eval(size, model_completion=True)


def _matches_words(values: Sequence[int], first_id: int = 1) -> str:
    """Match indexes by voter id: {1: 5, 2: 3}."""
    return "{" + ", ".join(f"{first_id + k}: {v}" for k, v in enumerate(values)) + "}"


# --- majority ----------------------------------------------------------------------------


def _majority(
    name: str,
    statement: str,
    position: Position,
    position_words: str,
    max_size: int,
    clock: Clock,
) -> Proof:
    _check_size(max_size)
    return discharge(
        name,
        statement,
        (_majority_obligation(n, position, position_words) for n in range(1, max_size + 1)),
        bounds=f"n = 1..{max_size}",
        clock=clock,
    )


def _majority_obligation(n: int, position: Position, position_words: str) -> Obligation:
    ctx = z3.Context()
    m = [z3.Int(f"match{v + 1}", ctx) for v in range(n)]
    i = z3.Int("i", ctx)
    sort, c = _sorted_element(ctx, m, position(n), "")
    premises = (*(v >= 0 for v in m), sort)
    claim = _has_majority(ctx, m, i) == (i <= c)

    def replay(model: Any) -> tuple[bool, str]:
        values = [model_int(model, v) for v in m]
        at = model_int(model, i)
        committed = sorted(values)[position(n)]
        has = majority_has(values, at)
        holders = sum(v >= at for v in values)
        if has:
            why = f"{holders} of {n} voters (a majority) reach index {at} > {committed}"
        else:
            why = f"only {holders} of {n} voters reach index {at}; a majority is {n // 2 + 1}"
        return has != (at <= committed), (
            f"matches (voter: index) {_matches_words(values)}, sorted {sorted(values)}:"
            f" position {position_words} = {position(n)} commits {committed}, but {why}"
        )

    return Obligation(f"n = {n}", premises, claim, replay, _shrink_sum(ctx, m, i))


# --- joint -------------------------------------------------------------------------------


def _joint(name: str, statement: str, combine: str, max_size: int, clock: Clock) -> Proof:
    _check_size(max_size)
    shapes = [(a, b) for a in range(max_size + 1) for b in range(max(a, 1), max_size + 1)]
    return discharge(
        name,
        statement,
        _joint_obligations(shapes, combine),
        bounds=f"halves of 0..{max_size} voters",
        clock=clock,
    )


def _joint_obligations(shapes: Sequence[tuple[int, int]], combine: str) -> Iterator[Obligation]:
    for a, b in shapes:
        yield _joint_obligation(a, b, combine)


def _joint_obligation(a: int, b: int, combine: str) -> Obligation:
    ctx = z3.Context()
    old = [z3.Int(f"match{v + 1}", ctx) for v in range(a)]
    new = [z3.Int(f"match{a + v + 1}", ctx) for v in range(b)]
    i = z3.Int("i", ctx)
    premises: list[Any] = [v >= 0 for v in old + new]
    sort_new, c_new = _sorted_element(ctx, new, etcd_position(b), "new_")
    premises.append(sort_new)
    has = _has_majority(ctx, new, i)
    committed = c_new
    if a:
        sort_old, c_old = _sorted_element(ctx, old, etcd_position(a), "old_")
        premises.append(sort_old)
        has = z3.And(_has_majority(ctx, old, i), has)
        smaller = c_old <= c_new if combine == "min" else c_old >= c_new
        committed = z3.If(smaller, c_old, c_new)
    claim = has == (i <= committed)

    def replay(model: Any) -> tuple[bool, str]:
        o = [model_int(model, v) for v in old]
        nw = [model_int(model, v) for v in new]
        at = model_int(model, i)
        c_o, c_n = committed_at(o, etcd_position), committed_at(nw, etcd_position)
        halves = [c for c in (c_o, c_n) if c is not None]
        joint = min(halves) if combine == "min" else max(halves)
        has_both = majority_has(o, at) and majority_has(nw, at)
        verdict = "have" if has_both else "do not have"
        old_words = f"C_old matches {_matches_words(o)}" if o else "C_old empty"
        return has_both != (at <= joint), (
            f"{old_words}, C_new matches {_matches_words(nw, a + 1)} (voter: index):"
            f" committed(C_old) = {'everything' if c_o is None else c_o},"
            f" committed(C_new) = {c_n}, the {combine} is {joint}, but majorities of both halves"
            f" {verdict} index {at}"
        )

    label = f"|C_old| = {a}, |C_new| = {b}"
    return Obligation(label, tuple(premises), claim, replay, _shrink_sum(ctx, old + new, i))
