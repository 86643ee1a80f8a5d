"""Reading history files: Porcupine's kv logs, Jepsen etcd logs, our JSON Lines.

Theory of operation
-------------------
Three formats, told apart by their first non-blank line:

* ``{:process 0, :type :invoke, :f :get, :key "1", :value nil}`` -- the
  EDN maps of Porcupine's kv test data (model `kv`).
* ``INFO  jepsen.util - 3<TAB>:invoke<TAB>:cas<TAB>[1 4]`` -- Jepsen's etcd
  log (model `etcd-register`); tabs or runs of spaces separate fields.
* ``{"format": "kubeproof-history", ...}`` -- kubeproof's own JSON Lines
  (any model; see docs/lincheck.md): a header line, then one operation a
  line with its call and return times, input and output.

Both Jepsen-style logs are event streams: an ``:invoke`` opens an operation
for its process, the next ``:ok``/``:fail``/``:info`` of that process closes
it, and times are line numbers.  Their meanings, as Jepsen defines them:

| completion | meaning                          | here                               |
| ---------- | -------------------------------- | ---------------------------------- |
| ``:ok``    | it happened, with this result    | completed operation                |
| ``:fail``  | it certainly did not happen      | dropped; but a failed cas *did*    |
|            |                                  | run and found the compare false    |
| ``:info``  | unknown (timed out)              | pending: may happen later, or never|
| none       | the log ended first              | pending                            |

An operation's id is the line number of its invoke, so a witness names
lines of the file.  Any line that cannot be read raises `HistoryFormatError`
naming the line and what was expected.
"""

from __future__ import annotations

import json
import re
from collections.abc import Hashable
from typing import Any

from attrs import frozen

from kubeproof.models.sequential import AnyModel

from .history import History, HistoryError, Operation
from .kv_model import KvInput
from .register_model import RegisterInput, RegisterOutput

JSON_FORMAT = "kubeproof-history"
JSON_VERSION = 1


class HistoryFormatError(ValueError):
    """A history file that cannot be read; the message names the line."""

    def __init__(self, source: str, line: int | None, message: str) -> None:
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {message}")
        self.source = source
        self.line = line


@frozen
class ParsedHistory:
    """A history as read from a file, with the format and the model it implies."""

    history: History
    format: str
    model: str | None  # the model the format implies (None: not stated)


@frozen
class _Open:
    line: int
    f: str
    input: Any
    key: str | None = None


FORMATS = {
    "porcupine-kv": "kv",
    "jepsen-etcd": "etcd-register",
    "json": None,
}
"""Format name -> the model it implies (JSON names its model in its header)."""


def detect_format(text: str) -> str | None:
    """The format of `text`, judged by its first non-blank line (None: unknown)."""
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("{:"):
            return "porcupine-kv"
        if "jepsen.util" in line:
            return "jepsen-etcd"
        if line.startswith("{"):
            return "json"
        return None
    return None


def parse_history(
    text: str, source: str = "<history>", model: AnyModel | None = None
) -> ParsedHistory:
    """Read a history in any known format; JSON needs `model` unless its header names one."""
    fmt = detect_format(text)
    if fmt is None:
        if not text.strip():
            raise HistoryFormatError(source, None, "the file is empty: no history to check")
        first = next(i for i, raw in enumerate(text.splitlines(), 1) if raw.strip())
        raise HistoryFormatError(
            source,
            first,
            "unknown format: expected a Porcupine kv map ('{:process ...}'), a Jepsen log "
            "line ('INFO  jepsen.util - ...') or a kubeproof JSON header",
        )
    if fmt == "porcupine-kv":
        return ParsedHistory(parse_porcupine_kv(text, source), fmt, "kv")
    if fmt == "jepsen-etcd":
        return ParsedHistory(parse_jepsen_etcd(text, source), fmt, "etcd-register")
    return parse_json_history(text, source, model)


# --- Porcupine kv (EDN maps) ------------------------------------------------

_EDN_STRING = r'"(?:[^"\\]|\\.)*"'
_KV_LINE = re.compile(
    r"^\{:process (?P<process>-?\d+), :type :(?P<type>[a-z]+), :f :(?P<f>[a-z]+), "
    rf":key (?P<key>{_EDN_STRING}), :value (?P<value>nil|{_EDN_STRING})\}}$"
)
_EDN_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r"}


def _edn_string(lit: str, source: str, line: int) -> str:
    out: list[str] = []
    i = 1
    while i < len(lit) - 1:
        ch = lit[i]
        if ch == "\\":
            esc = lit[i + 1]
            if esc not in _EDN_ESCAPES:
                raise HistoryFormatError(source, line, f"unknown string escape \\{esc}")
            out.append(_EDN_ESCAPES[esc])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def parse_porcupine_kv(text: str, source: str = "<history>") -> History:
    """Porcupine's kv logs: get/put/append maps, one per line (times: line numbers)."""
    open_ops: dict[int, _Open] = {}
    ops: list[Operation] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        m = _KV_LINE.match(line)
        if m is None:
            raise HistoryFormatError(
                source,
                lineno,
                "not a kv map: expected '{:process P, :type :invoke|:ok|:fail|:info, "
                ':f :get|:put|:append, :key "K", :value "V"|nil}\'',
            )
        process = int(m["process"])
        typ, f = m["type"], m["f"]
        if f not in ("get", "put", "append"):
            raise HistoryFormatError(source, lineno, f"unknown function :{f} (get, put, append)")
        key = _edn_string(m["key"], source, lineno)
        raw_value = m["value"]
        value = None if raw_value == "nil" else _edn_string(raw_value, source, lineno)
        if typ == "invoke":
            _no_open(open_ops, process, source, lineno)
            if f == "get":
                inp = KvInput("get", key)
            else:
                if value is None:
                    raise HistoryFormatError(source, lineno, f":{f} needs a string :value")
                inp = KvInput(f, key, value)  # type: ignore[arg-type]
            open_ops[process] = _Open(lineno, f, inp, key)
            continue
        if typ not in ("ok", "fail", "info"):
            raise HistoryFormatError(source, lineno, f"unknown :type :{typ}")
        op = _close(open_ops, process, f, source, lineno)
        if op.key != key:
            raise HistoryFormatError(
                source, lineno, f"key {key!r} differs from {op.key!r} invoked at line {op.line}"
            )
        if typ == "fail":
            continue  # Jepsen: a failed operation did not happen
        if typ == "info":
            ops.append(Operation(op.line, process, op.line, op.input))
            continue
        output = (value or "") if f == "get" else None
        ops.append(Operation(op.line, process, op.line, op.input, lineno, output))
    ops.extend(Operation(o.line, p, o.line, o.input) for p, o in open_ops.items())
    return History(ops)


def _no_open(open_ops: dict[Any, _Open], process: Hashable, source: str, lineno: int) -> None:
    if process in open_ops:
        raise HistoryFormatError(
            source,
            lineno,
            f"process {process} invokes again while its operation from line "
            f"{open_ops[process].line} is still open",
        )


def _close(
    open_ops: dict[Any, _Open], process: Hashable, f: str, source: str, lineno: int
) -> _Open:
    op = open_ops.pop(process, None)
    if op is None:
        raise HistoryFormatError(
            source, lineno, f"process {process} completes an operation it never invoked"
        )
    if op.f != f:
        raise HistoryFormatError(
            source, lineno, f"completes :{f} but the open operation (line {op.line}) is :{op.f}"
        )
    return op


# --- Jepsen etcd register logs ----------------------------------------------

_JEPSEN_LINE = re.compile(
    r"^INFO\s+jepsen\.util\s+-\s+(?P<process>\S+)\s+:(?P<type>\S+)\s+:(?P<f>\S+)(?:\s+(?P<value>.*?))?\s*$"
)
_CAS_VALUE = re.compile(r"^\[\s*(-?\d+)\s+(-?\d+)\s*\]$")


def _jepsen_int(value: str, source: str, lineno: int, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise HistoryFormatError(
            source, lineno, f"{what} must be an integer, got {value!r}"
        ) from None


def _jepsen_cas(value: str, source: str, lineno: int) -> tuple[int, int]:
    m = _CAS_VALUE.match(value)
    if m is None:
        raise HistoryFormatError(
            source, lineno, f"cas value must be '[expected new]', got {value!r}"
        )
    return int(m[1]), int(m[2])


def parse_jepsen_etcd(text: str, source: str = "<history>") -> History:
    """Jepsen etcd logs: read/write/cas on one register (times: line numbers)."""
    open_ops: dict[str, _Open] = {}
    ops: list[Operation] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        m = _JEPSEN_LINE.match(line)
        if m is None:
            raise HistoryFormatError(
                source,
                lineno,
                "not a Jepsen operation line: expected "
                "'INFO  jepsen.util - PROCESS :invoke|:ok|:fail|:info :read|:write|:cas VALUE'",
            )
        process, typ, f = m["process"], m["type"], m["f"]
        value = (m["value"] or "").strip()
        if process.startswith(":"):
            continue  # :nemesis and other non-client processes
        if not process.lstrip("-").isdigit():
            raise HistoryFormatError(source, lineno, f"process must be an integer, got {process!r}")
        if f not in ("read", "write", "cas"):
            raise HistoryFormatError(source, lineno, f"unknown function :{f} (read, write, cas)")
        if typ == "invoke":
            _no_open(open_ops, process, source, lineno)
            if f == "read":
                inp = RegisterInput("read")
            elif f == "write":
                inp = RegisterInput("write", _jepsen_int(value, source, lineno, "write value"))
            else:
                a, b = _jepsen_cas(value, source, lineno)
                inp = RegisterInput("cas", a, b)
            open_ops[process] = _Open(lineno, f, inp)
            continue
        if typ not in ("ok", "fail", "info"):
            raise HistoryFormatError(
                source, lineno, f"unknown :type :{typ} (invoke, ok, fail, info)"
            )
        op = _close(open_ops, process, f, source, lineno)
        client = int(process)
        if typ == "info" or value == ":timed-out":
            # Unknown outcome; a timed-out read is pending too (and then ignored).
            ops.append(Operation(op.line, client, op.line, op.input))
            continue
        if typ == "fail":
            if f == "cas":
                # The cas ran and its compare was false: it constrains the state.
                ops.append(
                    Operation(op.line, client, op.line, op.input, lineno, RegisterOutput(False))
                )
            continue  # any other :fail did not happen
        if f == "read":
            read = None if value == "nil" else _jepsen_int(value, source, lineno, "read value")
            out = RegisterOutput(True, read)
        else:
            out = RegisterOutput(True)
        ops.append(Operation(op.line, client, op.line, op.input, lineno, out))
    ops.extend(Operation(o.line, int(p), o.line, o.input) for p, o in open_ops.items())
    return History(ops)


# --- kubeproof JSON Lines ---------------------------------------------------


def parse_json_history(
    text: str, source: str = "<history>", model: AnyModel | None = None
) -> ParsedHistory:
    """kubeproof's JSON Lines history (docs/lincheck.md); `model` decodes inputs."""
    from .registry import MODELS  # the registry imports this module's users, not us

    lines = [(n, raw.strip()) for n, raw in enumerate(text.splitlines(), 1) if raw.strip()]
    if not lines:
        raise HistoryFormatError(source, None, "the file is empty: no history to check")
    head_line, head_text = lines[0]
    header = _json_object(head_text, source, head_line)
    if header.get("format") != JSON_FORMAT:
        raise HistoryFormatError(
            source, head_line, f'the first line must be a header with "format": "{JSON_FORMAT}"'
        )
    if header.get("version") != JSON_VERSION:
        raise HistoryFormatError(
            source,
            head_line,
            f"unsupported version {header.get('version')!r} (this reads {JSON_VERSION})",
        )
    named = header.get("model")
    if named is not None and named not in MODELS:
        raise HistoryFormatError(
            source, head_line, f"unknown model {named!r} (known: {', '.join(sorted(MODELS))})"
        )
    if model is None:
        if named is None:
            raise HistoryFormatError(source, head_line, "the header names no model: give --model")
        model = MODELS[named]
    ops: list[Operation] = []
    ids: dict[int, int] = {}
    for index, (lineno, raw) in enumerate(lines[1:]):
        obj = _json_object(raw, source, lineno)
        try:
            op = _json_operation(obj, index, model)
        except (ValueError, TypeError) as e:
            raise HistoryFormatError(source, lineno, str(e)) from None
        if op.id in ids:
            raise HistoryFormatError(
                source, lineno, f"id {op.id} already used on line {ids[op.id]}"
            )
        ids[op.id] = lineno
        ops.append(op)
    return ParsedHistory(History(ops), "json", named)


def _json_object(raw: str, source: str, lineno: int) -> dict[str, Any]:
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as e:
        raise HistoryFormatError(
            source, lineno, f"invalid JSON: {e.msg} at column {e.colno}"
        ) from None
    if not isinstance(obj, dict):
        raise HistoryFormatError(source, lineno, "expected a JSON object")
    return obj


_OP_FIELDS = {"id", "client", "call", "return", "input", "output"}


def _json_operation(obj: dict[str, Any], index: int, model: AnyModel) -> Operation:
    extra = set(obj) - _OP_FIELDS
    if extra:
        raise ValueError(f"unknown field(s) {', '.join(sorted(extra))}")
    for name in ("client", "call", "input"):
        if name not in obj:
            raise ValueError(f'operation needs "{name}"')
    op_id = obj.get("id", index)
    if isinstance(op_id, bool) or not isinstance(op_id, int):
        raise ValueError(f'"id" must be an integer, got {op_id!r}')
    client = obj["client"]
    if not isinstance(client, int | str) or isinstance(client, bool):
        raise ValueError(f'"client" must be an integer or a string, got {client!r}')
    inp = model.input_from_json(obj["input"])
    ret = obj.get("return")
    if ret is None:
        if obj.get("output") is not None:
            raise ValueError('a pending operation ("return": null) cannot have an "output"')
        output = None
    else:
        if "output" not in obj:
            raise ValueError('a completed operation needs "output" (null if it has none)')
        output = model.output_from_json(inp, obj["output"])
    try:
        return Operation(op_id, client, obj["call"], inp, ret, output)
    except HistoryError as e:
        raise ValueError(str(e)) from None


def dump_json_history(history: History, model: AnyModel) -> str:
    """The JSON Lines text of `history` (readable by `parse_json_history`)."""
    lines = [json.dumps({"format": JSON_FORMAT, "version": JSON_VERSION, "model": model.name})]
    for op in sorted(history.operations, key=lambda o: (o.call, o.id)):
        obj: dict[str, Any] = {
            "id": op.id,
            "client": op.client,
            "call": op.call,
            "return": op.ret,
            "input": model.input_to_json(op.input),
        }
        if not op.pending:
            obj["output"] = model.output_to_json(op.output)
        lines.append(json.dumps(obj))
    return "\n".join(lines) + "\n"
