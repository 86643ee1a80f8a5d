"""The commitment rule: a leader commits by counting only entries of its own term.

Theory of operation
-------------------
Raft's section 5.4.2 (the paper's Figure 8): an entry of an earlier term
stored on a majority can still be overwritten by a later leader, so a
leader advances its commit index only to an index whose entry carries its
current term (earlier entries then commit indirectly, by Log Matching).  A
leader has no other way to raise its commit index (it never takes a commit
index from a peer or a snapshot), so the rule is visible from outside: at
every event where a node that was and still is leader of the same term, in
the same life, raises its commit index, the entry at the new commit index
has that term.  This sees the Figure 8 bug at the commit itself, before any
later leader overwrites the entry (which `LeaderCompleteness` would see).
"""

from __future__ import annotations

from kubeproof.raft.types import StateType
from kubeproof.sim.observe import ClusterView, Event, Violation

from . import ids
from .checker import RaftChecker
from .tracker import Observation, entry_json

_LEADER = StateType.Leader


class CommitCurrentTerm(RaftChecker):
    """RAFT-COMMIT-CURRENT-TERM: a leader's commit index only moves onto an entry of its term.

    Property: whenever, between two consecutive events, a live node is
    leader of term T in the same life before and after and its commit index
    rises from c0 to c1 > c0, the entry at index c1 in its log has term T.

    History kept: none beyond the tracker's previous sample.  Reported at
    the delivery (or Ready) whose acknowledgement made the leader commit.
    """

    ID = ids.COMMIT_CURRENT_TERM

    def inspect(
        self, view: ClusterView, event: Event, obs: Observation, out: list[Violation]
    ) -> None:
        for tr in obs.touched:
            if (
                not tr.alive
                or tr.life_start
                or tr.state is not _LEADER
                or tr.p_state is not _LEADER
                or tr.p_term != tr.term
                or tr.commit <= tr.p_commit
            ):
                continue
            log = tr.log
            assert log is not None
            t = log.term(tr.commit)
            if t == tr.term:
                continue
            self._report(
                out,
                (tr.id, tr.term, tr.commit),
                obs.step,
                f"leader {tr.id} of term {tr.term} advanced its commit index from "
                f"{tr.p_commit} to {tr.commit}, onto an entry of term {t}",
                {
                    "leader": tr.id,
                    "term": tr.term,
                    "commit_before": tr.p_commit,
                    "commit": tr.commit,
                    "entry": entry_json(log.entry(tr.commit)),
                    "entry_term": t,
                },
            )
