"""An MVCC store whose every change is logged to a write-ahead log.

Theory of operation
-------------------
`kubeproof.mvcc.MVCCStore` is deterministic: the same requests, applied in
the same order (with the same ``now`` for the lease calls), rebuild the same
state, revisions and lease ids included.  So durability needs no snapshot
format: `DurableStore` logs each request that changed the store, as one WAL
record, and `open_durable_store` replays the records into a fresh store.

Which calls are logged: those that changed something.

| call                         | logged when                                 |
| ---------------------------- | ------------------------------------------- |
| put                          | always (a put always makes a revision)      |
| delete_range                 | something was deleted                       |
| txn                          | the revision moved (reads and failed guards |
|                              | whose branch only reads change nothing)     |
| compact                      | always                                      |
| lease grant/revoke/keepalive | always (lease state is part of the store)   |

A call that raises changed nothing (the store checks before it changes),
so it is not logged.  The record is written after the store applied it and
before the caller answers anyone: the server answers only once the WAL's
``synced`` offset passed the record (see `kubeproof.serve.server`), so no
client ever sees a change that a crash could take back.  A failure to write
the log leaves memory ahead of disk; `DurableStore` then refuses every
further call (`DurabilityError`), so the process must restart and replay.

Record format: canonical JSON ``{"op": NAME, "req": ...}``, the request
encoded by `kubeproof.codec` (and ``"now"`` for the lease calls).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubeproof import codec
from kubeproof.mvcc import (
    CompactionRequest,
    CompactionResponse,
    DeleteRangeRequest,
    DeleteRangeResponse,
    LeaseGrantResponse,
    LeaseKeepAliveResponse,
    LeaseRevokeResponse,
    MVCCStore,
    PutRequest,
    PutResponse,
    TxnRequest,
    TxnResponse,
)

from .wal import WriteAheadLog

__all__ = ["DurabilityError", "DurableStore", "open_durable_store", "replay_record"]


class DurabilityError(RuntimeError):
    """The log could not be written; memory is ahead of disk."""


Sink = Callable[[bytes], object]


class DurableStore(MVCCStore):
    """An `MVCCStore` that hands every change to ``sink`` (a WAL's append)."""

    def __init__(self, sink: Sink | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._sink = sink
        self._broken: BaseException | None = None

    def attach(self, sink: Sink | None) -> None:
        self._sink = sink

    def _log(self, op: str, req: Any, **extra: Any) -> None:
        if self._sink is None:
            return
        record: dict[str, Any] = {"op": op, "req": req, **extra}
        try:
            self._sink(codec.canonical_json(record).encode("ascii"))
        except BaseException as e:
            self._broken = e
            raise DurabilityError(f"cannot write the write-ahead log: {e}") from e

    def _check(self) -> None:
        if self._broken is not None:
            raise DurabilityError(
                f"the write-ahead log failed earlier ({self._broken}); restart to recover"
            )

    def apply_put(self, r: PutRequest) -> PutResponse:
        self._check()
        resp = super().apply_put(r)
        self._log("put", codec.encode(r))
        return resp

    def apply_delete_range(self, r: DeleteRangeRequest) -> DeleteRangeResponse:
        self._check()
        resp = super().apply_delete_range(r)
        if resp.deleted:
            self._log("delete_range", codec.encode(r))
        return resp

    def apply_txn(self, r: TxnRequest) -> TxnResponse:
        self._check()
        before = self.revision
        resp = super().apply_txn(r)
        if self.revision != before:
            self._log("txn", codec.encode(r))
        return resp

    def apply_compaction(self, r: CompactionRequest) -> CompactionResponse:
        self._check()
        resp = super().apply_compaction(r)
        self._log("compact", codec.encode(r))
        return resp

    def lease_grant(self, ttl: int, id: int = 0, now: float = 0.0) -> LeaseGrantResponse:
        self._check()
        resp = super().lease_grant(ttl, id, now)
        # Log the id actually granted, so a replay never depends on id choice.
        self._log("lease_grant", {"ttl": ttl, "id": resp.id}, now=now)
        return resp

    def lease_revoke(self, id: int) -> LeaseRevokeResponse:
        self._check()
        resp = super().lease_revoke(id)
        self._log("lease_revoke", {"id": id})
        return resp

    def lease_keep_alive(self, id: int, now: float = 0.0) -> LeaseKeepAliveResponse:
        self._check()
        resp = super().lease_keep_alive(id, now)
        self._log("lease_keep_alive", {"id": id}, now=now)
        return resp


def replay_record(store: MVCCStore, payload: bytes, index: int = 0) -> None:
    """Applies one logged change to ``store``; a record that does not decode or
    apply is a `ValueError` naming its position (the log cannot be trusted)."""
    try:
        rec = json.loads(payload)
        op = rec["op"]
        req = rec["req"]
        if op == "put":
            store.apply_put(codec.decode(req, PutRequest))
        elif op == "delete_range":
            store.apply_delete_range(codec.decode(req, DeleteRangeRequest))
        elif op == "txn":
            store.apply_txn(codec.decode(req, TxnRequest))
        elif op == "compact":
            store.apply_compaction(codec.decode(req, CompactionRequest))
        elif op == "lease_grant":
            store.lease_grant(int(req["ttl"]), int(req["id"]), now=float(rec["now"]))
        elif op == "lease_revoke":
            store.lease_revoke(int(req["id"]))
        elif op == "lease_keep_alive":
            store.lease_keep_alive(int(req["id"]), now=float(rec["now"]))
        else:
            raise ValueError(f"unknown operation {op!r}")
    except Exception as e:
        raise ValueError(f"write-ahead log record {index} cannot be replayed: {e}") from e


def open_durable_store(path: str | Path, **store_kwargs: Any) -> tuple[DurableStore, WriteAheadLog]:
    """Replays the log at ``path`` (created if absent) into a fresh store and
    attaches the log for further changes."""
    log, records = WriteAheadLog.open(path)
    try:
        store = DurableStore(None, **store_kwargs)
        for i, payload in enumerate(records, start=1):
            replay_record(store, payload, i)
        store.attach(log.append)
    except BaseException:
        log.close()
        raise
    return store, log
