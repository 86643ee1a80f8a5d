"""The MVCC store: etcd v3's key-value semantics as a pure state machine.

Theory of operation
-------------------
State: one global revision (1 on an empty store, as on a fresh etcd), the
compaction revision (-1 until the first compaction, as etcd's
``compactMainRev``), the key index (every key's changes), the revision log
(every revision's changes, for watchers), the leases and the watchers.

Every write runs as one write transaction, exactly as etcd's
``storeTxnWrite``:

    begin = current revision
    each put/delete appends its change at revision begin + 1, in order
        (reads inside the txn already see them)
    at the end: if anything changed, current revision = begin + 1, the
        changes join the revision log and every synced watcher gets them;
        if nothing changed (a delete of nothing, a txn whose branch only
        reads), the revision stays where it was.

Per key: a put on a missing key starts a generation (create_revision = mod
revision, version 1); a put on a live key keeps its create_revision and
increments its version; a delete leaves a tombstone, and the next put
starts again at version 1.  A put with a lease attaches the key to it and
detaches it from the lease it had; a delete detaches it.

Responses report the revision etcd reports:

    put                the new revision
    range              the current revision (whatever revision was read)
    delete_range       the new revision, or the current one if nothing was deleted
    txn                the new revision, or the current one if nothing changed
    compact, leases    the current revision (after a revoke: after its deletes)

Sub-responses of a txn carry only that revision (a range inside a txn reports
the txn's revision so far); a nested txn's response header stays empty.

Errors are raised before anything changes (see `errors`); the checks run in
etcd's order (see `txn` for transactions).  Time enters only as ``now``
arguments of the lease calls.  Nothing here does I/O, reads a clock, or uses
randomness; the store is deterministic.

Read-only inspection for invariants: `revision`, `compact_revision`,
`changes(rev)`, `key_history(key)`, `lease_keys(id)`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .errors import (
    ErrCompacted,
    ErrEmptyWatcherRange,
    ErrFutureRev,
    ErrKeyNotFound,
    ErrLeaseNotFound,
    ErrWatcherDuplicateID,
)
from .history import History
from .keyindex import KeyIndex, interval_end
from .lease import DEFAULT_MIN_LEASE_TTL, Lessor
from .txn import (
    MAX_TXN_OPS,
    TxnPath,
    check_ignore_puts,
    check_intervals,
    check_key,
    check_put_request,
    check_txn_request,
    chosen_ops,
    decide,
    is_txn_readonly,
    walk_path,
)
from .types import (
    CompactionRequest,
    CompactionResponse,
    Compare,
    DeleteRangeRequest,
    DeleteRangeResponse,
    Event,
    KeyValue,
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
    PutRequest,
    PutResponse,
    RangeRequest,
    RangeResponse,
    RequestOp,
    ResponseHeader,
    ResponseOp,
    SortOrder,
    SortTarget,
    TxnOp,
    TxnRequest,
    TxnResponse,
    WatchFilter,
    WatchResponse,
)
from .watch import WATCH_BATCH_MAX_REVS, Watcher, WatchState, make_events

_SORT_KEYS: dict[SortTarget, Any] = {
    SortTarget.KEY: lambda kv: kv.key,
    SortTarget.VERSION: lambda kv: kv.version,
    SortTarget.CREATE: lambda kv: kv.create_revision,
    SortTarget.MOD: lambda kv: kv.mod_revision,
    SortTarget.VALUE: lambda kv: kv.value,
}


class _Tx:
    """One write transaction in progress."""

    __slots__ = ("begin", "changes")

    def __init__(self, begin: int) -> None:
        self.begin = begin
        self.changes: list[KeyValue] = []

    @property
    def read_rev(self) -> int:
        # etcd's storeTxnWrite.Range: the txn's own writes are visible.
        return self.begin + 1 if self.changes else self.begin


class MVCCStore:
    """etcd v3's MVCC key-value store with leases and watchers.

    ``cluster_id``, ``member_id`` and ``raft_term`` only fill response headers
    (the replicated store sets ``raft_term`` as terms change)."""

    def __init__(
        self,
        *,
        cluster_id: int = 0,
        member_id: int = 0,
        raft_term: int = 0,
        min_lease_ttl: int = DEFAULT_MIN_LEASE_TTL,
        first_lease_id: int = 1,
        max_txn_ops: int = MAX_TXN_OPS,
    ) -> None:
        self.cluster_id = cluster_id
        self.member_id = member_id
        self.raft_term = raft_term
        self.max_txn_ops = max_txn_ops
        self._rev = 1
        self._compact_rev = -1
        self._index = KeyIndex()
        self._history = History()
        self._lessor = Lessor(min_lease_ttl, first_lease_id)
        self._watchers: dict[int, WatchState] = {}
        self._next_watch_id = 0

    # ------------------------------------------------------------------
    # Inspection

    @property
    def revision(self) -> int:
        """The current revision (1 on an empty store)."""
        return self._rev

    @property
    def compact_revision(self) -> int:
        """The last compaction revision; -1 before the first (etcd's value)."""
        return self._compact_rev

    def changes(self, rev: int) -> tuple[KeyValue, ...]:
        """The changes revision ``rev`` made, in order (tombstones for deletes);
        () for revision 1, for compacted revisions and future ones."""
        if rev < self._compact_rev:
            return ()
        return self._history.changes(rev)

    def key_history(self, key: bytes) -> tuple[KeyValue, ...]:
        """Every change of ``key`` still held (oldest first)."""
        return self._index.history(key)

    def lease_keys(self, lease_id: int) -> tuple[bytes, ...]:
        return tuple(sorted(self._lessor.get(lease_id).keys))

    def _header(self, rev: int) -> ResponseHeader:
        return ResponseHeader(self.cluster_id, self.member_id, rev, self.raft_term)

    # ------------------------------------------------------------------
    # Public KV calls (keyword forms of the requests)

    def range(
        self,
        key: bytes,
        range_end: bytes = b"",
        revision: int = 0,
        limit: int = 0,
        keys_only: bool = False,
        count_only: bool = False,
        serializable: bool = False,
        sort_order: SortOrder = SortOrder.NONE,
        sort_target: SortTarget = SortTarget.KEY,
        min_mod_revision: int = 0,
        max_mod_revision: int = 0,
        min_create_revision: int = 0,
        max_create_revision: int = 0,
    ) -> RangeResponse:
        return self.apply_range(
            RangeRequest(
                key=key,
                range_end=range_end,
                limit=limit,
                revision=revision,
                sort_order=sort_order,
                sort_target=sort_target,
                serializable=serializable,
                keys_only=keys_only,
                count_only=count_only,
                min_mod_revision=min_mod_revision,
                max_mod_revision=max_mod_revision,
                min_create_revision=min_create_revision,
                max_create_revision=max_create_revision,
            )
        )

    def put(
        self,
        key: bytes,
        value: bytes = b"",
        lease: int = 0,
        prev_kv: bool = False,
        ignore_value: bool = False,
        ignore_lease: bool = False,
    ) -> PutResponse:
        return self.apply_put(
            PutRequest(
                key=key,
                value=value,
                lease=lease,
                prev_kv=prev_kv,
                ignore_value=ignore_value,
                ignore_lease=ignore_lease,
            )
        )

    def delete_range(
        self, key: bytes, range_end: bytes = b"", prev_kv: bool = False
    ) -> DeleteRangeResponse:
        return self.apply_delete_range(
            DeleteRangeRequest(key=key, range_end=range_end, prev_kv=prev_kv)
        )

    def txn(
        self,
        compare: Iterable[Compare] = (),
        success: Iterable[TxnOp | RequestOp] = (),
        failure: Iterable[TxnOp | RequestOp] = (),
    ) -> TxnResponse:
        return self.apply_txn(TxnRequest(compare=compare, success=success, failure=failure))

    def compact(self, revision: int, physical: bool = False) -> CompactionResponse:
        return self.apply_compaction(CompactionRequest(revision=revision, physical=physical))

    # ------------------------------------------------------------------
    # Requests

    def apply(self, request: object, now: float = 0.0) -> object:
        """Applies any request value (what a Raft entry would carry); ``now``
        is used by the lease requests that depend on time."""
        if isinstance(request, RangeRequest):
            return self.apply_range(request)
        if isinstance(request, PutRequest):
            return self.apply_put(request)
        if isinstance(request, DeleteRangeRequest):
            return self.apply_delete_range(request)
        if isinstance(request, TxnRequest):
            return self.apply_txn(request)
        if isinstance(request, CompactionRequest):
            return self.apply_compaction(request)
        if isinstance(request, LeaseGrantRequest):
            return self.lease_grant(request.ttl, request.id, now=now)
        if isinstance(request, LeaseRevokeRequest):
            return self.lease_revoke(request.id)
        if isinstance(request, LeaseKeepAliveRequest):
            return self.lease_keep_alive(request.id, now=now)
        if isinstance(request, LeaseTimeToLiveRequest):
            return self.lease_time_to_live(request.id, now=now, keys=request.keys)
        if isinstance(request, LeaseLeasesRequest):
            return self.lease_leases()
        raise TypeError(f"not an MVCC request: {type(request).__name__}: {request!r}")

    def apply_range(self, r: RangeRequest) -> RangeResponse:
        check_key(r.key, "range")
        return self._range(r, self._rev, self._header(self._rev))

    def apply_put(self, r: PutRequest) -> PutResponse:
        check_put_request(r)
        # Outside a txn etcd looks the lease up first, then the key.
        if r.lease != 0 and r.lease not in self._lessor:
            raise ErrLeaseNotFound(f"lease {r.lease}")
        tx = _Tx(self._rev)
        resp = self._put(tx, r)
        self._commit(tx)
        return PutResponse(self._header(self._rev), resp.prev_kv)

    def apply_delete_range(self, r: DeleteRangeRequest) -> DeleteRangeResponse:
        check_key(r.key, "delete")
        tx = _Tx(self._rev)
        resp = self._delete(tx, r)
        self._commit(tx)
        return DeleteRangeResponse(self._header(self._rev), resp.deleted, resp.prev_kvs)

    def apply_txn(self, r: TxnRequest) -> TxnResponse:
        check_txn_request(r, self.max_txn_ops)
        check_intervals(r.success_ops())
        check_intervals(r.failure_ops())
        before = self._rev

        def read(key: bytes, range_end: bytes) -> list[KeyValue]:
            return self._index.range(key, interval_end(range_end), before)

        path = decide(r, read)
        if not is_txn_readonly(r):
            walk_path(r, path, self._check_put_in_txn)
        walk_path(r, path, self._check_range_in_txn)
        check_ignore_puts(r, path)
        tx = _Tx(before)
        resp = self._apply_txn(tx, r, path)
        rev = tx.read_rev
        self._commit(tx)
        return TxnResponse(self._header(rev), resp.succeeded, resp.responses)

    def apply_compaction(self, r: CompactionRequest) -> CompactionResponse:
        rev = r.revision
        if rev <= self._compact_rev:
            raise ErrCompacted(f"revision {rev} <= compacted {self._compact_rev}")
        if rev > self._rev:
            raise ErrFutureRev(f"revision {rev} > current {self._rev}")
        self._compact_rev = rev
        self._index.compact(rev)
        self._history.compact(rev)
        return CompactionResponse(self._header(self._rev))

    # ------------------------------------------------------------------
    # Leases

    def lease_grant(self, ttl: int, id: int = 0, now: float = 0.0) -> LeaseGrantResponse:
        """Grants a lease expiring at ``now + ttl``; ``id`` 0 picks a fresh id."""
        LeaseGrantRequest(ttl=ttl, id=id)  # validates the types
        lease_id = self._lessor.new_id() if id == 0 else id
        lease = self._lessor.grant(lease_id, ttl, now)
        return LeaseGrantResponse(self._header(self._rev), lease.id, lease.ttl)

    def lease_revoke(self, id: int) -> LeaseRevokeResponse:
        """Deletes every key attached to the lease in one revision (in key
        order, as etcd does), then the lease."""
        lease = self._lessor.get(id)
        tx = _Tx(self._rev)
        for key in sorted(lease.keys):
            self._delete(tx, DeleteRangeRequest(key=key))
        self._lessor.remove(id)
        self._commit(tx)
        return LeaseRevokeResponse(self._header(self._rev))

    def lease_keep_alive(self, id: int, now: float = 0.0) -> LeaseKeepAliveResponse:
        """Renews to ``now + ttl``.  Unknown or expired lease: ErrLeaseNotFound
        (etcd's gRPC layer answers that with a response of TTL 0)."""
        ttl = self._lessor.renew(id, now)
        return LeaseKeepAliveResponse(self._header(self._rev), id, ttl)

    def lease_time_to_live(
        self, id: int, now: float = 0.0, keys: bool = False
    ) -> LeaseTimeToLiveResponse:
        """Unknown lease: ErrLeaseNotFound (etcd's gRPC layer answers that with
        a response of TTL -1)."""
        lease = self._lessor.get(id)
        attached = tuple(sorted(lease.keys)) if keys else ()
        return LeaseTimeToLiveResponse(
            self._header(self._rev), id, self._lessor.remaining(id, now), lease.ttl, attached
        )

    def lease_leases(self) -> LeaseLeasesResponse:
        return LeaseLeasesResponse(self._header(self._rev), self._lessor.ids())

    def expired_leases(self, now: float) -> tuple[int, ...]:
        """Leases whose expiry is at or before ``now``, soonest first."""
        return self._lessor.expired(now)

    def expire(self, now: float) -> tuple[int, ...]:
        """Revokes every expired lease (each in its own revision, as etcd's
        leader revokes each through its own log entry); returns their ids."""
        due = self._lessor.expired(now)
        for id in due:
            self.lease_revoke(id)
        return due

    # ------------------------------------------------------------------
    # Watch

    def watch(
        self,
        key: bytes,
        range_end: bytes = b"",
        start_revision: int = 0,
        prev_kv: bool = False,
        filters: Iterable[WatchFilter] = (),
        watch_id: int = 0,
    ) -> Watcher:
        """A watcher over ``key`` / ``[key, range_end)`` from ``start_revision``
        (0: from the next revision).  ``watch_id`` 0 picks the lowest free id."""
        RangeRequest(key=key, range_end=range_end, revision=start_revision)  # type checks
        fs = tuple(filters)
        for f in fs:
            if not isinstance(f, WatchFilter):
                raise TypeError(f"filters must be WatchFilter values, got {f!r}")
        if not key:
            key = b"\x00"
        end: bytes | None
        if range_end == b"":
            end = b""
        elif range_end == b"\x00":
            end = None
        else:
            if key >= range_end:
                raise ErrEmptyWatcherRange(f"key {key!r} >= range_end {range_end!r}")
            end = range_end
        if watch_id == 0:
            while self._next_watch_id in self._watchers:
                self._next_watch_id += 1
            watch_id = self._next_watch_id
            self._next_watch_id += 1
        elif watch_id in self._watchers:
            raise ErrWatcherDuplicateID(f"watch id {watch_id}")
        start = start_revision if start_revision != 0 else self._rev + 1
        synced = start > self._rev
        next_rev = max(start, self._rev + 1) if synced else start
        self._watchers[watch_id] = WatchState(watch_id, key, end, next_rev, synced, prev_kv, fs)
        return Watcher(self, watch_id)

    def _watch_alive(self, watch_id: int) -> bool:
        return watch_id in self._watchers

    def _watch_cancel(self, watch_id: int) -> bool:
        return self._watchers.pop(watch_id, None) is not None

    def _watch_poll(self, watch_id: int) -> tuple[WatchResponse, ...]:
        w = self._watchers.get(watch_id)
        if w is None:
            return ()
        out: list[WatchResponse] = []
        if not w.synced:
            if w.next_rev < self._compact_rev:
                del self._watchers[watch_id]
                header = ResponseHeader(self.cluster_id, self.member_id, 0, self.raft_term)
                return (
                    WatchResponse(
                        header, watch_id, canceled=True, compact_revision=self._compact_rev
                    ),
                )
            header = self._header(self._rev)
            batch: list[Event] = []
            revs = 0
            for _, changes in self._history.since(w.next_rev):
                evs = make_events(w, changes, self._prev_kv)
                if not evs:
                    continue
                if revs == WATCH_BATCH_MAX_REVS:
                    out.append(WatchResponse(header, watch_id, tuple(batch)))
                    batch, revs = [], 0
                batch.extend(evs)
                revs += 1
            if batch:
                out.append(WatchResponse(header, watch_id, tuple(batch)))
            w.next_rev = self._rev + 1
            w.synced = True
        if w.pending:
            out.extend(w.pending)
            w.pending = []
        return tuple(out)

    def _prev_kv(self, key: bytes, rev: int) -> KeyValue | None:
        # etcd reads the previous value with an ordinary range at rev - 1.
        if rev < self._compact_rev or rev <= 0:
            return None
        return self._index.get(key, rev)

    def _notify(self, rev: int, changes: Sequence[KeyValue]) -> None:
        for w in self._watchers.values():
            if not w.synced or w.next_rev > rev:
                continue
            w.next_rev = rev + 1
            evs = make_events(w, changes, self._prev_kv)
            if evs:
                w.pending.append(WatchResponse(self._header(rev), w.id, tuple(evs)))

    # ------------------------------------------------------------------
    # Internals shared by plain requests and txns

    def _commit(self, tx: _Tx) -> None:
        if tx.changes:
            self._rev = tx.begin + 1
            self._history.append(self._rev, tx.changes)
            if self._watchers:
                self._notify(self._rev, tx.changes)

    def _range(self, r: RangeRequest, cur_rev: int, header: ResponseHeader) -> RangeResponse:
        rev = r.revision
        if rev > cur_rev:
            raise ErrFutureRev(f"revision {rev} > current {cur_rev}")
        if rev <= 0:
            rev = cur_rev
        if rev < self._compact_rev:
            raise ErrCompacted(f"revision {rev} < compacted {self._compact_rev}")
        kvs = self._index.range(r.key, interval_end(r.range_end), rev)
        count = len(kvs)
        if r.count_only or not kvs:
            return RangeResponse(header, (), False, count)
        limit = r.limit
        filtered = bool(
            r.min_mod_revision
            or r.max_mod_revision
            or r.min_create_revision
            or r.max_create_revision
        )
        order = r.sort_order
        if r.sort_target is not SortTarget.KEY and order is SortOrder.NONE:
            order = SortOrder.ASCEND
        if limit > 0 and not filtered and r.sort_order is SortOrder.NONE:
            kvs = kvs[: limit + 1]
        if filtered:
            kvs = [
                kv
                for kv in kvs
                if not (
                    (r.max_mod_revision and kv.mod_revision > r.max_mod_revision)
                    or (r.min_mod_revision and kv.mod_revision < r.min_mod_revision)
                    or (r.max_create_revision and kv.create_revision > r.max_create_revision)
                    or (r.min_create_revision and kv.create_revision < r.min_create_revision)
                )
            ]
        if order is SortOrder.ASCEND:
            if r.sort_target is not SortTarget.KEY:
                kvs.sort(key=_SORT_KEYS[r.sort_target])
        elif order is SortOrder.DESCEND:
            # Stable, like Go's insertion sort on the short lists where etcd's
            # unstable sort.Sort is deterministic (<= 12 items).
            kvs.sort(key=_SORT_KEYS[r.sort_target], reverse=True)
        more = False
        if limit > 0 and len(kvs) > limit:
            kvs = kvs[:limit]
            more = True
        if r.keys_only:
            kvs = [
                KeyValue(kv.key, kv.create_revision, kv.mod_revision, kv.version, b"", kv.lease)
                for kv in kvs
            ]
        return RangeResponse(header, tuple(kvs), more, count)

    def _put(self, tx: _Tx, r: PutRequest) -> PutResponse:
        index = self._index
        prev = None
        if r.ignore_value or r.ignore_lease or r.prev_kv:
            prev = index.latest(r.key)
            if prev is None and (r.ignore_value or r.ignore_lease):
                raise ErrKeyNotFound(repr(r.key))
        value = prev.value if (prev is not None and r.ignore_value) else r.value
        lease = prev.lease if (prev is not None and r.ignore_lease) else r.lease
        rev = tx.begin + 1
        cur = prev if prev is not None else index.latest(r.key)
        if cur is None:
            kv = KeyValue(index.intern(r.key), rev, rev, 1, value, lease)
            old_lease = 0
        else:
            kv = KeyValue(cur.key, cur.create_revision, rev, cur.version + 1, value, lease)
            old_lease = cur.lease
        index.append(kv)
        tx.changes.append(kv)
        if old_lease:
            self._lessor.detach(old_lease, kv.key)
        if lease:
            self._lessor.attach(lease, kv.key)
        return PutResponse(ResponseHeader(revision=rev), prev if r.prev_kv else None)

    def _delete(self, tx: _Tx, r: DeleteRangeRequest) -> DeleteRangeResponse:
        index = self._index
        kvs = index.range(r.key, interval_end(r.range_end), tx.read_rev)
        rev = tx.begin + 1
        for kv in kvs:
            tomb = KeyValue(kv.key, 0, rev, 0, b"", 0)
            index.append(tomb)
            tx.changes.append(tomb)
            if kv.lease:
                self._lessor.detach(kv.lease, kv.key)
        return DeleteRangeResponse(
            ResponseHeader(revision=tx.read_rev), len(kvs), tuple(kvs) if r.prev_kv else ()
        )

    def _check_put_in_txn(self, op: TxnOp) -> None:
        if not isinstance(op, PutRequest):
            return
        # In a txn etcd checks the key first, then the lease.
        if (op.ignore_value or op.ignore_lease) and self._index.latest(op.key) is None:
            raise ErrKeyNotFound(repr(op.key))
        if op.lease != 0 and op.lease not in self._lessor:
            raise ErrLeaseNotFound(f"lease {op.lease}")

    def _check_range_in_txn(self, op: TxnOp) -> None:
        if not isinstance(op, RangeRequest) or op.revision == 0:
            return
        if op.revision > self._rev:
            raise ErrFutureRev(f"revision {op.revision} > current {self._rev}")
        if op.revision < self._compact_rev:
            raise ErrCompacted(f"revision {op.revision} < compacted {self._compact_rev}")

    def _apply_txn(self, tx: _Tx, r: TxnRequest, path: TxnPath) -> TxnResponse:
        nested = iter(path.nested)
        out: list[ResponseOp] = []
        for op in chosen_ops(r, path):
            if isinstance(op, RangeRequest):
                cur = tx.read_rev
                out.append(
                    ResponseOp(response_range=self._range(op, cur, ResponseHeader(revision=cur)))
                )
            elif isinstance(op, PutRequest):
                out.append(ResponseOp(response_put=self._put(tx, op)))
            elif isinstance(op, DeleteRangeRequest):
                out.append(ResponseOp(response_delete_range=self._delete(tx, op)))
            else:
                out.append(ResponseOp(response_txn=self._apply_txn(tx, op, next(nested))))
        # etcd never fills a nested txn's header; the caller fills the top one.
        return TxnResponse(ResponseHeader(), path.succeeded, tuple(out))
