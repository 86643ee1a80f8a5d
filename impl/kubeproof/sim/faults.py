"""The fault model: which member crashes, which links are cut, and for how long.

Theory of operation
-------------------
The random scheduler calls `FaultPolicy.strike` every `fault_interval`
(uniform in [1, 2*fault_interval]) while faults are allowed.  It picks one
of the enabled structural faults, drawing only from the scheduler's RNG:

| fault       | when possible                               | effect, then recovery                       |
| ----------- | ------------------------------------------- | ------------------------------------------- |
| `crash`     | fewer than `down_limit` members down        | a live member crashes (a leader, half the   |
|             |                                             | time there is one; else any); it restarts   |
|             |                                             | after uniform [down_min, down_max]          |
| `partition` | no partition in force                       | one of three shapes (below); healed after   |
|             |                                             | uniform [down_min, down_max]                |

Partition shapes, chosen uniformly: *isolate* one member (both directions);
*isolate-leader*, the same for a current leader (an isolated leader keeps
accepting proposals it can never commit: the raw material of Raft's Figure 8);
*split* the members at random into two non-empty groups; *asymmetric*:
cut each directed link independently with probability 1/3 (at least one),
so that u may hear v while v does not hear u.

What a crash loses is the member's business (`member.Member.crash`: the
live node and any Ready not yet processed); message loss, duplication and
reordering are per-message decisions made where messages are routed
(`harness.Simulation`).  After `faults_until` the policy is silent and the
scheduler heals everything (the quiet period the liveness tests rely on).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from attrs import frozen

from .config import Fault, SimConfig


@frozen
class Crash:
    node: int
    down_for: int


@frozen
class Partition:
    cut: tuple[tuple[int, int], ...]
    shape: str
    lasts: int


Strike = Crash | Partition | None


class FaultPolicy:
    __slots__ = ("_cfg", "_kinds")

    def __init__(self, cfg: SimConfig) -> None:
        self._cfg = cfg
        # Sorted so the RNG's choice does not depend on set iteration order.
        self._kinds = tuple(k for k in (Fault.crash, Fault.partition) if k in cfg.faults)

    @property
    def active(self) -> bool:
        return bool(self._kinds)

    def next_interval(self, rng: random.Random) -> int:
        return rng.randint(1, 2 * self._cfg.fault_interval)

    def strike(
        self,
        rng: random.Random,
        members: Sequence[int],
        alive: Sequence[int],
        partitioned: bool,
        leaders: Sequence[int] = (),
    ) -> Strike:
        if not self._kinds:
            return None
        kind = rng.choice(self._kinds)
        cfg = self._cfg
        if kind is Fault.crash:
            if len(members) - len(alive) >= cfg.down_limit or not alive:
                return None
            # Half the time the leader: Jepsen's "kill the primary".
            pool = leaders if leaders and rng.random() < 0.5 else alive
            return Crash(rng.choice(pool), rng.randint(cfg.down_min, cfg.down_max))
        if partitioned or len(members) < 2:
            return None
        shape = rng.choice(("isolate", "isolate-leader", "split", "asymmetric"))
        if shape == "isolate-leader" and not leaders:
            shape = "isolate"
        if shape in ("isolate", "isolate-leader"):
            victim = rng.choice(leaders if shape == "isolate-leader" else members)
            cut = [(victim, v) for v in members if v != victim]
            cut += [(v, victim) for v in members if v != victim]
        elif shape == "split":
            order = list(members)
            rng.shuffle(order)
            k = rng.randint(1, len(order) - 1)
            left = set(order[:k])
            cut = [(u, v) for u in members for v in members if (u in left) != (v in left)]
        else:
            links = [(u, v) for u in members for v in members if u != v]
            cut = [link for link in links if rng.random() < 1 / 3]
            if not cut:
                cut = [rng.choice(links)]
        return Partition(tuple(sorted(cut)), shape, rng.randint(cfg.down_min, cfg.down_max))
