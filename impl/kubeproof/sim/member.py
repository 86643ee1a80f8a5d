"""A cluster member: a Raft node's lives over one disk.

Theory of operation
-------------------
A member is what survives a crash (its `MemoryStorage`, the disk) plus what
does not (the live `RaftNode`, with its unstable log, its messages and any
`Ready` not yet processed).  States:

    alive (node is not None) --crash--> down (node is None) --restart--> alive
    alive or down --stop--> stopped (for good: removed from the configuration)

A crash just forgets the node object: whatever it had not yet written to the
storage is gone, exactly the "unsynced writes lost" of a power failure.  A
restart is a fresh node built by the node factory over the same storage,
with a new RNG stream for its new incarnation.  The application state
(`app.AppState`) is volatile too: a (re)start restores it from the snapshot
on disk (or starts it empty) and passes that snapshot's index as
`RaftConfig.applied`, so the node delivers the committed log after it again
and the application is rebuilt by re-applying it.

Every member, including one that joins later, bootstraps with the initial
configuration (`initial_conf`): it is the configuration as of index 0, and the
membership changes in the log (or the configuration in a snapshot) take it
from there.  When the application applies a membership change it also makes
the node apply it and records the new configuration on disk
(`storage.set_conf_state`); `conf_index` is the index of the change the disk
records, so that re-applying the log after a restart does not hand the node
a change its disk configuration already includes.

Reads: `reads` holds the read states the node returned whose index the
application has not reached yet (ctx -> index); they are served, in the
harness's `process_ready`, once it has.  They are lost in a crash.

`applied` records every entry the member's state machine applied, by index,
over all lives (the last application wins; the harness also reports each
application in its event, so a checker can compare a re-application with
the first one).

`MemberSlot` is the part of a member that both simulated clusters have (the
store's `kvcluster.KVSlot` holds an etcd member where this class holds a
bare node): the id, the disk, the applications, the incarnation, whether
it stopped for good, and the role and term last seen, from which
`note_role` reports role changes and counts elections; and `crash`, which
forgets whatever lives above the disk (each kind of slot says what that is:
`_forget`).  With `alive` and `node` it is the harness's
`observe.NodeView`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from attrs import evolve

from kubeproof.raft import (
    ConfState,
    Entry,
    MemoryStorage,
    RaftConfig,
    RaftNode,
    ReadOnlyOption,
    StateType,
)

from .app import AppState
from .config import SimConfig
from .events import NetCounters, SimError, member_of
from .seeds import node_rng

NodeFactory = Callable[[RaftConfig, MemoryStorage, random.Random], RaftNode]
"""Builds a node: `factory(cfg, storage, rng)`.  `RaftNode` itself is one; so is a mutant class."""


_LEADER = StateType.Leader


class MemberError(RuntimeError):
    """An action that makes no sense for the member's state (crash a down member ...)."""


class MemberSlot:
    """One member's lives over one disk, whatever runs on it; see the module docstring."""

    __slots__ = ("_applied", "_id", "_storage", "incarnation", "role", "stopped", "term")

    def __init__(self, member_id: int) -> None:
        self._id = member_id
        self._storage = MemoryStorage()
        self._applied: dict[int, Entry] = {}
        self.incarnation = 0
        self.stopped = False
        """Stopped for good (removed from the configuration), not merely crashed."""
        # Last role and term seen, to notice transitions (elections) cheaply.
        self.role: StateType | None = None
        self.term = 0

    @property
    def id(self) -> int:
        return self._id

    @property
    def storage(self) -> MemoryStorage:
        return self._storage

    @property
    def applied(self) -> Mapping[int, Entry]:
        return self._applied

    @property
    def alive(self) -> bool:
        raise NotImplementedError

    def has_ready(self) -> bool:
        """The live node has state not yet processed (a Ready)."""
        raise NotImplementedError

    def _forget(self) -> None:
        """Drop what lives above the disk."""
        raise NotImplementedError

    def crash(self) -> bool:
        """Forget the live part (what it had not written to the disk is gone, as in a
        power failure); returns whether it still had unprocessed state."""
        if not self.alive:
            raise MemberError(f"member {self._id} is already down")
        lost = self.has_ready()
        self._forget()
        return lost

    def note_role(self, node: RaftNode, payload: dict[str, Any], counters: NetCounters) -> None:
        """After an input: a changed role or term goes into the event's payload as
        ``became``, and a new leader is counted."""
        state = node.state
        term = node.term
        if state is self.role and term == self.term:
            return
        payload["became"] = {"role": state.value, "term": term}
        if state is _LEADER and self.role is not _LEADER:
            counters.elections += 1
            counters.leaders.add(self._id)
        self.role = state
        self.term = term


class Member(MemberSlot):
    __slots__ = (
        "app",
        "conf_index",
        "config",
        "initial_conf",
        "node",
        "reads",
    )

    def __init__(
        self, member_id: int, config: RaftConfig, initial_conf: ConfState | None = None
    ) -> None:
        super().__init__(member_id)
        self.config = config
        self.initial_conf = (
            initial_conf if initial_conf is not None else ConfState(voters=config.voters)
        )
        self.node: RaftNode | None = None
        self.app: AppState | None = None
        self.conf_index = 0
        """Durable: the index of the membership change the disk's ConfState includes."""
        self.reads: dict[bytes, int] = {}

    @property
    def alive(self) -> bool:
        return self.node is not None

    def has_ready(self) -> bool:
        node = self.node
        return node is not None and node.has_ready()

    # ----------------------------------------------------------- lifecycle

    def start(self, factory: NodeFactory, seed: int) -> RaftNode:
        """Build the node for the current incarnation over this member's disk."""
        if self.stopped:
            raise MemberError(f"member {self._id} was stopped for good")
        snap = self._storage.snapshot()
        app = AppState.initial(self.initial_conf) if snap.is_empty() else AppState.restore(snap)
        cfg = self.config if app.index == 0 else evolve(self.config, applied=app.index)
        node = factory(cfg, self._storage, node_rng(seed, self._id, self.incarnation))
        self.app = app
        self.reads = {}
        self.node = node
        self.role = None
        self.term = 0
        return node

    def _forget(self) -> None:
        self.node = None
        self.role = None
        self.app = None
        self.reads = {}

    def stop(self) -> bool:
        """Stop for good (removed from the configuration); returns whether it was alive."""
        if self.stopped:
            raise MemberError(f"member {self._id} is already stopped")
        was_alive = self.node is not None
        self._forget()
        self.stopped = True
        return was_alive

    def restart(self, factory: NodeFactory, seed: int) -> RaftNode:
        if self.node is not None:
            raise MemberError(f"member {self._id} is alive; crash it before restarting")
        if self.stopped:
            raise MemberError(f"member {self._id} was stopped for good")
        self.incarnation += 1
        return self.start(factory, seed)

    def record_applied(self, entry: Entry) -> None:
        self._applied[entry.index] = entry


S = TypeVar("S", bound=MemberSlot)
T = TypeVar("T")


def lifecycle(members: Mapping[int, S], node_id: int, change: Callable[[S], T]) -> T:
    """`change` member n (crash it, stop it); what makes no sense for the member's state
    is a `SimError`, as for any action."""
    m = member_of(members, node_id)
    try:
        return change(m)
    except MemberError as e:
        raise SimError(str(e)) from None


def raft_config(sim: SimConfig, member_id: int) -> RaftConfig:
    return RaftConfig(
        id=member_id,
        voters=sim.voters,
        election_tick=sim.election_tick,
        heartbeat_tick=sim.heartbeat_tick,
        pre_vote=sim.pre_vote,
        check_quorum=sim.check_quorum,
        max_size_per_msg=sim.max_size_per_msg,
        max_inflight_msgs=sim.max_inflight_msgs,
        max_uncommitted_entries_size=sim.max_uncommitted_entries_size,
        read_only_option=(
            ReadOnlyOption.ReadOnlyLeaseBased
            if sim.read_only_lease
            else ReadOnlyOption.ReadOnlySafe
        ),
        applied=0,
    )
