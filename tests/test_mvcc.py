"""Model-based test of kubeproof.mvcc: the store against a naive sequential model.

The model keeps a full snapshot of the key space at every revision and the
list of changes of every revision; it recomputes create revisions and
versions from the snapshot, and answers ranges and watches by filtering
snapshots.  It is slow and obviously right, and shares no code with the
store (whose key index, revision log and watcher bookkeeping are what is
under test).  A Hypothesis state machine drives both with puts, deletes,
flat txns, compactions, leases with expiry, watchers created at any
revision (including the compaction revision) and polls, and checks every
response and, after every step, the whole key space, the revision and the
compaction revision.

Runs without etcd; tests/test_mvcc_vs_etcd.py ties the semantics to the
real server.  `test_model_catches_mutants` shows the machine catches two
broken stores, among them the issue's "watch that skips the event at a
compaction boundary".
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from kubeproof.mvcc import (
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    ErrCompacted,
    ErrDuplicateKey,
    ErrEmptyWatcherRange,
    ErrFutureRev,
    ErrLeaseNotFound,
    EventType,
    KeyValue,
    MVCCError,
    MVCCStore,
    PutRequest,
    Watcher,
    WatchFilter,
)

KEYS = [b"a", b"b", b"b\x00", b"c", b"d"]
ENDS = [b"", b"", b"\x00", b"b", b"c", b"e"]
VALUES = [b"", b"1", b"22"]
MIN_TTL = 2

Snap = dict[bytes, KeyValue]


def in_range(k: bytes, key: bytes, end: bytes) -> bool:
    if end == b"":
        return k == key
    if end == b"\x00":
        return k >= key
    return key <= k < end


class Model:
    """Snapshots of every revision; the obvious implementation."""

    def __init__(self) -> None:
        self.rev = 1
        self.compacted = -1
        self.snaps: dict[int, Snap] = {1: {}}
        self.changes: dict[int, list[KeyValue]] = {}
        self.leases: dict[int, tuple[int, float]] = {}  # id -> (ttl, expiry)
        self.lease_of: dict[bytes, int] = {}

    def now_snap(self) -> Snap:
        return self.snaps[self.rev]

    def write(self, ops: list[tuple[Any, ...]]) -> None:
        """Applies ("put", key, value, lease) / ("del", key, end) at one revision."""
        work = dict(self.now_snap())
        rev = self.rev + 1
        changes: list[KeyValue] = []
        for op in ops:
            if op[0] == "put":
                _, key, value, lease = op
                old = work.get(key)
                kv = KeyValue(
                    key,
                    old.create_revision if old else rev,
                    rev,
                    old.version + 1 if old else 1,
                    value,
                    lease,
                )
                work[key] = kv
                changes.append(kv)
                if lease:
                    self.lease_of[key] = lease
                else:
                    self.lease_of.pop(key, None)
            else:
                _, key, end = op
                for k in sorted(k for k in work if in_range(k, key, end)):
                    del work[k]
                    self.lease_of.pop(k, None)
                    changes.append(KeyValue(k, 0, rev, 0, b"", 0))
        if changes:
            self.rev = rev
            self.snaps[rev] = work
            self.changes[rev] = changes

    def read(self, key: bytes, end: bytes, rev: int) -> list[KeyValue]:
        if rev > self.rev:
            raise ErrFutureRev()
        if rev <= 0:
            rev = self.rev
        if rev < self.compacted:
            raise ErrCompacted()
        snap = self.snaps[max(r for r in self.snaps if r <= rev)]
        return [snap[k] for k in sorted(snap) if in_range(k, key, end)]

    def prev(self, key: bytes, rev: int, compacted: int) -> KeyValue | None:
        if rev < compacted:
            return None
        snap = self.snaps[max(r for r in self.snaps if r <= rev)]
        return snap.get(key)


class ModelWatcher:
    def __init__(
        self, handle: Watcher, key: bytes, end: bytes, start: int, prev_kv: bool, no_put: bool
    ) -> None:
        self.handle = handle
        self.key = key
        self.end = end
        self.start = start
        self.prev_kv = prev_kv
        self.no_put = no_put
        self.got: list[tuple[Any, ...]] = []
        self.canceled_at: int | None = None
        # (rev, compaction) when it first read history; events up to rev had
        # their previous values read then, later ones at write time.
        self.synced: tuple[int, int] | None = None


class MVCCMachine(RuleBasedStateMachine):
    store_factory: Any = MVCCStore

    def __init__(self) -> None:
        super().__init__()
        self.store: MVCCStore = self.store_factory()
        self.model = Model()
        self.now = 0.0
        self.watchers: list[ModelWatcher] = []

    # -- writes ---------------------------------------------------------

    @rule(key=st.sampled_from(KEYS), value=st.sampled_from(VALUES), use_lease=st.booleans())
    def put(self, key: bytes, value: bytes, use_lease: bool) -> None:
        lease = min(self.model.leases, default=0) if use_lease else 0
        before = self.model.now_snap().get(key)
        resp = self.store.put(key, value, lease=lease, prev_kv=True)
        self.model.write([("put", key, value, lease)])
        assert resp.header.revision == self.model.rev
        assert resp.prev_kv == before

    @rule(key=st.sampled_from(KEYS), end=st.sampled_from(ENDS))
    def delete(self, key: bytes, end: bytes) -> None:
        expect = self.model.read(key, end, 0)
        resp = self.store.delete_range(key, end, prev_kv=True)
        self.model.write([("del", key, end)])
        assert resp.deleted == len(expect)
        assert list(resp.prev_kvs) == expect
        assert resp.header.revision == self.model.rev

    @rule(
        ckey=st.sampled_from(KEYS),
        ctarget=st.sampled_from([CompareTarget.MOD, CompareTarget.VERSION, CompareTarget.VALUE]),
        result=st.sampled_from(CompareResult),
        operand=st.integers(0, 4),
        success=st.lists(
            st.tuples(
                st.sampled_from(["put", "del"]), st.sampled_from(KEYS), st.sampled_from(ENDS)
            ),
            max_size=3,
        ),
        failure=st.lists(
            st.tuples(
                st.sampled_from(["put", "del"]), st.sampled_from(KEYS), st.sampled_from(ENDS)
            ),
            max_size=3,
        ),
    )
    def txn(
        self,
        ckey: bytes,
        ctarget: CompareTarget,
        result: CompareResult,
        operand: int,
        success: list[tuple[str, bytes, bytes]],
        failure: list[tuple[str, bytes, bytes]],
    ) -> None:
        target = ctarget
        if target is CompareTarget.VALUE:
            cmp = Compare(key=ckey, target=target, result=result, value=VALUES[operand % 3])
        elif target is CompareTarget.MOD:
            cmp = Compare(key=ckey, target=target, result=result, mod_revision=operand)
        else:
            cmp = Compare(key=ckey, target=target, result=result, version=operand)

        def req(op: tuple[str, bytes, bytes]) -> PutRequest | DeleteRangeRequest:
            return (
                PutRequest(key=op[1], value=b"t")
                if op[0] == "put"
                else DeleteRangeRequest(key=op[1], range_end=op[2])
            )

        def duplicate(ops: list[tuple[str, bytes, bytes]]) -> bool:
            puts = [k for kind, k, _ in ops if kind == "put"]
            dels = [(k, e) for kind, k, e in ops if kind == "del"]
            return len(set(puts)) < len(puts) or any(
                (e == b"" and p == k) or (e != b"" and k <= p < e) for p in puts for k, e in dels
            )

        if duplicate(success) or duplicate(failure):
            with pytest.raises(ErrDuplicateKey):
                self.store.txn([cmp], [req(o) for o in success], [req(o) for o in failure])
            return
        cur = self.model.now_snap().get(ckey)
        if target is CompareTarget.VALUE:
            ok = cur is not None and _cmp(cur.value, cmp.value, result)
        elif target is CompareTarget.MOD:
            ok = _cmp(cur.mod_revision if cur else 0, operand, result)
        else:
            ok = _cmp(cur.version if cur else 0, operand, result)
        resp = self.store.txn([cmp], [req(o) for o in success], [req(o) for o in failure])
        assert resp.succeeded == ok
        chosen = success if ok else failure
        self.model.write(
            [("put", k, b"t", 0) if kind == "put" else ("del", k, e) for kind, k, e in chosen]
        )
        assert resp.header.revision == self.model.rev
        assert len(resp.responses) == len(chosen)

    @rule(back=st.integers(0, 6))
    def compact(self, back: int) -> None:
        rev = max(1, self.model.rev - back)
        if rev <= self.model.compacted:
            with pytest.raises(ErrCompacted):
                self.store.compact(rev)
            return
        self.store.compact(rev)
        self.model.compacted = rev

    # -- leases ---------------------------------------------------------

    @rule(ttl=st.integers(-1, 6))
    def grant(self, ttl: int) -> None:
        resp = self.store.lease_grant(ttl, now=self.now)
        assert resp.ttl == max(ttl, MIN_TTL)
        assert resp.id not in self.model.leases
        self.model.leases[resp.id] = (resp.ttl, self.now + resp.ttl)

    @precondition(lambda self: bool(self.model.leases))
    @rule(data=st.data())
    def revoke(self, data: st.DataObject) -> None:
        lid = data.draw(st.sampled_from(sorted(self.model.leases)))
        self._revoke(lid)

    def _revoke(self, lid: int) -> None:
        keys = sorted(k for k, v in self.model.lease_of.items() if v == lid)
        self.store.lease_revoke(lid)
        del self.model.leases[lid]
        self.model.write([("del", k, b"") for k in keys])

    @rule(dt=st.sampled_from([0.5, 1.0, 2.5]))
    def tick(self, dt: float) -> None:
        self.now += dt

    @rule()
    def expire(self) -> None:
        due = sorted((exp, lid) for lid, (_, exp) in self.model.leases.items() if exp <= self.now)
        assert self.store.expired_leases(self.now) == tuple(lid for _, lid in due)
        for _, lid in due:
            self._revoke(lid)

    @precondition(lambda self: bool(self.model.leases))
    @rule(data=st.data())
    def keep_alive(self, data: st.DataObject) -> None:
        lid = data.draw(st.sampled_from(sorted(self.model.leases)))
        ttl, exp = self.model.leases[lid]
        if exp <= self.now:
            with pytest.raises(ErrLeaseNotFound):
                self.store.lease_keep_alive(lid, now=self.now)
            return
        assert self.store.lease_keep_alive(lid, now=self.now).ttl == ttl
        self.model.leases[lid] = (ttl, self.now + ttl)
        left = self.store.lease_time_to_live(lid, now=self.now, keys=True)
        assert left.ttl == ttl
        assert left.keys == tuple(sorted(k for k, v in self.model.lease_of.items() if v == lid))

    # -- reads ----------------------------------------------------------

    @rule(
        key=st.sampled_from(KEYS),
        end=st.sampled_from(ENDS),
        back=st.integers(-1, 8),
        limit=st.integers(0, 3),
    )
    def range(self, key: bytes, end: bytes, back: int, limit: int) -> None:
        rev = 0 if back < 0 else self.model.rev - back + 2  # some in the future
        try:
            expect = self.model.read(key, end, rev)
        except MVCCError as e:
            with pytest.raises(type(e)):
                self.store.range(key, end, revision=rev, limit=limit)
            return
        resp = self.store.range(key, end, revision=rev, limit=limit)
        page = expect[:limit] if limit else expect
        assert list(resp.kvs) == page
        assert resp.count == len(expect)
        assert resp.more == (len(page) < len(expect))
        assert resp.header.revision == self.model.rev

    # -- watches --------------------------------------------------------

    @rule(
        key=st.sampled_from(KEYS),
        end=st.sampled_from([b"", b"\x00", b"c", b"e"]),
        back=st.integers(-2, 8),
        prev_kv=st.booleans(),
        no_put=st.booleans(),
    )
    def watch(self, key: bytes, end: bytes, back: int, prev_kv: bool, no_put: bool) -> None:
        start = 0 if back == -2 else max(1, self.model.rev - back)
        self._watch(key, end, start, prev_kv, no_put)

    @precondition(lambda self: self.model.compacted >= 2)
    @rule(prev_kv=st.booleans())
    def watch_from_compaction(self, prev_kv: bool) -> None:
        self._watch(b"a", b"\x00", self.model.compacted, prev_kv, False)

    def _watch(self, key: bytes, end: bytes, start: int, prev_kv: bool, no_put: bool) -> None:
        filters = (WatchFilter.NOPUT,) if no_put else ()
        if end not in (b"", b"\x00") and key >= end:
            with pytest.raises(ErrEmptyWatcherRange):
                self.store.watch(key, end, start, prev_kv=prev_kv, filters=filters)
            return
        h = self.store.watch(key, end, start, prev_kv=prev_kv, filters=filters)
        w = ModelWatcher(h, key, end, start if start else self.model.rev + 1, prev_kv, no_put)
        if w.start > self.model.rev:
            w.synced = (self.model.rev, self.model.compacted)
        self.watchers.append(w)

    @precondition(lambda self: bool(self.watchers))
    @rule(data=st.data())
    def poll(self, data: st.DataObject) -> None:
        w = data.draw(st.sampled_from(self.watchers))
        responses = w.handle.poll()
        if w.canceled_at is not None:
            assert responses == ()
            return
        if w.synced is None:
            if w.start < self.model.compacted:
                assert len(responses) == 1
                assert responses[0].canceled
                assert responses[0].compact_revision == self.model.compacted
                w.canceled_at = self.model.compacted
                assert not w.handle.active
                return
            w.synced = (self.model.rev, self.model.compacted)
        for r in responses:
            assert not r.canceled
            assert r.events
            for ev in r.events:
                w.got.append((ev.type, ev.kv, ev.prev_kv))
        assert w.got == self._expected(w)

    def _expected(self, w: ModelWatcher) -> list[tuple[Any, ...]]:
        assert w.synced is not None
        synced_rev, compacted_then = w.synced
        out: list[tuple[Any, ...]] = []
        for rev in range(w.start, self.model.rev + 1):
            for kv in self.model.changes.get(rev, []):
                if not in_range(kv.key, w.key, w.end):
                    continue
                is_put = kv.version > 0
                if is_put and w.no_put:
                    continue
                prev = None
                if w.prev_kv and not (is_put and kv.create_revision == kv.mod_revision):
                    # Caught-up events read their previous value at the first
                    # poll; later ones at write time, when it always exists.
                    floor = compacted_then if rev <= synced_rev else -1
                    prev = self.model.prev(kv.key, rev - 1, floor)
                ev_type = EventType.PUT if is_put else EventType.DELETE
                out.append((ev_type, kv, prev))
        return out

    # -- invariants -----------------------------------------------------

    @invariant()
    def same_state(self) -> None:
        assert self.store.revision == self.model.rev
        assert self.store.compact_revision == self.model.compacted
        everything = self.store.range(b"\x00", b"\x00")
        assert list(everything.kvs) == [
            self.model.now_snap()[k] for k in sorted(self.model.now_snap())
        ]

    @initialize()
    def start_empty(self) -> None:
        assert self.store.range(b"a", b"\x00").kvs == ()


def _cmp(a: Any, b: Any, result: CompareResult) -> bool:
    if result is CompareResult.EQUAL:
        return bool(a == b)
    if result is CompareResult.NOT_EQUAL:
        return bool(a != b)
    if result is CompareResult.GREATER:
        return bool(a > b)
    return bool(a < b)


TestMVCCModel = MVCCMachine.TestCase
TestMVCCModel.settings = settings(
    settings(),  # the loaded profile (ci / dev / deep)
    stateful_step_count=40,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


# ---------------------------------------------------------------------------
# The machine has teeth


class _SkipCompactionBoundary(MVCCStore):
    """Mutant: compaction also forgets the changes of the compaction revision,
    so a watch starting there skips them."""

    def apply_compaction(self, r: Any) -> Any:
        resp = super().apply_compaction(r)
        self._history.compact(r.revision + 1)
        return resp


class _VersionSurvivesDelete(MVCCStore):
    """Mutant: a recreated key continues its old version count."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._last_version: dict[bytes, int] = {}

    def _put(self, tx: Any, r: PutRequest) -> Any:
        resp = super()._put(tx, r)
        kv = tx.changes[-1]
        old = self._last_version.get(r.key, 0)
        if kv.version == 1 and old:
            fixed = KeyValue(
                kv.key, kv.create_revision, kv.mod_revision, old + 1, kv.value, kv.lease
            )
            tx.changes[-1] = fixed
            hist = self._index._hist[kv.key]
            hist[-1] = fixed
        self._last_version[r.key] = tx.changes[-1].version
        return resp


@pytest.mark.parametrize("mutant", [_SkipCompactionBoundary, _VersionSurvivesDelete])
def test_model_catches_mutants(mutant: type[MVCCStore]) -> None:
    machine = type(f"Machine_{mutant.__name__}", (MVCCMachine,), {"store_factory": mutant})
    with pytest.raises(AssertionError):
        run_state_machine_as_test(  # type: ignore[no-untyped-call,unused-ignore]
            machine,
            settings=settings(
                max_examples=300,
                phases=[Phase.generate],  # finding it is the point; shrinking costs minutes
                stateful_step_count=40,
                derandomize=True,
                database=None,
                deadline=None,
                print_blob=False,
                suppress_health_check=list(HealthCheck),
            ),
        )
