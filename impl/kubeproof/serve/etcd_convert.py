"""Conversions between etcd's protobuf wire messages and `kubeproof.mvcc` values.

Theory of operation
-------------------
The gRPC layer receives etcdserverpb messages (generated from our own
``etcd_pb/*.proto``) and must hand the store its own frozen request values,
then turn the store's responses back into protobuf.  Both directions are
plain field copies with etcd's names; the only translation rules are:

| wire                                   | kubeproof.mvcc                          |
| -------------------------------------- | --------------------------------------- |
| enum numbers (SortOrder, CompareTarget, | enum members by the same name          |
| CompareResult, FilterType, EventType)  |                                         |
| ``Compare.target_union`` (a oneof)      | the operand field named for the target |
| ``RequestOp``/``ResponseOp`` oneofs     | `RequestOp`/`ResponseOp` wrappers       |
| ``ID``/``TTL``/``grantedTTL``           | ``id``/``ttl``/``granted_ttl``          |
| ``LeaseStatus`` list                    | a tuple of lease ids                    |

Response headers: a top-level response carries the answering member's
identity (cluster id, member id, Raft term) and the store's revision; the
sub-responses of a txn carry only the revision the store gave them (0 for a
nested txn), exactly as etcd fills them.  Everything here is pure.
"""

from __future__ import annotations

from typing import TypeVar

from attrs import frozen

from kubeproof.mvcc import (
    CompactionRequest,
    Compare,
    DeleteRangeRequest,
    DeleteRangeResponse,
    Event,
    EventType,
    KeyValue,
    PutRequest,
    PutResponse,
    RangeRequest,
    RangeResponse,
    RequestOp,
    ResponseHeader,
    ResponseOp,
    TxnRequest,
    TxnResponse,
    WatchFilter,
)
from kubeproof.mvcc.types import (
    PROTO_COMPARE_RESULTS,
    PROTO_COMPARE_TARGETS,
    PROTO_SORT_ORDERS,
    PROTO_SORT_TARGETS,
)

from .etcd_pb import kv_pb2, rpc_pb2

__all__ = [
    "Identity",
    "compaction_request",
    "delete_range_request",
    "delete_range_response",
    "event_pb",
    "header_pb",
    "kv_pb",
    "put_request",
    "put_response",
    "range_request",
    "range_response",
    "txn_request",
    "txn_response",
    "watch_filters",
]


@frozen
class Identity:
    """Who answers: the header fields that are not the revision."""

    cluster_id: int = 0
    member_id: int = 0
    raft_term: int = 0


# Enum numbers are the proto's; the tuples are indexed by them.
_SORT_ORDERS = PROTO_SORT_ORDERS
_SORT_TARGETS = PROTO_SORT_TARGETS
_COMPARE_RESULTS = PROTO_COMPARE_RESULTS
_COMPARE_TARGETS = PROTO_COMPARE_TARGETS
_FILTERS = (WatchFilter.NOPUT, WatchFilter.NODELETE)

T = TypeVar("T")


class WireError(ValueError):
    """A message that decodes as protobuf but holds a value etcd would refuse
    (an enum number out of range); the server answers InvalidArgument."""


def _pick(table: tuple[T, ...], n: int, what: str) -> T:
    if 0 <= n < len(table):
        return table[n]
    raise WireError(f"unknown {what} {n}")


# ---------------------------------------------------------------- requests


def range_request(m: rpc_pb2.RangeRequest) -> RangeRequest:
    return RangeRequest(
        key=m.key,
        range_end=m.range_end,
        limit=m.limit,
        revision=m.revision,
        sort_order=_pick(_SORT_ORDERS, m.sort_order, "sort order"),
        sort_target=_pick(_SORT_TARGETS, m.sort_target, "sort target"),
        serializable=m.serializable,
        keys_only=m.keys_only,
        count_only=m.count_only,
        min_mod_revision=m.min_mod_revision,
        max_mod_revision=m.max_mod_revision,
        min_create_revision=m.min_create_revision,
        max_create_revision=m.max_create_revision,
    )


def put_request(m: rpc_pb2.PutRequest) -> PutRequest:
    return PutRequest(
        key=m.key,
        value=m.value,
        lease=m.lease,
        prev_kv=m.prev_kv,
        ignore_value=m.ignore_value,
        ignore_lease=m.ignore_lease,
    )


def delete_range_request(m: rpc_pb2.DeleteRangeRequest) -> DeleteRangeRequest:
    return DeleteRangeRequest(key=m.key, range_end=m.range_end, prev_kv=m.prev_kv)


def compaction_request(m: rpc_pb2.CompactionRequest) -> CompactionRequest:
    return CompactionRequest(revision=m.revision, physical=m.physical)


def _compare(m: rpc_pb2.Compare) -> Compare:
    target = _pick(_COMPARE_TARGETS, m.target, "compare target")
    # The operand sits in whichever oneof field the client set; etcd reads the
    # one named for the target and treats an unset one as its zero value.
    return Compare(
        key=m.key,
        target=target,
        result=_pick(_COMPARE_RESULTS, m.result, "compare result"),
        version=m.version,
        create_revision=m.create_revision,
        mod_revision=m.mod_revision,
        value=m.value,
        lease=m.lease,
        range_end=m.range_end,
    )


def _request_op(m: rpc_pb2.RequestOp) -> RequestOp:
    which = m.WhichOneof("request")
    if which == "request_range":
        return RequestOp(request_range=range_request(m.request_range))
    if which == "request_put":
        return RequestOp(request_put=put_request(m.request_put))
    if which == "request_delete_range":
        return RequestOp(request_delete_range=delete_range_request(m.request_delete_range))
    if which == "request_txn":
        return RequestOp(request_txn=txn_request(m.request_txn))
    raise WireError("a txn operation (RequestOp) holds no request")


def txn_request(m: rpc_pb2.TxnRequest) -> TxnRequest:
    return TxnRequest(
        compare=tuple(_compare(c) for c in m.compare),
        success=tuple(_request_op(op) for op in m.success),
        failure=tuple(_request_op(op) for op in m.failure),
    )


def watch_filters(m: rpc_pb2.WatchCreateRequest) -> tuple[WatchFilter, ...]:
    return tuple(_pick(_FILTERS, f, "watch filter") for f in m.filters)


# --------------------------------------------------------------- responses


def header_pb(h: ResponseHeader, ident: Identity | None) -> rpc_pb2.ResponseHeader:
    """``ident`` None: a sub-response of a txn, which carries only its revision."""
    if ident is None:
        return rpc_pb2.ResponseHeader(revision=h.revision)
    return rpc_pb2.ResponseHeader(
        cluster_id=ident.cluster_id,
        member_id=ident.member_id,
        revision=h.revision,
        raft_term=ident.raft_term,
    )


def kv_pb(kv: KeyValue) -> kv_pb2.KeyValue:
    return kv_pb2.KeyValue(
        key=kv.key,
        create_revision=kv.create_revision,
        mod_revision=kv.mod_revision,
        version=kv.version,
        value=kv.value,
        lease=kv.lease,
    )


def event_pb(ev: Event) -> kv_pb2.Event:
    out = kv_pb2.Event(
        type=kv_pb2.Event.DELETE if ev.type is EventType.DELETE else kv_pb2.Event.PUT,
        kv=kv_pb(ev.kv),
    )
    if ev.prev_kv is not None:
        out.prev_kv.CopyFrom(kv_pb(ev.prev_kv))
    return out


def range_response(r: RangeResponse, ident: Identity | None) -> rpc_pb2.RangeResponse:
    return rpc_pb2.RangeResponse(
        header=header_pb(r.header, ident),
        kvs=[kv_pb(kv) for kv in r.kvs],
        more=r.more,
        count=r.count,
    )


def put_response(r: PutResponse, ident: Identity | None) -> rpc_pb2.PutResponse:
    out = rpc_pb2.PutResponse(header=header_pb(r.header, ident))
    if r.prev_kv is not None:
        out.prev_kv.CopyFrom(kv_pb(r.prev_kv))
    return out


def delete_range_response(
    r: DeleteRangeResponse, ident: Identity | None
) -> rpc_pb2.DeleteRangeResponse:
    return rpc_pb2.DeleteRangeResponse(
        header=header_pb(r.header, ident),
        deleted=r.deleted,
        prev_kvs=[kv_pb(kv) for kv in r.prev_kvs],
    )


def _response_op(op: ResponseOp) -> rpc_pb2.ResponseOp:
    if op.response_range is not None:
        return rpc_pb2.ResponseOp(response_range=range_response(op.response_range, None))
    if op.response_put is not None:
        return rpc_pb2.ResponseOp(response_put=put_response(op.response_put, None))
    if op.response_delete_range is not None:
        return rpc_pb2.ResponseOp(
            response_delete_range=delete_range_response(op.response_delete_range, None)
        )
    if op.response_txn is not None:
        return rpc_pb2.ResponseOp(response_txn=txn_response(op.response_txn, None))
    raise ValueError("an empty ResponseOp")


def txn_response(r: TxnResponse, ident: Identity | None) -> rpc_pb2.TxnResponse:
    return rpc_pb2.TxnResponse(
        header=header_pb(r.header, ident),
        succeeded=r.succeeded,
        responses=[_response_op(op) for op in r.responses],
    )
