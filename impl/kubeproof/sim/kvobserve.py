"""What a checker sees of a simulated replicated store (beyond `observe`'s Raft view).

Theory of operation
-------------------
The store's invariants are about things the Raft view does not show: what
each member applied (and the revision it reached), what each client asked
and was answered, and what each watcher received.  The simulation appends
one record per such fact to `KVView.records`, in the order they happened;
a checker keeps a cursor and reads the new records after every event
(`new_records`).  Records are plain frozen values holding the
implementation's own request and response values.

| record          | appended when                                                    |
| --------------- | ---------------------------------------------------------------- |
| `ApplyRecord`   | a member applied a committed entry (`kubeproof.etcd.Applied`)    |
| `OpRecord`      | a client operation ended: answered (``ret`` set) or given up     |
|                 | (``ret`` None, outcome unknown); also, at the end of a run, one  |
|                 | per operation still in flight; and one per lease expiry the      |
|                 | leader proposed (client 0), answered when first applied          |
| `WatchOpened`   | a watcher opened a stream on a member at a start revision        |
| `WatchDelivered`| one watch response reached its watcher over that stream          |

`KVView` is the Raft `ClusterView` plus the records and the open operations
(as pending records), so that the Raft checkers and the store's run over
the same cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from attrs import frozen

from kubeproof.etcd import Applied, KVRequest, LeaseExpire, Result
from kubeproof.mvcc import WatchResponse

from .observe import ClusterView


@frozen
class ApplyRecord:
    member: int
    incarnation: int
    time: int
    applied: Applied


@frozen
class OpRecord:
    """One operation of the history (times are virtual)."""

    op_id: int
    client: int
    """0 for the leader's lease expiries."""
    seq: int
    call: int
    request: KVRequest | None
    ret: int | None = None
    """None: the outcome is unknown (timed out, or still in flight at the end)."""
    result: Result | None = None
    member: int = 0
    """The member whose answer ended the operation (or that proposed the expiry)."""
    attempts: int = 1
    serializable: bool = False
    expire: LeaseExpire | None = None
    revoked: bool = False
    """For an expiry: whether applying it revoked the lease."""
    revision: int = 0
    """For an expiry: the store's revision after it."""


@frozen
class WatchOpened:
    watcher: int
    stream: int
    member: int
    key: bytes
    range_end: bytes
    start_revision: int
    time: int


@frozen
class WatchDelivered:
    watcher: int
    stream: int
    member: int
    response: WatchResponse
    time: int


KVRecord = ApplyRecord | OpRecord | WatchOpened | WatchDelivered


class KVView(ClusterView, Protocol):
    @property
    def records(self) -> Sequence[KVRecord]: ...

    def open_operations(self) -> Sequence[OpRecord]:
        """Operations still in flight, as pending records (``ret`` None)."""
        ...

    @property
    def finished(self) -> bool:
        """True once the run is over (end-of-run checks run then)."""
        ...


def new_records(view: KVView, cursor: int) -> tuple[Sequence[KVRecord], int]:
    """The records appended since ``cursor``, and the new cursor."""
    recs = view.records
    n = len(recs)
    if n == cursor:
        return (), cursor
    return recs[cursor:n], n
