"""Snapshots of the replicated state: the whole MVCC store, sessions and lease versions.

Theory of operation
-------------------
A Raft snapshot must let a member that restores it behave exactly as one
that applied the log up to the snapshot's index.  For the MVCC store that
means more than the live keys: historical reads, watches that start in the
past and the compaction revision all depend on the history since the last
compaction.  So an image holds everything the store holds:

    revision, compact_revision        the counters
    keys                              every key's changes still held (the key index)
    history_first, history            every revision's changes since the compaction,
                                      in sub-revision (txn) order, for watchers
    leases, next_lease_id             the leases (id, TTL, attached keys), the id counter

plus the state machine's own tables (`state_machine.StateImage`): the
client sessions and each lease's version.  Watchers are not state: they
belong to the connections of one member, which re-creates them over the
restored store (`member.Member`).

The image is a frozen value encoded with the one JSON codec, so a snapshot
is canonical JSON text: the same state gives the same bytes on every member.

The MVCC store offers no public constructor from such an image, so
`store_image`/`restore_store` are the one place that reads and writes its
internals (the key index, the revision log and the lessor);
tests/test_etcd_state_machine.py round-trips a store through them so that
a change inside `kubeproof.mvcc` breaks a test rather than a snapshot.
"""

from __future__ import annotations

from attrs import frozen
from sortedcontainers import SortedList  # type: ignore[import-untyped]

from kubeproof.mvcc import KeyValue, MVCCStore
from kubeproof.mvcc.lease import Lease


@frozen
class LeaseImage:
    id: int
    ttl: int
    keys: tuple[bytes, ...] = ()


@frozen
class StoreImage:
    revision: int = 1
    compact_revision: int = -1
    keys: tuple[tuple[KeyValue, ...], ...] = ()
    history_first: int = 2
    history: tuple[tuple[KeyValue, ...], ...] = ()
    leases: tuple[LeaseImage, ...] = ()
    next_lease_id: int = 1


def store_image(store: MVCCStore) -> StoreImage:
    index = store._index
    history = store._history
    lessor = store._lessor
    return StoreImage(
        revision=store._rev,
        compact_revision=store._compact_rev,
        keys=tuple(tuple(index._hist[k]) for k in index._keys),
        history_first=history._first,
        history=tuple((e,) if isinstance(e, KeyValue) else tuple(e) for e in history._entries),
        leases=tuple(
            LeaseImage(le.id, le.ttl, tuple(sorted(le.keys)))
            for le in sorted(lessor._leases.values(), key=lambda le: le.id)
        ),
        next_lease_id=lessor._next_id,
    )


def restore_store(image: StoreImage, store: MVCCStore) -> MVCCStore:
    """Fill a fresh `store` (built with the member's identity and limits) from ``image``."""
    if store._rev != 1 or store._index._hist:
        raise ValueError("restore_store needs a fresh store")
    store._rev = image.revision
    store._compact_rev = image.compact_revision
    hist = {h[0].key: list(h) for h in image.keys if h}
    store._index._hist = hist
    store._index._keys = SortedList(hist)
    store._history._first = image.history_first
    store._history._entries = [c[0] if len(c) == 1 else c for c in image.history]
    leases = store._lessor._leases
    for li in image.leases:
        # The store's own lease clock is not used by the replicated store (time
        # belongs to the leader, see `leases`): expiry stays at TTL from time 0.
        lease = Lease(li.id, li.ttl, float(li.ttl))
        lease.keys = set(li.keys)
        leases[li.id] = lease
    store._lessor._next_id = image.next_lease_id
    return store
