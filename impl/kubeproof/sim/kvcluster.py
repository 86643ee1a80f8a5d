"""The simulated replicated store and its action API.

Theory of operation
-------------------
A `KVCluster` is the Raft harness's cluster with `kubeproof.etcd.Member`s
in place of bare Raft nodes, plus the store's clients and watchers.  Like
`cluster.Cluster` it decides nothing: a driver (`kv.KVSimulation`) calls
its actions, and each action is one *event* (appended to the trace, then
shown to every checker).  It shares the Raft harness's event bookkeeping
and network actions (`events.EventLog`, `events.NetworkActions`), and its
`KVSlot`s are `member.MemberSlot`s.  The Raft actions keep their names and
meanings:

| action              | what happens                                                        |
| ------------------- | ------------------------------------------------------------------- |
| `tick(n)`           | member n ticks at the current time (its leader may propose lease    |
|                     | expiries; requests waiting too long there are answered ErrTimeout)  |
| `deliver(id)`, `drop(id)`, `duplicate(id)`, `partition(...)`, `heal()`  | as in `Cluster` |
| `process_ready(n)`  | n's Ready: persist, send, apply (the store), serve reads and watches |
| `crash(n)`          | n's `Member` is lost (its disk stays); its watch streams break      |
| `restart(n)`        | a new `Member` over n's disk: restores its snapshot, replays the log |

The store's own actions:

| action              | what happens                                                        |
| ------------------- | ------------------------------------------------------------------- |
| `call(c, req, n)`   | client c starts an operation (session seq + 1), attempt 1 to n      |
| `request(id)`       | a client's request reaches its member (lost if the member is down)  |
| `respond(id)`       | a member's answer reaches its client: ends the operation, or (no    |
|                     | leader, member timeout) makes the client back off and retry         |
| `timeout(c, a, n)`  | attempt a of c's operation went unanswered (or was answered "no     |
|                     | leader"): retry at member n (same client id and seq) or, after      |
|                     | max_attempts unanswered attempts, give up (outcome unknown)         |
| `open_watch(w, n)`  | watcher w (re)opens its stream on member n from its next revision   |
| `pause_watch(w)`    | watcher w closes its stream for a while (it lags, then resumes)     |
| `watch_event(id)`   | a watch response reaches its watcher over its stream                |

Client traffic (requests, answers, watch responses) travels on `wire`, by
id, outside the Raft network: partitions cut members from each other, not
from clients.  Watch responses of one stream are delivered in order (a
stream is one TCP connection); when a stream breaks, what it still carried
is lost, and the watcher resumes elsewhere from the last revision it got.

What happened is appended to `records` (see `kvobserve`): applications,
finished operations, watch streams and deliveries.  The history of
operations (call and return times, unknown outcomes as pending) is what
KV-LINEARIZABLE checks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from attrs import define, frozen

from kubeproof.etcd import (
    EXPIRE,
    ClientRequest,
    ClientResponse,
    KVRequest,
    LeaseExpire,
    Member,
    MemberConfig,
    Output,
)
from kubeproof.mvcc import MVCCError, RangeRequest, WatchResponse
from kubeproof.raft import Message, RaftNode, StateType

from .events import (
    EventSink,
    LoggedCluster,
    NetCounters,
    SimError,
    member_of,
)
from .kvclients import ALL_END, ALL_START, KVClient, KVWatcher, OpenOp
from .kvconfig import KVSimConfig
from .kvobserve import ApplyRecord, KVRecord, OpRecord, WatchDelivered, WatchOpened
from .member import MemberSlot, lifecycle, raft_config
from .network import Network
from .observe import Checker, Event, Violation
from .seeds import node_rng

MemberFactory = Callable[..., Member]
"""Builds a member: ``factory(cfg, storage, rng, now=now)``; `Member` or a mutant subclass."""

RETRYABLE = frozenset({"ErrNoLeader", "ErrTimeout", "ErrStopped"})
"""Errors that say only that this attempt failed: the client retries (same seq)."""

_LEADER = StateType.Leader


@define
class KVCounters(NetCounters):
    crashes: int = 0
    restarts: int = 0
    partitions: int = 0
    ops: int = 0
    ops_ok: int = 0
    ops_error: int = 0
    """Answered with an etcd error (lease not found, compacted ...): no effect."""
    ops_unknown: int = 0
    """Given up after max attempts (or in flight at the end): pending in the history."""
    attempts: int = 0
    retries: int = 0
    writes_applied: int = 0
    duplicates_suppressed: int = 0
    """Copies of a request the session table answered from its cache instead of applying."""
    reads_linearizable: int = 0
    reads_serializable: int = 0
    txns: int = 0
    compactions: int = 0
    lease_grants: int = 0
    lease_revokes: int = 0
    expiries_proposed: int = 0
    expiries_applied: int = 0
    """Expiry entries that revoked their lease (counted once, at the first member)."""
    snapshots: int = 0
    snapshots_restored: int = 0
    watch_streams: int = 0
    watch_events: int = 0
    watch_compacted: int = 0
    max_revision: int = 0
    lincheck_ops: int = 0
    lincheck_explored: int = 0
    lincheck_unknown: int = 0


@frozen
class _Req:
    client: int
    member: int
    request: ClientRequest
    attempt: int


@frozen
class _Resp:
    member: int
    response: ClientResponse


@frozen
class _WMsg:
    stream: int
    member: int
    response: WatchResponse


class KVSlot(MemberSlot):
    """One member's lives over one disk; the harness's `observe.NodeView`."""

    __slots__ = ("member",)

    def __init__(self, member_id: int) -> None:
        super().__init__(member_id)
        self.member: Member | None = None

    @property
    def alive(self) -> bool:
        return self.member is not None

    def has_ready(self) -> bool:
        m = self.member
        return m is not None and m.has_ready()

    def _forget(self) -> None:
        self.member = None
        self.role = None

    @property
    def node(self) -> RaftNode | None:
        m = self.member
        return None if m is None else m.node


def describe_request(req: KVRequest) -> dict[str, Any]:
    """A short JSON description of a request, for traces."""
    out: dict[str, Any] = {"type": type(req).__name__}
    key = getattr(req, "key", None)
    if isinstance(key, bytes):
        out["key"] = key.decode("latin-1")
    for name in ("range_end", "value"):
        v = getattr(req, name, b"")
        if isinstance(v, bytes) and v:
            out[name] = v.decode("latin-1")
    for name in ("lease", "id", "ttl", "revision"):
        v = getattr(req, name, 0)
        if isinstance(v, int) and v:
            out[name] = v
    if isinstance(req, RangeRequest) and req.serializable:
        out["serializable"] = True
    return out


class KVCluster(LoggedCluster):
    """Members, networks, clients and watchers; see the module docstring."""

    def __init__(
        self,
        config: KVSimConfig,
        seed: int,
        *,
        checkers: Sequence[Checker] = (),
        member_factory: MemberFactory = Member,
        sink: EventSink | None = None,
    ) -> None:
        self.config = config
        self.seed = seed
        self._factory = member_factory
        self.counters = KVCounters()
        self.network = Network(config.voters)
        self._start_events(self, self.network, self.counters, checkers, sink)
        self.members: dict[int, KVSlot] = {i: KVSlot(i) for i in config.voters}
        self.clients: dict[int, KVClient] = {i: KVClient(i) for i in range(1, config.clients + 1)}
        self.watchers: dict[int, KVWatcher] = {
            i: KVWatcher(i) for i in range(1, config.watchers + 1)
        }
        self.wire: dict[int, _Req | _Resp | _WMsg] = {}
        self._wire_next = 1
        self._streams: dict[int, tuple[int, int, int, int]] = {}
        """stream id -> (watcher, member, incarnation, watch id), while open."""
        self._by_watch: dict[tuple[int, int], int] = {}
        self._next_stream = 1
        self._records: list[KVRecord] = []
        self._next_op = 1
        self._expiring: dict[str, tuple[int, int, LeaseExpire, int]] = {}
        """Expiries proposed, not yet applied: token -> (op id, call, expiry, member)."""
        self._expired: set[str] = set()
        self._finished = False
        for slot in self.members.values():
            try:
                self._start(slot)
            except Exception as e:
                self.log.start_failed(slot.id, e)
                break

    # ------------------------------------------------------------- views

    @property
    def now(self) -> float:
        """The members' clock, in seconds."""
        return self.log.time * self.config.time_unit

    @property
    def nodes(self) -> Mapping[int, KVSlot]:
        return self.members

    @property
    def acknowledged(self) -> Mapping[bytes, int]:
        return {}

    @property
    def records(self) -> Sequence[KVRecord]:
        return self._records

    @property
    def finished(self) -> bool:
        return self._finished

    def open_operations(self) -> list[OpRecord]:
        out = [c.op.record(c.id) for c in self.clients.values() if c.op is not None]
        for op_id, call, ex, member in self._expiring.values():
            out.append(OpRecord(op_id, 0, 0, call, None, member=member, expire=ex))
        return out

    def alive_ids(self) -> list[int]:
        return [i for i, s in self.members.items() if s.member is not None]

    def down_ids(self) -> list[int]:
        return [i for i, s in self.members.items() if s.member is None]

    def active_ids(self) -> list[int]:
        """Every member (the store's membership does not change)."""
        return list(self.members)

    def leaders(self) -> list[int]:
        return [
            i
            for i, s in self.members.items()
            if s.member is not None and s.member.node.state is _LEADER
        ]

    def has_ready(self, node_id: int) -> bool:
        return self.members[node_id].has_ready()

    def resume_points(self) -> list[int]:
        return [w.next_rev for w in self.watchers.values()]

    def stream_open(self, watcher: int) -> bool:
        return self.watchers[watcher].stream != 0

    # ---------------------------------------------------------- raft actions

    def tick(self, node_id: int) -> Event:
        slot, m = self._alive(node_id)
        payload: dict[str, Any] = {}
        try:
            out = m.tick(self.now)
        except Exception as e:
            return self.log.failed("tick", node_id, payload, e)
        self._take(slot, out, payload)
        slot.note_role(m.node, payload, self.counters)
        return self.log.emit("tick", node_id, payload)

    def deliver(self, msg_id: int) -> Event:
        return self.net.deliver(msg_id, self.members, self._step_member)

    def _step_member(self, slot: KVSlot, msg: Message, payload: dict[str, Any]) -> None:
        m = slot.member
        assert m is not None
        m.step(msg)
        payload["result"] = "ok"
        slot.note_role(m.node, payload, self.counters)

    def process_ready(self, node_id: int) -> Event:
        slot, m = self._alive(node_id)
        payload: dict[str, Any] = {}
        try:
            rd = m.ready()
            m.persist(rd)
            if rd.snapshot is not None:
                payload["snapshot"] = rd.snapshot.metadata.index
            if rd.entries:
                payload["entries"] = [rd.entries[0].index, rd.entries[-1].index]
            if rd.hard_state is not None:
                hs = rd.hard_state
                payload["hard_state"] = {"term": hs.term, "vote": hs.vote, "commit": hs.commit}
            if rd.messages:
                payload["sent"] = self.net.send(rd.messages)
            out = m.advance(rd, self.now)
            if rd.committed_entries:
                applied = slot._applied
                for e in rd.committed_entries:
                    applied[e.index] = e
                last = rd.committed_entries[-1].index
                payload["applied"] = [rd.committed_entries[0].index, last]
                if last > self.counters.committed:
                    self.counters.committed = last
        except Exception as e:
            return self.log.failed("process_ready", node_id, payload, e)
        self._take(slot, out, payload)
        slot.note_role(m.node, payload, self.counters)
        return self.log.emit("process_ready", node_id, payload)

    def crash(self, node_id: int) -> Event:
        self.log.guard()
        lost = lifecycle(self.members, node_id, KVSlot.crash)
        broken = self._break_streams(node_id)
        self.counters.crashes += 1
        return self.log.emit("crash", node_id, {"lost_ready": lost, "streams_broken": broken})

    def restart(self, node_id: int) -> Event:
        self.log.guard()
        slot = self._slot(node_id)
        if slot.member is not None:
            raise SimError(f"member {node_id} is alive; crash it before restarting")
        slot.incarnation += 1
        payload: dict[str, Any] = {"incarnation": slot.incarnation}
        try:
            m = self._start(slot)
        except Exception as e:
            return self.log.failed("restart", node_id, payload, e)
        payload["term"] = m.term
        payload["applied"] = m.applied_index
        self.counters.restarts += 1
        return self.log.emit("restart", node_id, payload)

    # --------------------------------------------------------- client actions

    def call(self, client_id: int, request: KVRequest, member: int) -> Event:
        """Client starts an operation and sends its first attempt to ``member``."""
        self.log.guard()
        c = self.clients[client_id]
        if c.op is not None:
            raise SimError(f"client {client_id} already has an operation in flight")
        c.seq += 1
        op = OpenOp(self._next_op, c.seq, request, self.log.time)
        self._next_op += 1
        c.op = op
        self.counters.ops += 1
        self._send_attempt(c, member)
        payload: dict[str, Any] = {
            "client": client_id,
            "seq": c.seq,
            "op": op.op_id,
            "to": member,
            "request": describe_request(request),
        }
        return self.log.emit("call", None, payload)

    def _send_attempt(self, c: KVClient, member: int) -> None:
        op = c.op
        assert op is not None
        op.attempt += 1
        op.member = member
        self.counters.attempts += 1
        req = ClientRequest(op.request, client_id=c.id, seq=op.seq, ack=op.seq)
        self._wire_send(_Req(c.id, member, req, op.attempt))

    def request(self, rid: int) -> Event:
        self.log.guard()
        msg = self.wire.pop(rid, None)
        if not isinstance(msg, _Req):
            raise SimError(f"no client request {rid} in flight")
        slot = self.members[msg.member]
        payload: dict[str, Any] = {
            "id": rid,
            "client": msg.client,
            "seq": msg.request.seq,
            "attempt": msg.attempt,
        }
        m = slot.member
        if m is None:
            payload["result"] = "down"
            return self.log.emit("request", msg.member, payload)
        try:
            out = m.submit(msg.request, self.now)
        except Exception as e:
            return self.log.failed("request", msg.member, payload, e)
        payload["result"] = "ok"
        if isinstance(msg.request.request, RangeRequest):
            if msg.request.request.serializable:
                self.counters.reads_serializable += 1
            else:
                self.counters.reads_linearizable += 1
        self._take(slot, out, payload)
        slot.note_role(m.node, payload, self.counters)
        return self.log.emit("request", msg.member, payload)

    def respond(self, rid: int) -> Event:
        """An answer reaches its client.  One that only says this attempt failed (no
        leader, member timeout) ends nothing: the client backs off and retries
        (payload ``result`` "backoff"); any other ends the operation."""
        self.log.guard()
        msg = self.wire.pop(rid, None)
        if not isinstance(msg, _Resp):
            raise SimError(f"no response {rid} in flight")
        r = msg.response
        c = self.clients.get(r.client_id)
        payload: dict[str, Any] = {"id": rid, "client": r.client_id, "seq": r.seq}
        err = r.error
        if err is not None:
            payload["error"] = err.code
        else:
            resp = r.response
            payload["revision"] = resp.header.revision if resp is not None else 0
        if c is None or c.op is None or c.op.seq != r.seq:
            payload["result"] = "late"
            return self.log.emit("response", None, payload)
        if err is not None and err.code in RETRYABLE:
            payload["result"] = "backoff"
            c.op.backoff = True
            return self.log.emit("response", None, payload)
        op = c.op
        c.op = None
        if err is None:
            self.counters.ops_ok += 1
        else:
            self.counters.ops_error += 1
        self._learn(c, r)
        payload["result"] = "done"
        self._records.append(op.record(c.id, ret=self.log.time, result=r.result, member=msg.member))
        return self.log.emit("response", None, payload)

    def timeout(self, client_id: int, attempt: int, retry_to: int) -> Event | None:
        """Attempt ``attempt`` went unanswered: retry at ``retry_to`` (same seq) or, after
        max attempts, give up.  No event if the operation moved on meanwhile."""
        self.log.guard()
        c = self.clients[client_id]
        op = c.op
        if op is None or op.attempt != attempt:
            return None
        payload: dict[str, Any] = {"client": client_id, "seq": op.seq, "attempt": attempt}
        if op.backoff:
            op.backoff = False
            payload["result"] = "retry-after-backoff"
            payload["retry_to"] = retry_to
            self._retry(c, retry_to)
        elif op.timeouts + 1 < self.config.max_attempts:
            op.timeouts += 1
            payload["result"] = "retry"
            payload["retry_to"] = retry_to
            self._retry(c, retry_to)
        else:
            payload["result"] = "gave-up"
            self._give_up(c)
        return self.log.emit("timeout", None, payload)

    def _retry(self, c: KVClient, member: int) -> None:
        self.counters.retries += 1
        self._send_attempt(c, member)

    def _give_up(self, c: KVClient) -> None:
        op = c.op
        assert op is not None
        c.op = None
        self.counters.ops_unknown += 1
        self._records.append(op.record(c.id))

    def _learn(self, c: KVClient, r: ClientResponse) -> None:
        res = r.result
        resp = res.response
        if res.error is not None and res.error.code == "ErrLeaseNotFound":
            c.lease = 0  # it expired: forget it
        if resp is None:
            return
        rev = resp.header.revision
        if rev > c.max_revision:
            c.max_revision = rev
        if rev > self.counters.max_revision:
            self.counters.max_revision = rev
        if res.range is not None:
            for kv in res.range.kvs:
                c.seen[kv.key] = kv.value
        elif res.lease_grant is not None:
            c.lease = res.lease_grant.id
            self.counters.lease_grants += 1
        elif res.lease_revoke is not None:
            c.lease = 0
            self.counters.lease_revokes += 1
        elif res.txn is not None:
            self.counters.txns += 1
        elif res.compaction is not None:
            self.counters.compactions += 1

    # --------------------------------------------------------- watch actions

    def open_watch(self, watcher: int, member: int) -> Event:
        """(Re)open watcher's stream on ``member`` from its next revision."""
        self.log.guard()
        w = self.watchers[watcher]
        payload: dict[str, Any] = {"watcher": watcher, "member": member, "from": w.next_rev}
        if w.stream:
            self._close_stream(w.stream, cancel=True)
            payload["moved_from"] = w.member
        slot = self.members[member]
        m = slot.member
        if m is None:
            payload["result"] = "down"
            return self.log.emit("watch", member, payload)
        try:
            wid = m.watch(ALL_START, ALL_END, w.next_rev)
        except MVCCError as e:
            payload["result"] = f"refused: {e}"
            return self.log.emit("watch", member, payload)
        except Exception as e:
            return self.log.failed("watch", member, payload, e)
        sid = self._next_stream
        self._next_stream += 1
        self._streams[sid] = (watcher, member, slot.incarnation, wid)
        self._by_watch[(member, wid)] = sid
        w.stream, w.member, w.watch_id = sid, member, wid
        self.counters.watch_streams += 1
        self._records.append(
            WatchOpened(watcher, sid, member, ALL_START, ALL_END, w.next_rev, self.log.time)
        )
        try:
            got = m.poll_watches()
        except Exception as e:
            return self.log.failed("watch", member, payload, e)
        self._route_watch(member, got)
        payload["result"] = "ok"
        payload["stream"] = sid
        return self.log.emit("watch", member, payload)

    def pause_watch(self, watcher: int) -> Event:
        """Watcher closes its stream for a while (it will resume from its next revision)."""
        self.log.guard()
        w = self.watchers[watcher]
        payload: dict[str, Any] = {"watcher": watcher, "member": w.member, "result": "paused"}
        if w.stream:
            self._close_stream(w.stream, cancel=True)
        return self.log.emit("watch", w.member or None, payload)

    def watch_event(self, rid: int) -> tuple[Event, int]:
        """A watch response reaches its watcher; returns the event and, if it ended the
        stream (a compaction cancel), the watcher (else 0)."""
        self.log.guard()
        msg = self.wire.pop(rid, None)
        if not isinstance(msg, _WMsg):
            raise SimError(f"no watch response {rid} in flight")
        info = self._streams.get(msg.stream)
        payload: dict[str, Any] = {"id": rid, "stream": msg.stream}
        if info is None:
            payload["result"] = "stream-closed"
            return self.log.emit("watch_event", msg.member, payload), 0
        watcher = info[0]
        w = self.watchers[watcher]
        resp = msg.response
        self._records.append(WatchDelivered(watcher, msg.stream, msg.member, resp, self.log.time))
        payload["watcher"] = watcher
        if resp.canceled:
            self.counters.watch_compacted += 1
            payload["canceled"] = {"compact_revision": resp.compact_revision}
            if resp.compact_revision > w.next_rev:
                w.next_rev = resp.compact_revision
            self._close_stream(msg.stream, cancel=False)
            return self.log.emit("watch_event", msg.member, payload), watcher
        if resp.events:
            self.counters.watch_events += len(resp.events)
            revs = [ev.kv.mod_revision for ev in resp.events]
            payload["revisions"] = [revs[0], revs[-1]]
            if revs[-1] + 1 > w.next_rev:
                w.next_rev = revs[-1] + 1
        return self.log.emit("watch_event", msg.member, payload), 0

    # ------------------------------------------------------------ end of run

    def finish(self) -> Violation | None:
        """The run is over: open operations become pending records, end-of-run checks run."""
        if self._finished:
            return self.violation
        self._finished = True
        for checker in self.log.checkers:
            fin = getattr(checker, "finish", None)
            if fin is not None and self.violation is None:
                found = fin(self)
                if found:
                    self.log.violation = found[0]
            report = getattr(checker, "report", None)
            if report is not None:
                for name, value in report().items():
                    if hasattr(self.counters, name):
                        setattr(self.counters, name, getattr(self.counters, name) + value)
        return self.violation

    # --------------------------------------------------------------- helpers

    def _start(self, slot: KVSlot) -> Member:
        cfg = self.config
        mcfg = MemberConfig(
            raft=raft_config(cfg.sim, slot.id),
            snapshot_count=cfg.snapshot_count,
            snapshot_catchup_entries=cfg.snapshot_catchup_entries,
            request_timeout=cfg.request_timeout * 2 * cfg.time_unit,
            lease_retry=cfg.sim.election_tick * cfg.sim.tick_interval * cfg.time_unit,
            min_lease_ttl=cfg.lease_ttl_min,
        )
        rng = node_rng(self.seed, slot.id, slot.incarnation)
        m = self._factory(mcfg, slot.storage, rng, now=self.now)
        slot.member = m
        slot.role = m.node.state
        slot.term = m.node.term
        return m

    def _take(self, slot: KVSlot, out: Output, payload: dict[str, Any]) -> None:
        """Record and route what a member's input produced."""
        if not out and not out.snapshot_index and not out.restored_index:
            return
        c = self.counters
        if out.snapshot_index:
            c.snapshots += 1
            payload["snapshot_taken"] = out.snapshot_index
        if out.restored_index:
            c.snapshots_restored += 1
            payload["snapshot_restored"] = out.restored_index
        for a in out.applied:
            self._records.append(ApplyRecord(slot.id, slot.incarnation, self.log.time, a))
            if a.kind == EXPIRE and a.expire is not None:
                self._expiry_applied(a.expire, a.revoked, a.revision)
            elif a.decision == "fresh":
                c.writes_applied += 1
            elif a.decision == "duplicate":
                c.duplicates_suppressed += 1
        for ex in out.expiries:
            self._expiring[ex.token] = (self._next_op, self.log.time, ex, slot.id)
            self._next_op += 1
            c.expiries_proposed += 1
            payload.setdefault("expiries", []).append(ex.id)
        for r in out.responses:
            self._wire_send(_Resp(slot.id, r))
        if out.watch_responses:
            self._route_watch(slot.id, out.watch_responses)

    def _expiry_applied(self, ex: LeaseExpire, revoked: bool, revision: int) -> None:
        if ex.token in self._expired:
            return
        self._expired.add(ex.token)
        if revoked:
            self.counters.expiries_applied += 1
        item = self._expiring.pop(ex.token, None)
        if item is None:
            # Proposed by a member that crashed before its Output was seen: the
            # proposal is known only from here, so it is its own call.
            op_id, call, member = self._next_op, self.log.time, 0
            self._next_op += 1
        else:
            op_id, call, _, member = item
        self._records.append(
            OpRecord(
                op_id,
                0,
                0,
                call,
                None,
                ret=self.log.time,
                member=member,
                expire=ex,
                revoked=revoked,
                revision=revision,
            )
        )

    def _route_watch(self, member: int, responses: Sequence[WatchResponse]) -> None:
        for resp in responses:
            sid = self._by_watch.get((member, resp.watch_id))
            if sid is not None and sid in self._streams:
                self._wire_send(_WMsg(sid, member, resp))

    def _close_stream(self, sid: int, *, cancel: bool) -> None:
        info = self._streams.pop(sid, None)
        if info is None:
            return
        watcher, member, incarnation, wid = info
        self._by_watch.pop((member, wid), None)
        w = self.watchers[watcher]
        if w.stream == sid:
            w.stream = 0
        slot = self.members[member]
        if cancel and slot.member is not None and slot.incarnation == incarnation:
            slot.member.cancel_watch(wid)

    def _break_streams(self, member: int) -> int:
        gone = [sid for sid, info in self._streams.items() if info[1] == member]
        for sid in gone:
            self._close_stream(sid, cancel=False)
        return len(gone)

    def _wire_send(self, msg: _Req | _Resp | _WMsg) -> int:
        rid = self._wire_next
        self._wire_next += 1
        self.wire[rid] = msg
        return rid

    @property
    def wire_next(self) -> int:
        return self._wire_next

    def _slot(self, node_id: int) -> KVSlot:
        return member_of(self.members, node_id)

    def _alive(self, node_id: int) -> tuple[KVSlot, Member]:
        self.log.guard()
        slot = self._slot(node_id)
        if slot.member is None:
            raise SimError(f"member {node_id} is down")
        return slot, slot.member
