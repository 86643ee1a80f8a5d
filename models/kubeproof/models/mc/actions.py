"""The model checker's transitions: macro-actions over the harness's `Cluster` API.

Theory of operation
-------------------
Every transition is one `Action` applied through the very `Cluster`
methods the random scheduler and replay use, so a path of actions *is* a
sequence of harness events, and the trace of a counterexample is written
by re-executing its actions on a fresh cluster (`explorer`).

Time is abstracted.  Ticks are not actions of their own: a tick that does
not make a node campaign or heartbeat changes only counters nothing else
reads (CheckQuorum is off: its lease is the only reader of the election
counter besides the timeout itself), and would only multiply states.
Instead a node may time out, and a leader heartbeat, at *any* moment, as
in an asynchronous system where ticks can fall anywhere:

| action             | enabled when                         | harness events                     |
| ------------------ | ------------------------------------ | ---------------------------------- |
| `timeout n`        | n is live, not leader, promotable,   | `tick n` until n campaigns or      |
|                    | its term < max_term                  | pre-campaigns (2 or 3 ticks with   |
|                    |                                      | election_tick 2)                   |
| `heartbeat n`      | n is leader, heartbeat budget left   | one `tick n` (heartbeat_tick 1)    |
| `deliver m`        | m in flight (one per distinct        | `deliver m`                        |
|                    | message: copies are interchangeable) |                                    |
| `drop m`           | m in flight, drop budget left        | `drop m`                           |
| `duplicate m`      | m in flight, duplicate budget left   | `duplicate m`                      |
| `propose n`        | n live (leader, unless propose_at is | `propose n` (payload p1, p2, ...)  |
|                    | any), proposal budget left           |                                    |
| `crash n`          | n live, crash budget left            | `crash n`, then (restart_at_once,  |
|                    |                                      | the default) `restart n`           |
| `restart n`        | n crashed (restart_at_once off)      | `restart n`                        |
| `ready n`          | interleaved mode, n has a Ready      | `process_ready n`                  |

In eager mode (the default) every action that stepped a node is followed
by `process_ready` of that node until it has no Ready left (a leader's
own acknowledgement at `advance` can commit and make another).  A crash
therefore never finds unpersisted state: losing it would be the same as
the message or tick that made it never happening, which the other actions
already cover, for a node that sends only what it persisted first.  (A
node that sends before persisting is caught in the act: RAFT-VOTE-ONCE
checks every Ready's messages against the disk.)  Interleaved mode makes
processing a Ready an action of its own, so a crash can fall between a
step and its Ready; its state space is several times larger.
"""

from __future__ import annotations

from typing import Any, Literal

from attrs import frozen

from kubeproof.raft import StateType
from kubeproof.sim.cluster import Cluster

from .config import ELECTION_TICK, HEARTBEAT_TICK, McConfig
from .ghost import Ghost

Kind = Literal[
    "timeout", "heartbeat", "deliver", "drop", "duplicate", "propose", "crash", "restart", "ready"
]
MESSAGE_KINDS = frozenset({"deliver", "drop", "duplicate"})
_LEADER = StateType.Leader
MAX_READIES = 8
"""Readys processed after one action at most (a node keeps making them only if it is broken)."""


@frozen
class Action:
    """One transition.  `node` is the member acted on (a message's target for message
    actions); `msg` the harness's id of the message, valid along the path that made it."""

    kind: Kind
    node: int
    msg: int = 0

    def describe(self) -> str:
        if self.kind in MESSAGE_KINDS:
            return f"{self.kind} message {self.msg} (to {self.node})"
        return f"{self.kind} {self.node}"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "node": self.node}
        if self.kind in MESSAGE_KINDS:
            out["msg"] = self.msg
        return out

    def touches(self) -> tuple[int, ...]:
        """The members whose node or disk the action may change."""
        if self.kind == "drop" or self.kind == "duplicate":
            return ()
        return (self.node,)


def enabled(c: Cluster, ghost: Ghost, cfg: McConfig) -> list[Action]:
    """The actions enabled in a state, in a fixed order (members, then messages by id)."""
    out: list[Action] = []
    interleaved = cfg.ready == "interleaved"
    can_propose = c.counters.proposals < cfg.max_proposals
    can_crash = ghost.crashes < cfg.max_crashes
    can_beat = cfg.max_heartbeats is None or ghost.heartbeats < cfg.max_heartbeats
    for i in sorted(c.members):
        m = c.members[i]
        node = m.node
        if node is None:
            if not m.stopped:
                out.append(Action("restart", i))
            continue
        if interleaved and node.has_ready():
            out.append(Action("ready", i))
        leader = node.state is _LEADER
        if leader:
            if can_beat:
                out.append(Action("heartbeat", i))
        elif node.term < cfg.max_term and node.raft.promotable():
            out.append(Action("timeout", i))
        if can_propose and (leader or cfg.propose_at == "any"):
            out.append(Action("propose", i))
        if can_crash:
            out.append(Action("crash", i))
    can_drop = cfg.max_drops is None or ghost.drops < cfg.max_drops
    can_dup = ghost.duplicates < cfg.max_duplicates
    seen: set[object] = set()
    for mid, msg in c.network.in_flight.items():
        if msg in seen:
            continue
        seen.add(msg)
        out.append(Action("deliver", msg.to, mid))
        if can_drop:
            out.append(Action("drop", msg.to, mid))
        if can_dup:
            out.append(Action("duplicate", msg.to, mid))
    return out


def apply(c: Cluster, a: Action, cfg: McConfig, ghost: Ghost | None = None) -> None:
    """Run one action on the cluster (stops early if a checker reports a violation).

    `ghost` is charged for budgeted actions; the counterexample's re-execution
    passes none.
    """
    kind = a.kind
    n = a.node
    if kind == "deliver":
        c.deliver(a.msg)
        _settle(c, n, cfg)
    elif kind == "timeout":
        node = c.members[n].node
        assert node is not None
        term, state, queued = node.term, node.state, len(node.raft.msgs)
        # Until it campaigns: a new role or term, or (a pre-candidate campaigning
        # again) new vote requests queued.  The randomized timeout is < 2 * tick.
        for _ in range(2 * ELECTION_TICK):
            c.tick(n)
            if (
                c.violation is not None
                or node.term != term
                or node.state is not state
                or len(node.raft.msgs) > queued
            ):
                break
        _settle(c, n, cfg)
    elif kind == "heartbeat":
        for _ in range(HEARTBEAT_TICK):
            if c.violation is not None:
                break
            c.tick(n)
        if ghost is not None:
            ghost.heartbeats += 1
        _settle(c, n, cfg)
    elif kind == "propose":
        c.propose(n)
        _settle(c, n, cfg)
    elif kind == "drop":
        c.drop(a.msg)
        if ghost is not None:
            ghost.drops += 1
    elif kind == "duplicate":
        c.duplicate(a.msg)
        if ghost is not None:
            ghost.duplicates += 1
    elif kind == "crash":
        c.crash(n)
        if ghost is not None:
            ghost.crashes += 1
        if cfg.restart_at_once and c.violation is None:
            c.restart(n)
            _settle(c, n, cfg)
    elif kind == "restart":
        c.restart(n)
        _settle(c, n, cfg)
    elif kind == "ready":
        c.process_ready(n)
    else:  # pragma: no cover - Kind is closed
        raise ValueError(f"unknown action kind {kind!r}")


def _settle(c: Cluster, n: int, cfg: McConfig) -> None:
    if cfg.ready != "eager":
        return
    m = c.members.get(n)
    for _ in range(MAX_READIES):
        if c.violation is not None or m is None or m.node is None or not m.node.has_ready():
            return
        c.process_ready(n)


def out_of_bounds(c: Cluster, cfg: McConfig) -> str | None:
    """Which bound a state breaks, if any (its successors are not explored)."""
    if len(c.network.in_flight) > cfg.max_inflight:
        return "max_inflight"
    for m in c.members.values():
        if m.storage.last_index() > cfg.max_index:
            return "max_index"
        node = m.node
        if node is not None:
            if node.last_index() > cfg.max_index:
                return "max_index"
            if node.term > cfg.max_term:
                return "max_term"
    return None
