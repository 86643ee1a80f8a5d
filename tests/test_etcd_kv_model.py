"""The sequential etcd v3 KV model: etcd's answers, and lincheck with it."""

from __future__ import annotations

import json

from kubeproof.models.etcd_kv import (
    Compare,
    DeleteRange,
    DeleteRangeResponse,
    EtcdKvModel,
    EtcdState,
    KeyValue,
    Put,
    PutResponse,
    Range,
    RangeResponse,
    Request,
    Response,
    Txn,
    TxnResponse,
    execute,
    request_from_json,
    request_to_json,
    response_from_json,
    response_to_json,
)
from kubeproof.models.lincheck import History, Operation, check, parse_json_history


def run(*requests: Request) -> tuple[EtcdState, list[Response]]:
    state = EtcdState()
    out = []
    for r in requests:
        state, resp = execute(state, r)
        out.append(resp)
    return state, out


def test_put_range_revisions_and_versions() -> None:
    state, (p1, p2, p3, g) = run(
        Put(b"a", b"1"), Put(b"a", b"2", prev_kv=True), Put(b"b", b"x"), Range(b"a")
    )
    assert p1 == PutResponse(2)  # a fresh etcd is at revision 1
    assert p2 == PutResponse(3, KeyValue(b"a", 2, 2, 1, b"1"))
    assert p3 == PutResponse(4)
    assert g == RangeResponse(4, (KeyValue(b"a", 2, 3, 2, b"2"),), 1)
    assert state.revision == 4


def test_delete_of_nothing_keeps_the_revision_and_recreate_restarts_version() -> None:
    _, (_, d0, d1, _, g) = run(
        Put(b"a", b"1"),
        DeleteRange(b"zzz"),
        DeleteRange(b"a", prev_kv=True),
        Put(b"a", b"again"),
        Range(b"a"),
    )
    assert d0 == DeleteRangeResponse(2, 0)
    assert d1 == DeleteRangeResponse(3, 1, (KeyValue(b"a", 2, 2, 1, b"1"),))
    assert g == RangeResponse(4, (KeyValue(b"a", 4, 4, 1, b"again"),), 1)


def test_ranges_limit_keys_only_count_only_and_from_key() -> None:
    _, out = run(
        Put(b"a", b"1"),
        Put(b"b", b"2"),
        Put(b"c", b"3"),
        Range(b"a", b"c", limit=1),
        Range(b"b", b"\0", keys_only=True),
        Range(b"a", b"\0", count_only=True),
    )
    limited, keys, counted = out[3:]
    assert limited == RangeResponse(4, (KeyValue(b"a", 2, 2, 1, b"1"),), 2, more=True)
    assert keys == RangeResponse(4, (KeyValue(b"b", 3, 3, 1, b""), KeyValue(b"c", 4, 4, 1, b"")), 2)
    assert counted == RangeResponse(4, (), 3)


def test_txn_compare_and_set_with_revisions() -> None:
    state, (_p, t_ok, t_ko) = run(
        Put(b"k", b"v1"),
        Txn((Compare(b"k", "mod", "=", 2),), (Put(b"k", b"v2"), Range(b"k")), (Range(b"k"),)),
        Txn((Compare(b"k", "mod", "=", 2),), (Put(b"k", b"v3"),), (Range(b"k"),)),
    )
    assert t_ok == TxnResponse(
        3, True, (PutResponse(3), RangeResponse(3, (KeyValue(b"k", 2, 3, 2, b"v2"),), 1))
    )
    # The failed compare takes the failure branch; read-only, so no new revision.
    assert t_ko == TxnResponse(3, False, (RangeResponse(3, (KeyValue(b"k", 2, 3, 2, b"v2"),), 1),))
    assert state.revision == 3


def test_value_compare_on_a_missing_key_always_fails() -> None:
    _, (t1, t2) = run(
        Txn((Compare(b"nope", "value", "!=", b"x"),), (Put(b"a", b"1"),), ()),
        Txn((Compare(b"nope", "version", "=", 0),), (Put(b"a", b"1"),), ()),
    )
    assert t1 == TxnResponse(1, False, ())
    assert t2 == TxnResponse(2, True, (PutResponse(2),))


def test_nested_txn_compares_see_the_state_before_the_txn() -> None:
    inner = Txn((Compare(b"a", "version", "=", 0),), (Put(b"b", b"inner"),), ())
    _, (t,) = run(Txn((), (Put(b"a", b"1"), inner), ()))
    # etcd judges the nested compare before the outer put ran; its header stays 0.
    assert t == TxnResponse(2, True, (PutResponse(2), TxnResponse(0, True, (PutResponse(2),))))


def test_json_codec_round_trip() -> None:
    req = Txn(
        (Compare(b"k", "value", "=", b"v"), Compare(b"k", "create", ">", 1, b"z")),
        (Put(b"k", b"w", prev_kv=True), DeleteRange(b"a", b"\0")),
        (Range(b"k", limit=2),),
    )
    assert request_from_json(json.loads(json.dumps(request_to_json(req)))) == req
    _, resp = execute(EtcdState(), req)
    back = response_from_json(req, json.loads(json.dumps(response_to_json(resp))))
    assert back == resp


def _op(i: int, call: int, ret: int | None, req: object, resp: object = None) -> Operation:
    return Operation(i, i, call, req, ret, resp)


def test_lincheck_with_etcd_responses() -> None:
    m = EtcdKvModel()
    kv = KeyValue(b"k", 2, 2, 1, b"1")
    good = History(
        [
            _op(0, 0, 2, Put(b"k", b"1"), PutResponse(2)),
            _op(1, 1, 3, Range(b"k"), RangeResponse(2, (kv,), 1)),
            _op(2, 4, 5, Put(b"k", b"2"), PutResponse(None)),  # revision not recorded
        ]
    )
    assert check(good, m).linearizable is True
    # A read after the second put returned that still sees the first: stale.
    stale = History([*good.operations, _op(3, 6, 7, Range(b"k"), RangeResponse(3, (kv,), 1))])
    assert check(stale, m).linearizable is False
    # ... unless the second put only timed out: then it may not have happened yet.
    timed_out = History(
        [
            good.operations[0],
            good.operations[1],
            _op(2, 4, None, Put(b"k", b"2")),
            _op(3, 6, 7, Range(b"k"), RangeResponse(2, (kv,), 1)),
        ]
    )
    assert check(timed_out, m).linearizable is True


def test_etcd_kv_history_from_json() -> None:
    text = "\n".join(
        [
            '{"format": "kubeproof-history", "version": 1, "model": "etcd-kv"}',
            '{"client": 0, "call": 0, "return": 1, "input": {"op": "put", "key": "k", "value": "v"},'
            ' "output": {"revision": 2}}',
            '{"client": 1, "call": 2, "return": 3, "input": {"op": "txn", "compare": [{"key": "k",'
            ' "target": "mod", "op": "=", "value": 2}], "success": [{"op": "delete", "key": "k"}]},'
            ' "output": {"revision": 3, "succeeded": true, "responses": [{"revision": 3,'
            ' "deleted": 1}]}}',
        ]
    )
    parsed = parse_json_history(text, "e.jsonl")
    assert check(parsed.history, EtcdKvModel()).linearizable is True
