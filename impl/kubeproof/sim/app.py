"""The application each simulated member runs on top of Raft: a digest of what it applied.

Theory of operation
-------------------
A Raft member exists to feed a state machine.  The harness's state machine
is the smallest one that still lets a checker tell two histories apart: a
running digest over every applied entry,

    digest(i) = BLAKE2b-128(digest(i-1) || index || term || type || data)

together with the index it covers and the configuration in force at that
index (the membership changes applied so far, computed here with the pure
`apply_conf_change_v2`, independently of the node's own copy).  Two members
that applied the same committed log up to index i have the same digest at
i, whichever way they got there: by applying every entry, or by restoring a
snapshot taken at some j <= i and applying the tail.

Life cycle (`member.Member` owns one):

| moment                         | application state                                 |
| ------------------------------ | ------------------------------------------------- |
| first start (empty disk)       | index 0, the empty digest, the initial config     |
| apply entry i                  | digest over i; a conf change also moves `conf`    |
| take a snapshot at i           | `snapshot_data()` is what `create_snapshot` keeps |
| a Ready carries a snapshot     | `restore(snapshot)`: digest, index, config of it  |
| restart                        | `restore(disk snapshot)` (or the initial state)   |
| crash                          | lost (it is volatile; the snapshot on disk stays) |

The snapshot's data is JSON `{"digest": hex, "index": i}`; `restore` checks
that it names the snapshot's own index and raises `AppError` otherwise.
"""

from __future__ import annotations

import hashlib
import json

from kubeproof.raft import ConfState, Entry, Snapshot

_EMPTY = bytes(16)


class AppError(ValueError):
    """Snapshot data this application cannot have written."""


def _digest(prev: bytes, e: Entry) -> bytes:
    h = hashlib.blake2b(prev, digest_size=16)
    h.update(b"%d:%d:%s:" % (e.index, e.term, e.type.value.encode()))
    h.update(e.data)
    return h.digest()


class AppState:
    """One member's application: applied index, running digest, configuration in force."""

    __slots__ = ("conf", "digest", "index")

    def __init__(self, index: int, digest: bytes, conf: ConfState) -> None:
        self.index = index
        self.digest = digest
        self.conf = conf

    @classmethod
    def initial(cls, conf: ConfState) -> AppState:
        return cls(0, _EMPTY, conf)

    @classmethod
    def restore(cls, snap: Snapshot) -> AppState:
        md = snap.metadata
        try:
            doc = json.loads(snap.data)
            index = int(doc["index"])
            digest = bytes.fromhex(doc["digest"])
        except (ValueError, KeyError, TypeError) as e:
            raise AppError(f"snapshot at {md.index}: unreadable application data: {e}") from None
        if index != md.index or len(digest) != 16:
            raise AppError(
                f"snapshot at {md.index} holds application state of index {index}"
                f" (digest of {len(digest)} bytes)"
            )
        return cls(index, digest, md.conf_state)

    def apply(self, e: Entry) -> None:
        self.digest = _digest(self.digest, e)
        self.index = e.index

    def snapshot_data(self) -> bytes:
        return json.dumps(
            {"digest": self.digest.hex(), "index": self.index}, sort_keys=True
        ).encode()

    @property
    def hex(self) -> str:
        return self.digest.hex()
