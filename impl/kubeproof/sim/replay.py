"""Replay: re-execute a trace and say whether it happened the same way again.

Theory of operation
-------------------
`replay` reads a trace's header and hands the file to the re-executor of
the simulation that wrote it (`trace.trace_target`):

| header                                  | simulation                 | replays by       |
| --------------------------------------- | -------------------------- | ---------------- |
| ``kubeproof-trace`` (the Raft harness)  | `harness.Simulation`       | seed, schedule   |
| ``kubeproof-kv-trace`` (the store)      | `kv.KVSimulation`          | seed             |
| ``kubeproof-trace``, ``target: api``    | `apisim.ApiSimulation`     | seed             |

Two ways to re-execute a trace, both comparing every re-executed event with
the recorded one, field by field, and stopping at the first difference:

- **by seed + config** (`replay_by_seed`; `replay` also for store and API traces): run
  the simulation again with the header's seed, configuration and node
  (member, server) class.  This checks that the seed is a complete repro.
  Only traces made by a seeded scheduler (`driver: random`, and every
  store or API trace) replay this way.
- **by schedule** (`replay_by_schedule`, Raft traces only): no scheduler;
  each recorded event is executed as the cluster action it names
  (`deliver` message 17, `tick` member 2, ...), at its recorded time.  The
  recorded *inputs* of an event drive the action and its recorded *outputs*
  are what the replay must reproduce.  Because it needs nothing but the
  list of events, a trace can be edited (events removed, reordered) and
  replayed: this is what shrinking a failing run needs.  Traces of either
  driver replay this way.  (The store's and the API's events do not record
  every input, a client's whole request for one, so they replay by seed.)

| event kind      | inputs taken from the trace      | outputs compared                      |
| --------------- | -------------------------------- | ------------------------------------- |
| tick            | node                             | role/term changes                     |
| deliver         | payload.id                       | target, sender, type, term, result    |
| drop            | payload.id, payload.reason       | target, sender, type                  |
| duplicate       | payload.id                       | copy id, target, sender, type         |
| process_ready   | node                             | persisted writes, sent messages, ids, |
|                 |                                  | applied entries                       |
| crash, restart  | node                             | lost_ready / incarnation, term        |
| partition       | payload.cut                      | the cut                               |
| heal            | -                                | -                                     |
| propose         | node, payload.data               | result                                |
| snapshot        | node, payload.compact            | index, term                           |
| conf_change     | node, payload.cc                 | result                                |
| transfer        | node, payload.to                 | role/term changes                     |
| read            | node, payload.ctx                | result                                |
| report_snapshot | node, payload.peer, .status      | role/term changes                     |
| join, stop      | node                             | incarnation / was_alive               |

A *divergence* names the step and the first differing field, with both
values (an API step may hold several events: its divergence also names the
event's position in the file); an action that cannot run (a message id
not in flight, a crashed member asked to tick) is a divergence at that
step too.  Finally the outcome is compared: the same violation (ID, step,
message, evidence), or ok on both sides; the violation the replay itself
found is the invariants' verdict.  The checkers come from the caller (the
composition root passes the spec's, per target: `Checkers`).  A trace that
is not a trace raises `trace.TraceFormatError` before anything runs.
"""

from __future__ import annotations

import collections
import functools
import importlib
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, cast

from attrs import frozen

from kubeproof import codec
from kubeproof.raft import ConfChangeV2, SnapshotStatus

from .cluster import Cluster, SimError
from .events import EventSink
from .harness import Simulation
from .member import NodeFactory
from .observe import Checker, Event, Violation
from .trace import (
    HeaderReader,
    KVTraceHeader,
    KVTraceReader,
    LineReader,
    Target,
    TraceHeader,
    TraceOutcome,
    TraceReader,
    event_to_json,
    trace_target,
)

if TYPE_CHECKING:
    # The store's and the API's simulations are imported when a trace of theirs is
    # replayed: importing the harness does not load the store or the API server.
    from .apisim import ApiChecker
    from .apitrace import ApiTraceHeader, ApiTraceReader
    from .kv import KVCheckersFactory

    AnyHeader = TraceHeader | KVTraceHeader | ApiTraceHeader
    AnyReader = TraceReader | KVTraceReader | ApiTraceReader

ReplayMode = Literal["seed", "schedule"]

T = TypeVar("T")


class ReplayError(RuntimeError):
    """A trace that cannot be replayed at all (e.g. its node factory cannot be imported)."""


@frozen
class Divergence:
    step: int
    where: str
    """The first differing field, e.g. "payload.sent[0].msg.term", or "action", "outcome"."""
    expected: Any
    actual: Any
    event: int | None = None
    """The event's position in the trace (1: the first event), where steps repeat (API)."""

    def describe(self) -> str:
        at = f"step {self.step}" + (f" (event {self.event})" if self.event is not None else "")
        if self.where == "action":
            return f"{at}: the recorded action cannot run: {self.actual}"
        return (
            f"{at}: {self.where}: trace has {_short(self.expected)}, "
            f"replay has {_short(self.actual)}"
        )


@frozen
class ReplayResult:
    mode: ReplayMode
    header: AnyHeader
    divergence: Divergence | None
    recorded: TraceOutcome | None
    """The trace's outcome line (None if the replay stopped before reading it)."""
    violation: Violation | None
    """What the replay itself found."""
    steps: int
    """Events re-executed."""
    tail: tuple[Event, ...]
    """The last re-executed events (the timeline around the end)."""

    @property
    def matched(self) -> bool:
        return self.divergence is None

    @property
    def target(self) -> Target:
        """The simulation the trace came from."""
        if isinstance(self.header, TraceHeader):
            return "raft"
        return "kv" if isinstance(self.header, KVTraceHeader) else "api"


def _none(*_: object) -> Sequence[Any]:
    return ()


@frozen
class Checkers:
    """The checkers a replay runs, per target: fresh ones for each replay."""

    raft: Callable[[], Sequence[Checker]] = _none
    kv: KVCheckersFactory = _none
    api: Callable[[], Sequence[ApiChecker]] = _none


def load_factory(name: str) -> NodeFactory:
    """'module:qualname' -> the node factory; cwd is tried as an import root too."""
    module_name, _, qualname = name.partition(":")
    if not module_name or not qualname:
        raise ReplayError(f"node factory {name!r} is not 'module:attribute'")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        cwd = os.getcwd()
        if cwd in sys.path:
            raise ReplayError(
                f"the trace was made with node factory {name!r}, whose module cannot be "
                "imported; run from the directory it is importable from, or pass another "
                "factory"
            ) from None
        sys.path.insert(0, cwd)
        return load_factory(name)
    obj: Any = module
    try:
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        raise ReplayError(f"node factory {name!r}: {module_name} has no {qualname}") from None
    if not callable(obj):
        raise ReplayError(f"node factory {name!r} is not callable")
    return cast(NodeFactory, obj)


class _Diverged(Exception):
    def __init__(self, divergence: Divergence) -> None:
        super().__init__(divergence.describe())
        self.divergence = divergence


def _normal(data: Any) -> Any:
    # The fresh event as it would read back from the file (tuples -> lists ...).
    return json.loads(codec.canonical_json(data))


def first_difference(expected: Any, actual: Any, path: str = "") -> tuple[str, Any, Any] | None:
    """The first place where two JSON values differ: (path, expected, actual)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in sorted(set(expected) | set(actual)):
            sub = f"{path}.{key}" if path else str(key)
            if key not in expected:
                return sub, "(absent)", actual[key]
            if key not in actual:
                return sub, expected[key], "(absent)"
            d = first_difference(expected[key], actual[key], sub)
            if d is not None:
                return d
        return None
    if isinstance(expected, list) and isinstance(actual, list):
        for i, (e, a) in enumerate(zip(expected, actual, strict=False)):
            d = first_difference(e, a, f"{path}[{i}]")
            if d is not None:
                return d
        if len(expected) != len(actual):
            return f"{path} (length)", len(expected), len(actual)
        return None
    if type(expected) is not type(actual) or expected != actual:
        return path or "(value)", expected, actual
    return None


class _Comparator:
    """The sink of a replay: checks each produced event against the recorded one."""

    def __init__(self, tail: int) -> None:
        self.expected: Event | None = None
        self.source: Iterator[Event] | None = None
        self.tail: collections.deque[Event] = collections.deque(maxlen=max(tail, 1))
        self.count = 0

    def __call__(self, event: Event) -> None:
        self.tail.append(event)
        self.count += 1
        rec = self.expected
        if self.source is not None:
            rec = next(self.source, None)
        if rec is None:
            raise _Diverged(
                Divergence(event.step, "(event)", "(the trace has no more events)", event.kind)
            )
        d = first_difference(event_to_json(rec), _normal(event_to_json(event)))
        if d is not None:
            raise _Diverged(Divergence(event.step, d[0], d[1], d[2]))


def _compare_outcome(
    recorded: TraceOutcome | None, violation: Violation | None, step: int
) -> Divergence | None:
    if recorded is None:
        return None
    rec = recorded.to_json()
    got = _normal(TraceOutcome(violation).to_json())
    d = first_difference(rec, got)
    if d is None:
        return None
    return Divergence(step, f"outcome.{d[0]}", d[1], d[2])


def open_trace(path: str | Path) -> AnyReader:
    """The reader the file's header asks for (`trace.trace_target`); a file that is no
    trace at all gets the Raft reader, whose errors say why."""
    with HeaderReader(path) as peek:
        target = trace_target(peek.header)
    if target == "kv":
        return KVTraceReader(path)
    if target == "api":
        from .apitrace import ApiTraceReader

        return ApiTraceReader(path)
    return TraceReader(path)


def replay(
    path: str | Path,
    *,
    mode: ReplayMode | Literal["auto"] = "auto",
    checkers: Sequence[Checker] | Checkers = (),
    node_factory: Callable[..., object] | None = None,
    tail: int = 40,
) -> ReplayResult:
    """Replay a trace file of any target.  `auto`: by seed for scheduler traces, else by
    schedule.  `checkers`: per target (`Checkers`), or one sequence for a Raft or store
    trace.  `node_factory` replaces the header's node (member, server) class."""
    reader = open_trace(path)
    if isinstance(checkers, Checkers):
        per_target = checkers
    else:
        given = tuple(checkers)
        per_target = Checkers(raft=lambda: given, kv=lambda _: given)
    if isinstance(reader, TraceReader):
        factory = cast(NodeFactory | None, node_factory)
        if mode == "auto":
            mode = "seed" if reader.header.driver == "random" else "schedule"
        run = replay_by_seed if mode == "seed" else replay_by_schedule
        return run(reader, checkers=per_target.raft(), node_factory=factory, tail=tail)
    if mode == "schedule":
        reader.close()
        raise ReplayError(
            f"{reader.name}: a {'store' if isinstance(reader, KVTraceReader) else 'API'} "
            "trace replays by seed only (its events do not record every client input)"
        )
    if isinstance(reader, KVTraceReader):
        return _replay_kv(reader, per_target.kv, node_factory, tail)
    return _replay_api(reader, per_target.api(), node_factory, tail)


class _Stopping(Protocol):
    @property
    def violation(self) -> Violation | None: ...

    @property
    def step(self) -> int: ...


class _Rerun(Protocol):
    """A simulation built anew from a header, its events going to the comparator."""

    @property
    def cluster(self) -> _Stopping: ...

    def run(self) -> object: ...


def _rerun(
    reader: LineReader[Any], header: AnyHeader, start: Callable[[EventSink], _Rerun], tail: int
) -> ReplayResult:
    """Run `start(sink)` with a comparator as its sink; then the rest of the file and the
    outcome are compared."""
    comparator = _Comparator(tail)
    events = reader.events()
    comparator.source = events
    sim = start(comparator)
    divergence: Divergence | None = None
    try:
        sim.run()
    except _Diverged as d:
        divergence = d.divergence
    violation = sim.cluster.violation
    if divergence is not None:
        events.close()
    else:
        leftover = next(events, None)  # reading on also validates the rest of the file
        if leftover is not None:
            why = (
                f"a violation ({violation.invariant})"
                if violation is not None
                else "the step budget"
            )
            divergence = Divergence(
                leftover.step, "(event)", leftover.kind, f"(the replay stopped: {why})"
            )
        else:
            divergence = _compare_outcome(reader.outcome, violation, sim.cluster.step)
    return ReplayResult(
        "seed",
        header,
        divergence,
        reader.outcome,
        violation,
        comparator.count,
        tuple(comparator.tail),
    )


def replay_by_seed(
    reader: TraceReader,
    *,
    checkers: Sequence[Checker] = (),
    node_factory: NodeFactory | None = None,
    tail: int = 40,
) -> ReplayResult:
    header = reader.header
    if header.driver != "random":
        reader.close()
        raise ReplayError(
            f"{reader.name}: this trace was made by explicit actions (driver "
            f"{header.driver!r}), not by the seeded scheduler; replay it by schedule"
        )
    factory = cast(NodeFactory, _factory(node_factory, header.node))
    start = functools.partial(
        Simulation, header.config, header.seed, checkers=checkers, node_factory=factory
    )
    return _rerun(reader, header, lambda sink: start(sink=sink), tail)


def _factory(given: Callable[..., object] | None, name: str) -> Callable[..., object]:
    """The node (member, server) class to run: the one given, else the header's."""
    return given if given is not None else load_factory(name)


def _replay_kv(
    reader: KVTraceReader,
    checkers: KVCheckersFactory,
    given: Callable[..., object] | None,
    tail: int,
) -> ReplayResult:
    """A store trace, by seed: `checkers(config)` are fresh checkers for its configuration."""
    from .kv import KVSimulation
    from .kvcluster import MemberFactory

    header = reader.header
    config = header.config
    start = functools.partial(
        KVSimulation,
        config,
        header.seed,
        checkers=checkers(config),
        member_factory=cast(MemberFactory, _factory(given, header.member)),
    )
    return _rerun(reader, header, lambda sink: start(sink=sink), tail)


def _replay_api(
    reader: ApiTraceReader,
    checkers: Sequence[ApiChecker],
    given: Callable[..., object] | None,
    tail: int,
) -> ReplayResult:
    """An API trace, by seed: the run is made again, then compared event by event."""
    from .apisim import ServerFactory, run_api_simulation
    from .apitrace import api_event, api_event_json, api_json

    header = reader.header
    server = cast(ServerFactory, _factory(given, header.server))
    run = run_api_simulation(header.seed, header.config, checkers, server, record=True)
    fresh = [api_event(e) for e in run.events]
    shown: collections.deque[Event] = collections.deque(maxlen=max(tail, 1))
    divergence: Divergence | None = None
    events = reader.events()
    n = 0
    for n, rec in enumerate(events, start=1):
        if n > len(fresh):
            why = f"a violation ({run.violation.invariant})" if run.violation else "its steps"
            divergence = Divergence(
                rec.step, "(event)", rec.kind, f"(the replay stopped: {why})", event=n
            )
            break
        got = fresh[n - 1]
        shown.append(got)
        d = first_difference(api_event_json(rec), api_event_json(got))
        if d is not None:
            divergence = Divergence(rec.step, d[0], d[1], d[2], event=n)
            break
    else:
        if n < len(fresh):
            more = fresh[n]
            shown.append(more)
            divergence = Divergence(
                more.step, "(event)", "(the trace has no more events)", more.kind, event=n + 1
            )
    if divergence is not None:
        events.close()
    else:
        v = run.violation
        as_written = (
            None if v is None else Violation(v.invariant, v.step, v.message, api_json(v.evidence))
        )
        divergence = _compare_outcome(reader.outcome, as_written, fresh[-1].step if fresh else 0)
    compared = n if divergence is None or divergence.event is None else divergence.event
    return ReplayResult(
        "seed", header, divergence, reader.outcome, run.violation, compared, tuple(shown)
    )


class _Inputs:
    """A recorded event's inputs, read for the action it names; a bad one is a `SimError`."""

    __slots__ = ("kind", "n", "p")

    def __init__(self, event: Event) -> None:
        self.kind = event.kind
        self.n = event.node
        self.p: Mapping[str, Any] = event.payload

    def node(self) -> int:
        if self.n is None:
            raise SimError(f"a {self.kind} event needs a node")
        return self.n

    def number(self, key: str) -> int:
        value = self.p.get(key)
        if type(value) is not int:
            raise SimError(f"a {self.kind} event needs an integer payload.{key}, got {value!r}")
        return value

    def decoded(self, key: str, cls: type[T], what: str) -> T:
        try:
            return codec.decode(self.p.get(key), cls)
        except codec.CodecError as e:
            raise SimError(f"a {self.kind} event needs {what} payload.{key}: {e}") from None

    def cut(self) -> list[Any]:
        cut = self.p.get("cut")
        if not isinstance(cut, list):
            raise SimError(f"a partition event needs payload.cut, a list of links, got {cut!r}")
        return cut

    def status(self) -> SnapshotStatus:
        try:
            return SnapshotStatus(self.p.get("status"))
        except ValueError:
            raise SimError(
                f"a report_snapshot event needs payload.status SnapshotFinish or "
                f"SnapshotFailure, got {self.p.get('status')!r}"
            ) from None


_Action = Callable[[], object]
_ACTIONS: dict[str, Callable[[Cluster, _Inputs], _Action]] = {
    "tick": lambda c, i: functools.partial(c.tick, i.node()),
    "deliver": lambda c, i: functools.partial(c.deliver, i.number("id")),
    "drop": lambda c, i: functools.partial(c.drop, i.number("id"), str(i.p.get("reason", "loss"))),
    "duplicate": lambda c, i: functools.partial(c.duplicate, i.number("id")),
    "process_ready": lambda c, i: functools.partial(c.process_ready, i.node()),
    "crash": lambda c, i: functools.partial(c.crash, i.node()),
    "restart": lambda c, i: functools.partial(c.restart, i.node()),
    "partition": lambda c, i: functools.partial(c.partition, cut=i.cut()),
    "heal": lambda c, i: c.heal,
    "propose": lambda c, i: functools.partial(
        c.propose, i.node(), i.decoded("data", bytes, "base64")
    ),
    "snapshot": lambda c, i: functools.partial(c.snapshot, i.node(), i.number("compact")),
    "conf_change": lambda c, i: functools.partial(
        c.conf_change, i.node(), i.decoded("cc", ConfChangeV2, "a ConfChangeV2")
    ),
    "transfer": lambda c, i: functools.partial(c.transfer, i.node(), i.number("to")),
    "read": lambda c, i: functools.partial(c.read, i.node(), i.decoded("ctx", bytes, "base64")),
    "report_snapshot": lambda c, i: functools.partial(
        c.report_snapshot, i.node(), i.number("peer"), i.status()
    ),
    "join": lambda c, i: functools.partial(c.join, i.node()),
    "stop": lambda c, i: functools.partial(c.stop, i.node()),
}
"""Each event kind's cluster action, with its recorded inputs (the module's table)."""


def _action(cluster: Cluster, event: Event) -> _Action:
    """The cluster action a recorded event names, with its recorded inputs."""
    make = _ACTIONS.get(event.kind)
    if make is None:
        raise SimError(f"unknown event kind {event.kind!r}")
    return make(cluster, _Inputs(event))


def replay_by_schedule(
    reader: TraceReader,
    *,
    checkers: Sequence[Checker] = (),
    node_factory: NodeFactory | None = None,
    tail: int = 40,
) -> ReplayResult:
    header = reader.header
    factory = cast(NodeFactory, _factory(node_factory, header.node))
    comparator = _Comparator(tail)
    cluster = Cluster(
        header.config, header.seed, checkers=checkers, node_factory=factory, sink=comparator
    )
    divergence: Divergence | None = None
    events = reader.events()
    for rec in events:
        if cluster.violation is not None:
            divergence = Divergence(
                rec.step,
                "(event)",
                rec.kind,
                f"(the replay stopped: a violation ({cluster.violation.invariant}))",
            )
            break
        comparator.expected = rec
        try:
            cluster.advance_to(rec.time)
            _action(cluster, rec)()
        except _Diverged as d:
            divergence = d.divergence
            break
        except SimError as e:
            divergence = Divergence(rec.step, "action", f"{rec.kind} {rec.payload}", str(e))
            break
    if divergence is None:
        divergence = _compare_outcome(reader.outcome, cluster.violation, cluster.step)
    else:
        events.close()
    return ReplayResult(
        "schedule",
        header,
        divergence,
        reader.outcome,
        cluster.violation,
        comparator.count,
        tuple(comparator.tail),
    )


def _short(value: Any, limit: int = 200) -> str:
    text = value if isinstance(value, str) else codec.canonical_json(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
