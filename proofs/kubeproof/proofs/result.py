"""Proof results and the discharge of Z3 proof obligations.

Theory of operation
-------------------
A claim is proved by refutation.  A proof obligation is a set of premises
(the definitions and hypotheses the claim is stated over) and a claim; we
assert the premises and the *negation* of the claim in a fresh Z3 solver and
ask for a model.

- ``unsat``: no model of the negation exists, so the claim is valid -- unless
  the premises contradict each other, which would make any claim "valid".
  So on ``unsat`` the premises alone are checked too (the vacuity check):
  they must be ``sat``, or the obligation is reported as ``unknown``.
- ``sat``: the model is a counterexample.  If the obligation says how to ask
  for a smaller one (``smaller``: a constraint "strictly smaller than this
  model", e.g. fewer members), the solver is asked again until it cannot
  shrink further, so counterexamples come out small enough to read.  The
  model is then *replayed* in plain Python: each obligation brings a
  ``replay`` function that rebuilds the concrete sets or match indexes from
  the model, re-evaluates the claim without Z3, and renders the outcome in
  words.  A model that does not replay is an encoding bug, reported as
  ``unknown`` rather than trusted.
- ``unknown`` (timeout, incompleteness): neither, with Z3's reason.

A proof is a sequence of obligations (one per cluster size, or the base,
step and conclusion of an induction).  It is proved only if every obligation
is ``unsat``; the first ``sat`` refutes it; the first ``unknown`` stops it.
Obligations are produced lazily, so a refuted proof stops at the first
counterexample without building the rest.

Every obligation gets its own ``z3.Context`` (no state is shared between
obligations or with Z3's global context), a fixed random seed and a timeout,
so runs are deterministic and bounded.  The clock that times a proof is an
argument, as time is input.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterable
from typing import Any

import z3
from attrs import frozen

Clock = Callable[[], float]
# A replay rebuilds the counterexample from a Z3 model: (it really violates the
# claim when re-checked in plain Python, the counterexample in words).
Replay = Callable[[Any], tuple[bool, str]]

DEFAULT_TIMEOUT_MS = 60_000


class Verdict(enum.Enum):
    PROVED = "proved"
    REFUTED = "refuted"
    UNKNOWN = "unknown"


@frozen
class Proof:
    """The outcome of one claim.

    `counterexample` is set (in words) exactly when the claim is refuted, and
    `model` then holds Z3's model it was read from, as Z3 prints it; `detail`
    says what was checked (the bounds) or, when unknown, why.
    """

    name: str
    statement: str
    result: Verdict
    seconds: float
    queries: int
    detail: str = ""
    counterexample: str | None = None
    model: str | None = None

    @property
    def proved(self) -> bool:
        return self.result is Verdict.PROVED

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "statement": self.statement,
            "result": self.result.value,
            "seconds": round(self.seconds, 6),
            "queries": self.queries,
            "detail": self.detail,
            "counterexample": self.counterexample,
            "model": self.model,
        }


@frozen
class Obligation:
    """One Z3 validity check: `premises` imply `claim` (z3 ships no type stubs)."""

    label: str
    premises: tuple[Any, ...]
    claim: Any
    replay: Replay
    smaller: Callable[[Any], Any] | None = None


def new_solver(ctx: Any, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> Any:
    solver = z3.Solver(ctx=ctx)
    solver.set("timeout", timeout_ms)
    solver.set("random_seed", 0)
    return solver


def discharge(
    name: str,
    statement: str,
    obligations: Iterable[Obligation],
    *,
    bounds: str,
    clock: Clock = time.perf_counter,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
) -> Proof:
    """Check each obligation in turn; see the module docstring for the rules."""
    start = clock()
    queries = 0
    verdict = Verdict.PROVED
    detail = bounds
    counterexample: str | None = None
    shown: str | None = None
    for obligation in obligations:
        queries += 1
        solver = new_solver(obligation.claim.ctx, timeout_ms)
        solver.add(*obligation.premises)
        solver.add(z3.Not(obligation.claim))
        answer = solver.check()
        if answer == z3.unsat:
            vacuity = _vacuity(obligation, timeout_ms)
            if vacuity is None:
                continue
            verdict = Verdict.UNKNOWN
            detail = f"{bounds}; {obligation.label}: {vacuity}"
            break
        if answer == z3.sat:
            model = _shrink(solver, obligation)
            confirmed, words = obligation.replay(model)
            if confirmed:
                verdict = Verdict.REFUTED
                counterexample = f"{obligation.label}: {words}"
                shown = str(model)
            else:
                verdict = Verdict.UNKNOWN
                detail = (
                    f"{bounds}; {obligation.label}: Z3's model does not replay as a counterexample"
                    f" (encoding bug): {words}"
                )
            break
        verdict = Verdict.UNKNOWN
        detail = f"{bounds}; {obligation.label}: Z3 answered unknown ({solver.reason_unknown()})"
        break
    return Proof(
        name=name,
        statement=statement,
        result=verdict,
        seconds=clock() - start,
        queries=queries,
        detail=detail,
        counterexample=counterexample,
        model=shown,
    )


def _shrink(solver: Any, obligation: Obligation, rounds: int = 64) -> Any:
    """The model of a satisfied solver, made as small as `obligation.smaller` allows."""
    model = solver.model()
    if obligation.smaller is None:
        return model
    for _ in range(rounds):
        solver.add(obligation.smaller(model))
        if solver.check() != z3.sat:
            break
        model = solver.model()
    return model


def _vacuity(obligation: Obligation, timeout_ms: int) -> str | None:
    """Why the obligation's unsat proves nothing, or None when its premises are satisfiable."""
    solver = new_solver(obligation.claim.ctx, timeout_ms)
    solver.add(*obligation.premises)
    answer = solver.check()
    if answer == z3.sat:
        return None
    if answer == z3.unsat:
        return "the premises contradict each other, so the proof is vacuous"
    return f"vacuity check: Z3 answered unknown ({solver.reason_unknown()})"


def members(bits: Iterable[int]) -> str:
    """A set of 0-based members in words, 1-based as Raft ids are: {1,3..5}."""
    ids = sorted(b + 1 for b in bits)
    runs: list[str] = []
    i = 0
    while i < len(ids):
        j = i
        while j + 1 < len(ids) and ids[j + 1] == ids[j] + 1:
            j += 1
        runs.append(str(ids[i]) if i == j else f"{ids[i]}..{ids[j]}")
        i = j + 1
    return "{" + ", ".join(runs) + "}"


def model_int(model: Any, expr: Any) -> int:
    """The integer value of `expr` in `model` (0 for an unconstrained one)."""
    return int(model.eval(expr, model_completion=True).as_long())


def model_bool(model: Any, expr: Any) -> bool:
    return bool(z3.is_true(model.eval(expr, model_completion=True)))
