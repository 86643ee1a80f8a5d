"""The simulated store's clients and watchers: what they ask, and what they remember.

Theory of operation
-------------------
A `KVClient` runs one operation at a time.  An attempt left unanswered for
``request_timeout`` is retried at another member; after ``max_attempts``
such timeouts the client gives up (the outcome is unknown).  An answer that
only says "not this time" (no leader, the member's own timeout) makes it
retry after a short back-off, without counting as a timeout: the request
is pending until the cluster can answer it.  A lease the store no longer
knows (``ErrLeaseNotFound``: it expired) is forgotten.  Its operations are numbered by
its session sequence (``seq``); every attempt of one operation carries the
same ``(client id, seq)`` and ``ack = seq`` (the client waits for nothing
older), so a retry applies at most once.  What it asks is drawn from the
scheduler's RNG by `choose_request`, with the configured weights:

| kind              | request                                                              |
| ----------------- | -------------------------------------------------------------------- |
| put               | put a fresh value (``c<client>-<n>``) on one of ``keys`` keys        |
| get               | linearizable range of one key                                        |
| get_serializable  | serializable range of one key (not in the linearizability history)   |
| range             | linearizable range of every key (``k`` .. ``l``)                     |
| delete            | delete one key, or every key from one on                             |
| txn               | compare-and-set on a value it saw; "if it exists delete it, else     |
|                   | create it"; "if its mod revision is below r, put two keys"           |
| lease             | grant (TTL in [lease_ttl_min, lease_ttl_max] s), put a key with the  |
|                   | lease, keep it alive, or revoke it; a lease not kept alive expires   |
| compact           | compact at the revision some lagging watcher will resume from (the   |
|                   | compaction boundary), or just past it (its resume is then refused),  |
|                   | or a few revisions behind the newest one seen                        |

A `KVWatcher` watches every key (``k`` .. ``l``) from revision 1.  It
remembers ``next_rev``, one past the last revision it received; a stream
that breaks (its member crashed) or that it leaves (a move) is resumed on
another member from there.  A stream canceled by a compaction (its
``next_rev`` was compacted away) resumes from the compaction revision:
that gap was reported to it, so it is not a violation.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from kubeproof.etcd import KVRequest, Result
from kubeproof.mvcc import (
    CompactionRequest,
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    LeaseGrantRequest,
    LeaseKeepAliveRequest,
    LeaseRevokeRequest,
    PutRequest,
    RangeRequest,
    TxnRequest,
)

from .kvconfig import OP_KINDS, KVSimConfig
from .kvobserve import OpRecord

ALL_START = b"k"
ALL_END = b"l"


class OpenOp:
    """The operation a client is running."""

    __slots__ = (
        "attempt",
        "backoff",
        "call",
        "member",
        "op_id",
        "request",
        "seq",
        "serializable",
        "timeouts",
    )

    def __init__(self, op_id: int, seq: int, request: KVRequest, call: int) -> None:
        self.op_id = op_id
        self.seq = seq
        self.request = request
        self.call = call
        self.attempt = 0
        self.timeouts = 0
        self.backoff = False
        """The last answer said only "not this time" (no leader ...): retry, not a timeout."""
        self.member = 0
        self.serializable = isinstance(request, RangeRequest) and request.serializable

    def record(
        self,
        client: int,
        *,
        ret: int | None = None,
        result: Result | None = None,
        member: int | None = None,
    ) -> OpRecord:
        """The history's record of this operation: answered (``ret``, ``result``, by
        ``member``) or, without ``ret``, of unknown outcome."""
        return OpRecord(
            self.op_id,
            client,
            self.seq,
            self.call,
            self.request,
            ret=ret,
            result=result,
            member=self.member if member is None else member,
            attempts=self.attempt,
            serializable=self.serializable,
        )


class KVClient:
    __slots__ = ("id", "lease", "max_revision", "op", "seen", "seq", "values")

    def __init__(self, client_id: int) -> None:
        self.id = client_id
        self.seq = 0
        self.op: OpenOp | None = None
        self.lease = 0
        self.values = 0
        self.seen: dict[bytes, bytes] = {}
        self.max_revision = 1

    def fresh_value(self) -> bytes:
        self.values += 1
        return b"c%d-%d" % (self.id, self.values)


class KVWatcher:
    __slots__ = ("id", "member", "next_rev", "stream", "watch_id")

    def __init__(self, watcher_id: int) -> None:
        self.id = watcher_id
        self.next_rev = 1
        self.stream = 0
        self.member = 0
        self.watch_id = 0


def choose_request(
    client: KVClient,
    rng: random.Random,
    cfg: KVSimConfig,
    resume_points: Sequence[int],
) -> KVRequest:
    kind = rng.choices(OP_KINDS, weights=cfg.weights)[0]
    if client.lease and cfg.weights[OP_KINDS.index("lease")] and rng.random() < 0.1:
        kind = "lease"  # a client holding a lease tends it more often than it takes one
    key = cfg.key(rng.randrange(cfg.keys))
    if kind == "put":
        return PutRequest(key=key, value=client.fresh_value())
    if kind == "get":
        return RangeRequest(key=key)
    if kind == "get_serializable":
        return RangeRequest(key=key, serializable=True)
    if kind == "range":
        return RangeRequest(key=ALL_START, range_end=ALL_END)
    if kind == "delete":
        if rng.random() < 0.2:
            return DeleteRangeRequest(key=key, range_end=ALL_END)
        return DeleteRangeRequest(key=key)
    if kind == "txn":
        return _txn(client, rng, cfg, key)
    if kind == "lease":
        return _lease(client, rng, cfg, key)
    return _compaction(client, rng, resume_points)


def _txn(client: KVClient, rng: random.Random, cfg: KVSimConfig, key: bytes) -> TxnRequest:
    shape = rng.randrange(3)
    if shape == 0:
        expected = client.seen.get(key, b"")
        return TxnRequest(
            compare=(
                Compare(
                    key=key,
                    target=CompareTarget.VALUE,
                    result=CompareResult.EQUAL,
                    value=expected,
                ),
            ),
            success=(PutRequest(key=key, value=client.fresh_value()),),
            failure=(RangeRequest(key=key),),
        )
    if shape == 1:
        return TxnRequest(
            compare=(
                Compare(
                    key=key, target=CompareTarget.VERSION, result=CompareResult.GREATER, version=0
                ),
            ),
            success=(DeleteRangeRequest(key=key),),
            failure=(PutRequest(key=key, value=client.fresh_value()),),
        )
    other = cfg.key(rng.randrange(cfg.keys))
    second = other if other != key else key + b"x"
    bound = client.max_revision + rng.randrange(-2, 3)
    return TxnRequest(
        compare=(
            Compare(
                key=key, target=CompareTarget.MOD, result=CompareResult.LESS, mod_revision=bound
            ),
        ),
        success=(
            PutRequest(key=key, value=client.fresh_value()),
            PutRequest(key=second, value=client.fresh_value()),
            RangeRequest(key=ALL_START, range_end=ALL_END),
        ),
        failure=(RangeRequest(key=ALL_START, range_end=ALL_END),),
    )


def _lease(client: KVClient, rng: random.Random, cfg: KVSimConfig, key: bytes) -> KVRequest:
    if client.lease == 0:
        return LeaseGrantRequest(ttl=rng.randint(cfg.lease_ttl_min, cfg.lease_ttl_max))
    r = rng.random()
    if r < 0.45:
        return PutRequest(key=key, value=client.fresh_value(), lease=client.lease)
    if r < 0.8:
        return LeaseKeepAliveRequest(id=client.lease)
    return LeaseRevokeRequest(id=client.lease)


def _compaction(
    client: KVClient, rng: random.Random, resume_points: Sequence[int]
) -> CompactionRequest:
    behind = [r for r in resume_points if 1 < r <= client.max_revision]
    draw = rng.random()
    if behind and draw < 0.4:
        # Exactly where a lagging watcher will resume: the compaction boundary.
        return CompactionRequest(revision=rng.choice(behind))
    if behind and draw < 0.7:
        # Just past it: the watcher's resume is then refused with the compact revision.
        r = rng.choice(behind) + rng.randint(1, 3)
        return CompactionRequest(revision=min(r, client.max_revision))
    return CompactionRequest(revision=max(1, client.max_revision - rng.randrange(0, 6)))
