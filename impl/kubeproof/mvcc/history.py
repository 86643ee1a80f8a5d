"""The revision log: every change, in revision order, for watchers.

Theory of operation
-------------------
etcd's bolt database is keyed by revision, and a watcher that starts in
the past reads its events straight from it.  `History` is that view: one
entry per revision since the last compaction, holding the changes the
revision made in sub-revision order (a put leaves its `KeyValue`, a delete
its tombstone, ``version == 0``).  Revision 1 is the empty store and has no
entry; every later revision has at least one change, because a write that
changes nothing does not create a revision.

    first = 5                       (compacted at 5, or the first write's revision)
    _entries[0] -> changes of revision 5
    _entries[i] -> changes of revision 5 + i

An entry is the `KeyValue` itself when the revision changed one key (the
common case; it saves a tuple per revision) and a tuple otherwise.

Compaction at ``c`` drops the entries of revisions ``< c`` and keeps ``c``
itself: a watcher may start at the compaction revision and must then see
every change of that revision.  (etcd 3.4 loses a tombstone written at
exactly the compaction revision from its bolt database; see
tests/test_mvcc_vs_etcd.py.  This log does not.)
"""

from __future__ import annotations

from collections.abc import Iterator

from .types import KeyValue


class History:
    __slots__ = ("_entries", "_first")

    def __init__(self) -> None:
        self._first = 2
        self._entries: list[KeyValue | tuple[KeyValue, ...]] = []

    @property
    def first(self) -> int:
        """The oldest revision whose changes are still held."""
        return self._first

    @property
    def last(self) -> int:
        """The newest revision held (``first - 1`` when empty)."""
        return self._first + len(self._entries) - 1

    def append(self, rev: int, changes: list[KeyValue]) -> None:
        if rev != self._first + len(self._entries):
            raise ValueError(f"history: revision {rev} out of order after {self.last}")
        self._entries.append(changes[0] if len(changes) == 1 else tuple(changes))

    def changes(self, rev: int) -> tuple[KeyValue, ...]:
        """The changes revision ``rev`` made, or () when it is not held."""
        i = rev - self._first
        if i < 0 or i >= len(self._entries):
            return ()
        e = self._entries[i]
        return (e,) if isinstance(e, KeyValue) else e

    def since(self, rev: int) -> Iterator[tuple[int, tuple[KeyValue, ...]]]:
        """``(revision, changes)`` for every held revision ``>= rev``, in order."""
        start = max(rev, self._first)
        entries = self._entries
        for i in range(start - self._first, len(entries)):
            e = entries[i]
            yield self._first + i, ((e,) if isinstance(e, KeyValue) else e)

    def compact(self, rev: int) -> None:
        if rev > self._first:
            drop = min(rev - self._first, len(self._entries))
            del self._entries[:drop]
            self._first += drop
