"""A checker's copy of one Raft log, and what changed in it since the last look.

Theory of operation
-------------------
Invariants must be checked after every harness event, so they cannot
re-read whole logs.  A `LogMirror` keeps a copy of one log (a live node's
unified stable+unstable log, or a storage's durable one) and, when asked to
`refresh`, works out the difference as a `LogDelta` in time proportional to
the change, not to the log:

    mirror:  base | e[base+1] ... e[j] | e[j+1] ... e[old_top]     (old)
    live:    base'| e[base'+1] ... e[j] | f[j+1] ... f[new_top]     (now)
                                        ^ cut = j + 1

* `base` is the index just before the first entry held (the snapshot or
  compaction point); its term is known, its entry is not.
* The fast path: the same first index, the same last index and the same
  term at the last index mean "unchanged" (three cheap calls).  Only two
  leaders of one term (or a leader rewriting its own entry) can put a
  different entry under the same (index, term); the scrub below finds
  that, and Log Matching sees it as soon as a second log holds it.
* Otherwise the mirror walks down from the top of the overlap until the
  live entry equals its own (same term first, then the whole entry); `j` is
  that index and `cut = j + 1`.  Raft only ever changes a log by appending,
  by truncating-then-appending from a conflict, or by replacing it with a
  snapshot, so everything at or below `j` is unchanged, and the walk costs
  the size of the change.
* A change that leaves the top of the log as it was but alters an entry
  below it cannot happen in Raft's own operations; `scrub` finds it anyway:
  each call compares a small window of the mirror with the live log,
  moving round the log, and a mismatch is reported as a delta cut there.

Sources are anything with `first_index()`, `last_index()`, `term(i)` (None
when unavailable) and `entries(lo, hi)`; `NodeLog` and `DiskLog` adapt a
live node and a `MemoryStorage`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from kubeproof.raft.storage import MemoryStorage
from kubeproof.raft.types import Entry, RaftError, StateType


class LiveNode(Protocol):
    """The read-only face of a live Raft node that the checkers use."""

    @property
    def id(self) -> int: ...
    @property
    def state(self) -> StateType: ...
    @property
    def term(self) -> int: ...
    @property
    def vote(self) -> int: ...
    @property
    def commit(self) -> int: ...
    @property
    def applied(self) -> int: ...
    def first_index(self) -> int: ...
    def last_index(self) -> int: ...
    def term_at(self, i: int) -> int | None: ...
    def entries(self, lo: int, hi: int) -> list[Entry]: ...


class LogSource(Protocol):
    def first_index(self) -> int: ...
    def last_index(self) -> int: ...
    def term(self, i: int) -> int | None: ...
    def entries(self, lo: int, hi: int) -> Sequence[Entry]: ...


class NodeLog:
    """A live node's unified log (stable + unstable) as a `LogSource`.

    The node's own bound methods, looked up once per life: a mirror's
    refresh calls them after most events, and a forwarding method per call
    was a measurable share of the checkers' cost.
    """

    __slots__ = ("entries", "first_index", "last_index", "term")

    def __init__(self, node: LiveNode) -> None:
        self.first_index: Callable[[], int] = node.first_index
        self.last_index: Callable[[], int] = node.last_index
        self.term: Callable[[int], int | None] = node.term_at
        self.entries: Callable[[int, int], Sequence[Entry]] = node.entries


class DiskLog:
    """A storage's durable log as a `LogSource`."""

    __slots__ = ("_st",)

    def __init__(self, storage: MemoryStorage) -> None:
        self._st = storage

    def first_index(self) -> int:
        return self._st.first_index()

    def last_index(self) -> int:
        return self._st.last_index()

    def term(self, i: int) -> int | None:
        try:
            return self._st.term(i)
        except RaftError:
            return None

    def entries(self, lo: int, hi: int) -> Sequence[Entry]:
        return self._st.entries(lo, hi)


class LogDelta:
    """How a log changed between two looks.

    Entries at indexes <= `new_base` are now covered by a snapshot (or were
    compacted); entries in (new_base, cut) are unchanged; `removed` are the
    old entries at cut, cut+1, ... that are gone or replaced; `added` are
    the entries now at cut, cut+1, ...  `prev_term` is the term at cut - 1
    in the new log.  When the start moved forward, `old_term_at_base` is the
    term the old log had at the new start (None if it did not hold it).
    `fresh` marks a mirror built from nothing (first look, or a new life):
    nothing was "removed" then, everything is "added".
    """

    __slots__ = (
        "added",
        "cut",
        "fresh",
        "new_base",
        "new_top",
        "old_base",
        "old_term_at_base",
        "old_top",
        "prev_term",
        "removed",
        "scrubbed",
    )

    def __init__(
        self,
        *,
        old_base: int,
        new_base: int,
        old_top: int,
        new_top: int,
        cut: int,
        removed: list[Entry],
        added: Sequence[Entry],
        prev_term: int | None,
        fresh: bool = False,
        scrubbed: bool = False,
        old_term_at_base: int | None = None,
    ) -> None:
        self.old_base = old_base
        self.new_base = new_base
        self.old_top = old_top
        self.new_top = new_top
        self.cut = cut
        self.removed = removed
        self.added = added
        self.prev_term = prev_term
        self.fresh = fresh
        self.scrubbed = scrubbed
        self.old_term_at_base = old_term_at_base

    @property
    def snapshot(self) -> bool:
        """The log's start moved forward (compaction, or a snapshot installed)."""
        return self.new_base > self.old_base


class LogMirror:
    """A copy of one log; see the module docstring."""

    __slots__ = ("base", "base_term", "ents", "scrub_at")

    def __init__(self) -> None:
        self.base = 0
        self.base_term: int | None = 0
        self.ents: list[Entry] = []
        self.scrub_at = 0

    @property
    def top(self) -> int:
        return self.base + len(self.ents)

    def entry(self, i: int) -> Entry | None:
        """The entry at i, or None if i is at or below the base or beyond the top."""
        k = i - self.base - 1
        if 0 <= k < len(self.ents):
            return self.ents[k]
        return None

    def term(self, i: int) -> int | None:
        if i == self.base:
            return self.base_term
        k = i - self.base - 1
        if 0 <= k < len(self.ents):
            return self.ents[k].term
        return None

    def build(self, src: LogSource) -> LogDelta:
        """Copy the whole log (first look or a new life)."""
        old_base, old_top = self.base, self.top
        first = src.first_index()
        last = src.last_index()
        self.base = first - 1
        self.base_term = src.term(self.base)
        self.ents = list(src.entries(first, last + 1)) if last >= first else []
        self.scrub_at = 0
        return LogDelta(
            old_base=old_base,
            new_base=self.base,
            old_top=old_top,
            new_top=self.top,
            cut=first,
            removed=[],
            added=self.ents[:],
            prev_term=self.base_term,
            fresh=True,
        )

    def refresh(self, src: LogSource, *, below: int | None = None) -> LogDelta | None:
        """Bring the mirror up to date; None if nothing changed.

        `below` forces the search for the unchanged prefix to start under
        that index (used when a scrub found a difference there).
        """
        first = src.first_index()
        last = src.last_index()
        old_base = self.base
        ents = self.ents
        old_top = old_base + len(ents)
        new_base = first - 1
        if below is None and new_base == old_base and last == old_top:
            if last == old_base:
                if src.term(new_base) == self.base_term:
                    return None
            elif src.term(last) == ents[-1].term:
                return None
        if new_base < old_base:
            # A log never gains entries below its start within one life; start
            # over, reporting every old entry as removed.
            removed = ents[:]
            delta = self.build(src)
            delta.fresh = False
            delta.old_base, delta.old_top = old_base, old_top
            delta.cut = min(old_base, new_base) + 1
            delta.removed = removed
            return delta
        # Highest index j in (new_base, min(old_top, last)] where the entries agree.
        hi = min(old_top, last)
        if below is not None:
            hi = min(hi, below - 1)
        j = new_base
        i = hi
        while i > new_base:
            mine = ents[i - old_base - 1]
            if src.term(i) == mine.term:
                live = src.entries(i, i + 1)[0]
                if live is mine or live == mine:
                    j = i
                    break
            i -= 1
        removed = ents[j - old_base :] if j < old_top else []
        old_term_at_base = self.term(new_base) if new_base > old_base else None
        added = list(src.entries(j + 1, last + 1)) if last > j else []
        base_term = src.term(new_base)
        prev_term = base_term if j == new_base else ents[j - old_base - 1].term
        # Update in place: O(change) except for the rare compaction shift.
        del ents[max(j - old_base, 0) :]
        if new_base > old_base:
            del ents[: new_base - old_base]
        ents.extend(added)
        self.base = new_base
        self.base_term = base_term
        if self.scrub_at <= new_base:
            self.scrub_at = new_base + 1
        return LogDelta(
            old_base=old_base,
            new_base=new_base,
            old_top=old_top,
            new_top=self.top,
            cut=j + 1,
            removed=removed,
            added=added,
            prev_term=prev_term,
            scrubbed=below is not None,
            old_term_at_base=old_term_at_base,
        )

    def scrub(self, src: LogSource, width: int, *, refreshed: bool = False) -> LogDelta | None:
        """Compare `width` mirrored entries with the live log, moving round the log.

        A plain `refresh` comes first, so that the ends agree; then if an
        entry in the window differs, the mirror is corrected from there.
        Returns the delta of either, or None.  `refreshed` says the caller
        has just refreshed the mirror from `src` and it found no change, so
        the refresh is skipped (it could only find nothing again).
        """
        if not refreshed:
            delta = self.refresh(src)
            if delta is not None:
                return delta
        ents = self.ents
        if not ents:
            return None
        lo = self.scrub_at
        if lo <= self.base or lo > self.top:
            lo = self.base + 1
        hi = min(lo + width, self.top + 1)
        self.scrub_at = hi
        live = src.entries(lo, hi)
        k0 = lo - self.base - 1
        mine = ents[k0 : k0 + (hi - lo)]
        if live == mine:
            return None
        for k, (a, b) in enumerate(zip(live, mine, strict=False)):
            if a is not b and a != b:
                return self.refresh(src, below=lo + k)
        return None
