"""Raft value types, after etcd's raftpb.

Theory of operation
-------------------
Everything that crosses the boundary of a Raft node is one of these frozen
values: the messages peers exchange (`Message`), the log entries
(`Entry`), what must survive a crash (`HardState`, `Snapshot`,
`ConfState`), and what the node hands its caller (`ReadState`,
`SoftState`).  Names and field meanings follow etcd raftpb, in snake case
(`from` is a Python keyword, hence `from_`).  Every field but a message's
`type` has a default, so a test can write only what matters to it.

The enums use etcd's member names so that a trace reads like an etcd log.
Values are plain ints/bytes/tuples so that the codec can turn each of them
into JSON and back without custom hooks.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from attrs import field, frozen

NONE = 0
"""etcd's `None` node id: no leader, no vote."""


class StateType(enum.Enum):
    Follower = "StateFollower"
    Candidate = "StateCandidate"
    Leader = "StateLeader"
    PreCandidate = "StatePreCandidate"


class EntryType(enum.Enum):
    EntryNormal = "EntryNormal"
    EntryConfChange = "EntryConfChange"
    EntryConfChangeV2 = "EntryConfChangeV2"


class MessageType(enum.Enum):
    MsgHup = "MsgHup"
    MsgBeat = "MsgBeat"
    MsgProp = "MsgProp"
    MsgApp = "MsgApp"
    MsgAppResp = "MsgAppResp"
    MsgVote = "MsgVote"
    MsgVoteResp = "MsgVoteResp"
    MsgSnap = "MsgSnap"
    MsgHeartbeat = "MsgHeartbeat"
    MsgHeartbeatResp = "MsgHeartbeatResp"
    MsgUnreachable = "MsgUnreachable"
    MsgSnapStatus = "MsgSnapStatus"
    MsgCheckQuorum = "MsgCheckQuorum"
    MsgTransferLeader = "MsgTransferLeader"
    MsgTimeoutNow = "MsgTimeoutNow"
    MsgReadIndex = "MsgReadIndex"
    MsgReadIndexResp = "MsgReadIndexResp"
    MsgPreVote = "MsgPreVote"
    MsgPreVoteResp = "MsgPreVoteResp"


LOCAL_MESSAGES = frozenset(
    {
        MessageType.MsgHup,
        MessageType.MsgBeat,
        MessageType.MsgUnreachable,
        MessageType.MsgSnapStatus,
        MessageType.MsgCheckQuorum,
    }
)
"""Messages a node makes for itself; a peer sending one is dropped."""

RESPONSE_MESSAGES = frozenset(
    {
        MessageType.MsgAppResp,
        MessageType.MsgVoteResp,
        MessageType.MsgHeartbeatResp,
        MessageType.MsgUnreachable,
        MessageType.MsgPreVoteResp,
    }
)


def vote_resp_type(t: MessageType) -> MessageType:
    if t is MessageType.MsgVote:
        return MessageType.MsgVoteResp
    if t is MessageType.MsgPreVote:
        return MessageType.MsgPreVoteResp
    raise ValueError(f"not a vote message type: {t}")


def _int_tuple(v: Iterable[int]) -> tuple[int, ...]:
    # Sorted, as etcd keeps them, so equal configurations compare equal.
    return tuple(sorted(int(x) for x in v))


@frozen
class Entry:
    term: int
    index: int
    type: EntryType = EntryType.EntryNormal
    data: bytes = b""

    def size(self) -> int:
        # Payload size as etcd's flow control counts it (proto size is close).
        return len(self.data) + 16


@frozen
class HardState:
    term: int = 0
    vote: int = 0
    commit: int = 0

    def is_empty(self) -> bool:
        return self.term == 0 and self.vote == 0 and self.commit == 0


EMPTY_HARD_STATE = HardState()


@frozen
class ConfState:
    voters: tuple[int, ...] = field(default=(), converter=_int_tuple)
    learners: tuple[int, ...] = field(default=(), converter=_int_tuple)
    voters_outgoing: tuple[int, ...] = field(default=(), converter=_int_tuple)
    learners_next: tuple[int, ...] = field(default=(), converter=_int_tuple)
    auto_leave: bool = False

    def is_empty(self) -> bool:
        return not (self.voters or self.learners or self.voters_outgoing or self.learners_next)


@frozen
class SnapshotMetadata:
    conf_state: ConfState = ConfState()
    index: int = 0
    term: int = 0


@frozen
class Snapshot:
    data: bytes = b""
    metadata: SnapshotMetadata = SnapshotMetadata()

    def is_empty(self) -> bool:
        return self.metadata.index == 0


EMPTY_SNAPSHOT = Snapshot()


@frozen
class Message:
    type: MessageType
    to: int = 0
    from_: int = 0
    term: int = 0
    log_term: int = 0
    index: int = 0
    entries: tuple[Entry, ...] = ()
    commit: int = 0
    snapshot: Snapshot | None = None
    reject: bool = False
    reject_hint: int = 0
    context: bytes = b""


@frozen
class ReadState:
    index: int
    request_ctx: bytes


@frozen
class SoftState:
    lead: int
    raft_state: StateType


class ReadOnlyOption(enum.Enum):
    ReadOnlySafe = "ReadOnlySafe"
    ReadOnlyLeaseBased = "ReadOnlyLeaseBased"


class SnapshotStatus(enum.Enum):
    Finish = "SnapshotFinish"
    Failure = "SnapshotFailure"


class ConfChangeType(enum.Enum):
    ConfChangeAddNode = "ConfChangeAddNode"
    ConfChangeRemoveNode = "ConfChangeRemoveNode"
    ConfChangeUpdateNode = "ConfChangeUpdateNode"
    ConfChangeAddLearnerNode = "ConfChangeAddLearnerNode"


class ConfChangeTransition(enum.Enum):
    Auto = "ConfChangeTransitionAuto"
    JointImplicit = "ConfChangeTransitionJointImplicit"
    JointExplicit = "ConfChangeTransitionJointExplicit"


@frozen
class ConfChangeSingle:
    type: ConfChangeType
    node_id: int


@frozen
class ConfChangeV2:
    transition: ConfChangeTransition = ConfChangeTransition.Auto
    changes: tuple[ConfChangeSingle, ...] = ()
    context: bytes = b""

    def leave_joint(self) -> bool:
        """An empty change with the Auto transition leaves a joint config."""
        return not self.changes and self.transition is ConfChangeTransition.Auto


# ---------------------------------------------------------------- errors


class RaftError(Exception):
    """Base class of the typed errors a Raft node raises to its caller."""


class ProposalDropped(RaftError):
    """etcd's ErrProposalDropped: no leader, transfer in progress, pending conf change."""


class ErrCompacted(RaftError):
    """The requested index is older than the storage's first index."""


class ErrUnavailable(RaftError):
    """The requested entry is not (yet) in storage."""


class ErrSnapOutOfDate(RaftError):
    """A snapshot older than the one already held."""


class RaftInvariantError(RaftError):
    """Where etcd panics: a peer or the storage broke one of Raft's own invariants.

    `invariant` names the rule, so the harness can record it as a violation.
    """

    def __init__(self, invariant: str, detail: str) -> None:
        super().__init__(f"{invariant}: {detail}")
        self.invariant = invariant
        self.detail = detail
