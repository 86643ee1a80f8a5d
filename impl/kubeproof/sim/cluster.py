"""The simulated cluster and its action API: the one code path every driver uses.

Theory of operation
-------------------
A `Cluster` holds the members (`member.Member`), the network
(`network.Network`), the virtual clock and the client's proposals.  It does
nothing by itself: a driver calls its actions, each of which is one *event*.

| action                 | what happens                                                       |
| ---------------------- | ------------------------------------------------------------------ |
| `tick(n)`              | member n's node ticks                                              |
| `deliver(id)`          | message id leaves the network; if the link is up and the target   |
|                        | alive, the target steps it (otherwise it is lost)                 |
| `drop(id)`             | message id is lost in flight                                       |
| `duplicate(id)`        | a second copy of message id goes in flight under a new id          |
| `process_ready(n)`     | n's Ready: persist snapshot, entries, hard state; then send the   |
|                        | messages; then apply the committed entries; then `advance`        |
| `crash(n)`             | n's volatile state is lost (anything not yet processed by         |
|                        | `process_ready`, the disk stays)                                   |
| `restart(n)`           | a new node over n's disk, next incarnation                         |
| `partition(...)`       | replace the set of cut links (groups, or directed edges)           |
| `heal()`               | every link up                                                      |
| `propose(n, data)`     | a client proposes a unique payload to n: accepted, dropped or down |

Persist-before-send is enforced by construction: a node's messages reach
the network only inside `process_ready`, after its writes are in storage.
A client's proposal is *acknowledged* when the member it was proposed to
applies it.

Each action appends one `observe.Event` (step numbers 1, 2, 3 ...; the
clock is whatever the driver set with `advance_to`), hands it to the sink
(the trace writer, or a replay comparator), then runs every checker.  The
first violation stops the cluster: later actions raise `SimError`.  A node
that raises `RaftInvariantError` (etcd's panics) is a violation named by
its invariant; any other exception from a node is the violation
`SIM-NODE-EXCEPTION`.  Neither crashes the driver.

The random scheduler (`harness.Simulation`), the Hypothesis state machine
and replay-by-schedule all drive this API, so all three produce the same
kind of trace and can replay each other's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs
from attrs import define, field

from kubeproof import codec
from kubeproof.raft import (
    Entry,
    HardState,
    Message,
    MessageType,
    ProposalDropped,
    RaftInvariantError,
    RaftNode,
    StateType,
)

from .config import SimConfig
from .member import Member, MemberError, NodeFactory, raft_config
from .network import Network, NetworkError
from .observe import Checker, Event, Violation

EventSink = Callable[[Event], None]

NODE_EXCEPTION = "SIM-NODE-EXCEPTION"
"""The invariant ID recorded when a node raises something other than RaftInvariantError."""

_LEADER = StateType.Leader
# Enum `.value` is a descriptor call; a dict lookup is several times cheaper per event.
_TYPE_NAMES: dict[MessageType, str] = {t: t.value for t in MessageType}
_encode_message = codec.encoder(Message)
_encode_entry = codec.encoder(Entry)
_encode_hard_state = codec.encoder(HardState)


class SimError(RuntimeError):
    """An action that cannot be executed: unknown member, member down, message not in
    flight, clock going backwards, or the run already stopped by a violation."""


@define
class Counters:
    """What a run did; the campaign sums these over seeds."""

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
    proposals: int = 0
    proposals_accepted: int = 0
    proposals_dropped: int = 0
    proposals_acknowledged: int = 0
    crashes: int = 0
    restarts: int = 0
    partitions: int = 0

    def to_json(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in attrs.fields(Counters):
            value = getattr(self, f.name)
            out[f.name] = len(value) if isinstance(value, set) else value
        return out


def _error_payload(e: BaseException) -> tuple[str, str]:
    if isinstance(e, RaftInvariantError):
        return e.invariant, e.detail
    return NODE_EXCEPTION, f"{type(e).__name__}: {e}"


class Cluster:
    """The members, the network, the clock, the client; see the module docstring."""

    def __init__(
        self,
        config: SimConfig,
        seed: int,
        *,
        checkers: Sequence[Checker] = (),
        node_factory: NodeFactory = RaftNode,
        sink: EventSink | None = None,
    ) -> None:
        self.config = config
        self.seed = seed
        self._checkers = tuple(checkers)
        self._factory = node_factory
        self._sink = sink
        self._step = 0
        self._time = 0
        self.members: dict[int, Member] = {}
        self.network = Network(config.voters)
        self.counters = Counters()
        self.violation: Violation | None = None
        self._pending: dict[bytes, int] = {}
        self._acknowledged: dict[bytes, int] = {}
        self._next_proposal = 1
        for i in config.voters:
            m = Member(i, raft_config(config, i))
            self.members[i] = m
        for m in self.members.values():
            try:
                node = m.start(node_factory, seed)
            except Exception as e:  # a node that cannot even start is a violation, not a crash
                invariant, detail = _error_payload(e)
                self.violation = Violation(invariant, 0, detail, {"node": m.id, "kind": "start"})
                break
            m.role, m.term = node.state, node.term

    # ---------------------------------------------------------- ClusterView

    @property
    def step(self) -> int:
        return self._step

    @property
    def time(self) -> int:
        return self._time

    @property
    def nodes(self) -> Mapping[int, Member]:
        return self.members

    @property
    def acknowledged(self) -> Mapping[bytes, int]:
        return self._acknowledged

    @property
    def pending_proposals(self) -> Mapping[bytes, int]:
        """Accepted, not yet acknowledged: payload -> member it was proposed to."""
        return self._pending

    @property
    def stopped(self) -> bool:
        return self.violation is not None

    def advance_to(self, t: int) -> None:
        if t < self._time:
            raise SimError(f"time cannot go backwards: now {self._time}, asked {t}")
        self._time = t

    # -------------------------------------------------------------- actions

    def tick(self, node_id: int) -> Event:
        m, node = self._alive(node_id)
        payload: dict[str, Any] = {}
        try:
            node.tick()
        except Exception as e:
            return self._failed("tick", node_id, payload, e)
        self._note_role(m, node, payload)
        return self._emit("tick", node_id, payload)

    def deliver(self, msg_id: int) -> Event:
        self._guard()
        try:
            msg = self.network.take(msg_id)
        except NetworkError as e:
            raise SimError(str(e)) from None
        to = msg.to
        payload: dict[str, Any] = {
            "id": msg_id,
            "from": msg.from_,
            "type": _TYPE_NAMES[msg.type],
            "term": msg.term,
        }
        counters = self.counters
        m = self.members.get(to)
        if m is None:
            payload["result"] = "unknown-member"
        elif not self.network.reachable(msg.from_, to):
            payload["result"] = "partitioned"
        elif m.node is None:
            payload["result"] = "down"
        else:
            node = m.node
            try:
                node.step(msg)
                payload["result"] = "ok"
            except ProposalDropped:
                payload["result"] = "proposal-dropped"
            except Exception as e:
                return self._failed("deliver", to, payload, e)
            counters.messages_delivered += 1
            self._note_role(m, node, payload)
            return self._emit("deliver", to, payload)
        counters.messages_dropped += 1
        return self._emit("deliver", to, payload)

    def drop(self, msg_id: int, reason: str = "loss") -> Event:
        self._guard()
        try:
            msg = self.network.drop(msg_id)
        except NetworkError as e:
            raise SimError(str(e)) from None
        self.counters.messages_dropped += 1
        payload = {"id": msg_id, "from": msg.from_, "type": _TYPE_NAMES[msg.type], "reason": reason}
        return self._emit("drop", msg.to, payload)

    def duplicate(self, msg_id: int) -> Event:
        self._guard()
        try:
            msg = self.network.peek(msg_id)
            copy = self.network.duplicate(msg_id)
        except NetworkError as e:
            raise SimError(str(e)) from None
        self.counters.messages_duplicated += 1
        payload = {"id": msg_id, "copy": copy, "from": msg.from_, "type": _TYPE_NAMES[msg.type]}
        return self._emit("duplicate", msg.to, payload)

    def process_ready(self, node_id: int) -> Event:
        m, node = self._alive(node_id)
        payload: dict[str, Any] = {}
        try:
            rd = node.ready()
            storage = m.storage
            # Persist first: snapshot, entries, hard state ...
            if rd.snapshot is not None:
                storage.apply_snapshot(rd.snapshot)
                payload["snapshot"] = codec.encode(rd.snapshot.metadata)
            if rd.entries:
                storage.append(rd.entries)
                payload["entries"] = [_encode_entry(e) for e in rd.entries]
            if rd.hard_state is not None:
                storage.set_hard_state(rd.hard_state)
                payload["hard_state"] = _encode_hard_state(rd.hard_state)
            # ... then send ...
            if rd.messages:
                send = self.network.send
                payload["sent"] = [
                    {"id": send(msg), "msg": _encode_message(msg)} for msg in rd.messages
                ]
                self.counters.messages_sent += len(rd.messages)
            # ... then apply ...
            if rd.committed_entries:
                payload["applied"] = self._apply(m, rd.committed_entries, payload)
            node.advance(rd)
        except Exception as e:
            return self._failed("process_ready", node_id, payload, e)
        self._note_role(m, node, payload)
        return self._emit("process_ready", node_id, payload)

    def crash(self, node_id: int) -> Event:
        self._guard()
        m = self._member(node_id)
        try:
            lost = m.crash()
        except MemberError as e:
            raise SimError(str(e)) from None
        self.counters.crashes += 1
        return self._emit("crash", node_id, {"lost_ready": lost})

    def restart(self, node_id: int) -> Event:
        self._guard()
        m = self._member(node_id)
        payload: dict[str, Any] = {"incarnation": m.incarnation + 1}
        try:
            node = m.restart(self._factory, self.seed)
        except MemberError as e:
            raise SimError(str(e)) from None
        except Exception as e:
            return self._failed("restart", node_id, payload, e)
        m.role, m.term = node.state, node.term
        payload["term"] = node.term
        self.counters.restarts += 1
        return self._emit("restart", node_id, payload)

    def partition(
        self,
        groups: Sequence[Iterable[int]] | None = None,
        cut: Iterable[Sequence[int]] | None = None,
    ) -> Event:
        """Replace the partition: by `groups` (symmetric) or by directed `cut` links."""
        self._guard()
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
        return self._emit("partition", None, {"cut": sorted([u, v] for u, v in links)})

    def heal(self) -> Event:
        self._guard()
        self.network.heal()
        return self._emit("heal", None, {})

    def propose(self, node_id: int, data: bytes | None = None) -> Event:
        self._guard()
        m = self._member(node_id)
        if data is None:
            data = b"p%d" % self._next_proposal
        elif data in self._pending or data in self._acknowledged:
            raise SimError(f"proposal payload {data!r} was already proposed (payloads are unique)")
        self._next_proposal += 1
        self.counters.proposals += 1
        payload: dict[str, Any] = {"data": codec.encode(data)}
        node = m.node
        if node is None:
            payload["result"] = "down"
            self.counters.proposals_dropped += 1
            return self._emit("propose", node_id, payload)
        try:
            node.propose(data)
            payload["result"] = "accepted"
            self._pending[data] = node_id
            self.counters.proposals_accepted += 1
        except ProposalDropped:
            payload["result"] = "dropped"
            self.counters.proposals_dropped += 1
        except Exception as e:
            return self._failed("propose", node_id, payload, e)
        self._note_role(m, node, payload)
        return self._emit("propose", node_id, payload)

    # ------------------------------------------------------------- helpers

    def has_ready(self, node_id: int) -> bool:
        node = self.members[node_id].node
        return node is not None and node.has_ready()

    def alive_ids(self) -> list[int]:
        return [i for i, m in self.members.items() if m.node is not None]

    def down_ids(self) -> list[int]:
        return [i for i, m in self.members.items() if m.node is None]

    def leaders(self) -> list[int]:
        return [
            i for i, m in self.members.items() if m.node is not None and m.node.state is _LEADER
        ]

    def _apply(self, m: Member, entries: Sequence[Entry], payload: dict[str, Any]) -> list[Any]:
        out = []
        counters = self.counters
        pending = self._pending
        for e in entries:
            m.record_applied(e)
            out.append(_encode_entry(e))
            if e.index > counters.committed:
                counters.committed = e.index
            if e.data and pending.get(e.data) == m.id:
                del pending[e.data]
                self._acknowledged[e.data] = e.index
                counters.proposals_acknowledged += 1
                payload.setdefault("acknowledged", []).append(codec.encode(e.data))
        return out

    def _guard(self) -> None:
        if self.violation is not None:
            raise SimError(
                f"the run stopped at step {self.violation.step} ({self.violation.invariant})"
            )

    def _member(self, node_id: int) -> Member:
        try:
            return self.members[node_id]
        except KeyError:
            raise SimError(f"no member {node_id} (members: {list(self.members)})") from None

    def _alive(self, node_id: int) -> tuple[Member, RaftNode]:
        self._guard()
        m = self._member(node_id)
        if m.node is None:
            raise SimError(f"member {node_id} is down")
        return m, m.node

    def _note_role(self, m: Member, node: RaftNode, payload: dict[str, Any]) -> None:
        state = node.state
        term = node.term
        if state is m.role and term == m.term:
            return
        payload["became"] = {"role": state.value, "term": term}
        if state is _LEADER and m.role is not _LEADER:
            self.counters.elections += 1
            self.counters.leaders.add(m.id)
        m.role = state
        m.term = term

    def _emit(self, kind: str, node: int | None, payload: dict[str, Any]) -> Event:
        self._step += 1
        event = Event(self._step, self._time, kind, node, payload)
        self.counters.events += 1
        if self._sink is not None:
            self._sink(event)
        for checker in self._checkers:
            found = checker.check(self, event)
            if found:
                self.violation = found[0]
                break
        return event

    def _failed(self, kind: str, node: int, payload: dict[str, Any], e: BaseException) -> Event:
        invariant, detail = _error_payload(e)
        payload["error"] = {"invariant": invariant, "detail": detail}
        self._step += 1
        event = Event(self._step, self._time, kind, node, payload)
        self.counters.events += 1
        if self._sink is not None:
            self._sink(event)
        # The node's state is suspect after it raised: no checker runs on it.
        self.violation = Violation(
            invariant, self._step, detail, {"node": node, "kind": kind, "raised": True}
        )
        return event


def _pairs(cut: Iterable[Sequence[int]]) -> list[tuple[int, int]]:
    out = []
    for link in cut:
        if len(link) != 2:
            raise SimError(f"a cut link is a pair [from, to], got {list(link)!r}")
        out.append((int(link[0]), int(link[1])))
    return out
