"""Values that cross the boundary of a replicated-store member.

Theory of operation
-------------------
A client talks to a `Member` with a `ClientRequest`: one etcd request (a
`kubeproof.mvcc` request value) plus the client's session identity
``(client_id, seq)`` and ``ack``.  The member answers with a
`ClientResponse` carrying the same ``(client_id, seq)`` and a `Result`: the
etcd response, or an `Error`.

Sessions (Raft dissertation, section 6.3): a client numbers its requests
1, 2, 3 ... (``seq``) and sends a retry with the *same* number, so that the
state machine can recognise it and answer from its cache instead of
applying it again.  ``ack`` is the lowest sequence number the client is
still waiting for: everything below it the client has either been answered
or given up on, so the state machine may forget those answers and refuse
any late copy of them (`ErrStaleRequest`).  A client with one request in
flight at a time sends ``ack = seq``; an adapter multiplexing many
concurrent requests over one client id sends its lowest outstanding one.

`Result` and `Proposal` are "one-of" values, one optional field per kind,
exactly like etcd's ``RequestOp``/``ResponseOp``, so that the one JSON codec
(`kubeproof.codec`) turns them into JSON and back: the Raft log and the
snapshots hold them that way.

`Error` is an error as a value (never an exception crossing the boundary):
etcd's Go identifier, the gRPC status code and message a client would see,
and a free-form detail for humans.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from attrs import Attribute, field, frozen

from kubeproof.mvcc import (
    CompactionRequest,
    CompactionResponse,
    DeleteRangeRequest,
    DeleteRangeResponse,
    LeaseGrantRequest,
    LeaseGrantResponse,
    LeaseKeepAliveRequest,
    LeaseKeepAliveResponse,
    LeaseLeasesRequest,
    LeaseLeasesResponse,
    LeaseRevokeRequest,
    LeaseRevokeResponse,
    LeaseTimeToLiveRequest,
    LeaseTimeToLiveResponse,
    MVCCError,
    PutRequest,
    PutResponse,
    RangeRequest,
    RangeResponse,
    TxnRequest,
    TxnResponse,
)

WriteRequest: TypeAlias = (
    "PutRequest | DeleteRangeRequest | TxnRequest | CompactionRequest | LeaseGrantRequest"
    " | LeaseRevokeRequest | LeaseKeepAliveRequest"
)
"""Requests that go through the Raft log (a txn counts as a write even if it only reads)."""

ReadRequest: TypeAlias = "RangeRequest | LeaseTimeToLiveRequest | LeaseLeasesRequest"
"""Requests served from a member's applied state (after ReadIndex, unless serializable)."""

KVRequest: TypeAlias = "WriteRequest | ReadRequest"

KVResponse: TypeAlias = (
    "RangeResponse | PutResponse | DeleteRangeResponse | TxnResponse | CompactionResponse"
    " | LeaseGrantResponse | LeaseRevokeResponse | LeaseKeepAliveResponse"
    " | LeaseTimeToLiveResponse | LeaseLeasesResponse"
)

WRITE_TYPES: tuple[type, ...] = (
    PutRequest,
    DeleteRangeRequest,
    TxnRequest,
    CompactionRequest,
    LeaseGrantRequest,
    LeaseRevokeRequest,
    LeaseKeepAliveRequest,
)
READ_TYPES: tuple[type, ...] = (RangeRequest, LeaseTimeToLiveRequest, LeaseLeasesRequest)

# gRPC status codes the server-level errors use.
CODE_UNAVAILABLE = 14
CODE_FAILED_PRECONDITION = 9


def _positive(_: Any, attribute: Attribute[Any], value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{attribute.name} must be a positive int, got {value!r}")


def _request(_: Any, attribute: Attribute[Any], value: Any) -> None:
    if not isinstance(value, WRITE_TYPES + READ_TYPES):
        raise TypeError(
            f"{attribute.name} must be an etcd request (kubeproof.mvcc Put/Range/DeleteRange/"
            f"Txn/Compaction/Lease* request), got {type(value).__name__}: {value!r}"
        )


@frozen
class Error:
    """An error as a value: etcd's name for it, what a gRPC client sees, and why."""

    code: str
    """etcd's Go identifier, e.g. ``ErrCompacted``, ``ErrNoLeader``."""
    message: str
    """The gRPC status message, e.g. ``etcdserver: no leader``."""
    grpc_code: int
    detail: str = ""

    @staticmethod
    def of(exc: MVCCError) -> Error:
        return Error(exc.name, exc.grpc_message, exc.grpc_code, exc.detail)


def err_no_leader(detail: str = "") -> Error:
    """The request could not be proposed (no leader known, transfer in progress ...).
    Nothing was appended: only this attempt failed, a retry may succeed."""
    return Error("ErrNoLeader", "etcdserver: no leader", CODE_UNAVAILABLE, detail)


def err_stale_request(detail: str = "") -> Error:
    """A copy of a request older than what the client already acknowledged: refused, not applied."""
    return Error(
        "ErrStaleRequest",
        "etcdserver: request sequence number is below the session's acknowledged one",
        CODE_FAILED_PRECONDITION,
        detail,
    )


def err_stopped(detail: str = "") -> Error:
    return Error("ErrStopped", "etcdserver: server stopped", CODE_UNAVAILABLE, detail)


@frozen
class Result:
    """The outcome of one request: exactly one field is set (etcd's ResponseOp style)."""

    range: RangeResponse | None = None
    put: PutResponse | None = None
    delete_range: DeleteRangeResponse | None = None
    txn: TxnResponse | None = None
    compaction: CompactionResponse | None = None
    lease_grant: LeaseGrantResponse | None = None
    lease_revoke: LeaseRevokeResponse | None = None
    lease_keep_alive: LeaseKeepAliveResponse | None = None
    lease_time_to_live: LeaseTimeToLiveResponse | None = None
    lease_leases: LeaseLeasesResponse | None = None
    error: Error | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def response(self) -> KVResponse | None:
        """The etcd response, or None when this result is an error."""
        for r in (
            self.range,
            self.put,
            self.delete_range,
            self.txn,
            self.compaction,
            self.lease_grant,
            self.lease_revoke,
            self.lease_keep_alive,
            self.lease_time_to_live,
            self.lease_leases,
        ):
            if r is not None:
                return r
        return None

    @staticmethod
    def of(response: object) -> Result:
        """Wrap a store response (or an `Error`) in its field."""
        if isinstance(response, Error):
            return Result(error=response)
        for name, kind in _RESULT_FIELDS:
            if isinstance(response, kind):
                fields: dict[str, Any] = {name: response}
                return Result(**fields)
        raise TypeError(f"not an etcd response: {type(response).__name__}: {response!r}")


_RESULT_FIELDS: tuple[tuple[str, type], ...] = (
    ("range", RangeResponse),
    ("put", PutResponse),
    ("delete_range", DeleteRangeResponse),
    ("txn", TxnResponse),
    ("compaction", CompactionResponse),
    ("lease_grant", LeaseGrantResponse),
    ("lease_revoke", LeaseRevokeResponse),
    ("lease_keep_alive", LeaseKeepAliveResponse),
    ("lease_time_to_live", LeaseTimeToLiveResponse),
    ("lease_leases", LeaseLeasesResponse),
)


@frozen
class ClientRequest:
    """One client request to a member.

    ``client_id`` >= 1 names the client's session, ``seq`` >= 1 numbers the
    request within it (a retry reuses it), ``ack`` (default: ``seq``) is the
    lowest number the client still waits for.  A `RangeRequest` with
    ``serializable=True`` is answered from the member's local state at
    once; every other read waits for ReadIndex; writes go through the log.
    """

    request: KVRequest = field(validator=_request)
    client_id: int = field(default=1, validator=_positive)
    seq: int = field(default=1, validator=_positive)
    ack: int = 0

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.ack, int) or isinstance(self.ack, bool) or self.ack < 0:
            raise ValueError(f"ack must be an int >= 0, got {self.ack!r}")
        if self.ack > self.seq:
            raise ValueError(f"ack {self.ack} is above seq {self.seq}: a client acks only the past")

    @property
    def is_write(self) -> bool:
        return isinstance(self.request, WRITE_TYPES)

    @property
    def effective_ack(self) -> int:
        return self.ack if self.ack else self.seq


@frozen
class ClientResponse:
    """The answer to the request ``(client_id, seq)``."""

    client_id: int
    seq: int
    result: Result

    @property
    def ok(self) -> bool:
        return self.result.error is None

    @property
    def response(self) -> KVResponse | None:
        return self.result.response

    @property
    def error(self) -> Error | None:
        return self.result.error
