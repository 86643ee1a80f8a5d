"""A cluster member: a Raft node's lives over one disk.

Theory of operation
-------------------
A member is what survives a crash (its `MemoryStorage`, the disk) plus what
does not (the live `RaftNode`, with its unstable log, its messages and any
`Ready` not yet processed).  States:

    alive (node is not None) --crash--> down (node is None) --restart--> alive

A crash just forgets the node object: whatever it had not yet written to the
storage is gone, exactly the "unsynced writes lost" of a power failure.  A
restart is a fresh node built by the node factory over the same storage,
with `applied=0` (the application's state is rebuilt by re-applying the
committed log) and a new RNG stream for its new incarnation.

`applied` records every entry the member's state machine applied, by index,
over all lives (the last application wins; the harness also reports each
application in its event, so a checker can compare a re-application with
the first one).  This class is the harness's implementation of
`observe.NodeView`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping

from kubeproof.raft import Entry, MemoryStorage, RaftConfig, RaftNode, StateType

from .config import SimConfig
from .seeds import node_rng

NodeFactory = Callable[[RaftConfig, MemoryStorage, random.Random], RaftNode]
"""Builds a node: `factory(cfg, storage, rng)`.  `RaftNode` itself is one; so is a mutant class."""


class MemberError(RuntimeError):
    """An action that makes no sense for the member's state (crash a down member ...)."""


class Member:
    __slots__ = ("_applied", "_id", "_storage", "config", "incarnation", "node", "role", "term")

    def __init__(self, member_id: int, config: RaftConfig) -> None:
        self._id = member_id
        self.config = config
        self._storage = MemoryStorage()
        self._applied: dict[int, Entry] = {}
        self.node: RaftNode | None = None
        self.incarnation = 0
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
        node = factory(self.config, self._storage, node_rng(seed, self._id, self.incarnation))
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
        return lost

    def restart(self, factory: NodeFactory, seed: int) -> RaftNode:
        if self.node is not None:
            raise MemberError(f"member {self._id} is alive; crash it before restarting")
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
        applied=0,
    )
