"""One running etcd member: the sans-IO `kubeproof.etcd.Member` behind real I/O.

Theory of operation
-------------------
`MemberServer` owns a `Member` (Raft + MVCC + sessions), its `RaftDisk`, a
`Transport` to its peers and a tick task, all on one asyncio loop, and is
the `EtcdBackend` the gRPC layer serves.  Nothing touches the member but
this loop, so there are no locks.

Inputs reach the member at once (``submit``, ``step``, ``tick``); each sets
the ``wake`` event of the one task that runs the Ready cycle::

    while member.has_ready():
        rd = member.ready()
        encode rd's snapshot, entries and hard state as a log record; write
            it, and fsync when rd.must_sync, in the disk thread (the loop
            keeps taking requests meanwhile, and they join the next
            Ready; the thread only makes system calls, so it hardly ever
            holds the GIL)                                      [persist]
        put them into the member's MemoryStorage                [storage]
        send rd.messages to the peers                           [only now]
        out = member.advance(rd, now)       apply, serve reads, poll watches
        resolve the clients in out.responses, queue out.watch_responses,
        wake the watch streams; if the member took a snapshot, write it and
        rewrite the log from it (`RaftDisk.sync_snapshot`)

so a message that depends on an entry leaves only after the entry is on
disk (Raft's persist-before-send), and a client is answered only after its
entry is committed (on a quorum of disks) and applied.

Client sessions: every request gets this process's client id and the next
sequence number; ``ack`` is the lowest sequence still waiting, so the
member's session table can forget the rest.  The client id is drawn at
random when the process starts, so a restarted server never collides with
the sessions its previous life left in the replicated state.  A request
answered "no leader" was not appended, so it is resubmitted (same sequence
number) every `RETRY_INTERVAL` until a leader appears or ``request_timeout``
passes; etcd's server likewise waits for a leader rather than failing fast.

Identity: member ids are derived from the member's name, its peer URL and
the cluster token (a stable 63-bit hash, like etcd's sha1 of the peer
URLs), the cluster id from the sorted member ids.  The first start writes
them to ``member/identity.json``; a later start with a different
configuration is refused with the difference named, as etcd refuses a data
dir bootstrapped for another cluster.

Time: the member gets ``time.monotonic()`` seconds.  Leases are the leader's
business (see `kubeproof.etcd.leases`): after a restart every lease lives
its full TTL again, as etcd's lessor promotes its leases on election.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import os
import queue
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path

from attrs import frozen

from kubeproof.etcd import ClientRequest, Member, MemberConfig, Output
from kubeproof.etcd import Error as EtcdError
from kubeproof.mvcc import (
    ALL_ERRORS,
    LeaseKeepAliveRequest,
    LeaseKeepAliveResponse,
    WatchFilter,
    WatchResponse,
)
from kubeproof.raft import Message, RaftConfig, ReadOnlyOption

from .etcd_backend import EtcdServerError, Listeners, MemberInfo, Request, StatusInfo, store_hash
from .etcd_convert import Identity
from .etcd_disk import DiskCorruptError, RaftDisk
from .etcd_transport import Transport

__all__ = [
    "RETRY_INTERVAL",
    "ClusterSpec",
    "MemberServer",
    "MemberSpec",
    "cluster_id_of",
    "member_id_of",
]

log = logging.getLogger("kubeproof.etcd")

RETRY_INTERVAL = 0.05
_ERRORS = {cls.name: cls for cls in ALL_ERRORS}


def _hash63(text: str) -> int:
    h = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") & (2**63 - 1)
    return h or 1


def member_id_of(name: str, peer_url: str, token: str) -> int:
    return _hash63(f"member\n{name}\n{peer_url}\n{token}")


def cluster_id_of(member_ids: Iterable[int], token: str) -> int:
    return _hash63("cluster\n" + ",".join(str(i) for i in sorted(member_ids)) + "\n" + token)


@frozen
class MemberSpec:
    name: str
    peer_url: str
    client_urls: tuple[str, ...] = ()


@frozen
class ClusterSpec:
    """The static membership every member is started with (etcd's --initial-cluster)."""

    members: tuple[MemberSpec, ...]
    token: str = "etcd-cluster"

    def __attrs_post_init__(self) -> None:
        names = [m.name for m in self.members]
        if not names:
            raise ValueError("a cluster needs at least one member")
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"member names must be unique; repeated: {', '.join(sorted(dup))}")

    def id_of(self, name: str) -> int:
        for m in self.members:
            if m.name == name:
                return member_id_of(m.name, m.peer_url, self.token)
        raise ValueError(
            f"member {name!r} is not in the initial cluster "
            f"({', '.join(m.name for m in self.members)})"
        )

    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(member_id_of(m.name, m.peer_url, self.token) for m in self.members)

    @property
    def cluster_id(self) -> int:
        return cluster_id_of(self.ids, self.token)


def _check_identity(directory: Path, record: dict[str, object]) -> None:
    path = directory / "identity.json"
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except ValueError as e:
            raise DiskCorruptError(f"{path} is not valid JSON: {e}") from None
        diff = [k for k in record if old.get(k) != record[k]]
        if diff:
            details = "; ".join(f"{k}: on disk {old.get(k)!r}, now {record[k]!r}" for k in diff)
            raise ValueError(
                f"data dir {directory.parent} belongs to another member or cluster ({details})"
            )
        return
    tmp = path.with_name("identity.json.tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


class _WatchHandle:
    """A member watch as the gRPC layer sees one (`poll`/`cancel`)."""

    __slots__ = ("queue", "server", "watch_id")

    def __init__(self, server: MemberServer, watch_id: int) -> None:
        self.server = server
        self.watch_id = watch_id
        self.queue: list[WatchResponse] = []

    def poll(self) -> tuple[WatchResponse, ...]:
        self.server._route(self.server.member.poll_watches())
        out, self.queue = self.queue, []
        if any(r.canceled for r in out):
            self.server._watches.pop(self.watch_id, None)
        return tuple(out)

    def cancel(self) -> bool:
        self.server._watches.pop(self.watch_id, None)
        return self.server.member.cancel_watch(self.watch_id)


class DiskThread:
    """One thread that runs the member's disk writes, one at a time, in order.

    The thread does little but the system calls of a job (write, fsync),
    which release the GIL; it reports back by writing a byte to a pipe the
    event loop watches, so no Python-level lock or condition is shared
    with the loop (each would be one more point where the loop waits for
    the GIL the thread holds: on a busy machine, for milliseconds)."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._results: deque[tuple[asyncio.Future[None], BaseException | None]] = deque()
        self._pending: deque[asyncio.Future[None]] = deque()
        self._name = name
        self._r = self._w = -1
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            error: BaseException | None = None
            try:
                job()
            except BaseException as e:
                error = e
            self._results.append((self._pending.popleft(), error))
            os.write(self._w, b"\0")

    def _ready(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self._r, 4096)
        while self._results:
            fut, error = self._results.popleft()
            if fut.done():
                continue
            if error is None:
                fut.set_result(None)
            else:
                fut.set_exception(error)

    def run(self, job: Callable[[], None]) -> asyncio.Future[None]:
        """Runs ``job`` on the thread; the future is done when it returned."""
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._r, self._w = os.pipe()
            os.set_blocking(self._r, False)
            self._loop = loop
            loop.add_reader(self._r, self._ready)
            self._thread = threading.Thread(target=self._work, name=self._name, daemon=True)
            self._thread.start()
        fut: asyncio.Future[None] = loop.create_future()
        self._pending.append(fut)
        self._jobs.put(job)
        return fut

    def close(self) -> None:
        """Lets the job running finish, then ends the thread."""
        if self._thread is None:
            return
        self._jobs.put(None)
        self._thread.join()
        self._thread = None
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._r)
        os.close(self._r)
        os.close(self._w)


class MemberServer:
    """One member of a cluster, running; the `EtcdBackend` of its gRPC server."""

    def __init__(
        self,
        spec: ClusterSpec,
        name: str,
        data_dir: Path,
        *,
        heartbeat_interval: float = 0.1,
        election_ticks: int = 10,
        snapshot_count: int = 10_000,
        request_timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.spec = spec
        self.name = name
        self.data_dir = data_dir
        self.id = spec.id_of(name)
        self.cluster_id = spec.cluster_id
        self.heartbeat_interval = heartbeat_interval
        self.request_timeout = request_timeout
        self.clock = clock
        data_dir.mkdir(parents=True, exist_ok=True)
        self.disk = RaftDisk.open(data_dir)
        try:
            _check_identity(
                self.disk.directory,
                {
                    "name": name,
                    "member_id": self.id,
                    "cluster_id": self.cluster_id,
                    "cluster_token": spec.token,
                    "members": sorted(m.name for m in spec.members),
                },
            )
        except BaseException:
            self.disk.close()
            raise
        raft = RaftConfig(
            id=self.id,
            voters=spec.ids,
            election_tick=election_ticks,
            heartbeat_tick=1,
            pre_vote=True,
            check_quorum=True,
            read_only_option=ReadOnlyOption.ReadOnlySafe,
        )
        cfg = MemberConfig(
            raft=raft,
            cluster_id=self.cluster_id,
            snapshot_count=snapshot_count,
            request_timeout=request_timeout,
            name=name,
        )
        self.member = Member(
            cfg,
            self.disk.storage,
            rng if rng is not None else random.Random(int.from_bytes(os.urandom(8), "big")),
            now=clock(),
        )
        self.client_id = int.from_bytes(os.urandom(8), "big") & (2**62 - 1) or 1
        self._seq = 0
        self._pending: dict[int, asyncio.Future[object]] = {}
        self._inflight: dict[int, ClientRequest] = {}
        self._held: list[ClientRequest] = []
        self._busy = False
        self._last_leader = 0
        self._watches: dict[int, _WatchHandle] = {}
        self._listeners = Listeners()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._io = DiskThread(f"etcd-disk-{name}")
        self.transport: Transport | None = None
        self.failed: BaseException | None = None
        self.stopped = False

    # ------------------------------------------------------------ lifecycle

    def deliver(self, msg: Message) -> None:
        """A peer's Raft message (the transport calls this on the loop)."""
        if self.stopped or msg.to != self.id:
            return
        self.member.step(msg)
        self._wake.set()

    def unreachable(self, peer: int) -> None:
        if not self.stopped:
            self.member.node.report_unreachable(peer)

    async def start(self, transport: Transport) -> None:
        self.transport = transport
        await transport.start()
        loop = asyncio.get_running_loop()
        if len(self.spec.members) == 1 and self.member.leader == 0:
            # Alone, there is nobody to wait for: elect ourselves now rather
            # than after an election timeout.
            self.member.node.campaign()
        self._tasks = [loop.create_task(self._ready_loop()), loop.create_task(self._tick_loop())]
        self._wake.set()

    async def stop(self) -> None:
        self.stopped = True
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self.transport is not None:
            await self.transport.stop()
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(EtcdServerError(14, "etcdserver: server stopped"))
        self._io.close()
        self.disk.close()

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            self._handle(self.member.tick(self.clock()))
            self._wake.set()

    async def _ready_loop(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                self._flush_held()
                while self.member.has_ready():
                    self._busy = True
                    rd = self.member.ready()
                    write, syncs = self.disk.prepare_write(rd)
                    if syncs or rd.snapshot is not None:
                        await self._io.run(write)
                    else:
                        write()
                    self.disk.apply(rd)
                    if rd.messages and self.transport is not None:
                        self.transport.send(rd.messages)
                    out = self.member.advance(rd, self.clock())
                    self._handle(out)
                    self._listeners.fire()
                    if out.snapshot_index:
                        # The entries are durable in the log already; the
                        # snapshot only lets the log be rewritten shorter.
                        snap, record = self.disk.prepare_snapshot()
                        await self._io.run(
                            functools.partial(self.disk.write_snapshot, snap, record)
                        )
                    if not self.member.has_ready():
                        self._busy = False
                        self._flush_held()
                self._busy = False
        except asyncio.CancelledError:
            raise
        except BaseException as e:  # the disk failed: nothing more may be acknowledged
            log.exception("member %s stopped: %s", self.name, e)
            self.failed = e
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(EtcdServerError(14, f"etcdserver: member failed: {e}"))
            raise

    def _handle(self, out: Output) -> None:
        lead = self.member.leader
        if lead != self._last_leader:
            self._last_leader = lead
            if lead:
                self._resubmit()
        for resp in out.responses:
            if resp.client_id != self.client_id:
                continue
            fut = self._pending.get(resp.seq)
            if fut is not None and not fut.done():
                fut.set_result(resp.result)
        if out.watch_responses:
            self._route(out.watch_responses)
            self._listeners.fire()

    def _submit(self, creq: ClientRequest, now: float | None = None) -> None:
        if self._busy:
            self._held.append(creq)
            return
        self._handle(self.member.submit(creq, self.clock() if now is None else now))
        self._wake.set()

    def _flush_held(self) -> None:
        """Submits the requests that arrived while a Ready was being persisted.

        Held back so that the Ready after it carries only what that one
        committed (no new entries, so no fsync) and its clients are answered
        at once; the held requests then share the next fsync.  Without this,
        a batch's answers would wait for the next batch's fsync too."""
        if not self._held:
            return
        held, self._held = self._held, []
        now = self.clock()
        for creq in held:
            if creq.seq in self._inflight:
                self._handle(self.member.submit(creq, now))
        self._wake.set()

    def _resubmit(self) -> None:
        """A new leader: proposals and read requests sent to the old one may be
        lost, so every request still waiting is submitted again with its own
        sequence number; the session table applies a write once however many
        copies reach the log."""
        if not self._inflight:
            return
        ack = min(self._pending)
        now = self.clock()
        for seq, creq in list(self._inflight.items()):
            again = ClientRequest(creq.request, client_id=creq.client_id, seq=seq, ack=ack)
            self._submit(again, now)

    def _route(self, responses: Iterable[WatchResponse]) -> None:
        for w in responses:
            handle = self._watches.get(w.watch_id)
            if handle is not None:
                handle.queue.append(w)

    # ---------------------------------------------------------- EtcdBackend

    def identity(self) -> Identity:
        return Identity(self.cluster_id, self.id, self.member.term)

    async def request(self, req: Request | LeaseKeepAliveRequest) -> object:
        if self.failed is not None:
            raise EtcdServerError(14, f"etcdserver: member failed: {self.failed}")
        if self.stopped:
            raise EtcdServerError(14, "etcdserver: server stopped")
        self._seq += 1
        seq = self._seq
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.request_timeout
        try:
            while True:
                fut: asyncio.Future[object] = loop.create_future()
                self._pending[seq] = fut
                creq = ClientRequest(req, client_id=self.client_id, seq=seq, ack=min(self._pending))
                self._inflight[seq] = creq
                self._submit(creq)
                result = await fut
                error = getattr(result, "error", None)
                if (
                    isinstance(error, EtcdError)
                    and error.code == "ErrNoLeader"
                    and loop.time() + RETRY_INTERVAL < deadline
                ):
                    # Not appended: resubmit (same seq) once a leader may exist.
                    await asyncio.sleep(RETRY_INTERVAL)
                    continue
                break
        finally:
            self._pending.pop(seq, None)
            self._inflight.pop(seq, None)
        if isinstance(error, EtcdError):
            raise _exception(error)
        response = getattr(result, "response", None)
        assert response is not None
        return response

    async def keep_alive(self, lease_id: int) -> int:
        resp = await self.request(LeaseKeepAliveRequest(id=lease_id))
        assert isinstance(resp, LeaseKeepAliveResponse)
        return resp.ttl

    def watch(
        self,
        key: bytes,
        range_end: bytes,
        start_revision: int,
        prev_kv: bool,
        filters: Iterable[WatchFilter],
    ) -> _WatchHandle:
        wid = self.member.watch(key, range_end, start_revision, prev_kv, tuple(filters))
        handle = _WatchHandle(self, wid)
        self._watches[wid] = handle
        return handle

    def revision(self) -> int:
        return self.member.store.revision

    def listen(self, callback: Callable[[], None]) -> Callable[[], None]:
        return self._listeners.add(callback)

    def members(self) -> tuple[MemberInfo, ...]:
        return tuple(
            MemberInfo(
                member_id_of(m.name, m.peer_url, self.spec.token),
                m.name,
                (m.peer_url,),
                m.client_urls,
            )
            for m in self.spec.members
        )

    def status(self) -> StatusInfo:
        errors = (f"member failed: {self.failed}",) if self.failed is not None else ()
        return StatusInfo(
            leader=self.member.leader,
            raft_index=self.member.node.commit,  # etcd reports its committed index
            raft_term=self.member.term,
            raft_applied_index=self.member.applied_index,
            db_size=self.disk.size(),
            errors=errors,
        )

    def hash_kv(self, revision: int) -> tuple[int, int, int]:
        return store_hash(self.member.store, revision)


def _exception(error: EtcdError) -> Exception:
    cls = _ERRORS.get(error.code)
    if cls is not None:
        return cls(error.detail)
    return EtcdServerError(error.grpc_code, error.message)
