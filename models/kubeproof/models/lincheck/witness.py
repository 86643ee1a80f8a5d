"""Minimal witnesses: the operations of a history that cannot be ordered.

Theory of operation
-------------------
A verdict "not linearizable" comes with a witness small enough to read.
The search already reports the longest linearizable prefix it found and
the operations it could not place after it; this module shrinks the
failing partition to a *core* by steps that each keep the verdict and can
only make a history easier to linearize:

1. **Cut at a time T**: keep the operations called by T; those still
   running at T become pending (their outcome is cut off).  Any
   linearization of the whole history, cut at its last operation that
   returned by T, linearizes the cut history, so a cut that is not
   linearizable proves the whole is not.  Binary search finds the
   earliest such T (cutting is monotone: a later cut contains an earlier
   one).
2. **Relax operations**: drop a read-only operation (a read constrains,
   never enables), or make a completed write pending (it may then take
   effect or not, anywhere after its call: one more choice, no fewer).
   ddmin-style, in chunks then one by one, each relaxation is kept only
   if the result is still not linearizable.

What is left is 1-minimal: the completed operations in it cannot be
ordered, and relaxing any single one of them makes the rest orderable.
The pending operations that remain are context: they may or may not have
taken effect, and the core fails either way.  Each check runs under a
node budget; a check that runs out counts as "linearizable" (the step is
not taken), so the core is always sound, at worst not minimal.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

from attrs import evolve, frozen

from kubeproof.models.sequential import AnyModel

from .history import Operation
from .search import PartitionResult, Verdict, check_partition


@frozen
class Witness:
    """Why a partition is not linearizable, in terms of operation ids."""

    partition: Hashable
    prefix: tuple[int, ...]  # longest linearizable prefix found, in order
    state: Any  # the model state after that prefix
    stuck: tuple[int, ...]  # operations that could go next but do not fit
    core: tuple[int, ...]  # completed operations that cannot be ordered
    context: tuple[int, ...]  # pending operations left in the core history
    cut: float | None  # the core history ends at this time (None: not cut)
    minimal: bool  # False if a budget stopped the shrinking early
    history: tuple[Operation, ...] = ()  # the certificate: core + context, as relaxed


def _cut(ops: Sequence[Operation], t: float) -> list[Operation]:
    out: list[Operation] = []
    for o in ops:
        if o.call > t:
            continue
        if o.ret is not None and o.ret > t:
            o = evolve(o, ret=None, output=None)
        out.append(o)
    return out


def _relax(o: Operation, model: AnyModel) -> Operation | None:
    """The operation made weaker: None to drop it, itself if it cannot be."""
    if o.pending:
        return o
    if not model.mutates(o.input, o.output):
        return None
    return evolve(o, ret=None, output=None)


def minimize(
    model: AnyModel,
    result: PartitionResult,
    ops: Sequence[Operation],
    *,
    budget: int = 20_000,
    should_stop: Callable[[], bool] | None = None,
) -> Witness:
    """Shrink a failing partition (`result` for `ops`) to a minimal witness."""
    assert result.verdict is Verdict.ILLEGAL
    minimal = True

    def illegal(candidate: Sequence[Operation]) -> bool:
        nonlocal minimal
        if should_stop is not None and should_stop():
            minimal = False
            return False
        r = check_partition(model, result.key, candidate, budget=budget)
        if r.verdict is Verdict.UNKNOWN:
            minimal = False
        return r.verdict is Verdict.ILLEGAL

    # 1. The earliest cut that still fails.
    times = sorted({o.ret for o in ops if o.ret is not None})
    current = list(ops)
    cut: float | None = None
    lo, hi = 0, len(times) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if illegal(_cut(ops, times[mid])):
            hi = mid
        else:
            lo = mid + 1
    if times:
        # times[lo] failed when tested; untested, it is the last return time,
        # and that cut only drops pending operations called after everything.
        current = _cut(ops, times[lo])
        cut = times[lo] if lo < len(times) - 1 else None

    # 2. Relax completed operations in shrinking chunks: reads first (dropping
    # them is cheap to check), then writes (each becomes one more choice).
    def relax_all(candidates: list[Operation]) -> bool:
        nonlocal current
        changed = False
        chunk = max(1, len(candidates) // 2)
        while candidates:
            kept: list[Operation] = []
            for i in range(0, len(candidates), chunk):
                group = candidates[i : i + chunk]
                ids = {o.id for o in group}
                trial: list[Operation] = []
                for o in current:
                    relaxed = _relax(o, model) if o.id in ids else o
                    if relaxed is not None:
                        trial.append(relaxed)
                if illegal(trial):
                    current = trial
                    changed = True
                else:
                    kept.extend(group)
            if chunk == 1 and len(kept) == len(candidates):
                break  # a full pass of single ops changed nothing: 1-minimal
            candidates = kept
            chunk = max(1, chunk // 2)
        return changed

    def completed_ops(writes: bool) -> list[Operation]:
        ops = (o for o in current if not o.pending and model.mutates(o.input, o.output) is writes)
        return sorted(ops, key=lambda o: (o.call, o.id))

    # Relaxing a write can free a read and vice versa: repeat until neither moves.
    while relax_all(completed_ops(False)) | relax_all(completed_ops(True)):
        pass

    core = tuple(o.id for o in sorted(current, key=lambda o: (o.call, o.id)) if not o.pending)
    context = tuple(o.id for o in sorted(current, key=lambda o: (o.call, o.id)) if o.pending)
    return Witness(
        result.key,
        result.longest,
        result.state,
        result.stuck,
        core,
        context,
        cut,
        minimal,
        tuple(sorted(current, key=lambda o: (o.call, o.id))),
    )
