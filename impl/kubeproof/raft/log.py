"""The Raft log: stable entries in storage plus an unstable tail in memory.

Theory of operation
-------------------
As in etcd's raftLog, the log a node reasons about is the concatenation of

    storage (persisted)           unstable (not yet handed out for persisting)
    [first_index .. stable_last]  [offset .. offset+len-1]   (+ maybe a snapshot)

`unstable.offset` is the index of its first entry; entries at or after it
shadow the storage's (a conflicting append truncates only the unstable
part, or rewinds `offset` below the stable last index so that the next
`Ready` overwrites the storage from there).  `committed` is the highest
index known committed; `applied` the highest index handed to the
application (and acknowledged by `advance`).  Invariants (violations raise
`RaftInvariantError`, where etcd panics):

    applied <= committed <= last_index()
    first_index() - 1 <= applied

`maybe_append` is the follower's half of AppendEntries: it checks that
(index, log_term) matches, finds the first conflicting entry, and appends
only from there, so that a stale, non-conflicting append never truncates.
`find_conflict_by_term` implements etcd's fast backtracking hint.
"""

from __future__ import annotations

from collections.abc import Sequence

from .storage import MemoryStorage, limit_size
from .types import (
    Entry,
    ErrCompacted,
    ErrUnavailable,
    RaftInvariantError,
    Snapshot,
)


class Unstable:
    """Entries and a snapshot not yet written to storage."""

    __slots__ = ("entries", "offset", "snapshot")

    def __init__(self, offset: int) -> None:
        self.snapshot: Snapshot | None = None
        self.entries: list[Entry] = []
        self.offset = offset

    def maybe_first_index(self) -> int | None:
        if self.snapshot is not None:
            return self.snapshot.metadata.index + 1
        return None

    def maybe_last_index(self) -> int | None:
        if self.entries:
            return self.offset + len(self.entries) - 1
        if self.snapshot is not None:
            return self.snapshot.metadata.index
        return None

    def maybe_term(self, i: int) -> int | None:
        if i < self.offset:
            if self.snapshot is not None and self.snapshot.metadata.index == i:
                return self.snapshot.metadata.term
            return None
        last = self.maybe_last_index()
        if last is None or i > last:
            return None
        return self.entries[i - self.offset].term

    def stable_to(self, index: int, term: int) -> None:
        t = self.maybe_term(index)
        if t is None:
            return
        # Only if the entry is still the one that was persisted: a later
        # conflicting append may have replaced it meanwhile.
        if t == term and index >= self.offset:
            del self.entries[: index + 1 - self.offset]
            self.offset = index + 1

    def stable_snap_to(self, index: int) -> None:
        if self.snapshot is not None and self.snapshot.metadata.index == index:
            self.snapshot = None

    def restore(self, snap: Snapshot) -> None:
        self.offset = snap.metadata.index + 1
        self.entries = []
        self.snapshot = snap

    def truncate_and_append(self, ents: Sequence[Entry]) -> None:
        after = ents[0].index
        if after == self.offset + len(self.entries):
            self.entries.extend(ents)
        elif after <= self.offset:
            # Replace the whole unstable part; storage is overwritten from
            # `after` when the next Ready is persisted.
            self.offset = after
            self.entries = list(ents)
        else:
            self.entries = [*self.entries[: after - self.offset], *ents]


class RaftLog:
    __slots__ = ("applied", "committed", "storage", "unstable")

    def __init__(self, storage: MemoryStorage) -> None:
        self.storage = storage
        first = storage.first_index()
        last = storage.last_index()
        self.unstable = Unstable(offset=last + 1)
        # Everything up to the snapshot is committed and applied by definition.
        self.committed = first - 1
        self.applied = first - 1

    # ------------------------------------------------------------ indexes

    # first_index, last_index and term run several times per event: they read the
    # unstable tail directly instead of through its maybe_* helpers (same rules).

    def first_index(self) -> int:
        snap = self.unstable.snapshot
        if snap is not None:
            return snap.metadata.index + 1
        return self.storage.first_index()

    def last_index(self) -> int:
        u = self.unstable
        if u.entries:
            return u.offset + len(u.entries) - 1
        if u.snapshot is not None:
            return u.snapshot.metadata.index
        return self.storage.last_index()

    def last_term(self) -> int:
        t = self.term(self.last_index())
        if t is None:
            raise RaftInvariantError("LOG-LAST-TERM", "term of the last index is unavailable")
        return t

    def term(self, i: int) -> int | None:
        """The term of entry i, or None if compacted or beyond the log."""
        u = self.unstable
        snap = u.snapshot
        # first_index() - 1 and last_index(), written out.
        dummy = snap.metadata.index if snap is not None else self.storage.first_index() - 1
        if i < dummy:
            return None
        if u.entries:
            if i > u.offset + len(u.entries) - 1:
                return None
        elif i > (snap.metadata.index if snap is not None else self.storage.last_index()):
            return None
        off = u.offset
        if i >= off:
            # i <= last_index() and i >= offset: an unstable entry whenever there are
            # any (otherwise maybe_term falls through to the storage, as below).
            n = i - off
            if n < len(u.entries):
                return u.entries[n].term
        elif u.snapshot is not None and u.snapshot.metadata.index == i:
            return u.snapshot.metadata.term
        try:
            return self.storage.term(i)
        except (ErrCompacted, ErrUnavailable):
            return None

    def match_term(self, i: int, term: int) -> bool:
        return self.term(i) == term

    def is_up_to_date(self, last_index: int, term: int) -> bool:
        """Raft's §5.4.1 check: is (term, last_index) at least as up to date as our log?"""
        lt = self.last_term()
        return term > lt or (term == lt and last_index >= self.last_index())

    # -------------------------------------------------------------- reads

    def slice(self, lo: int, hi: int, max_size: int | None = None) -> list[Entry]:
        """Entries lo <= i < hi from storage and the unstable tail."""
        if lo > hi:
            raise RaftInvariantError("LOG-SLICE", f"invalid slice {lo} > {hi}")
        fi = self.first_index()
        if lo < fi:
            raise ErrCompacted(f"slice [{lo}, {hi}) starts before first index {fi}")
        if hi > self.last_index() + 1:
            raise RaftInvariantError(
                "LOG-SLICE", f"slice [{lo}, {hi}) out of bound [{fi}, {self.last_index()}]"
            )
        if lo == hi:
            return []
        ents: list[Entry] = []
        off = self.unstable.offset
        if lo < off:
            ents.extend(self.storage.entries(lo, min(hi, off)))
        if hi > off:
            ents.extend(self.unstable.entries[max(lo, off) - off : hi - off])
        return limit_size(ents, max_size)

    def entries_from(self, i: int, max_size: int | None = None) -> list[Entry]:
        if i > self.last_index():
            return []
        return self.slice(i, self.last_index() + 1, max_size)

    def unstable_entries(self) -> list[Entry]:
        return list(self.unstable.entries)

    def stable_last_index(self) -> int:
        """The last index known persisted: everything before the unstable tail."""
        return self.unstable.offset - 1

    def next_committed_entries(self) -> list[Entry]:
        """Committed, persisted, not yet applied entries (etcd's nextCommittedEnts)."""
        if self.unstable.snapshot is not None:
            return []  # apply the snapshot first
        lo = max(self.applied + 1, self.first_index())
        hi = min(self.committed, self.stable_last_index()) + 1
        if lo >= hi:
            return []
        return self.slice(lo, hi)

    def has_next_committed_entries(self) -> bool:
        # Asked after nearly every event (via has_ready): the same bounds as
        # next_committed_entries, with first_index() and the min/max written out
        # (with no unstable snapshot, first_index() is the storage's).
        u = self.unstable
        if u.snapshot is not None:
            return False
        hi = self.committed
        if hi > u.offset - 1:
            hi = u.offset - 1
        lo = self.applied + 1
        if lo > hi:
            return False
        return self.storage.first_index() <= hi

    # ------------------------------------------------------------- writes

    def append(self, ents: Sequence[Entry]) -> int:
        if not ents:
            return self.last_index()
        after = ents[0].index - 1
        if after < self.committed:
            raise RaftInvariantError(
                "LOG-NO-TRUNCATE-COMMITTED",
                f"append after {after} is out of range [committed({self.committed})]",
            )
        self.unstable.truncate_and_append(ents)
        return self.last_index()

    def find_conflict(self, ents: Sequence[Entry]) -> int:
        """Index of the first entry whose term differs from ours (0 if none)."""
        for e in ents:
            if not self.match_term(e.index, e.term):
                return e.index
        return 0

    def find_conflict_by_term(self, index: int, term: int) -> tuple[int, int]:
        """The largest (index', term') with index' <= index and term' <= term (etcd)."""
        while index > 0:
            t = self.term(index)
            if t is None:
                # Compacted or unavailable: return what we have.
                return index, 0
            if t <= term:
                return index, t
            index -= 1
        return 0, 0

    def maybe_append(
        self, index: int, log_term: int, committed: int, ents: Sequence[Entry]
    ) -> int | None:
        """Follower side of MsgApp.  Returns the new last matching index, or None."""
        if not self.match_term(index, log_term):
            return None
        last_new = index + len(ents)
        ci = self.find_conflict(ents)
        if ci != 0:
            if ci <= self.committed:
                raise RaftInvariantError(
                    "LOG-NO-TRUNCATE-COMMITTED",
                    f"entry {ci} conflicts with committed entry [committed({self.committed})]",
                )
            self.append(ents[ci - index - 1 :])
        self.commit_to(min(committed, last_new))
        return last_new

    def commit_to(self, to: int) -> None:
        if self.committed < to:
            if self.last_index() < to:
                raise RaftInvariantError(
                    "LOG-COMMIT-BOUNDS",
                    f"tocommit({to}) is out of range [lastIndex({self.last_index()})]",
                )
            self.committed = to

    def maybe_commit(self, max_index: int, term: int) -> bool:
        """Commit max_index only if its entry is of `term` (the Figure 8 rule)."""
        if max_index > self.committed and self.term(max_index) == term:
            self.commit_to(max_index)
            return True
        return False

    def applied_to(self, i: int) -> None:
        if i == 0:
            return
        if self.committed < i or i < self.applied:
            raise RaftInvariantError(
                "LOG-APPLIED-BOUNDS",
                f"applied({i}) is out of range [prevApplied({self.applied}), "
                f"committed({self.committed})]",
            )
        self.applied = i

    def stable_to(self, index: int, term: int) -> None:
        self.unstable.stable_to(index, term)

    def stable_snap_to(self, index: int) -> None:
        self.unstable.stable_snap_to(index)

    def restore(self, snap: Snapshot) -> None:
        self.committed = snap.metadata.index
        self.unstable.restore(snap)
