"""The etcd wire types: generated code up to date, and the gRPC layer's conversions."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubeproof.mvcc import (
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    Event,
    EventType,
    KeyValue,
    MVCCStore,
    PutRequest,
    RangeRequest,
    SortOrder,
    SortTarget,
    TxnRequest,
)
from kubeproof.serve import etcd_convert as cv
from kubeproof.serve.etcd_pb import kv_pb2, rpc_pb2

PB_DIR = Path(cv.__file__).parent / "etcd_pb"


def test_generated_modules_match_the_proto_files(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools")
    from kubeproof.serve.etcd_pb.generate import generate

    out = generate(tmp_path)
    for name in ("kv_pb2.py", "rpc_pb2.py", "kv_pb2.pyi", "rpc_pb2.pyi"):
        assert (out / name).read_bytes() == (PB_DIR / name).read_bytes(), (
            f"{name} is stale: run python -m kubeproof.serve.etcd_pb.generate"
        )


def test_wire_numbers_are_etcds() -> None:
    """Spot checks of field numbers clients depend on (etcd 3.4's rpc.proto/kv.proto)."""
    f = rpc_pb2.WatchResponse.DESCRIPTOR.fields_by_name
    assert (f["watch_id"].number, f["compact_revision"].number, f["events"].number) == (2, 5, 11)
    c = rpc_pb2.Compare.DESCRIPTOR.fields_by_name
    assert (c["range_end"].number, c["value"].number, c["lease"].number) == (64, 7, 8)
    w = rpc_pb2.WatchRequest.DESCRIPTOR.fields_by_name
    assert w["progress_request"].number == 3
    assert rpc_pb2.DESCRIPTOR.services_by_name["KV"].full_name == "etcdserverpb.KV"
    assert kv_pb2.KeyValue.DESCRIPTOR.full_name == "mvccpb.KeyValue"
    # The exact bytes of a KeyValue, as etcd encodes it (fields 1..6 in order).
    kv = kv_pb2.KeyValue(
        key=b"k", create_revision=2, mod_revision=3, version=1, value=b"v", lease=5
    )
    assert kv.SerializeToString() == b"\n\x01k\x10\x02\x18\x03 \x01*\x01v0\x05"


def test_range_request_round_trip() -> None:
    m = rpc_pb2.RangeRequest(
        key=b"a",
        range_end=b"b",
        limit=3,
        revision=7,
        sort_order=rpc_pb2.RangeRequest.DESCEND,
        sort_target=rpc_pb2.RangeRequest.MOD,
        keys_only=True,
        min_create_revision=2,
    )
    r = cv.range_request(m)
    assert r == RangeRequest(
        key=b"a",
        range_end=b"b",
        limit=3,
        revision=7,
        sort_order=SortOrder.DESCEND,
        sort_target=SortTarget.MOD,
        keys_only=True,
        min_create_revision=2,
    )


def test_unknown_enum_number_is_a_wire_error() -> None:
    m = rpc_pb2.RangeRequest(key=b"a")
    m.sort_order = 9  # type: ignore[assignment]  # proto3 enums are open
    with pytest.raises(cv.WireError, match="sort order 9"):
        cv.range_request(m)


def test_txn_request_with_nested_ops() -> None:
    m = rpc_pb2.TxnRequest(
        compare=[
            rpc_pb2.Compare(
                key=b"k",
                target=rpc_pb2.Compare.VALUE,
                result=rpc_pb2.Compare.NOT_EQUAL,
                value=b"x",
            ),
            rpc_pb2.Compare(
                key=b"k", target=rpc_pb2.Compare.MOD, result=rpc_pb2.Compare.LESS, mod_revision=9
            ),
        ],
        success=[
            rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=b"k", value=b"v", prev_kv=True)),
            rpc_pb2.RequestOp(
                request_txn=rpc_pb2.TxnRequest(
                    success=[
                        rpc_pb2.RequestOp(request_delete_range=rpc_pb2.DeleteRangeRequest(key=b"d"))
                    ]
                )
            ),
        ],
        failure=[rpc_pb2.RequestOp(request_range=rpc_pb2.RangeRequest(key=b"k"))],
    )
    t = cv.txn_request(m)
    assert t == TxnRequest(
        compare=(
            Compare(
                key=b"k", target=CompareTarget.VALUE, result=CompareResult.NOT_EQUAL, value=b"x"
            ),
            Compare(key=b"k", target=CompareTarget.MOD, result=CompareResult.LESS, mod_revision=9),
        ),
        success=(
            PutRequest(key=b"k", value=b"v", prev_kv=True),
            TxnRequest(success=(DeleteRangeRequest(key=b"d"),)),
        ),
        failure=(RangeRequest(key=b"k"),),
    )


def test_empty_request_op_is_refused() -> None:
    with pytest.raises(cv.WireError, match="holds no request"):
        cv.txn_request(rpc_pb2.TxnRequest(success=[rpc_pb2.RequestOp()]))


def test_txn_response_headers_as_etcd_fills_them() -> None:
    store = MVCCStore()
    store.put(b"k", b"1")
    resp = store.txn(
        compare=(),
        success=(
            PutRequest(key=b"k", value=b"2", prev_kv=True),
            RangeRequest(key=b"k"),
            TxnRequest(success=(RangeRequest(key=b"k"),)),
        ),
    )
    ident = cv.Identity(cluster_id=11, member_id=22, raft_term=3)
    pb = cv.txn_response(resp, ident)
    assert (pb.header.cluster_id, pb.header.member_id, pb.header.raft_term) == (11, 22, 3)
    assert pb.header.revision == 3
    put, rng, nested = pb.responses
    # Sub-responses carry only a revision; a nested txn's header stays empty.
    assert put.response_put.header == rpc_pb2.ResponseHeader(revision=3)
    assert put.response_put.prev_kv.value == b"1"
    assert rng.response_range.kvs[0].value == b"2"
    assert nested.response_txn.header == rpc_pb2.ResponseHeader()
    assert nested.response_txn.responses[0].response_range.count == 1


def test_event_conversion() -> None:
    ev = Event(
        EventType.DELETE,
        KeyValue(b"k", 0, 5, 0),
        KeyValue(b"k", 2, 4, 2, b"old", 0),
    )
    pb = cv.event_pb(ev)
    assert pb.type == kv_pb2.Event.DELETE
    assert (pb.kv.key, pb.kv.mod_revision, pb.kv.version) == (b"k", 5, 0)
    assert pb.prev_kv.value == b"old"
    put = cv.event_pb(Event(EventType.PUT, KeyValue(b"k", 6, 6, 1, b"v")))
    assert put.type == kv_pb2.Event.PUT
    assert not put.HasField("prev_kv")
