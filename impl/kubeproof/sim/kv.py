"""The replicated store under simulation: a seed plus a KVSimConfig becomes a run.

Theory of operation
-------------------
`KVSimulation` is the store's random scheduler.  It drives a
`kvcluster.KVCluster` through the Raft harness's event loop
(`loop.EventLoop`: a heap of intentions ordered by (virtual time, sequence
number), one RNG (`seeds.scheduler_rng(seed)`) for every decision, each
popped intention turned into one cluster action), so the Raft layer runs
exactly as under the Raft harness: ticks, Readys after a disk delay, Raft
messages routed with delay, loss, duplication and reordering, crashes,
restarts, partitions, heals and the quiet period (`faults.FaultPolicy`).
An intention that no longer applies (a member that crashed since, an
attempt already answered, a watcher that moved) is dropped without an
event.  What it adds is the store's clients and watchers:

| intention        | scheduled                                         | does                           |
| ---------------- | ------------------------------------------------- | ------------------------------ |
| tick, ready,     | as the Raft harness (`loop`)                      | `tick`, `process_ready`,       |
| deliver, fault,  |                                                   | `deliver`, crash/restart/      |
| restart, heal,   |                                                   | partition/heal                 |
| quiesce          |                                                   |                                |
| client(c)        | [1, 2*op_interval] after c's last op ended        | `call(c, request, member)`     |
| wire(id)         | a delay after a client message was sent (requests | `request`, `respond` or        |
|                  | and answers may be lost with `loss`; a watch      | `watch_event`                  |
|                  | stream is FIFO and loses nothing)                 |                                |
| timeout(c, a)    | request_timeout after attempt a was sent          | `timeout(c, a, member)`        |
| watch(w)         | at start; [1, 2*watch_move_interval] after it     | `open_watch(w, member)`, or    |
|                  | opened; soon after its stream broke or was        | (2 times in 5 with a stream    |
|                  | canceled by a compaction                          | open) `pause_watch(w)` for     |
|                  |                                                   | [1, watch_move_interval]       |

The client messages a tick, a Ready or a client action sent are routed
right after it (`wire` intentions); a crash also moves the watchers whose
stream it broke.

When the step budget is spent (or ``max_time`` passed) the run ends with
`KVCluster.finish()`, which turns the operations still in flight into
pending ones and runs the end-of-run checks (KV-LINEARIZABLE on the whole
history).  `run_kv_simulation` writes the trace (a header naming the
``kubeproof-kv-trace`` format and the full configuration, one line per
event, the outcome); `run_kv_campaign` runs many seeds.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

import attrs
from attrs import frozen

from kubeproof.etcd import Member

from .campaign import CampaignResult, run_seeds
from .kvclients import choose_request
from .kvcluster import KVCluster, KVCounters, MemberFactory, _Req, _Resp, _WMsg
from .kvconfig import KVSimConfig
from .loop import FIRST_OWN, EventLoop, Hooks
from .observe import Checker, Event, Violation
from .seeds import scheduler_rng, uniform_int
from .swarm import swarm_config
from .trace import KV_TRACE_FORMAT, KV_TRACE_VERSION, KVTraceHeader, TraceWriter, factory_name

__all__ = [
    "KV_TRACE_FORMAT",
    "KV_TRACE_VERSION",
    "KVCheckersFactory",
    "KVRunResult",
    "KVSimulation",
    "run_kv_campaign",
    "run_kv_simulation",
    "seed_config",
]

_CLIENT, _WIRE, _TIMEOUT, _WATCH = range(FIRST_OWN, FIRST_OWN + 4)

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
    """One seeded run of the store; see the module docstring."""

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
        self.rng = rng = scheduler_rng(seed)
        self.loop = loop = EventLoop(
            self.cluster,
            config.sim,
            rng,
            Hooks(
                self._handle,
                after_tick=self._route_wire,
                after_ready=self._route_wire,
                crashed=self._crashed,
            ),
        )
        self._wgen: dict[int, int] = {}
        self._stream_clock: dict[int, int] = {}
        self._wire_routed = 1
        """Client messages before this wire id are routed."""
        loop.start_ticks(config.voters)
        for c in self.cluster.clients:
            loop.push(rng.randint(1, 2 * config.op_interval), _CLIENT, c)
        for w in self.cluster.watchers:
            self._schedule_watch(w, rng.randint(1, 50))
        loop.start_faults()

    @property
    def quiet(self) -> bool:
        return self.loop.quiet

    def run(self) -> KVRunResult:
        self.loop.run()
        cluster = self.cluster
        cluster.finish()
        return KVRunResult(
            self.seed, self.config, cluster.counters, cluster.violation, cluster.time
        )

    def _handle(self, kind: int, a: int, b: int, t: int) -> None:
        if kind == _WIRE:
            self._on_wire(a)
        elif kind == _CLIENT:
            self._on_client(a)
        elif kind == _TIMEOUT:
            self._on_timeout(a, b)
        elif kind == _WATCH and self._wgen.get(a) == b:
            self._on_watch(a)

    # ------------------------------------------------------------ handlers

    def _client_delay(self) -> int:
        sim = self.config.sim
        return uniform_int(self.rng, sim.delay_min, sim.delay_max)

    def _route_wire(self, _: int = 0) -> None:
        """Schedule the client messages sent since the last call."""
        cluster = self.cluster
        wire = cluster.wire
        now = cluster.time
        push = self.loop.push
        first, self._wire_routed = self._wire_routed, cluster.wire_next
        for rid in range(first, self._wire_routed):
            msg = wire.get(rid)
            if msg is None:
                continue
            if isinstance(msg, _WMsg):
                at = max(now + self._client_delay(), self._stream_clock.get(msg.stream, 0))
                self._stream_clock[msg.stream] = at
                push(at, _WIRE, rid)
                continue
            if self.loop.loss and self.rng.random() < self.config.sim.loss_rate:
                del wire[rid]  # lost on the way: the client's timeout will notice
                continue
            push(now + self._client_delay(), _WIRE, rid)

    def _on_wire(self, rid: int) -> None:
        cluster = self.cluster
        msg = cluster.wire.get(rid)
        if msg is None:
            return
        if isinstance(msg, _Req):
            ev = cluster.request(rid)
            self._route_wire()
            if ev.node is not None:
                self.loop.maybe_ready(ev.node)
        elif isinstance(msg, _Resp):
            c = cluster.clients.get(msg.response.client_id)
            before = (c.op.op_id, c.op.attempt) if c is not None and c.op is not None else None
            ev = cluster.respond(rid)
            if ev.payload.get("result") == "backoff" and before is not None:
                # Retry this attempt early, after a back-off (its timeout is then moot).
                at = cluster.time + uniform_int(self.rng, 20, 60)
                self.loop.push(at, _TIMEOUT, msg.response.client_id, before[1])
            self._after_client_event(msg.response.client_id, before)
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

    def _after_client_event(self, client_id: int, before: tuple[int, int] | None) -> None:
        """After a response or timeout: schedule the next attempt's timeout, or the next op."""
        cluster = self.cluster
        self._route_wire()
        c = cluster.clients[client_id]
        now = cluster.time
        if c.op is None:
            if before is not None:
                self.loop.push(
                    now + self.rng.randint(1, 2 * self.config.op_interval), _CLIENT, c.id
                )
            return
        if before is None or (c.op.op_id, c.op.attempt) != before:
            self.loop.push(now + self.config.request_timeout, _TIMEOUT, c.id, c.op.attempt)

    def _on_client(self, client_id: int) -> None:
        cluster = self.cluster
        c = cluster.clients[client_id]
        if c.op is not None:
            return
        req = choose_request(c, self.rng, self.config, cluster.resume_points())
        member = self.rng.choice(list(cluster.members))
        cluster.call(client_id, req, member)
        self._after_client_event(client_id, None)

    def _on_timeout(self, client_id: int, attempt: int) -> None:
        cluster = self.cluster
        c = cluster.clients[client_id]
        if c.op is None or c.op.attempt != attempt:
            return
        before = (c.op.op_id, c.op.attempt)
        cluster.timeout(client_id, attempt, self._retry_member(client_id))
        self._after_client_event(client_id, before)

    def _schedule_watch(self, watcher: int, delay: int) -> None:
        gen = self._wgen.get(watcher, 0) + 1
        self._wgen[watcher] = gen
        self.loop.push(self.cluster.time + delay, _WATCH, watcher, gen)

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
        cluster.open_watch(watcher, member)
        self._route_wire()
        if cluster.stream_open(watcher):
            self._schedule_watch(watcher, self.rng.randint(1, 2 * self.config.watch_move_interval))
        else:
            self._schedule_watch(watcher, uniform_int(self.rng, 20, 80))

    def _crashed(self, node_id: int) -> None:
        """The crash broke the streams of the watchers there: they move on soon."""
        for wid, w in self.cluster.watchers.items():
            if w.stream == 0:
                self._schedule_watch(wid, uniform_int(self.rng, 20, 80))


# ---------------------------------------------------------------------- traces


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
    writer = TraceWriter.open(trace) if isinstance(trace, (str, Path)) else TraceWriter(trace)
    with writer:
        writer.header(KVTraceHeader(seed, config, factory_name(member_factory)))
        sim = KVSimulation(
            config, seed, checkers=checkers, member_factory=member_factory, sink=writer.event
        )
        result = sim.run()
        writer.outcome(result.violation)
    return result


def seed_config(config: KVSimConfig, seed: int, swarm: bool) -> KVSimConfig:
    """The configuration seed runs with: with ``swarm``, its own draw of the Raft
    harness's knobs (`swarm.swarm_config`)."""
    return attrs.evolve(config, sim=swarm_config(config.sim, seed)) if swarm else config


def _kv_seed(
    config: KVSimConfig,
    checkers_factory: KVCheckersFactory,
    member_factory: MemberFactory,
    swarm: bool,
    seed: int,
    trace: Path | None,
) -> KVRunResult:
    cfg = seed_config(config, seed, swarm)
    return run_kv_simulation(
        cfg, seed, checkers=checkers_factory(cfg), member_factory=member_factory, trace=trace
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
    one = functools.partial(_kv_seed, config, checkers_factory, member_factory, swarm)
    result = CampaignResult(target="kv", config=config.sim, swarm=swarm)
    return run_seeds(result, seeds, one, keep_traces, save_failures, on_result, jobs)
