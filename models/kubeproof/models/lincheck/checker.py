"""Check a whole history: split it by partition key, search each part.

Theory of operation
-------------------
P-compositionality (Herlihy & Wing's locality; Horn & Kroening): when the
model's objects are independent (one register per key), a history is
linearizable iff each object's sub-history is.  `check` groups the
operations by `model.partition_key(input)`, searches the groups one by one
(in order of first appearance, so results are deterministic) and stops at
the first group that is not linearizable: that group is the witness.  A
group that runs out of budget makes the answer UNKNOWN unless another
group is found not linearizable.

The budget (configurations explored) is shared by all groups;
`should_stop` is polled during the search, so the caller can impose a
wall-clock timeout without this module reading a clock.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from attrs import frozen

from kubeproof.models.sequential import AnyModel

from .history import History, Operation
from .search import PartitionResult, Verdict, check_partition


@frozen
class CheckResult:
    """The verdict for a history, with the per-partition results that back it."""

    verdict: Verdict
    operations: int
    partitions: tuple[PartitionResult, ...]

    @property
    def linearizable(self) -> bool | None:
        """True, False, or None when the search gave up (UNKNOWN)."""
        if self.verdict is Verdict.UNKNOWN:
            return None
        return self.verdict is Verdict.OK

    @property
    def explored(self) -> int:
        return sum(p.explored for p in self.partitions)

    @property
    def failure(self) -> PartitionResult | None:
        """The partition found not linearizable, if any."""
        for p in self.partitions:
            if p.verdict is Verdict.ILLEGAL:
                return p
        return None


def partition(history: History, model: AnyModel) -> dict[Hashable, list[Operation]]:
    """The operations grouped by the model's partition key, in first-seen order."""
    groups: dict[Hashable, list[Operation]] = {}
    key_of = model.partition_key
    for op in history.operations:
        groups.setdefault(key_of(op.input), []).append(op)
    return groups


def check(
    history: History,
    model: AnyModel,
    *,
    budget: int | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> CheckResult:
    """Is `history` linearizable with respect to `model`?"""
    results: list[PartitionResult] = []
    verdict = Verdict.OK
    remaining = budget
    for key, ops in partition(history, model).items():
        if (remaining is not None and remaining <= 0) or (
            should_stop is not None and should_stop()
        ):
            verdict = Verdict.UNKNOWN
            break
        r = check_partition(model, key, ops, budget=remaining, should_stop=should_stop)
        results.append(r)
        if remaining is not None:
            remaining -= r.explored
        if r.verdict is Verdict.ILLEGAL:
            verdict = Verdict.ILLEGAL
            break
        if r.verdict is Verdict.UNKNOWN:
            verdict = Verdict.UNKNOWN
    return CheckResult(verdict, len(history), tuple(results))
