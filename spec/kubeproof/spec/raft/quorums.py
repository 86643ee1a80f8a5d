"""Quorums of a configuration, as the checkers reason about them (independently of the node).

Theory of operation
-------------------
A configuration is a `ConfState`; its voters are `voters` (the incoming
half) and, while joint, `voters_outgoing`.  Learners never count.

* A *quorum* of a simple configuration V is a set holding a majority of V;
  of a joint configuration (I, O), a set holding a majority of I and a
  majority of O.
* Two configurations' quorums *intersect* when no quorum of the one is
  disjoint from a quorum of the other.  Quorum-ness only grows with the set,
  so there are disjoint quorums iff some quorum Q of the first leaves a
  quorum U \\ Q of the second (U the union of the voters): `quorums_intersect`
  tries every subset of U (configurations here have a handful of voters).
* A set H *blocks* a configuration when the voters outside H do not form a
  quorum: for a simple V that is |H ∩ V| >= |V| - |V| // 2 (for odd |V| a
  majority, for even |V| half); for (I, O), H blocks I or H blocks O.  A
  committed entry is safe exactly while the disks holding it block every
  quorum that could elect a leader: `blocked_up_to` turns "which disks hold
  index i" into "the highest index the holders block", the way a leader's
  commit index is the majority-th largest match index.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from itertools import combinations

from kubeproof.raft.types import ConfState

MAX_BRUTE_FORCE = 16
"""Most distinct voters `quorums_intersect` enumerates subsets of."""


def halves(cs: ConfState) -> tuple[frozenset[int], ...]:
    """The majority configurations whose quorums must all agree: (I,) or (I, O)."""
    inc = frozenset(cs.voters)
    out = frozenset(cs.voters_outgoing)
    return (inc, out) if out else (inc,)


def is_quorum(cs: ConfState, s: Collection[int]) -> bool:
    return all(2 * len(h & set(s)) > len(h) for h in halves(cs) if h)


def quorums_intersect(a: ConfState, b: ConfState) -> bool:
    """Does every quorum of `a` intersect every quorum of `b`?"""
    universe = sorted(
        set(a.voters) | set(a.voters_outgoing) | set(b.voters) | set(b.voters_outgoing)
    )
    if not (a.voters or a.voters_outgoing) or not (b.voters or b.voters_outgoing):
        return False  # a configuration without voters has no quorum worth the name
    if len(universe) > MAX_BRUTE_FORCE:
        raise ValueError(f"{len(universe)} voters are too many to enumerate quorums of")
    every = set(universe)
    for k in range(len(universe) + 1):
        for q in combinations(universe, k):
            if is_quorum(a, q) and is_quorum(b, every - set(q)):
                return False
    return True


def disjoint_quorums(a: ConfState, b: ConfState) -> tuple[list[int], list[int]] | None:
    """Evidence for `quorums_intersect(a, b) is False`: a quorum of each, disjoint."""
    universe = sorted(
        set(a.voters) | set(a.voters_outgoing) | set(b.voters) | set(b.voters_outgoing)
    )
    every = set(universe)
    for k in range(len(universe) + 1):
        for q in combinations(universe, k):
            rest = every - set(q)
            if is_quorum(a, q) and is_quorum(b, rest):
                return sorted(q), sorted(rest)
    return None


def blocked_up_to(cs: ConfState, held: Mapping[int, int]) -> int:
    """The highest index h such that the voters holding h (held[v] >= h) block `cs`."""
    best = 0
    for h in halves(cs):
        if not h:
            continue
        need = len(h) - len(h) // 2
        ranked = sorted((held.get(v, 0) for v in h), reverse=True)
        best = max(best, ranked[need - 1])
    return best


def describe(cs: ConfState) -> dict[str, list[int]]:
    """A configuration as evidence."""
    out = {"voters": sorted(cs.voters)}
    if cs.voters_outgoing:
        out["voters_outgoing"] = sorted(cs.voters_outgoing)
    if cs.learners:
        out["learners"] = sorted(cs.learners)
    if cs.learners_next:
        out["learners_next"] = sorted(cs.learners_next)
    return out
