"""Unit tests of kubeproof.mvcc, one per edge of etcd 3.4's semantics.

Where a value below is etcd's rather than obvious, it was measured on a
fresh etcd 3.4.23 through its JSON gateway (and the differential test
re-checks most of them on every run).
"""

from __future__ import annotations

import pytest

from kubeproof.mvcc import (
    ALL_ERRORS,
    MAX_LEASE_TTL,
    WATCH_BATCH_MAX_REVS,
    CompactionRequest,
    CompactionResponse,
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    DeleteRangeResponse,
    ErrCompacted,
    ErrDuplicateKey,
    ErrEmptyKey,
    ErrEmptyWatcherRange,
    ErrFutureRev,
    ErrKeyNotFound,
    ErrLeaseExists,
    ErrLeaseNotFound,
    ErrLeaseProvided,
    ErrLeaseTTLTooLarge,
    ErrTooManyOps,
    ErrValueProvided,
    ErrWatcherDuplicateID,
    EventType,
    KeyValue,
    LeaseGrantRequest,
    MVCCStore,
    PutRequest,
    PutResponse,
    RangeRequest,
    RangeResponse,
    ResponseHeader,
    SortOrder,
    SortTarget,
    TxnOp,
    TxnRequest,
    TxnResponse,
    WatchFilter,
)


def cmp(key: bytes, target: CompareTarget, result: CompareResult, **operand: object) -> Compare:
    return Compare(key=key, target=target, result=result, **operand)  # type: ignore[arg-type]


def values(resp: RangeResponse) -> list[tuple[bytes, bytes]]:
    return [(kv.key, kv.value) for kv in resp.kvs]


# ---------------------------------------------------------------------------
# Revisions, puts and deletes


def test_fresh_store_is_at_revision_1_uncompacted() -> None:
    s = MVCCStore(cluster_id=7, member_id=8, raft_term=2)
    assert s.revision == 1
    assert s.compact_revision == -1
    assert s.range(b"a").header == ResponseHeader(7, 8, 1, 2)


def test_put_creates_then_versions_and_delete_resets() -> None:
    s = MVCCStore()
    assert s.put(b"k", b"1").header.revision == 2
    s.put(b"k", b"2")
    assert s.range(b"k").kvs == (KeyValue(b"k", 2, 3, 2, b"2", 0),)
    assert s.delete_range(b"k").header.revision == 4
    assert s.range(b"k").count == 0
    s.put(b"k", b"3")
    assert s.range(b"k").kvs == (KeyValue(b"k", 5, 5, 1, b"3", 0),)


def test_put_prev_kv() -> None:
    s = MVCCStore()
    assert s.put(b"k", b"1", prev_kv=True).prev_kv is None
    assert s.put(b"k", b"2", prev_kv=True).prev_kv == KeyValue(b"k", 2, 2, 1, b"1", 0)


def test_delete_of_nothing_keeps_the_revision() -> None:
    s = MVCCStore()
    s.put(b"a", b"1")
    resp = s.delete_range(b"zz", prev_kv=True)
    assert resp == DeleteRangeResponse(ResponseHeader(revision=2), 0, ())
    assert s.revision == 2


def test_delete_range_variants() -> None:
    s = MVCCStore()
    for k in (b"a", b"b", b"c", b"d"):
        s.put(k, k)
    resp = s.delete_range(b"b", b"d", prev_kv=True)
    assert resp.deleted == 2
    assert [kv.key for kv in resp.prev_kvs] == [b"b", b"c"]
    assert s.revision == 6  # both deletes share one revision
    assert s.delete_range(b"b", b"\x00").deleted == 1  # "from key on": only d is left
    assert s.delete_range(b"c", b"a").deleted == 0  # end before key: nothing
    assert values(s.range(b"\x00", b"\x00")) == [(b"a", b"a")]


def test_empty_key_is_refused_everywhere() -> None:
    s = MVCCStore()
    for call in (
        lambda: s.put(b"", b"v"),
        lambda: s.range(b""),
        lambda: s.delete_range(b""),
        lambda: s.txn([cmp(b"", CompareTarget.VERSION, CompareResult.EQUAL)]),
        lambda: s.txn(success=[RangeRequest(key=b"")]),
    ):
        with pytest.raises(ErrEmptyKey):
            call()
    assert s.revision == 1


def test_ignore_value_and_ignore_lease() -> None:
    s = MVCCStore()
    lease = s.lease_grant(100).id
    with pytest.raises(ErrKeyNotFound):
        s.put(b"k", ignore_value=True)
    s.put(b"k", b"v", lease=lease)
    s.put(b"k", ignore_value=True, lease=lease)
    assert s.range(b"k").kvs[0].value == b"v"
    s.put(b"k", b"w", ignore_lease=True)
    assert s.range(b"k").kvs[0].lease == lease
    with pytest.raises(ErrValueProvided):
        s.put(b"k", b"x", ignore_value=True)
    with pytest.raises(ErrLeaseProvided):
        s.put(b"k", b"x", lease=lease, ignore_lease=True)


def test_put_checks_lease_before_key_outside_a_txn_and_key_first_inside() -> None:
    s = MVCCStore()
    with pytest.raises(ErrLeaseNotFound):
        s.put(b"k", lease=9, ignore_value=True)
    with pytest.raises(ErrKeyNotFound):
        s.txn(success=[PutRequest(key=b"k", lease=9, ignore_value=True)])


def test_bad_types_are_named() -> None:
    s = MVCCStore()
    with pytest.raises(TypeError, match="key must be bytes"):
        s.put("k", b"v")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="limit must be an int"):
        s.range(b"k", limit="2")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not an MVCC request"):
        s.apply("put k v")


# ---------------------------------------------------------------------------
# Range


def _abc() -> MVCCStore:
    s = MVCCStore()
    s.put(b"a", b"3")  # rev 2
    s.put(b"b", b"1")  # rev 3
    s.put(b"c", b"2")  # rev 4
    s.put(b"a", b"4")  # rev 5: a is version 2
    return s


def test_range_limit_more_count() -> None:
    s = _abc()
    r = s.range(b"a", b"\x00", limit=2)
    assert [kv.key for kv in r.kvs] == [b"a", b"b"]
    assert (r.more, r.count) == (True, 3)
    r = s.range(b"a", b"\x00", limit=3)
    assert (r.more, r.count) == (False, 3)
    assert s.range(b"a", b"\x00", limit=-1).count == 3
    assert s.range(b"a", b"c", count_only=True) == RangeResponse(
        ResponseHeader(revision=5), (), False, 2
    )
    assert all(kv.value == b"" for kv in s.range(b"a", b"\x00", keys_only=True).kvs)
    assert s.range(b"c", b"a").count == 0


def test_range_history_and_revision_errors() -> None:
    s = _abc()
    assert values(s.range(b"a", b"\x00", revision=3)) == [(b"a", b"3"), (b"b", b"1")]
    assert s.range(b"a", revision=3).header.revision == 5  # reports the current revision
    assert s.range(b"a", revision=1).kvs == ()
    assert values(s.range(b"a", revision=-5)) == [(b"a", b"4")]  # <= 0: current
    with pytest.raises(ErrFutureRev):
        s.range(b"a", revision=6)
    s.compact(4)
    assert values(s.range(b"a", revision=4)) == [(b"a", b"3")]  # the compaction revision stays
    with pytest.raises(ErrCompacted):
        s.range(b"a", revision=3)


def test_range_sort_and_filters() -> None:
    s = _abc()
    by_value = s.range(b"a", b"\x00", sort_target=SortTarget.VALUE)  # NONE + target: ascend
    assert [kv.key for kv in by_value.kvs] == [b"b", b"c", b"a"]
    desc = s.range(b"a", b"\x00", sort_order=SortOrder.DESCEND)
    assert [kv.key for kv in desc.kvs] == [b"c", b"b", b"a"]
    by_mod = s.range(b"a", b"\x00", sort_order=SortOrder.DESCEND, sort_target=SortTarget.MOD)
    assert [kv.key for kv in by_mod.kvs] == [b"a", b"c", b"b"]
    # etcd's quirk: with a sort target but no order, the page is taken by key first.
    r = s.range(b"a", b"\x00", limit=1, sort_target=SortTarget.VALUE)
    assert [kv.key for kv in r.kvs] == [b"b"]
    assert (r.more, r.count) == (True, 3)
    r = s.range(b"a", b"\x00", min_mod_revision=4)
    assert [kv.key for kv in r.kvs] == [b"a", b"c"]
    assert r.count == 3  # count is before filtering
    assert [kv.key for kv in s.range(b"a", b"\x00", max_create_revision=2).kvs] == [b"a"]


# ---------------------------------------------------------------------------
# Txn


def test_txn_ops_share_one_revision_and_nested_headers() -> None:
    s = MVCCStore()
    s.put(b"a", b"1")
    resp = s.txn(
        [cmp(b"a", CompareTarget.VALUE, CompareResult.EQUAL, value=b"1")],
        [
            RangeRequest(key=b"a"),
            PutRequest(key=b"b", value=b"2"),
            RangeRequest(key=b"b"),
            DeleteRangeRequest(key=b"a"),
            TxnRequest(success=[RangeRequest(key=b"a")]),
        ],
    )
    assert resp.succeeded
    assert resp.header.revision == 3
    rng0, put, rng1, dele, nested = (r.response for r in resp.responses)
    assert isinstance(rng0, RangeResponse) and rng0.header == ResponseHeader(revision=2)
    assert isinstance(put, PutResponse) and put.header == ResponseHeader(revision=3)
    assert isinstance(rng1, RangeResponse) and rng1.kvs[0].mod_revision == 3
    assert isinstance(dele, DeleteRangeResponse) and dele.deleted == 1
    assert isinstance(nested, TxnResponse) and nested.header == ResponseHeader()
    assert s.revision == 3
    assert [kv.version for kv in s.changes(3)] == [1, 0]


def test_txn_that_changes_nothing_keeps_the_revision() -> None:
    s = MVCCStore()
    s.put(b"a", b"1")
    assert s.txn(success=[RangeRequest(key=b"a")]).header.revision == 2
    assert s.txn(success=[DeleteRangeRequest(key=b"zz")]).header.revision == 2
    assert not s.txn([cmp(b"a", CompareTarget.VERSION, CompareResult.GREATER, version=5)]).succeeded
    assert s.revision == 2


def test_compares() -> None:
    s = MVCCStore()
    s.put(b"a", b"1")
    s.put(b"b", b"2")

    def holds(c: Compare) -> bool:
        return s.txn([c]).succeeded

    assert holds(cmp(b"zz", CompareTarget.VERSION, CompareResult.EQUAL, version=0))
    assert holds(cmp(b"zz", CompareTarget.MOD, CompareResult.EQUAL, mod_revision=0))
    assert not holds(cmp(b"zz", CompareTarget.VALUE, CompareResult.NOT_EQUAL, value=b"x"))
    assert holds(cmp(b"a", CompareTarget.VALUE, CompareResult.LESS, value=b"2"))
    assert holds(cmp(b"a", CompareTarget.CREATE, CompareResult.EQUAL, create_revision=2))
    assert holds(cmp(b"a", CompareTarget.LEASE, CompareResult.EQUAL, lease=0))
    # Over a range: every key must satisfy it.
    assert holds(cmp(b"a", CompareTarget.VERSION, CompareResult.EQUAL, version=1, range_end=b"c"))
    assert not holds(
        cmp(b"a", CompareTarget.MOD, CompareResult.LESS, mod_revision=3, range_end=b"\x00")
    )


def test_nested_compares_see_the_store_before_the_txn() -> None:
    s = MVCCStore()
    resp = s.txn(
        success=[
            PutRequest(key=b"d", value=b"x"),
            TxnRequest(
                compare=[cmp(b"d", CompareTarget.VERSION, CompareResult.EQUAL, version=0)],
                success=[RangeRequest(key=b"d")],
            ),
        ]
    )
    nested = resp.responses[1].response_txn
    assert nested is not None and nested.succeeded
    rng = nested.responses[0].response
    assert isinstance(rng, RangeResponse) and rng.kvs[0].value == b"x"  # ranges do see it


def test_too_many_ops() -> None:
    s = MVCCStore()
    r = RangeRequest(key=b"a")
    c = cmp(b"a", CompareTarget.VERSION, CompareResult.EQUAL)
    s.txn(success=[r] * 128)
    for bad in (
        TxnRequest(success=[r] * 129),
        TxnRequest(failure=[r] * 129),
        TxnRequest(compare=[c] * 129),
        TxnRequest(success=[r, TxnRequest(success=[r] * 127)]),  # nested budget 128 - 2
    ):
        with pytest.raises(ErrTooManyOps, match="too many operations in txn request"):
            s.apply(bad)
    s.txn(success=[r, TxnRequest(success=[r] * 126)])


def test_duplicate_keys() -> None:
    s = MVCCStore()
    s.put(b"b", b"0")
    cases: list[list[TxnOp]] = [
        [PutRequest(key=b"a"), PutRequest(key=b"a")],
        [DeleteRangeRequest(key=b"a", range_end=b"c"), PutRequest(key=b"b")],
        [TxnRequest(success=[PutRequest(key=b"a")]), PutRequest(key=b"a")],
        [
            TxnRequest(success=[DeleteRangeRequest(key=b"a")]),
            TxnRequest(success=[PutRequest(key=b"a")]),
        ],
    ]
    for bad in cases:
        with pytest.raises(ErrDuplicateKey, match="duplicate key given in txn request"):
            s.txn(success=bad)
    # Then and else of one nested txn never both run.
    s.txn(success=[TxnRequest(success=[PutRequest(key=b"a")], failure=[PutRequest(key=b"a")])])
    # Two deletes may overlap.
    s.txn(success=[DeleteRangeRequest(key=b"a", range_end=b"c"), DeleteRangeRequest(key=b"b")])


def test_etcd_quirk_from_key_delete_conflicts_with_nothing() -> None:
    s = MVCCStore()
    s.put(b"a", b"1")
    s.put(b"b", b"1")
    s.txn(
        success=[DeleteRangeRequest(key=b"a", range_end=b"\x00"), PutRequest(key=b"b", value=b"2")]
    )
    assert s.range(b"a", b"\x00").kvs == (KeyValue(b"b", 4, 4, 1, b"2", 0),)
    assert [(kv.key, kv.version) for kv in s.changes(4)] == [(b"a", 0), (b"b", 0), (b"b", 1)]


def test_etcd_quirk_put_then_delete_in_sibling_nested_txns() -> None:
    s = MVCCStore()
    w = s.watch(b"c", prev_kv=True)
    s.txn(
        success=[
            TxnRequest(success=[PutRequest(key=b"c", value=b"x")]),
            TxnRequest(success=[DeleteRangeRequest(key=b"c")]),
        ]
    )
    assert s.range(b"c").count == 0
    assert s.revision == 2
    (resp,) = w.poll()
    assert [(e.type, e.kv.mod_revision) for e in resp.events] == [
        (EventType.PUT, 2),
        (EventType.DELETE, 2),
    ]
    assert resp.events[1].prev_kv is None  # the value before the txn: none


def test_txn_that_crashes_etcd_3_4_is_refused_whole() -> None:
    s = MVCCStore()
    s.put(b"b", b"1")
    with pytest.raises(ErrKeyNotFound, match=r"etcd 3\.4 panics"):
        s.txn(
            success=[
                DeleteRangeRequest(key=b"b", range_end=b"\x00"),
                PutRequest(key=b"b", ignore_value=True),
            ]
        )
    assert s.revision == 2
    assert values(s.range(b"b")) == [(b"b", b"1")]


def test_txn_request_checks_follow_the_chosen_branch() -> None:
    s = MVCCStore()
    s.put(b"a", b"1")
    never = cmp(b"a", CompareTarget.VERSION, CompareResult.EQUAL, version=9)
    # Errors in the branch not taken do not count...
    s.txn([never], success=[PutRequest(key=b"x", lease=5)], failure=[RangeRequest(key=b"a")])
    # ... but in the taken one they do, ranges after puts.
    with pytest.raises(ErrLeaseNotFound):
        s.txn([never], failure=[RangeRequest(key=b"a", revision=99), PutRequest(key=b"x", lease=5)])
    with pytest.raises(ErrFutureRev):
        s.txn(success=[RangeRequest(key=b"a", revision=99)])
    # A negative revision is "compacted" inside a txn (current in a plain range).
    with pytest.raises(ErrCompacted):
        s.txn(success=[RangeRequest(key=b"a", revision=-2)])
    assert s.revision == 2


# ---------------------------------------------------------------------------
# Compaction


def test_compaction_errors_as_on_a_fresh_etcd() -> None:
    s = MVCCStore()
    s.compact(0)  # allowed once on a fresh etcd
    for rev in (0, -1):
        with pytest.raises(ErrCompacted, match="required revision has been compacted"):
            s.compact(rev)
    with pytest.raises(ErrFutureRev, match="required revision is a future revision"):
        s.compact(2)
    s.put(b"a", b"1")
    s.compact(2)
    with pytest.raises(ErrCompacted):
        s.compact(2)
    s.put(b"a", b"2")
    resp = s.apply(CompactionRequest(revision=3, physical=True))
    assert isinstance(resp, CompactionResponse) and resp.header.revision == 3
    assert s.compact_revision == 3


def test_compaction_forgets_what_no_read_can_see() -> None:
    s = MVCCStore()
    s.put(b"a", b"1")  # 2
    s.put(b"a", b"2")  # 3
    s.put(b"d", b"1")  # 4
    s.delete_range(b"d")  # 5
    s.put(b"a", b"3")  # 6
    s.compact(5)
    assert [kv.mod_revision for kv in s.key_history(b"a")] == [3, 6]
    assert s.key_history(b"d") == ()  # its generation closed before 5
    assert s.changes(4) == ()
    assert [kv.key for kv in s.changes(5)] == [b"d"]
    assert values(s.range(b"a", revision=5)) == [(b"a", b"2")]


# ---------------------------------------------------------------------------
# Watch


def test_watch_history_prev_kv_and_live_events() -> None:
    s = MVCCStore()
    s.put(b"a", b"1")  # 2
    s.put(b"a", b"2")  # 3
    w = s.watch(b"a", start_revision=2, prev_kv=True)
    (resp,) = w.poll()
    assert resp.header.revision == 3
    assert [(e.type, e.kv.value, e.prev_kv) for e in resp.events] == [
        (EventType.PUT, b"1", None),  # a creation carries no prev_kv
        (EventType.PUT, b"2", KeyValue(b"a", 2, 2, 1, b"1", 0)),
    ]
    assert w.poll() == ()
    s.delete_range(b"a")  # 4
    (resp,) = w.poll()
    assert resp.header.revision == 4
    ev = resp.events[0]
    assert (ev.type, ev.kv) == (EventType.DELETE, KeyValue(b"a", 0, 4, 0, b"", 0))
    assert ev.prev_kv is not None and ev.prev_kv.value == b"2"


def test_watch_start_zero_future_and_ranges() -> None:
    s = MVCCStore()
    s.put(b"a", b"1")
    now = s.watch(b"a", b"\x00")
    later = s.watch(b"a", b"c", start_revision=4)
    s.put(b"b", b"1")  # 3
    s.put(b"c", b"1")  # 4: outside [a, c)
    s.put(b"a", b"2")  # 5
    assert [e.kv.key for r in now.poll() for e in r.events] == [b"b", b"c", b"a"]
    assert [e.kv.mod_revision for r in later.poll() for e in r.events] == [5]
    empty_key = s.watch(b"", start_revision=1)  # an empty key means b"\0"
    assert empty_key.poll() == ()


def test_watch_refusals_and_ids() -> None:
    s = MVCCStore()
    with pytest.raises(ErrEmptyWatcherRange, match="watcher range is empty"):
        s.watch(b"b", b"a")
    with pytest.raises(ErrEmptyWatcherRange):
        s.watch(b"b", b"b")
    w0, w1 = s.watch(b"a"), s.watch(b"a")
    assert (w0.watch_id, w1.watch_id) == (0, 1)
    with pytest.raises(ErrWatcherDuplicateID):
        s.watch(b"a", watch_id=1)
    assert w0.cancel()
    assert not w0.cancel()
    assert not w0.active
    assert s.watch(b"a", watch_id=7).watch_id == 7


def test_watch_filters() -> None:
    s = MVCCStore()
    no_put = s.watch(b"a", filters=[WatchFilter.NOPUT])
    no_del = s.watch(b"a", filters=[WatchFilter.NODELETE])
    s.put(b"a", b"1")
    s.delete_range(b"a")
    assert [e.type for r in no_put.poll() for e in r.events] == [EventType.DELETE]
    assert [e.type for r in no_del.poll() for e in r.events] == [EventType.PUT]


def test_compacted_watch_is_canceled_with_the_compaction_revision() -> None:
    s = MVCCStore(cluster_id=3)
    s.put(b"a", b"1")  # 2
    s.put(b"a", b"2")  # 3
    synced = s.watch(b"a")
    s.put(b"a", b"3")  # 4
    s.compact(4)
    (resp,) = s.watch(b"a", start_revision=3).poll()
    assert resp.canceled and resp.compact_revision == 4
    assert resp.header == ResponseHeader(cluster_id=3, revision=0)  # etcd omits the revision
    assert resp.events == ()
    # A synced watcher keeps what it was sent before the compaction.
    assert [e.kv.value for r in synced.poll() for e in r.events] == [b"3"]


def test_watch_from_the_compaction_revision_sees_its_delete() -> None:
    """etcd 3.4.23 loses this event (etcd issue 18089); the store must not."""
    s = MVCCStore()
    s.put(b"a", b"1")  # 2
    s.delete_range(b"a")  # 3
    s.compact(3)
    (resp,) = s.watch(b"a", start_revision=3, prev_kv=True).poll()
    (ev,) = resp.events
    assert (ev.type, ev.kv.mod_revision) == (EventType.DELETE, 3)
    assert ev.prev_kv is None  # revision 2 is compacted: no previous value to read


def test_watch_catch_up_is_batched_by_1000_revisions() -> None:
    s = MVCCStore()
    for i in range(WATCH_BATCH_MAX_REVS + 5):
        s.put(b"k", str(i).encode())
    responses = s.watch(b"k", start_revision=1).poll()
    assert [len(r.events) for r in responses] == [WATCH_BATCH_MAX_REVS, 5]
    assert {r.header.revision for r in responses} == {s.revision}


# ---------------------------------------------------------------------------
# Leases


def test_lease_grant_rules() -> None:
    s = MVCCStore(first_lease_id=100)
    assert s.lease_grant(1).ttl == 2  # etcd's minimum TTL
    assert s.lease_grant(-5).ttl == 2
    assert [s.lease_grant(60).id for _ in range(2)] == [102, 103]
    assert s.lease_grant(60, id=-7).id == -7  # etcd accepts negative ids
    with pytest.raises(ErrLeaseExists, match="lease already exists"):
        s.lease_grant(60, id=101)
    with pytest.raises(ErrLeaseTTLTooLarge, match="too large lease TTL"):
        s.lease_grant(MAX_LEASE_TTL + 1, id=5)
    assert s.lease_grant(MAX_LEASE_TTL, id=5).ttl == MAX_LEASE_TTL
    assert s.apply(LeaseGrantRequest(ttl=30, id=6), now=5.0) is not None
    assert s.lease_time_to_live(6, now=10.5).ttl == 24  # truncated, as Go does


def test_lease_attach_detach_and_revoke_in_one_revision() -> None:
    s = MVCCStore()
    l1 = s.lease_grant(60).id
    l2 = s.lease_grant(60).id
    s.put(b"c", b"1", lease=l1)
    s.put(b"a", b"1", lease=l1)
    s.put(b"b", b"1", lease=l1)
    s.put(b"b", b"2", lease=l2)  # moves b to l2
    s.put(b"z", b"1", lease=l1)
    s.delete_range(b"z")  # detaches z
    assert s.lease_keys(l1) == (b"a", b"c")
    assert s.lease_time_to_live(l1, keys=True).keys == (b"a", b"c")
    w = s.watch(b"a", b"\x00")
    resp = s.lease_revoke(l1)
    assert resp.header.revision == 8
    (batch,) = w.poll()
    assert [(e.type, e.kv.key, e.kv.mod_revision) for e in batch.events] == [
        (EventType.DELETE, b"a", 8),
        (EventType.DELETE, b"c", 8),
    ]
    assert values(s.range(b"a", b"\x00")) == [(b"b", b"2")]
    with pytest.raises(ErrLeaseNotFound, match="lease not found"):
        s.lease_revoke(l1)
    with pytest.raises(ErrLeaseNotFound):
        s.put(b"q", lease=l1)
    empty = s.lease_grant(60).id
    s.lease_revoke(empty)
    assert s.revision == 8  # revoking a lease without keys writes nothing


def test_lease_keep_alive_ttl_and_expiry_from_now() -> None:
    s = MVCCStore()
    a = s.lease_grant(10, now=0.0).id
    b = s.lease_grant(20, now=0.0).id
    s.put(b"x", b"1", lease=a)
    assert s.lease_keep_alive(a, now=8.0).ttl == 10  # expires at 18 now
    assert s.lease_time_to_live(a, now=9.5).ttl == 8
    assert s.expired_leases(17.9) == ()
    assert s.expired_leases(20.0) == (a, b)
    with pytest.raises(ErrLeaseNotFound):
        s.lease_keep_alive(a, now=18.0)  # expired: etcd says not found
    rev = s.revision
    assert s.expire(18.0) == (a,)
    assert s.revision == rev + 1
    assert s.range(b"x").count == 0
    assert s.lease_leases().leases == (b,)
    with pytest.raises(ErrLeaseNotFound):
        s.lease_time_to_live(a)


# ---------------------------------------------------------------------------
# Errors


def test_errors_carry_etcd_names_messages_and_codes() -> None:
    names = [e.name for e in ALL_ERRORS]
    assert len(set(names)) == len(names)
    assert all(e.__name__ == e.name for e in ALL_ERRORS)
    assert (ErrCompacted.grpc_code, ErrCompacted.grpc_message) == (
        11,
        "etcdserver: mvcc: required revision has been compacted",
    )
    assert (ErrLeaseNotFound.grpc_code, ErrLeaseNotFound.grpc_message) == (
        5,
        "etcdserver: requested lease not found",
    )
    assert ErrLeaseExists.grpc_code == 9
    assert ErrTooManyOps.grpc_code == ErrDuplicateKey.grpc_code == 3
    e = ErrFutureRev("revision 9 > current 2")
    assert str(e) == "mvcc: required revision is a future revision (revision 9 > current 2)"


# ---------------------------------------------------------------------------
# Values


def test_requests_and_responses_round_trip_through_the_codec() -> None:
    from kubeproof.codec import dumps, loads

    s = MVCCStore()
    s.put(b"a", b"1")
    txn = TxnRequest(
        compare=[cmp(b"a", CompareTarget.MOD, CompareResult.EQUAL, mod_revision=2)],
        success=[
            PutRequest(key=b"a", value=b"2"),
            TxnRequest(success=[RangeRequest(key=b"a", sort_order=SortOrder.DESCEND)]),
            DeleteRangeRequest(key=b"zz", range_end=b"\x00"),
        ],
        failure=[RangeRequest(key=b"a")],
    )
    assert '"request_put"' in dumps(txn)  # etcd's JSON shape for a txn operation
    assert loads(dumps(txn), TxnRequest) == txn
    resp = s.apply(txn)
    assert isinstance(resp, TxnResponse)
    assert loads(dumps(resp), TxnResponse) == resp
    w = s.watch(b"a", start_revision=1, prev_kv=True)
    (wr,) = w.poll()
    assert loads(dumps(wr), type(wr)) == wr


def test_a_request_op_holds_exactly_one_request() -> None:
    from kubeproof.mvcc import RequestOp

    with pytest.raises(TypeError, match="exactly one"):
        RequestOp()
    with pytest.raises(TypeError, match="exactly one"):
        RequestOp(request_range=RangeRequest(key=b"a"), request_put=PutRequest(key=b"a"))
    with pytest.raises(TypeError, match="txn operations must be"):
        TxnRequest(success=["put a"])  # type: ignore[list-item]
