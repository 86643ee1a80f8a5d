"""Objects in the key-value store, with kube-apiserver's key layout and txn shapes.

Theory of operation
-------------------
An object lives at ``<prefix>/<namespace>/<name>`` (cluster-scoped:
``<prefix>/<name>``), where the prefix is the resource's kube-apiserver
etcd prefix (`ResourceInfo.etcd_prefix`).  The value is the object's JSON
with ``metadata.resourceVersion`` removed (kube-apiserver also clears it
before storing); on the way out it is set to the key's ``mod_revision``, so
an object's resourceVersion is the store revision that last wrote it, and a
list's is the revision the range was read at (the header revision).

Writes use exactly kube-apiserver's transaction shapes (its etcd3 store):

    create   If(mod_revision(k) == 0) Then(Put(k, v))                 [+ extra compares]
    update   If(mod_revision(k) == rev) Then(Put(k, v)) Else(Get(k))
    delete   If(mod_revision(k) == rev) Then(DeleteRange(k)) Else(Get(k))

so that two writers racing on one version cannot both win: the loser's
compare fails and it sees the current object (API-NO-LOST-UPDATE).

`Store` is the small protocol the API server needs from a store; the MVCC
store satisfies it, and the replicated store can be swapped in.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from kubeproof.mvcc import (
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    KeyValue,
    PutRequest,
    RangeRequest,
    RangeResponse,
    TxnRequest,
    TxnResponse,
    WatchResponse,
)

from . import jsoncodec
from .resources import ResourceInfo

Obj = dict[str, Any]


class StoreWatcher(Protocol):
    def poll(self) -> tuple[WatchResponse, ...]: ...

    def cancel(self) -> bool: ...


class Store(Protocol):
    """What the API server needs from an etcd-like store."""

    @property
    def revision(self) -> int: ...

    @property
    def compact_revision(self) -> int: ...

    def apply_range(self, r: RangeRequest) -> RangeResponse: ...

    def apply_txn(self, r: TxnRequest) -> TxnResponse: ...

    def watch(
        self,
        key: bytes,
        range_end: bytes = b"",
        start_revision: int = 0,
        prev_kv: bool = False,
    ) -> StoreWatcher: ...


def prefix_end(prefix: bytes) -> bytes:
    """etcd's GetPrefixRangeEnd: the first key after every key with this prefix."""
    b = bytearray(prefix)
    for i in range(len(b) - 1, -1, -1):
        if b[i] < 0xFF:
            b[i] += 1
            return bytes(b[: i + 1])
    return b"\x00"


def object_key(info: ResourceInfo, namespace: str, name: str) -> bytes:
    if info.namespaced:
        return f"{info.etcd_prefix}/{namespace}/{name}".encode()
    return f"{info.etcd_prefix}/{name}".encode()


def collection_prefix(info: ResourceInfo, namespace: str) -> bytes:
    """The key prefix of a collection: all namespaces when ``namespace`` is ''."""
    if info.namespaced and namespace:
        return f"{info.etcd_prefix}/{namespace}/".encode()
    return f"{info.etcd_prefix}/".encode()


def encode(obj: Mapping[str, Any]) -> bytes:
    body = dict(obj)
    meta = dict(body.get("metadata") or {})
    meta.pop("resourceVersion", None)
    body["metadata"] = meta
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def decode(kv: KeyValue) -> Obj:
    obj: Obj = jsoncodec.loads(kv.value)
    meta = obj.setdefault("metadata", {})
    meta["resourceVersion"] = str(kv.mod_revision)
    return obj


def _mod_eq(key: bytes, rev: int) -> Compare:
    return Compare(key=key, target=CompareTarget.MOD, result=CompareResult.EQUAL, mod_revision=rev)


class ObjectStore:
    """The typed face of the store: objects in, objects out."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @property
    def revision(self) -> int:
        return self.store.revision

    def get_kv(self, key: bytes) -> KeyValue | None:
        resp = self.store.apply_range(RangeRequest(key=key))
        return resp.kvs[0] if resp.kvs else None

    def get(self, info: ResourceInfo, namespace: str, name: str) -> tuple[Obj, int] | None:
        kv = self.get_kv(object_key(info, namespace, name))
        if kv is None:
            return None
        return decode(kv), kv.mod_revision

    def range(
        self, start: bytes, end: bytes, *, revision: int = 0, limit: int = 0
    ) -> RangeResponse:
        return self.store.apply_range(
            RangeRequest(key=start, range_end=end, revision=revision, limit=limit)
        )

    def list_all(self, info: ResourceInfo, namespace: str) -> tuple[list[Obj], int]:
        """Every object of a collection at the current revision, and that revision."""
        p = collection_prefix(info, namespace)
        resp = self.range(p, prefix_end(p))
        return [decode(kv) for kv in resp.kvs], resp.header.revision

    def create(
        self,
        key: bytes,
        obj: Mapping[str, Any],
        extra: Sequence[Compare] = (),
    ) -> tuple[bool, int]:
        """Puts ``obj`` if ``key`` does not exist (and ``extra`` compares hold);
        (succeeded, revision)."""
        resp = self.store.apply_txn(
            TxnRequest(
                compare=(_mod_eq(key, 0), *extra),
                success=(PutRequest(key=key, value=encode(obj)),),
            )
        )
        return resp.succeeded, resp.header.revision

    def update(
        self, key: bytes, obj: Mapping[str, Any], expected: int
    ) -> tuple[bool, int, KeyValue | None]:
        """Puts ``obj`` if ``key``'s mod_revision is ``expected``; on failure the
        current key-value (None when gone)."""
        resp = self.store.apply_txn(
            TxnRequest(
                compare=(_mod_eq(key, expected),),
                success=(PutRequest(key=key, value=encode(obj)),),
                failure=(RangeRequest(key=key),),
            )
        )
        if resp.succeeded:
            return True, resp.header.revision, None
        rr = resp.responses[0].response
        assert isinstance(rr, RangeResponse)
        return False, resp.header.revision, (rr.kvs[0] if rr.kvs else None)

    def delete(self, key: bytes, expected: int) -> tuple[bool, int, KeyValue | None]:
        resp = self.store.apply_txn(
            TxnRequest(
                compare=(_mod_eq(key, expected),),
                success=(DeleteRangeRequest(key=key),),
                failure=(RangeRequest(key=key),),
            )
        )
        if resp.succeeded:
            return True, resp.header.revision, None
        rr = resp.responses[0].response
        assert isinstance(rr, RangeResponse)
        return False, resp.header.revision, (rr.kvs[0] if rr.kvs else None)


def keys_of(kvs: Iterable[KeyValue]) -> list[bytes]:
    return [kv.key for kv in kvs]
