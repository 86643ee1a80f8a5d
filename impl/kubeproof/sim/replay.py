"""Replay: re-execute a trace and say whether it happened the same way again.

Theory of operation
-------------------
Two ways to re-execute a trace, both comparing every re-executed event with
the recorded one, field by field, and stopping at the first difference:

- **by seed + config** (`replay_by_seed`): run the random scheduler again
  with the header's seed and configuration.  This checks that the seed is a
  complete repro.  Only traces made by the scheduler (`driver: random`)
  replay this way.
- **by schedule** (`replay_by_schedule`): no scheduler; each recorded event
  is executed as the cluster action it names (`deliver` message 17,
  `tick` member 2, ...), at its recorded time.  The recorded *inputs* of an
  event drive the action and its recorded *outputs* are what the replay must
  reproduce.  Because it needs nothing but the list of events, a trace can
  be edited (events removed, reordered) and replayed: this is what shrinking
  a failing run needs.  Traces of either driver replay this way.

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
values; an action that cannot run (a message id not in flight, a crashed
member asked to tick) is a divergence at that step too.  Finally the
outcome is compared: the same violation (ID, step, message, evidence), or
ok on both sides.  A trace that is not a trace raises
`trace.TraceFormatError` before anything runs.
"""

from __future__ import annotations

import collections
import importlib
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, cast

from attrs import frozen

from kubeproof import codec
from kubeproof.raft import ConfChangeV2, SnapshotStatus

from .cluster import Cluster, SimError
from .harness import Simulation
from .member import NodeFactory
from .observe import Checker, Event, Violation
from .trace import TraceHeader, TraceOutcome, TraceReader, event_to_json

ReplayMode = Literal["seed", "schedule"]


class ReplayError(RuntimeError):
    """A trace that cannot be replayed at all (e.g. its node factory cannot be imported)."""


@frozen
class Divergence:
    step: int
    where: str
    """The first differing field, e.g. "payload.sent[0].msg.term", or "action", "outcome"."""
    expected: Any
    actual: Any

    def describe(self) -> str:
        if self.where == "action":
            return f"step {self.step}: the recorded action cannot run: {self.actual}"
        return (
            f"step {self.step}: {self.where}: trace has {_short(self.expected)}, "
            f"replay has {_short(self.actual)}"
        )


@frozen
class ReplayResult:
    mode: ReplayMode
    header: TraceHeader
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


def _resolve_factory(header: TraceHeader, node_factory: NodeFactory | None) -> NodeFactory:
    return node_factory if node_factory is not None else load_factory(header.node)


def replay(
    path: str | Path,
    *,
    mode: ReplayMode | Literal["auto"] = "auto",
    checkers: Sequence[Checker] = (),
    node_factory: NodeFactory | None = None,
    tail: int = 40,
) -> ReplayResult:
    """Replay a trace file.  `auto`: by seed for scheduler traces, else by schedule."""
    reader = TraceReader(path)
    if mode == "auto":
        mode = "seed" if reader.header.driver == "random" else "schedule"
    if mode == "seed":
        return replay_by_seed(reader, checkers=checkers, node_factory=node_factory, tail=tail)
    return replay_by_schedule(reader, checkers=checkers, node_factory=node_factory, tail=tail)


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
    factory = _resolve_factory(header, node_factory)
    comparator = _Comparator(tail)
    events = reader.events()
    comparator.source = events
    sim = Simulation(
        header.config, header.seed, checkers=checkers, node_factory=factory, sink=comparator
    )
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


def _action(cluster: Cluster, event: Event) -> Callable[[], object]:
    """The cluster action a recorded event names, with its recorded inputs."""
    kind, node, p = event.kind, event.node, event.payload

    def need_node() -> int:
        if node is None:
            raise SimError(f"a {kind} event needs a node")
        return node

    def msg_id() -> int:
        mid = p.get("id")
        if type(mid) is not int:
            raise SimError(f"a {kind} event needs an integer payload.id, got {mid!r}")
        return mid

    if kind == "tick":
        n = need_node()
        return lambda: cluster.tick(n)
    if kind == "deliver":
        mid = msg_id()
        return lambda: cluster.deliver(mid)
    if kind == "drop":
        mid = msg_id()
        reason = p.get("reason", "loss")
        return lambda: cluster.drop(mid, str(reason))
    if kind == "duplicate":
        mid = msg_id()
        return lambda: cluster.duplicate(mid)
    if kind == "process_ready":
        n = need_node()
        return lambda: cluster.process_ready(n)
    if kind == "crash":
        n = need_node()
        return lambda: cluster.crash(n)
    if kind == "restart":
        n = need_node()
        return lambda: cluster.restart(n)
    if kind == "partition":
        cut = p.get("cut")
        if not isinstance(cut, list):
            raise SimError(f"a partition event needs payload.cut, a list of links, got {cut!r}")
        return lambda: cluster.partition(cut=cut)
    if kind == "heal":
        return cluster.heal
    if kind == "propose":
        n = need_node()
        try:
            data = codec.decode(p.get("data"), bytes)
        except codec.CodecError as e:
            raise SimError(f"a propose event needs base64 payload.data: {e}") from None
        return lambda: cluster.propose(n, data)
    if kind == "snapshot":
        n = need_node()
        c = p.get("compact")
        if type(c) is not int:
            raise SimError(f"a snapshot event needs an integer payload.compact, got {c!r}")
        return lambda: cluster.snapshot(n, c)
    if kind == "conf_change":
        n = need_node()
        try:
            cc = codec.decode(p.get("cc"), ConfChangeV2)
        except codec.CodecError as e:
            raise SimError(f"a conf_change event needs a ConfChangeV2 payload.cc: {e}") from None
        return lambda: cluster.conf_change(n, cc)
    if kind == "transfer":
        n = need_node()
        to = p.get("to")
        if type(to) is not int:
            raise SimError(f"a transfer event needs an integer payload.to, got {to!r}")
        return lambda: cluster.transfer(n, to)
    if kind == "read":
        n = need_node()
        try:
            ctx = codec.decode(p.get("ctx"), bytes)
        except codec.CodecError as e:
            raise SimError(f"a read event needs base64 payload.ctx: {e}") from None
        return lambda: cluster.read(n, ctx)
    if kind == "report_snapshot":
        n = need_node()
        peer = p.get("peer")
        try:
            status = SnapshotStatus(p.get("status"))
        except ValueError:
            raise SimError(
                f"a report_snapshot event needs payload.status SnapshotFinish or "
                f"SnapshotFailure, got {p.get('status')!r}"
            ) from None
        if type(peer) is not int:
            raise SimError(f"a report_snapshot event needs an integer payload.peer, got {peer!r}")
        return lambda: cluster.report_snapshot(n, peer, status)
    if kind == "join":
        n = need_node()
        return lambda: cluster.join(n)
    if kind == "stop":
        n = need_node()
        return lambda: cluster.stop(n)
    raise SimError(f"unknown event kind {kind!r}")


def replay_by_schedule(
    reader: TraceReader,
    *,
    checkers: Sequence[Checker] = (),
    node_factory: NodeFactory | None = None,
    tail: int = 40,
) -> ReplayResult:
    header = reader.header
    factory = _resolve_factory(header, node_factory)
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
