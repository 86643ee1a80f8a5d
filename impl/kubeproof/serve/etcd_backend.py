"""What the etcd gRPC layer needs from whatever holds the data.

Theory of operation
-------------------
`kubeproof.serve.etcd_grpc` speaks etcd's wire protocol and nothing else;
the data lives behind the `EtcdBackend` protocol.  Two backends exist:

    StoreBackend    one `MVCCStore` in this process, nothing replicated and
                    nothing on disk.  It is the gRPC layer's test double and
                    the reference the replicated backend must agree with.
    MemberBackend   (`etcd_member`) one member of a Raft group: writes are
                    proposals, linearizable reads wait for ReadIndex, the log
                    is on disk.

The contract, in etcd's terms:

| call               | answers                                                    |
| ------------------ | ---------------------------------------------------------- |
| ``request(r)``     | the store's response to a KV or lease request, once it is  |
|                    | applied (writes) or once a linearizable read may see it    |
|                    | (reads; ``serializable`` reads answer from local state);   |
|                    | an `MVCCError` or `EtcdServerError` otherwise              |
| ``keep_alive(id)`` | the renewed TTL; `ErrLeaseNotFound` for an unknown lease   |
| ``watch(...)``     | a `Watcher` of the local store (any member serves watches  |
|                    | from its applied state)                                    |
| ``listen(cb)``     | ``cb()`` runs after every batch of applied entries, so a   |
|                    | watch stream knows when to poll; returns an unsubscribe    |
| ``identity()``     | cluster id, member id, Raft term for response headers      |
| ``members()``      | the cluster's members (MemberList)                         |
| ``status()``       | leader, Raft index and term, applied index, db size        |

`EtcdServerError` carries the errors etcd's server (not its store) returns:
no leader, a request timed out, a call that kubeproof does not support.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Protocol

from attrs import frozen

from kubeproof.mvcc import (
    CompactionRequest,
    DeleteRangeRequest,
    LeaseGrantRequest,
    LeaseKeepAliveRequest,
    LeaseLeasesRequest,
    LeaseRevokeRequest,
    LeaseTimeToLiveRequest,
    MVCCStore,
    PutRequest,
    RangeRequest,
    TxnRequest,
    Watcher,
    WatchFilter,
    WatchResponse,
)

from .etcd_convert import Identity

__all__ = [
    "CODE_DEADLINE_EXCEEDED",
    "CODE_UNAVAILABLE",
    "CODE_UNIMPLEMENTED",
    "EtcdBackend",
    "EtcdServerError",
    "MemberInfo",
    "StatusInfo",
    "StoreBackend",
    "WatchHandle",
]

CODE_DEADLINE_EXCEEDED = 4
CODE_UNIMPLEMENTED = 12
CODE_UNAVAILABLE = 14

Request = (
    RangeRequest
    | PutRequest
    | DeleteRangeRequest
    | TxnRequest
    | CompactionRequest
    | LeaseGrantRequest
    | LeaseRevokeRequest
    | LeaseTimeToLiveRequest
    | LeaseLeasesRequest
)


class EtcdServerError(Exception):
    """An error of etcd's server layer, with the gRPC code and message etcd
    sends (e.g. 14 "etcdserver: no leader")."""

    def __init__(self, grpc_code: int, grpc_message: str) -> None:
        self.grpc_code = grpc_code
        self.grpc_message = grpc_message
        super().__init__(grpc_message)


def no_leader() -> EtcdServerError:
    return EtcdServerError(CODE_UNAVAILABLE, "etcdserver: no leader")


def request_timed_out() -> EtcdServerError:
    return EtcdServerError(CODE_UNAVAILABLE, "etcdserver: request timed out")


@frozen
class MemberInfo:
    id: int
    name: str
    peer_urls: tuple[str, ...] = ()
    client_urls: tuple[str, ...] = ()
    is_learner: bool = False


@frozen
class StatusInfo:
    leader: int
    raft_index: int
    raft_term: int
    raft_applied_index: int
    db_size: int
    is_learner: bool = False
    errors: tuple[str, ...] = ()


class WatchHandle(Protocol):
    """One watch of the backend: its responses since the last poll; cancel."""

    def poll(self) -> tuple[WatchResponse, ...]: ...

    def cancel(self) -> bool: ...


class EtcdBackend(Protocol):
    def identity(self) -> Identity: ...

    async def request(self, req: Request) -> object: ...

    async def keep_alive(self, lease_id: int) -> int: ...

    def watch(
        self,
        key: bytes,
        range_end: bytes,
        start_revision: int,
        prev_kv: bool,
        filters: Iterable[WatchFilter],
    ) -> WatchHandle: ...

    def revision(self) -> int: ...

    def listen(self, callback: Callable[[], None]) -> Callable[[], None]: ...

    def members(self) -> tuple[MemberInfo, ...]: ...

    def status(self) -> StatusInfo: ...

    def hash_kv(self, revision: int) -> tuple[int, int, int]:
        """(hash, revision hashed, compact revision) of the local store."""
        ...


class Listeners:
    """Callbacks run after each applied batch (shared by the backends)."""

    def __init__(self) -> None:
        self._callbacks: dict[int, Callable[[], None]] = {}
        self._next = 0

    def add(self, callback: Callable[[], None]) -> Callable[[], None]:
        key = self._next
        self._next += 1
        self._callbacks[key] = callback

        def remove() -> None:
            self._callbacks.pop(key, None)

        return remove

    def fire(self) -> None:
        for cb in list(self._callbacks.values()):
            cb()


def store_hash(store: MVCCStore, revision: int) -> tuple[int, int, int]:
    """A CRC-32 over every live key at ``revision`` (0: current) with its
    revisions and value.  Equal stores give equal hashes; it is not etcd's
    bolt-page hash, only a way to compare members with each other."""
    import zlib

    rev = revision if revision > 0 else store.revision
    resp = store.range(b"\x00", b"\x00", revision=rev)
    h = 0
    for kv in resp.kvs:
        h = zlib.crc32(
            b"%d:%d:%d:%d:" % (kv.create_revision, kv.mod_revision, kv.version, kv.lease),
            h,
        )
        h = zlib.crc32(kv.key + b"\x00" + kv.value, h)
    return h, rev, max(store.compact_revision, 0)


class StoreBackend:
    """One in-memory `MVCCStore`, no Raft, no disk: the gRPC layer's double.

    ``clock`` gives seconds for lease expiry (a monotonic clock by default);
    `expire` revokes what is due and is called by the server's lease loop."""

    def __init__(
        self,
        store: MVCCStore | None = None,
        *,
        member_id: int = 1,
        cluster_id: int = 1,
        name: str = "default",
        client_urls: tuple[str, ...] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store if store is not None else MVCCStore()
        self._ident = Identity(cluster_id, member_id, 1)
        self.name = name
        self.client_urls = client_urls
        self.clock = clock
        self._listeners = Listeners()
        self._index = 0

    def identity(self) -> Identity:
        return self._ident

    async def request(self, req: Request) -> object:
        resp = self.store.apply(req, now=self.clock())
        if not isinstance(req, RangeRequest | LeaseTimeToLiveRequest | LeaseLeasesRequest):
            self._index += 1
            self._listeners.fire()
        return resp

    async def keep_alive(self, lease_id: int) -> int:
        resp = self.store.apply(LeaseKeepAliveRequest(id=lease_id), now=self.clock())
        ttl = getattr(resp, "ttl", 0)
        assert isinstance(ttl, int)
        return ttl

    def expire(self) -> tuple[int, ...]:
        due = self.store.expire(self.clock())
        if due:
            self._listeners.fire()
        return due

    def watch(
        self,
        key: bytes,
        range_end: bytes,
        start_revision: int,
        prev_kv: bool,
        filters: Iterable[WatchFilter],
    ) -> Watcher:
        return self.store.watch(key, range_end, start_revision, prev_kv, filters)

    def revision(self) -> int:
        return self.store.revision

    def listen(self, callback: Callable[[], None]) -> Callable[[], None]:
        return self._listeners.add(callback)

    def members(self) -> tuple[MemberInfo, ...]:
        return (MemberInfo(self._ident.member_id, self.name, (), self.client_urls),)

    def status(self) -> StatusInfo:
        return StatusInfo(
            leader=self._ident.member_id,
            raft_index=self._index,
            raft_term=self._ident.raft_term,
            raft_applied_index=self._index,
            db_size=0,
        )

    def hash_kv(self, revision: int) -> tuple[int, int, int]:
        return store_hash(self.store, revision)
