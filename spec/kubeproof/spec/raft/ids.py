"""Stable IDs of the Raft invariants, and of those planned for later issues.

Theory of operation
-------------------
An invariant is named once, here, by a stable string that traces, reports
and `docs/invariants.md` use.  An ID never changes meaning; a new property
gets a new ID.  `RAFT_INVARIANTS` lists the ones `raft_checkers()` checks;
`PLANNED` the IDs reserved for properties later issues will check.
"""

from __future__ import annotations

ELECTION_SAFETY = "RAFT-ELECTION-SAFETY"
LEADER_APPEND_ONLY = "RAFT-LEADER-APPEND-ONLY"
LOG_MATCHING = "RAFT-LOG-MATCHING"
LEADER_COMPLETENESS = "RAFT-LEADER-COMPLETENESS"
STATE_MACHINE_SAFETY = "RAFT-STATE-MACHINE-SAFETY"
COMMITTED_DURABLE = "RAFT-COMMITTED-DURABLE"
TERM_MONOTONIC = "RAFT-TERM-MONOTONIC"
COMMIT_MONOTONIC = "RAFT-COMMIT-MONOTONIC"
VOTE_ONCE = "RAFT-VOTE-ONCE"
TRUNCATE_ON_CONFLICT = "RAFT-TRUNCATE-ON-CONFLICT"
COMMIT_CURRENT_TERM = "RAFT-COMMIT-CURRENT-TERM"
CONFIG_SAFETY = "RAFT-CONFIG-SAFETY"
READ_LINEARIZABLE = "RAFT-READ-LINEARIZABLE"
PREVOTE_TERM = "RAFT-PREVOTE-TERM"
APPLY_DIGEST = "RAFT-APPLY-DIGEST"

RAFT_INVARIANTS: tuple[str, ...] = (
    ELECTION_SAFETY,
    LEADER_APPEND_ONLY,
    LOG_MATCHING,
    LEADER_COMPLETENESS,
    STATE_MACHINE_SAFETY,
    COMMITTED_DURABLE,
    TERM_MONOTONIC,
    COMMIT_MONOTONIC,
    VOTE_ONCE,
    TRUNCATE_ON_CONFLICT,
    COMMIT_CURRENT_TERM,
    CONFIG_SAFETY,
    READ_LINEARIZABLE,
    PREVOTE_TERM,
    APPLY_DIGEST,
)

PLANNED: dict[str, str] = {
    "KV-LINEARIZABLE": "the replicated MVCC store's client history is linearizable",
    "WATCH-NO-GAP": "a watch delivers every revision of its range once, in order, with no gap",
    "API-AUTHORIZED": "every API request that changed state was authenticated and allowed by RBAC",
    "SCHED-NO-OVERCOMMIT": "no node is bound more pods than its allocatable resources admit",
}
