"""etcd raft's extensions beyond the paper's core: PreVote, CheckQuorum, leader
transfer, ReadIndex, membership changes, snapshots, flow control.

Each test states the etcd behaviour it pins (etcd-io/raft v3.6 semantics).
"""

from __future__ import annotations

import random

import pytest

from kubeproof.raft import (
    ConfChangeSingle,
    ConfChangeTransition,
    ConfChangeType,
    ConfChangeV2,
    ConfState,
    EntryType,
    MemoryStorage,
    Message,
    MessageType,
    ProposalDropped,
    RaftConfig,
    RaftNode,
    ReadOnlyOption,
    SnapshotStatus,
    StateType,
    apply_conf_change_v2,
    decode_conf_change,
    encode_conf_change,
)
from tests.raft_helpers import Network, new_node, persist

MT = MessageType


def tick_all(net: Network, n: int) -> None:
    for _ in range(n):
        for node in net.nodes.values():
            node.tick()
        net.stabilize()


def apply_conf_changes(net: Network) -> None:
    """Apply committed conf change entries on every node, as an application would."""
    for nid, node in net.nodes.items():
        for e in net.applied[nid]:
            if e.type is EntryType.EntryConfChangeV2 and e.index not in _applied_cc[id(net), nid]:
                _applied_cc[id(net), nid].add(e.index)
                cs = node.apply_conf_change(decode_conf_change(e))
                node.storage.set_conf_state(cs)


_applied_cc: dict[tuple[int, int], set[int]] = {}


def cc_net(net: Network) -> Network:
    for nid in net.nodes:
        _applied_cc[id(net), nid] = set()
    return net


# ------------------------------------------------------------ PreVote


def test_prevote_does_not_change_terms() -> None:
    """A pre-candidate never changes anyone's term (etcd TestPreVote...)."""
    net = Network.of(3, pre_vote=True)
    net.campaign(1)
    assert net.nodes[1].state is StateType.Leader
    term = net.nodes[1].term
    # Isolate node 3; it campaigns repeatedly but only pre-votes: term stays.
    net.isolate(3)
    for _ in range(50):
        net.nodes[3].tick()
        net.stabilize()
    assert net.nodes[3].term == term
    assert net.nodes[3].state is StateType.PreCandidate
    net.recover()
    tick_all(net, 30)
    assert net.nodes[1].state is StateType.Leader
    assert net.nodes[1].term == term


def test_without_prevote_a_rejoining_node_disrupts() -> None:
    """Control for the test above: without PreVote the isolated node's term grows
    and on rejoin it deposes the leader."""
    net = Network.of(3)
    net.campaign(1)
    term = net.nodes[1].term
    net.isolate(3)
    for _ in range(50):
        net.nodes[3].tick()
        net.stabilize()
    assert net.nodes[3].term > term
    net.recover()
    tick_all(net, 30)
    assert max(n.term for n in net.nodes.values()) > term


def test_prevote_rejection_at_lower_term_answers_with_our_term() -> None:
    n = new_node(1, [1, 2, 3], pre_vote=True)
    n.step(Message(type=MT.MsgApp, to=1, from_=2, term=5))
    persist(n)
    n.step(Message(type=MT.MsgPreVote, to=1, from_=3, term=3))
    msgs = persist(n)
    assert [(m.type, m.term, m.reject) for m in msgs] == [(MT.MsgPreVoteResp, 5, True)]


# -------------------------------------------------------- CheckQuorum


def test_check_quorum_leader_steps_down_without_quorum() -> None:
    net = Network.of(3, check_quorum=True)
    net.campaign(1)
    net.isolate(1)
    for _ in range(2 * 10 + 1):
        net.nodes[1].tick()
        net.stabilize()
    assert net.nodes[1].state is StateType.Follower


def test_check_quorum_lease_ignores_vote_requests() -> None:
    """A node that heard from its leader within the election timeout ignores votes."""
    net = Network.of(3, check_quorum=True)
    net.campaign(1)
    follower = net.nodes[2]
    term = follower.term
    follower.step(Message(type=MT.MsgVote, to=2, from_=3, term=term + 1, index=99, log_term=99))
    assert follower.term == term
    assert persist(follower) == []


# ----------------------------------------------------- leader transfer


def test_leader_transfer_to_up_to_date_follower() -> None:
    net = Network.of(3)
    net.campaign(1)
    net.nodes[1].transfer_leadership(2)
    net.stabilize()
    assert net.nodes[2].state is StateType.Leader
    assert net.nodes[1].state is StateType.Follower


def test_leader_transfer_blocks_proposals_and_times_out() -> None:
    net = Network.of(3)
    net.campaign(1)
    net.isolate(3)
    lead = net.nodes[1]
    lead.transfer_leadership(3)
    net.stabilize()
    assert lead.raft.lead_transferee == 3
    with pytest.raises(ProposalDropped):
        lead.propose(b"x")
    for _ in range(10):
        lead.tick()
        net.stabilize()
    assert lead.state is StateType.Leader
    assert lead.raft.lead_transferee == 0
    lead.propose(b"x")  # accepted again


def test_leader_transfer_forwarded_by_follower_and_ignored_for_self() -> None:
    net = Network.of(3)
    net.campaign(1)
    net.nodes[2].transfer_leadership(2)  # forwarded by a follower to the leader
    net.stabilize()
    assert net.nodes[2].state is StateType.Leader
    lead = net.nodes[2]
    lead.transfer_leadership(2)  # to itself: ignored
    net.stabilize()
    assert lead.state is StateType.Leader and lead.raft.lead_transferee == 0


# ----------------------------------------------------------- ReadIndex


def test_read_index_needs_quorum_round() -> None:
    """ReadOnlySafe: a read state is released only after a quorum acknowledges a
    heartbeat carrying the read's context."""
    net = Network.of(3)
    net.campaign(1)
    net.nodes[1].propose(b"w")
    net.stabilize()
    lead = net.nodes[1]
    net.isolate(1)
    lead.read_index(b"ctx1")
    net.stabilize()
    assert net.read_states[1] == []  # no quorum confirmed leadership
    net.recover()
    lead.read_index(b"ctx2")
    net.stabilize()
    got = [(rs.index, rs.request_ctx) for rs in net.read_states[1]]
    # ctx1 is released together with ctx2 (requests are ordered), both at the commit index.
    assert got == [(lead.commit, b"ctx1"), (lead.commit, b"ctx2")]


def test_read_index_on_follower_is_forwarded_and_answered() -> None:
    net = Network.of(3)
    net.campaign(1)
    net.nodes[1].propose(b"w")
    net.stabilize()
    net.nodes[2].read_index(b"r")
    net.stabilize()
    got = [(rs.index, rs.request_ctx) for rs in net.read_states[2]]
    assert got == [(net.nodes[1].commit, b"r")]


def test_read_index_waits_for_commit_in_current_term() -> None:
    n = new_node(1, [1, 2, 3])
    n.campaign()
    persist(n)
    n.step(Message(type=MT.MsgVoteResp, to=1, from_=2, term=1))
    persist(n)
    assert n.state is StateType.Leader
    n.read_index(b"early")
    assert n.raft.pending_read_index_messages  # held until the empty entry commits


def test_lease_read_requires_check_quorum() -> None:
    with pytest.raises(ValueError, match="CheckQuorum"):
        RaftConfig(id=1, voters=(1,), read_only_option=ReadOnlyOption.ReadOnlyLeaseBased).validate()


# ---------------------------------------------------- membership changes


def add(nid: int) -> ConfChangeSingle:
    return ConfChangeSingle(type=ConfChangeType.ConfChangeAddNode, node_id=nid)


def remove(nid: int) -> ConfChangeSingle:
    return ConfChangeSingle(type=ConfChangeType.ConfChangeRemoveNode, node_id=nid)


def learner(nid: int) -> ConfChangeSingle:
    return ConfChangeSingle(type=ConfChangeType.ConfChangeAddLearnerNode, node_id=nid)


def test_conf_change_roundtrip_encoding() -> None:
    cc = ConfChangeV2(
        transition=ConfChangeTransition.JointExplicit, changes=(add(4), remove(1)), context=b"c"
    )
    assert decode_conf_change(encode_conf_change(cc)) == cc


@pytest.mark.parametrize(
    ("start", "cc", "want"),
    [
        (
            ConfState(voters=(1, 2, 3)),
            ConfChangeV2(changes=(add(4),)),
            ConfState(voters=(1, 2, 3, 4)),
        ),
        (
            ConfState(voters=(1, 2, 3)),
            ConfChangeV2(changes=(add(4), remove(1))),
            ConfState(voters=(2, 3, 4), voters_outgoing=(1, 2, 3), auto_leave=True),
        ),
        (
            ConfState(voters=(1, 2, 3)),
            ConfChangeV2(transition=ConfChangeTransition.JointExplicit, changes=(learner(3),)),
            ConfState(voters=(1, 2), voters_outgoing=(1, 2, 3), learners_next=(3,)),
        ),
        (
            ConfState(voters=(1, 2), voters_outgoing=(1, 2, 3), learners_next=(3,)),
            ConfChangeV2(),
            ConfState(voters=(1, 2), learners=(3,)),
        ),
        (
            ConfState(voters=(1, 2), learners=(3,)),
            ConfChangeV2(changes=(add(3),)),
            ConfState(voters=(1, 2, 3)),
        ),
    ],
)
def test_apply_conf_change(start: ConfState, cc: ConfChangeV2, want: ConfState) -> None:
    assert apply_conf_change_v2(start, cc) == want


def test_add_node_then_it_replicates() -> None:
    ids = [1, 2, 3]
    nodes = {i: new_node(i, ids) for i in ids}
    nodes[4] = new_node(4, [])  # empty config: learns it from the leader
    net = cc_net(Network(nodes))
    net.campaign(1)
    net.nodes[1].propose_conf_change(ConfChangeV2(changes=(add(4),)))
    net.stabilize()
    apply_conf_changes(net)
    net.nodes[1].propose(b"after")
    net.stabilize()
    apply_conf_changes(net)
    assert b"after" in [e.data for e in net.applied[4]]
    assert set(net.nodes[1].conf_state().voters) == {1, 2, 3, 4}


def test_one_pending_conf_change_at_a_time() -> None:
    net = cc_net(Network.of(3))
    net.campaign(1)
    lead = net.nodes[1]
    lead.propose_conf_change(ConfChangeV2(changes=(learner(4),)))
    with pytest.raises(ProposalDropped):
        lead.propose_conf_change(ConfChangeV2(changes=(learner(5),)))


def test_new_leader_cannot_change_config_before_committing_in_its_term() -> None:
    """etcd's guard against Ongaro's single-server bug: pending_conf_index = last index
    on election, so a change is refused until the leader's empty entry is applied."""
    n = new_node(1, [1, 2, 3])
    n.campaign()
    persist(n)
    n.step(Message(type=MT.MsgVoteResp, to=1, from_=2, term=1))
    assert n.state is StateType.Leader
    with pytest.raises(ProposalDropped):
        n.propose_conf_change(ConfChangeV2(changes=(add(4),)))


def test_remove_leader_and_joint_change() -> None:
    net = cc_net(Network.of(3))
    net.campaign(1)
    net.nodes[1].propose(b"x")
    net.stabilize()
    apply_conf_changes(net)
    net.nodes[1].propose_conf_change(ConfChangeV2(changes=(remove(1),)))
    net.stabilize()
    apply_conf_changes(net)
    assert net.nodes[1].state is StateType.Follower
    tick_all(net, 40)
    leaders = [n for n in net.nodes.values() if n.state is StateType.Leader]
    assert len(leaders) == 1 and leaders[0].id in (2, 3)


# -------------------------------------------------------------- snapshots


def test_lagging_follower_catches_up_through_snapshot() -> None:
    net = Network.of(3)
    net.campaign(1)
    net.isolate(3)
    for i in range(20):
        net.nodes[1].propose(b"%d" % i)
        net.stabilize()
    lead = net.nodes[1]
    st = lead.storage
    st.create_snapshot(lead.commit, lead.conf_state(), b"state@%d" % lead.commit)
    st.compact(lead.commit)
    net.recover()
    snaps: list[int] = []

    def watch(m: Message) -> bool:
        if m.type is MT.MsgSnap and m.snapshot is not None:
            snaps.append(m.snapshot.metadata.index)
            lead.report_snapshot(m.to, SnapshotStatus.Finish)
        return True

    net.hook = watch
    tick_all(net, 5)
    assert snaps
    fol = net.nodes[3]
    assert fol.storage.snapshot().data == b"state@%d" % snaps[0]
    assert fol.last_index() == lead.last_index()
    assert fol.commit == lead.commit


def test_restart_from_snapshot_and_tail() -> None:
    st = MemoryStorage()
    net = Network({1: RaftNode(RaftConfig(id=1, voters=(1,)), st, random.Random(1))})
    net.campaign(1)
    for i in range(5):
        net.nodes[1].propose(b"%d" % i)
        net.stabilize()
    st.create_snapshot(3, ConfState(voters=(1,)), b"s")
    st.compact(3)
    again = RaftNode(RaftConfig(id=1, voters=(1,)), st, random.Random(2))
    assert again.first_index() == 4
    assert again.last_index() == 6
    assert [e.index for e in again.ready().committed_entries] == [4, 5, 6]


# ----------------------------------------------------------- flow control


def test_max_inflight_limits_unacked_appends() -> None:
    n = new_node(1, [1, 2], max_inflight_msgs=2, max_size_per_msg=1)
    n.campaign()
    persist(n)
    n.step(Message(type=MT.MsgVoteResp, to=1, from_=2, term=1))
    persist(n)
    n.step(Message(type=MT.MsgAppResp, to=1, from_=2, term=1, index=1))  # -> Replicate
    persist(n)
    for i in range(5):
        n.propose(b"%d" % i)
    apps = [m for m in persist(n) if m.type is MT.MsgApp]
    assert 1 <= len(apps) <= 2
    assert all(len(m.entries) == 1 for m in apps)


def test_demoted_leader_steps_down_and_serves_no_stale_read() -> None:
    """Regression (found by the harness, RAFT-READ-LINEARIZABLE): a leader that
    applies its own demotion to learner must step down, as one that removes
    itself does (etcd's switchToConfig treats both alike).  Otherwise it stays
    leader of a configuration whose only voter is another node, and answers
    ReadIndex at once through the single-voter shortcut, while that voter
    elects itself and commits writes the read then misses."""
    net = cc_net(Network.of(2))
    net.campaign(1)
    net.nodes[1].propose(b"x")
    net.stabilize()
    apply_conf_changes(net)
    lead = net.nodes[1]
    lead.propose_conf_change(ConfChangeV2(changes=(learner(1),)))
    net.stabilize()
    apply_conf_changes(net)
    assert lead.conf_state() == ConfState(voters=(2,), learners=(1,))
    assert lead.state is StateType.Follower
    # The remaining voter elects itself and commits a write the old leader lacks.
    net.isolate(1)
    net.campaign(2)
    assert net.nodes[2].state is StateType.Leader
    net.nodes[2].propose(b"w")
    net.stabilize()
    written = net.nodes[2].commit
    lead.read_index(b"r")
    net.stabilize()
    assert all(rs.index >= written for rs in net.read_states[1])
