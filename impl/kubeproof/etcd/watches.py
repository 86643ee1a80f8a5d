"""A member's watches: served from its applied state, kept across snapshot restores.

Theory of operation
-------------------
A watch is served by whichever member the client is connected to, from
that member's own store: events appear as the member applies the log, so a
lagging member delivers later, never differently (the log is the same).
Each watch has a member-wide id and remembers where it is:

    next_rev   the first revision whose events the client has not been
               handed; after every poll it is past the store's revision
               (a poll hands over everything the store holds up to it)

A client resumes a broken watch anywhere, on any member, by creating a new
watch with ``start_revision = last revision it received + 1``: the store
replays its history from there (or, if that revision was compacted, says so
with ``canceled`` and ``compact_revision``), so nothing is skipped and
nothing repeated.

When the member replaces its store (it restored a Raft snapshot from the
leader), `rebind` re-creates every watch on the new store at its
``next_rev`` with the same id: the snapshot holds the history since the last
compaction, so the watch continues exactly where it was (or is canceled
with the compaction revision, if the leader compacted past it).

Polling (`poll`) collects every watch's new responses; a canceled watch
(compaction) is forgotten after its cancel response is handed over.
"""

from __future__ import annotations

from collections.abc import Iterable

from kubeproof.mvcc import MVCCStore, Watcher, WatchFilter, WatchResponse


class _Watch:
    __slots__ = ("filters", "handle", "key", "next_rev", "prev_kv", "range_end")

    def __init__(
        self,
        handle: Watcher,
        key: bytes,
        range_end: bytes,
        next_rev: int,
        prev_kv: bool,
        filters: tuple[WatchFilter, ...],
    ) -> None:
        self.handle = handle
        self.key = key
        self.range_end = range_end
        self.next_rev = next_rev
        self.prev_kv = prev_kv
        self.filters = filters


class WatchHub:
    __slots__ = ("_next_id", "_watches")

    def __init__(self) -> None:
        self._watches: dict[int, _Watch] = {}
        self._next_id = 1

    def __len__(self) -> int:
        return len(self._watches)

    def __contains__(self, watch_id: int) -> bool:
        return watch_id in self._watches

    def create(
        self,
        store: MVCCStore,
        key: bytes,
        range_end: bytes = b"",
        start_revision: int = 0,
        prev_kv: bool = False,
        filters: Iterable[WatchFilter] = (),
    ) -> int:
        """A new watch on ``store``; raises the store's errors (bad range ...)."""
        watch_id = self._next_id
        fs = tuple(filters)
        start = self.start_revision(store, start_revision)
        handle = store.watch(key, range_end, start, prev_kv, fs, watch_id=watch_id)
        self._next_id += 1
        next_rev = start if start else store.revision + 1
        self._watches[watch_id] = _Watch(handle, key, range_end, next_rev, prev_kv, fs)
        return watch_id

    def start_revision(self, store: MVCCStore, requested: int) -> int:
        """Where a new watch starts in the store (mutants override this)."""
        return requested

    def cancel(self, watch_id: int) -> bool:
        w = self._watches.pop(watch_id, None)
        if w is None:
            return False
        w.handle.cancel()
        return True

    def poll(self, store: MVCCStore) -> tuple[WatchResponse, ...]:
        if not self._watches:
            return ()
        out: list[WatchResponse] = []
        done: list[int] = []
        past = store.revision + 1
        for watch_id, w in self._watches.items():
            got = w.handle.poll()
            if got:
                out.extend(got)
                if got[-1].canceled:
                    done.append(watch_id)
                    continue
            if w.next_rev < past:
                w.next_rev = past
        for watch_id in done:
            del self._watches[watch_id]
        return tuple(out)

    def rebind(self, old: MVCCStore, new: MVCCStore) -> tuple[WatchResponse, ...]:
        """Move every watch from ``old`` to ``new`` (a restored snapshot).  Responses the
        old store still held are handed over first (returned)."""
        out = self.poll(old)
        for watch_id, w in list(self._watches.items()):
            w.handle.cancel()
            w.handle = new.watch(
                w.key, w.range_end, w.next_rev, w.prev_kv, w.filters, watch_id=watch_id
            )
        return out

    def next_revision(self, watch_id: int) -> int | None:
        w = self._watches.get(watch_id)
        return None if w is None else w.next_rev
