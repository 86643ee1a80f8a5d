"""The node's disk: etcd raft's MemoryStorage.

Theory of operation
-------------------
`MemoryStorage` holds what survived on stable storage: the hard state, the
conf state, the latest snapshot and the log after it.  The log is kept as a
list whose element 0 is a dummy entry carrying the index and term of the
last compacted entry (or of the snapshot), exactly as etcd does, so that
`term(first_index() - 1)` is always answerable.

    ents[0]           ents[1] ... ents[n]
    (snap.index,      first_index() ... last_index()
     snap.term)

Rules (etcd's): `entries(lo, hi)` returns indexes lo <= i < hi and raises
`ErrCompacted` below the first index and `ErrUnavailable` beyond the last;
`append` overwrites everything from its first index on and ignores entries
already compacted; `apply_snapshot` replaces the whole log; `compact(i)`
drops entries before i and refuses to compact beyond the last index.

The caller (the harness, or the real WAL adapter) writes each `Ready` into
the storage; a restart is a new `RaftNode` over the same object.  Nothing
here does I/O: the durable adapter in `kubeproof.serve` wraps it.
"""

from __future__ import annotations

from collections.abc import Sequence

from .types import (
    ConfState,
    Entry,
    ErrCompacted,
    ErrSnapOutOfDate,
    ErrUnavailable,
    HardState,
    RaftInvariantError,
    Snapshot,
    SnapshotMetadata,
)


class MemoryStorage:
    """etcd's MemoryStorage: what survived on disk."""

    def __init__(self) -> None:
        self._hard_state = HardState()
        self._snapshot = Snapshot()
        self._ents: list[Entry] = [Entry(term=0, index=0)]
        self._conf_state = ConfState()

    # -------------------------------------------------------------- reads

    def initial_state(self) -> tuple[HardState, ConfState]:
        return self._hard_state, self._conf_state

    @property
    def hard_state(self) -> HardState:
        return self._hard_state

    def first_index(self) -> int:
        return self._ents[0].index + 1

    def last_index(self) -> int:
        return self._ents[0].index + len(self._ents) - 1

    def entries(self, lo: int, hi: int, max_size: int | None = None) -> list[Entry]:
        offset = self._ents[0].index
        if lo <= offset:
            raise ErrCompacted(f"requested index {lo} is compacted (first index {offset + 1})")
        if hi > self.last_index() + 1:
            raise ErrUnavailable(f"entries [{lo}, {hi}) beyond last index {self.last_index()}")
        if lo >= hi:
            return []
        ents = self._ents[lo - offset : hi - offset]
        return limit_size(ents, max_size)

    def term(self, i: int) -> int:
        offset = self._ents[0].index
        if i < offset:
            raise ErrCompacted(f"term of index {i} is compacted (first index {offset + 1})")
        if i - offset >= len(self._ents):
            raise ErrUnavailable(f"term of index {i} beyond last index {self.last_index()}")
        return self._ents[i - offset].term

    def snapshot(self) -> Snapshot:
        return self._snapshot

    def all_entries(self) -> tuple[Entry, ...]:
        """Every entry held (for invariants and inspection)."""
        return tuple(self._ents[1:])

    # ------------------------------------------------------------- writes

    def set_hard_state(self, hs: HardState) -> None:
        self._hard_state = hs

    def set_conf_state(self, cs: ConfState) -> None:
        """Record the configuration in force (the application does this on apply)."""
        self._conf_state = cs

    def apply_snapshot(self, snap: Snapshot) -> None:
        if snap.metadata.index <= self._snapshot.metadata.index:
            raise ErrSnapOutOfDate(
                f"snapshot at {snap.metadata.index} is not newer than {self._snapshot.metadata.index}"
            )
        self._snapshot = snap
        self._ents = [Entry(term=snap.metadata.term, index=snap.metadata.index)]
        self._conf_state = snap.metadata.conf_state

    def create_snapshot(self, index: int, conf_state: ConfState | None, data: bytes) -> Snapshot:
        if index <= self._snapshot.metadata.index:
            raise ErrSnapOutOfDate(
                f"snapshot at {index} is not newer than {self._snapshot.metadata.index}"
            )
        if index > self.last_index():
            raise RaftInvariantError(
                "STORAGE-SNAPSHOT-BOUNDS",
                f"snapshot {index} is out of bound lastindex({self.last_index()})",
            )
        offset = self._ents[0].index
        cs = conf_state if conf_state is not None else self._snapshot.metadata.conf_state
        self._snapshot = Snapshot(
            data=data,
            metadata=SnapshotMetadata(
                conf_state=cs, index=index, term=self._ents[index - offset].term
            ),
        )
        return self._snapshot

    def compact(self, compact_index: int) -> None:
        offset = self._ents[0].index
        if compact_index <= offset:
            raise ErrCompacted(f"index {compact_index} is already compacted (first {offset + 1})")
        if compact_index > self.last_index():
            raise RaftInvariantError(
                "STORAGE-COMPACT-BOUNDS",
                f"compact {compact_index} is out of bound lastindex({self.last_index()})",
            )
        i = compact_index - offset
        self._ents = [
            Entry(term=self._ents[i].term, index=self._ents[i].index),
            *self._ents[i + 1 :],
        ]

    def append(self, entries: Sequence[Entry]) -> None:
        if not entries:
            return
        first = self.first_index()
        last = entries[0].index + len(entries) - 1
        if last < first:
            return  # everything already compacted
        if first > entries[0].index:
            entries = entries[first - entries[0].index :]
        offset = entries[0].index - self._ents[0].index
        if offset > len(self._ents):
            raise RaftInvariantError(
                "STORAGE-APPEND-GAP",
                f"missing log entry [last: {self.last_index()}, append at: {entries[0].index}]",
            )
        # In place: copying the whole log on every append was ~5% of a put's CPU.
        # Nothing holds a reference to the list (readers get slices or tuples).
        del self._ents[offset:]
        self._ents.extend(entries)


def limit_size(ents: list[Entry], max_size: int | None) -> list[Entry]:
    """etcd's limitSize: at least one entry, then as many as fit in max_size."""
    if max_size is None or not ents:
        return ents
    size = ents[0].size()
    n = 1
    while n < len(ents):
        size += ents[n].size()
        if size > max_size:
            break
        n += 1
    return ents[:n]
