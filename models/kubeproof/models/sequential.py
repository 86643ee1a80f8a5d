"""The sequential-model contract: what the linearizability checker (and any
other user of a reference model) needs of a sequential specification.

Theory of operation
-------------------
A sequential model is a deterministic state machine: ``init()`` gives the
initial state; ``step(state, input, output)`` returns the next state if a
sequential object in `state` could answer `input` with `output`, else
`ILLEGAL`.  ``apply(state, input)`` is the effect of an operation whose
output is unknown (a pending one): it happens, whatever it answered.  ``run(state, input)`` is the sequential
object itself: the next state and the output it gives (used to generate
histories and to explain witnesses).
States must be hashable and compare by value: the checker caches them.

``partition_key(input)`` enables P-compositionality: when every operation
touches one independent object (a key of a per-key store), the history is
linearizable iff each per-key sub-history is; models whose operations are
coupled (a global revision, a multi-key transaction) return one constant.

``may_become_legal(state, input, output, writers)`` is a pruning hint: it
may return False only if no sequence of the `writers` (mutating operations,
each used at most once, in any order) can take `state` to one where
`input` may answer `output`.  The checker asks it about an operation that
is illegal now, passing exactly the operations that could still take
effect before it must; ``True`` is always a safe answer.

``simplify(ops)`` may rewrite one partition's operations into an
equivalent set (same verdict, same ids) that is cheaper to search: drop
timed-out writes no read could have seen, merge values nobody observes.

``mutates(input, output)`` is False for operations that can never change
the state: reads, and (given their output) failed compare-and-sets; with
``output=None`` it asks about an operation whose output is unknown.  The
checker drops pending operations that cannot mutate (taking effect or not
makes no difference) and never branches on read-only ones.

Models are plain objects satisfying this Protocol (no base class); the
JSON codec methods let kubeproof's own history format carry any model's
inputs and outputs.  A codec raises `ValueError` naming what is wrong.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, TypeAlias, TypeVar

if TYPE_CHECKING:  # only for annotations: the checker's modules import this one
    from kubeproof.models.lincheck.history import Operation


class Illegal(enum.Enum):
    """The single value `ILLEGAL` (an enum so that `is` narrows the type)."""

    ILLEGAL = "illegal"


ILLEGAL: Final = Illegal.ILLEGAL
IllegalT: TypeAlias = Literal[Illegal.ILLEGAL]

S = TypeVar("S")
I = TypeVar("I")  # noqa: E741  (input, as Porcupine names it)
O = TypeVar("O")  # noqa: E741


class Model(Protocol[S, I, O]):
    """A deterministic sequential specification (see the module docstring)."""

    @property
    def name(self) -> str: ...

    def init(self) -> S: ...

    def step(self, state: S, input: I, output: O) -> S | IllegalT: ...

    def apply(self, state: S, input: I) -> S: ...

    def run(self, state: S, input: I) -> tuple[S, O]: ...

    def mutates(self, input: I, output: O | None) -> bool: ...

    def partition_key(self, input: I) -> Hashable: ...

    def may_become_legal(self, state: S, input: I, output: O, writers: Iterable[I]) -> bool: ...

    def simplify(self, ops: Sequence[Operation]) -> Sequence[Operation]: ...

    def describe_operation(self, input: I, output: O | None) -> str: ...

    def describe_state(self, state: S) -> str: ...

    def input_from_json(self, obj: Any) -> I: ...

    def output_from_json(self, input: I, obj: Any) -> O: ...

    def input_to_json(self, input: I) -> Any: ...

    def output_to_json(self, output: O) -> Any: ...


AnyModel: TypeAlias = Model[Any, Any, Any]
