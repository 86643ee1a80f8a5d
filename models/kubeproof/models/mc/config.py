"""What the model checker explores: the cluster, the bounds, the reductions.

Theory of operation
-------------------
`McConfig` is a frozen value.  The *bounds* make the state space finite;
a successor outside them is checked (its transition ran every checker) but
neither counted as a state nor expanded.  The *budgets* limit how often an
action may be taken along one path (the count is part of the state).

| field            | default | meaning                                                     |
| ---------------- | ------- | ----------------------------------------------------------- |
| `nodes`          | 3       | cluster size (members 1..nodes, all voters)                 |
| `max_term`       | 2       | no node campaigns for a term above this                     |
| `max_index`      | 2       | states where a log (live or on disk) passes it are pruned   |
| `max_inflight`   | 3       | states with more messages in flight are pruned              |
| `max_crashes`    | 1       | crash budget (a crashed member may restart at any time)     |
| `max_proposals`  | 1       | client proposal budget                                      |
| `max_drops`      | 0       | message-loss budget (None: unlimited); a message may also   |
|                  |         | just never be delivered                                     |
| `max_duplicates` | 0       | message-duplication budget                                  |
| `max_heartbeats` | 0       | leader heartbeat budget (None: unlimited, not hashed)       |
| `max_depth`      | None    | do not expand states deeper than this (BFS levels)          |
| `max_states`     | None    | stop (incomplete) after this many states                    |
| `ready`          | eager   | eager: a node's Ready is processed right after the action   |
|                  |         | that made it (until it has none); interleaved: processing   |
|                  |         | a Ready is an action of its own (crashes may lose it)       |
| `propose_at`     | leader  | which live members a proposal may go to (leader, or any:    |
|                  |         | followers forward or drop it)                               |
| `symmetry`       | True    | identify states that differ only in node ids                |
| `restart_at_once` | True   | a crashed member restarts in the same action (crash-restart |
|                  |         | over its disk); False: crash and restart are two actions,   |
|                  |         | and messages reaching a member while it is down are lost    |
| `pre_vote`       | False   | the nodes run PreVote                                       |
| `max_size_per_msg` | 0     | the nodes' RaftConfig value; 0 sends one entry per MsgApp,  |
|                  |         | which lets a follower acknowledge an old entry alone (the   |
|                  |         | Figure 8 interleavings need that)                           |
| `seed`           | 0       | the nodes' RNG seed (recorded in the counterexample trace)  |

The nodes run with `election_tick=2`, `heartbeat_tick=1` and CheckQuorum
off: the time abstraction in `actions` is exact only without CheckQuorum
(its lease reads the tick counters the abstraction forgets).  PreVote
(`pre_vote`, off by default) reads none of them, so it may be on.
"""

from __future__ import annotations

from typing import Literal

import attrs
from attrs import frozen

from kubeproof.sim.config import Fault, SimConfig

ReadyMode = Literal["eager", "interleaved"]
ProposeAt = Literal["leader", "any"]

ELECTION_TICK = 2
HEARTBEAT_TICK = 1


class McConfigError(ValueError):
    """A model-checker setting that makes no sense; the message names it."""


@frozen
class McConfig:
    """One model-checking run (see the module docstring for each field)."""

    nodes: int = 3
    max_term: int = 2
    max_index: int = 2
    max_inflight: int = 3
    max_crashes: int = 1
    max_proposals: int = 1
    max_drops: int | None = 0
    max_duplicates: int = 0
    max_heartbeats: int | None = 0
    max_depth: int | None = None
    max_states: int | None = None
    ready: ReadyMode = "eager"
    propose_at: ProposeAt = "leader"
    symmetry: bool = True
    restart_at_once: bool = True
    pre_vote: bool = False
    max_size_per_msg: int = 0
    seed: int = 0

    def __attrs_post_init__(self) -> None:
        at_least = {
            "nodes": 1,
            "max_term": 1,
            "max_index": 1,
            "max_inflight": 1,
            "max_crashes": 0,
            "max_proposals": 0,
            "max_duplicates": 0,
            "max_size_per_msg": 0,
            "seed": 0,
        }
        for name, low in at_least.items():
            value = getattr(self, name)
            if type(value) is not int or value < low:
                raise McConfigError(f"{name} must be an integer >= {low}, got {value!r}")
        optional = {"max_drops": 0, "max_heartbeats": 0, "max_depth": 0, "max_states": 1}
        for name, low in optional.items():
            value = getattr(self, name)
            if value is not None and (type(value) is not int or value < low):
                raise McConfigError(
                    f"{name} must be an integer >= {low}, or None for no limit; got {value!r}"
                )
        if self.nodes > 7:
            raise McConfigError(
                f"nodes must be at most 7 for an exhaustive exploration, got {self.nodes}"
            )
        if self.ready not in ("eager", "interleaved"):
            raise McConfigError(f"ready must be 'eager' or 'interleaved', got {self.ready!r}")
        if self.propose_at not in ("leader", "any"):
            raise McConfigError(f"propose_at must be 'leader' or 'any', got {self.propose_at!r}")
        for name in ("symmetry", "restart_at_once", "pre_vote"):
            if not isinstance(getattr(self, name), bool):
                raise McConfigError(f"{name} must be a boolean, got {getattr(self, name)!r}")

    def sim_config(self) -> SimConfig:
        """The harness configuration the explored cluster (and its trace) uses."""
        faults: set[Fault] = set()
        if self.max_crashes:
            faults.add(Fault.crash)
        if self.max_drops is None or self.max_drops > 0:
            faults.add(Fault.loss)
        if self.max_duplicates:
            faults.add(Fault.dup)
        return SimConfig(
            nodes=self.nodes,
            faults=frozenset(faults),
            election_tick=ELECTION_TICK,
            heartbeat_tick=HEARTBEAT_TICK,
            pre_vote=self.pre_vote,
            check_quorum=False,
            max_size_per_msg=self.max_size_per_msg,
        )

    def counted(self) -> tuple[str, ...]:
        """The `Ghost` counters whose budget is finite: they are part of the state."""
        out = ["crashes"]
        if self.max_drops is not None:
            out.append("drops")
        if self.max_duplicates:
            out.append("duplicates")
        if self.max_heartbeats is not None:
            out.append("heartbeats")
        return tuple(out)

    def bounds_json(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in attrs.fields(McConfig)}
