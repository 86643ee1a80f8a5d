"""One test per rule of the Raft paper, sections 5.1-5.4 (after etcd's raft_paper_test.go).

Each test names the section it checks. Nodes are driven directly (step/tick/
ready/advance) so that each rule is observed in isolation.
"""

from __future__ import annotations

import random

import pytest

from kubeproof.raft import (
    Entry,
    HardState,
    MemoryStorage,
    Message,
    MessageType,
    ProposalDropped,
    RaftConfig,
    RaftNode,
    StateType,
)
from tests.raft_helpers import Network, new_node, persist, storage_with

MT = MessageType


def become_leader(node: RaftNode) -> None:
    """Make a node leader of its cluster by feeding it granted votes."""
    node.campaign()
    persist(node)
    for peer in node.raft.prs:
        if peer != node.id and node.state is not StateType.Leader:
            node.step(Message(type=MT.MsgVoteResp, to=node.id, from_=peer, term=node.term))
    assert node.state is StateType.Leader
    persist(node)


# ---------------------------------------------------------------- §5.1


@pytest.mark.parametrize("role", ["follower", "candidate", "leader"])
def test_update_term_from_message(role: str) -> None:
    """§5.1: a server that sees a larger term adopts it and reverts to follower."""
    n = new_node(1, [1, 2, 3])
    if role == "candidate":
        n.campaign()
    elif role == "leader":
        become_leader(n)
    n.step(Message(type=MT.MsgApp, to=1, from_=2, term=5))
    assert n.term == 5
    assert n.state is StateType.Follower
    assert n.lead == 2


def test_reject_stale_term_message() -> None:
    """§5.1: a request with a stale term is not processed (etcd ignores it)."""
    n = new_node(1, [1, 2, 3], storage=storage_with([], term=2))
    n.step(Message(type=MT.MsgApp, to=1, from_=2, term=1, entries=(Entry(1, 1),)))
    assert n.term == 2
    assert n.last_index() == 0
    assert n.lead == 0


# ---------------------------------------------------------------- §5.2


def test_start_as_follower() -> None:
    """§5.2: servers start as followers."""
    assert new_node(1, [1, 2, 3]).state is StateType.Follower


def test_leader_bcast_beat() -> None:
    """§5.2: the leader sends heartbeats (no entries) to every follower each heartbeat tick."""
    n = new_node(1, [1, 2, 3], heartbeat=1)
    become_leader(n)
    # Acknowledge the empty entry so that heartbeats are the only traffic.
    for peer in (2, 3):
        n.step(Message(type=MT.MsgAppResp, to=1, from_=peer, term=n.term, index=n.last_index()))
    persist(n)
    n.tick()
    msgs = persist(n)
    beats = sorted((m.to, m.type) for m in msgs)
    assert beats == [(2, MT.MsgHeartbeat), (3, MT.MsgHeartbeat)]
    assert all(not m.entries for m in msgs)


@pytest.mark.parametrize("role", ["follower", "candidate"])
def test_start_election_on_timeout(role: str) -> None:
    """§5.2: on election timeout a server increments its term, votes for itself,
    becomes candidate and sends RequestVote (MsgVote) to every other server."""
    n = new_node(1, [1, 2, 3], election=10)
    if role == "candidate":
        n.campaign()
        persist(n)
    term0 = n.term
    for _ in range(2 * 10):
        n.tick()
        if n.term > term0:
            break
    assert n.term == term0 + 1
    assert n.state is StateType.Candidate
    assert n.vote == 1
    rd = n.ready()
    assert rd.hard_state is not None and rd.hard_state.vote == 1 and rd.must_sync
    votes = sorted((m.to, m.type, m.term) for m in rd.messages)
    assert votes == [(2, MT.MsgVote, term0 + 1), (3, MT.MsgVote, term0 + 1)]


@pytest.mark.parametrize(
    ("size", "votes", "want"),
    [
        (1, {}, StateType.Leader),
        (3, {2: True, 3: True}, StateType.Leader),
        (3, {2: True}, StateType.Leader),
        (5, {2: True, 3: True, 4: True, 5: True}, StateType.Leader),
        (5, {2: True, 3: True, 4: True}, StateType.Leader),
        (5, {2: True, 3: True}, StateType.Leader),
        (3, {2: False, 3: False}, StateType.Follower),
        (5, {2: False, 3: False, 4: False, 5: False}, StateType.Follower),
        (5, {2: True, 3: False, 4: False, 5: False}, StateType.Follower),
        (3, {}, StateType.Candidate),
        (5, {2: True}, StateType.Candidate),
        (5, {2: False, 3: False}, StateType.Candidate),
    ],
)
def test_leader_election_in_one_round(size: int, votes: dict[int, bool], want: StateType) -> None:
    """§5.2: a candidate wins with a majority, loses on a majority of rejections,
    and otherwise stays candidate."""
    n = new_node(1, list(range(1, size + 1)))
    n.campaign()
    persist(n)
    for peer, granted in votes.items():
        n.step(Message(type=MT.MsgVoteResp, to=1, from_=peer, term=n.term, reject=not granted))
    assert n.state is want
    assert n.term == 1


@pytest.mark.parametrize(
    ("vote", "candidate", "reject"),
    [(0, 2, False), (0, 3, False), (2, 2, False), (3, 3, False), (2, 3, True), (3, 2, True)],
)
def test_follower_vote(vote: int, candidate: int, reject: bool) -> None:
    """§5.2: at most one vote per term, first come first served; re-voting the same is fine."""
    n = new_node(1, [1, 2, 3], storage=storage_with([], term=1, vote=vote))
    n.step(Message(type=MT.MsgVote, to=1, from_=candidate, term=1))
    msgs = persist(n)
    assert [(m.to, m.type, m.reject) for m in msgs] == [(candidate, MT.MsgVoteResp, reject)]
    assert n.vote == (vote or candidate)


def test_candidate_fallback() -> None:
    """§5.2: a candidate that gets AppendEntries from a leader of its term or later steps down."""
    for term_delta in (0, 1):
        n = new_node(1, [1, 2, 3])
        n.campaign()
        t = n.term + term_delta
        n.step(Message(type=MT.MsgApp, to=1, from_=2, term=t))
        assert n.state is StateType.Follower
        assert n.term == t


@pytest.mark.parametrize("role", ["follower", "candidate"])
def test_election_timeout_randomized(role: str) -> None:
    """§5.2: every timeout in [et, 2et) occurs; none outside it."""
    et = 10
    seen: set[int] = set()
    n = new_node(1, [1, 2, 3], election=et, seed=7)
    for _ in range(300):
        if role == "candidate":
            n.campaign()
        else:
            n.step(Message(type=MT.MsgApp, to=1, from_=2, term=n.term + 1))
        persist(n)
        term0 = n.term
        ticks = 0
        while n.term == term0:
            n.tick()
            ticks += 1
            assert ticks < 2 * et + 1
        seen.add(ticks)
    assert seen == set(range(et, 2 * et))


def test_election_timeout_from_injected_rng() -> None:
    """Timeouts come from the injected RNG: same seed, same timeouts."""

    def timeouts(seed: int) -> list[int]:
        n = RaftNode(RaftConfig(id=1, voters=(1, 2, 3)), MemoryStorage(), random.Random(seed))
        out = []
        for _ in range(20):
            n.campaign()
            out.append(n.raft.randomized_election_timeout)
        return out

    assert timeouts(3) == timeouts(3)
    assert timeouts(3) != timeouts(4)


# ---------------------------------------------------------------- §5.3


def test_leader_start_replication() -> None:
    """§5.3: a proposal is appended to the leader's log and sent to every follower
    with the preceding entry's index and term."""
    n = new_node(1, [1, 2, 3])
    become_leader(n)
    for peer in (2, 3):
        n.step(Message(type=MT.MsgAppResp, to=1, from_=peer, term=n.term, index=n.last_index()))
    persist(n)
    li = n.last_index()
    n.propose(b"some data")
    rd = n.ready()
    assert rd.entries == (Entry(term=1, index=li + 1, data=b"some data"),)
    apps = sorted((m.to, m.index, m.log_term, m.entries) for m in rd.messages)
    want = (Entry(term=1, index=li + 1, data=b"some data"),)
    assert apps == [(2, li, 1, want), (3, li, 1, want)]


def test_leader_commit_entry_and_carries_commit() -> None:
    """§5.3: once replicated on a majority the entry commits and is applied; the
    leader carries the new commit index in later AppendEntries."""
    net = Network.of(3)
    net.campaign(1)
    leader = net.nodes[1]
    leader.propose(b"x")
    net.stabilize()
    assert leader.commit == 2
    assert [e.data for e in net.applied[1]] == [b"", b"x"]
    assert all(n.commit == 2 for n in net.nodes.values())


@pytest.mark.parametrize(
    ("size", "acks", "committed"),
    [
        (1, set(), True),
        (3, set(), False),
        (3, {2}, True),
        (3, {2, 3}, True),
        (5, set(), False),
        (5, {2}, False),
        (5, {2, 3}, True),
        (5, {2, 3, 4, 5}, True),
    ],
)
def test_leader_acknowledge_commit(size: int, acks: set[int], committed: bool) -> None:
    """§5.3: an entry is committed once the leader has replicated it on a majority
    (its own copy counts once persisted)."""
    n = new_node(1, list(range(1, size + 1)))
    become_leader(n)
    li = n.last_index()
    n.propose(b"some data")
    persist(n)
    for peer in acks:
        n.step(Message(type=MT.MsgAppResp, to=1, from_=peer, term=n.term, index=li + 1))
    assert (n.commit > li) is committed


def test_leader_commit_preceding_entries() -> None:
    """§5.3: committing an entry commits all preceding ones, including earlier leaders'."""
    st = storage_with([(2, 1), (2, 2)], term=2)
    n = new_node(1, [1, 2, 3], storage=st)
    become_leader(n)  # term 3, empty entry at 3
    n.propose(b"d")
    persist(n)
    n.step(Message(type=MT.MsgAppResp, to=1, from_=2, term=3, index=4))
    assert n.commit == 4
    rd = n.ready()
    assert [e.index for e in rd.committed_entries] == [1, 2, 3, 4]


def test_follower_commit_entry() -> None:
    """§5.3: a follower that learns an entry is committed applies it and all before it, in order."""
    n = new_node(1, [1, 2, 3])
    ents = (Entry(1, 1, data=b"a"), Entry(1, 2, data=b"b"))
    n.step(Message(type=MT.MsgApp, to=1, from_=2, term=1, entries=ents, commit=1))
    rd = n.ready()
    # Entries must be durable before they are applied: not yet in this Ready.
    assert rd.committed_entries == ()
    persist(n)
    assert [e.data for e in n.ready().committed_entries] == [b"a"]
    persist(n)
    n.step(Message(type=MT.MsgHeartbeat, to=1, from_=2, term=1, commit=2))
    assert [e.data for e in n.ready().committed_entries] == [b"b"]


@pytest.mark.parametrize(
    ("log_term", "index", "reject", "want_index", "hint"),
    [
        (0, 0, False, 0, 0),  # match the dummy entry
        (1, 1, False, 1, 0),
        (2, 2, False, 2, 0),
        (1, 2, True, 2, 1),  # term mismatch at 2: hint (1, 1)
        (3, 3, True, 3, 2),  # beyond the log: hint is our last index
    ],
)
def test_follower_check_msg_app(
    log_term: int, index: int, reject: bool, want_index: int, hint: int
) -> None:
    """§5.3: a follower rejects AppendEntries whose (prevIndex, prevTerm) it lacks,
    with a hint for fast backtracking."""
    n = new_node(1, [1, 2, 3], storage=storage_with([(1, 1), (2, 2)], term=2))
    n.step(Message(type=MT.MsgApp, to=1, from_=2, term=2, log_term=log_term, index=index))
    msgs = persist(n)
    assert len(msgs) == 1
    m = msgs[0]
    assert (m.type, m.reject, m.index) == (MT.MsgAppResp, reject, want_index)
    if reject:
        assert m.reject_hint == hint


@pytest.mark.parametrize(
    ("index", "term", "ents", "want"),
    [
        (2, 2, [(3, 3)], [(1, 1), (2, 2), (3, 3)]),
        (1, 1, [(2, 3), (3, 4)], [(1, 1), (2, 3), (3, 4)]),
        (0, 0, [(1, 1)], [(1, 1), (2, 2)]),  # stale, non-conflicting: no truncation
        (0, 0, [(1, 3)], [(1, 3)]),
    ],
)
def test_follower_append_entries(
    index: int, term: int, ents: list[tuple[int, int]], want: list[tuple[int, int]]
) -> None:
    """§5.3: delete a conflicting entry and all after it, append new ones; never
    truncate on a stale append that does not conflict.  Pairs are (index, term)."""
    n = new_node(1, [1, 2, 3], storage=storage_with([(1, 1), (2, 2)], term=2))
    entries = tuple(Entry(term=t, index=i) for i, t in ents)
    n.step(
        Message(type=MT.MsgApp, to=1, from_=2, term=3, log_term=term, index=index, entries=entries)
    )
    persist(n)
    got = [(e.term, e.index) for e in n.entries(1, n.last_index() + 1)]
    assert got == [(t, i) for i, t in want]
    assert [(e.term, e.index) for e in n.storage.all_entries()] == [(t, i) for i, t in want]


FIG7_LEADER = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6]
FIG7_FOLLOWERS = {
    "a": [1, 1, 1, 4, 4, 5, 5, 6, 6],
    "b": [1, 1, 1, 4],
    "c": [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
    "d": [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
    "e": [1, 1, 1, 4, 4, 4, 4],
    "f": [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
}


@pytest.mark.parametrize("case", sorted(FIG7_FOLLOWERS))
def test_leader_sync_follower_log(case: str) -> None:
    """§5.3, Figure 7: the leader brings any follower's log into consistency with its own."""
    lead_st = storage_with([(t, i + 1) for i, t in enumerate(FIG7_LEADER)], term=8)
    lead_st.set_hard_state(HardState(term=8, commit=len(FIG7_LEADER)))
    fol = FIG7_FOLLOWERS[case]
    fol_st = storage_with([(t, i + 1) for i, t in enumerate(fol)], term=7)
    other_st = MemoryStorage()
    nodes = {
        1: new_node(1, [1, 2, 3], storage=lead_st),
        2: new_node(2, [1, 2, 3], storage=fol_st),
        3: new_node(3, [1, 2, 3], storage=other_st),
    }
    net = Network(nodes)
    # Node 3 (empty log) grants the vote; node 2 might refuse, that's fine.
    net.campaign(1)
    assert nodes[1].state is StateType.Leader
    nodes[1].propose(b"")
    net.stabilize()
    lead = nodes[1]
    want = [(e.term, e.index) for e in lead.entries(1, lead.last_index() + 1)]
    got = [(e.term, e.index) for e in nodes[2].entries(1, nodes[2].last_index() + 1)]
    assert got == want


# ---------------------------------------------------------------- §5.4


def test_vote_request_carries_last_log() -> None:
    """§5.4.1: RequestVote carries the candidate's last log index and term, to all peers."""
    n = new_node(1, [1, 2, 3], storage=storage_with([(1, 1), (2, 2)], term=2))
    n.campaign()
    msgs = persist(n)
    assert sorted((m.to, m.index, m.log_term, m.term) for m in msgs) == [
        (2, 2, 2, 3),
        (3, 2, 2, 3),
    ]


@pytest.mark.parametrize(
    ("ents", "log_term", "index", "reject"),
    [
        ([(1, 1)], 1, 1, False),  # same log
        ([(1, 1)], 1, 2, False),  # longer candidate log
        ([(1, 1), (1, 2)], 1, 1, True),  # shorter candidate log
        ([(1, 1)], 2, 1, False),  # higher last term
        ([(1, 1)], 2, 2, False),
        ([(2, 1)], 1, 1, True),  # lower last term
        ([(2, 1)], 1, 2, True),
    ],
)
def test_voter_up_to_date_check(
    ents: list[tuple[int, int]], log_term: int, index: int, reject: bool
) -> None:
    """§5.4.1: a voter denies its vote if its own log is more up to date."""
    st = storage_with([(t, i) for t, i in ents], term=2)
    n = new_node(1, [1, 2, 3], storage=st)
    n.step(Message(type=MT.MsgVote, to=1, from_=2, term=3, log_term=log_term, index=index))
    msgs = persist(n)
    assert [(m.type, m.reject) for m in msgs] == [(MT.MsgVoteResp, reject)]


def test_leader_only_commits_log_from_current_term() -> None:
    """§5.4.2, Figure 8: a leader commits an earlier term's entry only by committing
    an entry of its own term after it, never by counting replicas."""
    st = storage_with([(1, 1), (2, 2)], term=2)
    n = new_node(1, [1, 2, 3], storage=st)
    become_leader(n)  # term 3, empty entry at index 3, not yet acked by anyone
    # A follower acknowledges index 2 (an entry of term 2): a majority has it,
    # but it is not of the current term, so nothing commits.
    n.step(Message(type=MT.MsgAppResp, to=1, from_=2, term=3, index=2))
    assert n.commit == 0
    # Once the current term's entry is on a majority, everything up to it commits.
    n.step(Message(type=MT.MsgAppResp, to=1, from_=2, term=3, index=3))
    assert n.commit == 3


# ------------------------------------------------- persistence and proposals


def test_vote_persisted_before_response_is_sent() -> None:
    """The granted vote is in the same Ready's hard state, with must_sync, as the response."""
    n = new_node(1, [1, 2, 3])
    n.step(Message(type=MT.MsgVote, to=1, from_=2, term=1))
    rd = n.ready()
    assert rd.hard_state == HardState(term=1, vote=2, commit=0)
    assert rd.must_sync
    assert [m.type for m in rd.messages] == [MT.MsgVoteResp]


def test_ready_is_idempotent_until_advance() -> None:
    n = new_node(1, [1, 2, 3])
    n.campaign()
    assert n.ready() == n.ready()
    persist(n)
    assert not n.has_ready()


def test_restart_keeps_term_vote_and_log() -> None:
    """A node built on a storage that holds state resumes from it."""
    net = Network.of(3)
    net.campaign(1)
    net.nodes[1].propose(b"p")
    net.stabilize()
    old = net.nodes[2]
    reborn = RaftNode(RaftConfig(id=2, voters=(1, 2, 3)), old.storage, random.Random(9))
    assert (reborn.term, reborn.vote, reborn.commit) == (old.term, old.vote, old.commit)
    assert reborn.entries(1, reborn.last_index() + 1) == old.entries(1, old.last_index() + 1)
    assert reborn.state is StateType.Follower
    # Entries up to cfg.applied are not delivered again.
    skip = RaftNode(RaftConfig(id=2, voters=(1, 2, 3), applied=2), old.storage, random.Random(9))
    assert skip.ready().committed_entries == ()


def test_restart_never_votes_twice_in_a_term() -> None:
    n = new_node(1, [1, 2, 3])
    n.step(Message(type=MT.MsgVote, to=1, from_=2, term=1))
    persist(n)
    again = RaftNode(RaftConfig(id=1, voters=(1, 2, 3)), n.storage, random.Random(1))
    again.step(Message(type=MT.MsgVote, to=1, from_=3, term=1))
    assert [m.reject for m in persist(again)] == [True]


def test_proposal_on_follower_is_forwarded_or_refused() -> None:
    n = new_node(2, [1, 2, 3])
    with pytest.raises(ProposalDropped):
        n.propose(b"x")  # no leader known
    n.step(Message(type=MT.MsgHeartbeat, to=2, from_=1, term=1))
    persist(n)
    n.propose(b"x")
    msgs = persist(n)
    assert [(m.type, m.to, m.entries[0].data) for m in msgs] == [(MT.MsgProp, 1, b"x")]


def test_proposal_on_candidate_is_refused() -> None:
    n = new_node(1, [1, 2, 3])
    n.campaign()
    with pytest.raises(ProposalDropped):
        n.propose(b"x")


def test_heartbeat_carries_commit() -> None:
    net = Network.of(3)
    net.campaign(1)
    net.nodes[1].propose(b"x")
    net.stabilize()
    lead = net.nodes[1]
    lead.tick()
    beats = [m for m in persist(lead) if m.type is MT.MsgHeartbeat]
    assert beats and all(m.commit == lead.commit for m in beats)


def test_nonsense_peer_messages_are_dropped_and_counted() -> None:
    n = new_node(1, [1, 2, 3])
    n.step(Message(type=MT.MsgHup, to=1, from_=2))  # local-only type from a peer
    n.step(Message(type=MT.MsgApp, to=9, from_=2, term=1))  # not for us
    assert n.dropped == 2
    assert n.state is StateType.Follower and n.term == 0


def test_fast_backtracking_uses_reject_hint() -> None:
    """A follower with a long divergent tail is repaired in few round trips (etcd's
    findConflictByTerm), not one index per round trip."""
    lead_st = storage_with([(1, i) for i in range(1, 4)] + [(5, i) for i in range(4, 40)], term=5)
    fol_st = storage_with([(1, i) for i in range(1, 4)] + [(3, i) for i in range(4, 60)], term=4)
    nodes = {
        1: new_node(1, [1, 2, 3], storage=lead_st),
        2: new_node(2, [1, 2, 3], storage=fol_st),
        3: new_node(3, [1, 2, 3], storage=MemoryStorage()),
    }
    net = Network(nodes)
    rejects = 0

    def count(m: Message) -> bool:
        nonlocal rejects
        if m.type is MT.MsgAppResp and m.reject and m.from_ == 2:
            rejects += 1
        return True

    net.hook = count
    net.campaign(1)
    assert nodes[1].state is StateType.Leader
    lead, fol = nodes[1], nodes[2]
    assert fol.entries(1, fol.last_index() + 1) == lead.entries(1, lead.last_index() + 1)
    assert rejects <= 3
