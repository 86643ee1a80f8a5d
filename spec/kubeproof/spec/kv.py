"""The replicated store's invariants, as checkers the KV simulation runs after every event.

Theory of operation
-------------------
Each property has a stable ID (documented in docs/invariants.md):

| ID                      | property                                                          |
| ----------------------- | ----------------------------------------------------------------- |
| KV-LINEARIZABLE         | the clients' history (call and return times; timed-out operations |
|                         | pending; lease expiries as operations of their own) is            |
|                         | linearizable w.r.t. the sequential etcd model                     |
| KV-REVISION-MONOTONIC   | a member's store revision never goes down within one life; the    |
|                         | revisions a client gets from linearizable operations never go down |
| KV-REPLICAS-AGREE       | every member that applies log index i does exactly the same thing  |
|                         | there (same decision, result, revision and changes), and revision |
|                         | r holds the same changes wherever it is made                      |
| WATCH-ORDERED           | a watcher gets revisions in increasing order, across all the      |
|                         | streams (members) it resumed on                                   |
| WATCH-NO-DUP            | no revision's events reach a watcher twice                        |
| WATCH-NO-GAP            | between two revisions a watcher gets, it missed no revision with  |
|                         | an event in its range, unless a compaction cancel told it so      |
| WATCH-MATCHES-HISTORY   | the events a watcher gets for revision r are exactly the changes  |
|                         | revision r made in its range, in order                            |

All of them read the simulation's records (`kubeproof.sim.kvobserve`)
through one `KVTracker` per run, which keeps the *reference history*:
revision -> the changes it made, from the first member that made it (the
ReplicasAgree checker compares every later maker with it).  Members apply
before they serve, so any revision a watcher can receive is in the
reference history by then.

KV-LINEARIZABLE runs the linearizability checker (Wing & Gong with Lowe's
memoization, `kubeproof.models.lincheck`) with `kv_history.EtcdLeaseKvModel`
at the end of the run (`finish`) and, if asked, every ``every`` events on
the history so far (operations still in flight count as pending).  A
search that runs out of budget is not a violation; it is counted
(``lincheck_unknown``) so that a campaign reports it.

`kv_checkers()` also wraps the Raft checkers (`kubeproof.spec.raft`) so that
every Raft invariant is checked under the store's workload too: the
store's client events change no Raft state except a request reaching a
member, which they see as a proposal.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any, ClassVar

import attrs

from kubeproof.etcd import Applied
from kubeproof.models.lincheck import check
from kubeproof.models.lincheck.search import Verdict
from kubeproof.mvcc import KeyValue
from kubeproof.sim.kvconfig import KVSimConfig
from kubeproof.sim.kvobserve import (
    ApplyRecord,
    KVRecord,
    KVView,
    OpRecord,
    WatchDelivered,
    WatchOpened,
    new_records,
)
from kubeproof.sim.observe import Checker, ClusterView, Event, Violation
from kubeproof.sim.trace import jsonable

from .kv_history import EtcdLeaseKvModel, build_history, describe

KV_LINEARIZABLE = "KV-LINEARIZABLE"
KV_REVISION_MONOTONIC = "KV-REVISION-MONOTONIC"
KV_REPLICAS_AGREE = "KV-REPLICAS-AGREE"
WATCH_ORDERED = "WATCH-ORDERED"
WATCH_NO_DUP = "WATCH-NO-DUP"
WATCH_NO_GAP = "WATCH-NO-GAP"
WATCH_MATCHES_HISTORY = "WATCH-MATCHES-HISTORY"

KV_INVARIANTS: tuple[str, ...] = (
    KV_LINEARIZABLE,
    KV_REVISION_MONOTONIC,
    KV_REPLICAS_AGREE,
    WATCH_ORDERED,
    WATCH_NO_DUP,
    WATCH_NO_GAP,
    WATCH_MATCHES_HISTORY,
)


def _applied_json(a: Applied) -> dict[str, Any]:
    res = a.result
    out: dict[str, Any] = {
        "index": a.index,
        "term": a.term,
        "kind": a.kind,
        "revision": a.revision,
        "changes": [_kv_json(kv) for kv in a.changes],
    }
    if a.kind == "write":
        out.update(client=a.client_id, seq=a.seq, decision=a.decision)
        if a.request is not None:
            out["request"] = type(a.request).__name__
        if res is not None:
            out["result"] = res.error.code if res.error is not None else "ok"
    if a.expire is not None:
        out.update(lease=a.expire.id, version=a.expire.version, revoked=a.revoked)
    return out


def _differing(a: Applied, b: Applied) -> list[str]:
    return [f.name for f in attrs.fields(Applied) if getattr(a, f.name) != getattr(b, f.name)]


def _kv_json(kv: KeyValue) -> dict[str, Any]:
    return {
        "key": kv.key.decode("latin-1"),
        "mod": kv.mod_revision,
        "version": kv.version,
        "value": kv.value.decode("latin-1"),
        "lease": kv.lease,
    }


class KVTracker:
    """The records new at this event (read once for all checkers) and the reference history."""

    def __init__(self) -> None:
        self.cursor = 0
        self.last_event: Event | None = None
        self.new: Sequence[KVRecord] = ()
        self.history: dict[int, tuple[KeyValue, ...]] = {}
        self.history_maker: dict[int, tuple[int, int]] = {}
        self.by_index: dict[int, tuple[int, ApplyRecord]] = {}

    def observe(self, view: KVView, event: Event) -> Sequence[KVRecord]:
        if event is self.last_event:
            return self.new
        self.last_event = event
        self.new, self.cursor = new_records(view, self.cursor)
        for rec in self.new:
            if isinstance(rec, ApplyRecord):
                a = rec.applied
                if a.changes and a.revision not in self.history:
                    self.history[a.revision] = a.changes
                    self.history_maker[a.revision] = (rec.member, a.index)
        return self.new


class KVChecker:
    """Base: tracker plumbing and once-only reports."""

    ID: ClassVar[str]

    def __init__(self, tracker: KVTracker | None = None) -> None:
        self.tracker = tracker if tracker is not None else KVTracker()
        self._reported: set[Hashable] = set()

    def check(self, view: ClusterView, event: Event) -> Sequence[Violation]:
        kv: KVView = view  # type: ignore[assignment]
        new = self.tracker.observe(kv, event)
        if not new:
            return ()
        out: list[Violation] = []
        for rec in new:
            self.inspect(kv, event, rec, out)
        return out

    def inspect(self, view: KVView, event: Event, rec: KVRecord, out: list[Violation]) -> None:
        raise NotImplementedError

    def _report(
        self,
        out: list[Violation],
        invariant: str,
        key: Hashable,
        step: int,
        message: str,
        evidence: Mapping[str, Any],
    ) -> None:
        if (invariant, key) in self._reported:
            return
        self._reported.add((invariant, key))
        out.append(Violation(invariant, step, message, jsonable(dict(evidence))))


class ReplicasAgree(KVChecker):
    """KV-REPLICAS-AGREE: applying index i does the same everywhere (the first
    application recorded is the reference), and revision r's changes are the same
    wherever r is made.  History: one `Applied` per index, one change list per revision."""

    ID = KV_REPLICAS_AGREE

    def inspect(self, view: KVView, event: Event, rec: KVRecord, out: list[Violation]) -> None:
        if not isinstance(rec, ApplyRecord):
            return
        a = rec.applied
        tr = self.tracker
        first = tr.by_index.get(a.index)
        if first is None:
            tr.by_index[a.index] = (rec.member, rec)
        elif first[1].applied != a:
            ref = first[1].applied
            self._report(
                out,
                self.ID,
                ("index", a.index),
                event.step,
                f"member {rec.member} applied index {a.index} differently from member "
                f"{first[0]} ({', '.join(_differing(a, ref))} differ): revision "
                f"{a.revision} vs {ref.revision}, {a.kind}/{a.decision or '-'} vs "
                f"{ref.kind}/{ref.decision or '-'}",
                {
                    "index": a.index,
                    "member": rec.member,
                    "reference_member": first[0],
                    "applied": _applied_json(a),
                    "reference": _applied_json(ref),
                },
            )
        if a.changes:
            ref_changes = tr.history.get(a.revision)
            if ref_changes is not None and ref_changes != a.changes:
                maker = tr.history_maker.get(a.revision, (0, 0))
                self._report(
                    out,
                    self.ID,
                    ("revision", a.revision),
                    event.step,
                    f"member {rec.member} made revision {a.revision} (index {a.index}) with other "
                    f"changes than member {maker[0]} (index {maker[1]})",
                    {
                        "revision": a.revision,
                        "changes": [_kv_json(kv) for kv in a.changes],
                        "reference": [_kv_json(kv) for kv in ref_changes],
                    },
                )


class RevisionMonotonic(KVChecker):
    """KV-REVISION-MONOTONIC: per member life, the store revision after each applied
    entry never decreases; per client, the header revisions of linearizable operations
    (writes, linearizable reads) never decrease.  History: last revision per member
    life and per client."""

    ID = KV_REVISION_MONOTONIC

    def __init__(self, tracker: KVTracker | None = None) -> None:
        super().__init__(tracker)
        self._member: dict[tuple[int, int], int] = {}
        self._client: dict[Hashable, tuple[int, int]] = {}

    def inspect(self, view: KVView, event: Event, rec: KVRecord, out: list[Violation]) -> None:
        if isinstance(rec, ApplyRecord):
            life = (rec.member, rec.incarnation)
            last = self._member.get(life, 0)
            rev = rec.applied.revision
            if rev < last:
                self._report(
                    out,
                    self.ID,
                    life,
                    event.step,
                    f"member {rec.member}'s store went from revision {last} back to {rev} "
                    f"(index {rec.applied.index})",
                    {
                        "member": rec.member,
                        "incarnation": rec.incarnation,
                        "before": last,
                        "after": rev,
                        "index": rec.applied.index,
                    },
                )
            self._member[life] = max(last, rev)
        elif isinstance(rec, OpRecord) and rec.client and not rec.serializable:
            res = rec.result
            resp = None if res is None else res.response
            if resp is None or rec.ret is None:
                return
            rev = resp.header.revision
            last, last_op = self._client.get(rec.client, (0, 0))
            if rev < last:
                self._report(
                    out,
                    self.ID,
                    ("client", rec.client, rec.op_id),
                    event.step,
                    f"client {rec.client} got revision {rev} (op {rec.op_id}) after revision "
                    f"{last} (op {last_op})",
                    {
                        "client": rec.client,
                        "op": rec.op_id,
                        "revision": rev,
                        "previous_op": last_op,
                        "previous_revision": last,
                    },
                )
            if rev >= last:
                self._client[rec.client] = (rev, rec.op_id)


class _WatcherState:
    __slots__ = ("delivered", "key", "last", "next", "range_end")

    def __init__(self, key: bytes, range_end: bytes, start: int) -> None:
        self.key = key
        self.range_end = range_end
        self.next = start
        self.last = 0
        self.delivered: set[int] = set()

    def covers(self, k: bytes) -> bool:
        end = self.range_end
        if end == b"":
            return k == self.key
        if end == b"\x00":
            return k >= self.key
        return self.key <= k < end


class WatchChecker(KVChecker):
    """WATCH-ORDERED, WATCH-NO-DUP, WATCH-NO-GAP and WATCH-MATCHES-HISTORY over each
    watcher's deliveries, across every stream it resumed on.  History: per watcher,
    the next revision it is owed, the last it got, the set it got."""

    ID = "WATCH-*"

    def __init__(self, tracker: KVTracker | None = None) -> None:
        super().__init__(tracker)
        self._w: dict[int, _WatcherState] = {}

    def inspect(self, view: KVView, event: Event, rec: KVRecord, out: list[Violation]) -> None:
        if isinstance(rec, WatchOpened):
            if rec.watcher not in self._w:
                self._w[rec.watcher] = _WatcherState(rec.key, rec.range_end, rec.start_revision)
            return
        if not isinstance(rec, WatchDelivered):
            return
        w = self._w.get(rec.watcher)
        if w is None:
            return
        resp = rec.response
        if resp.canceled:
            if resp.compact_revision > w.next:
                w.next = resp.compact_revision  # the gap was reported to the watcher
            return
        groups: list[tuple[int, list[Any]]] = []
        for ev in resp.events:
            r = ev.kv.mod_revision
            if groups and groups[-1][0] == r:
                groups[-1][1].append(ev)
            else:
                groups.append((r, [ev]))
        for r, evs in groups:
            self._one_revision(rec, w, r, evs, event.step, out)

    def _one_revision(
        self,
        rec: WatchDelivered,
        w: _WatcherState,
        r: int,
        evs: list[Any],
        step: int,
        out: list[Violation],
    ) -> None:
        who = f"watcher {rec.watcher} (stream {rec.stream} on member {rec.member})"
        base = {"watcher": rec.watcher, "stream": rec.stream, "member": rec.member, "revision": r}
        if r <= w.last or r < w.next:
            if r in w.delivered:
                self._report(
                    out, WATCH_NO_DUP, (rec.watcher, r), step, f"{who} got revision {r} again", base
                )
            else:
                self._report(
                    out,
                    WATCH_ORDERED,
                    (rec.watcher, r),
                    step,
                    f"{who} got revision {r} after revision {w.last} (owed from {w.next})",
                    {**base, "last": w.last, "next": w.next},
                )
            return
        history = self.tracker.history
        for missed in range(w.next, r):
            changes = history.get(missed, ())
            if any(w.covers(kv.key) for kv in changes):
                self._report(
                    out,
                    WATCH_NO_GAP,
                    (rec.watcher, missed),
                    step,
                    f"{who} skipped revision {missed}: it got revision {r} next, owed from "
                    f"{w.next}, and revision {missed} changed "
                    f"{[kv.key.decode('latin-1') for kv in changes if w.covers(kv.key)]}",
                    {
                        **base,
                        "missed": missed,
                        "next": w.next,
                        "changes": [_kv_json(kv) for kv in changes],
                    },
                )
                break
        expected = [kv for kv in history.get(r, ()) if w.covers(kv.key)]
        got = [ev.kv for ev in evs]
        types_ok = all((ev.type.value == "PUT") == (ev.kv.version > 0) for ev in evs)
        if got != expected or not types_ok:
            self._report(
                out,
                WATCH_MATCHES_HISTORY,
                (rec.watcher, r),
                step,
                f"{who} got {len(got)} event(s) for revision {r}; the revision made "
                f"{len(expected)} change(s) in its range"
                + ("" if r in history else " (no applied entry made that revision)"),
                {
                    **base,
                    "events": [_kv_json(kv) for kv in got],
                    "history": [_kv_json(kv) for kv in expected],
                },
            )
        w.delivered.add(r)
        w.last = r
        w.next = r + 1


class Linearizable(KVChecker):
    """KV-LINEARIZABLE at the end of the run (`finish`) and every ``every`` events.
    History: none of its own (the records are the history)."""

    ID = KV_LINEARIZABLE

    def __init__(
        self, tracker: KVTracker | None = None, *, every: int = 0, budget: int = 2_000_000
    ) -> None:
        super().__init__(tracker)
        self.every = every
        self.budget = budget
        self.model = EtcdLeaseKvModel()
        self.ops: list[OpRecord] = []
        self.stats = {"lincheck_ops": 0, "lincheck_explored": 0, "lincheck_unknown": 0}
        self._events = 0

    def check(self, view: ClusterView, event: Event) -> Sequence[Violation]:
        out = list(super().check(view, event))
        self._events += 1
        if self.every and self._events % self.every == 0 and not out:
            kv: KVView = view  # type: ignore[assignment]
            out.extend(self._run(kv, event.step, final=False))
        return out

    def inspect(self, view: KVView, event: Event, rec: KVRecord, out: list[Violation]) -> None:
        if isinstance(rec, OpRecord):
            self.ops.append(rec)

    def finish(self, view: KVView) -> Sequence[Violation]:
        self.tracker.observe(view, Event(view.step, view.time, "finish", None, {}))
        for rec in self.tracker.new:
            if isinstance(rec, OpRecord):
                self.ops.append(rec)
        return self._run(view, view.step, final=True)

    def report(self) -> dict[str, int]:
        return dict(self.stats)

    def _run(self, view: KVView, step: int, *, final: bool) -> list[Violation]:
        records = [*self.ops, *view.open_operations()]
        history = build_history(records)
        result = check(history, self.model, budget=self.budget)
        if final:
            self.stats["lincheck_ops"] += len(history)
        self.stats["lincheck_explored"] += result.explored
        if result.verdict is Verdict.UNKNOWN:
            if final:
                self.stats["lincheck_unknown"] += 1
            return []
        if result.verdict is Verdict.OK:
            return []
        fail = result.failure
        assert fail is not None
        by_id = history.by_id()
        stuck = [by_id[i] for i in fail.stuck if i in by_id]
        prefix_tail = [by_id[i] for i in fail.longest[-8:] if i in by_id]
        out: list[Violation] = []
        self._report(
            out,
            KV_LINEARIZABLE,
            "history",
            step,
            f"the client history ({len(history)} operations) is not linearizable: after a "
            f"prefix of {len(fail.longest)} operations no operation can go next "
            f"({len(stuck)} stuck)",
            {
                "operations": len(history),
                "prefix_length": len(fail.longest),
                "state": self.model.describe_state(fail.state) if fail.state is not None else None,
                "prefix_tail": describe(prefix_tail, self.model),
                "stuck": describe(stuck, self.model),
            },
        )
        return out


class RaftUnderKV:
    """The Raft checkers, over the KV simulation's events: a request reaching a member
    is a proposal to it; the store's client events change no Raft state and are not
    shown to them."""

    SKIP = frozenset({"call", "response", "timeout", "watch", "watch_event"})

    def __init__(self, checkers: Sequence[Checker]) -> None:
        self.checkers = tuple(checkers)

    def check(self, view: ClusterView, event: Event) -> Sequence[Violation]:
        kind = event.kind
        if kind in self.SKIP:
            return ()
        if kind == "request":
            event = Event(event.step, event.time, "propose", event.node, event.payload)
        for c in self.checkers:
            found = c.check(view, event)
            if found:
                return found
        return ()


def kv_checkers(
    config: KVSimConfig | None = None,
    *,
    lincheck_every: int | None = None,
    lincheck_budget: int | None = None,
    raft: bool = True,
) -> list[Checker]:
    """Fresh checkers for one run: the store's, sharing one tracker, and (with ``raft``)
    every Raft invariant.  The linearizability check's period and budget come from
    ``config`` (`KVSimConfig.lincheck_every`, ``lincheck_budget``) unless given."""
    every = (
        lincheck_every if lincheck_every is not None else (config.lincheck_every if config else 0)
    )
    budget = (
        lincheck_budget
        if lincheck_budget is not None
        else (config.lincheck_budget if config else 2_000_000)
    )
    tracker = KVTracker()
    out: list[Checker] = []
    if raft:
        from kubeproof.spec.raft import raft_checkers

        out.append(RaftUnderKV(raft_checkers()))
    out.extend(
        [
            ReplicasAgree(tracker),
            RevisionMonotonic(tracker),
            WatchChecker(tracker),
            Linearizable(tracker, every=every, budget=budget),
        ]
    )
    return out


__all__ = [
    "KV_INVARIANTS",
    "KV_LINEARIZABLE",
    "KV_REPLICAS_AGREE",
    "KV_REVISION_MONOTONIC",
    "WATCH_MATCHES_HISTORY",
    "WATCH_NO_DUP",
    "WATCH_NO_GAP",
    "WATCH_ORDERED",
    "KVChecker",
    "KVTracker",
    "Linearizable",
    "RaftUnderKV",
    "ReplicasAgree",
    "RevisionMonotonic",
    "WatchChecker",
    "kv_checkers",
]
