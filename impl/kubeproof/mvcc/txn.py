"""Transactions: the checks etcd makes before a txn, and how it picks a branch.

Theory of operation
-------------------
etcd 3.4 runs a txn in four steps; the store follows them in the same
order because the order decides which error a bad txn gets.

1. **Shape checks** (gRPC layer, `check_txn_request`).  Let ``opc`` be the
   largest of ``len(compare)``, ``len(success)``, ``len(failure)``; more than
   ``max_ops`` (128) -> `ErrTooManyOps`.  Then every compare key, then every
   op of success, then of failure, in order: an empty key ->
   `ErrEmptyKey`; a put with ``ignore_value`` and a value ->
   `ErrValueProvided`, with ``ignore_lease`` and a lease ->
   `ErrLeaseProvided`; a nested txn is checked the same way with the budget
   ``max_ops - opc`` of its parent.

2. **Overlap checks** (`check_intervals`, on success then on failure).  No
   key may be put twice, and no key may be both put and deleted, within the
   ops that can run together.  Per level: the deletes of the level are
   collected first; each nested txn's puts (its success branch, then its
   failure branch, which may repeat keys of its own success branch since
   only one runs) must not repeat an earlier put nor fall in a delete seen
   so far; the nested deletes then join the level's; finally the level's own
   puts are checked against all of that.  A put falls in a delete
   ``(key, end)`` when ``end`` is empty and the keys are equal, or when
   ``key <= put < end`` comparing bytes literally.  Two consequences that
   etcd 3.4 really has and the store keeps:
     * a delete with ``range_end = b"\\0"`` ("from key on") conflicts with
       nothing, because the interval tree compares ``"\\0"`` literally;
     * a put in one nested txn and a delete of the same key in a *later*
       sibling nested txn pass (the later deletes are never compared with
       the earlier puts); the put then the delete apply, in that order.

3. **Branch choice** (`decide`).  Every compare of the txn *and of every
   nested txn on the chosen path* is evaluated against the store as it was
   before the txn: a nested txn does not see the writes of the ops before
   it.  A compare over a range holds when it holds for every key in it; on
   no key at all it compares the zero `KeyValue`, except for a VALUE
   compare, which then fails.

4. **Request checks** on the chosen path only, against the pre-txn store
   (`walk_path`): if the txn writes (any top-level op is not a range), every
   put's lease must exist and an ``ignore_value``/``ignore_lease`` put needs
   its key (`ErrKeyNotFound`); then every range's revision must not be in
   the future (`ErrFutureRev`) nor below the compaction revision
   (`ErrCompacted`; so in a txn a negative revision is "compacted" while a
   plain range treats it as "current").

5. **Where etcd 3.4 crashes** (`check_ignore_puts`).  Because of the first
   quirk of step 2, a txn may delete a key "from key on" and then put it
   with ``ignore_value`` or ``ignore_lease``.  The put's key check of step 4
   looked at the pre-txn store, so etcd 3.4.23 starts applying, the put
   finds no key, and the server panics ("unexpected error during txn:
   etcdserver: key not found") on this and on every restart, since the
   entry is in its log (reproduced; see tests/test_mvcc_vs_etcd.py).  The
   store instead refuses such a txn with `ErrKeyNotFound` before applying
   anything: the error the put itself would report.

Then the store applies the chosen ops in order, all at one revision; every
error has been raised by then, so a txn applies whole or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from attrs import frozen

from .errors import (
    ErrDuplicateKey,
    ErrEmptyKey,
    ErrKeyNotFound,
    ErrLeaseProvided,
    ErrTooManyOps,
    ErrValueProvided,
)
from .types import (
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    KeyValue,
    PutRequest,
    RangeRequest,
    TxnOp,
    TxnRequest,
)

MAX_TXN_OPS = 128
"""etcd's default --max-txn-ops."""

_ZERO = KeyValue(key=b"")


def check_put_request(r: PutRequest) -> None:
    if not r.key:
        raise ErrEmptyKey("put")
    if r.ignore_value and r.value:
        raise ErrValueProvided("put with ignore_value")
    if r.ignore_lease and r.lease != 0:
        raise ErrLeaseProvided("put with ignore_lease")


def check_key(key: bytes, what: str) -> None:
    if not key:
        raise ErrEmptyKey(what)


def check_txn_request(r: TxnRequest, max_ops: int = MAX_TXN_OPS) -> None:
    opc = max(len(r.compare), len(r.success), len(r.failure))
    if opc > max_ops:
        raise ErrTooManyOps(f"{opc} > {max_ops}")
    for c in r.compare:
        check_key(c.key, "compare")
    for op in (*r.success_ops(), *r.failure_ops()):
        _check_op(op, max_ops - opc)


def _check_op(op: TxnOp, max_ops: int) -> None:
    if isinstance(op, RangeRequest):
        check_key(op.key, "range")
    elif isinstance(op, PutRequest):
        check_put_request(op)
    elif isinstance(op, DeleteRangeRequest):
        check_key(op.key, "delete")
    else:
        check_txn_request(op, max_ops)


def _in_delete(key: bytes, dels: list[tuple[bytes, bytes]]) -> bool:
    for begin, end in dels:
        if end == b"":
            if key == begin:
                return True
        elif begin <= key < end:
            return True
    return False


def check_intervals(ops: Sequence[TxnOp]) -> tuple[set[bytes], list[tuple[bytes, bytes]]]:
    """etcd's checkIntervals: returns (puts, deletes) of this level and below."""
    dels: list[tuple[bytes, bytes]] = [
        (op.key, op.range_end) for op in ops if isinstance(op, DeleteRangeRequest)
    ]
    puts: set[bytes] = set()
    for op in ops:
        if not isinstance(op, TxnRequest):
            continue
        puts_then, dels_then = check_intervals(op.success_ops())
        puts_else, dels_else = check_intervals(op.failure_ops())
        for k in puts_then:
            if k in puts or _in_delete(k, dels):
                raise ErrDuplicateKey(repr(k))
            puts.add(k)
        for k in puts_else:
            if (k in puts and k not in puts_then) or _in_delete(k, dels):
                raise ErrDuplicateKey(repr(k))
            puts.add(k)
        dels.extend(dels_then)
        dels.extend(dels_else)
    for op in ops:
        if isinstance(op, PutRequest):
            if op.key in puts or _in_delete(op.key, dels):
                raise ErrDuplicateKey(repr(op.key))
            puts.add(op.key)
    return puts, dels


def is_txn_readonly(r: TxnRequest) -> bool:
    """etcd's isTxnReadonly: only the top level is looked at."""
    return all(op.request_range is not None for op in (*r.success, *r.failure))


def compare_kv(c: Compare, kv: KeyValue) -> bool:
    t = c.target
    a: int | bytes
    b: int | bytes
    if t is CompareTarget.VALUE:
        a, b = kv.value, c.value
    elif t is CompareTarget.VERSION:
        a, b = kv.version, c.version
    elif t is CompareTarget.CREATE:
        a, b = kv.create_revision, c.create_revision
    elif t is CompareTarget.MOD:
        a, b = kv.mod_revision, c.mod_revision
    else:
        a, b = kv.lease, c.lease
    res = c.result
    if res is CompareResult.EQUAL:
        return a == b
    if res is CompareResult.NOT_EQUAL:
        return a != b
    if res is CompareResult.GREATER:
        return a > b  # type: ignore[operator]
    return a < b  # type: ignore[operator]


RangeFn = Callable[[bytes, bytes], list[KeyValue]]
"""Reads the pre-txn store: (key, range_end as given in the request) -> live values."""


def apply_compare(c: Compare, read: RangeFn) -> bool:
    kvs = read(c.key, c.range_end)
    if not kvs:
        if c.target is CompareTarget.VALUE:
            # etcd: a missing key has no value to compare, not an empty one.
            return False
        return compare_kv(c, _ZERO)
    return all(compare_kv(c, kv) for kv in kvs)


@frozen
class TxnPath:
    """The branch each txn on the chosen path takes: ``nested[i]`` belongs to
    the i-th nested txn among the ops of the chosen branch."""

    succeeded: bool
    nested: tuple[TxnPath, ...] = ()


def decide(r: TxnRequest, read: RangeFn) -> TxnPath:
    ok = all(apply_compare(c, read) for c in r.compare)
    ops = r.success if ok else r.failure
    return TxnPath(ok, tuple(decide(op.request_txn, read) for op in ops if op.request_txn))


def chosen_ops(r: TxnRequest, path: TxnPath) -> tuple[TxnOp, ...]:
    return r.success_ops() if path.succeeded else r.failure_ops()


def _covers(key: bytes, d: DeleteRangeRequest) -> bool:
    end = d.range_end
    if end == b"":
        return key == d.key
    if end == b"\x00":
        return key >= d.key
    return d.key <= key < end


def check_ignore_puts(r: TxnRequest, path: TxnPath) -> None:
    """Refuses a put with ignore_value/ignore_lease whose key an earlier op on
    the chosen path deletes (etcd 3.4 panics applying it; see step 5)."""
    deletes: list[DeleteRangeRequest] = []

    def check(op: TxnOp) -> None:
        if isinstance(op, DeleteRangeRequest):
            deletes.append(op)
        elif (
            isinstance(op, PutRequest)
            and (op.ignore_value or op.ignore_lease)
            and any(_covers(op.key, d) for d in deletes)
        ):
            raise ErrKeyNotFound(
                f"{op.key!r} is deleted earlier in this txn (etcd 3.4 panics applying this txn)"
            )

    walk_path(r, path, check)


def walk_path(r: TxnRequest, path: TxnPath, check: Callable[[TxnOp], None]) -> None:
    """Calls ``check`` on every non-txn op on the chosen path, in order."""
    nested = iter(path.nested)
    for op in chosen_ops(r, path):
        if isinstance(op, TxnRequest):
            walk_path(op, next(nested), check)
        else:
            check(op)
