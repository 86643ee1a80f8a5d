"""The replicated state machine: the MVCC store fed by the Raft log.

Theory of operation
-------------------
State: the MVCC store (`kubeproof.mvcc.MVCCStore`), the client sessions
(`sessions.SessionTable`), each lease's *version* (the log index of its
last grant or keep-alive) and the index of the last entry applied.  Every
member runs one; applying the same log gives the same state, bit for bit,
because nothing here depends on which member runs it or when:

* response headers are built with member id 0 and term 0 (the member
  stamps its own id and term on what it sends to its clients);
* the store's own lease clock is never used: leases are granted and
  renewed at time 0 (so their store-side expiry is just their TTL), and
  they end only by a revoke or an applied `LeaseExpire` (see `leases`).

Applying one normal entry (`apply`):

| entry data                          | effect                                          |
| ----------------------------------- | ----------------------------------------------- |
| empty (a leader's no-op)            | none                                            |
| not a `Proposal`                    | none; reported as ``invalid``                   |
| a `LeaseExpire` for (id, version)   | revoke lease id if its version is still version |
| a client write (client, seq, ack)   | by the session table: a duplicate answers its   |
|                                     | cached result, a stale copy ErrStaleRequest,    |
|                                     | a fresh one runs against the store and its      |
|                                     | result (response or etcd error) is cached       |

A request the store refuses (an etcd error) changed nothing, by the
store's own contract, and its error is the cached result like any other.

Each application is described by an `Applied` value: what kind of entry it
was, the session decision, the result, the store's revision afterwards and
the changes of the revision it made (if it made one).  Observers (the
harness's invariants, a server's logs) use those; the member uses them to
answer its waiting clients.

Snapshots: `image()` is a `StateImage` (the store, sessions, versions and
index), `snapshot_data()` its canonical JSON bytes, `restore(data)` the
inverse.
"""

from __future__ import annotations

from attrs import frozen

from kubeproof import codec
from kubeproof.mvcc import (
    CompactionRequest,
    DeleteRangeRequest,
    KeyValue,
    LeaseGrantRequest,
    LeaseKeepAliveRequest,
    LeaseRevokeRequest,
    MVCCError,
    MVCCStore,
    PutRequest,
    TxnRequest,
    TxnResponse,
)
from kubeproof.raft import Entry

from .proposal import LeaseExpire, Proposal, ProposalError, decode_proposal
from .sessions import Decision, SessionImage, SessionTable
from .snapshot import StoreImage, restore_store, store_image
from .types import Error, Result, WriteRequest, err_stale_request

NOOP = "noop"
WRITE = "write"
EXPIRE = "expire"
INVALID = "invalid"


@frozen
class Applied:
    """What applying one entry did."""

    index: int
    term: int
    kind: str
    """``noop``, ``write``, ``expire``, ``invalid`` (and ``conf_change``, from the member)."""
    revision: int
    """The store's revision after the entry."""
    client_id: int = 0
    seq: int = 0
    decision: str = ""
    """For a write: ``fresh``, ``duplicate`` or ``stale`` (see `sessions`)."""
    result: Result | None = None
    request: WriteRequest | None = None
    expire: LeaseExpire | None = None
    revoked: bool = False
    """For an expiry: whether it revoked the lease."""
    changes: tuple[KeyValue, ...] = ()
    """The changes of the revision this entry made (empty if it made none)."""
    detail: str = ""


@frozen
class StateImage:
    index: int
    store: StoreImage
    sessions: tuple[SessionImage, ...] = ()
    lease_versions: tuple[tuple[int, int], ...] = ()


class KVStateMachine:
    """See the module docstring.  Subclasses (tests/mutants) override `decide`,
    `execute_txn` or `execute` to break one rule at a time."""

    def __init__(
        self,
        *,
        cluster_id: int = 0,
        min_lease_ttl: int = 2,
        max_sessions: int = 4096,
    ) -> None:
        self.cluster_id = cluster_id
        self.min_lease_ttl = min_lease_ttl
        self.max_sessions = max_sessions
        self.store = self._new_store()
        self.sessions = SessionTable(max_sessions)
        self.lease_versions: dict[int, int] = {}
        self.index = 0

    def _new_store(self) -> MVCCStore:
        return MVCCStore(cluster_id=self.cluster_id, min_lease_ttl=self.min_lease_ttl)

    # ------------------------------------------------------------ applying

    def apply(self, entry: Entry, proposal: Proposal | None = None) -> Applied:
        """Apply one normal entry (the caller handles conf changes).

        ``proposal``, when given, must be what the entry's data decodes to
        (``decode_proposal(entry.data) == proposal``): the member that
        proposed the entry passes the value it encoded, which spares
        decoding it again; everything else happens as if it had been
        decoded."""
        index, term = entry.index, entry.term
        if index <= self.index:
            raise ValueError(f"entry {index} applied again (state machine is at {self.index})")
        self.index = index
        if not entry.data:
            return Applied(index, term, NOOP, self.store.revision)
        if proposal is not None:
            p = proposal
        else:
            try:
                p = decode_proposal(entry.data)
            except ProposalError as e:
                return Applied(index, term, INVALID, self.store.revision, detail=str(e))
        if p.expire is not None:
            return self._apply_expire(index, term, p.expire)
        return self._apply_write(index, term, p)

    def _apply_write(self, index: int, term: int, p: Proposal) -> Applied:
        req = p.request
        assert req is not None  # validated by decode_proposal
        decision, cached = self.decide(p.client_id, p.seq)
        before = self.store.revision
        if decision is Decision.fresh:
            result = self.execute(req, index)
            self.sessions.record(p.client_id, p.seq, p.ack, index, result)
        else:
            self.sessions.touch(p.client_id, p.ack, index)
            if decision is Decision.duplicate:
                assert cached is not None
                result = cached
            else:
                result = Result(error=err_stale_request(f"client {p.client_id} seq {p.seq}"))
        after = self.store.revision
        return Applied(
            index,
            term,
            WRITE,
            after,
            client_id=p.client_id,
            seq=p.seq,
            decision=decision.value,
            result=result,
            request=req,
            changes=self.store.changes(after) if after != before else (),
        )

    def decide(self, client_id: int, seq: int) -> tuple[Decision, Result | None]:
        return self.sessions.decide(client_id, seq)

    def execute(self, req: WriteRequest, index: int) -> Result:
        """Run one fresh write against the store; an etcd error is a result too."""
        store = self.store
        try:
            if isinstance(req, PutRequest):
                return Result(put=store.apply_put(req))
            if isinstance(req, DeleteRangeRequest):
                return Result(delete_range=store.apply_delete_range(req))
            if isinstance(req, TxnRequest):
                return Result(txn=self.execute_txn(req))
            if isinstance(req, CompactionRequest):
                return Result(compaction=store.apply_compaction(req))
            if isinstance(req, LeaseGrantRequest):
                grant = store.lease_grant(req.ttl, req.id, now=0.0)
                self.lease_versions[grant.id] = index
                return Result(lease_grant=grant)
            if isinstance(req, LeaseRevokeRequest):
                revoke = store.lease_revoke(req.id)
                self.lease_versions.pop(req.id, None)
                return Result(lease_revoke=revoke)
            if isinstance(req, LeaseKeepAliveRequest):
                ka = store.lease_keep_alive(req.id, now=0.0)
                self.lease_versions[req.id] = index
                return Result(lease_keep_alive=ka)
        except MVCCError as e:
            return Result(error=Error.of(e))
        raise TypeError(f"not a write request: {type(req).__name__}")

    def execute_txn(self, req: TxnRequest) -> TxnResponse:
        return self.store.apply_txn(req)

    def _apply_expire(self, index: int, term: int, ex: LeaseExpire) -> Applied:
        before = self.store.revision
        revoked = self.lease_versions.get(ex.id) == ex.version
        if revoked:
            self.store.lease_revoke(ex.id)
            del self.lease_versions[ex.id]
        after = self.store.revision
        return Applied(
            index,
            term,
            EXPIRE,
            after,
            expire=ex,
            revoked=revoked,
            changes=self.store.changes(after) if after != before else (),
        )

    # ----------------------------------------------------------- leases

    def lease_ttls(self) -> list[tuple[int, int]]:
        """(id, granted TTL) of every lease."""
        store = self.store
        return [
            (lid, store.lease_time_to_live(lid, 0.0).granted_ttl)
            for lid in store.lease_leases().leases
        ]

    # ---------------------------------------------------------- snapshots

    def image(self) -> StateImage:
        return StateImage(
            index=self.index,
            store=store_image(self.store),
            sessions=self.sessions.image(),
            lease_versions=tuple(sorted(self.lease_versions.items())),
        )

    def snapshot_data(self) -> bytes:
        return codec.dumps(self.image()).encode("ascii")

    def restore(self, data: bytes) -> None:
        """Replace the whole state with a snapshot's (raises ValueError if unreadable)."""
        try:
            image = codec.loads(data.decode("ascii"), StateImage)
        except (UnicodeDecodeError, codec.CodecError) as e:
            raise ValueError(f"snapshot data is not a replicated-store image: {e}") from None
        self.store = restore_store(image.store, self._new_store())
        self.sessions = SessionTable.restore(image.sessions, self.max_sessions)
        self.lease_versions = dict(image.lease_versions)
        self.index = image.index
