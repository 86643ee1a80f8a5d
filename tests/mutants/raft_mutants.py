"""Deliberately broken Raft nodes: each breaks exactly one rule of the paper.

The harness (with the spec's invariants) must catch every one of them within
a bounded number of seeds; `tests/test_mutants.py` asserts it.  A mutant is
a `RaftNode` subclass whose core (`core_class`) overrides one method.
"""

from __future__ import annotations

from attrs import evolve

from kubeproof.raft import HardState, Message, MessageType, RaftNode, Ready
from kubeproof.raft.core import Raft
from kubeproof.raft.types import vote_resp_type

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


MUTANTS: dict[str, type[RaftNode]] = {
    "commit-prev-term-by-counting": CommitPrevTermNode,
    "double-vote": DoubleVoteNode,
    "skip-up-to-date-check": NoUpToDateCheckNode,
    "vote-before-persist": VoteBeforePersistNode,
    "truncate-on-stale-append": TruncateOnStaleNode,
    "forget-vote-on-restart": ForgetVoteOnRestartNode,
}
