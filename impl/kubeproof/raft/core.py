"""The Raft state machine: one `step` that dispatches to a function per role.

Theory of operation
-------------------
This is etcd raft's raft.go in Python.  A node is a Follower, a
PreCandidate, a Candidate or a Leader.  Inputs are `tick()` and `step(m)`;
outputs accumulate in `msgs` (to send after persisting) and in the log's
unstable tail (to persist), and are collected by `node.RaftNode.ready()`.

Term rules, applied to every message before the role sees it (§5.1):

| message term    | message                               | action                                  |
|-----------------|---------------------------------------|-----------------------------------------|
| 0 (local)       | MsgHup, MsgBeat, MsgProp, ...         | go to the role                          |
| > ours          | MsgVote/MsgPreVote within a lease     | ignored (CheckQuorum; not for transfer) |
| > ours          | MsgPreVote, granted MsgPreVoteResp    | term unchanged                          |
| > ours          | MsgApp, MsgHeartbeat, MsgSnap         | follower of the sender at its term      |
| > ours          | anything else                         | follower, no leader, at its term        |
| < ours          | MsgApp/MsgHeartbeat (PreVote or CQ)   | empty MsgAppResp to free a stuck node   |
| < ours          | MsgPreVote                            | rejected at our term                    |
| < ours          | anything else                         | dropped                                 |

Votes (§5.2, §5.4.1): a node grants a vote if it already voted for that
candidate, or has not voted and knows no leader in this term (a pre-vote is
also granted for a future term), and only if the candidate's log is at
least as up to date as its own.  A granted MsgVote is recorded in `vote`,
which reaches `Ready.hard_state` with `must_sync`, so it is durable before
the response leaves.  A candidate's own vote is counted internally.

Roles:

| role         | on election timeout   | on a quorum of votes        | on MsgApp/Heartbeat of term |
|--------------|-----------------------|-----------------------------|-----------------------------|
| Follower     | campaign (pre-vote?)  | -                           | accept, reset timer         |
| PreCandidate | campaign again        | become Candidate (term + 1) | become Follower             |
| Candidate    | campaign again        | become Leader               | become Follower             |
| Leader       | CheckQuorum, abort    | -                           | (higher term: Follower)     |
|              | leader transfer       |                             |                             |

The leader appends an empty entry on election; commits an index only if a
quorum has it *and* its entry is of the current term (Figure 8); its own
entries count once persisted (`on_persisted`).  The election timeout is
drawn from the injected RNG, uniformly in [election_tick, 2*election_tick),
afresh at every role change.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from attrs import evolve

from .config import RaftConfig
from .log import RaftLog
from .progress import Progress, ProgressState
from .quorum import JointConfig, VoteResult
from .storage import MemoryStorage
from .types import (
    LOCAL_MESSAGES,
    NONE,
    ConfState,
    Entry,
    EntryType,
    ErrCompacted,
    HardState,
    Message,
    MessageType,
    ProposalDropped,
    RaftInvariantError,
    ReadOnlyOption,
    ReadState,
    Snapshot,
    SnapshotStatus,
    StateType,
    vote_resp_type,
)

CAMPAIGN_PRE_ELECTION = b"CampaignPreElection"
CAMPAIGN_ELECTION = b"CampaignElection"
CAMPAIGN_TRANSFER = b"CampaignTransfer"

MT = MessageType

# A tuple, not a frozenset: `in` on a short tuple compares enum members by identity in
# C, while a set lookup calls Enum.__hash__ (Python code) on every message sent.
_VOTE_MESSAGES = (MT.MsgVote, MT.MsgVoteResp, MT.MsgPreVote, MT.MsgPreVoteResp)


class ReadOnly:
    """Pending ReadIndex requests waiting for a quorum of heartbeat acks (etcd's readOnly)."""

    def __init__(self) -> None:
        # ctx -> (index, request message, acks)
        self.pending: dict[bytes, tuple[int, Message, set[int]]] = {}
        self.queue: list[bytes] = []

    def add_request(self, index: int, m: Message) -> None:
        ctx = m.entries[0].data
        if ctx in self.pending:
            return
        self.pending[ctx] = (index, m, set())
        self.queue.append(ctx)

    def recv_ack(self, from_: int, ctx: bytes) -> set[int] | None:
        rs = self.pending.get(ctx)
        if rs is None:
            return None
        rs[2].add(from_)
        return rs[2]

    def advance(self, ctx: bytes) -> list[tuple[int, Message]]:
        """Release every request up to and including ctx (they are ordered)."""
        if ctx not in self.pending:
            return []
        out: list[tuple[int, Message]] = []
        i = 0
        for i, c in enumerate(self.queue):  # noqa: B007 - i used after the loop
            idx, m, _ = self.pending.pop(c)
            out.append((idx, m))
            if c == ctx:
                break
        del self.queue[: i + 1]
        return out

    def last_pending_ctx(self) -> bytes | None:
        return self.queue[-1] if self.queue else None


class Raft:
    """etcd's `raft` struct.  Use it through `kubeproof.raft.RaftNode`."""

    def __init__(self, cfg: RaftConfig, storage: MemoryStorage, rng: random.Random) -> None:
        cfg.validate()
        self.cfg = cfg
        self.id = cfg.id
        self.rng = rng
        self.storage = storage
        self.log = RaftLog(storage)
        hs, cs = storage.initial_state()
        if cs.is_empty():
            cs = ConfState(voters=cfg.voters, learners=cfg.learners)
        self.term = 0
        self.vote = NONE
        self.lead = NONE
        self.state = StateType.Follower
        self.msgs: list[Message] = []
        self.read_states: list[ReadState] = []
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.randomized_election_timeout = cfg.election_tick
        self.lead_transferee = NONE
        self.pending_conf_index = 0
        self.uncommitted_size = 0
        self.read_only = ReadOnly()
        self.pending_read_index_messages: list[Message] = []
        self.votes: dict[int, bool] = {}
        self.prs: dict[int, Progress] = {}
        self.dropped = 0
        self.elections_won = 0
        self.conf = JointConfig()
        self.learners: frozenset[int] = frozenset()
        self.learners_next: frozenset[int] = frozenset()
        self.auto_leave = False
        self.apply_conf_state(cs)
        if not hs.is_empty():
            self._load_state(hs)
        if cfg.applied > 0:
            self.log.applied_to(min(cfg.applied, self.log.committed))
        self.become_follower(self.term, NONE)

    # ------------------------------------------------------------ helpers

    def _load_state(self, hs: HardState) -> None:
        if hs.commit < self.log.committed or hs.commit > self.log.last_index():
            raise RaftInvariantError(
                "HARDSTATE-COMMIT-BOUNDS",
                f"state.commit {hs.commit} is out of range "
                f"[{self.log.committed}, {self.log.last_index()}]",
            )
        self.log.committed = hs.commit
        self.term = hs.term
        self.vote = hs.vote

    def hard_state(self) -> HardState:
        return HardState(term=self.term, vote=self.vote, commit=self.log.committed)

    def send(self, m: Message) -> None:
        """Queue a message; stamp the term as etcd's r.send does."""
        t = m.type
        term = m.term
        if t in _VOTE_MESSAGES:
            if term == 0:
                raise RaftInvariantError("SEND-VOTE-TERM", f"term should be set when sending {t}")
        elif t is MT.MsgReadIndex:
            term = 0
        elif t is not MT.MsgProp:
            term = self.term
        # One direct constructor call rather than up to two `attrs.evolve` copies: this
        # runs for every message a node sends, and evolve's generic field walk was the
        # node's single largest cost.  The result is the same value.
        self.msgs.append(
            Message(
                t,
                m.to,
                self.id,
                term,
                m.log_term,
                m.index,
                m.entries,
                m.commit,
                m.snapshot,
                m.reject,
                m.reject_hint,
                m.context,
            )
        )

    def promotable(self) -> bool:
        return self.id in self.prs and self.id not in self.learners

    def voter_ids(self) -> frozenset[int]:
        return self.conf.ids()

    def reset_randomized_election_timeout(self) -> None:
        et = self.cfg.election_tick
        self.randomized_election_timeout = et + self.rng.randrange(et)

    def past_election_timeout(self) -> bool:
        return self.election_elapsed >= self.randomized_election_timeout

    def reset(self, term: int) -> None:
        if self.term != term:
            self.term = term
            self.vote = NONE
        self.lead = NONE
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.reset_randomized_election_timeout()
        self.abort_leader_transfer()
        self.votes = {}
        last = self.log.last_index()
        for pid, pr in list(self.prs.items()):
            npr = Progress(last + 1, self.cfg.max_inflight_msgs, is_learner=pr.is_learner)
            if pid == self.id:
                npr.match = self.log.stable_last_index()
                npr.recent_active = True
            self.prs[pid] = npr
        self.pending_conf_index = 0
        self.uncommitted_size = 0
        self.read_only = ReadOnly()
        self.pending_read_index_messages = []

    def abort_leader_transfer(self) -> None:
        self.lead_transferee = NONE

    # --------------------------------------------------------- membership

    def apply_conf_state(self, cs: ConfState) -> None:
        """Make `cs` the configuration in force (progress kept for known peers)."""
        self.conf = JointConfig(frozenset(cs.voters), frozenset(cs.voters_outgoing))
        self.learners = frozenset(cs.learners)
        self.learners_next = frozenset(cs.learners_next)
        self.auto_leave = cs.auto_leave
        members = self.conf.ids() | self.learners | self.learners_next
        last = self.log.last_index()
        for pid in list(self.prs):
            if pid not in members:
                del self.prs[pid]
        for pid in sorted(members):
            is_learner = pid in self.learners or pid in self.learners_next
            pr = self.prs.get(pid)
            if pr is None:
                pr = Progress(last + 1, self.cfg.max_inflight_msgs, is_learner=is_learner)
                if pid == self.id:
                    pr.match = self.log.stable_last_index()
                # A newly added peer counts as active so that CheckQuorum does
                # not step the leader down before the peer could answer.
                pr.recent_active = True
                self.prs[pid] = pr
            else:
                pr.is_learner = is_learner

    def conf_state(self) -> ConfState:
        return ConfState(
            voters=tuple(self.conf.incoming),
            learners=tuple(self.learners),
            voters_outgoing=tuple(self.conf.outgoing),
            learners_next=tuple(self.learners_next),
            auto_leave=self.auto_leave,
        )

    # ------------------------------------------------------- transitions

    def become_follower(self, term: int, lead: int) -> None:
        self.reset(term)
        self.lead = lead
        self.state = StateType.Follower

    def become_candidate(self) -> None:
        if self.state is StateType.Leader:
            raise RaftInvariantError("ROLE-TRANSITION", "invalid transition [leader -> candidate]")
        self.reset(self.term + 1)
        self.vote = self.id
        self.state = StateType.Candidate

    def become_pre_candidate(self) -> None:
        if self.state is StateType.Leader:
            raise RaftInvariantError(
                "ROLE-TRANSITION", "invalid transition [leader -> pre-candidate]"
            )
        # Neither term nor vote changes: a pre-candidate disturbs nobody.
        self.votes = {}
        self.lead = NONE
        self.state = StateType.PreCandidate
        self.reset_randomized_election_timeout()

    def become_leader(self) -> None:
        if self.state is StateType.Follower:
            raise RaftInvariantError("ROLE-TRANSITION", "invalid transition [follower -> leader]")
        self.reset(self.term)
        self.lead = self.id
        self.state = StateType.Leader
        self.elections_won += 1
        self.prs[self.id].become_replicate()
        self.append_entry([Entry(term=0, index=0)])
        # No conf change may be proposed until everything up to and including
        # our empty entry is applied.  etcd sets this just *before* appending
        # the empty entry (its changes take effect on apply, which already
        # orders them after it); we include it, so that a new leader has
        # committed an entry of its own term before it even accepts a change
        # (Ongaro's single-server membership bug, raft-dev 2015).
        self.pending_conf_index = self.log.last_index()
        # The empty entry does not count against the uncommitted limit.
        self.uncommitted_size = 0

    # ------------------------------------------------------------- ticks

    def tick(self) -> None:
        if self.state is StateType.Leader:
            self.tick_heartbeat()
        else:
            self.tick_election()

    def tick_election(self) -> None:
        self.election_elapsed += 1
        if self.promotable() and self.past_election_timeout():
            self.election_elapsed = 0
            self.step(Message(type=MT.MsgHup, from_=self.id))

    def tick_heartbeat(self) -> None:
        self.heartbeat_elapsed += 1
        self.election_elapsed += 1
        if self.election_elapsed >= self.cfg.election_tick:
            self.election_elapsed = 0
            if self.cfg.check_quorum:
                self.step(Message(type=MT.MsgCheckQuorum, from_=self.id))
            if self.state is StateType.Leader and self.lead_transferee != NONE:
                self.abort_leader_transfer()
        if self.state is not StateType.Leader:
            return
        if self.heartbeat_elapsed >= self.cfg.heartbeat_tick:
            self.heartbeat_elapsed = 0
            self.step(Message(type=MT.MsgBeat, from_=self.id))

    # -------------------------------------------------------------- step

    def step(self, m: Message) -> None:
        if m.term == 0:
            pass
        elif m.term > self.term:
            if m.type in (MT.MsgVote, MT.MsgPreVote):
                force = m.context == CAMPAIGN_TRANSFER
                in_lease = (
                    self.cfg.check_quorum
                    and self.lead != NONE
                    and self.election_elapsed < self.cfg.election_tick
                )
                if not force and in_lease:
                    return
            if m.type is MT.MsgPreVote or (m.type is MT.MsgPreVoteResp and not m.reject):
                pass
            elif m.type in (MT.MsgApp, MT.MsgHeartbeat, MT.MsgSnap):
                self.become_follower(m.term, m.from_)
            else:
                self.become_follower(m.term, NONE)
        elif m.term < self.term:
            if (self.cfg.check_quorum or self.cfg.pre_vote) and m.type in (
                MT.MsgHeartbeat,
                MT.MsgApp,
            ):
                self.send(Message(type=MT.MsgAppResp, to=m.from_))
            elif m.type is MT.MsgPreVote:
                self.send(Message(type=MT.MsgPreVoteResp, to=m.from_, term=self.term, reject=True))
            return

        t = m.type
        if t is MT.MsgHup:
            if self.cfg.pre_vote:
                self.hup(CAMPAIGN_PRE_ELECTION)
            else:
                self.hup(CAMPAIGN_ELECTION)
        elif t is MT.MsgVote or t is MT.MsgPreVote:
            self.handle_vote_request(m)
        elif self.state is StateType.Leader:
            self.step_leader(m)
        elif self.state is StateType.Follower:
            self.step_follower(m)
        else:
            self.step_candidate(m)

    def handle_vote_request(self, m: Message) -> None:
        can_vote = (
            self.vote == m.from_
            or (self.vote == NONE and self.lead == NONE)
            or (m.type is MT.MsgPreVote and m.term > self.term)
        )
        if can_vote and self.log.is_up_to_date(m.index, m.log_term):
            # The response carries the message's term, not ours (etcd#8243).
            self.send(Message(type=vote_resp_type(m.type), to=m.from_, term=m.term))
            if m.type is MT.MsgVote:
                self.election_elapsed = 0
                self.vote = m.from_
        else:
            self.send(Message(type=vote_resp_type(m.type), to=m.from_, term=self.term, reject=True))

    def hup(self, kind: bytes) -> None:
        if self.state is StateType.Leader:
            return
        if not self.promotable():
            return
        if self.has_unapplied_conf_change():
            return
        self.campaign(kind)

    def has_unapplied_conf_change(self) -> bool:
        if self.log.applied >= self.log.committed:
            return False
        lo = max(self.log.applied + 1, self.log.first_index())
        hi = min(self.log.committed, self.log.last_index()) + 1
        if lo >= hi:
            return False
        try:
            ents = self.log.slice(lo, hi)
        except ErrCompacted:
            return False
        return any(e.type is not EntryType.EntryNormal for e in ents)

    def campaign(self, kind: bytes) -> None:
        if kind == CAMPAIGN_PRE_ELECTION:
            self.become_pre_candidate()
            vote_msg = MT.MsgPreVote
            term = self.term + 1
        else:
            self.become_candidate()
            vote_msg = MT.MsgVote
            term = self.term
        if self.poll(self.id, vote_resp_type(vote_msg), True) is VoteResult.VoteWon:
            # A single-voter configuration wins at once.
            if kind == CAMPAIGN_PRE_ELECTION:
                self.campaign(CAMPAIGN_ELECTION)
            else:
                self.become_leader()
            return
        last = self.log.last_index()
        last_term = self.log.last_term()
        ctx = CAMPAIGN_TRANSFER if kind == CAMPAIGN_TRANSFER else b""
        for pid in sorted(self.voter_ids()):
            if pid == self.id:
                continue
            self.send(
                Message(
                    type=vote_msg,
                    to=pid,
                    term=term,
                    index=last,
                    log_term=last_term,
                    context=ctx,
                )
            )

    def poll(self, pid: int, t: MessageType, granted: bool) -> VoteResult:
        self.votes.setdefault(pid, granted)
        return self.conf.vote_result(self.votes)

    # ------------------------------------------------------------ leader

    def append_entry(self, es: Sequence[Entry]) -> bool:
        li = self.log.last_index()
        ents = [
            Entry(term=self.term, index=li + 1 + i, type=e.type, data=e.data)
            for i, e in enumerate(es)
        ]
        size = sum(len(e.data) for e in ents)
        limit = self.cfg.max_uncommitted_entries_size
        if (
            limit
            and self.uncommitted_size > 0
            and size > 0
            and self.uncommitted_size + size > limit
        ):
            return False
        self.uncommitted_size += size
        self.log.append(ents)
        return True

    def maybe_commit(self) -> bool:
        def acked(pid: int) -> int | None:
            pr = self.prs.get(pid)
            return None if pr is None else pr.match

        mci = self.conf.committed_index(acked)
        return self.log.maybe_commit(mci, self.term)

    def committed_entry_in_current_term(self) -> bool:
        return self.log.term(self.log.committed) == self.term

    def send_append(self, to: int) -> None:
        self.maybe_send_append(to, True)

    def maybe_send_append(self, to: int, send_if_empty: bool) -> bool:
        pr = self.prs[to]
        if pr.is_paused():
            return False
        prev_index = pr.next - 1
        prev_term = self.log.term(prev_index)
        ents: list[Entry] | None = None
        if prev_term is not None:
            try:
                ents = self.log.entries_from(pr.next, self.cfg.max_size_per_msg)
            except ErrCompacted:
                ents = None
        if prev_term is None or ents is None:
            return self.maybe_send_snapshot(to, pr)
        if not ents and not send_if_empty:
            return False
        self.send(
            Message(
                type=MT.MsgApp,
                to=to,
                index=prev_index,
                log_term=prev_term,
                entries=tuple(ents),
                commit=self.log.committed,
            )
        )
        pr.update_on_entries_send(len(ents), ents[-1].index if ents else prev_index)
        return True

    def maybe_send_snapshot(self, to: int, pr: Progress) -> bool:
        if not pr.recent_active:
            return False
        snap = self.log.unstable.snapshot or self.storage.snapshot()
        if snap.is_empty():
            return False
        self.send(Message(type=MT.MsgSnap, to=to, snapshot=snap))
        pr.become_snapshot(snap.metadata.index)
        return True

    def bcast_append(self) -> None:
        for pid in sorted(self.prs):
            if pid != self.id:
                self.send_append(pid)

    def bcast_heartbeat(self, ctx: bytes = b"") -> None:
        for pid in sorted(self.prs):
            if pid == self.id:
                continue
            commit = min(self.prs[pid].match, self.log.committed)
            self.send(Message(type=MT.MsgHeartbeat, to=pid, commit=commit, context=ctx))

    def quorum_active(self) -> bool:
        votes = {pid: pr.recent_active or pid == self.id for pid, pr in self.prs.items()}
        return self.conf.vote_result(votes) is VoteResult.VoteWon

    def on_persisted(self, index: int, term: int) -> None:
        """The leader's own acknowledgement, once its entries are durable."""
        if self.state is not StateType.Leader:
            pr = self.prs.get(self.id)
            if pr is not None and self.log.term(index) == term:
                pr.maybe_update(index)
            return
        pr = self.prs.get(self.id)
        if pr is None or self.log.term(index) != term:
            return
        if pr.maybe_update(index) and self.maybe_commit():
            self.release_pending_read_index_messages()
            self.bcast_append()

    def step_leader(self, m: Message) -> None:
        t = m.type
        if t is MT.MsgBeat:
            self.bcast_heartbeat(self.read_only.last_pending_ctx() or b"")
            return
        if t is MT.MsgCheckQuorum:
            if not self.quorum_active():
                self.become_follower(self.term, NONE)
            for pid, peer in self.prs.items():
                if pid != self.id:
                    peer.recent_active = False
            return
        if t is MT.MsgProp:
            self.leader_propose(m)
            return
        if t is MT.MsgReadIndex:
            self.leader_read_index(m)
            return
        pr = self.prs.get(m.from_)
        if pr is None:
            self.dropped += 1
            return
        if t is MT.MsgAppResp:
            self.leader_app_resp(m, pr)
        elif t is MT.MsgHeartbeatResp:
            pr.recent_active = True
            pr.msg_app_flow_paused = False
            if pr.match < self.log.last_index() or pr.state is ProgressState.Probe:
                self.send_append(m.from_)
            if self.cfg.read_only_option is not ReadOnlyOption.ReadOnlySafe or not m.context:
                return
            acks = self.read_only.recv_ack(m.from_, m.context)
            if acks is None:
                return
            votes = {pid: True for pid in acks | {self.id}}
            if self.conf.vote_result(votes) is not VoteResult.VoteWon:
                return
            for idx, req in self.read_only.advance(m.context):
                self.respond_read_index(req, idx)
        elif t is MT.MsgSnapStatus:
            if pr.state is not ProgressState.Snapshot:
                return
            if m.reject:
                pr.pending_snapshot = 0
            pr.become_probe()
            # Wait for a heartbeat response or MsgAppResp before probing again.
            pr.msg_app_flow_paused = True
        elif t is MT.MsgUnreachable:
            if pr.state is ProgressState.Replicate:
                pr.become_probe()
        elif t is MT.MsgTransferLeader:
            self.leader_transfer(m, pr)
        else:
            self.dropped += 1

    def leader_propose(self, m: Message) -> None:
        local = m.from_ == self.id
        if not m.entries:
            raise RaftInvariantError("PROPOSAL-EMPTY", "stepped empty MsgProp")
        if self.id not in self.prs:
            self._drop_proposal(local, "this node was removed from the configuration")
            return
        if self.lead_transferee != NONE:
            self._drop_proposal(local, f"leader transfer to {self.lead_transferee} is in progress")
            return
        ents = list(m.entries)
        for i, e in enumerate(ents):
            if e.type is EntryType.EntryNormal:
                continue
            already_pending = self.pending_conf_index > self.log.applied
            if already_pending:
                if local:
                    raise ProposalDropped(
                        f"a conf change is already pending at index {self.pending_conf_index} "
                        f"(applied {self.log.applied})"
                    )
                ents[i] = Entry(term=0, index=0)
            else:
                self.pending_conf_index = self.log.last_index() + i + 1
        if not self.append_entry(ents):
            self._drop_proposal(local, "too many uncommitted entries")
            return
        self.bcast_append()

    def _drop_proposal(self, local: bool, why: str) -> None:
        if local:
            raise ProposalDropped(why)
        self.dropped += 1

    def leader_app_resp(self, m: Message, pr: Progress) -> None:
        pr.recent_active = True
        if m.reject:
            next_probe = m.reject_hint
            if m.log_term > 0:
                next_probe, _ = self.log.find_conflict_by_term(m.reject_hint, m.log_term)
            if pr.maybe_decr_to(m.index, next_probe):
                if pr.state is ProgressState.Replicate:
                    pr.become_probe()
                self.send_append(m.from_)
            return
        old_paused = pr.is_paused()
        if pr.maybe_update(m.index) or (pr.match == m.index and pr.state is ProgressState.Probe):
            if pr.state is ProgressState.Probe:
                pr.become_replicate()
            elif pr.state is ProgressState.Snapshot and pr.match + 1 >= self.log.first_index():
                pr.become_probe()
                pr.become_replicate()
            elif pr.state is ProgressState.Replicate:
                pr.free_le(m.index)
            if self.maybe_commit():
                self.release_pending_read_index_messages()
                self.bcast_append()
            elif old_paused:
                self.send_append(m.from_)
            while self.maybe_send_append(m.from_, False):
                pass
            if m.from_ == self.lead_transferee and pr.match == self.log.last_index():
                self.send(Message(type=MT.MsgTimeoutNow, to=m.from_))

    def leader_transfer(self, m: Message, pr: Progress) -> None:
        if pr.is_learner:
            return
        transferee = m.from_
        if self.lead_transferee != NONE:
            if self.lead_transferee == transferee:
                return
            self.abort_leader_transfer()
        if transferee == self.id:
            return
        self.election_elapsed = 0
        self.lead_transferee = transferee
        if pr.match == self.log.last_index():
            self.send(Message(type=MT.MsgTimeoutNow, to=transferee))
        else:
            self.send_append(transferee)

    # ----------------------------------------------------------- reads

    def leader_read_index(self, m: Message) -> None:
        if len(self.conf.incoming) == 1 and not self.conf.outgoing:
            self.respond_read_index(m, self.log.committed)
            return
        if not self.committed_entry_in_current_term():
            # Reject until the leader has committed an entry of its term.
            self.pending_read_index_messages.append(m)
            return
        self.send_read_index(m)

    def send_read_index(self, m: Message) -> None:
        if self.cfg.read_only_option is ReadOnlyOption.ReadOnlySafe:
            self.read_only.add_request(self.log.committed, m)
            self.bcast_heartbeat(m.entries[0].data)
        else:
            self.respond_read_index(m, self.log.committed)

    def respond_read_index(self, req: Message, index: int) -> None:
        ctx = req.entries[0].data
        if req.from_ == NONE or req.from_ == self.id:
            self.read_states.append(ReadState(index=index, request_ctx=ctx))
        else:
            self.send(
                Message(type=MT.MsgReadIndexResp, to=req.from_, index=index, entries=req.entries)
            )

    def release_pending_read_index_messages(self) -> None:
        if not self.pending_read_index_messages or not self.committed_entry_in_current_term():
            return
        pending, self.pending_read_index_messages = self.pending_read_index_messages, []
        for m in pending:
            self.send_read_index(m)

    # --------------------------------------------------- candidate / follower

    def step_candidate(self, m: Message) -> None:
        my_resp = MT.MsgPreVoteResp if self.state is StateType.PreCandidate else MT.MsgVoteResp
        t = m.type
        if t is MT.MsgProp:
            self._drop_proposal(m.from_ == self.id, "no leader (campaigning)")
        elif t is MT.MsgApp:
            self.become_follower(m.term, m.from_)
            self.handle_append(m)
        elif t is MT.MsgHeartbeat:
            self.become_follower(m.term, m.from_)
            self.handle_heartbeat(m)
        elif t is MT.MsgSnap:
            self.become_follower(m.term, m.from_)
            self.handle_snapshot(m)
        elif t is my_resp:
            res = self.poll(m.from_, t, not m.reject)
            if res is VoteResult.VoteWon:
                if self.state is StateType.PreCandidate:
                    self.campaign(CAMPAIGN_ELECTION)
                else:
                    self.become_leader()
                    self.bcast_append()
            elif res is VoteResult.VoteLost:
                # A pre-vote rejection at a higher term already made us follow.
                self.become_follower(self.term, NONE)
        elif t is MT.MsgTimeoutNow:
            pass
        elif t is MT.MsgReadIndex:
            self._drop_read(m)
        else:
            self.dropped += 1

    def _drop_read(self, m: Message) -> None:
        # A local read with no leader cannot be served; etcd drops it too.
        self.dropped += 1

    def step_follower(self, m: Message) -> None:
        t = m.type
        if t is MT.MsgProp:
            local = m.from_ == self.id
            if self.lead == NONE:
                self._drop_proposal(local, "no leader known")
                return
            if self.cfg.disable_proposal_forwarding:
                self._drop_proposal(local, "proposal forwarding is disabled")
                return
            self.send(_with(m, to=self.lead))
        elif t is MT.MsgApp:
            self.election_elapsed = 0
            self.lead = m.from_
            self.handle_append(m)
        elif t is MT.MsgHeartbeat:
            self.election_elapsed = 0
            self.lead = m.from_
            self.handle_heartbeat(m)
        elif t is MT.MsgSnap:
            self.election_elapsed = 0
            self.lead = m.from_
            self.handle_snapshot(m)
        elif t is MT.MsgTransferLeader:
            if self.lead == NONE:
                self.dropped += 1
                return
            self.send(_with(m, to=self.lead))
        elif t is MT.MsgTimeoutNow:
            # Leader transfer: campaign at once, even inside the lease.
            self.hup(CAMPAIGN_TRANSFER)
        elif t is MT.MsgReadIndex:
            if self.lead == NONE:
                self._drop_read(m)
                return
            self.send(_with(m, to=self.lead))
        elif t is MT.MsgReadIndexResp:
            if len(m.entries) != 1:
                self.dropped += 1
                return
            self.read_states.append(ReadState(index=m.index, request_ctx=m.entries[0].data))
        else:
            self.dropped += 1

    def handle_append(self, m: Message) -> None:
        if m.index < self.log.committed:
            self.send(Message(type=MT.MsgAppResp, to=m.from_, index=self.log.committed))
            return
        mlast = self.log.maybe_append(m.index, m.log_term, m.commit, m.entries)
        if mlast is not None:
            self.send(Message(type=MT.MsgAppResp, to=m.from_, index=mlast))
            return
        hint_index = min(m.index, self.log.last_index())
        hint_index, hint_term = self.log.find_conflict_by_term(hint_index, m.log_term)
        self.send(
            Message(
                type=MT.MsgAppResp,
                to=m.from_,
                index=m.index,
                reject=True,
                reject_hint=hint_index,
                log_term=hint_term,
            )
        )

    def handle_heartbeat(self, m: Message) -> None:
        # The leader never sends a commit beyond what it knows we have.
        self.log.commit_to(min(m.commit, self.log.last_index()))
        self.send(Message(type=MT.MsgHeartbeatResp, to=m.from_, context=m.context))

    def handle_snapshot(self, m: Message) -> None:
        snap = m.snapshot
        if snap is None or snap.is_empty():
            self.dropped += 1
            return
        if self.restore(snap):
            self.send(Message(type=MT.MsgAppResp, to=m.from_, index=self.log.last_index()))
        else:
            self.send(Message(type=MT.MsgAppResp, to=m.from_, index=self.log.committed))

    def restore(self, snap: Snapshot) -> bool:
        md = snap.metadata
        if md.index <= self.log.committed:
            return False
        if self.state is not StateType.Follower:
            # Defensive, as etcd: only a follower restores.
            self.become_follower(self.term + 1, NONE)
            return False
        cs = md.conf_state
        if self.id not in set(cs.voters) | set(cs.learners) | set(cs.voters_outgoing):
            # A snapshot that does not include us: ignore, as etcd does.
            self.dropped += 1
            return False
        if self.log.match_term(md.index, md.term):
            # We already have the snapshot's entries: fast-forward commit only.
            self.log.commit_to(md.index)
            return False
        self.log.restore(snap)
        self.prs = {}
        self.apply_conf_state(cs)
        own = self.prs.get(self.id)
        if own is not None:
            own.maybe_update(own.next - 1)
        return True

    # --------------------------------------------------------- snapshots

    def report_snapshot(self, to: int, status: SnapshotStatus) -> None:
        self.step(
            Message(
                type=MT.MsgSnapStatus,
                from_=to,
                reject=status is SnapshotStatus.Failure,
            )
        )


def _with(m: Message, **changes: Any) -> Message:
    return evolve(m, **changes)


__all__ = ["LOCAL_MESSAGES", "Raft"]
