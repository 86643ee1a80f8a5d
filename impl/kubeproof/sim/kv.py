"""The replicated store under simulation: a seed plus a KVSimConfig becomes a run.

Theory of operation
-------------------
`KVSimulation` is the store's random scheduler, built like the Raft
harness's (`harness.Simulation`): a heap of intentions ordered by (virtual
time, sequence number), one RNG (`seeds.scheduler_rng(seed)`) for every
decision, and each popped intention turned into one `kvcluster.KVCluster`
action.  An intention that no longer applies (a member that crashed since,
an attempt already answered, a watcher that moved) is dropped without an
event.

| intention        | scheduled                                         | does                           |
| ---------------- | ------------------------------------------------- | ------------------------------ |
| tick(n)          | every tick period of n                            | `tick(n)`                      |
| ready(n)         | a disk delay after n has a Ready                  | `process_ready(n)`, routes     |
| deliver(id)      | when routing Raft message id (delay, loss, dup,   | `deliver(id)`                  |
|                  | reorder: exactly as the Raft harness)             |                                |
| fault, restart,  | as the Raft harness (`faults.FaultPolicy`)        | crash/restart/partition/heal   |
| heal, quiesce    |                                                   |                                |
| client(c)        | [1, 2*op_interval] after c's last op ended        | `call(c, request, member)`     |
| wire(id)         | a delay after a client message was sent (requests | `request`, `respond` or        |
|                  | and answers may be lost with `loss`; a watch      | `watch_event`                  |
|                  | stream is FIFO and loses nothing)                 |                                |
| timeout(c, a)    | request_timeout after attempt a was sent          | `timeout(c, a, member)`        |
| watch(w)         | at start; [1, 2*watch_move_interval] after it     | `open_watch(w, member)`, or    |
|                  | opened; soon after its stream broke or was        | (2 times in 5 with a stream    |
|                  | canceled by a compaction                          | open) `pause_watch(w)` for     |
|                  |                                                   | [1, watch_move_interval]       |

When the step budget is spent (or ``max_time`` passed) the run ends with
`KVCluster.finish()`, which turns the operations still in flight into
pending ones and runs the end-of-run checks (KV-LINEARIZABLE on the whole
history).  `run_kv_simulation` writes the trace (a header naming the
``kubeproof-kv-trace`` format and the full configuration, one line per
event, the outcome); `run_kv_campaign` runs many seeds.
"""

from __future__ import annotations

import concurrent.futures
import heapq
import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import attrs
from attrs import frozen

from kubeproof.etcd import Member
from kubeproof.version import __version__

from .campaign import CampaignResult, SeedFailure, trace_name
from .config import Fault
from .faults import Crash, FaultPolicy, Partition
from .kvclients import choose_request
from .kvcluster import KVCluster, KVCounters, MemberFactory, _Req, _Resp, _WMsg
from .kvconfig import KVSimConfig, kv_config_to_json
from .network import DelayModel
from .observe import Checker, Event, Violation
from .seeds import scheduler_rng, uniform_int
from .swarm import swarm_config
from .trace import TraceOutcome, event_to_json

KV_TRACE_FORMAT = "kubeproof-kv-trace"
KV_TRACE_VERSION = 1

(
    _TICK,
    _DELIVER,
    _READY,
    _FAULT,
    _RESTART,
    _HEAL,
    _QUIESCE,
    _CLIENT,
    _WIRE,
    _TIMEOUT,
    _WATCH,
) = range(11)

KVCheckersFactory = Callable[[KVSimConfig], Sequence[Checker]]
"""Fresh checkers for one run of the given configuration (`kubeproof.spec.kv.kv_checkers`)."""


@frozen
class KVRunResult:
    seed: int
    config: KVSimConfig
    counters: KVCounters
    violation: Violation | None
    time: int

    @property
    def ok(self) -> bool:
        return self.violation is None


class KVSimulation:
    def __init__(
        self,
        config: KVSimConfig,
        seed: int,
        *,
        checkers: Sequence[Checker] = (),
        member_factory: MemberFactory = Member,
        sink: Callable[[Event], None] | None = None,
    ) -> None:
        self.config = config
        self.seed = seed
        self.cluster = KVCluster(
            config, seed, checkers=checkers, member_factory=member_factory, sink=sink
        )
        sim = config.sim
        self.rng = scheduler_rng(seed)
        self._heap: list[tuple[int, int, int, int, int]] = []
        self._seq = 0
        self._delays = DelayModel(sim)
        self._faults = FaultPolicy(sim)
        self._ready_pending: set[int] = set()
        self._wgen: dict[int, int] = {}
        self._stream_clock: dict[int, int] = {}
        self.quiet = False
        rng = self.rng
        self._period: dict[int, int] = {}
        for i in config.voters:
            period = sim.tick_interval + rng.randint(-sim.clock_skew, sim.clock_skew)
            self._period[i] = period
            self._push(rng.randint(1, period), _TICK, i, 0)
        for c in self.cluster.clients:
            self._push(rng.randint(1, 2 * config.op_interval), _CLIENT, c)
        for w in self.cluster.watchers:
            self._schedule_watch(w, rng.randint(1, 50))
        if self._faults.active:
            self._push(self._faults.next_interval(rng), _FAULT)
        if sim.faults_until is not None:
            self._push(sim.faults_until, _QUIESCE)
        self._set_message_faults()

    def _set_message_faults(self) -> None:
        sim = self.config.sim
        on = not self.quiet
        self._loss = on and Fault.loss in sim.faults and sim.loss_rate > 0
        self._dup = on and Fault.dup in sim.faults and sim.dup_rate > 0
        self._reorder = on and Fault.reorder in sim.faults

    def _push(self, t: int, kind: int, a: int = 0, b: int = 0) -> None:
        heapq.heappush(self._heap, (t, self._seq, kind, a, b))
        self._seq += 1

    def _full(self) -> bool:
        c = self.cluster
        return c.violation is not None or c.step >= self.config.steps

    # -------------------------------------------------------------- the loop

    def run(self) -> KVRunResult:
        cluster = self.cluster
        limit = self.config.steps
        heap = self._heap
        members = cluster.members
        max_time = self.config.sim.max_time
        while cluster.violation is None and cluster.step < limit and heap:
            t, _, kind, a, b = heapq.heappop(heap)
            if max_time is not None and t > max_time:
                break
            cluster._time = t
            if kind == _TICK:
                slot = members[a]
                if slot.member is None or slot.incarnation != b:
                    continue
                first = cluster.wire_next
                cluster.tick(a)
                self._push(t + self._period[a], _TICK, a, b)
                self._route_wire(first)
                self._maybe_ready(a)
            elif kind == _DELIVER:
                ev = cluster.deliver(a)
                if ev.node is not None and ev.node in members:
                    self._maybe_ready(ev.node)
            elif kind == _READY:
                self._on_ready(a, b)
            elif kind == _WIRE:
                self._on_wire(a)
            elif kind == _CLIENT:
                self._on_client(a)
            elif kind == _TIMEOUT:
                self._on_timeout(a, b)
            elif kind == _WATCH:
                if self._wgen.get(a) == b:
                    self._on_watch(a)
            elif kind == _FAULT:
                self._on_fault()
            elif kind == _RESTART:
                slot = members[a]
                if slot.member is None and slot.incarnation == b:
                    self._restart(a)
            elif kind == _HEAL:
                if cluster.network.partitioned:
                    cluster.heal()
            elif kind == _QUIESCE:
                self._on_quiesce()
        cluster.finish()
        return KVRunResult(
            self.seed, self.config, cluster.counters, cluster.violation, cluster.time
        )

    # ------------------------------------------------------------ handlers

    def _maybe_ready(self, node_id: int) -> None:
        if node_id in self._ready_pending:
            return
        slot = self.cluster.members[node_id]
        m = slot.member
        if m is not None and m.has_ready():
            self._ready_pending.add(node_id)
            sim = self.config.sim
            delay = uniform_int(self.rng, sim.disk_delay_min, sim.disk_delay_max)
            self._push(self.cluster.time + delay, _READY, node_id, slot.incarnation)

    def _on_ready(self, node_id: int, incarnation: int) -> None:
        cluster = self.cluster
        slot = cluster.members[node_id]
        if slot.member is None or slot.incarnation != incarnation:
            return
        self._ready_pending.discard(node_id)
        net = cluster.network
        first, wfirst = net.next_id, cluster.wire_next
        cluster.process_ready(node_id)
        for mid in range(first, net.next_id):
            if self._full():
                return
            self._route(mid)
        self._route_wire(wfirst)
        if not self._full():
            self._maybe_ready(node_id)

    def _route(self, mid: int) -> None:
        cluster = self.cluster
        rng = self.rng
        sim = self.config.sim
        now = cluster.time
        if self._loss and rng.random() < sim.loss_rate:
            cluster.drop(mid, "loss")
            return
        msg = cluster.network.in_flight[mid]
        hold = 0
        if self._reorder and rng.random() < sim.reorder_rate:
            hold = uniform_int(rng, 1, sim.reorder_delay_max)
        fifo = not self._reorder
        at = self._delays.delivery_time(rng, now, msg, fifo=fifo, hold_back=hold)
        self._push(at, _DELIVER, mid)
        if self._dup and rng.random() < sim.dup_rate and not self._full():
            ev = cluster.duplicate(mid)
            copy = ev.payload["copy"]
            self._push(self._delays.delivery_time(rng, now, msg, fifo=fifo), _DELIVER, copy)

    def _client_delay(self) -> int:
        sim = self.config.sim
        return uniform_int(self.rng, sim.delay_min, sim.delay_max)

    def _route_wire(self, first: int) -> None:
        """Schedule the client messages sent since wire id ``first``."""
        cluster = self.cluster
        wire = cluster.wire
        now = cluster.time
        for rid in range(first, cluster.wire_next):
            msg = wire.get(rid)
            if msg is None:
                continue
            if isinstance(msg, _WMsg):
                at = max(now + self._client_delay(), self._stream_clock.get(msg.stream, 0))
                self._stream_clock[msg.stream] = at
                self._push(at, _WIRE, rid)
                continue
            if self._loss and self.rng.random() < self.config.sim.loss_rate:
                del wire[rid]  # lost on the way: the client's timeout will notice
                continue
            self._push(now + self._client_delay(), _WIRE, rid)

    def _on_wire(self, rid: int) -> None:
        cluster = self.cluster
        msg = cluster.wire.get(rid)
        if msg is None:
            return
        first = cluster.wire_next
        if isinstance(msg, _Req):
            ev = cluster.request(rid)
            self._route_wire(first)
            if ev.node is not None:
                self._maybe_ready(ev.node)
        elif isinstance(msg, _Resp):
            c = cluster.clients.get(msg.response.client_id)
            before = (c.op.op_id, c.op.attempt) if c is not None and c.op is not None else None
            ev = cluster.respond(rid)
            if ev.payload.get("result") == "backoff" and before is not None:
                # Retry this attempt early, after a back-off (its timeout is then moot).
                at = cluster.time + uniform_int(self.rng, 20, 60)
                self._push(at, _TIMEOUT, msg.response.client_id, before[1])
            self._after_client_event(msg.response.client_id, before, first)
        else:
            assert isinstance(msg, _WMsg)
            _, ended = cluster.watch_event(rid)
            if ended:
                self._schedule_watch(ended, uniform_int(self.rng, 5, 30))

    def _retry_member(self, client_id: int) -> int:
        cluster = self.cluster
        c = cluster.clients.get(client_id)
        members = list(cluster.members)
        last = c.op.member if c is not None and c.op is not None else 0
        others = [m for m in members if m != last] or members
        return self.rng.choice(others)

    def _after_client_event(
        self, client_id: int, before: tuple[int, int] | None, first: int
    ) -> None:
        """After a response or timeout: schedule the next attempt's timeout, or the next op."""
        cluster = self.cluster
        self._route_wire(first)
        c = cluster.clients[client_id]
        now = cluster.time
        if c.op is None:
            if before is not None:
                self._push(now + self.rng.randint(1, 2 * self.config.op_interval), _CLIENT, c.id)
            return
        if before is None or (c.op.op_id, c.op.attempt) != before:
            self._push(now + self.config.request_timeout, _TIMEOUT, c.id, c.op.attempt)

    def _on_client(self, client_id: int) -> None:
        cluster = self.cluster
        c = cluster.clients[client_id]
        if c.op is not None:
            return
        req = choose_request(c, self.rng, self.config, cluster.resume_points())
        member = self.rng.choice(list(cluster.members))
        first = cluster.wire_next
        cluster.call(client_id, req, member)
        self._after_client_event(client_id, None, first)

    def _on_timeout(self, client_id: int, attempt: int) -> None:
        cluster = self.cluster
        c = cluster.clients[client_id]
        if c.op is None or c.op.attempt != attempt:
            return
        before = (c.op.op_id, c.op.attempt)
        first = cluster.wire_next
        cluster.timeout(client_id, attempt, self._retry_member(client_id))
        self._after_client_event(client_id, before, first)

    def _schedule_watch(self, watcher: int, delay: int) -> None:
        gen = self._wgen.get(watcher, 0) + 1
        self._wgen[watcher] = gen
        self._push(self.cluster.time + delay, _WATCH, watcher, gen)

    def _on_watch(self, watcher: int) -> None:
        cluster = self.cluster
        w = cluster.watchers[watcher]
        if w.stream and self.rng.random() < 0.4:
            # Go away for a while: the watcher falls behind, compactions may pass it.
            cluster.pause_watch(watcher)
            self._schedule_watch(watcher, self.rng.randint(1, self.config.watch_move_interval))
            return
        members = list(cluster.members)
        others = [m for m in members if m != w.member] or members
        member = self.rng.choice(others)
        first = cluster.wire_next
        cluster.open_watch(watcher, member)
        self._route_wire(first)
        if cluster.stream_open(watcher):
            self._schedule_watch(watcher, self.rng.randint(1, 2 * self.config.watch_move_interval))
        else:
            self._schedule_watch(watcher, uniform_int(self.rng, 20, 80))

    def _on_fault(self) -> None:
        if self.quiet:
            return
        cluster = self.cluster
        rng = self.rng
        strike = self._faults.strike(
            rng,
            self.config.voters,
            cluster.alive_ids(),
            cluster.network.partitioned,
            cluster.leaders(),
        )
        now = cluster.time
        if isinstance(strike, Crash):
            cluster.crash(strike.node)
            self._ready_pending.discard(strike.node)
            inc = cluster.members[strike.node].incarnation
            self._push(now + strike.down_for, _RESTART, strike.node, inc)
            for wid, w in cluster.watchers.items():
                if w.stream == 0:
                    self._schedule_watch(wid, uniform_int(rng, 20, 80))
        elif isinstance(strike, Partition):
            cluster.partition(strike.cut)
            self._push(now + strike.lasts, _HEAL)
        self._push(now + self._faults.next_interval(rng), _FAULT)

    def _restart(self, node_id: int) -> None:
        cluster = self.cluster
        cluster.restart(node_id)
        if cluster.violation is not None:
            return
        slot = cluster.members[node_id]
        self._push(cluster.time + self._period[node_id], _TICK, node_id, slot.incarnation)
        self._maybe_ready(node_id)

    def _on_quiesce(self) -> None:
        self.quiet = True
        self._set_message_faults()
        cluster = self.cluster
        if cluster.network.partitioned and not self._full():
            cluster.heal()
        for node_id in cluster.down_ids():
            if self._full():
                return
            self._restart(node_id)


# ---------------------------------------------------------------------- traces


class KVTraceWriter:
    """JSON Lines: a header, one line per event, the outcome (see docs/etcd.md)."""

    def __init__(self, stream: IO[str], *, owns: bool = False) -> None:
        self._stream = stream
        self._owns = owns
        self._encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True)

    @classmethod
    def open(cls, path: str | Path) -> KVTraceWriter:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        return cls(p.open("w", encoding="ascii", newline="\n"), owns=True)

    def header(self, seed: int, config: KVSimConfig, member: str) -> None:
        doc: dict[str, Any] = {
            "format": KV_TRACE_FORMAT,
            "version": KV_TRACE_VERSION,
            "kubeproof": __version__,
            "seed": seed,
            "config": kv_config_to_json(config),
            "member": member,
        }
        self._stream.write(self._encode.encode(doc) + "\n")

    def event(self, event: Event) -> None:
        self._stream.write(self._encode.encode(event_to_json(event)) + "\n")

    def outcome(self, violation: Violation | None) -> None:
        self._stream.write(self._encode.encode(TraceOutcome(violation).to_json()) + "\n")

    def close(self) -> None:
        if self._owns:
            self._stream.close()
        else:
            self._stream.flush()


def factory_name(factory: MemberFactory) -> str:
    module = getattr(factory, "__module__", None) or "?"
    qualname = getattr(factory, "__qualname__", None) or type(factory).__qualname__
    return f"{module}:{qualname}"


def run_kv_simulation(
    config: KVSimConfig,
    seed: int,
    *,
    checkers: Sequence[Checker] = (),
    member_factory: MemberFactory = Member,
    trace: str | Path | IO[str] | None = None,
) -> KVRunResult:
    """Run one seed; with `trace` (a path or a text stream) write its trace there."""
    if trace is None:
        return KVSimulation(config, seed, checkers=checkers, member_factory=member_factory).run()
    writer = KVTraceWriter.open(trace) if isinstance(trace, (str, Path)) else KVTraceWriter(trace)
    try:
        writer.header(seed, config, factory_name(member_factory))
        sim = KVSimulation(
            config, seed, checkers=checkers, member_factory=member_factory, sink=writer.event
        )
        result = sim.run()
        writer.outcome(result.violation)
    finally:
        writer.close()
    return result


def seed_config(config: KVSimConfig, seed: int, swarm: bool) -> KVSimConfig:
    """The configuration seed runs with: with ``swarm``, its own draw of the Raft
    harness's knobs (`swarm.swarm_config`)."""
    return attrs.evolve(config, sim=swarm_config(config.sim, seed)) if swarm else config


def _one(
    config: KVSimConfig,
    seed: int,
    checkers_factory: KVCheckersFactory,
    member_factory: MemberFactory,
    keep: Path | None,
    swarm: bool,
) -> KVRunResult:
    trace = keep / trace_name("kv", seed) if keep is not None else None
    cfg = seed_config(config, seed, swarm)
    return run_kv_simulation(
        cfg,
        seed,
        checkers=checkers_factory(cfg),
        member_factory=member_factory,
        trace=trace,
    )


def run_kv_campaign(
    config: KVSimConfig,
    seeds: Sequence[int],
    *,
    checkers_factory: KVCheckersFactory,
    member_factory: MemberFactory = Member,
    keep_traces: Path | None = None,
    save_failures: Path | None = None,
    on_result: Callable[[KVRunResult], None] | None = None,
    jobs: int = 1,
    swarm: bool = False,
) -> CampaignResult:
    """Every seed once (traced only with `keep_traces`); failing seeds are re-run with a
    trace into `save_failures`, which also checks that they reproduce."""
    result = CampaignResult(target="kv", config=config.sim, swarm=swarm)
    if keep_traces is not None:
        keep_traces.mkdir(parents=True, exist_ok=True)

    def collect(run: KVRunResult) -> None:
        result.seeds.append(run.seed)
        for name, value in run.counters.to_json().items():
            result.totals[name] = result.totals.get(name, 0) + value
        if run.violation is not None:
            result.failures.append(failure(run))
        if on_result is not None:
            on_result(run)

    def failure(run: KVRunResult) -> SeedFailure:
        assert run.violation is not None
        name = trace_name("kv", run.seed)
        if keep_traces is not None:
            path: Path = keep_traces / name
            if save_failures is not None:
                save_failures.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, save_failures / name)
                path = save_failures / name
            return SeedFailure(run.seed, run.violation, path, True)
        if save_failures is None:
            return SeedFailure(run.seed, run.violation, None, False)
        save_failures.mkdir(parents=True, exist_ok=True)
        again = run_kv_simulation(
            run.config,
            run.seed,
            checkers=checkers_factory(run.config),
            member_factory=member_factory,
            trace=save_failures / name,
        )
        same = again.violation is not None and (
            again.violation.invariant,
            again.violation.step,
        ) == (run.violation.invariant, run.violation.step)
        return SeedFailure(run.seed, run.violation, save_failures / name, same)

    if jobs <= 1 or len(seeds) <= 1:
        for seed in seeds:
            collect(_one(config, seed, checkers_factory, member_factory, keep_traces, swarm))
        return result
    with concurrent.futures.ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [
            pool.submit(_one, config, seed, checkers_factory, member_factory, keep_traces, swarm)
            for seed in seeds
        ]
        for fut in futures:
            collect(fut.result())
    return result
