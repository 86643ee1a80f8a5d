"""Traces: a run written as JSON Lines, streamed to disk, and read back strictly.

Theory of operation
-------------------
A trace file has three parts (docs/trace-format.md is the full reference):

    line 1      header   {"format": "kubeproof-trace", "version": 2, "kubeproof": ...,
                          "seed": ..., "config": {...}, "driver": ..., "node": ...}
    lines 2..   events   {"step": n, "time": t, "kind": k, "node": id|null, "payload": {...}}
    last line   outcome  {"outcome": "ok"} or
                         {"outcome": "violation", "invariant": ID, "step": n,
                          "message": ..., "evidence": {...}}

Every line is canonical JSON (sorted keys, no spaces, ASCII), so the same
seed and configuration give a byte-identical file.  Nothing machine- or
moment-specific goes in: no wall-clock time, no paths.

`TraceWriter` writes one line per call and keeps nothing, so memory stays
flat however long the run.  `TraceReader` reads line by line too and
validates as it goes: a file that is not UTF-8 JSON Lines, a foreign format
field, an unsupported version, steps out of order, or a missing outcome
(a truncated file) raises `TraceFormatError` naming the file and the line.

The replicated store's runs (`kv`) are traced the same way, events and
outcome alike, under a header of their own (``"format":
"kubeproof-kv-trace"``, the `KVSimConfig`, the member class:
`KVTraceHeader`), and read back by `KVTraceReader`, which also knows the
store's event kinds.  The API simulation's traces (``"target": "api"``) are
read by `apitrace.ApiTraceReader`.  All three readers share the line
mechanics (`LineReader`); `trace_target` tells from a header which one a
file needs.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Generator, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Generic, Literal, Protocol, TypeVar, cast

import attrs
from attrs import frozen

from kubeproof import codec
from kubeproof.version import __version__

from .config import SimConfig, config_from_json, config_to_json
from .kvconfig import KVSimConfig, kv_config_from_json, kv_config_to_json
from .observe import Event, Violation

TRACE_FORMAT = "kubeproof-trace"
TRACE_VERSION = 2
READABLE_VERSIONS = frozenset({1, 2})
"""Version 2 added the event kinds snapshot, conf_change, transfer, read,
report_snapshot, join and stop; a version-1 file is a valid version-2 file."""

EVENT_KINDS = frozenset(
    {
        "tick",
        "deliver",
        "drop",
        "duplicate",
        "process_ready",
        "crash",
        "restart",
        "partition",
        "heal",
        "propose",
        "snapshot",
        "conf_change",
        "transfer",
        "read",
        "report_snapshot",
        "join",
        "stop",
    }
)

KV_TRACE_FORMAT = "kubeproof-kv-trace"
KV_TRACE_VERSION = 1
KV_EVENT_KINDS = EVENT_KINDS | frozenset(
    {"call", "request", "response", "timeout", "watch", "watch_event"}
)
"""The store's runs have the Raft events (but for the features') and their clients'."""

RAFT_NODE = "kubeproof.raft.node:RaftNode"
KV_MEMBER = "kubeproof.etcd.member:Member"

Target = Literal["raft", "kv", "api"]

Driver = Literal["random", "schedule"]
"""`random`: made by the seeded scheduler (replays by seed+config and by schedule).
`schedule`: made by explicit actions, e.g. Hypothesis (replays by schedule only)."""


class TraceFormatError(ValueError):
    """A file that is not a readable kubeproof trace; the message names file and line."""

    def __init__(self, source: str, line: int, problem: str) -> None:
        super().__init__(f"{source}:{line}: {problem}")
        self.source = source
        self.line = line
        self.problem = problem


@frozen
class TraceHeader:
    seed: int
    config: SimConfig
    driver: Driver = "random"
    node: str = RAFT_NODE
    """The node factory as "module:attribute" (a mutant's, if the run used one)."""
    kubeproof: str = __version__

    def to_json(self) -> dict[str, Any]:
        head = _head(TRACE_FORMAT, TRACE_VERSION, self.kubeproof, self.seed)
        return head | {
            "config": config_to_json(self.config),
            "driver": self.driver,
            "node": self.node,
        }


@frozen
class KVTraceHeader:
    """The header of a replicated-store trace (format ``kubeproof-kv-trace``)."""

    seed: int
    config: KVSimConfig
    member: str = KV_MEMBER
    """The member factory as "module:attribute" (a mutant's, if the run used one)."""
    kubeproof: str = __version__

    def to_json(self) -> dict[str, Any]:
        head = _head(KV_TRACE_FORMAT, KV_TRACE_VERSION, self.kubeproof, self.seed)
        return head | {"config": kv_config_to_json(self.config), "member": self.member}


def _head(fmt: str, version: int, kubeproof: str, seed: int) -> dict[str, Any]:
    """What every header starts with (the key order is the writer's business: it sorts)."""
    return {"format": fmt, "version": version, "kubeproof": kubeproof, "seed": seed}


def factory_name(factory: object) -> str:
    """'module:qualname' of a node (member, server) factory, as trace headers record it."""
    module = getattr(factory, "__module__", None) or "?"
    qualname = getattr(factory, "__qualname__", None) or type(factory).__qualname__
    return f"{module}:{qualname}"


def trace_target(header: Mapping[str, Any]) -> Target | None:
    """Which simulation a header's file comes from (None: not a kubeproof trace)."""
    fmt = header.get("format")
    if fmt == KV_TRACE_FORMAT:
        return "kv"
    if fmt != TRACE_FORMAT:
        return None
    target = header.get("target", "raft")
    return cast(Target, target) if target in ("raft", "api") else None


@frozen
class TraceOutcome:
    """How the run ended: ok, or the first violation."""

    violation: Violation | None = None

    @property
    def ok(self) -> bool:
        return self.violation is None

    def to_json(self) -> dict[str, Any]:
        v = self.violation
        if v is None:
            return {"outcome": "ok"}
        return {
            "outcome": "violation",
            "invariant": v.invariant,
            "step": v.step,
            "message": v.message,
            "evidence": jsonable(v.evidence),
        }


def jsonable(value: Any) -> Any:
    """Evidence from a checker -> plain JSON data (keys as strings, bytes as base64 ...)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (bytes, bytearray)):
        return codec.encode(bytes(value))
    if attrs.has(type(value)):
        return jsonable(codec.encode(value))
    if isinstance(value, (set, frozenset)):
        return sorted((jsonable(v) for v in value), key=codec.canonical_json)
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return repr(value)


def event_to_json(event: Event) -> dict[str, Any]:
    return {
        "step": event.step,
        "time": event.time,
        "kind": event.kind,
        "node": event.node,
        "payload": event.payload,
    }


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True)


class Header(Protocol):
    def to_json(self) -> dict[str, Any]: ...


class _Closing:
    """A context manager that closes itself on exit."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: C) -> C:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


C = TypeVar("C", bound=_Closing)


class TraceWriter(_Closing):
    """Streams a trace: `header`, then `event` per event (an `EventSink`), then `outcome`."""

    def __init__(self, stream: IO[str], *, owns: bool = False) -> None:
        self._stream = stream
        self._owns = owns
        self._write = stream.write
        self._encode = _ENCODER.encode

    @classmethod
    def open(cls, path: str | Path) -> TraceWriter:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        # newline="\n": the same bytes on every platform.
        return cls(p.open("w", encoding="ascii", newline="\n"), owns=True)

    def header(self, header: Header) -> None:
        """`TraceHeader`, `KVTraceHeader` ..."""
        self._write(self._encode(header.to_json()) + "\n")

    def event(self, event: Event) -> None:
        self._write(
            self._encode(
                {
                    "step": event.step,
                    "time": event.time,
                    "kind": event.kind,
                    "node": event.node,
                    "payload": event.payload,
                }
            )
            + "\n"
        )

    __call__ = event

    def outcome(self, violation: Violation | None) -> None:
        self._write(self._encode(TraceOutcome(violation).to_json()) + "\n")

    def close(self) -> None:
        if self._owns:
            self._stream.close()
        else:
            self._stream.flush()


H = TypeVar("H")
T = TypeVar("T")


class LineReader(_Closing, Generic[H]):
    """Reads a trace lazily and strictly.  `header` is read on open; iterate `events()`
    once; `outcome` is set when the iteration reaches the last line.  A reader of one
    format says how its header reads (`_header`) and which event kinds it has."""

    kinds: frozenset[str] = EVENT_KINDS

    def __init__(self, source: str | Path | IO[bytes], *, name: str | None = None) -> None:
        if isinstance(source, (str, Path)):
            self.name = name or str(source)
            try:
                self._stream: IO[bytes] = Path(source).open("rb")  # noqa: SIM115
            except OSError as e:
                raise TraceFormatError(self.name, 0, f"cannot open: {e.strerror}") from None
            self._owns = True
        else:
            self.name = name or str(getattr(source, "name", "<trace>"))
            self._stream = source
            self._owns = False
        self._line = 0
        self.outcome: TraceOutcome | None = None
        self._consumed = False
        try:
            obj = self._next_object()
            if obj is None:
                raise self._fail("empty file: not a kubeproof trace", line=1)
            self.header: H = self._header(obj)
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------- reading

    def _fail(self, problem: str, line: int | None = None) -> TraceFormatError:
        return TraceFormatError(self.name, self._line if line is None else line, problem)

    def _next_object(self) -> dict[str, Any] | None:
        raw = self._stream.readline()
        if not raw:
            return None
        self._line += 1
        if not raw.endswith(b"\n"):
            raise self._fail("the line is cut short (no newline): the file is truncated")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self._fail("not UTF-8 text: not a kubeproof trace (JSON Lines)") from None
        if not text.strip():
            raise self._fail("empty line: traces have one JSON object per line")
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise self._fail(f"not JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(obj, dict):
            raise self._fail(f"expected a JSON object, got {type(obj).__name__}")
        return obj

    def _header(self, obj: dict[str, Any]) -> H:
        raise NotImplementedError

    def _check_format(
        self, obj: Mapping[str, Any], fmt: str, versions: frozenset[int]
    ) -> tuple[int, str]:
        """The header's format and version checked; returns (seed, kubeproof version)."""
        found = obj.get("format")
        if found != fmt:
            raise self._fail(
                f"not a kubeproof trace: header 'format' is {found!r}, expected {fmt!r}"
            )
        version = obj.get("version")
        if type(version) is not int or version not in versions:
            known = ", ".join(str(v) for v in sorted(versions))
            raise self._fail(
                f"unsupported trace version {version!r}: this kubeproof reads versions {known}"
            )
        seed = obj.get("seed")
        if type(seed) is not int:
            raise self._fail(f"header 'seed' must be an integer, got {seed!r}")
        version_text = obj.get("kubeproof")
        if not isinstance(version_text, str):
            raise self._fail(f"header 'kubeproof' must be a version string, got {version_text!r}")
        return seed, version_text

    def _factory(self, obj: Mapping[str, Any], key: str, default: str) -> str:
        """The header's ``module:attribute`` of the class the run used."""
        name = obj.get(key, default)
        if not isinstance(name, str) or ":" not in name:
            raise self._fail(f"header {key!r} must be 'module:attribute', got {name!r}")
        return name

    def _config(self, obj: Mapping[str, Any], decode: Callable[[Any], T]) -> T:
        """The header's configuration, decoded (an invalid one names its problem)."""
        try:
            return decode(obj.get("config"))
        except (codec.CodecError, ValueError) as e:
            raise self._fail(f"header 'config' is invalid: {e}") from None

    @property
    def line(self) -> int:
        """The line read last (1: the header)."""
        return self._line

    def events(self) -> Generator[Event, None, None]:
        """The events, in order; sets `outcome` at the end, raises on anything malformed."""
        if self._consumed:
            raise RuntimeError("TraceReader.events() can be iterated once")
        self._consumed = True
        last: Event | None = None
        try:
            while True:
                obj = self._next_object()
                if obj is None:
                    raise self._fail(
                        f"truncated: no outcome line after line {self._line}", line=self._line
                    )
                if "outcome" in obj:
                    self.outcome = self._parse_outcome(obj)
                    if self._stream.readline():
                        raise self._fail("content after the outcome line", line=self._line + 1)
                    return
                last = self._parse_event(obj, last)
                yield last
        finally:
            self.close()

    event_keys = frozenset({"step", "time", "kind", "node", "payload"})
    """The keys of an event line."""

    def _parse_event(self, obj: dict[str, Any], last: Event | None) -> Event:
        """The event's keys and kind known, its step next (`_check_step`), its time never
        decreasing, its node an id or null."""
        keys = set(obj)
        if keys != self.event_keys:
            missing = sorted(self.event_keys - keys)
            extra = sorted(keys - self.event_keys)
            raise self._fail(f"not an event line (missing {missing}, unexpected {extra})")
        step, time, kind, payload = obj["step"], obj["time"], obj["kind"], obj["payload"]
        node = obj.get("node")
        self._check_step(step, last)
        last_time = 0 if last is None else last.time
        if type(time) is not int or time < last_time:
            raise self._fail(f"event time {time!r} must be an integer >= {last_time}")
        if kind not in self.kinds:
            raise self._fail(f"unknown event kind {kind!r}")
        if node is not None and type(node) is not int:
            raise self._fail(f"event node must be an integer or null, got {node!r}")
        if not isinstance(payload, dict):
            raise self._fail(f"event payload must be an object, got {payload!r}")
        return Event(step, time, kind, node, payload)

    def _check_step(self, step: Any, last: Event | None) -> None:
        """Steps 1, 2, 3 ... without gaps."""
        expect_step = 1 if last is None else last.step + 1
        if type(step) is not int or step != expect_step:
            raise self._fail(f"event step is {step!r}, expected {expect_step}")

    def _parse_outcome(self, obj: dict[str, Any]) -> TraceOutcome:
        kind = obj.get("outcome")
        if kind == "ok":
            return TraceOutcome(None)
        if kind != "violation":
            raise self._fail(f"outcome must be 'ok' or 'violation', got {kind!r}")
        inv, step, msg = obj.get("invariant"), obj.get("step"), obj.get("message")
        evidence = obj.get("evidence", {})
        if not isinstance(inv, str) or type(step) is not int or not isinstance(msg, str):
            raise self._fail("a violation outcome needs 'invariant' (str), 'step' (int), 'message'")
        if not isinstance(evidence, dict):
            raise self._fail("violation 'evidence' must be an object")
        return TraceOutcome(Violation(inv, step, msg, evidence))

    def close(self) -> None:
        if self._owns:
            self._stream.close()


class TraceReader(LineReader[TraceHeader]):
    """A Raft harness trace (format ``kubeproof-trace``); see `LineReader`."""

    def _header(self, obj: dict[str, Any]) -> TraceHeader:
        seed, version_text = self._check_format(obj, TRACE_FORMAT, READABLE_VERSIONS)
        target = obj.get("target", "raft")
        if target != "raft":
            raise self._fail(f"header 'target' is {target!r}: not a Raft harness trace")
        driver = obj.get("driver", "random")
        if driver not in ("random", "schedule"):
            raise self._fail(f"header 'driver' must be 'random' or 'schedule', got {driver!r}")
        return TraceHeader(
            seed=seed,
            config=self._config(obj, config_from_json),
            driver=cast(Driver, driver),
            node=self._factory(obj, "node", RAFT_NODE),
            kubeproof=version_text,
        )


class KVTraceReader(LineReader[KVTraceHeader]):
    """A replicated-store trace (format ``kubeproof-kv-trace``); see `LineReader`."""

    kinds = KV_EVENT_KINDS

    def _header(self, obj: dict[str, Any]) -> KVTraceHeader:
        seed, version_text = self._check_format(obj, KV_TRACE_FORMAT, frozenset({KV_TRACE_VERSION}))
        member = self._factory(obj, "member", KV_MEMBER)
        config = self._config(obj, kv_config_from_json)
        return KVTraceHeader(seed=seed, config=config, member=member, kubeproof=version_text)


class HeaderReader(LineReader[dict[str, Any]]):
    """Reads only the header line, as it is (to choose the reader a file needs)."""

    def _header(self, obj: dict[str, Any]) -> dict[str, Any]:
        return obj


def read_trace(path: str | Path) -> tuple[TraceHeader, list[Event], TraceOutcome]:
    """The whole trace in memory (for tests and small files)."""
    reader = TraceReader(path)
    events = list(reader.events())
    assert reader.outcome is not None
    return reader.header, events, reader.outcome
