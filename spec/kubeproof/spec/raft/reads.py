"""Linearizable reads: a read never returns state older than a write it must see.

Theory of operation
-------------------
A client read through ReadIndex (etcd's `ReadIndex(ctx)`) comes back as a
`ReadState(index, ctx)`: the application may answer it once it has applied
up to `index`.  For the read to be linearizable, `index` must be at least
the index of every write that was acknowledged to a client before the read
was asked: such a write is committed at its index, so a read that does not
cover it returns a state from before it.

The checker reads the harness's events (see docs/trace-format.md):

| event                                  | what the checker does                          |
| -------------------------------------- | ---------------------------------------------- |
| `read` (payload `ctx`)                 | the read's floor := the highest index of a     |
|                                        | write acknowledged so far                      |
| `process_ready` payload `read_states`  | each read state's index must be >= its floor   |
| `process_ready` payload `served`       | the state served (applied index) must be >=    |
|                                        | the floor and >= the read state's index        |

Acknowledged writes come from `ClusterView.acknowledged` (payload -> index,
in acknowledgement order), consumed incrementally.  A read state whose ctx
was never asked (not from this run) is not judged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import islice
from typing import Any

from kubeproof import codec
from kubeproof.sim.observe import ClusterView, Event, Violation

from . import ids
from .checker import RaftChecker
from .tracker import ClusterTracker, Observation


def _ctx(value: Any) -> bytes | None:
    try:
        return codec.decode(value, bytes)
    except codec.CodecError:
        return None


class ReadLinearizable(RaftChecker):
    """RAFT-READ-LINEARIZABLE: a read state's index covers every write acknowledged before it.

    Property: for every read asked at step s with context ctx, let F be the
    highest log index of a client write acknowledged (applied and reported
    to its client) at or before step s.  Every `ReadState(index, ctx)` a
    member receives has index >= F, and the member serves the read only
    once it has applied up to at least that index (so its answer reflects
    every write acknowledged before the read began).  ReadIndex reads and
    lease-based reads alike.

    History kept: the highest acknowledged index so far (with its payload
    and step), and ctx -> (floor, member, step) for every read asked.
    Reported at the Ready that delivered the stale read state (or served
    the stale read).
    """

    ID = ids.READ_LINEARIZABLE
    always = True

    def __init__(self, tracker: ClusterTracker | None = None) -> None:
        super().__init__(tracker)
        self.acks_seen = 0
        self.top = 0
        self.top_payload: bytes | None = None
        self.top_step = 0
        self.floors: dict[bytes, tuple[int, int, int]] = {}

    def check(self, view: ClusterView, event: Event) -> Sequence[Violation]:
        # Only reads and Readys that return or serve reads matter.
        p = event.payload
        if event.kind != "read" and "read_states" not in p and "served" not in p:
            return ()
        return super().check(view, event)

    def _catch_up(self, view: ClusterView, step: int) -> None:
        acks = view.acknowledged
        n = len(acks)
        if n <= self.acks_seen:
            return
        for payload, i in islice(acks.items(), self.acks_seen, None):
            if i > self.top:
                self.top, self.top_payload, self.top_step = i, payload, step
        self.acks_seen = n

    def inspect(
        self, view: ClusterView, event: Event, obs: Observation, out: list[Violation]
    ) -> None:
        kind = event.kind
        p = event.payload
        if kind == "read":
            self._catch_up(view, obs.step)
            ctx = _ctx(p.get("ctx"))
            if ctx is not None and event.node is not None:
                self.floors[ctx] = (self.top, event.node, obs.step)
            return
        states = p.get("read_states")
        served = p.get("served")
        if not states and not served:
            return
        self._catch_up(view, obs.step)
        for item in states or ():
            if isinstance(item, Mapping):
                self._judge(event, obs.step, item, "index", "returned read index", out)
        for item in served or ():
            if isinstance(item, Mapping):
                self._judge(
                    event, obs.step, item, "applied", "served the read at applied index", out
                )
                index, applied = item.get("index"), item.get("applied")
                if isinstance(index, int) and isinstance(applied, int) and applied < index:
                    self._report(
                        out,
                        ("early", item.get("ctx"), event.node),
                        obs.step,
                        f"member {event.node} served a read at applied index {applied}, "
                        f"below its read index {index}",
                        {
                            "node": event.node,
                            "ctx": item.get("ctx"),
                            "index": index,
                            "applied": applied,
                        },
                    )

    def _judge(
        self,
        event: Event,
        step: int,
        item: Mapping[str, Any],
        key: str,
        what: str,
        out: list[Violation],
    ) -> None:
        ctx = _ctx(item.get("ctx"))
        index = item.get(key)
        if ctx is None or not isinstance(index, int):
            return
        rec = self.floors.get(ctx)
        if rec is None:
            return
        floor, asked_at, asked_step = rec
        if index >= floor:
            return
        self._report(
            out,
            (key, ctx, event.node),
            step,
            f"member {event.node} {what} {index} for read {ctx!r} (asked at member "
            f"{asked_at}, step {asked_step}), but a write at index {floor} was acknowledged "
            "before the read was asked",
            {
                "node": event.node,
                "ctx": item.get("ctx"),
                key: index,
                "asked_at": asked_at,
                "asked_step": asked_step,
                "acknowledged_index": floor,
            },
        )
