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
from .durable import CommittedDurable
from .election import ElectionSafety, VoteOnce
from .ids import (
    COMMIT_CURRENT_TERM,
    COMMIT_MONOTONIC,
    COMMITTED_DURABLE,
    ELECTION_SAFETY,
    LEADER_APPEND_ONLY,
    LEADER_COMPLETENESS,
    LOG_MATCHING,
    PLANNED,
    RAFT_INVARIANTS,
    STATE_MACHINE_SAFETY,
    TERM_MONOTONIC,
    TRUNCATE_ON_CONFLICT,
    VOTE_ONCE,
)
from .logs import LeaderAppendOnly, LogMatching, TruncateOnConflict
from .monotonic import CommitMonotonic, TermMonotonic
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
)
"""One class per ID of `RAFT_INVARIANTS`, in the same order."""


def raft_checkers(voters: tuple[int, ...] | None = None) -> list[Checker]:
    """Fresh checkers for one run, one per Raft invariant, sharing one tracker.

    `voters` is the set whose majority must hold every committed entry
    (RAFT-COMMITTED-DURABLE); by default every member of the view.
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
    "CHECKER_CLASSES",
    "COMMITTED_DURABLE",
    "COMMIT_CURRENT_TERM",
    "COMMIT_MONOTONIC",
    "ELECTION_SAFETY",
    "LEADER_APPEND_ONLY",
    "LEADER_COMPLETENESS",
    "LOG_MATCHING",
    "PLANNED",
    "RAFT_INVARIANTS",
    "STATE_MACHINE_SAFETY",
    "TERM_MONOTONIC",
    "TRUNCATE_ON_CONFLICT",
    "VOTE_ONCE",
    "ClusterTracker",
    "CommitCurrentTerm",
    "CommitMonotonic",
    "CommittedDurable",
    "ElectionSafety",
    "LeaderAppendOnly",
    "LeaderCompleteness",
    "LogMatching",
    "RaftChecker",
    "StateMachineSafety",
    "TermMonotonic",
    "TruncateOnConflict",
    "VoteOnce",
    "raft_checkers",
]
