"""RaftConfig: etcd raft's Config, the knobs a node is built with."""

from __future__ import annotations

from attrs import field, frozen

from .types import ReadOnlyOption, _int_tuple


@frozen
class RaftConfig:
    """etcd's raft.Config, in snake case.

    `voters`/`learners` only bootstrap an empty storage: a stored ConfState wins.
    `applied` is the last index the application has applied; committed entries
    up to it are not delivered again.  `max_size_per_msg` bounds the bytes of
    entries in one MsgApp (at least one entry is always sent);
    `max_inflight_msgs` bounds unacknowledged MsgApps to a follower in
    Replicate; `max_uncommitted_entries_size` (0 = no limit) bounds the
    leader's uncommitted tail before proposals are dropped.
    """

    id: int
    voters: tuple[int, ...] = field(default=(), converter=_int_tuple)
    election_tick: int = 10
    heartbeat_tick: int = 1
    pre_vote: bool = False
    check_quorum: bool = False
    learners: tuple[int, ...] = field(default=(), converter=_int_tuple)
    applied: int = 0
    read_only_option: ReadOnlyOption = ReadOnlyOption.ReadOnlySafe
    max_size_per_msg: int = 1024 * 1024
    max_inflight_msgs: int = 256
    max_uncommitted_entries_size: int = 0
    disable_proposal_forwarding: bool = False

    def validate(self) -> None:
        """Raise ValueError naming what is wrong (etcd's Config.validate)."""
        if self.id == 0:
            raise ValueError("cannot use none as id")
        if self.heartbeat_tick <= 0:
            raise ValueError("heartbeat tick must be greater than 0")
        if self.election_tick <= self.heartbeat_tick:
            raise ValueError("election tick must be greater than heartbeat tick")
        if self.max_inflight_msgs <= 0:
            raise ValueError("max inflight messages must be greater than 0")
        if self.max_size_per_msg < 0 or self.max_uncommitted_entries_size < 0:
            raise ValueError("sizes must not be negative")
        if self.applied < 0:
            raise ValueError("applied must not be negative")
        if self.read_only_option is ReadOnlyOption.ReadOnlyLeaseBased and not self.check_quorum:
            raise ValueError(
                "CheckQuorum must be enabled when ReadOnlyOption is ReadOnlyLeaseBased"
            )
        if set(self.voters) & set(self.learners):
            raise ValueError("a node cannot be both a voter and a learner")
