"""The mutants the bounded model checker is given, each with the bounds that find it.

`tests/test_mc.py` asserts, for each: a violation of one of the listed invariants, a
counterexample that is shortest (nothing within one action less) and that `kubeproof
replay` reproduces, and the correct node clean under the same bounds as deep.
`bench/bench_mc.py` times them.  The mutants themselves are `raft_mutants`'.
"""

from __future__ import annotations

from kubeproof.models.mc import McConfig
from kubeproof.raft import RaftNode

from .raft_mutants import FEATURE_MUTANTS, MUTANTS

CASES: dict[str, tuple[type[RaftNode], McConfig, set[str]]] = {
    # Figure 8: a leader of term 2 counts an entry of term 1 committed when one follower
    # acknowledges it alone (one entry per MsgApp), before its own term's entry.
    "commit-prev-term-by-counting": (
        MUTANTS["commit-prev-term-by-counting"],
        McConfig(max_proposals=0),
        {"RAFT-COMMIT-CURRENT-TERM"},
    ),
    "double-vote": (MUTANTS["double-vote"], McConfig(), {"RAFT-VOTE-ONCE"}),
    "skip-up-to-date-check": (
        MUTANTS["skip-up-to-date-check"],
        McConfig(max_proposals=0, max_crashes=0),
        {"RAFT-LEADER-COMPLETENESS"},
    ),
    "vote-before-persist": (MUTANTS["vote-before-persist"], McConfig(), {"RAFT-VOTE-ONCE"}),
    "forget-vote-on-restart": (
        MUTANTS["forget-vote-on-restart"],
        McConfig(),
        {"RAFT-VOTE-ONCE"},
    ),
    # A stale, shorter append arriving after a longer one: needs batched appends, a
    # heartbeat (whose response makes the probing leader send the longer one) and room.
    "truncate-on-stale-append": (
        MUTANTS["truncate-on-stale-append"],
        McConfig(
            max_term=1,
            max_crashes=0,
            max_drops=1,
            max_heartbeats=1,
            max_size_per_msg=1 << 20,
        ),
        {"RAFT-TRUNCATE-ON-CONFLICT"},
    ),
    "pre-candidate-bumps-term": (
        FEATURE_MUTANTS["pre-candidate-bumps-term"],
        McConfig(pre_vote=True, max_crashes=0, max_proposals=0),
        {"RAFT-PREVOTE-TERM"},
    ),
}
