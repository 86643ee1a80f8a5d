"""Shared helpers for the lincheck tests: the shared data, a brute-force oracle."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kubeproof.models.lincheck import ILLEGAL, AnyModel, History, Operation

DATA = Path(__file__).parents[2] / "shared" / "testdata" / "porcupine"
"""../shared/testdata/porcupine beside the repository (CI lays a copy there)."""

MODEL_NAMES = {"etcd": "etcd-register", "kv": "kv", "kv-nopartition": "kv-nopartition"}


def require_data() -> Path:
    if not (DATA / "VERDICTS.tsv").is_file():
        pytest.fail(
            f"the shared Porcupine/Jepsen histories are missing: expected {DATA}/VERDICTS.tsv "
            "(shared/testdata/porcupine beside the repository checkout)"
        )
    return DATA


def verdict_rows() -> list[tuple[str, bool, str]]:
    """(file, expected linearizable, model name) for every row with a verdict."""
    if not (DATA / "VERDICTS.tsv").is_file():
        return []
    rows = []
    for line in (DATA / "VERDICTS.tsv").read_text().splitlines()[1:]:
        file, expected, model, _source = line.split("\t")
        if expected == "n/a":
            continue
        rows.append((file, expected == "true", MODEL_NAMES[model]))
    return rows


def brute_force(history: History, model: AnyModel) -> bool:
    """Linearizable?  Tries every order (no memo, no pruning): for tiny histories only."""
    completed = [o for o in history.operations if not o.pending]
    pending = [o for o in history.operations if o.pending]

    def search(state: object, done: frozenset[int], used: frozenset[int]) -> bool:
        rest = [o for o in completed if o.id not in done]
        if not rest:
            return True
        bound = min(o.ret for o in rest if o.ret is not None)
        for o in rest:
            if o.call <= bound:
                nxt = model.step(state, o.input, o.output)
                if nxt is not ILLEGAL and search(nxt, done | {o.id}, used):
                    return True
        for o in pending:
            if (
                o.id not in used
                and o.call <= bound
                and search(model.apply(state, o.input), done, used | {o.id})
            ):
                return True
        return False

    return search(model.init(), frozenset(), frozenset())


def valid_linearization(history: History, model: AnyModel, order: tuple[int, ...]) -> bool:
    """Is `order` (op ids) a linearization: all completed ops once, real time kept, legal?"""
    by_id = history.by_id()
    if len(set(order)) != len(order) or any(i not in by_id for i in order):
        return False
    completed = {o.id for o in history.operations if not o.pending}
    if not completed <= set(order):
        return False
    position = {op_id: n for n, op_id in enumerate(order)}
    for a in history.operations:
        for b in history.operations:
            if a.precedes(b) and position.get(a.id, -1) > position.get(b.id, len(order)):
                return False
    # Partition by partition, the model must accept each step.
    states: dict[object, object] = {}
    for op_id in order:
        op = by_id[op_id]
        key = model.partition_key(op.input)
        state = states.get(key, model.init())
        nxt = model.apply(state, op.input) if op.pending else model.step(state, op.input, op.output)
        if nxt is ILLEGAL:
            return False
        states[key] = nxt
    return True


def ops_in(history: History, ids: Iterator[int] | tuple[int, ...]) -> list[Operation]:
    by_id = history.by_id()
    return [by_id[i] for i in ids]
