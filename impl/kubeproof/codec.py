"""The one JSON codec for kubeproof's value types.

Theory of operation
-------------------
Every value that crosses a boundary (a Raft `Message`, an `Entry`, a
`HardState`, a `Snapshot`, a harness `SimConfig` ...) is a frozen `attrs`
class.  One `cattrs` converter turns any of them into plain JSON-able data
(dicts, lists, str, int, bool, None) and back; traces and adapters share it,
so a value means the same thing everywhere.

The rules, applied recursively:

| Python value            | JSON                                           |
| ----------------------- | ---------------------------------------------- |
| attrs instance          | object; fields equal to their default omitted  |
| field named `from_`     | key `"from"` (a trailing `_` is dropped)       |
| enum member             | its value (etcd's name, e.g. `"MsgApp"`)       |
| bytes                   | standard base64 string                         |
| tuple / list / frozenset| array (frozensets sorted, so output is stable) |
| int / str / bool / None | themselves                                     |

Decoding is strict: a wrong type (a string where an int belongs, a bool
where an int belongs, bad base64), an unknown key or a missing required
field raises `CodecError` naming the class and the field.  Omitting
defaults keeps traces short; decoding restores them.

`dumps`/`loads` add the canonical text form: keys sorted, no spaces,
ASCII only, so equal values give byte-identical text.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
from collections.abc import Callable
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override
from cattrs.v import format_exception

T = TypeVar("T")

__all__ = [
    "CodecError",
    "canonical_json",
    "converter",
    "decode",
    "dumps",
    "encode",
    "encoder",
    "loads",
]


class CodecError(ValueError):
    """Data that does not decode into the requested type; the message says where."""


def _json_name(name: str) -> str:
    # `from_` exists only because `from` is a Python keyword; JSON has no such limit.
    return name[:-1] if name.endswith("_") and not name.startswith("_") else name


def _strict(kind: type[Any]) -> Callable[[Any, Any], Any]:
    def structure(value: Any, _: Any) -> Any:
        # `type(...) is` rejects bool for int (bool subclasses int) and int for bool.
        if type(value) is not kind:
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__} {value!r}")
        return value

    return structure


def _structure_float(value: Any, _: Any) -> float:
    if type(value) not in (int, float):
        raise TypeError(f"expected a number, got {type(value).__name__} {value!r}")
    return float(value)


def _encode_bytes(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _decode_bytes(value: Any, _: Any) -> bytes:
    if not isinstance(value, str):
        raise TypeError(f"expected a base64 string, got {type(value).__name__} {value!r}")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as e:
        raise ValueError(f"invalid base64 {value!r}: {e}") from None


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(
        omit_if_default=True,
        forbid_extra_keys=True,
        unstruct_collection_overrides={tuple: list, frozenset: sorted, set: sorted},
    )
    conv.register_unstructure_hook(bytes, _encode_bytes)
    conv.register_structure_hook(bytes, _decode_bytes)
    for kind in (int, str, bool):
        conv.register_structure_hook(kind, _strict(kind))
    conv.register_structure_hook(float, _structure_float)

    def unstructure_factory(cl: type[Any]) -> Callable[[Any], dict[str, Any]]:
        renames: dict[str, Any] = {
            f.name: override(rename=_json_name(f.name))
            for f in attrs.fields(cl)
            if _json_name(f.name) != f.name
        }
        return make_dict_unstructure_fn(cl, conv, _cattrs_omit_if_default=True, **renames)

    def structure_factory(cl: type[Any]) -> Callable[[Any, Any], Any]:
        renames: dict[str, Any] = {
            f.name: override(rename=_json_name(f.name))
            for f in attrs.fields(cl)
            if _json_name(f.name) != f.name
        }
        fn = make_dict_structure_fn(cl, conv, _cattrs_forbid_extra_keys=True, **renames)

        def structure(value: Any, typ: Any) -> Any:
            if not isinstance(value, dict):
                raise TypeError(f"expected an object for {cl.__name__}, got {value!r}")
            return fn(value, typ)

        return structure

    conv.register_unstructure_hook_factory(attrs.has, unstructure_factory)
    conv.register_structure_hook_factory(attrs.has, structure_factory)
    return conv


converter = _make_converter()
"""The shared converter; register hooks for new types here, never elsewhere."""


def _explain(exc: BaseException, typ: type | None) -> str:
    # cattrs' default text drops our own messages ("expected int, got str '3'").
    base = format_exception(exc, typ)
    if isinstance(exc, (ValueError, TypeError)) and not isinstance(exc, KeyError) and exc.args:
        return f"{base}: {exc}"
    return base


def encode(value: Any) -> Any:
    """Any supported value -> plain JSON-able data (see the table above)."""
    if isinstance(value, enum.Enum):
        return value.value
    return converter.unstructure(value)


def encoder(cls: type[T]) -> Callable[[T], Any]:
    """The converter's encoding function for `cls`, looked up once (for hot loops)."""
    hook: Callable[[T], Any] = converter.get_unstructure_hook(cls)
    return hook


def decode(data: Any, cls: type[T]) -> T:
    """JSON-able data -> an instance of `cls`; raises `CodecError` saying what is wrong."""
    try:
        return converter.structure(data, cls)
    except cattrs.BaseValidationError as e:
        detail = "; ".join(cattrs.transform_error(e, path=cls.__name__, format_exception=_explain))
        raise CodecError(f"cannot decode {cls.__name__}: {detail}") from None
    except (TypeError, ValueError, KeyError) as e:
        raise CodecError(f"cannot decode {cls.__name__}: {e}") from None


def canonical_json(data: Any) -> str:
    """Canonical text of already JSON-able data: sorted keys, compact, ASCII."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def dumps(value: Any) -> str:
    """A value's canonical JSON text."""
    return canonical_json(encode(value))


def loads(text: str, cls: type[T]) -> T:
    """Canonical (or any valid) JSON text -> an instance of `cls`."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise CodecError(f"not JSON: {e}") from None
    return decode(data, cls)
