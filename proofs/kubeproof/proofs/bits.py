"""Sets of members as Z3 bit-vectors: population count and etcd's majority.

Theory of operation
-------------------
A set of members of a universe of ``width`` members is a bit-vector of that
width: bit ``i`` is set when member ``i`` belongs to the set.  Intersection is
``&``, union ``|``, subset-of is ``x & ~y == 0`` and emptiness is ``== 0``.

Cardinality is the population count, summed as a balanced tree of adders in a
wider bit-vector (``count_width``): Z3 bit-blasts a tree of log depth much
faster than a chain, and the width leaves room for ``2 * count`` without
overflow, so the unsigned comparisons below are exact integer comparisons.

etcd's majority rule is literal here: a set ``s`` is a quorum of configuration
``c`` when ``|s ∩ c| >= |c| / 2 + 1`` with integer division (quorum/majority.go:
``q := len(c)/2 + 1``).  The division by two is a logical shift right.
"""

from __future__ import annotations

from typing import Any

import z3


def count_width(width: int) -> int:
    """Bits needed to hold a count up to `width`, twice, without overflow."""
    return width.bit_length() + 2


def popcount(x: Any, width: int) -> Any:
    """The number of set bits of the bit-vector `x` of `width` bits."""
    w = count_width(width)
    terms: list[Any] = [z3.ZeroExt(w - 1, z3.Extract(i, i, x)) for i in range(width)]
    while len(terms) > 1:
        paired = [terms[i] + terms[i + 1] for i in range(0, len(terms) - 1, 2)]
        if len(terms) % 2:
            paired.append(terms[-1])
        terms = paired
    return terms[0]


def is_majority(s: Any, c: Any, width: int) -> Any:
    """`s` holds a majority of configuration `c`, by etcd's formula."""
    needed = z3.LShR(popcount(c, width), 1) + 1
    return z3.UGE(popcount(s & c, width), needed)


def is_subset(s: Any, c: Any) -> Any:
    return (s & ~c) == 0


def bits_of(value: int, width: int) -> frozenset[int]:
    """The members (0-based bit positions) of a concrete bit-vector value."""
    return frozenset(i for i in range(width) if value >> i & 1)
