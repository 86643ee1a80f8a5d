"""Deliberately broken replicated-store members: each breaks exactly one rule.

The KV campaign (with the spec's invariants, `kubeproof.spec.kv`) must catch
every one of them; `tests/test_kv_mutants.py` asserts it.  A mutant is a
`kubeproof.etcd.Member` subclass overriding one hook (or swapping in a state
machine or watch hub that overrides one).
"""

from __future__ import annotations

from kubeproof.etcd import ClientRequest, KVStateMachine, Member, Output, Result, WatchHub
from kubeproof.etcd.sessions import Decision
from kubeproof.mvcc import (
    DeleteRangeRequest,
    MVCCStore,
    PutRequest,
    RangeRequest,
    ResponseHeader,
    ResponseOp,
    TxnOpResponse,
    TxnRequest,
    TxnResponse,
)


# 1. A linearizable read served from the local state, without ReadIndex: a
#    follower (or a deposed leader) answers with whatever it has applied.
class LocalReadMember(Member):
    def linearizable_read(self, req: ClientRequest, now: float) -> Output:
        return Output(responses=(self.serializable_read(req),))  # BUG: no ReadIndex


# 2. A retried (or network-duplicated) request applied again: no session check.
class _NoDedup(KVStateMachine):
    def decide(self, client_id: int, seq: int) -> tuple[Decision, Result | None]:
        return Decision.fresh, None  # BUG: every copy is fresh


class DoubleApplyMember(Member):
    state_machine_class = _NoDedup


# 3. A watch resuming exactly at the compaction revision skips that revision's
#    events (it treats the boundary as compacted, without saying so).
class _SkipBoundary(WatchHub):
    def start_revision(self, store: MVCCStore, requested: int) -> int:
        if requested and requested == store.compact_revision:
            return requested + 1  # BUG: revision `requested` is still in history
        return requested


class WatchSkipsBoundaryMember(Member):
    watch_hub_class = _SkipBoundary


# 4. A txn whose branch is applied op by op, each op its own revision: the
#    store passes through states where only part of the txn has happened (and
#    the txn's later ops and every observer see them).
class _HalfApplied(KVStateMachine):
    def execute_txn(self, req: TxnRequest) -> TxnResponse:
        store = self.store
        probe = store.apply_txn(TxnRequest(compare=req.compare))  # compares only
        branch = req.success_ops() if probe.succeeded else req.failure_ops()
        responses: list[TxnOpResponse] = []
        for op in branch:  # BUG: one store request (one revision) per op
            if isinstance(op, PutRequest):
                responses.append(store.apply_put(op))
            elif isinstance(op, DeleteRangeRequest):
                responses.append(store.apply_delete_range(op))
            elif isinstance(op, RangeRequest):
                responses.append(store.apply_range(op))
            else:
                responses.append(self.execute_txn(op))
        header = ResponseHeader(cluster_id=store.cluster_id, revision=store.revision)
        return TxnResponse(
            header,
            probe.succeeded,
            tuple(
                ResponseOp.of(_header_only(r))
                if not isinstance(r, TxnResponse)
                else ResponseOp.of(r)
                for r in responses
            ),
        )


def _header_only(r: TxnOpResponse) -> TxnOpResponse:
    from attrs import evolve

    return evolve(r, header=ResponseHeader(revision=r.header.revision))


class HalfAppliedTxnMember(Member):
    state_machine_class = _HalfApplied


# 5. The leader applies a lease expiry to its own store at once, without the log.
class LocalExpiryMember(Member):
    def expire(self, lease_id: int, version: int) -> None:
        self.sm.store.lease_revoke(lease_id)  # BUG: only this member's store changes
        self.sm.lease_versions.pop(lease_id, None)
        self.clock.forget(lease_id)


MUTANTS: dict[str, type[Member]] = {
    "local-read": LocalReadMember,
    "double-apply": DoubleApplyMember,
    "watch-skips-boundary": WatchSkipsBoundaryMember,
    "half-applied-txn": HalfAppliedTxnMember,
    "local-expiry": LocalExpiryMember,
}
