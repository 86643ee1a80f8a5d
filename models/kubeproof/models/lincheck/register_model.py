"""etcd's single register, as the Jepsen etcd histories exercise it.

Theory of operation
-------------------
One register holding an int, initially nil (``None``: the key does not
exist).  Jepsen's etcd test runs three operations on it:

| op          | legal when                 | effect          | output            |
| ----------- | -------------------------- | --------------- | ----------------- |
| read        | output value == state      | none            | value (or nil)    |
| write v     | always                     | state := v      | ok                |
| cas a b  ok | state == a                 | state := b      | ok                |
| cas a b fail| state != a                 | none            | fail              |

A `:fail :cas` in a Jepsen log is an operation that ran and found the
compare false, so it constrains the state (as in Porcupine, unlike
Knossos, which drops failed operations).  A timed-out (`:info`) write or
cas is pending: it may have happened at any time after its call, or never;
when it happens, a cas still only swaps if its compare holds.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable, Iterable, Sequence
from typing import Any, Final, Literal, TypeAlias

from attrs import evolve, frozen

from kubeproof.models.sequential import ILLEGAL, IllegalT

from .history import Operation

RegisterOp = Literal["read", "write", "cas"]
_OPS: tuple[RegisterOp, ...] = ("read", "write", "cas")


class Unseen(enum.Enum):
    """The one value standing for all values no read returns and no cas expects."""

    UNSEEN = "unseen"


UNSEEN: Final = Unseen.UNSEEN
Value: TypeAlias = int | Literal[Unseen.UNSEEN] | None


@frozen
class RegisterInput:
    op: RegisterOp
    arg1: Value = None  # write: the value; cas: expected value
    arg2: Value = None  # cas: new value


@frozen
class RegisterOutput:
    ok: bool = True
    value: Value = None  # read: the value read (None: nil)


RegisterState: TypeAlias = Value


def _int(obj: Any, what: str) -> int:
    if isinstance(obj, bool) or not isinstance(obj, int):
        raise ValueError(f"{what} must be an integer, got {obj!r}")
    return obj


def _merge_unseen_values(ops: Sequence[Operation]) -> list[Operation]:
    """Write every value nobody reads or compares against as one value.

    The state is only ever tested by equality with a read's value or a
    cas's expected value.  Two values that are neither behave the same in
    every step, so renaming them all to one, `UNSEEN`, changes no verdict -- and it makes the timed-out writes of
    such values identical, which the search then treats as one choice.
    """
    observed: set[Value] = {None}
    for o in ops:
        inp: RegisterInput = o.input
        if inp.op == "read" and not o.pending:
            observed.add(o.output.value)
        elif inp.op == "cas":
            observed.add(inp.arg1)

    def rename(v: Value) -> Value:
        return v if v in observed else UNSEEN

    out: list[Operation] = []
    for o in ops:
        inp = o.input
        if inp.op == "write" and inp.arg1 not in observed:
            o = evolve(o, input=RegisterInput("write", rename(inp.arg1)))
        elif inp.op == "cas" and inp.arg2 not in observed:
            o = evolve(o, input=RegisterInput("cas", inp.arg1, rename(inp.arg2)))
        out.append(o)
    return out


class EtcdRegisterModel:
    """Porcupine's `etcd` model: read / write / cas on one nil-initialized int."""

    name = "etcd-register"

    def init(self) -> RegisterState:
        return None

    def step(
        self, state: RegisterState, input: RegisterInput, output: RegisterOutput
    ) -> RegisterState | IllegalT:
        op = input.op
        if op == "read":
            return state if output.value == state else ILLEGAL
        if op == "write":
            return input.arg1
        if output.ok:
            return input.arg2 if state == input.arg1 else ILLEGAL
        return state if state != input.arg1 else ILLEGAL

    def apply(self, state: RegisterState, input: RegisterInput) -> RegisterState:
        if input.op == "write":
            return input.arg1
        if input.op == "cas" and state == input.arg1:
            return input.arg2
        return state

    def run(
        self, state: RegisterState, input: RegisterInput
    ) -> tuple[RegisterState, RegisterOutput]:
        if input.op == "read":
            return state, RegisterOutput(True, state)
        if input.op == "write":
            return input.arg1, RegisterOutput(True)
        if state == input.arg1:
            return input.arg2, RegisterOutput(True)
        return state, RegisterOutput(False)

    def mutates(self, input: RegisterInput, output: RegisterOutput | None) -> bool:
        if input.op == "cas":
            return output is None or output.ok  # a failed cas changed nothing
        return input.op == "write"

    def partition_key(self, input: RegisterInput) -> Hashable:
        return None

    def may_become_legal(
        self,
        state: RegisterState,
        input: RegisterInput,
        output: RegisterOutput,
        writers: Iterable[RegisterInput],
    ) -> bool:
        # A read of v, or a successful cas expecting v, needs some write of v
        # (or a cas to v) still to come; a failed cas needs any change at all.
        if input.op == "cas" and not output.ok:
            return any(True for _ in writers)
        want = output.value if input.op == "read" else input.arg1
        return any(
            (w.op == "write" and w.arg1 == want) or (w.op == "cas" and w.arg2 == want)
            for w in writers
        )

    def simplify(self, ops: Sequence[Operation]) -> Sequence[Operation]:
        return _merge_unseen_values(ops)

    def describe_operation(self, input: RegisterInput, output: RegisterOutput | None) -> str:
        if input.op == "read":
            if output is None:
                return "read() -> ?"
            return f"read() -> {'nil' if output.value is None else output.value}"
        if input.op == "write":
            return f"write({input.arg1})"
        result = "?" if output is None else ("ok" if output.ok else "fail")
        return f"cas({input.arg1}, {input.arg2}) -> {result}"

    def describe_state(self, state: RegisterState) -> str:
        if state is UNSEEN:
            return "a value no read returns"
        return "nil" if state is None else str(state)

    def input_from_json(self, obj: Any) -> RegisterInput:
        if not isinstance(obj, dict):
            raise ValueError(f"register input must be an object, got {obj!r}")
        op = obj.get("op")
        if op == "read":
            return RegisterInput("read")
        if op == "write":
            return RegisterInput("write", _int(obj.get("value"), "write value"))
        if op == "cas":
            return RegisterInput(
                "cas", _int(obj.get("expect"), "cas expect"), _int(obj.get("value"), "cas value")
            )
        raise ValueError(f"register op must be one of {', '.join(_OPS)}, got {op!r}")

    def output_from_json(self, input: RegisterInput, obj: Any) -> RegisterOutput:
        if not isinstance(obj, dict):
            raise ValueError(f"register output must be an object, got {obj!r}")
        if input.op == "read":
            value = obj.get("value")
            return RegisterOutput(True, None if value is None else _int(value, "read value"))
        ok = obj.get("ok", True)
        if not isinstance(ok, bool):
            raise ValueError(f"register output 'ok' must be true or false, got {ok!r}")
        return RegisterOutput(ok)

    def input_to_json(self, input: RegisterInput) -> Any:
        if input.op == "read":
            return {"op": "read"}
        if input.op == "write":
            return {"op": "write", "value": input.arg1}
        return {"op": "cas", "expect": input.arg1, "value": input.arg2}

    def output_to_json(self, output: RegisterOutput) -> Any:
        return {"ok": output.ok, "value": output.value}
