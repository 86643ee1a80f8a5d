"""Porcupine's key-value test model: get, put and append on string keys.

Theory of operation
-------------------
Each key holds a string, initially ``""``.  The operations and what a
sequential store answers:

| op     | input            | effect              | output                 |
| ------ | ---------------- | ------------------- | ---------------------- |
| get    | key              | none                | the key's value        |
| put    | key, value       | value := value      | none (``None``)        |
| append | key, value       | value := value + v  | none (``None``)        |

Keys are independent, so `kv` partitions the history by key and its state
is one string (P-compositionality).  `kv-nopartition` checks the whole map
at once (state: a sorted tuple of (key, value) pairs, empty values left
out so that equal maps are equal tuples); it gives the same verdicts and
exists to cross-check the partitioning.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import Any, Literal

from attrs import frozen

from kubeproof.models.sequential import ILLEGAL, IllegalT

from .history import Operation

KvOp = Literal["get", "put", "append"]
_OPS: tuple[KvOp, ...] = ("get", "put", "append")


@frozen
class KvInput:
    op: KvOp
    key: str
    value: str = ""


def _str(obj: Any, what: str) -> str:
    if not isinstance(obj, str):
        raise ValueError(f"{what} must be a string, got {obj!r}")
    return obj


def _input_from_json(obj: Any) -> KvInput:
    if not isinstance(obj, dict):
        raise ValueError(f"kv input must be an object, got {obj!r}")
    op = obj.get("op")
    if op not in _OPS:
        raise ValueError(f"kv op must be one of {', '.join(_OPS)}, got {op!r}")
    key = _str(obj.get("key"), "kv key")
    if op == "get":
        return KvInput("get", key)
    value = _str(obj.get("value"), f"kv {op} value")
    return KvInput(op, key, value)


def _output_from_json(inp: KvInput, obj: Any) -> str | None:
    if inp.op == "get":
        return _str(obj, "kv get output")
    if obj is not None:
        raise ValueError(f"kv {inp.op} has no output, got {obj!r}")
    return None


def _describe(inp: KvInput, output: str | None) -> str:
    if inp.op == "get":
        shown = "?" if output is None else repr(output)
        return f"get({inp.key!r}) -> {shown}"
    return f"{inp.op}({inp.key!r}, {inp.value!r})"


class KvModel:
    """Per-key string store (partitioned by key)."""

    name = "kv"

    def init(self) -> str:
        return ""

    def step(self, state: str, input: KvInput, output: str | None) -> str | IllegalT:
        op = input.op
        if op == "get":
            return state if output == state else ILLEGAL
        if op == "put":
            return input.value
        return state + input.value

    def apply(self, state: str, input: KvInput) -> str:
        if input.op == "put":
            return input.value
        if input.op == "append":
            return state + input.value
        return state

    def run(self, state: str, input: KvInput) -> tuple[str, str | None]:
        if input.op == "get":
            return state, state
        return self.apply(state, input), None

    def mutates(self, input: KvInput, output: str | None) -> bool:
        return input.op != "get"

    def partition_key(self, input: KvInput) -> Hashable:
        return input.key

    def may_become_legal(
        self, state: str, input: KvInput, output: str | None, writers: Iterable[KvInput]
    ) -> bool:
        # Only a get can be illegal.  The value it must see is the current value,
        # or the value of a put still to come, followed by appends still to come.
        assert output is not None
        return _may_spell(state, output, writers)

    def simplify(self, ops: Sequence[Operation]) -> Sequence[Operation]:
        return _drop_unseen_writes(ops)

    def describe_operation(self, input: KvInput, output: str | None) -> str:
        return _describe(input, output)

    def describe_state(self, state: str) -> str:
        return repr(state)

    def input_from_json(self, obj: Any) -> KvInput:
        return _input_from_json(obj)

    def output_from_json(self, input: KvInput, obj: Any) -> str | None:
        return _output_from_json(input, obj)

    def input_to_json(self, input: KvInput) -> Any:
        if input.op == "get":
            return {"op": "get", "key": input.key}
        return {"op": input.op, "key": input.key, "value": input.value}

    def output_to_json(self, output: str | None) -> Any:
        return output


def _spelled(text: str, start: int, words: set[str]) -> bool:
    """Can text[start:] be written as a sequence of `words` (reuse allowed)?"""
    # Allowing reuse over-approximates "each append at most once": still a
    # sound reason to give up, and a linear-time one.  Words are looked up
    # by length, a handful of distinct lengths in practice.
    end = len(text)
    if start == end:
        return True
    lengths = {len(w) for w in words}
    todo = [start]
    seen = {start}
    while todo:
        i = todo.pop()
        for n in lengths:
            j = i + n
            if j <= end and j not in seen and text[i:j] in words:
                if j == end:
                    return True
                seen.add(j)
                todo.append(j)
    return False


def _may_spell(state: str, output: str, writers: Iterable[KvInput]) -> bool:
    appends: set[str] = set()
    starts = [state]
    for w in writers:
        if w.op == "append":
            if w.value:
                appends.add(w.value)
        elif w.op == "put":
            starts.append(w.value)
    return any(output.startswith(s) and _spelled(output, len(s), appends) for s in starts)


def _drop_unseen_writes(ops: Sequence[Operation]) -> list[Operation]:
    """Drop pending writes no get could have seen; they cannot matter.

    Once an append of v takes effect, v stays in the value until a put, so
    every get in between returns a value containing v; likewise every get
    after a put of w, until the next put, returns a value starting with w.
    If no get ever shows v (or w), no get can lie between that write and
    the next put, and leaving the write out changes nothing any get sees.
    """
    seen = [o.output for o in ops if not o.pending and o.input.op == "get"]

    def unseen(op: Operation) -> bool:
        inp: KvInput = op.input
        if not op.pending or not inp.value:
            return False
        if inp.op == "append":
            return not any(inp.value in g for g in seen)
        if inp.op == "put":
            return not any(g.startswith(inp.value) for g in seen)
        return False

    return [o for o in ops if not unseen(o)]


KvMap = tuple[tuple[str, str], ...]


def _set(state: KvMap, key: str, value: str) -> KvMap:
    # Sorted tuple without empty values: a canonical, hashable map.
    items = dict(state)
    if value:
        items[key] = value
    else:
        items.pop(key, None)
    return tuple(sorted(items.items()))


def _get(state: KvMap, key: str) -> str:
    for k, v in state:
        if k == key:
            return v
    return ""


class KvNoPartitionModel:
    """The same store checked as one object (state: the whole map)."""

    name = "kv-nopartition"

    def init(self) -> KvMap:
        return ()

    def step(self, state: KvMap, input: KvInput, output: str | None) -> KvMap | IllegalT:
        if input.op == "get":
            return state if output == _get(state, input.key) else ILLEGAL
        return self.apply(state, input)

    def apply(self, state: KvMap, input: KvInput) -> KvMap:
        if input.op == "put":
            return _set(state, input.key, input.value)
        if input.op == "append":
            return _set(state, input.key, _get(state, input.key) + input.value)
        return state

    def run(self, state: KvMap, input: KvInput) -> tuple[KvMap, str | None]:
        if input.op == "get":
            return state, _get(state, input.key)
        return self.apply(state, input), None

    def mutates(self, input: KvInput, output: str | None) -> bool:
        return input.op != "get"

    def partition_key(self, input: KvInput) -> Hashable:
        return None

    def may_become_legal(
        self, state: KvMap, input: KvInput, output: str | None, writers: Iterable[KvInput]
    ) -> bool:
        assert output is not None
        key = input.key
        return _may_spell(_get(state, key), output, (w for w in writers if w.key == key))

    def simplify(self, ops: Sequence[Operation]) -> Sequence[Operation]:
        by_key: dict[str, list[Operation]] = {}
        for o in ops:
            by_key.setdefault(o.input.key, []).append(o)
        kept = {o.id for group in by_key.values() for o in _drop_unseen_writes(group)}
        return [o for o in ops if o.id in kept]

    def describe_operation(self, input: KvInput, output: str | None) -> str:
        return _describe(input, output)

    def describe_state(self, state: KvMap) -> str:
        return repr(dict(state))

    def input_from_json(self, obj: Any) -> KvInput:
        return _input_from_json(obj)

    def output_from_json(self, input: KvInput, obj: Any) -> str | None:
        return _output_from_json(input, obj)

    def input_to_json(self, input: KvInput) -> Any:
        return KvModel().input_to_json(input)

    def output_to_json(self, output: str | None) -> Any:
        return output
