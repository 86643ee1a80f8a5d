"""Deriving independent, reproducible random streams from one seed.

Theory of operation
-------------------
A run has one seed.  The scheduler draws every decision from
`random.Random(derive_seed(seed, "scheduler"))`; each member's Raft node
gets its own stream, `derive_seed(seed, "node", id, incarnation)`, so that
its election timeouts do not depend on how many draws the scheduler made,
and a replay by recorded schedule (which has no scheduler) gives every node
exactly the timeouts it had.  The derivation is SHA-256 over the parts'
text, never Python's `hash()` (salted per process).
"""

from __future__ import annotations

import hashlib
import random


def derive_seed(seed: int, *parts: object) -> int:
    text = ":".join([str(seed), *(str(p) for p in parts)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def scheduler_rng(seed: int) -> random.Random:
    return random.Random(derive_seed(seed, "scheduler"))


def node_rng(seed: int, node_id: int, incarnation: int) -> random.Random:
    return random.Random(derive_seed(seed, "node", node_id, incarnation))


def uniform_int(rng: random.Random, lo: int, hi: int) -> int:
    """An integer uniform in [lo, hi], with one `random()` draw.

    `Random.randint` costs several Python calls; this is the scheduler's hot path.
    The float product is exact IEEE arithmetic, so it is as reproducible as randint."""
    return lo + int(rng.random() * (hi - lo + 1))
