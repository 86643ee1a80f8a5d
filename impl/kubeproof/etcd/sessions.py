"""Client sessions: a retried or duplicated request applies exactly once.

Theory of operation
-------------------
A request can reach the log more than once: the client retries it after a
timeout (through another member, perhaps), or the network duplicates the
`MsgProp` that forwards it to the leader.  Every copy carries the same
``(client_id, seq)``.  The session table is part of the replicated state
(it is applied from the log and kept in snapshots), so every member makes
the same decision for every copy:

| copy of (client, seq, ack) applied when the session ...   | decision                       |
| --------------------------------------------------------- | ------------------------------ |
| has a cached result for seq                               | `duplicate`: answer the cache, |
|                                                           | apply nothing                  |
| has seq < floor (the client acknowledged it, or gave up)  | `stale`: ErrStaleRequest,      |
|                                                           | apply nothing                  |
| otherwise                                                 | `fresh`: apply, cache result   |

``floor`` is the highest ``ack`` seen from the client: every seq below it
is settled, so its cached results are dropped.  A client with one request
in flight keeps one cached result; the table holds at most ``max_sessions``
sessions, evicting the one idle longest (by log index, so every member
evicts the same one).  A copy arriving after its session was evicted would
apply again: ``max_sessions`` must exceed the number of clients active
within a retry window (etcd itself keeps no such table at all).
"""

from __future__ import annotations

import enum

from attrs import frozen

from .types import Result


class Decision(enum.Enum):
    fresh = "fresh"
    duplicate = "duplicate"
    stale = "stale"


@frozen
class CachedResult:
    seq: int
    result: Result


@frozen
class SessionImage:
    """One session as a snapshot keeps it."""

    client_id: int
    floor: int
    last_index: int
    results: tuple[CachedResult, ...] = ()


class Session:
    __slots__ = ("floor", "last_index", "results")

    def __init__(self, floor: int = 0, last_index: int = 0) -> None:
        self.floor = floor
        self.last_index = last_index
        self.results: dict[int, Result] = {}


class SessionTable:
    __slots__ = ("_sessions", "max_sessions")

    def __init__(self, max_sessions: int = 4096) -> None:
        if max_sessions < 1:
            raise ValueError(f"max_sessions must be >= 1, got {max_sessions}")
        self.max_sessions = max_sessions
        self._sessions: dict[int, Session] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def decide(self, client_id: int, seq: int) -> tuple[Decision, Result | None]:
        """What to do with a copy of (client_id, seq); the cached result for a duplicate."""
        s = self._sessions.get(client_id)
        if s is None:
            return Decision.fresh, None
        cached = s.results.get(seq)
        if cached is not None:
            return Decision.duplicate, cached
        if seq < s.floor:
            return Decision.stale, None
        return Decision.fresh, None

    def record(self, client_id: int, seq: int, ack: int, index: int, result: Result) -> None:
        """A fresh request applied at log ``index`` with ``result``; ``ack`` moves the floor."""
        s = self._sessions.get(client_id)
        if s is None:
            if len(self._sessions) >= self.max_sessions:
                self._evict()
            s = self._sessions[client_id] = Session()
        self.touch(client_id, ack, index)
        if seq >= s.floor:
            s.results[seq] = result

    def touch(self, client_id: int, ack: int, index: int) -> None:
        """Any copy seen from the client: its ack moves the floor, its index the idleness."""
        s = self._sessions.get(client_id)
        if s is None:
            return
        s.last_index = max(s.last_index, index)
        if ack > s.floor:
            s.floor = ack
            for old in [q for q in s.results if q < ack]:
                del s.results[old]

    def _evict(self) -> None:
        victim = min(self._sessions.items(), key=lambda kv: (kv[1].last_index, kv[0]))[0]
        del self._sessions[victim]

    # ----------------------------------------------------------- snapshots

    def image(self) -> tuple[SessionImage, ...]:
        return tuple(
            SessionImage(
                cid,
                s.floor,
                s.last_index,
                tuple(CachedResult(q, r) for q, r in sorted(s.results.items())),
            )
            for cid, s in sorted(self._sessions.items())
        )

    @classmethod
    def restore(cls, images: tuple[SessionImage, ...], max_sessions: int) -> SessionTable:
        t = cls(max_sessions)
        for im in images:
            s = Session(im.floor, im.last_index)
            s.results = {c.seq: c.result for c in im.results}
            t._sessions[im.client_id] = s
        return t
