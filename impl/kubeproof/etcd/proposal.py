"""What a normal Raft log entry of the replicated store carries.

Theory of operation
-------------------
Every change to the replicated state goes through the log as one
`Proposal`, encoded into the entry's data.  A proposal is either

* a **client write**: exactly one of the request fields (put, delete_range,
  txn, compaction, lease_grant, lease_revoke, lease_keep_alive) plus the
  session identity ``(client_id, seq, ack)`` that makes a retried or
  duplicated copy apply once (`sessions`); or
* a **lease expiry** (`LeaseExpire`), proposed by the leader alone when its
  clock says a lease ran out.  It names the lease and the lease's
  ``version`` as the leader saw it (the index of the last grant or
  keep-alive applied): applying it revokes the lease only if no keep-alive
  was applied in between, so a renewal that won the race wins.  ``token``
  (``member:term:counter``, unique over the proposer's lives, since a member
  leads a given term in one life at most) tells one expiry proposal from
  another for observers; it has no effect on the state.

Entries with empty data (a new leader's no-op) carry no proposal.  Data that
does not decode is a `ProposalError`: the member records it and applies
nothing (a log is never half-understood).

Two encodings, told apart by the first byte:

| first byte | encoding                                                      |
| ---------- | ------------------------------------------------------------- |
| ``{``      | format 0: the proposal as canonical JSON (`kubeproof.codec`); |
|            | what every log written before format 1 holds                  |
| ``0x01``   | format 1: binary, below                                       |

`encode_proposal` writes format 1 whenever it can, and format 0 for what
format 1 cannot hold (an int outside the signed 64-bit range, a token that
is not UTF-8, a proposal that is not exactly one request or expiry, which
only tests build); `decode_proposal` reads both, so a log written before
format 1 replays unchanged.  A member that only knows format 0 cannot read
format 1: `kubeproof.serve.etcd_disk` marks the logs it writes so that such
a member refuses them instead of applying nothing.

Format 1, big-endian; ``q`` a signed 64-bit int, ``I`` an unsigned 32-bit
length, ``B`` a byte, a bytes field its length (I) then its bytes:

    0x01 kind:B client_id:q seq:q ack:q body

| kind | body                                                               |
| ---- | ------------------------------------------------------------------ |
| 1    | put: lease:q flags:B key value  (flags 1 prev_kv, 2 ignore_value,  |
|      | 4 ignore_lease)                                                    |
| 2    | delete_range: flags:B key range_end  (1 prev_kv)                   |
| 3    | txn: ncompare:I nsuccess:I nfailure:I, the compares, the ops       |
| 4    | compaction: revision:q physical:B                                  |
| 5    | lease_grant: ttl:q id:q                                            |
| 6    | lease_revoke: id:q                                                 |
| 7    | lease_keep_alive: id:q                                             |
| 8    | expire: id:q version:q token (UTF-8)                               |

A compare is ``target:B result:B version:q create_revision:q
mod_revision:q lease:q key value range_end`` (target and result as indexes
into etcd's enum order); a txn operation is ``op:B`` (1 range, 2 put,
3 delete_range, 4 txn) and that request's body; a range is ``sort_order:B
sort_target:B flags:B limit:q revision:q min_mod_revision:q
max_mod_revision:q min_create_revision:q max_create_revision:q key
range_end`` (flags 1 serializable, 2 keys_only, 4 count_only).  Every byte
must be accounted for: trailing bytes, unknown kinds, flags or enum
indexes are a `ProposalError`.
"""

from __future__ import annotations

import struct

from attrs import frozen

from kubeproof import codec
from kubeproof.mvcc import (
    CompactionRequest,
    Compare,
    DeleteRangeRequest,
    LeaseGrantRequest,
    LeaseKeepAliveRequest,
    LeaseRevokeRequest,
    PutRequest,
    RangeRequest,
    RequestOp,
    TxnRequest,
)
from kubeproof.mvcc.types import (
    PROTO_COMPARE_RESULTS,
    PROTO_COMPARE_TARGETS,
    PROTO_SORT_ORDERS,
    PROTO_SORT_TARGETS,
)

from .types import ClientRequest, WriteRequest


class ProposalError(ValueError):
    """Entry data that is not a proposal of this store."""


@frozen
class LeaseExpire:
    """The leader's decision that lease ``id`` (at ``version``) ran out."""

    id: int
    version: int
    token: str = ""


@frozen
class Proposal:
    client_id: int = 0
    seq: int = 0
    ack: int = 0
    put: PutRequest | None = None
    delete_range: DeleteRangeRequest | None = None
    txn: TxnRequest | None = None
    compaction: CompactionRequest | None = None
    lease_grant: LeaseGrantRequest | None = None
    lease_revoke: LeaseRevokeRequest | None = None
    lease_keep_alive: LeaseKeepAliveRequest | None = None
    expire: LeaseExpire | None = None

    @property
    def request(self) -> WriteRequest | None:
        """The client's write request (None for a lease expiry)."""
        for r in (
            self.put,
            self.delete_range,
            self.txn,
            self.compaction,
            self.lease_grant,
            self.lease_revoke,
            self.lease_keep_alive,
        ):
            if r is not None:
                return r
        return None

    @staticmethod
    def of(req: ClientRequest) -> Proposal:
        r = req.request
        c, q, a = req.client_id, req.seq, req.effective_ack
        if isinstance(r, PutRequest):
            return Proposal(c, q, a, put=r)
        if isinstance(r, DeleteRangeRequest):
            return Proposal(c, q, a, delete_range=r)
        if isinstance(r, TxnRequest):
            return Proposal(c, q, a, txn=r)
        if isinstance(r, CompactionRequest):
            return Proposal(c, q, a, compaction=r)
        if isinstance(r, LeaseGrantRequest):
            return Proposal(c, q, a, lease_grant=r)
        if isinstance(r, LeaseRevokeRequest):
            return Proposal(c, q, a, lease_revoke=r)
        if isinstance(r, LeaseKeepAliveRequest):
            return Proposal(c, q, a, lease_keep_alive=r)
        raise TypeError(f"not a write request: {type(r).__name__}")

    def validate(self) -> None:
        n = sum(x is not None for x in (self.request, self.expire))
        several = (
            sum(
                x is not None
                for x in (
                    self.put,
                    self.delete_range,
                    self.txn,
                    self.compaction,
                    self.lease_grant,
                    self.lease_revoke,
                    self.lease_keep_alive,
                    self.expire,
                )
            )
            != 1
        )
        if n != 1 or several:
            raise ProposalError("a proposal holds exactly one request or one lease expiry")
        if self.expire is None and (self.client_id < 1 or self.seq < 1):
            raise ProposalError(
                f"a client write needs client_id >= 1 and seq >= 1, got {self.client_id}/{self.seq}"
            )


_encode = codec.encoder(Proposal)

FORMAT_JSON = 0x7B  # "{": format 0
FORMAT_BINARY = 0x01  # format 1


def encode_proposal(p: Proposal) -> bytes:
    """Format 1 when it can hold ``p``, else format 0 (see the module docstring)."""
    try:
        return _encode_binary(p)
    except (struct.error, UnicodeEncodeError, _NotBinary):
        return encode_proposal_json(p)


def encode_proposal_json(p: Proposal) -> bytes:
    """Format 0: canonical JSON (what logs written before format 1 hold)."""
    return codec.canonical_json(_encode(p)).encode("ascii")


def decode_proposal(data: bytes) -> Proposal:
    if data[:1] == b"\x01":
        try:
            return _decode_binary(data)
        except (struct.error, IndexError, ValueError, TypeError) as e:
            if isinstance(e, ProposalError):
                raise
            raise ProposalError(f"entry data is not a proposal: {e}") from None
    try:
        p = codec.loads(data.decode("ascii"), Proposal)
    except (UnicodeDecodeError, codec.CodecError) as e:
        raise ProposalError(f"entry data is not a proposal: {e}") from None
    p.validate()
    return p


# ----------------------------------------------------------------- format 1


class _NotBinary(Exception):
    """A proposal format 1 does not hold (not exactly one request or expiry)."""


_HEAD = struct.Struct(">BBqqq")
_PUT = struct.Struct(">qBII")
_DELETE = struct.Struct(">BII")
_RANGE = struct.Struct(">BBBqqqqqqII")
_TXN = struct.Struct(">III")
_COMPARE = struct.Struct(">BBqqqqIII")
_COMPACTION = struct.Struct(">qB")
_QQ = struct.Struct(">qq")
_Q = struct.Struct(">q")
_EXPIRE = struct.Struct(">qqI")
_OP = struct.Struct(">B")

PUT, DELETE_RANGE, TXN, COMPACTION, LEASE_GRANT, LEASE_REVOKE, LEASE_KEEP_ALIVE, EXPIRE = range(
    1, 9
)
_OP_RANGE, _OP_PUT, _OP_DELETE, _OP_TXN = 1, 2, 3, 4

# Enum members by index, in etcd's proto order (the format depends on it).
_SORT_ORDERS = PROTO_SORT_ORDERS
_SORT_TARGETS = PROTO_SORT_TARGETS
_COMPARE_TARGETS = PROTO_COMPARE_TARGETS
_COMPARE_RESULTS = PROTO_COMPARE_RESULTS
_SORT_ORDER_INDEX = {m: i for i, m in enumerate(_SORT_ORDERS)}
_SORT_TARGET_INDEX = {m: i for i, m in enumerate(_SORT_TARGETS)}
_COMPARE_TARGET_INDEX = {m: i for i, m in enumerate(_COMPARE_TARGETS)}
_COMPARE_RESULT_INDEX = {m: i for i, m in enumerate(_COMPARE_RESULTS)}


def _put_body(r: PutRequest) -> bytes:
    flags = (r.prev_kv and 1) | (r.ignore_value and 2) | (r.ignore_lease and 4)
    return _PUT.pack(r.lease, flags, len(r.key), len(r.value)) + r.key + r.value


def _delete_body(r: DeleteRangeRequest) -> bytes:
    return _DELETE.pack(r.prev_kv and 1, len(r.key), len(r.range_end)) + r.key + r.range_end


def _range_body(r: RangeRequest) -> bytes:
    flags = (r.serializable and 1) | (r.keys_only and 2) | (r.count_only and 4)
    return (
        _RANGE.pack(
            _SORT_ORDER_INDEX[r.sort_order],
            _SORT_TARGET_INDEX[r.sort_target],
            flags,
            r.limit,
            r.revision,
            r.min_mod_revision,
            r.max_mod_revision,
            r.min_create_revision,
            r.max_create_revision,
            len(r.key),
            len(r.range_end),
        )
        + r.key
        + r.range_end
    )


def _txn_body(r: TxnRequest) -> bytes:
    parts = [_TXN.pack(len(r.compare), len(r.success), len(r.failure))]
    for c in r.compare:
        parts.append(
            _COMPARE.pack(
                _COMPARE_TARGET_INDEX[c.target],
                _COMPARE_RESULT_INDEX[c.result],
                c.version,
                c.create_revision,
                c.mod_revision,
                c.lease,
                len(c.key),
                len(c.value),
                len(c.range_end),
            )
        )
        parts += (c.key, c.value, c.range_end)
    for op in (*r.success, *r.failure):
        if op.request_put is not None:
            parts += (b"\x02", _put_body(op.request_put))
        elif op.request_range is not None:
            parts += (b"\x01", _range_body(op.request_range))
        elif op.request_delete_range is not None:
            parts += (b"\x03", _delete_body(op.request_delete_range))
        elif op.request_txn is not None:
            parts += (b"\x04", _txn_body(op.request_txn))
        else:  # pragma: no cover - a RequestOp holds exactly one request
            raise _NotBinary()
    return b"".join(parts)


def _encode_binary(p: Proposal) -> bytes:
    set_ = [
        x
        for x in (
            p.put,
            p.delete_range,
            p.txn,
            p.compaction,
            p.lease_grant,
            p.lease_revoke,
            p.lease_keep_alive,
            p.expire,
        )
        if x is not None
    ]
    if len(set_) != 1:
        raise _NotBinary()
    r = set_[0]
    if isinstance(r, PutRequest):
        kind, body = PUT, _put_body(r)
    elif isinstance(r, TxnRequest):
        kind, body = TXN, _txn_body(r)
    elif isinstance(r, DeleteRangeRequest):
        kind, body = DELETE_RANGE, _delete_body(r)
    elif isinstance(r, CompactionRequest):
        kind, body = COMPACTION, _COMPACTION.pack(r.revision, r.physical and 1)
    elif isinstance(r, LeaseGrantRequest):
        kind, body = LEASE_GRANT, _QQ.pack(r.ttl, r.id)
    elif isinstance(r, LeaseRevokeRequest):
        kind, body = LEASE_REVOKE, _Q.pack(r.id)
    elif isinstance(r, LeaseKeepAliveRequest):
        kind, body = LEASE_KEEP_ALIVE, _Q.pack(r.id)
    else:
        token = r.token.encode("utf-8")
        kind, body = EXPIRE, _EXPIRE.pack(r.id, r.version, len(token)) + token
    return _HEAD.pack(FORMAT_BINARY, kind, p.client_id, p.seq, p.ack) + body


def _flags(value: int, allowed: int) -> int:
    if value & ~allowed:
        raise ProposalError(f"entry data is not a proposal: unknown flags {value:#x}")
    return value


def _pick(table: tuple[object, ...], index: int, what: str) -> object:
    if index >= len(table):
        raise ProposalError(f"entry data is not a proposal: unknown {what} {index}")
    return table[index]


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int) -> None:
        self.data = data
        self.pos = pos

    def take(self, st: struct.Struct) -> tuple[int, ...]:
        out = st.unpack_from(self.data, self.pos)
        self.pos += st.size
        return out

    def bytes_(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise ProposalError("entry data is not a proposal: a field runs past the end")
        out = self.data[self.pos : end]
        self.pos = end
        return out

    def put(self) -> PutRequest:
        lease, flags, nk, nv = self.take(_PUT)
        _flags(flags, 7)
        return PutRequest(
            key=self.bytes_(nk),
            value=self.bytes_(nv),
            lease=lease,
            prev_kv=bool(flags & 1),
            ignore_value=bool(flags & 2),
            ignore_lease=bool(flags & 4),
        )

    def delete(self) -> DeleteRangeRequest:
        flags, nk, ne = self.take(_DELETE)
        _flags(flags, 1)
        return DeleteRangeRequest(
            key=self.bytes_(nk), range_end=self.bytes_(ne), prev_kv=bool(flags & 1)
        )

    def range(self) -> RangeRequest:
        order, target, flags, limit, rev, min_mod, max_mod, min_cr, max_cr, nk, ne = self.take(
            _RANGE
        )
        _flags(flags, 7)
        return RangeRequest(
            key=self.bytes_(nk),
            range_end=self.bytes_(ne),
            limit=limit,
            revision=rev,
            sort_order=_pick(_SORT_ORDERS, order, "sort order"),  # type: ignore[arg-type]
            sort_target=_pick(_SORT_TARGETS, target, "sort target"),  # type: ignore[arg-type]
            serializable=bool(flags & 1),
            keys_only=bool(flags & 2),
            count_only=bool(flags & 4),
            min_mod_revision=min_mod,
            max_mod_revision=max_mod,
            min_create_revision=min_cr,
            max_create_revision=max_cr,
        )

    def txn(self) -> TxnRequest:
        ncmp, nsucc, nfail = self.take(_TXN)
        compares = []
        for _ in range(ncmp):
            target, result, version, create, mod, lease, nk, nv, ne = self.take(_COMPARE)
            compares.append(
                Compare(
                    key=self.bytes_(nk),
                    target=_pick(_COMPARE_TARGETS, target, "compare target"),  # type: ignore[arg-type]
                    result=_pick(_COMPARE_RESULTS, result, "compare result"),  # type: ignore[arg-type]
                    version=version,
                    create_revision=create,
                    mod_revision=mod,
                    value=self.bytes_(nv),
                    lease=lease,
                    range_end=self.bytes_(ne),
                )
            )
        success = tuple(self.op() for _ in range(nsucc))
        failure = tuple(self.op() for _ in range(nfail))
        return TxnRequest(compare=tuple(compares), success=success, failure=failure)

    def op(self) -> RequestOp:
        (kind,) = self.take(_OP)
        if kind == _OP_PUT:
            return RequestOp(request_put=self.put())
        if kind == _OP_RANGE:
            return RequestOp(request_range=self.range())
        if kind == _OP_DELETE:
            return RequestOp(request_delete_range=self.delete())
        if kind == _OP_TXN:
            return RequestOp(request_txn=self.txn())
        raise ProposalError(f"entry data is not a proposal: unknown txn operation {kind}")


def _decode_binary(data: bytes) -> Proposal:
    _, kind, client_id, seq, ack = _HEAD.unpack_from(data, 0)
    r = _Reader(data, _HEAD.size)
    if kind == PUT:
        p = Proposal(client_id, seq, ack, put=r.put())
    elif kind == TXN:
        p = Proposal(client_id, seq, ack, txn=r.txn())
    elif kind == DELETE_RANGE:
        p = Proposal(client_id, seq, ack, delete_range=r.delete())
    elif kind == COMPACTION:
        revision, physical = r.take(_COMPACTION)
        p = Proposal(
            client_id,
            seq,
            ack,
            compaction=CompactionRequest(revision=revision, physical=bool(_flags(physical, 1))),
        )
    elif kind == LEASE_GRANT:
        ttl, lease_id = r.take(_QQ)
        p = Proposal(client_id, seq, ack, lease_grant=LeaseGrantRequest(ttl=ttl, id=lease_id))
    elif kind == LEASE_REVOKE:
        (lease_id,) = r.take(_Q)
        p = Proposal(client_id, seq, ack, lease_revoke=LeaseRevokeRequest(id=lease_id))
    elif kind == LEASE_KEEP_ALIVE:
        (lease_id,) = r.take(_Q)
        p = Proposal(client_id, seq, ack, lease_keep_alive=LeaseKeepAliveRequest(id=lease_id))
    elif kind == EXPIRE:
        lease_id, version, n = r.take(_EXPIRE)
        token = r.bytes_(n).decode("utf-8")
        p = Proposal(client_id, seq, ack, expire=LeaseExpire(lease_id, version, token))
    else:
        raise ProposalError(f"entry data is not a proposal: unknown kind {kind}")
    if r.pos != len(data):
        raise ProposalError(
            f"entry data is not a proposal: {len(data) - r.pos} bytes after the proposal"
        )
    if kind != EXPIRE and (client_id < 1 or seq < 1):
        raise ProposalError(
            f"a client write needs client_id >= 1 and seq >= 1, got {client_id}/{seq}"
        )
    return p
