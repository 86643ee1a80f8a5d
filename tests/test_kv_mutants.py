"""The store's checks have teeth: every broken member in tests/mutants/kv_mutants.py is caught.

Campaign: for each mutant, the KV campaign (all faults, every invariant of
`kubeproof.spec.kv` plus Raft's) runs seed after seed until a violation of
one of the invariants that name its rule, within `MAX_SEEDS`; the correct
member must pass that very seed, so the catch is the mutation's doing.
Seeds needed when written (first catching seed + 1, 6000 events a seed):
local-read 1, double-apply 1, watch-skips-boundary 9, half-applied-txn 1,
local-expiry 1.

Targeted: each mutant also fails the unit test of the rule it breaks
(tests/test_etcd_member.py's scenarios, run here against the mutant), and
the watch checkers are shown to catch a duplicate and a reordering that
no mutant produces, on hand-made records.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from kubeproof.cli.check_kv import kv_campaign
from kubeproof.etcd import Applied, ClientRequest, Member
from kubeproof.mvcc import (
    Event as WatchEvent,
)
from kubeproof.mvcc import (
    EventType,
    KeyValue,
    PutRequest,
    RangeRequest,
    ResponseHeader,
    TxnRequest,
    WatchResponse,
)
from kubeproof.sim.kvobserve import ApplyRecord, KVRecord, OpRecord, WatchDelivered, WatchOpened
from kubeproof.sim.observe import Event
from kubeproof.spec.kv import (
    KV_LINEARIZABLE,
    KV_REPLICAS_AGREE,
    KV_REVISION_MONOTONIC,
    WATCH_MATCHES_HISTORY,
    WATCH_NO_DUP,
    WATCH_NO_GAP,
    WATCH_ORDERED,
    KVTracker,
    WatchChecker,
)
from tests import test_etcd_member as unit
from tests.etcd_helpers import Group
from tests.mutants.kv_mutants import (
    MUTANTS,
    DoubleApplyMember,
    HalfAppliedTxnMember,
    LocalExpiryMember,
    LocalReadMember,
    WatchSkipsBoundaryMember,
)

MAX_SEEDS = 20
STEPS = 6000

EXPECTED: dict[str, frozenset[str]] = {
    "local-read": frozenset({KV_LINEARIZABLE, KV_REVISION_MONOTONIC}),
    "double-apply": frozenset({KV_LINEARIZABLE, KV_REVISION_MONOTONIC}),
    "watch-skips-boundary": frozenset({WATCH_NO_GAP}),
    "half-applied-txn": frozenset({WATCH_MATCHES_HISTORY, WATCH_NO_GAP, KV_LINEARIZABLE}),
    "local-expiry": frozenset({KV_REPLICAS_AGREE, KV_LINEARIZABLE, WATCH_MATCHES_HISTORY}),
}


def first_caught(member: type[Member]) -> tuple[int, str] | None:
    for seed in range(MAX_SEEDS):
        result = kv_campaign([seed], steps=STEPS, member_factory=member)
        if result.failures:
            return seed, result.failures[0].violation.invariant
    return None


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_the_campaign_catches_the_mutant_and_passes_the_correct_member(name: str) -> None:
    caught = first_caught(MUTANTS[name])
    assert caught is not None, f"{name} survived {MAX_SEEDS} seeds"
    seed, invariant = caught
    assert invariant in EXPECTED[name], f"{name} caught by {invariant} at seed {seed}"
    correct = kv_campaign([seed], steps=STEPS)
    assert not correct.failures, f"the correct member fails seed {seed}: {correct.failures}"


# ------------------------------------------------------------------ targeted


def with_member(
    member: type[Member], test: Callable[[], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = Group.__init__

    def init(self: Group, *args: object, **kw: object) -> None:
        kw["member"] = member
        real(self, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(Group, "__init__", init)
    test()


@pytest.mark.parametrize(
    ("member", "test"),
    [
        (LocalReadMember, unit.test_a_linearizable_read_waits_until_the_read_index_is_applied),
        (DoubleApplyMember, unit.test_a_retry_through_another_member_applies_once),
        (DoubleApplyMember, unit.test_a_duplicated_forwarded_proposal_applies_once),
        (
            LocalExpiryMember,
            unit.test_lease_expiry_is_decided_by_the_leader_and_applied_through_the_log,
        ),
        (WatchSkipsBoundaryMember, unit.test_a_watch_resuming_below_the_compaction_is_told_so),
    ],
)
def test_the_unit_scenario_fails_against_the_mutant(
    member: type[Member], test: Callable[[], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(AssertionError):
        with_member(member, test, monkeypatch)


def test_a_half_applied_txn_shows_in_its_revisions() -> None:
    for member, whole in ((Member, True), (HalfAppliedTxnMember, False)):
        g = Group(member=member)
        g.elect(1)
        txn = TxnRequest(
            success=(
                PutRequest(key=b"a", value=b"1"),
                PutRequest(key=b"b", value=b"2"),
                RangeRequest(key=b"a", range_end=b"c"),
            )
        )
        g.submit(1, ClientRequest(txn, client_id=3, seq=1))
        g.pump()
        (ans,) = g.answer(3, 1)
        kvs = ans.response.responses[2].response_range.kvs  # type: ignore[union-attr]
        same_revision = kvs[0].mod_revision == kvs[1].mod_revision == g.m(1).store.revision
        assert same_revision is whole


# ------------------------------------------------- watch checkers, by hand


class _View:
    def __init__(self) -> None:
        self.records: list[KVRecord] = []
        self.step = 0
        self.time = 0
        self.nodes: dict[int, object] = {}
        self.acknowledged: dict[bytes, int] = {}
        self.finished = False

    def open_operations(self) -> list[OpRecord]:
        return []


def _made(rev: int, key: bytes) -> ApplyRecord:
    kv = KeyValue(key, rev, rev, 1, b"v", 0)
    return ApplyRecord(1, 0, 0, Applied(rev, 1, "write", rev, changes=(kv,)))


def _delivered(revs: list[int], stream: int = 1) -> WatchDelivered:
    evs = tuple(WatchEvent(EventType.PUT, KeyValue(b"k%d" % r, r, r, 1, b"v", 0)) for r in revs)
    return WatchDelivered(
        1, stream, 1, WatchResponse(ResponseHeader(revision=max(revs)), 1, evs), 0
    )


def _violations(records: list[KVRecord]) -> list[str]:
    view = _View()
    checker = WatchChecker(KVTracker())
    found: list[str] = []
    for rec in records:
        view.records.append(rec)
        view.step += 1
        found += [v.invariant for v in checker.check(view, Event(view.step, 0, "x", None, {}))]  # type: ignore[arg-type]
    return found


def test_the_watch_checkers_catch_duplicates_reordering_and_gaps() -> None:
    made = [_made(r, b"k%d" % r) for r in range(2, 7)]
    opened = WatchOpened(1, 1, 1, b"k", b"l", 2, 0)
    assert _violations([*made, opened, _delivered([2, 3]), _delivered([4, 5, 6])]) == []
    # The same revisions again on a resumed stream: duplicates.
    assert _violations([*made, opened, _delivered([2, 3]), _delivered([3, 4], stream=2)]) == [
        WATCH_NO_DUP
    ]
    # A revision skipped, then delivered late: a gap, then out of order.
    assert _violations([*made, opened, _delivered([2, 4]), _delivered([3])]) == [
        WATCH_NO_GAP,
        WATCH_ORDERED,
    ]
    # An event that is not what the revision made.
    wrong = WatchDelivered(
        1,
        1,
        1,
        WatchResponse(
            ResponseHeader(revision=2),
            1,
            (WatchEvent(EventType.PUT, KeyValue(b"k2", 2, 2, 1, b"other", 0)),),
        ),
        0,
    )
    assert _violations([*made, opened, wrong]) == [WATCH_MATCHES_HISTORY]
