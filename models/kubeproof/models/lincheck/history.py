"""Concurrent histories: the input of the linearizability checker.

Theory of operation
-------------------
A history is a set of operations.  Each operation was invoked by one client
at `call` and answered at `ret` with `output`; times are numbers on one
clock (or just event positions in a log), only their order matters.
Intervals are closed: operation A *precedes* B (A must be linearized
before B) iff ``A.ret < B.call``; a tie ``A.ret == B.call`` makes them
concurrent, as Porcupine orders calls before returns at equal times.

An operation whose outcome is unknown (the client timed out, crashed, or
got an ambiguous error) is *pending*: ``ret is None`` and ``output is
None``.  A pending operation may take effect at any moment after its call,
even after everything else, or never; the checker never requires it to.

Operations carry a stable ``id`` (their position in the source, e.g. the
line of the invoke) so that a witness can name them.  Input and output are
model-specific frozen values (see `kubeproof.models.sequential`); this module does not look
inside them.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any

from attrs import field, frozen


class HistoryError(ValueError):
    """A history that is not well formed (names the operation or line)."""


def _check_time(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise HistoryError(f"time must be a number, got {value!r}")
    return value


@frozen
class Operation:
    """One client operation: invoked at `call`, answered at `ret` (None: pending)."""

    id: int
    client: Hashable
    call: float
    input: Any
    ret: float | None = None
    output: Any = None

    def __attrs_post_init__(self) -> None:
        _check_time(self.call)
        if self.ret is not None:
            _check_time(self.ret)
            if self.ret < self.call:
                raise HistoryError(
                    f"operation {self.id}: returns at {self.ret} before its call at {self.call}"
                )
        elif self.output is not None:
            raise HistoryError(f"operation {self.id}: pending, so it cannot have an output")

    @property
    def pending(self) -> bool:
        """True when the outcome is unknown: it may take effect after `call`, or never."""
        return self.ret is None

    def precedes(self, other: Operation) -> bool:
        """Real-time order: self returned strictly before other was called."""
        return self.ret is not None and self.ret < other.call


def _ops_tuple(ops: Iterable[Operation]) -> tuple[Operation, ...]:
    result = tuple(ops)
    seen: set[int] = set()
    for op in result:
        if op.id in seen:
            raise HistoryError(f"duplicate operation id {op.id}")
        seen.add(op.id)
    return result


@frozen
class History:
    """The operations of one run, in no particular order (ids are unique)."""

    operations: tuple[Operation, ...] = field(converter=_ops_tuple)

    @classmethod
    def of(cls, ops: Iterable[Operation]) -> History:
        return cls(tuple(ops))

    def __len__(self) -> int:
        return len(self.operations)

    @property
    def completed(self) -> tuple[Operation, ...]:
        return tuple(op for op in self.operations if not op.pending)

    @property
    def pending(self) -> tuple[Operation, ...]:
        return tuple(op for op in self.operations if op.pending)

    def by_id(self) -> dict[int, Operation]:
        return {op.id: op for op in self.operations}
