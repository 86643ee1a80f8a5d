"""kubeproof.spec.raft: Raft's safety invariants as checkers the harness runs after every event.

`raft_checkers()` returns one fresh checker per invariant, sharing one
`ClusterTracker` so that the per-event bookkeeping (sampling the members,
diffing their logs, learning commits) is done once.  Each checker is a
`kubeproof.sim.observe.Checker`; each has a stable `ID` (see `ids`), and
its docstring states the property and the history it keeps.  The catalogue
is docs/invariants.md.
"""

from __future__ import annotations

from kubeproof.sim.observe import Checker

from .checker import RaftChecker
from .commitment import CommitCurrentTerm
from .completeness import LeaderCompleteness
from .digest import ApplyDigest
from .durable import CommittedDurable
from .election import ElectionSafety, VoteOnce
from .ids import (
    APPLY_DIGEST,
    COMMIT_CURRENT_TERM,
    COMMIT_MONOTONIC,
    COMMITTED_DURABLE,
    CONFIG_SAFETY,
    ELECTION_SAFETY,
    LEADER_APPEND_ONLY,
    LEADER_COMPLETENESS,
    LOG_MATCHING,
    PLANNED,
    PREVOTE_TERM,
    RAFT_INVARIANTS,
    READ_LINEARIZABLE,
    STATE_MACHINE_SAFETY,
    TERM_MONOTONIC,
    TRUNCATE_ON_CONFLICT,
    VOTE_ONCE,
)
from .logs import LeaderAppendOnly, LogMatching, TruncateOnConflict
from .membership import ConfigSafety
from .monotonic import CommitMonotonic, TermMonotonic
from .prevote import PreVoteTerm
from .reads import ReadLinearizable
from .state_machine import StateMachineSafety
from .tracker import ClusterTracker

CHECKER_CLASSES: tuple[type[RaftChecker], ...] = (
    ElectionSafety,
    LeaderAppendOnly,
    LogMatching,
    LeaderCompleteness,
    StateMachineSafety,
    CommittedDurable,
    TermMonotonic,
    CommitMonotonic,
    VoteOnce,
    TruncateOnConflict,
    CommitCurrentTerm,
    ConfigSafety,
    ReadLinearizable,
    PreVoteTerm,
    ApplyDigest,
)
"""One class per ID of `RAFT_INVARIANTS`, in the same order."""


def raft_checkers(voters: tuple[int, ...] | None = None) -> list[Checker]:
    """Fresh checkers for one run, one per Raft invariant, sharing one tracker.

    `voters` fixes the voters whose quorums the holders of every committed
    entry must block (RAFT-COMMITTED-DURABLE); by default the configuration
    in force (the one applied at the highest index), or every member of the
    view if the nodes report none.
    """
    tracker = ClusterTracker()
    out: list[Checker] = []
    for cls in CHECKER_CLASSES:
        if cls is CommittedDurable:
            out.append(CommittedDurable(tracker, voters=voters))
        else:
            out.append(cls(tracker))
    return out


__all__ = [
    "APPLY_DIGEST",
    "CHECKER_CLASSES",
    "COMMITTED_DURABLE",
    "COMMIT_CURRENT_TERM",
    "COMMIT_MONOTONIC",
    "CONFIG_SAFETY",
    "ELECTION_SAFETY",
    "LEADER_APPEND_ONLY",
    "LEADER_COMPLETENESS",
    "LOG_MATCHING",
    "PLANNED",
    "PREVOTE_TERM",
    "RAFT_INVARIANTS",
    "READ_LINEARIZABLE",
    "STATE_MACHINE_SAFETY",
    "TERM_MONOTONIC",
    "TRUNCATE_ON_CONFLICT",
    "VOTE_ONCE",
    "ApplyDigest",
    "ClusterTracker",
    "CommitCurrentTerm",
    "CommitMonotonic",
    "CommittedDurable",
    "ConfigSafety",
    "ElectionSafety",
    "LeaderAppendOnly",
    "LeaderCompleteness",
    "LogMatching",
    "PreVoteTerm",
    "RaftChecker",
    "ReadLinearizable",
    "StateMachineSafety",
    "TermMonotonic",
    "TruncateOnConflict",
    "VoteOnce",
    "raft_checkers",
]
