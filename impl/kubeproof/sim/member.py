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
the first one).  This class is the harness's implementation of
`observe.NodeView`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping

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
from .seeds import node_rng

NodeFactory = Callable[[RaftConfig, MemoryStorage, random.Random], RaftNode]
"""Builds a node: `factory(cfg, storage, rng)`.  `RaftNode` itself is one; so is a mutant class."""


class MemberError(RuntimeError):
    """An action that makes no sense for the member's state (crash a down member ...)."""


class Member:
    __slots__ = (
        "_applied",
        "_id",
        "_storage",
        "app",
        "conf_index",
        "config",
        "incarnation",
        "initial_conf",
        "node",
        "reads",
        "role",
        "stopped",
        "term",
    )

    def __init__(
        self, member_id: int, config: RaftConfig, initial_conf: ConfState | None = None
    ) -> None:
        self._id = member_id
        self.config = config
        self.initial_conf = (
            initial_conf if initial_conf is not None else ConfState(voters=config.voters)
        )
        self._storage = MemoryStorage()
        self._applied: dict[int, Entry] = {}
        self.node: RaftNode | None = None
        self.incarnation = 0
        self.app: AppState | None = None
        self.conf_index = 0
        """Durable: the index of the membership change the disk's ConfState includes."""
        self.stopped = False
        self.reads: dict[bytes, int] = {}
        # Last role and term seen, to notice transitions (elections) cheaply.
        self.role: StateType | None = None
        self.term = 0

    # ------------------------------------------------------------ NodeView

    @property
    def id(self) -> int:
        return self._id

    @property
    def alive(self) -> bool:
        return self.node is not None

    @property
    def storage(self) -> MemoryStorage:
        return self._storage

    @property
    def applied(self) -> Mapping[int, Entry]:
        return self._applied

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

    def crash(self) -> bool:
        """Forget the live node; returns whether it still had unprocessed state."""
        node = self.node
        if node is None:
            raise MemberError(f"member {self._id} is already down")
        lost = node.has_ready()
        self.node = None
        self.role = None
        self.app = None
        self.reads = {}
        return lost

    def stop(self) -> bool:
        """Stop for good (removed from the configuration); returns whether it was alive."""
        if self.stopped:
            raise MemberError(f"member {self._id} is already stopped")
        was_alive = self.node is not None
        self.node = None
        self.role = None
        self.app = None
        self.reads = {}
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
