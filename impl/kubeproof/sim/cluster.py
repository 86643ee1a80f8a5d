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
| `snapshot(n, compact)` | n's application state becomes its disk's snapshot (at the applied |
|                        | index, with the configuration in force there); the log is then    |
|                        | compacted up to `compact`                                          |
| `conf_change(n, cc)`   | propose a membership change (a ConfChangeV2) to n                  |
| `transfer(n, target)`  | ask n to transfer leadership to target                             |
| `read(n, ctx)`         | a client asks n for a linearizable read (ReadIndex) named ctx     |
| `report_snapshot(n, p, | tell n (a leader) how sending a snapshot to p went (Finish or      |
| status)`               | Failure), as etcd's transport does                                 |
| `join(n)`              | a new member n starts over an empty disk (it was added)            |
| `stop(n)`              | member n stops for good (it was removed)                           |

Persist-before-send is enforced by construction: a node's messages reach
the network only inside `process_ready`, after its writes are in storage.
A client's proposal is *acknowledged* when the member it was proposed to
applies it.

The application (`app.AppState`, one per live member) is driven from
`process_ready`: a snapshot in the Ready restores it; each committed entry
is applied to it; a committed membership change is also applied to the
node (`apply_conf_change`) and its new configuration written to the disk
(`set_conf_state`); read states are recorded and served once the
application has applied up to their index.  The event's payload says all
of it (`snapshot`, `applied`, `conf`, `read_states`, `served`, `state`).

Membership: the cluster remembers the latest configuration applied anywhere
(by index).  `pending_joins()` names the members it includes that do not
exist yet; `due_stops()` the members it excludes that should stop now: those
that applied their own removal, and those whose removal every voter of the
new configuration has applied (as etcd's transport refuses a removed
member).  The driver turns them into `join` and `stop` events.

Each action appends one `observe.Event` (step numbers 1, 2, 3 ...; the
clock is whatever the driver set with `advance_to`), hands it to the sink
(the trace writer, or a replay comparator), then runs every checker.  The
first violation stops the cluster: later actions raise `SimError`.  A node
that raises `RaftInvariantError` (etcd's panics) is a violation named by
its invariant; any other exception from a node is the violation
`SIM-NODE-EXCEPTION`.  Neither crashes the driver.  That bookkeeping, and
the network actions (`deliver`, `drop`, `duplicate`, `partition`, `heal`),
are `events.EventLog` and `events.NetworkActions`, which the store's
`kvcluster.KVCluster` shares.

The random scheduler (`harness.Simulation`), the Hypothesis state machine
and replay-by-schedule all drive this API, so all three produce the same
kind of trace and can replay each other's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from attrs import define

from kubeproof import codec
from kubeproof.raft import (
    ConfChangeV2,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    ProposalDropped,
    RaftInvariantError,
    RaftNode,
    SnapshotStatus,
    StateType,
    apply_conf_change_v2,
    decode_conf_change,
)

from .app import AppState
from .config import SimConfig
from .events import (
    NODE_EXCEPTION,
    EventSink,
    LoggedCluster,
    NetCounters,
    SimError,
    member_of,
)
from .member import Member, MemberError, NodeFactory, lifecycle, raft_config
from .network import Network
from .observe import Checker, Event

__all__ = [
    "NODE_EXCEPTION",
    "STORAGE_SNAPSHOT_OUT_OF_DATE",
    "AppConfMismatch",
    "Cluster",
    "Counters",
    "EventSink",
    "SimError",
    "conf_members",
    "conf_voters",
]


STORAGE_SNAPSHOT_OUT_OF_DATE = "STORAGE-SNAPSHOT-OUT-OF-DATE"
"""A Ready handed the application a snapshot not newer than the one on its disk."""

_LEADER = StateType.Leader
_encode_entry = codec.encoder(Entry)
_encode_hard_state = codec.encoder(HardState)
_MSG_SNAP = MessageType.MsgSnap
_CONF_V2 = EntryType.EntryConfChangeV2


class AppConfMismatch(RuntimeError):
    """The node's configuration after a change is not the application's: a bug."""


def conf_members(cs: ConfState) -> frozenset[int]:
    """Everyone a configuration names: voters (both halves) and learners (both sets)."""
    return frozenset((*cs.voters, *cs.voters_outgoing, *cs.learners, *cs.learners_next))


def conf_voters(cs: ConfState) -> frozenset[int]:
    return frozenset((*cs.voters, *cs.voters_outgoing))


@define
class Counters(NetCounters):
    """What a run did; the campaign sums these over seeds."""

    proposals: int = 0
    proposals_accepted: int = 0
    proposals_dropped: int = 0
    proposals_acknowledged: int = 0
    crashes: int = 0
    restarts: int = 0
    partitions: int = 0
    snapshots: int = 0
    """Snapshots taken (and logs compacted) by members."""
    snapshots_delivered: int = 0
    """MsgSnap messages a member stepped."""
    snapshots_restored: int = 0
    """Readys that carried a snapshot (a member restored its state from it)."""
    conf_changes: int = 0
    conf_changes_accepted: int = 0
    configurations: int = 0
    """Configurations that came into force (a newer membership change applied somewhere)."""
    members_joined: int = 0
    members_stopped: int = 0
    transfers: int = 0
    reads: int = 0
    reads_served: int = 0


class Cluster(LoggedCluster):
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
        self._factory = node_factory
        self.members: dict[int, Member] = {}
        self.network = Network(config.voters)
        self.counters = Counters()
        self._start_events(self, self.network, self.counters, checkers, sink)
        self._pending: dict[bytes, int] = {}
        self._acknowledged: dict[bytes, int] = {}
        self._next_proposal = 1
        self._next_read = 1
        self._read_ctxs: set[bytes] = set()
        self.initial_conf = ConfState(voters=config.voters)
        self._latest_conf: tuple[int, ConfState] = (0, self.initial_conf)
        self._removals: dict[int, tuple[int, frozenset[int]]] = {}
        for i in config.voters:
            m = Member(i, raft_config(config, i), self.initial_conf)
            self.members[i] = m
        for m in self.members.values():
            try:
                node = m.start(node_factory, seed)
            except Exception as e:  # a node that cannot even start is a violation, not a crash
                self.log.start_failed(m.id, e)
                break
            m.role, m.term = node.state, node.term

    # ---------------------------------------------------------- ClusterView

    @property
    def _sink(self) -> EventSink | None:
        """The event sink (`events.EventLog.sink`; tests swap it to watch the events)."""
        return self.log.sink

    @_sink.setter
    def _sink(self, sink: EventSink | None) -> None:
        self.log.sink = sink

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
    def latest_conf(self) -> tuple[int, ConfState]:
        """(index, configuration) of the newest membership change applied anywhere."""
        return self._latest_conf

    # -------------------------------------------------------------- actions

    def tick(self, node_id: int) -> Event:
        m, node = self._alive(node_id)
        payload: dict[str, Any] = {}
        try:
            node.tick()
        except Exception as e:
            return self.log.failed("tick", node_id, payload, e)
        m.note_role(node, payload, self.counters)
        return self.log.emit("tick", node_id, payload)

    def deliver(self, msg_id: int) -> Event:
        return self.net.deliver(msg_id, self.members, self._step_member)

    def _step_member(self, m: Member, msg: Message, payload: dict[str, Any]) -> None:
        node = m.node
        assert node is not None
        try:
            node.step(msg)
            payload["result"] = "ok"
        except ProposalDropped:
            payload["result"] = "proposal-dropped"
        if msg.type is _MSG_SNAP:
            self.counters.snapshots_delivered += 1
        m.note_role(node, payload, self.counters)

    def process_ready(self, node_id: int) -> Event:
        m, node = self._alive(node_id)
        payload: dict[str, Any] = {}
        try:
            rd = node.ready()
            storage = m.storage
            app = m.app
            assert app is not None
            app_index = app.index
            # Persist first: snapshot, entries, hard state ...
            if rd.snapshot is not None:
                snap = rd.snapshot
                held = storage.snapshot().metadata.index
                if snap.metadata.index <= held:
                    # etcd's MemoryStorage refuses it (ErrSnapOutOfDate) and etcd panics:
                    # a node only hands out a snapshot newer than its commit index.
                    raise RaftInvariantError(
                        STORAGE_SNAPSHOT_OUT_OF_DATE,
                        f"the Ready carries a snapshot at {snap.metadata.index}, not newer "
                        f"than the snapshot at {held} on disk",
                    )
                storage.apply_snapshot(snap)
                payload["snapshot"] = codec.encode(snap.metadata)
                # ... and the application restores its state from the snapshot.
                app = m.app = AppState.restore(snap)
                app_index = -1
                m.conf_index = snap.metadata.index
                self.counters.snapshots_restored += 1
                self._note_conf(snap.metadata.index, snap.metadata.conf_state)
            if rd.entries:
                storage.append(rd.entries)
                payload["entries"] = [_encode_entry(e) for e in rd.entries]
            if rd.hard_state is not None:
                storage.set_hard_state(rd.hard_state)
                payload["hard_state"] = _encode_hard_state(rd.hard_state)
            # ... then send ...
            if rd.messages:
                payload["sent"] = self.net.send(rd.messages)
            # ... then apply ...
            if rd.committed_entries:
                payload["applied"] = self._apply(m, node, app, rd.committed_entries, payload)
            if rd.read_states:
                states = payload["read_states"] = []
                for rs in rd.read_states:
                    states.append({"ctx": codec.encode(rs.request_ctx), "index": rs.index})
                    m.reads.setdefault(rs.request_ctx, rs.index)
            if m.reads:
                self._serve_reads(m, app, payload)
            if app.index != app_index:
                payload["state"] = {"digest": app.hex, "index": app.index}
            node.advance(rd)
        except Exception as e:
            return self.log.failed("process_ready", node_id, payload, e)
        m.note_role(node, payload, self.counters)
        return self.log.emit("process_ready", node_id, payload)

    def crash(self, node_id: int) -> Event:
        self.log.guard()
        lost = lifecycle(self.members, node_id, Member.crash)
        self.counters.crashes += 1
        return self.log.emit("crash", node_id, {"lost_ready": lost})

    def restart(self, node_id: int) -> Event:
        self.log.guard()
        m = self._member(node_id)
        payload: dict[str, Any] = {"incarnation": m.incarnation + 1}
        try:
            node = m.restart(self._factory, self.seed)
        except MemberError as e:
            raise SimError(str(e)) from None
        except Exception as e:
            return self.log.failed("restart", node_id, payload, e)
        m.role, m.term = node.state, node.term
        payload["term"] = node.term
        self.counters.restarts += 1
        return self.log.emit("restart", node_id, payload)

    def join(self, node_id: int) -> Event:
        """A new member starts over an empty disk, with the initial configuration."""
        self.log.guard()
        if node_id in self.members:
            raise SimError(f"member {node_id} already exists")
        if node_id <= 0:
            raise SimError(f"member ids are positive, got {node_id}")
        m = Member(node_id, raft_config(self.config, node_id), self.initial_conf)
        self.members[node_id] = m
        self.network.add_member(node_id)
        payload: dict[str, Any] = {"incarnation": 0}
        try:
            node = m.start(self._factory, self.seed)
        except Exception as e:
            return self.log.failed("join", node_id, payload, e)
        m.role, m.term = node.state, node.term
        self.counters.members_joined += 1
        return self.log.emit("join", node_id, payload)

    def stop(self, node_id: int) -> Event:
        """Member n stops for good (it was removed from the configuration)."""
        self.log.guard()
        was_alive = lifecycle(self.members, node_id, Member.stop)
        self.counters.members_stopped += 1
        return self.log.emit("stop", node_id, {"was_alive": was_alive})

    def propose(self, node_id: int, data: bytes | None = None) -> Event:
        self.log.guard()
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
            return self.log.emit("propose", node_id, payload)
        try:
            node.propose(data)
            payload["result"] = "accepted"
            self._pending[data] = node_id
            self.counters.proposals_accepted += 1
        except ProposalDropped:
            payload["result"] = "dropped"
            self.counters.proposals_dropped += 1
        except Exception as e:
            return self.log.failed("propose", node_id, payload, e)
        m.note_role(node, payload, self.counters)
        return self.log.emit("propose", node_id, payload)

    def snapshot(self, node_id: int, compact: int | None = None) -> Event:
        """Snapshot n's application state at its applied index, then compact the log.

        `compact` (default: the snapshot index) is the compaction point: the
        log keeps the entries after it, as etcd keeps some for slow followers.
        """
        m, _ = self._alive(node_id)
        app = m.app
        assert app is not None
        storage = m.storage
        index = app.index
        held = storage.snapshot().metadata.index
        if index <= held:
            raise SimError(
                f"member {node_id} has nothing new to snapshot (applied {index}, snapshot {held})"
            )
        c = index if compact is None else compact
        if not storage.first_index() <= c <= index:
            raise SimError(
                f"compaction point {c} must be in [{storage.first_index()}, {index}] "
                f"(first index, snapshot index)"
            )
        payload: dict[str, Any] = {"index": index, "compact": c, "digest": app.hex}
        try:
            snap = storage.create_snapshot(index, app.conf, app.snapshot_data())
            storage.compact(c)
        except Exception as e:
            return self.log.failed("snapshot", node_id, payload, e)
        payload["term"] = snap.metadata.term
        self.counters.snapshots += 1
        return self.log.emit("snapshot", node_id, payload)

    def conf_change(self, node_id: int, cc: ConfChangeV2) -> Event:
        """Propose a membership change to member n."""
        self.log.guard()
        m = self._member(node_id)
        self.counters.conf_changes += 1

        def ask(node: RaftNode) -> str:
            try:
                node.propose_conf_change(cc)
            except ProposalDropped:
                return "dropped"
            self.counters.conf_changes_accepted += 1
            return "accepted"

        return self._ask("conf_change", m, {"cc": codec.encode(cc)}, ask)

    def transfer(self, node_id: int, target: int) -> Event:
        """Ask member n to transfer leadership to `target` (forwarded if n follows)."""
        m, node = self._alive(node_id)
        payload: dict[str, Any] = {"to": target}
        try:
            node.transfer_leadership(target)
        except Exception as e:
            return self.log.failed("transfer", node_id, payload, e)
        self.counters.transfers += 1
        m.note_role(node, payload, self.counters)
        return self.log.emit("transfer", node_id, payload)

    def read(self, node_id: int, ctx: bytes | None = None) -> Event:
        """A client asks member n for a linearizable read; ctx names it (unique)."""
        self.log.guard()
        m = self._member(node_id)
        if ctx is None:
            ctx = b"r%d" % self._next_read
        if ctx in self._read_ctxs:
            raise SimError(f"read context {ctx!r} was already used (contexts are unique)")
        self._next_read += 1
        self._read_ctxs.add(ctx)
        self.counters.reads += 1
        asked = ctx

        def ask(node: RaftNode) -> str:
            node.read_index(asked)
            return "asked"

        return self._ask("read", m, {"ctx": codec.encode(ctx)}, ask)

    def report_snapshot(self, node_id: int, peer: int, status: SnapshotStatus) -> Event:
        """Tell member n how sending its snapshot to `peer` went (etcd's ReportSnapshot)."""
        m, node = self._alive(node_id)
        payload: dict[str, Any] = {"peer": peer, "status": status.value}
        try:
            node.report_snapshot(peer, status)
        except Exception as e:
            return self.log.failed("report_snapshot", node_id, payload, e)
        m.note_role(node, payload, self.counters)
        return self.log.emit("report_snapshot", node_id, payload)

    # ------------------------------------------------------------ membership

    def pending_joins(self) -> list[int]:
        """Members the latest configuration names that do not exist yet."""
        cs = self._latest_conf[1]
        return sorted(i for i in conf_members(cs) if i not in self.members)

    def due_stops(self) -> list[int]:
        """Removed members that should stop now (see the module docstring)."""
        out = []
        members = self.members
        for x, (k, voters) in self._removals.items():
            m = members.get(x)
            if m is None or m.stopped:
                continue
            if m.app is not None and m.app.index >= k:
                out.append(x)
                continue
            ready = True
            for v in voters:
                mv = members.get(v)
                if mv is None or (not mv.stopped and (mv.app is None or mv.app.index < k)):
                    ready = False
                    break
            if ready:
                out.append(x)
        return sorted(out)

    def _note_conf(self, index: int, cs: ConfState) -> None:
        if index <= self._latest_conf[0]:
            return
        self._latest_conf = (index, cs)
        self.counters.configurations += 1
        named = conf_members(cs)
        voters = conf_voters(cs)
        for x, m in self.members.items():
            if x not in named and not m.stopped and x not in self._removals:
                self._removals[x] = (index, voters)

    # ------------------------------------------------------------- helpers

    def has_ready(self, node_id: int) -> bool:
        return self.members[node_id].has_ready()

    def alive_ids(self) -> list[int]:
        return [i for i, m in self.members.items() if m.node is not None]

    def down_ids(self) -> list[int]:
        """Crashed members (not those stopped for good)."""
        return [i for i, m in self.members.items() if m.node is None and not m.stopped]

    def active_ids(self) -> list[int]:
        """Members not stopped for good (alive or crashed)."""
        return [i for i, m in self.members.items() if not m.stopped]

    def leaders(self) -> list[int]:
        return [
            i for i, m in self.members.items() if m.node is not None and m.node.state is _LEADER
        ]

    def _apply(
        self,
        m: Member,
        node: RaftNode,
        app: AppState,
        entries: Sequence[Entry],
        payload: dict[str, Any],
    ) -> list[Any]:
        out = []
        counters = self.counters
        pending = self._pending
        for e in entries:
            m.record_applied(e)
            app.apply(e)
            out.append(_encode_entry(e))
            if e.index > counters.committed:
                counters.committed = e.index
            if e.type is _CONF_V2:
                self._apply_conf(m, node, app, e, payload)
            elif e.data and pending.get(e.data) == m.id:
                del pending[e.data]
                self._acknowledged[e.data] = e.index
                counters.proposals_acknowledged += 1
                payload.setdefault("acknowledged", []).append(codec.encode(e.data))
        return out

    def _apply_conf(
        self, m: Member, node: RaftNode, app: AppState, e: Entry, payload: dict[str, Any]
    ) -> None:
        """A committed membership change: the application's configuration moves, and
        (unless the disk's configuration already includes it) the node's, on disk too."""
        cc = decode_conf_change(e)
        prev = app.conf
        cs = apply_conf_change_v2(prev, cc)
        app.conf = cs
        item: dict[str, Any] = {
            "index": e.index,
            "cc": codec.encode(cc),
            "prev": codec.encode(prev),
            "conf_state": codec.encode(cs),
        }
        if e.index > m.conf_index:
            got = node.apply_conf_change(cc)
            if got != cs:
                raise AppConfMismatch(
                    f"after the change at {e.index} the node's configuration is {got}, "
                    f"the application's {cs}"
                )
            m.storage.set_conf_state(cs)
            m.conf_index = e.index
        else:
            item["replayed"] = True
        payload.setdefault("conf", []).append(item)
        self._note_conf(e.index, cs)

    def _serve_reads(self, m: Member, app: AppState, payload: dict[str, Any]) -> None:
        done = [(ctx, i) for ctx, i in m.reads.items() if i <= app.index]
        if not done:
            return
        served = payload["served"] = []
        for ctx, i in done:
            del m.reads[ctx]
            served.append({"ctx": codec.encode(ctx), "index": i, "applied": app.index})
        self.counters.reads_served += len(done)

    def _member(self, node_id: int) -> Member:
        return member_of(self.members, node_id)

    def _alive(self, node_id: int) -> tuple[Member, RaftNode]:
        self.log.guard()
        m = self._member(node_id)
        if m.node is None:
            raise SimError(f"member {node_id} is down")
        return m, m.node

    def _ask(
        self, kind: str, m: Member, payload: dict[str, Any], ask: Callable[[RaftNode], str]
    ) -> Event:
        """A client asks member m's node (`ask` returns the ``result``); a member that is
        down or stopped cannot be asked, and says so."""
        node = m.node
        if node is None:
            payload["result"] = "stopped" if m.stopped else "down"
            return self.log.emit(kind, m.id, payload)
        try:
            payload["result"] = ask(node)
        except Exception as e:
            return self.log.failed(kind, m.id, payload, e)
        m.note_role(node, payload, self.counters)
        return self.log.emit(kind, m.id, payload)
