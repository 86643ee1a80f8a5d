"""A member of the replicated store: one Raft node feeding one MVCC state machine.

Theory of operation
-------------------
`Member` is the sans-IO core of an etcd server.  It owns a `RaftNode`, the
node's `MemoryStorage` (its disk), a `KVStateMachine` (the store, rebuilt
from the disk's snapshot at start), the leader's lease clock, the clients
waiting for answers and the open watches.  It reads no clock and does no
I/O: time enters as ``now`` (seconds) and every effect leaves as a value.

Inputs and what they do:

| input                       | effect                                                      |
| --------------------------- | ----------------------------------------------------------- |
| `submit(req, now)`          | serializable range: answered at once from the local store;  |
|                             | other reads: ReadIndex (answered once the read index is     |
|                             | applied); writes: proposed as a `Proposal` entry (answered  |
|                             | when applied); no leader: answered ErrNoLeader at once      |
| `step(msg)`                 | a peer's Raft message                                       |
| `tick(now)`                 | Raft's tick; the leader proposes expiries of leases past    |
|                             | their deadline; requests waiting too long get ErrTimeout    |
| `watch(...)`/`cancel_watch` | a watch on this member's applied state (see `watches`)      |
| `ready()`, `persist(rd)`,   | the Ready cycle, below                                      |
| `advance(rd, now)`          |                                                             |

The Ready cycle, which the driver runs whenever `has_ready()`:

    rd = member.ready()
    member.persist(rd)           # snapshot, entries, hard state into the MemoryStorage;
                                 # a real server also writes them to its WAL (fsync if
                                 # rd.must_sync) before going on
    send(rd.messages)            # only after persisting (Raft's persist-before-send)
    out = member.advance(rd, now)
                                 # restores rd.snapshot, applies rd.committed_entries,
                                 # serves the reads whose index is now applied, polls
                                 # the watches, takes a snapshot every snapshot_count
                                 # entries, and advances the node
    deliver(out.responses, out.watch_responses)

(`process_ready(now)` does persist+advance in one call and returns the
messages with the output, for drivers whose disk is the MemoryStorage.)

Every input returns an `Output` (empty when nothing is due): responses to
clients (each names its ``(client_id, seq)``), watch responses (each names
its watch id), what was applied (`state_machine.Applied`, for observers)
and the lease expiries this member proposed as leader.  Response headers
carry this member's id and its current Raft term.

A crash is the loss of the `Member` object: a restart is a new `Member` over
the same storage, which restores the snapshot on disk and re-applies the
committed log after it.  Clients waiting on the lost member time out and
retry elsewhere with the same ``(client_id, seq)``; watches resume elsewhere
from the last revision seen + 1.

Membership changes: a committed `EntryConfChangeV2` is applied to the node
(`RaftNode.apply_conf_change`).  The disk's configuration is the last
snapshot's, and a restart re-applies the changes after it, as etcd replays
its WAL.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterable
from typing import ClassVar

from attrs import evolve, field, frozen

from kubeproof.mvcc import (
    LeaseLeasesRequest,
    LeaseTimeToLiveRequest,
    MVCCError,
    MVCCStore,
    RangeRequest,
    WatchFilter,
    WatchResponse,
)
from kubeproof.raft import (
    ConfChangeError,
    Entry,
    EntryType,
    ErrSnapOutOfDate,
    MemoryStorage,
    Message,
    ProposalDropped,
    RaftConfig,
    RaftNode,
    Ready,
    StateType,
    decode_conf_change,
)

from .leases import LeaseClock
from .proposal import LeaseExpire, Proposal, encode_proposal
from .reads import ReadQueue, Waiters
from .state_machine import Applied, KVStateMachine
from .types import ClientRequest, ClientResponse, Error, Result, err_no_leader
from .watches import WatchHub

NodeFactory = Callable[[RaftConfig, MemoryStorage, random.Random], RaftNode]

CONF_CHANGE = "conf_change"


def err_timeout(detail: str = "") -> Error:
    return Error("ErrTimeout", "etcdserver: request timed out", 14, detail)


@frozen
class MemberConfig:
    """A member's knobs; ``raft`` is its Raft node's configuration (its id is the member's)."""

    raft: RaftConfig
    cluster_id: int = 0
    snapshot_count: int = 10_000
    """Entries applied between two snapshots (etcd's --snapshot-count); 0: never."""
    snapshot_catchup_entries: int = 5_000
    """Entries kept in the log behind a snapshot, for slow followers."""
    request_timeout: float = 7.0
    """Seconds a client request may wait here before it is answered ErrTimeout."""
    lease_retry: float = 1.0
    """Seconds before the leader proposes again an expiry that has not been applied."""
    min_lease_ttl: int = 2
    max_sessions: int = 4096
    name: str = field(default="")


@frozen
class Output:
    """What an input produced, for the driver to deliver or observe."""

    responses: tuple[ClientResponse, ...] = ()
    watch_responses: tuple[WatchResponse, ...] = ()
    applied: tuple[Applied, ...] = ()
    expiries: tuple[LeaseExpire, ...] = ()
    """Lease expiries this member proposed (as leader) during the input."""
    snapshot_index: int = 0
    """Index of a snapshot this member took (0: none)."""
    restored_index: int = 0
    """Index of a leader's snapshot this member restored (0: none)."""

    def __bool__(self) -> bool:
        return bool(self.responses or self.watch_responses or self.applied or self.expiries)


EMPTY = Output()


class Member:
    """See the module docstring.  Subclasses (tests/mutants) override one hook each."""

    state_machine_class: ClassVar[type[KVStateMachine]] = KVStateMachine
    watch_hub_class: ClassVar[type[WatchHub]] = WatchHub

    def __init__(
        self,
        cfg: MemberConfig,
        storage: MemoryStorage | None = None,
        rng: random.Random | None = None,
        *,
        node_factory: NodeFactory = RaftNode,
        now: float = 0.0,
    ) -> None:
        self.cfg = cfg
        self.storage = storage if storage is not None else MemoryStorage()
        sm = self.state_machine_class(
            cluster_id=cfg.cluster_id,
            min_lease_ttl=cfg.min_lease_ttl,
            max_sessions=cfg.max_sessions,
        )
        snap = self.storage.snapshot()
        if not snap.is_empty():
            sm.restore(snap.data)
        raft_cfg = cfg.raft if sm.index == 0 else evolve(cfg.raft, applied=sm.index)
        self.sm = sm
        self.node = node_factory(
            raft_cfg, self.storage, rng if rng is not None else random.Random(cfg.raft.id)
        )
        self.now = now
        self.clock = LeaseClock()
        for lease_id, ttl in sm.lease_ttls():
            self.clock.renew(lease_id, ttl, now)
        self.reads = ReadQueue(cfg.raft.id)
        self.waiters = Waiters()
        self.watches = self.watch_hub_class()
        self._snap_index = snap.metadata.index
        self._leader = False
        self._expiry_counter = 0
        self._expiries: list[LeaseExpire] = []
        self._proposed: dict[bytes, Proposal] = {}
        """Entry data this member proposed -> the proposal it encodes, so that
        applying its own entries skips decoding them (a pure cache: a miss
        decodes, and it is emptied when leadership changes or it grows)."""

    # ------------------------------------------------------------ read-only

    @property
    def id(self) -> int:
        return self.node.id

    @property
    def store(self) -> MVCCStore:
        """The applied MVCC store (replaced when a snapshot is restored)."""
        return self.sm.store

    @property
    def applied_index(self) -> int:
        return self.sm.index

    @property
    def is_leader(self) -> bool:
        return self.node.state is StateType.Leader

    @property
    def leader(self) -> int:
        return self.node.lead

    @property
    def term(self) -> int:
        return self.node.term

    @property
    def pending_requests(self) -> int:
        return len(self.reads) + len(self.waiters)

    # --------------------------------------------------------------- inputs

    def tick(self, now: float) -> Output:
        self._clock(now)
        self.node.tick()
        responses: list[ClientResponse] = []
        self._note_leadership()
        if self._leader:
            self._propose_expiries(now)
        timeout = self.cfg.request_timeout
        for req in self.reads.expired(now, timeout):
            responses.append(self._answer(req, Result(error=err_timeout("read index"))))
        for req in self.waiters.expired(now, timeout):
            responses.append(self._answer(req, Result(error=err_timeout("proposal"))))
        return self._output(responses=tuple(responses))

    def step(self, msg: Message) -> None:
        """A peer's Raft message.  A forwarded proposal this node cannot take is
        dropped (its client times out and retries), never an error here."""
        with contextlib.suppress(ProposalDropped):
            self.node.step(msg)
        self._note_leadership()

    def submit(self, req: ClientRequest, now: float) -> Output:
        self._clock(now)
        r = req.request
        if isinstance(r, RangeRequest) and r.serializable:
            return Output(responses=(self.serializable_read(req),))
        if not req.is_write:
            return self.linearizable_read(req, now)
        p = Proposal.of(req)
        data = encode_proposal(p)
        try:
            self.node.propose(data)
        except ProposalDropped as e:
            return Output(responses=(self._answer(req, Result(error=err_no_leader(str(e)))),))
        self._remember(data, p)
        self.waiters.add(req, now)
        self._note_leadership()
        return EMPTY

    def serializable_read(self, req: ClientRequest) -> ClientResponse:
        """Served from whatever this member has applied (may be stale)."""
        return self._answer(req, self._read(req))

    def linearizable_read(self, req: ClientRequest, now: float) -> Output:
        """ReadIndex: served once this member has applied the leader's confirmed commit index."""
        if self.node.lead == 0:
            return Output(responses=(self._answer(req, Result(error=err_no_leader("read"))),))
        ctx = self.reads.add(req, now)
        self.node.read_index(ctx)
        return EMPTY

    def watch(
        self,
        key: bytes,
        range_end: bytes = b"",
        start_revision: int = 0,
        prev_kv: bool = False,
        filters: Iterable[WatchFilter] = (),
    ) -> int:
        """Open a watch on this member's applied state; returns its id (>= 1).  Its
        responses come from `poll_watches` (and every `advance`).  Raises the store's
        errors (e.g. ErrEmptyWatcherRange)."""
        return self.watches.create(self.store, key, range_end, start_revision, prev_kv, filters)

    def cancel_watch(self, watch_id: int) -> bool:
        return self.watches.cancel(watch_id)

    def poll_watches(self) -> tuple[WatchResponse, ...]:
        return tuple(self._stamp_watch(w) for w in self.watches.poll(self.store))

    # ------------------------------------------------------------- readiness

    def has_ready(self) -> bool:
        return self.node.has_ready()

    def ready(self) -> Ready:
        return self.node.ready()

    def persist(self, rd: Ready) -> None:
        """Write the Ready's snapshot, entries and hard state into the storage."""
        st = self.storage
        if rd.snapshot is not None:
            st.apply_snapshot(rd.snapshot)
        if rd.entries:
            st.append(rd.entries)
        if rd.hard_state is not None:
            st.set_hard_state(rd.hard_state)

    def advance(self, rd: Ready, now: float) -> Output:
        """Apply what the Ready committed, serve what became servable, advance the node."""
        self._clock(now)
        responses: list[ClientResponse] = []
        watch_out: list[WatchResponse] = []
        applied: list[Applied] = []
        restored = 0
        snap = rd.snapshot
        if snap is not None and snap.metadata.index > self.sm.index:
            old = self.sm.store
            self.sm.restore(snap.data)
            watch_out.extend(self.watches.rebind(old, self.sm.store))
            self._snap_index = snap.metadata.index
            restored = snap.metadata.index
            self._resync_clock(now)
        for rs in rd.read_states:
            self.reads.read_state(rs.request_ctx, rs.index)
        for e in rd.committed_entries:
            if e.index <= self.sm.index:
                continue  # covered by the snapshot just restored
            if e.type is EntryType.EntryNormal:
                a = self.sm.apply(e, self._proposed.pop(e.data, None) if e.data else None)
                self._after_apply(a, responses)
            else:
                a = self._apply_conf_change(e)
            applied.append(a)
        self.node.advance(rd)
        for req in self.reads.servable(self.sm.index):
            responses.append(self._answer(req, self._read(req)))
        watch_out.extend(self.watches.poll(self.sm.store))
        taken = self._maybe_snapshot()
        self._note_leadership()
        return self._output(
            responses=tuple(responses),
            watch_responses=tuple(self._stamp_watch(w) for w in watch_out),
            applied=tuple(applied),
            snapshot_index=taken,
            restored_index=restored,
        )

    def process_ready(self, now: float) -> tuple[tuple[Message, ...], Output]:
        """persist + advance in one call; the messages are to be sent by the caller."""
        rd = self.node.ready()
        self.persist(rd)
        return rd.messages, self.advance(rd, now)

    # -------------------------------------------------------------- helpers

    def _clock(self, now: float) -> None:
        if now > self.now:
            self.now = now

    def _output(self, **kw: object) -> Output:
        if self._expiries:
            kw["expiries"] = tuple(self._expiries)
            self._expiries = []
        return Output(**kw) if any(kw.values()) else EMPTY  # type: ignore[arg-type]

    def _remember(self, data: bytes, p: Proposal) -> None:
        if len(self._proposed) >= 65536:
            self._proposed.clear()
        self._proposed[data] = p

    def _note_leadership(self) -> None:
        leader = self.node.state is StateType.Leader
        if leader == self._leader:
            return
        self._leader = leader
        self._proposed.clear()
        if leader:
            self.clock.promote(self.now, self.sm.lease_ttls())
        else:
            self.clock.demote()

    def _resync_clock(self, now: float) -> None:
        """After a restore: every lease that exists lives TTL from now, the others are gone
        (a member restoring a snapshot is a follower: its deadlines only inform TTL reads,
        and a promotion resets them anyway)."""
        self.clock = LeaseClock()
        for lease_id, ttl in self.sm.lease_ttls():
            self.clock.renew(lease_id, ttl, now)

    def _propose_expiries(self, now: float) -> None:
        for lease_id in self.clock.due(now, self.cfg.lease_retry):
            version = self.sm.lease_versions.get(lease_id)
            if version is None:
                self.clock.forget(lease_id)
                continue
            self.expire(lease_id, version)

    def expire(self, lease_id: int, version: int) -> None:
        """The leader decided lease ``lease_id`` ran out: propose its expiry."""
        self._expiry_counter += 1
        # Unique over lives: a member leads in a given term in one life at most.
        ex = LeaseExpire(lease_id, version, f"{self.id}:{self.node.term}:{self._expiry_counter}")
        p = Proposal(expire=ex)
        data = encode_proposal(p)
        try:
            self.node.propose(data)
        except ProposalDropped:
            return  # retried after lease_retry
        self._remember(data, p)
        self._expiries.append(ex)

    def _after_apply(self, a: Applied, responses: list[ClientResponse]) -> None:
        if a.kind == "write" and a.result is not None:
            if a.decision == "fresh":
                self._track_lease(a)
            for req in self.waiters.pop(a.client_id, a.seq):
                responses.append(self._answer(req, a.result))
        elif a.kind == "expire" and a.revoked and a.expire is not None:
            self.clock.forget(a.expire.id)

    def _track_lease(self, a: Applied) -> None:
        res = a.result
        assert res is not None
        if res.lease_grant is not None:
            self.clock.renew(res.lease_grant.id, res.lease_grant.ttl, self.now)
        elif res.lease_keep_alive is not None:
            self.clock.renew(res.lease_keep_alive.id, res.lease_keep_alive.ttl, self.now)
        elif res.lease_revoke is not None and a.request is not None:
            lease_id = getattr(a.request, "id", 0)
            self.clock.forget(lease_id)

    def _apply_conf_change(self, e: Entry) -> Applied:
        self.sm.index = e.index
        rev = self.sm.store.revision
        if e.type is not EntryType.EntryConfChangeV2:
            return Applied(e.index, e.term, "invalid", rev, detail=f"unsupported {e.type.value}")
        try:
            cc = decode_conf_change(e)
            self.node.apply_conf_change(cc)
        except ConfChangeError as err:
            return Applied(e.index, e.term, CONF_CHANGE, rev, detail=f"refused: {err}")
        return Applied(e.index, e.term, CONF_CHANGE, rev)

    def _maybe_snapshot(self) -> int:
        count = self.cfg.snapshot_count
        index = self.sm.index
        if count <= 0 or index - self._snap_index < count:
            return 0
        st = self.storage
        try:
            st.create_snapshot(index, self.node.conf_state(), self.sm.snapshot_data())
        except ErrSnapOutOfDate:
            return 0
        self._snap_index = index
        keep_from = index - self.cfg.snapshot_catchup_entries
        if keep_from >= st.first_index():
            st.compact(keep_from)
        return index

    def _read(self, req: ClientRequest) -> Result:
        r = req.request
        store = self.sm.store
        try:
            if isinstance(r, RangeRequest):
                return Result(range=store.apply_range(r))
            if isinstance(r, LeaseTimeToLiveRequest):
                resp = store.lease_time_to_live(r.id, 0.0, r.keys)
                dl = self.clock.deadline(r.id)
                if dl is not None:
                    resp = evolve(resp, ttl=max(int(dl - self.now), 0))
                return Result(lease_time_to_live=resp)
            if isinstance(r, LeaseLeasesRequest):
                return Result(lease_leases=store.lease_leases())
        except MVCCError as e:
            return Result(error=Error.of(e))
        raise TypeError(f"not a read request: {type(r).__name__}")

    def _answer(self, req: ClientRequest, result: Result) -> ClientResponse:
        return ClientResponse(req.client_id, req.seq, self._stamp(result))

    def _stamp(self, result: Result) -> Result:
        """This member's id and term in the response header (the state machine leaves 0)."""
        resp = result.response
        if resp is None:
            return result
        header = resp.header
        return Result.of(
            evolve(resp, header=evolve(header, member_id=self.id, raft_term=self.node.term))
        )

    def _stamp_watch(self, w: WatchResponse) -> WatchResponse:
        if w.canceled:
            return w
        return evolve(w, header=evolve(w.header, member_id=self.id, raft_term=self.node.term))
