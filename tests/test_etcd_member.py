"""The replicated store's member: retries apply once, ReadIndex waits for apply,
watches resume elsewhere, leases expire through the log, snapshots restore."""

from __future__ import annotations

import pytest

from kubeproof.etcd import ClientRequest, LeaseExpire, Member, Proposal, encode_proposal
from kubeproof.mvcc import (
    CompactionRequest,
    DeleteRangeRequest,
    EventType,
    LeaseGrantRequest,
    LeaseKeepAliveRequest,
    LeaseTimeToLiveRequest,
    PutRequest,
    RangeRequest,
)
from kubeproof.raft import MessageType
from tests.etcd_helpers import Group


def put(key: bytes, value: bytes, client: int = 7, seq: int = 1, lease: int = 0) -> ClientRequest:
    return ClientRequest(PutRequest(key=key, value=value, lease=lease), client_id=client, seq=seq)


def get(key: bytes, client: int = 8, seq: int = 1, serializable: bool = False) -> ClientRequest:
    return ClientRequest(
        RangeRequest(key=key, serializable=serializable), client_id=client, seq=seq
    )


# ---------------------------------------------------------------- sessions


def test_a_retry_through_another_member_applies_once() -> None:
    g = Group()
    g.elect(1)
    g.submit(2, put(b"a", b"1"))
    g.pump()
    first = g.answer(7, 1)
    assert len(first) == 1 and first[0].ok
    rev = g.m(1).store.revision
    # The client did not hear back (say), and retries the same (client, seq) elsewhere.
    g.submit(3, put(b"a", b"1"))
    g.pump()
    answers = g.answer(7, 1)
    assert len(answers) == 2
    assert answers[1].response.header.revision == answers[0].response.header.revision  # type: ignore[union-attr]
    for m in g.alive():
        assert m.store.revision == rev, "the retry must not make a new revision"
        assert m.store.range(b"a").kvs[0].version == 1
    dups = [a for out in g.outputs[3] for a in out.applied if a.decision == "duplicate"]
    assert len(dups) == 1


def test_a_duplicated_forwarded_proposal_applies_once() -> None:
    g = Group()
    g.elect(1)
    g.submit(2, put(b"k", b"v", client=9, seq=4))
    # The follower forwards the proposal to the leader; the network delivers it twice.
    g.pump(hold=lambda msg: msg.type is MessageType.MsgProp)
    assert len(g.held) == 1
    g.in_flight.extend([g.held[0], g.held[0]])
    g.held = []
    g.pump()
    for m in g.alive():
        assert m.store.revision == 2
    decisions = sorted(a.decision for out in g.outputs[1] for a in out.applied if a.kind == "write")
    assert decisions == ["duplicate", "fresh"]
    assert len(g.answer(9, 4)) == 1  # the waiting follower answers once per waiter


def test_a_copy_older_than_the_ack_is_refused() -> None:
    g = Group()
    g.elect(1)
    g.submit(1, put(b"x", b"2", seq=2))
    g.pump()
    # A late copy of seq 1, after the client acknowledged up to 2: stale, not applied.
    g.submit(1, put(b"x", b"1", seq=1))
    g.pump()
    (late,) = g.answer(7, 1)
    assert late.error is not None and late.error.code == "ErrStaleRequest"
    assert g.m(1).store.range(b"x").kvs[0].value == b"2"


# -------------------------------------------------------------- ReadIndex


def test_a_linearizable_read_waits_until_the_read_index_is_applied() -> None:
    g = Group()
    g.elect(1)
    # Member 3 stops receiving appends: it lags behind the leader's commit.
    lag = lambda msg: msg.to == 3 and msg.type is MessageType.MsgApp  # noqa: E731
    g.submit(1, put(b"a", b"new"))
    g.pump(hold=lag)
    assert g.m(1).store.range(b"a").count == 1
    assert g.m(3).store.range(b"a").count == 0
    # A serializable read at the lagging member is served at once, stale.
    out = g.submit(3, get(b"a", seq=1, serializable=True))
    assert out.responses[0].response.count == 0  # type: ignore[union-attr]
    # A linearizable read there gets its ReadIndex but must wait for the apply.
    g.submit(3, get(b"a", seq=2))
    g.pump(hold=lag)
    assert g.m(3).reads._ready, "the ReadState arrived"
    assert g.answer(8, 2) == []
    g.release()
    g.pump()
    (ans,) = g.answer(8, 2)
    assert ans.response.kvs[0].value == b"new"  # type: ignore[union-attr]
    assert g.m(3).applied_index >= g.m(1).applied_index - 0


def test_no_leader_known_answers_at_once() -> None:
    g = Group()
    out = g.submit(2, put(b"a", b"1"))
    assert out.responses[0].error is not None
    assert out.responses[0].error.code == "ErrNoLeader"
    out = g.submit(2, get(b"a"))
    assert out.responses[0].error is not None and out.responses[0].error.code == "ErrNoLeader"


# ----------------------------------------------------------------- watches


def test_a_watch_resumes_on_another_member_without_gap_or_duplicate() -> None:
    g = Group()
    g.elect(1)
    wid = g.m(2).watch(b"k", b"l", start_revision=1)
    for n in range(3):
        g.submit(1, put(b"k%d" % n, b"v%d" % n, seq=n + 1))
        g.pump()
    got = [ev for w in g.watch_responses(2) if w.watch_id == wid for ev in w.events]
    assert [ev.kv.mod_revision for ev in got] == [2, 3, 4]
    last = got[-1].kv.mod_revision
    g.crash(2)
    for n in range(3, 5):
        g.submit(1, put(b"k%d" % n, b"v%d" % n, seq=n + 1))
        g.pump()
    wid3 = g.m(3).watch(b"k", b"l", start_revision=last + 1)
    resumed = [ev for w in g.m(3).poll_watches() if w.watch_id == wid3 for ev in w.events]
    assert [ev.kv.mod_revision for ev in resumed] == [5, 6]
    assert [ev.kv.key for ev in resumed] == [b"k3", b"k4"]
    g.submit(1, ClientRequest(DeleteRangeRequest(key=b"k0"), client_id=7, seq=6))
    g.pump()
    more = [ev for w in g.watch_responses(3) if w.watch_id == wid3 for ev in w.events]
    assert [(ev.type, ev.kv.mod_revision) for ev in more] == [(EventType.DELETE, 7)]


def test_a_watch_resuming_below_the_compaction_is_told_so() -> None:
    g = Group()
    g.elect(1)
    for n in range(4):
        g.submit(1, put(b"k", b"%d" % n, seq=n + 1))
        g.pump()
    g.submit(1, ClientRequest(CompactionRequest(revision=4), client_id=7, seq=5))
    g.pump()
    wid = g.m(2).watch(b"k", b"", start_revision=3)
    (resp,) = g.m(2).poll_watches()
    assert resp.watch_id == wid and resp.canceled and resp.compact_revision == 4
    # At the compaction revision itself the history is still there.
    wid = g.m(2).watch(b"k", b"", start_revision=4)
    (resp,) = g.m(2).poll_watches()
    assert [ev.kv.mod_revision for ev in resp.events] == [4, 5]


# ------------------------------------------------------------------ leases


def test_lease_expiry_is_decided_by_the_leader_and_applied_through_the_log() -> None:
    g = Group()
    g.elect(1)
    g.submit(1, ClientRequest(LeaseGrantRequest(ttl=2), client_id=5, seq=1))
    g.pump()
    (grant,) = g.answer(5, 1)
    lease = grant.response.id  # type: ignore[union-attr]
    g.submit(1, put(b"eph", b"x", client=5, seq=2, lease=lease))
    g.pump()
    rev = g.m(1).store.revision
    # Followers' clocks run far ahead with no leader to hear from: they revoke nothing.
    g.crash(1)
    g.now += 100.0
    for i in (2, 3):
        out = g.m(i).tick(g.now)
        assert out.expiries == ()
        assert g.m(i).store.range(b"eph").count == 1
    g.start(1)
    g.elect(1)
    # A new leader promotes: the lease lives TTL from the promotion.
    g.tick(0.5, n=2)
    assert all(m.store.range(b"eph").count == 1 for m in g.alive())
    g.tick(0.5, n=4)
    expiries = [ex for out in g.outputs[1] for ex in out.expiries]
    assert [ex.id for ex in expiries] == [lease]
    for m in g.alive():
        assert m.store.range(b"eph").count == 0
        assert m.store.revision == rev + 1
        (a,) = [
            a for out in g.outputs[m.id] for a in out.applied if a.kind == "expire" and a.revoked
        ]
        assert a.changes[0].key == b"eph" and a.changes[0].version == 0


def test_expiry_proposals_are_told_apart_over_the_leaders_lives() -> None:
    g = Group()
    g.elect(1)
    tokens = []
    for seq in (1, 2):
        g.submit(1, ClientRequest(LeaseGrantRequest(ttl=2), client_id=5, seq=seq))
        g.pump()
        g.tick(0.5, n=6)
        tokens += [ex.token for out in g.outputs[1] for ex in out.expiries]
        g.outputs[1] = []
        g.crash(1)
        g.start(1)
        g.elect(1)
    assert len(tokens) == 2 and tokens[0] != tokens[1]


def test_a_keep_alive_ordered_before_the_expiry_wins() -> None:
    g = Group()
    leader = g.elect(1)
    g.submit(1, ClientRequest(LeaseGrantRequest(ttl=5), client_id=5, seq=1))
    g.pump()
    lease = g.answer(5, 1)[0].response.id  # type: ignore[union-attr]
    version = leader.sm.lease_versions[lease]
    g.submit(1, ClientRequest(LeaseKeepAliveRequest(id=lease), client_id=5, seq=2))
    # The leader had decided the lease ran out at the old version; the keep-alive is first.
    leader.node.propose(encode_proposal(Proposal(expire=LeaseExpire(lease, version, "t"))))
    g.pump()
    for m in g.alive():
        assert lease in m.sm.lease_versions
    applied = [a for out in g.outputs[2] for a in out.applied if a.kind == "expire"]
    assert len(applied) == 1 and not applied[0].revoked
    g.submit(1, ClientRequest(LeaseTimeToLiveRequest(id=lease), client_id=5, seq=3))
    g.pump()
    (ttl,) = g.answer(5, 3)
    assert ttl.response.granted_ttl == 5  # type: ignore[union-attr]


# --------------------------------------------------------------- snapshots


def test_a_lagging_member_catches_up_from_a_snapshot_and_keeps_its_watch() -> None:
    g = Group(snapshot_count=5, catchup=1)
    g.elect(1)
    wid = g.m(3).watch(b"k", b"l", start_revision=1)
    cut = lambda msg: msg.to == 3 or msg.from_ == 3  # noqa: E731
    for n in range(12):
        g.submit(1, put(b"k%d" % (n % 3), b"v%d" % n, seq=n + 1))
        g.pump(hold=cut)
    g.held = []  # lost
    assert g.m(1).storage.first_index() > 2, "the leader compacted its log"
    g.tick(0.1, n=3)
    restored = [out.restored_index for out in g.outputs[3] if out.restored_index]
    assert restored, "member 3 restored a snapshot"
    assert g.m(3).sm.image() == g.m(1).sm.image()
    revs = [
        ev.kv.mod_revision for w in g.watch_responses(3) if w.watch_id == wid for ev in w.events
    ]
    assert revs == list(range(2, 14)), "the watch went on over the restored store"


def test_a_restarted_member_rebuilds_its_store_from_snapshot_and_log() -> None:
    g = Group(snapshot_count=4, catchup=2)
    g.elect(1)
    for n in range(10):
        g.submit(1, put(b"k%d" % (n % 4), b"v%d" % n, seq=n + 1))
        g.pump()
    before = g.m(2).sm.image()
    g.crash(2)
    m = g.start(2)
    assert m.applied_index <= before.index
    g.tick(0.1, n=3)
    assert g.m(2).sm.image() == before
    assert g.m(2).store.range(b"k", b"l").count == 4


def test_client_requests_are_validated() -> None:
    with pytest.raises(TypeError, match="etcd request"):
        ClientRequest("put a", client_id=1, seq=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="client_id"):
        ClientRequest(RangeRequest(key=b"a"), client_id=0, seq=1)
    with pytest.raises(ValueError, match="ack 3 is above seq 2"):
        ClientRequest(RangeRequest(key=b"a"), client_id=1, seq=2, ack=3)


def test_member_class_is_the_public_face() -> None:
    assert Member.__module__ == "kubeproof.etcd.member"
