"""What a normal Raft log entry of the replicated store carries.

Theory of operation
-------------------
Every change to the replicated state goes through the log as one
`Proposal`, encoded with the one JSON codec (`kubeproof.codec`) into the
entry's data.  A proposal is either

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
"""

from __future__ import annotations

from attrs import frozen

from kubeproof import codec
from kubeproof.mvcc import (
    CompactionRequest,
    DeleteRangeRequest,
    LeaseGrantRequest,
    LeaseKeepAliveRequest,
    LeaseRevokeRequest,
    PutRequest,
    TxnRequest,
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


def encode_proposal(p: Proposal) -> bytes:
    return codec.canonical_json(_encode(p)).encode("ascii")


def decode_proposal(data: bytes) -> Proposal:
    try:
        p = codec.loads(data.decode("ascii"), Proposal)
    except (UnicodeDecodeError, codec.CodecError) as e:
        raise ProposalError(f"entry data is not a proposal: {e}") from None
    p.validate()
    return p
