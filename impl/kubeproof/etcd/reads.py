"""Linearizable reads through ReadIndex, and the member's waiting clients.

Theory of operation
-------------------
A linearizable read must see every write that completed before it began.
A member cannot know that from its own log (it may be a deposed leader, or
a lagging follower), so it asks (Raft section 6.4, etcd's ``linearizableReadLoop``):

    1. read_index(ctx)        the node asks the leader for the commit index,
                              which the leader confirms still is one by a
                              round of heartbeats to a quorum
    2. ReadState(index, ctx)  arrives in a Ready: the read may be served once
                              this member has applied ``index``
    3. applied >= index       serve it from the local store

Each read gets its own ctx (``r<member>:<counter>``).  `ReadQueue` holds the
reads at steps 1 and 2; a ReadState whose ctx is unknown (a read already
timed out, or another incarnation's) is ignored.

`Waiters` holds the writes the member proposed for its clients, by
``(client_id, seq)``: when an entry for that pair is applied (fresh,
duplicate or stale), its result answers every waiter for it.

Both expire: a request still waiting ``timeout`` seconds after it arrived
is answered `ErrTimeout` (as etcd's server does), which tells the client
only that *this member* gave up: a write may still be applied later.
"""

from __future__ import annotations

from collections.abc import Iterator

from .types import ClientRequest

TIMEOUT_CODE = 14


class ReadQueue:
    __slots__ = ("_counter", "_prefix", "_ready", "_waiting")

    def __init__(self, member_id: int) -> None:
        self._prefix = f"r{member_id}:".encode()
        self._counter = 0
        self._waiting: dict[bytes, tuple[ClientRequest, float]] = {}
        self._ready: list[tuple[int, ClientRequest, float]] = []

    def __len__(self) -> int:
        return len(self._waiting) + len(self._ready)

    def add(self, req: ClientRequest, now: float) -> bytes:
        """A new read waiting for its ReadState; returns the ctx to pass to read_index."""
        self._counter += 1
        ctx = self._prefix + str(self._counter).encode()
        self._waiting[ctx] = (req, now)
        return ctx

    def forget(self, ctx: bytes) -> None:
        self._waiting.pop(ctx, None)

    def read_state(self, ctx: bytes, index: int) -> bool:
        """The ReadState for ctx arrived; False if no read waits for it."""
        item = self._waiting.pop(ctx, None)
        if item is None:
            return False
        self._ready.append((index, item[0], item[1]))
        return True

    def servable(self, applied: int) -> list[ClientRequest]:
        """Reads whose index this member has now applied (removed from the queue)."""
        if not self._ready:
            return []
        out = [req for index, req, _ in self._ready if index <= applied]
        if out:
            self._ready = [item for item in self._ready if item[0] > applied]
        return out

    def expired(self, now: float, timeout: float) -> list[ClientRequest]:
        out = [req for req, t in self._waiting.values() if now - t >= timeout]
        if out:
            self._waiting = {c: v for c, v in self._waiting.items() if now - v[1] < timeout}
        late = [req for _, req, t in self._ready if now - t >= timeout]
        if late:
            self._ready = [item for item in self._ready if now - item[2] < timeout]
        return out + late


class Waiters:
    __slots__ = ("_waiting",)

    def __init__(self) -> None:
        self._waiting: dict[tuple[int, int], list[tuple[ClientRequest, float]]] = {}

    def __len__(self) -> int:
        return sum(len(v) for v in self._waiting.values())

    def add(self, req: ClientRequest, now: float) -> None:
        self._waiting.setdefault((req.client_id, req.seq), []).append((req, now))

    def pop(self, client_id: int, seq: int) -> list[ClientRequest]:
        got = self._waiting.pop((client_id, seq), None)
        return [] if got is None else [req for req, _ in got]

    def expired(self, now: float, timeout: float) -> Iterator[ClientRequest]:
        gone: list[tuple[int, int]] = []
        for key, items in self._waiting.items():
            if all(now - t >= timeout for _, t in items):
                gone.append(key)
                yield from (req for req, _ in items)
        for key in gone:
            del self._waiting[key]
