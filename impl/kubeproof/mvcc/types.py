"""Value types of the MVCC store, after etcd's mvccpb and etcdserverpb.

Theory of operation
-------------------
Everything that enters or leaves the store is one of these frozen values:
the stored `KeyValue`, the requests (`RangeRequest`, `PutRequest`,
`DeleteRangeRequest`, `TxnRequest` with its `Compare`s, `CompactionRequest`
and the lease requests) and the responses, each carrying a
`ResponseHeader`.  Field names and meanings are etcd's, in snake case
(proto's ``ID``/``TTL`` become ``id``/``ttl``).  Enums keep the proto enum
names as their values so that a trace or a JSON dump reads like etcd's.

Conventions that matter, all etcd's:

* Keys and values are ``bytes``.  A `KeyValue` whose ``version`` is 0 is a
  tombstone: it is what a delete leaves in the history and what a DELETE
  event carries (only ``key`` and ``mod_revision`` set).
* ``range_end``: ``b""`` means the single key, ``b"\\0"`` means every key
  ``>= key``, anything else is the half-open interval ``[key, range_end)``.
* A txn's operations are `RequestOp`s and its responses `ResponseOp`s,
  etcd's one-of wrappers, so that a txn encodes to JSON and back (and reads
  like etcd's JSON gateway); plain requests are wrapped on construction.
* A response header from the store carries ``revision`` and the cluster
  identity the store was built with; responses nested in a txn carry only a
  revision, and a nested txn response carries none (revision 0), exactly as
  etcd fills them.

`KeyValue` has no validators because the store builds millions of them;
requests validate their field types, so bad input fails at construction
with a message naming the field.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Any, TypeAlias

from attrs import Attribute, field, frozen


def _bytes(_: Any, attribute: Attribute[Any], value: Any) -> None:
    if not isinstance(value, bytes):
        raise TypeError(f"{attribute.name} must be bytes, got {type(value).__name__}: {value!r}")


def _int(_: Any, attribute: Attribute[Any], value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{attribute.name} must be an int, got {type(value).__name__}: {value!r}")


def _bool(_: Any, attribute: Attribute[Any], value: Any) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{attribute.name} must be a bool, got {type(value).__name__}: {value!r}")


def _enum(kind: type[enum.Enum]) -> Any:
    def check(_: Any, attribute: Attribute[Any], value: Any) -> None:
        if not isinstance(value, kind):
            raise TypeError(
                f"{attribute.name} must be a {kind.__name__}, got {type(value).__name__}: {value!r}"
            )

    return check


# ---------------------------------------------------------------------------
# Enums


class CompareTarget(enum.Enum):
    VERSION = "VERSION"
    CREATE = "CREATE"
    MOD = "MOD"
    VALUE = "VALUE"
    LEASE = "LEASE"


class CompareResult(enum.Enum):
    EQUAL = "EQUAL"
    GREATER = "GREATER"
    LESS = "LESS"
    NOT_EQUAL = "NOT_EQUAL"


class SortOrder(enum.Enum):
    NONE = "NONE"
    ASCEND = "ASCEND"
    DESCEND = "DESCEND"


class SortTarget(enum.Enum):
    KEY = "KEY"
    VERSION = "VERSION"
    CREATE = "CREATE"
    MOD = "MOD"
    VALUE = "VALUE"


# etcd's rpc.proto numbers these enums in the order they are declared above;
# the wire codecs (the gRPC server, the proposal format) index these by it.
PROTO_SORT_ORDERS: tuple[SortOrder, ...] = tuple(SortOrder)
PROTO_SORT_TARGETS: tuple[SortTarget, ...] = tuple(SortTarget)
PROTO_COMPARE_TARGETS: tuple[CompareTarget, ...] = tuple(CompareTarget)
PROTO_COMPARE_RESULTS: tuple[CompareResult, ...] = tuple(CompareResult)


class EventType(enum.Enum):
    PUT = "PUT"
    DELETE = "DELETE"


class WatchFilter(enum.Enum):
    """etcd's WatchCreateRequest.FilterType: drop events of this kind."""

    NOPUT = "NOPUT"
    NODELETE = "NODELETE"


# ---------------------------------------------------------------------------
# Stored values and headers


@frozen
class KeyValue:
    key: bytes
    create_revision: int = 0
    mod_revision: int = 0
    version: int = 0
    value: bytes = b""
    lease: int = 0


@frozen
class ResponseHeader:
    cluster_id: int = 0
    member_id: int = 0
    revision: int = 0
    raft_term: int = 0


@frozen
class Event:
    type: EventType
    kv: KeyValue
    prev_kv: KeyValue | None = None


# ---------------------------------------------------------------------------
# KV requests


@frozen
class RangeRequest:
    key: bytes = field(validator=_bytes)
    range_end: bytes = field(default=b"", validator=_bytes)
    limit: int = field(default=0, validator=_int)
    revision: int = field(default=0, validator=_int)
    sort_order: SortOrder = field(default=SortOrder.NONE, validator=_enum(SortOrder))
    sort_target: SortTarget = field(default=SortTarget.KEY, validator=_enum(SortTarget))
    serializable: bool = field(default=False, validator=_bool)
    keys_only: bool = field(default=False, validator=_bool)
    count_only: bool = field(default=False, validator=_bool)
    min_mod_revision: int = field(default=0, validator=_int)
    max_mod_revision: int = field(default=0, validator=_int)
    min_create_revision: int = field(default=0, validator=_int)
    max_create_revision: int = field(default=0, validator=_int)


@frozen
class PutRequest:
    key: bytes = field(validator=_bytes)
    value: bytes = field(default=b"", validator=_bytes)
    lease: int = field(default=0, validator=_int)
    prev_kv: bool = field(default=False, validator=_bool)
    ignore_value: bool = field(default=False, validator=_bool)
    ignore_lease: bool = field(default=False, validator=_bool)


@frozen
class DeleteRangeRequest:
    key: bytes = field(validator=_bytes)
    range_end: bytes = field(default=b"", validator=_bytes)
    prev_kv: bool = field(default=False, validator=_bool)


@frozen
class Compare:
    """One guard of a txn.  As in etcd's proto, the operand sits in the field
    named for the target (``version``, ``create_revision``, ``mod_revision``,
    ``value`` or ``lease``); the others are ignored."""

    key: bytes = field(validator=_bytes)
    target: CompareTarget = field(validator=_enum(CompareTarget))
    result: CompareResult = field(validator=_enum(CompareResult))
    version: int = field(default=0, validator=_int)
    create_revision: int = field(default=0, validator=_int)
    mod_revision: int = field(default=0, validator=_int)
    value: bytes = field(default=b"", validator=_bytes)
    lease: int = field(default=0, validator=_int)
    range_end: bytes = field(default=b"", validator=_bytes)


@frozen
class RequestOp:
    """etcd's RequestOp: one operation of a txn, in exactly one of its fields
    (the proto's oneof), so that its JSON says which kind it is.  `TxnRequest`
    wraps plain requests in it; ``.request`` unwraps."""

    request_range: RangeRequest | None = None
    request_put: PutRequest | None = None
    request_delete_range: DeleteRangeRequest | None = None
    request_txn: TxnRequest | None = None

    def __attrs_post_init__(self) -> None:
        n = sum(
            f is not None
            for f in (
                self.request_range,
                self.request_put,
                self.request_delete_range,
                self.request_txn,
            )
        )
        if n != 1:
            raise TypeError(f"a RequestOp holds exactly one request, this one holds {n}")

    @property
    def request(self) -> TxnOp:
        for r in (
            self.request_range,
            self.request_put,
            self.request_delete_range,
            self.request_txn,
        ):
            if r is not None:
                return r
        raise AssertionError("unreachable: checked at construction")

    @staticmethod
    def of(op: TxnOp | RequestOp) -> RequestOp:
        if isinstance(op, RequestOp):
            return op
        if isinstance(op, RangeRequest):
            return RequestOp(request_range=op)
        if isinstance(op, PutRequest):
            return RequestOp(request_put=op)
        if isinstance(op, DeleteRangeRequest):
            return RequestOp(request_delete_range=op)
        if isinstance(op, TxnRequest):
            return RequestOp(request_txn=op)
        raise TypeError(
            "txn operations must be RangeRequest, PutRequest, DeleteRangeRequest, "
            f"TxnRequest or RequestOp, got {type(op).__name__}: {op!r}"
        )


def _request_ops(ops: Iterable[TxnOp | RequestOp]) -> tuple[RequestOp, ...]:
    return tuple(RequestOp.of(op) for op in ops)


def _compares(cmps: Iterable[Compare]) -> tuple[Compare, ...]:
    out = tuple(cmps)
    for c in out:
        if not isinstance(c, Compare):
            raise TypeError(f"txn compares must be Compare, got {type(c).__name__}: {c!r}")
    return out


@frozen
class TxnRequest:
    """``success`` and ``failure`` take plain requests (or `RequestOp`s) and
    hold them as `RequestOp`s; ``success_ops()``/``failure_ops()`` give the
    plain requests back."""

    compare: tuple[Compare, ...] = field(default=(), converter=_compares)
    success: tuple[RequestOp, ...] = field(default=(), converter=_request_ops)
    failure: tuple[RequestOp, ...] = field(default=(), converter=_request_ops)

    def success_ops(self) -> tuple[TxnOp, ...]:
        return tuple(op.request for op in self.success)

    def failure_ops(self) -> tuple[TxnOp, ...]:
        return tuple(op.request for op in self.failure)


TxnOp: TypeAlias = "RangeRequest | PutRequest | DeleteRangeRequest | TxnRequest"
"""One operation of a txn, unwrapped."""


@frozen
class CompactionRequest:
    revision: int = field(validator=_int)
    physical: bool = field(default=False, validator=_bool)


# ---------------------------------------------------------------------------
# KV responses


@frozen
class RangeResponse:
    header: ResponseHeader
    kvs: tuple[KeyValue, ...] = ()
    more: bool = False
    count: int = 0


@frozen
class PutResponse:
    header: ResponseHeader
    prev_kv: KeyValue | None = None


@frozen
class DeleteRangeResponse:
    header: ResponseHeader
    deleted: int = 0
    prev_kvs: tuple[KeyValue, ...] = ()


@frozen
class ResponseOp:
    """etcd's ResponseOp: the response to one txn operation, in the field
    named for its kind; ``.response`` unwraps."""

    response_range: RangeResponse | None = None
    response_put: PutResponse | None = None
    response_delete_range: DeleteRangeResponse | None = None
    response_txn: TxnResponse | None = None

    @property
    def response(self) -> TxnOpResponse:
        for r in (
            self.response_range,
            self.response_put,
            self.response_delete_range,
            self.response_txn,
        ):
            if r is not None:
                return r
        raise TypeError("an empty ResponseOp")

    @staticmethod
    def of(resp: TxnOpResponse) -> ResponseOp:
        if isinstance(resp, RangeResponse):
            return ResponseOp(response_range=resp)
        if isinstance(resp, PutResponse):
            return ResponseOp(response_put=resp)
        if isinstance(resp, DeleteRangeResponse):
            return ResponseOp(response_delete_range=resp)
        return ResponseOp(response_txn=resp)


@frozen
class TxnResponse:
    header: ResponseHeader
    succeeded: bool = False
    responses: tuple[ResponseOp, ...] = ()


TxnOpResponse: TypeAlias = "RangeResponse | PutResponse | DeleteRangeResponse | TxnResponse"


@frozen
class CompactionResponse:
    header: ResponseHeader


# ---------------------------------------------------------------------------
# Leases


@frozen
class LeaseGrantRequest:
    ttl: int = field(validator=_int)
    id: int = field(default=0, validator=_int)


@frozen
class LeaseRevokeRequest:
    id: int = field(validator=_int)


@frozen
class LeaseKeepAliveRequest:
    id: int = field(validator=_int)


@frozen
class LeaseTimeToLiveRequest:
    id: int = field(validator=_int)
    keys: bool = field(default=False, validator=_bool)


@frozen
class LeaseLeasesRequest:
    pass


@frozen
class LeaseGrantResponse:
    header: ResponseHeader
    id: int
    ttl: int


@frozen
class LeaseRevokeResponse:
    header: ResponseHeader


@frozen
class LeaseKeepAliveResponse:
    header: ResponseHeader
    id: int
    ttl: int


@frozen
class LeaseTimeToLiveResponse:
    header: ResponseHeader
    id: int
    ttl: int
    granted_ttl: int
    keys: tuple[bytes, ...] = ()


@frozen
class LeaseLeasesResponse:
    header: ResponseHeader
    leases: tuple[int, ...] = ()


# ---------------------------------------------------------------------------
# Watch


@frozen
class WatchResponse:
    """What a watcher delivers: a batch of events, or its cancellation.

    A watcher whose next revision was compacted away gets one response with
    ``canceled=True`` and ``compact_revision`` set (header revision 0, as
    etcd sends it) and no events afterwards."""

    header: ResponseHeader
    watch_id: int
    events: tuple[Event, ...] = ()
    canceled: bool = False
    compact_revision: int = 0
    cancel_reason: str = ""
