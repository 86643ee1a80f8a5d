"""Forking a simulated cluster: a deep copy that shares what cannot change.

Theory of operation
-------------------
The model checker makes one successor state per transition by copying the
whole harness cluster (members, nodes, storages, network, checkers and
their histories) and applying one action to the copy.  `copy.deepcopy`
does that but costs milliseconds, because it also copies every frozen
value (entries, messages, hard states) and goes through the generic
`__reduce_ex__` protocol for every object.  `fork` is a deep copy that
knows which objects are values:

| object                                       | fork                                     |
| -------------------------------------------- | ---------------------------------------- |
| int, str, bytes, None, frozenset, ...        | shared                                   |
| enum members, classes, functions, modules    | shared                                   |
| frozen `attrs` instances (Entry, Message ...) | shared: they cannot be changed           |
| `networkx` graphs                            | shared: only a partition (which replaces |
|                                              | the graph) or a join (which edits it)    |
|                                              | changes the harness's reachability       |
|                                              | graph, and the model checker does        |
|                                              | neither                                  |
| `random.Random`                              | a new generator in the same state        |
| list, dict, set, deque, tuple                | copied, elements forked                  |
| bound method                                 | rebound to the fork of its object        |
| plain object (`__dict__` and/or `__slots__`) | a new instance, every attribute forked   |
| anything else                                | `copy.deepcopy`, with the same memo      |

Aliasing is preserved (a memo maps each original to its copy, so a node
seen through a member and through a checker's tracker is copied once), and
`fork(obj, shared=...)` pre-seeds the memo with objects that must *not* be
copied: the model checker passes the members an action will not touch, so
that their nodes and disks are shared between a state and its successor.
That is safe because every action changes only the members it names; a
member shared today is copied the first time an action touches it.

A copier per class is generated once (straight-line code for its slots),
which is what makes a fork of a three-node cluster with its checkers cost
a fraction of a millisecond.
"""

from __future__ import annotations

import copy
import enum
import random
import types
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import networkx as nx

T = TypeVar("T")

Copier = Callable[[Any, dict[int, Any]], Any]

_ATOMIC: set[type] = {
    int,
    float,
    bool,
    complex,
    str,
    bytes,
    type(None),
    range,
    frozenset,
    type,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.ModuleType,
}
"""Types whose instances are shared, never copied (grows as value types are met)."""

_COPIERS: dict[type, Copier] = {}


def fork(obj: T, shared: Iterable[object] = ()) -> T:
    """A deep copy of `obj` that shares values, and shares every object in `shared`."""
    memo: dict[int, Any] = {id(o): o for o in shared}
    # deepcopy (the fallback) keeps originals alive in memo[id(memo)]; seeding
    # it here keeps that contract for the objects we share.
    memo[id(memo)] = list(shared)
    result: T = _fork(obj, memo)
    return result


def _fork(x: Any, memo: dict[int, Any]) -> Any:
    t = type(x)
    if t in _ATOMIC:
        return x
    y = memo.get(id(x))
    if y is not None:
        return y
    c = _COPIERS.get(t)
    if c is None:
        c = _copier_for(t)
        if c is None:
            return x
    return c(x, memo)


def _is_value_type(t: type) -> bool:
    if issubclass(t, (enum.Enum, nx.Graph)):
        return True
    # attrs installs this function as __setattr__ on frozen classes.
    return getattr(t.__setattr__, "__name__", "") == "_frozen_setattrs"


def _copier_for(t: type) -> Copier | None:
    """Decide once per class; None means "a value type: share it"."""
    if _is_value_type(t):
        _ATOMIC.add(t)
        return None
    c: Copier
    if t is list:
        c = _copy_list
    elif t is dict:
        c = _copy_dict
    elif t is set:
        c = _copy_set
    elif t is tuple:
        c = _copy_tuple
    elif t is deque:
        c = _copy_deque
    elif t is types.MethodType:
        c = _copy_method
    elif issubclass(t, random.Random):
        c = _copy_random
    elif _plain(t):
        c = _object_copier(t)
    else:
        c = _deepcopy
    _COPIERS[t] = c
    return c


_CONTAINERS = (list, dict, set, tuple, deque, bytearray, frozenset)


def _plain(t: type) -> bool:
    """An ordinary Python class: attributes in __dict__ and/or __slots__, nothing exotic."""
    if t.__module__ == "builtins" or any(b in _CONTAINERS for b in t.__mro__):
        return False
    return (
        getattr(t, "__reduce_ex__") is getattr(object, "__reduce_ex__")  # noqa: B009
        and getattr(t, "__reduce__") is getattr(object, "__reduce__")  # noqa: B009
        and getattr(t, "__deepcopy__", None) is None
    )


def _all_slots(t: type) -> tuple[str, ...]:
    out: list[str] = []
    for k in t.__mro__:
        s = k.__dict__.get("__slots__", ())
        for name in (s,) if isinstance(s, str) else s:
            if name in ("__dict__", "__weakref__") or name in out:
                continue
            # A private slot name is mangled in the class that declares it.
            if name.startswith("__") and not name.endswith("__"):
                name = f"_{k.__name__.lstrip('_')}{name}"
            out.append(name)
    return tuple(out)


def _object_copier(t: type) -> Copier:
    """Generate straight-line copy code for class t (its slots, then its __dict__)."""
    # A plain attribute store is a bytecode; object.__setattr__ is a call.  The store
    # is only safe when the class does not intercept it (attrs' validators do).
    direct = getattr(t, "__setattr__") is getattr(object, "__setattr__")  # noqa: B009
    lines = ["def copier(x, memo):", "    y = new(t)", "    memo[id(x)] = y"]
    for name in _all_slots(t):
        if not name.isidentifier():  # pragma: no cover - slots are identifiers
            raise TypeError(f"cannot fork {t.__qualname__}: slot {name!r}")
        store = (
            f"y.{name} = v if type(v) in A else f(v, memo)"
            if direct
            else f"put(y, {name!r}, v if type(v) in A else f(v, memo))"
        )
        lines += [
            "    try:",
            f"        v = x.{name}",
            "    except AttributeError:",
            "        pass",
            "    else:",
            f"        {store}",
        ]
    if t.__dictoffset__ != 0:
        lines += [
            "    d = dict(x.__dict__)",
            "    for k, v in d.items():",
            "        if type(v) not in A:",
            "            d[k] = f(v, memo)",
            "    put(y, '__dict__', d)",
        ]
    lines.append("    return y")
    namespace: dict[str, Any] = {
        "new": t.__new__,
        "t": t,
        "A": _ATOMIC,
        "f": _fork,
        "put": object.__setattr__,
    }
    exec("\n".join(lines), namespace)
    copier: Copier = namespace["copier"]
    return copier


def _copy_list(x: list[Any], memo: dict[int, Any]) -> list[Any]:
    y: list[Any] = []
    memo[id(x)] = y
    a = _ATOMIC
    y.extend([v if type(v) in a else _fork(v, memo) for v in x])
    return y


def _copy_dict(x: dict[Any, Any], memo: dict[int, Any]) -> dict[Any, Any]:
    # Keys are hashable values in everything the harness keeps; values are forked.
    y = dict(x)
    memo[id(x)] = y
    a = _ATOMIC
    for k, v in x.items():
        if type(v) not in a:
            y[k] = _fork(v, memo)
    return y


def _copy_set(x: set[Any], memo: dict[int, Any]) -> set[Any]:
    y = set(x)  # elements are hashable values
    memo[id(x)] = y
    return y


def _copy_tuple(x: tuple[Any, ...], memo: dict[int, Any]) -> tuple[Any, ...]:
    a = _ATOMIC
    for v in x:
        if type(v) not in a:
            break
    else:
        return x  # a tuple of values is a value (the common case: records in checkers)
    vals = [v if type(v) in a else _fork(v, memo) for v in x]
    y = x
    for new, old in zip(vals, x, strict=True):
        if new is not old:
            y = tuple(vals)
            break
    memo[id(x)] = y
    return y


def _copy_deque(x: deque[Any], memo: dict[int, Any]) -> deque[Any]:
    y: deque[Any] = deque(maxlen=x.maxlen)
    memo[id(x)] = y
    a = _ATOMIC
    y.extend([v if type(v) in a else _fork(v, memo) for v in x])
    return y


def _copy_method(x: types.MethodType, memo: dict[int, Any]) -> types.MethodType:
    y = types.MethodType(x.__func__, _fork(x.__self__, memo))
    memo[id(x)] = y
    return y


def _copy_random(x: random.Random, memo: dict[int, Any]) -> random.Random:
    y = type(x).__new__(type(x))
    y.setstate(x.getstate())
    memo[id(x)] = y
    return y


def _deepcopy(x: Any, memo: dict[int, Any]) -> Any:
    return copy.deepcopy(x, memo)
