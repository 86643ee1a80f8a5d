"""The replicated state machine alone: proposals, sessions, snapshot images."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubeproof.etcd import (
    ClientRequest,
    KVStateMachine,
    LeaseExpire,
    Proposal,
    ProposalError,
    Result,
    SessionTable,
    decode_proposal,
    encode_proposal,
)
from kubeproof.etcd.sessions import Decision
from kubeproof.etcd.snapshot import restore_store, store_image
from kubeproof.mvcc import (
    CompactionRequest,
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    LeaseGrantRequest,
    LeaseRevokeRequest,
    MVCCStore,
    PutRequest,
    RangeRequest,
    TxnRequest,
)
from kubeproof.raft import Entry

_WRITES = st.one_of(
    st.builds(
        PutRequest,
        key=st.sampled_from([b"a", b"b", b"c"]),
        value=st.binary(max_size=3),
        lease=st.sampled_from([0, 0, 1, 2]),
    ),
    st.builds(
        DeleteRangeRequest,
        key=st.sampled_from([b"a", b"b"]),
        range_end=st.sampled_from([b"", b"c", b"\x00"]),
    ),
    st.builds(CompactionRequest, revision=st.integers(1, 12)),
    st.builds(LeaseGrantRequest, ttl=st.integers(2, 9), id=st.sampled_from([0, 1, 2])),
    st.builds(LeaseRevokeRequest, id=st.sampled_from([1, 2])),
    st.builds(
        TxnRequest,
        compare=st.just(
            (Compare(key=b"a", target=CompareTarget.VERSION, result=CompareResult.GREATER),)
        ),
        success=st.just((PutRequest(key=b"b", value=b"t"), PutRequest(key=b"c", value=b"u"))),
        failure=st.just((RangeRequest(key=b"a"),)),
    ),
)


def entry(index: int, p: Proposal) -> Entry:
    return Entry(term=1, index=index, data=encode_proposal(p))


def run(requests: list[object]) -> KVStateMachine:
    sm = KVStateMachine()
    for i, r in enumerate(requests, start=1):
        sm.apply(entry(i, Proposal.of(ClientRequest(r, client_id=1, seq=i))))  # type: ignore[arg-type]
    return sm


@given(st.lists(_WRITES, max_size=25))
def test_a_snapshot_restores_the_same_state(requests: list[object]) -> None:
    sm = run(requests)
    data = sm.snapshot_data()
    other = KVStateMachine()
    other.restore(data)
    assert other.image() == sm.image()
    assert other.snapshot_data() == data, "snapshots are canonical bytes"
    # The restored store answers as the original, including historical reads and watches.
    s1, s2 = sm.store, other.store
    assert s2.range(b"\x00", b"\x00") == s1.range(b"\x00", b"\x00")
    start = max(s1.compact_revision, 1)
    assert s2.watch(b"", b"\x00", start).poll() == s1.watch(b"", b"\x00", start).poll()
    for rev in range(start, s1.revision + 1):
        assert s2.changes(rev) == s1.changes(rev)
    # And goes on the same way.
    more = PutRequest(key=b"a", value=b"next")
    assert s2.apply_put(more) == s1.apply_put(more)


def test_restore_store_needs_a_fresh_store() -> None:
    s = MVCCStore()
    s.put(b"a", b"1")
    with pytest.raises(ValueError, match="fresh store"):
        restore_store(store_image(s), s)


def test_proposals_round_trip_and_bad_data_is_refused() -> None:
    p = Proposal(client_id=3, seq=9, ack=8, put=PutRequest(key=b"k", value=b"v"))
    assert decode_proposal(encode_proposal(p)) == p
    ex = Proposal(expire=LeaseExpire(5, 17, "1:2"))
    assert decode_proposal(encode_proposal(ex)) == ex
    with pytest.raises(ProposalError, match="not a proposal"):
        decode_proposal(b"\xff\x00")
    with pytest.raises(ProposalError, match="exactly one"):
        decode_proposal(encode_proposal(Proposal(client_id=1, seq=1)))
    with pytest.raises(ProposalError, match="client_id >= 1"):
        decode_proposal(encode_proposal(Proposal(put=PutRequest(key=b"k"))))
    sm = KVStateMachine()
    a = sm.apply(Entry(term=1, index=1, data=b"garbage"))
    assert a.kind == "invalid" and sm.store.revision == 1 and sm.index == 1


def test_sessions_answer_duplicates_refuse_stale_copies_and_evict_the_idlest() -> None:
    t = SessionTable(max_sessions=2)
    r1 = Result(error=None)
    assert t.decide(1, 1) == (Decision.fresh, None)
    t.record(1, 1, 1, index=10, result=r1)
    assert t.decide(1, 1) == (Decision.duplicate, r1)
    t.record(1, 2, 2, index=11, result=r1)
    assert t.decide(1, 1)[0] is Decision.stale, "ack 2 settled seq 1"
    assert t.decide(1, 2)[0] is Decision.duplicate
    t.record(2, 1, 1, index=12, result=r1)
    t.record(3, 1, 1, index=13, result=r1)  # evicts client 1 (idle since index 11)
    assert len(t) == 2
    assert t.decide(1, 2) == (Decision.fresh, None)
    assert SessionTable.restore(t.image(), 2).image() == t.image()


def test_an_applied_write_reports_its_revision_and_changes() -> None:
    sm = KVStateMachine()
    a = sm.apply(
        entry(1, Proposal(client_id=1, seq=1, ack=1, put=PutRequest(key=b"k", value=b"v")))
    )
    assert (a.kind, a.decision, a.revision) == ("write", "fresh", 2)
    assert [kv.key for kv in a.changes] == [b"k"]
    b = sm.apply(
        entry(2, Proposal(client_id=1, seq=2, ack=2, delete_range=DeleteRangeRequest(key=b"zz")))
    )
    assert b.revision == 2 and b.changes == (), "a delete of nothing makes no revision"
    c = sm.apply(
        entry(3, Proposal(client_id=1, seq=3, ack=3, lease_revoke=LeaseRevokeRequest(id=9)))
    )
    assert c.result is not None and c.result.error is not None
    assert c.result.error.code == "ErrLeaseNotFound"
    with pytest.raises(ValueError, match="applied again"):
        sm.apply(entry(3, Proposal(client_id=1, seq=4, ack=4, put=PutRequest(key=b"k"))))
