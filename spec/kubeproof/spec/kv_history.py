"""Client histories of the replicated store, in the terms of the sequential etcd model.

Theory of operation
-------------------
KV-LINEARIZABLE asks the linearizability checker (`kubeproof.models.lincheck`)
whether the operations the simulated clients saw can be put in one order
that the sequential etcd model (`kubeproof.models.etcd_kv`) accepts.  This
module turns the simulation's `OpRecord`s into the checker's `Operation`s:

| record                                       | operation                                      |
| -------------------------------------------- | ---------------------------------------------- |
| put / range / delete / txn, answered         | model request and response, revision included  |
| the same, outcome unknown (gave up, or still | pending: may take effect any time after its    |
| in flight at the end)                        | call, or never                                 |
| lease revoke by a client, answered           | `RevokeLease(id)`: deletes the keys attached   |
|                                              | to the lease, one revision if any              |
| lease expiry (the leader's log entry),       | `RevokeLease(id)` with ``revoked`` as applied  |
| applied somewhere / never applied            | / pending                                      |
| answered with an etcd error (lease not       | left out: the store checked before changing    |
| found, compacted ...)                        | anything, so it had no effect                  |
| serializable reads; lease grants,            | left out: not linearizable by design, or no    |
| keep-alives and compactions                  | effect on keys and revisions                   |

Leases are the one thing the plain etcd-kv model leaves out (it stores a
key's lease id but nothing ever expires), and in the replicated store a
lease's end deletes keys at a revision of its own.  `EtcdLeaseKvModel` is
the etcd-kv model plus that one operation: ``RevokeLease(id)`` whose
response says whether it revoked (an expiry whose lease was renewed or
already gone does nothing) and the revision after it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from attrs import frozen

from kubeproof.etcd import Result
from kubeproof.models import etcd_kv as m
from kubeproof.models.lincheck import History, Operation
from kubeproof.models.sequential import ILLEGAL, IllegalT
from kubeproof.mvcc import (
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    DeleteRangeResponse,
    KeyValue,
    LeaseRevokeRequest,
    PutRequest,
    PutResponse,
    RangeRequest,
    RangeResponse,
    RequestOp,
    ResponseOp,
    SortOrder,
    TxnRequest,
    TxnResponse,
)
from kubeproof.sim.kvobserve import OpRecord


@frozen
class RevokeLease:
    id: int


@frozen
class RevokeResponse:
    revision: int | None
    revoked: bool = True


def revoke(state: m.EtcdState, lease: int) -> m.EtcdState:
    kept = tuple(kv for kv in state.kvs if kv.lease != lease)
    if len(kept) == len(state.kvs):
        return state
    return m.EtcdState(state.revision + 1, kept)


class EtcdLeaseKvModel(m.EtcdKvModel):
    """etcd-kv plus lease revocation (see the module docstring)."""

    name = "etcd-kv-lease"

    def step(self, state: m.EtcdState, input: Any, output: Any) -> m.EtcdState | IllegalT:
        if isinstance(input, RevokeLease):
            new = revoke(state, input.id) if output.revoked else state
            if output.revision is not None and output.revision != new.revision:
                return ILLEGAL
            return new
        return super().step(state, input, output)

    def apply(self, state: m.EtcdState, input: Any) -> m.EtcdState:
        if isinstance(input, RevokeLease):
            return revoke(state, input.id)
        return super().apply(state, input)

    def run(self, state: m.EtcdState, input: Any) -> tuple[m.EtcdState, Any]:
        if isinstance(input, RevokeLease):
            new = revoke(state, input.id)
            return new, RevokeResponse(new.revision, True)
        return super().run(state, input)

    def mutates(self, input: Any, output: Any) -> bool:
        if isinstance(input, RevokeLease):
            return output is None or bool(output.revoked)
        return super().mutates(input, output)

    def may_become_legal(
        self, state: m.EtcdState, input: Any, output: Any, writers: Iterable[Any]
    ) -> bool:
        """Revisions only grow, by one per state-changing operation, so an operation
        that answered revision R needs R - current more changes before it (minus
        its own change, if it made one): fewer writers left than that is a dead
        end.  At that revision already, nothing can change without moving the
        revision: illegal now means illegal for good.  (A revoke moves the
        revision only if keys are attached to its lease, which its answer does
        not say: it needs at least one more change, or R - current - 1.)"""
        rev = output.revision
        if rev is None:
            return any(True for _ in writers)
        gap = rev - state.revision
        if isinstance(input, RevokeLease):
            # Whether a revoke moves the revision depends on the keys attached then.
            if gap <= 0:
                return False
            need = max(gap - 1, 1)
        else:
            need = gap - (1 if self.mutates(input, output) else 0)
            if need <= 0:
                return False
        for _ in writers:
            need -= 1
            if need == 0:
                return True
        return False

    def describe_operation(self, input: Any, output: Any) -> str:
        if isinstance(input, RevokeLease):
            if output is None:
                return f"revoke_lease({input.id}) -> ?"
            return f"revoke_lease({input.id}) -> revoked={output.revoked} rev {output.revision}"
        return super().describe_operation(input, output)

    def input_to_json(self, input: Any) -> Any:
        if isinstance(input, RevokeLease):
            return {"op": "revoke_lease", "id": input.id}
        return super().input_to_json(input)

    def output_to_json(self, output: Any) -> Any:
        if isinstance(output, RevokeResponse):
            return {"revision": output.revision, "revoked": output.revoked}
        return super().output_to_json(output)

    def input_from_json(self, obj: Any) -> Any:
        if isinstance(obj, dict) and obj.get("op") == "revoke_lease":
            return RevokeLease(int(obj["id"]))
        return super().input_from_json(obj)

    def output_from_json(self, input: Any, obj: Any) -> Any:
        if isinstance(input, RevokeLease):
            rev = obj.get("revision")
            return RevokeResponse(None if rev is None else int(rev), bool(obj.get("revoked")))
        return super().output_from_json(input, obj)


# ------------------------------------------------------------------ conversion

_TARGETS: dict[CompareTarget, m.Target] = {
    CompareTarget.VALUE: "value",
    CompareTarget.VERSION: "version",
    CompareTarget.CREATE: "create",
    CompareTarget.MOD: "mod",
    CompareTarget.LEASE: "lease",
}
_OPS: dict[CompareResult, m.CompareOp] = {
    CompareResult.EQUAL: "=",
    CompareResult.NOT_EQUAL: "!=",
    CompareResult.GREATER: ">",
    CompareResult.LESS: "<",
}


class Unsupported(ValueError):
    """A request the model does not cover (historical reads, sorting ...)."""


def _kv(kv: KeyValue) -> m.KeyValue:
    return m.KeyValue(kv.key, kv.create_revision, kv.mod_revision, kv.version, kv.value, kv.lease)


def _compare(c: Compare) -> m.Compare:
    operand: bytes | int
    t = c.target
    if t is CompareTarget.VALUE:
        operand = c.value
    elif t is CompareTarget.VERSION:
        operand = c.version
    elif t is CompareTarget.CREATE:
        operand = c.create_revision
    elif t is CompareTarget.MOD:
        operand = c.mod_revision
    else:
        operand = c.lease
    return m.Compare(c.key, _TARGETS[t], _OPS[c.result], operand, c.range_end)


def to_model_request(req: object) -> m.Request:
    if isinstance(req, RequestOp):
        req = req.request
    if isinstance(req, PutRequest):
        if req.ignore_value or req.ignore_lease:
            raise Unsupported("put with ignore_value/ignore_lease")
        return m.Put(req.key, req.value, req.lease, req.prev_kv)
    if isinstance(req, RangeRequest):
        if (
            req.revision
            or req.sort_order is not SortOrder.NONE
            or req.min_mod_revision
            or req.max_mod_revision
            or req.min_create_revision
            or req.max_create_revision
        ):
            raise Unsupported("historical, sorted or filtered range")
        return m.Range(req.key, req.range_end, req.limit, req.keys_only, req.count_only)
    if isinstance(req, DeleteRangeRequest):
        return m.DeleteRange(req.key, req.range_end, req.prev_kv)
    if isinstance(req, TxnRequest):
        return m.Txn(
            tuple(_compare(c) for c in req.compare),
            tuple(to_model_request(op) for op in req.success),
            tuple(to_model_request(op) for op in req.failure),
        )
    raise Unsupported(f"not a KV request: {type(req).__name__}")


def to_model_response(resp: object) -> m.Response:
    if isinstance(resp, ResponseOp):
        resp = resp.response
    if isinstance(resp, PutResponse):
        prev = None if resp.prev_kv is None else _kv(resp.prev_kv)
        return m.PutResponse(resp.header.revision, prev)
    if isinstance(resp, RangeResponse):
        return m.RangeResponse(
            resp.header.revision, tuple(_kv(kv) for kv in resp.kvs), resp.count, resp.more
        )
    if isinstance(resp, DeleteRangeResponse):
        return m.DeleteRangeResponse(
            resp.header.revision, resp.deleted, tuple(_kv(kv) for kv in resp.prev_kvs)
        )
    if isinstance(resp, TxnResponse):
        return m.TxnResponse(
            resp.header.revision,
            resp.succeeded,
            tuple(to_model_response(r) for r in resp.responses),
        )
    raise Unsupported(f"not a KV response: {type(resp).__name__}")


def to_operation(rec: OpRecord) -> Operation | None:
    """The checker's operation for one record, or None if it has no place in the history."""
    if rec.expire is not None:
        out = None if rec.ret is None else RevokeResponse(rec.revision, rec.revoked)
        return Operation(
            rec.op_id, ("lessor", rec.op_id), rec.call, RevokeLease(rec.expire.id), rec.ret, out
        )
    req = rec.request
    if rec.serializable or req is None:
        return None
    result: Result | None = rec.result
    if isinstance(req, LeaseRevokeRequest):
        inp: Any = RevokeLease(req.id)
        if rec.ret is None or result is None:
            return Operation(rec.op_id, rec.client, rec.call, inp)
        if result.lease_revoke is None:
            return None  # an error: no effect
        return Operation(
            rec.op_id,
            rec.client,
            rec.call,
            inp,
            rec.ret,
            RevokeResponse(result.lease_revoke.header.revision, True),
        )
    if not isinstance(req, PutRequest | RangeRequest | DeleteRangeRequest | TxnRequest):
        return None
    try:
        inp = to_model_request(req)
    except Unsupported:
        return None
    if rec.ret is None or result is None:
        return Operation(rec.op_id, rec.client, rec.call, inp)
    resp = result.response
    if resp is None:
        return None  # an etcd error: the store changed nothing
    return Operation(rec.op_id, rec.client, rec.call, inp, rec.ret, to_model_response(resp))


def build_history(records: Iterable[OpRecord]) -> History:
    ops = [op for op in (to_operation(r) for r in records) if op is not None]
    return History.of(ops)


def describe(ops: Sequence[Operation], model: EtcdLeaseKvModel) -> list[str]:
    return [
        f"#{o.id} client {o.client} [{o.call}, {'?' if o.ret is None else o.ret}] "
        f"{model.describe_operation(o.input, o.output)}"
        for o in ops
    ]
