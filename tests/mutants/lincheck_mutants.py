"""Deliberately broken linearizability checkers: each gets one thing wrong.

`tests/test_lincheck_mutants.py` asserts that the shared Porcupine/Jepsen
histories with their known verdicts expose every one of them (some history
gets the wrong verdict), so a checker with such a bug cannot pass the
acceptance suite.  A mutant is a function with `check`'s signature.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from attrs import evolve

from kubeproof.models.lincheck import ILLEGAL, AnyModel, CheckResult, History, check

Checker = Callable[..., CheckResult]


def check_ignoring_real_time(history: History, model: AnyModel, **kw: Any) -> CheckResult:
    """Forgets real-time order: every operation overlaps every other one."""
    end = max((o.ret for o in history.operations if o.ret is not None), default=0)
    stretched = History(
        evolve(o, call=0, ret=None if o.pending else end) for o in history.operations
    )
    return check(stretched, model, **kw)


def check_dropping_pending(history: History, model: AnyModel, **kw: Any) -> CheckResult:
    """Assumes timed-out operations never took effect."""
    return check(History(o for o in history.operations if not o.pending), model, **kw)


class _Blurred:
    """A model state that compares equal to every other (a constant hash)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return 0


def check_with_blurred_states(history: History, model: AnyModel, **kw: Any) -> CheckResult:
    """Memoizes on the linearized set alone: the model state is left out of the cache key."""

    class Blurred:
        def __getattr__(self, name: str) -> Any:
            return getattr(model, name)

        def init(self) -> _Blurred:
            return _Blurred(model.init())

        def step(self, state: _Blurred, input: Any, output: Any) -> Any:
            s = model.step(state.value, input, output)
            return s if s is ILLEGAL else _Blurred(s)

        def apply(self, state: _Blurred, input: Any) -> _Blurred:
            return _Blurred(model.apply(state.value, input))

        def may_become_legal(self, state: _Blurred, *args: Any) -> bool:
            return bool(model.may_become_legal(state.value, *args))

    return check(history, Blurred(), **kw)


def check_with_writes_as_reads(history: History, model: AnyModel, **kw: Any) -> CheckResult:
    """Believes completed writes never change the state, so it never branches on them."""

    class WritesAsReads:
        def __getattr__(self, name: str) -> Any:
            return getattr(model, name)

        def mutates(self, input: Any, output: Any) -> bool:
            return output is None and bool(model.mutates(input, None))

    return check(history, WritesAsReads(), **kw)


MUTANTS: dict[str, Checker] = {
    "ignores real-time order": check_ignoring_real_time,
    "drops timed-out operations": check_dropping_pending,
    "caches without the model state": check_with_blurred_states,
    "treats writes as reads": check_with_writes_as_reads,
}
