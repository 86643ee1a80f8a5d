"""Deliberately broken Raft nodes: each breaks exactly one rule of Raft or of etcd's extensions.

The harness (with the spec's invariants) must catch every one of them within
a bounded number of seeds; `tests/test_mutants.py` asserts it.  A mutant is
a `RaftNode` subclass whose core (`core_class`) overrides one method.
"""

from __future__ import annotations

from attrs import evolve

from kubeproof.raft import HardState, Message, MessageType, RaftNode, Ready, Snapshot, StateType
from kubeproof.raft.core import Raft
from kubeproof.raft.types import NONE, vote_resp_type

MT = MessageType


# 1. Commit an earlier term's entry by counting replicas (Figure 8).
class _CommitPrevTerm(Raft):
    def maybe_commit(self) -> bool:
        def acked(pid: int) -> int | None:
            pr = self.prs.get(pid)
            return None if pr is None else pr.match

        mci = self.conf.committed_index(acked)
        if mci > self.log.committed:
            self.log.commit_to(mci)  # BUG: no check that entry mci is of our term
            return True
        return False


class CommitPrevTermNode(RaftNode):
    core_class = _CommitPrevTerm


# 2. Grant two votes in one term.
class _DoubleVote(Raft):
    def handle_vote_request(self, m: Message) -> None:
        if self.log.is_up_to_date(m.index, m.log_term):  # BUG: ignores an earlier vote
            self.send(Message(type=vote_resp_type(m.type), to=m.from_, term=m.term))
            if m.type is MT.MsgVote:
                self.election_elapsed = 0
                self.vote = m.from_
        else:
            self.send(Message(type=vote_resp_type(m.type), to=m.from_, term=self.term, reject=True))


class DoubleVoteNode(RaftNode):
    core_class = _DoubleVote


# 3. Skip the log up-to-date check when voting.
class _NoUpToDateCheck(Raft):
    def handle_vote_request(self, m: Message) -> None:
        can_vote = (
            self.vote == m.from_
            or (self.vote == 0 and self.lead == 0)
            or (m.type is MT.MsgPreVote and m.term > self.term)
        )
        if can_vote:  # BUG: no is_up_to_date(m.index, m.log_term)
            self.send(Message(type=vote_resp_type(m.type), to=m.from_, term=m.term))
            if m.type is MT.MsgVote:
                self.election_elapsed = 0
                self.vote = m.from_
        else:
            self.send(Message(type=vote_resp_type(m.type), to=m.from_, term=self.term, reject=True))


class NoUpToDateCheckNode(RaftNode):
    core_class = _NoUpToDateCheck


# 4. Send a vote before persisting it: the Ready that carries the granted
#    MsgVoteResp holds back the vote from its hard state (and from must_sync);
#    it reaches the disk only with the next Ready.
class VoteBeforePersistNode(RaftNode):
    def ready(self) -> Ready:
        rd = super().ready()
        if rd.hard_state is None:
            return rd
        durable = self.storage.hard_state
        if rd.hard_state.vote != durable.vote and any(
            m.type is MT.MsgVoteResp and not m.reject for m in rd.messages
        ):
            held = durable.vote if durable.term == rd.hard_state.term else 0
            hs = HardState(term=rd.hard_state.term, vote=held, commit=rd.hard_state.commit)
            return evolve(rd, hard_state=hs, must_sync=bool(rd.entries))
        return rd


# 5. Truncate on a stale append: always drop everything after the append point.
class _TruncateOnStale(Raft):
    def handle_append(self, m: Message) -> None:
        if m.index < self.log.committed:
            self.send(Message(type=MT.MsgAppResp, to=m.from_, index=self.log.committed))
            return
        if self.log.match_term(m.index, m.log_term):
            if m.entries:
                self.log.append(m.entries)  # BUG: truncates even when nothing conflicts
            last_new = m.index + len(m.entries)
            self.log.commit_to(min(m.commit, last_new))
            self.send(Message(type=MT.MsgAppResp, to=m.from_, index=last_new))
            return
        super().handle_append(m)


class TruncateOnStaleNode(RaftNode):
    core_class = _TruncateOnStale


# 6. Forget the vote on restart.
class _ForgetVote(Raft):
    def _load_state(self, hs: HardState) -> None:
        super()._load_state(HardState(term=hs.term, vote=0, commit=hs.commit))  # BUG


class ForgetVoteOnRestartNode(RaftNode):
    core_class = _ForgetVote


# 7. Ongaro's single-server membership bug: a new leader accepts a configuration
#    change before it has committed an entry of its term (etcd guards with
#    pending_conf_index = the last index at election, its empty entry included).
class _ConfChangeBeforeOwnCommit(Raft):
    def become_leader(self) -> None:
        super().become_leader()
        self.pending_conf_index = 0  # BUG: a change may be proposed at once


class ConfChangeBeforeOwnCommitNode(RaftNode):
    core_class = _ConfChangeBeforeOwnCommit


# 8. A pre-candidate that bumps its term (so a partitioned node that rejoins
#    deposes a working leader, the very thing PreVote exists to prevent).
class _PreCandidateBumpsTerm(Raft):
    def become_pre_candidate(self) -> None:
        super().become_pre_candidate()
        self.term += 1  # BUG: a pre-candidate must not change its term
        self.vote = NONE


class PreCandidateBumpsTermNode(RaftNode):
    core_class = _PreCandidateBumpsTerm


# 9. ReadIndex without the quorum round: the leader answers a read with its
#    commit index at once, without confirming it is still leader.
class _ReadIndexWithoutQuorum(Raft):
    def send_read_index(self, m: Message) -> None:
        self.respond_read_index(m, self.log.committed)  # BUG: no heartbeat round


class ReadIndexWithoutQuorumNode(RaftNode):
    core_class = _ReadIndexWithoutQuorum


# 10. A lease read without CheckQuorum: the leader serves reads from its lease
#     but never steps down when it has lost its quorum (what etcd's config
#     validation forbids: ReadOnlyLeaseBased needs CheckQuorum).  Run it with
#     `read_only_lease=True, check_quorum=True`.
class _LeaseWithoutCheckQuorum(Raft):
    def quorum_active(self) -> bool:
        return True  # BUG: the lease is never given up


class LeaseWithoutCheckQuorumNode(RaftNode):
    core_class = _LeaseWithoutCheckQuorum


# 11. A learner counted in the quorum: the commit index is the quorum-th
#     largest match among voters *and learners*.
class _LearnerInQuorum(Raft):
    def maybe_commit(self) -> bool:
        voters = self.conf.incoming | self.conf.outgoing
        counted = sorted(
            (pr.match for pid, pr in self.prs.items() if pid in voters or pr.is_learner),
            reverse=True,
        )
        q = len(self.conf.incoming) // 2  # BUG: a learner's ack can stand in for a voter's
        mci = counted[q] if len(counted) > q else 0
        return self.log.maybe_commit(mci, self.term)


class LearnerInQuorumNode(RaftNode):
    core_class = _LearnerInQuorum


# 12. A snapshot applied over newer entries: a follower restores any snapshot
#     it is sent, even one at or below its commit index or one whose entries it
#     already holds (etcd keeps its log and only moves the commit then).
class _RestoreOverNewer(Raft):
    def restore(self, snap: Snapshot) -> bool:
        md = snap.metadata
        if self.state is not StateType.Follower:
            self.become_follower(self.term + 1, NONE)
            return False
        cs = md.conf_state
        if self.id not in set(cs.voters) | set(cs.learners) | set(cs.voters_outgoing):
            return False
        # BUG: neither `md.index <= committed` nor `match_term(md.index, md.term)` is checked.
        self.log.restore(snap)
        self.prs = {}
        self.apply_conf_state(cs)
        own = self.prs.get(self.id)
        if own is not None:
            own.maybe_update(own.next - 1)
        return True


class RestoreOverNewerNode(RaftNode):
    core_class = _RestoreOverNewer


MUTANTS: dict[str, type[RaftNode]] = {
    "commit-prev-term-by-counting": CommitPrevTermNode,
    "double-vote": DoubleVoteNode,
    "skip-up-to-date-check": NoUpToDateCheckNode,
    "vote-before-persist": VoteBeforePersistNode,
    "truncate-on-stale-append": TruncateOnStaleNode,
    "forget-vote-on-restart": ForgetVoteOnRestartNode,
}
"""The paper's rules: caught under the default harness configuration."""

FEATURE_MUTANTS: dict[str, type[RaftNode]] = {
    "conf-change-before-own-term-commit": ConfChangeBeforeOwnCommitNode,
    "pre-candidate-bumps-term": PreCandidateBumpsTermNode,
    "read-index-without-quorum": ReadIndexWithoutQuorumNode,
    "lease-read-without-check-quorum": LeaseWithoutCheckQuorumNode,
    "learner-counted-in-quorum": LearnerInQuorumNode,
    "snapshot-over-newer-entries": RestoreOverNewerNode,
}
"""etcd's extensions (membership, PreVote, ReadIndex, leases, snapshots): caught with
the harness's features on (see `tests/test_mutants.py` for each one's configuration)."""
