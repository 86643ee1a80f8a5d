"""Events: how every action of a simulated cluster ends, and the Raft network's actions.

Theory of operation
-------------------
Both simulated clusters (`cluster.Cluster`, bare Raft nodes; and
`kvcluster.KVCluster`, the replicated store's members) own one `EventLog`
and one `NetworkActions`; what they share lives here, once.

`EventLog` is the run's step counter, virtual clock and first violation.
Every action of a cluster ends in exactly one of:

| call                    | does                                                             |
| ----------------------- | ---------------------------------------------------------------- |
| `emit(kind, n, p)`      | step + 1; the `observe.Event` goes to the sink (the trace writer |
|                         | or a replay comparator), then to every checker; the first        |
|                         | violation a checker returns stops the run                        |
| `failed(kind, n, p, e)` | the member raised: the event carries ``error`` (the invariant    |
|                         | of a `RaftInvariantError`, else `NODE_EXCEPTION`), goes to the   |
|                         | sink, and is the run's violation; no checker looks at a node     |
|                         | that raised                                                      |

and every action starts with `guard()`: once the run has stopped, actions
raise `SimError`.  A member that cannot even start is the run's violation
at step 0, without an event (`start_failed`).  The clock is the driver's: `advance_to` (never backwards)
or, in the random schedulers' hot loop, a plain store into ``time``.

`NetworkActions` are the Raft network's actions, the same in both clusters:

| action                  | event                                                            |
| ----------------------- | ---------------------------------------------------------------- |
| `deliver(id, ...)`      | ``deliver``: the message leaves the network; an unknown target,  |
|                         | a cut link or a target that is down (``stopped`` for good) loses |
|                         | it, otherwise the cluster's `step` callback hands it to the      |
|                         | member and sets ``result``                                       |
| `drop(id, reason)`      | ``drop``: lost in flight                                         |
| `duplicate(id)`         | ``duplicate``: a second copy goes in flight under a new id        |
| `partition(groups/cut)` | ``partition``: replaces the set of cut links                     |
| `heal()`                | ``heal``: every link up                                          |

and `send` puts a Ready's messages on the network (the ``sent`` payload:
their ids in send order).  The counters they keep are the ones every run
has (`NetCounters`, which each cluster's counters extend) and the partitions.

`LoggedCluster` is what a cluster with a ``log`` and a ``net`` shows
because of them: the step and the clock (`observe.ClusterView`), the first
violation, `advance_to`, and the network actions but `deliver`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import attrs
from attrs import define, field

from kubeproof import codec
from kubeproof.raft import Message, MessageType, RaftInvariantError

from .network import Network, NetworkError
from .observe import Checker, ClusterView, Event, Violation

EventSink = Callable[[Event], None]

NODE_EXCEPTION = "SIM-NODE-EXCEPTION"
"""The invariant ID recorded when a node raises something other than RaftInvariantError."""

# Enum `.value` is a descriptor call; a dict lookup is several times cheaper per event.
TYPE_NAMES: dict[MessageType, str] = {t: t.value for t in MessageType}
_encode_message = codec.encoder(Message)


class SimError(RuntimeError):
    """An action that cannot be executed: unknown member, member down, message not in
    flight, clock going backwards, or the run already stopped by a violation."""


@define
class NetCounters:
    """What every run counts; `cluster.Counters` and `kvcluster.KVCounters` add their own."""

    events: int = 0
    elections: int = 0
    """Transitions into the leader role."""
    leaders: set[int] = field(factory=set)
    """Distinct members that were leader at some point."""
    committed: int = 0
    """Highest log index applied anywhere (= entries committed)."""
    messages_sent: int = 0
    messages_delivered: int = 0
    messages_dropped: int = 0
    """Lost in flight, cut by a partition, or addressed to a member that was down."""
    messages_duplicated: int = 0

    def to_json(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in attrs.fields(type(self)):
            value = getattr(self, f.name)
            out[f.name] = len(value) if isinstance(value, set) else value
        return out


def error_payload(e: BaseException) -> tuple[str, str]:
    """(invariant, detail) for an exception a member raised."""
    if isinstance(e, RaftInvariantError):
        return e.invariant, e.detail
    return NODE_EXCEPTION, f"{type(e).__name__}: {e}"


S = TypeVar("S")


def member_of(members: Mapping[int, S], node_id: int) -> S:
    """The member with this id, or `SimError` naming the members there are."""
    try:
        return members[node_id]
    except KeyError:
        raise SimError(f"no member {node_id} (members: {list(members)})") from None


class EventLog:
    """Step counter, clock, sink, checkers, first violation; see the module docstring."""

    __slots__ = ("_checkers", "_checks", "_view", "counters", "sink", "step", "time", "violation")

    def __init__(
        self,
        view: ClusterView,
        counters: NetCounting,
        checkers: Sequence[Checker] = (),
        sink: EventSink | None = None,
    ) -> None:
        self._view = view
        self._checkers = tuple(checkers)
        # Their bound `check` methods, looked up once: emit calls every one per event.
        self._checks = tuple(c.check for c in self._checkers)
        self.sink = sink
        """Where each event goes first (a trace writer, a replay comparator)."""
        self.counters = counters
        self.step = 0
        self.time = 0
        self.violation: Violation | None = None

    @property
    def checkers(self) -> tuple[Checker, ...]:
        return self._checkers

    def advance_to(self, t: int) -> None:
        if t < self.time:
            raise SimError(f"time cannot go backwards: now {self.time}, asked {t}")
        self.time = t

    def guard(self) -> None:
        if self.violation is not None:
            raise SimError(
                f"the run stopped at step {self.violation.step} ({self.violation.invariant})"
            )

    def start_failed(self, node: int, e: BaseException) -> None:
        """A member could not even start: the run's violation, at step 0 (no event)."""
        invariant, detail = error_payload(e)
        self.violation = Violation(invariant, 0, detail, {"node": node, "kind": "start"})

    def emit(self, kind: str, node: int | None, payload: dict[str, Any]) -> Event:
        self.step += 1
        event = Event(self.step, self.time, kind, node, payload)
        self.counters.events += 1
        if self.sink is not None:
            self.sink(event)
        view = self._view
        for check in self._checks:
            found = check(view, event)
            if found:
                self.violation = found[0]
                break
        return event

    def failed(self, kind: str, node: int, payload: dict[str, Any], e: BaseException) -> Event:
        invariant, detail = error_payload(e)
        payload["error"] = {"invariant": invariant, "detail": detail}
        self.step += 1
        event = Event(self.step, self.time, kind, node, payload)
        self.counters.events += 1
        if self.sink is not None:
            self.sink(event)
        # The node's state is suspect after it raised: no checker runs on it.
        self.violation = Violation(
            invariant, self.step, detail, {"node": node, "kind": kind, "raised": True}
        )
        return event


class NetCounting(Protocol):
    """The counters `EventLog` and `NetworkActions` keep (both clusters' counters have
    them: `NetCounters` and a partition count)."""

    events: int
    messages_sent: int
    messages_delivered: int
    messages_dropped: int
    messages_duplicated: int
    partitions: int


class Seat(Protocol):
    """A member as the shared machinery sees it (`member.MemberSlot`s: `member.Member`,
    `kvcluster.KVSlot`)."""

    incarnation: int
    stopped: bool
    """Stopped for good (removed from the configuration), not merely crashed."""

    @property
    def alive(self) -> bool: ...


R = TypeVar("R", bound=Seat)


class NetworkActions:
    """The Raft network's actions, shared by both clusters; see the module docstring."""

    __slots__ = ("counters", "log", "network")

    def __init__(self, network: Network, log: EventLog, counters: NetCounting) -> None:
        self.network = network
        self.log = log
        self.counters = counters

    def deliver(
        self,
        msg_id: int,
        members: Mapping[int, R],
        step: Callable[[R, Message, dict[str, Any]], None],
    ) -> Event:
        """Message `msg_id` leaves the network; `step(member, msg, payload)` hands it to a
        live target (and sets ``result``); anything it raises is the member's failure."""
        log = self.log
        log.guard()
        network = self.network
        try:
            msg = network.take(msg_id)
        except NetworkError as e:
            raise SimError(str(e)) from None
        to = msg.to
        payload: dict[str, Any] = {
            "id": msg_id,
            "from": msg.from_,
            "type": TYPE_NAMES[msg.type],
            "term": msg.term,
        }
        counters = self.counters
        m = members.get(to)
        if m is None:
            payload["result"] = "unknown-member"
        elif not network.reachable(msg.from_, to):
            payload["result"] = "partitioned"
        elif not m.alive:
            payload["result"] = "stopped" if m.stopped else "down"
        else:
            try:
                step(m, msg, payload)
            except Exception as e:
                return log.failed("deliver", to, payload, e)
            counters.messages_delivered += 1
            return log.emit("deliver", to, payload)
        counters.messages_dropped += 1
        return log.emit("deliver", to, payload)

    def drop(self, msg_id: int, reason: str = "loss") -> Event:
        self.log.guard()
        try:
            msg = self.network.drop(msg_id)
        except NetworkError as e:
            raise SimError(str(e)) from None
        self.counters.messages_dropped += 1
        payload = {"id": msg_id, "from": msg.from_, "type": TYPE_NAMES[msg.type], "reason": reason}
        return self.log.emit("drop", msg.to, payload)

    def duplicate(self, msg_id: int) -> Event:
        self.log.guard()
        try:
            msg = self.network.peek(msg_id)
            copy = self.network.duplicate(msg_id)
        except NetworkError as e:
            raise SimError(str(e)) from None
        self.counters.messages_duplicated += 1
        payload = {"id": msg_id, "copy": copy, "from": msg.from_, "type": TYPE_NAMES[msg.type]}
        return self.log.emit("duplicate", msg.to, payload)

    def partition(
        self,
        groups: Sequence[Iterable[int]] | None = None,
        cut: Iterable[Sequence[int]] | None = None,
    ) -> Event:
        """Replace the partition: by `groups` (symmetric) or by directed `cut` links."""
        self.log.guard()
        if (groups is None) == (cut is None):
            raise SimError("partition takes exactly one of groups= or cut=")
        try:
            if groups is not None:
                links = self.network.split(groups)
            else:
                assert cut is not None
                links = self.network.cut_links(_pairs(cut))
        except NetworkError as e:
            raise SimError(str(e)) from None
        self.counters.partitions += 1
        return self.log.emit("partition", None, {"cut": sorted([u, v] for u, v in links)})

    def heal(self) -> Event:
        self.log.guard()
        self.network.heal()
        return self.log.emit("heal", None, {})

    def send(self, messages: Sequence[Message]) -> list[dict[str, Any]]:
        """Put a Ready's messages in flight; the ``sent`` payload (ids in send order)."""
        send = self.network.send
        sent = [{"id": send(msg), "msg": _encode_message(msg)} for msg in messages]
        self.counters.messages_sent += len(messages)
        return sent


def _pairs(cut: Iterable[Sequence[int]]) -> list[tuple[int, int]]:
    out = []
    for link in cut:
        if len(link) != 2:
            raise SimError(f"a cut link is a pair [from, to], got {list(link)!r}")
        out.append((int(link[0]), int(link[1])))
    return out


class LoggedCluster:
    """The part of a cluster that its `EventLog` and `NetworkActions` make; see the
    module docstring.  A cluster sets ``log`` and ``net`` in its constructor."""

    log: EventLog
    net: NetworkActions

    def _start_events(
        self,
        view: ClusterView,
        network: Network,
        counters: NetCounting,
        checkers: Sequence[Checker],
        sink: EventSink | None,
    ) -> None:
        """The cluster's `EventLog` and `NetworkActions`; `view` (the cluster itself) is
        what the checkers see."""
        self.log = EventLog(view, counters, checkers, sink)
        self.net = NetworkActions(network, self.log, counters)

    @property
    def step(self) -> int:
        return self.log.step

    @property
    def time(self) -> int:
        return self.log.time

    @property
    def violation(self) -> Violation | None:
        """The run's first violation (None while it runs)."""
        return self.log.violation

    @property
    def stopped(self) -> bool:
        return self.log.violation is not None

    def advance_to(self, t: int) -> None:
        self.log.advance_to(t)

    def drop(self, msg_id: int, reason: str = "loss") -> Event:
        return self.net.drop(msg_id, reason)

    def duplicate(self, msg_id: int) -> Event:
        return self.net.duplicate(msg_id)

    def partition(
        self,
        groups: Sequence[Iterable[int]] | None = None,
        cut: Iterable[Sequence[int]] | None = None,
    ) -> Event:
        """Replace the partition: by `groups` (symmetric) or by directed `cut` links."""
        return self.net.partition(groups, cut)

    def heal(self) -> Event:
        return self.net.heal()
