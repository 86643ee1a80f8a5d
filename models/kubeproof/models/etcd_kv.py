"""The sequential etcd v3 key-value model, answering as etcd does.

Theory of operation
-------------------
The state is what an etcd v3 KV store holds at its current revision: the
revision counter (1 in a fresh cluster) and, for each live key, its
`KeyValue` (create_revision, mod_revision, version, value, lease).  A
request runs against the state and yields a new state and etcd's response;
for linearizability checking, `step` accepts an observed response iff it
equals the model's (a `revision` of None in the observed response means
"not recorded" and matches any).

etcd's rules, as its server code applies them:

| request      | effect                                              | header revision        |
| ------------ | --------------------------------------------------- | ---------------------- |
| put          | rev+1; new key: create=mod=rev+1, version 1;        | rev+1                  |
|              | existing: mod=rev+1, version+1, create kept         |                        |
| range        | none; sorted by key; `limit` cuts and sets `more`;  | rev                    |
|              | `count` counts all matches; keys_only drops values  |                        |
| delete_range | removes the keys; rev+1 only if something was       | rev+1 or rev           |
|              | deleted (a delete of nothing changes nothing)       |                        |
| txn          | compares (all of them, nested txns' too) are judged | rev+1 if any write in  |
|              | on the state before the txn; then the chosen branch | the branch changed     |
|              | runs in order, seeing its own writes, every write   | something, else rev    |
|              | stamped rev+1 (one revision for the whole txn)      |                        |

A range's `range_end`: empty means the single key, ``b"\\0"`` means every
key >= key, otherwise the half-open interval [key, range_end).  A compare
over keys that do not exist compares against a zero KeyValue, except that
a value compare then always fails (etcd cannot tell a missing value from
an empty one); over a range, every key must satisfy it.  Inside a txn,
inner responses carry the revision of the txn so far, and a nested txn's
own header revision is 0, as etcd leaves it.

Not modelled: historical reads (range at a past revision), compaction,
leases' lifetimes (a lease id is stored and compared, nothing expires),
and request validation errors (etcd rejects those before they are
ordered, so they never take effect).

The model is deterministic and its state hashable, so it plugs into the
linearizability checker as the `etcd-kv` model.  Every key shares the one
revision counter, so histories are checked as a whole (no per-key
partitioning).  `execute` is the oracle other tests can call directly.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from attrs import field, frozen

from kubeproof.models.sequential import ILLEGAL, IllegalT

if TYPE_CHECKING:  # the checker imports this module (its model table): no cycle at run time
    from kubeproof.models.lincheck.history import Operation

Target = Literal["value", "version", "create", "mod", "lease"]
CompareOp = Literal["=", "!=", ">", "<"]
_TARGETS: tuple[Target, ...] = ("value", "version", "create", "mod", "lease")
_COMPARE_OPS: tuple[CompareOp, ...] = ("=", "!=", ">", "<")


def _tuple(items: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(items)


@frozen(cache_hash=True)
class KeyValue:
    key: bytes
    create_revision: int
    mod_revision: int
    version: int
    value: bytes
    lease: int = 0


@frozen(cache_hash=True)
class EtcdState:
    revision: int = 1
    kvs: tuple[KeyValue, ...] = field(default=(), converter=_tuple)  # sorted by key


# --- requests ---------------------------------------------------------------


@frozen
class Put:
    key: bytes
    value: bytes
    lease: int = 0
    prev_kv: bool = False


@frozen
class Range:
    key: bytes
    range_end: bytes = b""
    limit: int = 0
    keys_only: bool = False
    count_only: bool = False


@frozen
class DeleteRange:
    key: bytes
    range_end: bytes = b""
    prev_kv: bool = False


@frozen
class Compare:
    key: bytes
    target: Target
    op: CompareOp
    operand: bytes | int  # bytes for "value", int otherwise
    range_end: bytes = b""


@frozen
class Txn:
    compare: tuple[Compare, ...] = field(default=(), converter=_tuple)
    success: tuple[Request, ...] = field(default=(), converter=_tuple)
    failure: tuple[Request, ...] = field(default=(), converter=_tuple)


Request: TypeAlias = Put | Range | DeleteRange | Txn


# --- responses --------------------------------------------------------------


@frozen
class PutResponse:
    revision: int | None
    prev_kv: KeyValue | None = None


@frozen
class RangeResponse:
    revision: int | None
    kvs: tuple[KeyValue, ...] = field(default=(), converter=_tuple)
    count: int = 0
    more: bool = False


@frozen
class DeleteRangeResponse:
    revision: int | None
    deleted: int = 0
    prev_kvs: tuple[KeyValue, ...] = field(default=(), converter=_tuple)


@frozen
class TxnResponse:
    revision: int | None
    succeeded: bool = True
    responses: tuple[Response, ...] = field(default=(), converter=_tuple)


Response: TypeAlias = PutResponse | RangeResponse | DeleteRangeResponse | TxnResponse


# --- execution --------------------------------------------------------------


def _in_range(key: bytes, start: bytes, end: bytes) -> bool:
    if not end:
        return key == start
    if end == b"\0":
        return key >= start
    return start <= key < end


class _Work:
    """One request's scratch copy of the store (the txn's write buffer)."""

    def __init__(self, state: EtcdState) -> None:
        self.begin = state.revision
        self.items = {kv.key: kv for kv in state.kvs}
        self.changed = False

    def rev(self) -> int:
        return self.begin + 1 if self.changed else self.begin

    def select(self, key: bytes, end: bytes) -> list[KeyValue]:
        if not end:
            kv = self.items.get(key)
            return [] if kv is None else [kv]
        return sorted((kv for k, kv in self.items.items() if _in_range(k, key, end)), key=_by_key)

    def state(self) -> EtcdState:
        return EtcdState(self.rev(), tuple(sorted(self.items.values(), key=_by_key)))


def _by_key(kv: KeyValue) -> bytes:
    return kv.key


def _compare_one(c: Compare, kv: KeyValue) -> bool:
    if c.target == "value":
        a: Any = kv.value
        b: Any = c.operand
    else:
        a = {
            "version": kv.version,
            "create": kv.create_revision,
            "mod": kv.mod_revision,
            "lease": kv.lease,
        }[c.target]
        b = c.operand
    if c.op == "=":
        return bool(a == b)
    if c.op == "!=":
        return bool(a != b)
    if c.op == ">":
        return bool(a > b)
    return bool(a < b)


def _compare(work: _Work, c: Compare) -> bool:
    kvs = work.select(c.key, c.range_end)
    if not kvs:
        if c.target == "value":
            return False
        return _compare_one(c, KeyValue(c.key, 0, 0, 0, b"", 0))
    return all(_compare_one(c, kv) for kv in kvs)


def _path(work: _Work, txn: Txn) -> list[bool]:
    # etcd decides every compare, nested ones included, before running any op.
    ok = all(_compare(work, c) for c in txn.compare)
    path = [ok]
    for req in txn.success if ok else txn.failure:
        if isinstance(req, Txn):
            path.extend(_path(work, req))
    return path


def _put(work: _Work, req: Put) -> PutResponse:
    old = work.items.get(req.key)
    rev = work.begin + 1
    if old is None:
        kv = KeyValue(req.key, rev, rev, 1, req.value, req.lease)
    else:
        kv = KeyValue(req.key, old.create_revision, rev, old.version + 1, req.value, req.lease)
    work.items[req.key] = kv
    work.changed = True
    return PutResponse(rev, old if req.prev_kv else None)


def _range(work: _Work, req: Range) -> RangeResponse:
    kvs = work.select(req.key, req.range_end)
    count = len(kvs)
    more = False
    if req.count_only:
        kvs = []
    elif req.limit > 0 and len(kvs) > req.limit:
        kvs = kvs[: req.limit]
        more = True
    if req.keys_only:
        kvs = [
            KeyValue(kv.key, kv.create_revision, kv.mod_revision, kv.version, b"", kv.lease)
            for kv in kvs
        ]
    return RangeResponse(work.rev(), tuple(kvs), count, more)


def _delete(work: _Work, req: DeleteRange) -> DeleteRangeResponse:
    kvs = work.select(req.key, req.range_end)
    for kv in kvs:
        del work.items[kv.key]
    if kvs:
        work.changed = True
    return DeleteRangeResponse(work.rev(), len(kvs), tuple(kvs) if req.prev_kv else ())


def _run(work: _Work, req: Request, path: list[bool]) -> Response:
    if isinstance(req, Put):
        return _put(work, req)
    if isinstance(req, Range):
        return _range(work, req)
    if isinstance(req, DeleteRange):
        return _delete(work, req)
    ok = path.pop(0)
    responses = tuple(_run(work, r, path) for r in (req.success if ok else req.failure))
    return TxnResponse(0, ok, responses)  # a nested txn's header stays zero, as in etcd


def execute(state: EtcdState, request: Request) -> tuple[EtcdState, Response]:
    """Run one request against `state`: the new state and etcd's response."""
    work = _Work(state)
    response = _run(work, request, _path(work, request) if isinstance(request, Txn) else [])
    if isinstance(response, TxnResponse):
        # Only the outermost txn's header gets the revision.
        response = TxnResponse(work.rev(), response.succeeded, response.responses)
    return (work.state() if work.changed else state), response


def _writes(req: Request) -> bool:
    if isinstance(req, Put | DeleteRange):
        return True
    if isinstance(req, Txn):
        return any(_writes(r) for r in (*req.success, *req.failure))
    return False


def _response_writes(req: Request, resp: Response) -> bool:
    # Given the answer, did the request write?  A delete of nothing or a txn
    # whose taken branch only reads left the store as it was.
    if isinstance(req, Put):
        return True
    if isinstance(req, DeleteRange):
        return not isinstance(resp, DeleteRangeResponse) or resp.deleted > 0
    if isinstance(req, Txn) and isinstance(resp, TxnResponse):
        branch = req.success if resp.succeeded else req.failure
        if len(branch) != len(resp.responses):
            return True
        return any(_response_writes(r, o) for r, o in zip(branch, resp.responses, strict=True))
    return isinstance(req, Txn) and _writes(req)


def matches(expected: Response, observed: Response) -> bool:
    """Does the observed response equal the model's (observed revision None: any)?"""
    if type(expected) is not type(observed):
        return False
    if observed.revision is not None and observed.revision != expected.revision:
        return False
    if isinstance(expected, TxnResponse):
        assert isinstance(observed, TxnResponse)
        return (
            expected.succeeded == observed.succeeded
            and len(expected.responses) == len(observed.responses)
            and all(
                matches(e, o) for e, o in zip(expected.responses, observed.responses, strict=True)
            )
        )
    if isinstance(expected, PutResponse):
        assert isinstance(observed, PutResponse)
        return expected.prev_kv == observed.prev_kv
    if isinstance(expected, RangeResponse):
        assert isinstance(observed, RangeResponse)
        return (expected.kvs, expected.count, expected.more) == (
            observed.kvs,
            observed.count,
            observed.more,
        )
    assert isinstance(expected, DeleteRangeResponse) and isinstance(observed, DeleteRangeResponse)
    return (expected.deleted, expected.prev_kvs) == (observed.deleted, observed.prev_kvs)


# --- JSON codec -------------------------------------------------------------


def _bytes(obj: Any, what: str) -> bytes:
    if not isinstance(obj, str):
        raise ValueError(f"{what} must be a string, got {obj!r}")
    return obj.encode()


def _int(obj: Any, what: str) -> int:
    if isinstance(obj, bool) or not isinstance(obj, int):
        raise ValueError(f"{what} must be an integer, got {obj!r}")
    return obj


def _bool(obj: Any, what: str) -> bool:
    if not isinstance(obj, bool):
        raise ValueError(f"{what} must be true or false, got {obj!r}")
    return obj


def _known(obj: dict[str, Any], allowed: set[str], what: str) -> None:
    extra = set(obj) - allowed
    if extra:
        raise ValueError(f"{what}: unknown field(s) {', '.join(sorted(extra))}")


def request_from_json(obj: Any) -> Request:
    if not isinstance(obj, dict):
        raise ValueError(f"etcd request must be an object, got {obj!r}")
    op = obj.get("op")
    if op == "put":
        _known(obj, {"op", "key", "value", "lease", "prev_kv"}, "put")
        return Put(
            _bytes(obj.get("key"), "put key"),
            _bytes(obj.get("value"), "put value"),
            _int(obj.get("lease", 0), "put lease"),
            _bool(obj.get("prev_kv", False), "put prev_kv"),
        )
    if op == "range":
        _known(obj, {"op", "key", "range_end", "limit", "keys_only", "count_only"}, "range")
        return Range(
            _bytes(obj.get("key"), "range key"),
            _bytes(obj.get("range_end", ""), "range range_end"),
            _int(obj.get("limit", 0), "range limit"),
            _bool(obj.get("keys_only", False), "range keys_only"),
            _bool(obj.get("count_only", False), "range count_only"),
        )
    if op == "delete":
        _known(obj, {"op", "key", "range_end", "prev_kv"}, "delete")
        return DeleteRange(
            _bytes(obj.get("key"), "delete key"),
            _bytes(obj.get("range_end", ""), "delete range_end"),
            _bool(obj.get("prev_kv", False), "delete prev_kv"),
        )
    if op == "txn":
        _known(obj, {"op", "compare", "success", "failure"}, "txn")
        return Txn(
            tuple(_compare_from_json(c) for c in _list(obj.get("compare", []), "txn compare")),
            tuple(request_from_json(r) for r in _list(obj.get("success", []), "txn success")),
            tuple(request_from_json(r) for r in _list(obj.get("failure", []), "txn failure")),
        )
    raise ValueError(f"etcd op must be one of put, range, delete, txn; got {op!r}")


def _list(obj: Any, what: str) -> list[Any]:
    if not isinstance(obj, list):
        raise ValueError(f"{what} must be a list, got {obj!r}")
    return obj


def _compare_from_json(obj: Any) -> Compare:
    if not isinstance(obj, dict):
        raise ValueError(f"compare must be an object, got {obj!r}")
    _known(obj, {"key", "target", "op", "value", "range_end"}, "compare")
    target = obj.get("target")
    if target not in _TARGETS:
        raise ValueError(f"compare target must be one of {', '.join(_TARGETS)}, got {target!r}")
    op = obj.get("op")
    if op not in _COMPARE_OPS:
        raise ValueError(f"compare op must be one of {', '.join(_COMPARE_OPS)}, got {op!r}")
    operand: bytes | int
    if target == "value":
        operand = _bytes(obj.get("value"), "compare value")
    else:
        operand = _int(obj.get("value"), f"compare {target}")
    return Compare(
        _bytes(obj.get("key"), "compare key"),
        target,
        op,
        operand,
        _bytes(obj.get("range_end", ""), "compare range_end"),
    )


def request_to_json(req: Request) -> Any:
    if isinstance(req, Put):
        return {
            "op": "put",
            "key": req.key.decode(),
            "value": req.value.decode(),
            "lease": req.lease,
            "prev_kv": req.prev_kv,
        }
    if isinstance(req, Range):
        return {
            "op": "range",
            "key": req.key.decode(),
            "range_end": req.range_end.decode(),
            "limit": req.limit,
            "keys_only": req.keys_only,
            "count_only": req.count_only,
        }
    if isinstance(req, DeleteRange):
        return {
            "op": "delete",
            "key": req.key.decode(),
            "range_end": req.range_end.decode(),
            "prev_kv": req.prev_kv,
        }
    return {
        "op": "txn",
        "compare": [
            {
                "key": c.key.decode(),
                "target": c.target,
                "op": c.op,
                "value": c.operand.decode() if isinstance(c.operand, bytes) else c.operand,
                "range_end": c.range_end.decode(),
            }
            for c in req.compare
        ],
        "success": [request_to_json(r) for r in req.success],
        "failure": [request_to_json(r) for r in req.failure],
    }


def _kv_from_json(obj: Any) -> KeyValue:
    if not isinstance(obj, dict):
        raise ValueError(f"key-value must be an object, got {obj!r}")
    _known(obj, {"key", "create_revision", "mod_revision", "version", "value", "lease"}, "kv")
    return KeyValue(
        _bytes(obj.get("key"), "kv key"),
        _int(obj.get("create_revision"), "kv create_revision"),
        _int(obj.get("mod_revision"), "kv mod_revision"),
        _int(obj.get("version"), "kv version"),
        _bytes(obj.get("value", ""), "kv value"),
        _int(obj.get("lease", 0), "kv lease"),
    )


def _kv_to_json(kv: KeyValue) -> Any:
    return {
        "key": kv.key.decode(),
        "create_revision": kv.create_revision,
        "mod_revision": kv.mod_revision,
        "version": kv.version,
        "value": kv.value.decode(),
        "lease": kv.lease,
    }


def response_from_json(req: Request, obj: Any) -> Response:
    if not isinstance(obj, dict):
        raise ValueError(f"etcd response must be an object, got {obj!r}")
    rev = obj.get("revision")
    revision = None if rev is None else _int(rev, "response revision")
    if isinstance(req, Put):
        _known(obj, {"revision", "prev_kv"}, "put response")
        prev = obj.get("prev_kv")
        return PutResponse(revision, None if prev is None else _kv_from_json(prev))
    if isinstance(req, Range):
        _known(obj, {"revision", "kvs", "count", "more"}, "range response")
        kvs = tuple(_kv_from_json(k) for k in _list(obj.get("kvs", []), "range kvs"))
        return RangeResponse(
            revision,
            kvs,
            _int(obj.get("count", len(kvs)), "range count"),
            _bool(obj.get("more", False), "range more"),
        )
    if isinstance(req, DeleteRange):
        _known(obj, {"revision", "deleted", "prev_kvs"}, "delete response")
        return DeleteRangeResponse(
            revision,
            _int(obj.get("deleted", 0), "delete deleted"),
            tuple(_kv_from_json(k) for k in _list(obj.get("prev_kvs", []), "delete prev_kvs")),
        )
    _known(obj, {"revision", "succeeded", "responses"}, "txn response")
    succeeded = _bool(obj.get("succeeded"), "txn succeeded")
    branch = req.success if succeeded else req.failure
    raw = _list(obj.get("responses", []), "txn responses")
    if len(raw) != len(branch):
        raise ValueError(
            f"txn response has {len(raw)} responses, its {'success' if succeeded else 'failure'} "
            f"branch has {len(branch)} requests"
        )
    return TxnResponse(
        revision,
        succeeded,
        tuple(response_from_json(r, o) for r, o in zip(branch, raw, strict=True)),
    )


def response_to_json(resp: Response) -> Any:
    if isinstance(resp, PutResponse):
        return {
            "revision": resp.revision,
            "prev_kv": None if resp.prev_kv is None else _kv_to_json(resp.prev_kv),
        }
    if isinstance(resp, RangeResponse):
        return {
            "revision": resp.revision,
            "kvs": [_kv_to_json(k) for k in resp.kvs],
            "count": resp.count,
            "more": resp.more,
        }
    if isinstance(resp, DeleteRangeResponse):
        return {
            "revision": resp.revision,
            "deleted": resp.deleted,
            "prev_kvs": [_kv_to_json(k) for k in resp.prev_kvs],
        }
    return {
        "revision": resp.revision,
        "succeeded": resp.succeeded,
        "responses": [response_to_json(r) for r in resp.responses],
    }


def describe_request(req: Request) -> str:
    if isinstance(req, Put):
        return f"put({req.key!r}, {req.value!r})"
    if isinstance(req, Range):
        end = f", end={req.range_end!r}" if req.range_end else ""
        return f"range({req.key!r}{end})"
    if isinstance(req, DeleteRange):
        end = f", end={req.range_end!r}" if req.range_end else ""
        return f"delete({req.key!r}{end})"
    cmp = " and ".join(f"{c.target}({c.key!r}) {c.op} {c.operand!r}" for c in req.compare)
    ok = "; ".join(describe_request(r) for r in req.success)
    ko = "; ".join(describe_request(r) for r in req.failure)
    return f"txn(if {cmp or 'true'} then [{ok}] else [{ko}])"


class EtcdKvModel:
    """etcd v3 KV semantics as a checker model (one partition: the revision is global)."""

    name = "etcd-kv"

    def __init__(self, initial: EtcdState | None = None) -> None:
        self.initial = initial if initial is not None else EtcdState()

    def init(self) -> EtcdState:
        return self.initial

    def step(self, state: EtcdState, input: Request, output: Response) -> EtcdState | IllegalT:
        new, expected = execute(state, input)
        return new if matches(expected, output) else ILLEGAL

    def apply(self, state: EtcdState, input: Request) -> EtcdState:
        return execute(state, input)[0]

    def run(self, state: EtcdState, input: Request) -> tuple[EtcdState, Response]:
        return execute(state, input)

    def mutates(self, input: Request, output: Response | None) -> bool:
        if output is None:
            return _writes(input)
        return _response_writes(input, output)

    def partition_key(self, input: Request) -> Hashable:
        return None

    def may_become_legal(
        self, state: EtcdState, input: Request, output: Response, writers: Iterable[Request]
    ) -> bool:
        # Any write moves the revision, so only "no writes left" is a sure dead end.
        return any(True for _ in writers)

    def simplify(self, ops: Sequence[Operation]) -> Sequence[Operation]:
        return ops

    def describe_operation(self, input: Request, output: Response | None) -> str:
        text = describe_request(input)
        if output is None:
            return text + " -> ?"
        return f"{text} -> {response_to_json(output)}"

    def describe_state(self, state: EtcdState) -> str:
        kvs = ", ".join(
            f"{kv.key!r}={kv.value!r}@{kv.mod_revision}/v{kv.version}" for kv in state.kvs
        )
        return f"rev {state.revision} {{{kvs}}}"

    def input_from_json(self, obj: Any) -> Request:
        return request_from_json(obj)

    def output_from_json(self, input: Request, obj: Any) -> Response:
        return response_from_json(input, obj)

    def input_to_json(self, input: Request) -> Any:
        return request_to_json(input)

    def output_to_json(self, output: Response) -> Any:
        return response_to_json(output)
