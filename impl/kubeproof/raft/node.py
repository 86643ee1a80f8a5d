"""The public face of a Raft node: etcd's synchronous RawNode.

Theory of operation
-------------------
`RaftNode` wraps the state machine in `core.Raft` with the Ready/advance
protocol:

1. inputs: `tick()`, `step(m)` (a peer's message), `propose(data)`,
   `propose_conf_change(cc)`, `read_index(ctx)`, `transfer_leadership(id)`,
   `campaign()`;
2. `ready()` collects, without changing anything, what the caller must do:
   persist `snapshot`, `entries` and `hard_state` (fsync if `must_sync`),
   then send `messages`, then apply `committed_entries` and hand
   `read_states` to waiting readers.  Calling `ready()` twice before
   `advance()` returns the same content.
3. `advance(rd)` tells the node all of `rd` was done: the entries are now
   stable (the leader counts its own acknowledgement only now), the
   committed entries are applied, the messages are gone.

Persist-before-send is the caller's duty, and is stated in the type: the
messages of a Ready may depend on its hard state (a granted vote) or its
entries (a MsgAppResp), so they must leave only after those are durable.
"""

from __future__ import annotations

import contextlib
import random
from typing import ClassVar

from attrs import field, frozen

from .confchange import apply_conf_change_v2, encode_conf_change
from .config import RaftConfig
from .core import CAMPAIGN_ELECTION, CAMPAIGN_PRE_ELECTION, Raft
from .storage import MemoryStorage
from .types import (
    LOCAL_MESSAGES,
    NONE,
    ConfChangeV2,
    ConfState,
    Entry,
    HardState,
    Message,
    MessageType,
    ProposalDropped,
    RaftInvariantError,
    ReadState,
    Snapshot,
    SnapshotStatus,
    SoftState,
    StateType,
)

_LOCAL_MESSAGES = tuple(LOCAL_MESSAGES)
"""As a tuple for `step`: membership by identity in C, no Python-level Enum.__hash__."""


@frozen
class Ready:
    soft_state: SoftState | None = None
    hard_state: HardState | None = None
    entries: tuple[Entry, ...] = ()
    snapshot: Snapshot | None = None
    messages: tuple[Message, ...] = ()
    committed_entries: tuple[Entry, ...] = ()
    read_states: tuple[ReadState, ...] = ()
    must_sync: bool = False

    def contains_updates(self) -> bool:
        return bool(
            self.soft_state is not None
            or self.hard_state is not None
            or self.entries
            or self.snapshot is not None
            or self.messages
            or self.committed_entries
            or self.read_states
        )


@frozen
class Status:
    """A read-only snapshot of the node's volatile and durable state."""

    id: int
    term: int
    vote: int
    commit: int
    applied: int
    lead: int
    state: StateType
    last_index: int
    conf_state: ConfState = field(factory=ConfState)


class RaftNode:
    """A Raft node with etcd RawNode's API.  See the module docstring."""

    # The state machine class; tests/mutants substitute broken variants here.
    core_class: ClassVar[type[Raft]] = Raft

    def __init__(
        self, cfg: RaftConfig, storage: MemoryStorage, rng: random.Random | None = None
    ) -> None:
        self.raft = self.core_class(cfg, storage, rng if rng is not None else random.Random(cfg.id))
        self._prev_soft = SoftState(lead=self.raft.lead, raft_state=self.raft.state)
        self._prev_hard = self.raft.hard_state()

    # ---------------------------------------------------------- read-only

    @property
    def id(self) -> int:
        return self.raft.id

    @property
    def state(self) -> StateType:
        return self.raft.state

    @property
    def term(self) -> int:
        return self.raft.term

    @property
    def vote(self) -> int:
        return self.raft.vote

    @property
    def lead(self) -> int:
        return self.raft.lead

    @property
    def commit(self) -> int:
        return self.raft.log.committed

    @property
    def applied(self) -> int:
        return self.raft.log.applied

    @property
    def dropped(self) -> int:
        """Messages from peers that made no sense and were dropped."""
        return self.raft.dropped

    @property
    def storage(self) -> MemoryStorage:
        return self.raft.storage

    def first_index(self) -> int:
        return self.raft.log.first_index()

    def last_index(self) -> int:
        return self.raft.log.last_index()

    def term_at(self, i: int) -> int | None:
        return self.raft.log.term(i)

    def entries(self, lo: int, hi: int) -> list[Entry]:
        return self.raft.log.slice(lo, hi)

    def conf_state(self) -> ConfState:
        return self.raft.conf_state()

    def status(self) -> Status:
        r = self.raft
        return Status(
            id=r.id,
            term=r.term,
            vote=r.vote,
            commit=r.log.committed,
            applied=r.log.applied,
            lead=r.lead,
            state=r.state,
            last_index=r.log.last_index(),
            conf_state=r.conf_state(),
        )

    # ------------------------------------------------------------- inputs

    def tick(self) -> None:
        self.raft.tick()

    def campaign(self) -> None:
        """Same as stepping a local MsgHup."""
        self.raft.step(Message(type=MessageType.MsgHup, from_=self.raft.id))

    def step(self, m: Message) -> None:
        """Step a message from a peer.  Local-only message types and messages
        addressed to someone else are dropped and counted, never a crash."""
        if m.type in _LOCAL_MESSAGES or (m.type is MessageType.MsgProp and m.from_ == self.id):
            self.raft.dropped += 1
            return
        if m.to != self.raft.id or m.from_ == NONE:
            self.raft.dropped += 1
            return
        if m.from_ not in self.raft.prs and m.type in (
            MessageType.MsgAppResp,
            MessageType.MsgHeartbeatResp,
            MessageType.MsgVoteResp,
            MessageType.MsgPreVoteResp,
        ):
            # etcd ignores responses from peers it does not track.
            self.raft.dropped += 1
            return
        self.raft.step(m)

    def propose(self, data: bytes) -> None:
        """Propose a normal entry; raises ProposalDropped if it cannot be accepted."""
        self.raft.step(
            Message(type=MessageType.MsgProp, from_=self.raft.id, entries=(Entry(0, 0, data=data),))
        )

    def propose_conf_change(self, cc: ConfChangeV2) -> None:
        self.raft.step(
            Message(
                type=MessageType.MsgProp,
                from_=self.raft.id,
                entries=(encode_conf_change(cc),),
            )
        )

    def apply_conf_change(self, cc: ConfChangeV2) -> ConfState:
        """Apply a committed conf change; returns the configuration now in force."""
        cs = apply_conf_change_v2(self.raft.conf_state(), cc)
        self.raft.apply_conf_state(cs)
        if self.raft.state is StateType.Leader:
            if not self.raft.promotable():
                # The leader removed or demoted itself: step down once the change
                # applies (etcd treats both alike).  A learner left leading would
                # answer ReadIndex alone when one other voter remains.
                self.raft.become_follower(self.raft.term, NONE)
            else:
                self.raft.maybe_commit()
                self.raft.bcast_append()
        return cs

    def read_index(self, ctx: bytes) -> None:
        self.raft.step(Message(type=MessageType.MsgReadIndex, entries=(Entry(0, 0, data=ctx),)))

    def transfer_leadership(self, transferee: int) -> None:
        self.raft.step(Message(type=MessageType.MsgTransferLeader, from_=transferee))

    def report_unreachable(self, peer: int) -> None:
        self.raft.step(Message(type=MessageType.MsgUnreachable, from_=peer))

    def report_snapshot(self, peer: int, status: SnapshotStatus) -> None:
        self.raft.report_snapshot(peer, status)

    # --------------------------------------------------------------- ready

    def has_ready(self) -> bool:
        # Field by field rather than building a SoftState and a HardState to compare:
        # the harness asks this after every event, and most of the time the answer is
        # "no".  Same test as `ready().contains_updates()`.
        r = self.raft
        ps = self._prev_soft
        if r.lead != ps.lead or r.state is not ps.raft_state:
            return True
        ph = self._prev_hard
        log = r.log
        if r.term != ph.term or r.vote != ph.vote or log.committed != ph.commit:
            return True
        u = log.unstable
        if u.snapshot is not None or u.entries or r.msgs or r.read_states:
            return True
        return log.has_next_committed_entries()

    def ready(self) -> Ready:
        r = self.raft
        # Compared field by field, and the Soft/HardState built only when it changed
        # (as in has_ready): the same Ready as comparing freshly built values.
        ps = self._prev_soft
        soft = (
            None
            if r.lead == ps.lead and r.state is ps.raft_state
            else SoftState(lead=r.lead, raft_state=r.state)
        )
        ph = self._prev_hard
        term_vote_changed = r.term != ph.term or r.vote != ph.vote
        hs = r.hard_state() if term_vote_changed or r.log.committed != ph.commit else None
        entries = tuple(r.log.unstable.entries)
        must_sync = bool(entries) or term_vote_changed
        return Ready(
            soft_state=soft,
            hard_state=hs,
            entries=entries,
            snapshot=r.log.unstable.snapshot,
            messages=tuple(r.msgs),
            committed_entries=tuple(r.log.next_committed_entries()),
            read_states=tuple(r.read_states),
            must_sync=must_sync,
        )

    def advance(self, rd: Ready) -> None:
        r = self.raft
        if rd.soft_state is not None:
            self._prev_soft = rd.soft_state
        if rd.hard_state is not None:
            self._prev_hard = rd.hard_state
        # Messages and read states produced after ready() stay queued.
        if rd.messages:
            if r.msgs[: len(rd.messages)] != list(rd.messages):
                raise RaftInvariantError("READY-ADVANCE", "advance with a Ready not from ready()")
            del r.msgs[: len(rd.messages)]
        if rd.read_states:
            del r.read_states[: len(rd.read_states)]
        if rd.snapshot is not None:
            r.log.stable_snap_to(rd.snapshot.metadata.index)
            r.log.applied = max(r.log.applied, rd.snapshot.metadata.index)
        if rd.entries:
            last = rd.entries[-1]
            r.log.stable_to(last.index, last.term)
            r.on_persisted(last.index, last.term)
        if rd.committed_entries:
            last_applied = rd.committed_entries[-1].index
            r.log.applied_to(last_applied)
            applied_size = sum(len(e.data) for e in rd.committed_entries)
            r.uncommitted_size = max(0, r.uncommitted_size - applied_size)
            if (
                r.state is StateType.Leader
                and r.auto_leave
                and r.pending_conf_index <= last_applied
            ):
                self._auto_leave_joint()

    def _auto_leave_joint(self) -> None:
        """etcd: once a joint config with auto_leave is applied, the leader proposes leaving it."""
        r = self.raft
        if not r.conf.is_joint():
            return
        with contextlib.suppress(ProposalDropped):
            self.propose_conf_change(ConfChangeV2())


__all__ = ["CAMPAIGN_ELECTION", "CAMPAIGN_PRE_ELECTION", "RaftNode", "Ready", "Status"]
