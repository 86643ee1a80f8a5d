"""Watchers: ordered events from any revision still in history, sans-IO.

Theory of operation
-------------------
A watcher covers a key, a range ``[key, end)`` or every key from ``key`` on,
and has a next revision: the first revision whose events it has not yet
been given.  As in etcd's watchable store it is in one of two states:

    unsynced  next revision <= current revision: it still has history to
              read.  Nothing is queued for it on writes; the next `poll`
              reads the revision log from its next revision to the current
              one.  If its next revision is below the compaction revision,
              that poll instead returns one response with ``canceled=True``
              and ``compact_revision`` set (header revision 0, as etcd sends
              it), and the watcher is gone.  Otherwise it gets the events in
              responses of at most 1000 revisions each (etcd's
              watchBatchMaxRevs), every one with the current revision in its
              header, and becomes synced.
    synced    next revision > current revision.  Every write queues one
              response (header revision = the write's revision) holding the
              write's matching events, unless the watcher starts later
              still; `poll` hands the queue over.  A compaction never
              cancels a synced watcher: what it was sent, or has queued, it
              keeps.

The store never pushes anything anywhere: the caller polls (`Watcher.poll`),
which is how this stays sans-IO.  A watcher nobody polls queues without
bound; etcd would instead fall back to unsynced ("victim") and re-read
history, which yields the same events.

Event rules (etcd's): a change is a PUT event unless it is a tombstone; a
DELETE event's ``kv`` holds only the key and ``mod_revision``.  Filters drop
PUT (`WatchFilter.NOPUT`) or DELETE (`WatchFilter.NODELETE`) events; a
revision whose events are all filtered out sends nothing.  With
``prev_kv``, an event that is not a creation (a PUT whose create and mod
revisions are equal) carries the key's value at ``mod_revision - 1``, read
like a range at that revision: nothing when that revision is compacted.

Creation (etcd's v3rpc and watchStream rules): an empty key means
``b"\\0"``; ``range_end`` ``b""`` is the single key, ``b"\\0"`` every key from
``key`` on, and any other end not after ``key`` is refused with
`ErrEmptyWatcherRange`; ``start_revision`` 0 means "from the next revision".
Watch ids count up from 0 among live watchers; an explicit id must not be
in use (`ErrWatcherDuplicateID`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from .types import Event, EventType, KeyValue, WatchFilter, WatchResponse

WATCH_BATCH_MAX_REVS = 1000
"""etcd's watchBatchMaxRevs: the most revisions in one catch-up response."""


class WatchState:
    """A watcher's state inside the store (mutable; owned by the store)."""

    __slots__ = (
        "end",
        "id",
        "key",
        "next_rev",
        "no_delete",
        "no_put",
        "pending",
        "prev_kv",
        "synced",
    )

    def __init__(
        self,
        id: int,
        key: bytes,
        end: bytes | None,
        next_rev: int,
        synced: bool,
        prev_kv: bool,
        filters: Iterable[WatchFilter],
    ) -> None:
        fs = frozenset(filters)
        self.id = id
        self.key = key
        # b"": the single key; None: every key >= key; else exclusive end.
        self.end = end
        self.next_rev = next_rev
        self.synced = synced
        self.prev_kv = prev_kv
        self.no_put = WatchFilter.NOPUT in fs
        self.no_delete = WatchFilter.NODELETE in fs
        self.pending: list[WatchResponse] = []

    def covers(self, key: bytes) -> bool:
        end = self.end
        if end == b"":
            return key == self.key
        if end is None:
            return key >= self.key
        return self.key <= key < end

    def wants(self, kv: KeyValue) -> bool:
        """Whether a change is in range and passes the filters."""
        if not self.covers(kv.key):
            return False
        if kv.version:
            return not self.no_put
        return not self.no_delete


class PrevLookup(Protocol):
    def __call__(self, key: bytes, rev: int) -> KeyValue | None: ...


def make_events(w: WatchState, changes: Iterable[KeyValue], prev_at: PrevLookup) -> list[Event]:
    """The events one revision's changes give a watcher, in sub-revision order."""
    out: list[Event] = []
    for kv in changes:
        if not w.wants(kv):
            continue
        if kv.version:
            ev_type = EventType.PUT
            is_create = kv.create_revision == kv.mod_revision
        else:
            ev_type = EventType.DELETE
            is_create = False
        prev = None
        if w.prev_kv and not is_create:
            prev = prev_at(kv.key, kv.mod_revision - 1)
        out.append(Event(ev_type, kv, prev))
    return out


class WatchHost(Protocol):
    """What a `Watcher` handle needs from the store that made it."""

    def _watch_poll(self, watch_id: int) -> tuple[WatchResponse, ...]: ...

    def _watch_cancel(self, watch_id: int) -> bool: ...

    def _watch_alive(self, watch_id: int) -> bool: ...


class Watcher:
    """The caller's handle on one watcher of a store.

    ``poll()`` returns the responses that became available since the last
    poll (possibly none); ``cancel()`` removes the watcher.  After a
    compaction cancel or an explicit cancel, ``poll()`` returns ()."""

    __slots__ = ("_host", "watch_id")

    def __init__(self, host: WatchHost, watch_id: int) -> None:
        self._host = host
        self.watch_id = watch_id

    def poll(self) -> tuple[WatchResponse, ...]:
        return self._host._watch_poll(self.watch_id)

    def cancel(self) -> bool:
        """Removes the watcher; False when it was already gone."""
        return self._host._watch_cancel(self.watch_id)

    @property
    def active(self) -> bool:
        return self._host._watch_alive(self.watch_id)

    def __repr__(self) -> str:
        return f"Watcher(watch_id={self.watch_id}, active={self.active})"
