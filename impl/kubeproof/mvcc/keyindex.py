"""The key index: every key's history, and the keys in order.

Theory of operation
-------------------
etcd keeps an in-memory B-tree of ``keyIndex`` values (one per key: its
generations of revisions) next to a bolt database keyed by revision.  Here
the two collapse into one structure that answers the same questions:

    _hist[key]  = [kv_1, kv_2, ..., kv_n]     the key's changes, oldest first
    _keys       = SortedList of every key that has a history

Each change is the `KeyValue` that was written; a delete appends a
tombstone (``version == 0``, only ``key`` and ``mod_revision`` set).  The
list is ordered by ``mod_revision`` (and, within one revision, by the order
of the txn's operations, which is etcd's sub-revision), so the state of a
key at revision ``r`` is the last change with ``mod_revision <= r`` —
absent when there is none or when it is a tombstone.  A key's generations
(etcd's term) are the runs between tombstones; ``version`` counts within a
generation and ``create_revision`` is its first revision, both computed by
the store at write time and stored in the `KeyValue`, so reads never walk
a generation.

Compaction at ``c`` (etcd's ``keyIndex.compact``) keeps, for every key, the
last change at or before ``c`` and everything after it; when that last
change is a tombstone, the whole generation it closes goes too, and a key
left with no changes leaves the index.  Reads at revisions ``>= c`` are
unaffected, which is all the store allows after compacting.

Memory: one shared `KeyValue` per change plus one list slot; the key bytes
object is the one the index already holds, so a million revisions of small
values cost a few hundred bytes each (measured in bench/bench_mvcc.py).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from operator import attrgetter

from sortedcontainers import SortedList  # type: ignore[import-untyped]

from .types import KeyValue

_MOD = attrgetter("mod_revision")

UNBOUNDED: None = None
"""An interval end meaning "every key from here on" (etcd's range_end ``\\0``)."""


def interval_end(range_end: bytes) -> bytes | None:
    """etcd's ``mkGteRange``: ``b"\\0"`` becomes "unbounded"; ``b""`` stays
    "the single key"; anything else is an exclusive end."""
    return UNBOUNDED if range_end == b"\x00" else range_end


def at_revision(hist: list[KeyValue], rev: int) -> KeyValue | None:
    """The live value of a key at ``rev`` from its history, or None."""
    last = hist[-1]
    if last.mod_revision <= rev:
        kv = last
    else:
        i = bisect_right(hist, rev, key=_MOD) - 1
        if i < 0:
            return None
        kv = hist[i]
    return kv if kv.version else None


class KeyIndex:
    """Histories of all keys, ordered by key.  Mutated only by the store."""

    __slots__ = ("_hist", "_keys")

    def __init__(self) -> None:
        self._hist: dict[bytes, list[KeyValue]] = {}
        self._keys = SortedList()

    def __len__(self) -> int:
        return len(self._hist)

    def intern(self, key: bytes) -> bytes:
        """The key bytes object the index already holds (saves one copy per change)."""
        h = self._hist.get(key)
        return h[0].key if h is not None else key

    def append(self, kv: KeyValue) -> None:
        h = self._hist.get(kv.key)
        if h is None:
            self._hist[kv.key] = [kv]
            self._keys.add(kv.key)
        else:
            h.append(kv)

    def latest(self, key: bytes) -> KeyValue | None:
        """The key's live value after every change so far (including those of
        the txn being applied), or None."""
        h = self._hist.get(key)
        if h is None:
            return None
        kv = h[-1]
        return kv if kv.version else None

    def get(self, key: bytes, rev: int) -> KeyValue | None:
        h = self._hist.get(key)
        return None if h is None else at_revision(h, rev)

    def history(self, key: bytes) -> tuple[KeyValue, ...]:
        """Every change still held for ``key`` (read-only view, for invariants)."""
        return tuple(self._hist.get(key, ()))

    def keys(self, key: bytes, end: bytes | None) -> Iterator[bytes]:
        """Keys with a history in ``[key, end)`` (``end`` None: unbounded), in order."""
        if end is None:
            return iter(self._keys.irange(minimum=key))
        return iter(self._keys.irange(key, end, inclusive=(True, False)))

    def range(self, key: bytes, end: bytes | None, rev: int) -> list[KeyValue]:
        """Live values at ``rev`` of ``key`` (``end == b""``) or of ``[key, end)``."""
        if end == b"":
            kv = self.get(key, rev)
            return [] if kv is None else [kv]
        hist = self._hist
        out: list[KeyValue] = []
        for k in self.keys(key, end):
            kv = at_revision(hist[k], rev)
            if kv is not None:
                out.append(kv)
        return out

    def compact(self, rev: int) -> None:
        """Forget what no read at a revision ``>= rev`` can see."""
        gone: list[bytes] = []
        for key, h in self._hist.items():
            if h[0].mod_revision > rev:
                continue
            i = bisect_right(h, rev, key=_MOD) - 1
            # Keep the change visible at `rev` unless it is a tombstone: a
            # closed generation is invisible from `rev` on.
            cut = i + 1 if h[i].version == 0 else i
            if cut:
                del h[:cut]
            if not h:
                gone.append(key)
        for key in gone:
            del self._hist[key]
            self._keys.remove(key)
