"""The event loop both random schedulers share: the Raft layer under faults.

Theory of operation
-------------------
`EventLoop` owns a heap of *intentions* ordered by (virtual time, sequence
number) and draws every decision from the run's scheduler RNG.  Popping an
intention sets the clock and calls the matching action of the cluster it
drives (any `Driven` cluster: `cluster.Cluster`, `kvcluster.KVCluster`);
the action is what the trace records.  An intention that no longer applies
(a tick or Ready of a member that crashed since, a restart already done by
the quiet period) is discarded without an event.  The intentions of the
Raft layer are the loop's own:

| intention     | scheduled                                       | does                                |
| ------------- | ----------------------------------------------- | ----------------------------------- |
| tick(n, inc)  | every tick period of n (tick_interval +/- skew, | `tick(n)`                           |
|               | drawn once per member)                          |                                     |
| ready(n, inc) | disk delay after n first has a Ready            | `process_ready(n)`, then routes the |
|               |                                                 | messages it sent (below)            |
| deliver(id)   | when routing message id                         | `deliver(id)`                       |
| fault         | every [1, 2*fault_interval]                     | `faults.FaultPolicy.strike`: crash  |
|               |                                                 | or partition                        |
| restart(n)    | a down time after n crashed                     | `restart(n)`                        |
| heal          | a partition's duration after it started         | `heal()`                            |
| quiesce       | at `faults_until`                               | heal, restart all; faults stop      |

Routing a freshly sent message: with `loss`, lost with probability
`loss_rate` (a `drop` event); otherwise a delivery is scheduled at a time
from `network.DelayModel` (FIFO per link unless `reorder`; with `reorder`,
some messages are also held back); with `dup`, a second copy is scheduled
independently.

Between a member's state changing and its Ready being processed there is a
disk delay; a crash in that window loses the Ready (the intention is stale
when it pops).  Only one Ready per member is pending at a time; everything
the node produces meanwhile joins it.

The rest is the *workload*'s (the Raft client and features in
`harness.Simulation`; the store's clients and watchers in
`kv.KVSimulation`).  It schedules intentions of its own kinds (from
`FIRST_OWN` on) with `push`, which the loop hands back to `Hooks.handle`,
and it may follow the loop through the other hooks:

| hook              | called                                                            |
| ----------------- | ----------------------------------------------------------------- |
| `after_tick(n)`   | after n ticked (and its next tick was scheduled)                  |
| `after_ready(n)`  | after n's Ready was processed and its messages routed             |
| `message_done(e)` | after a Raft message was delivered (or lost at delivery), or lost |
|                   | in flight: its event                                              |
| `crashed(n)`      | after a fault crashed n (and its restart was scheduled)           |
| `after_intention` | after every intention that was not discarded                      |

A hook left out costs nothing, and a feature that is off schedules nothing
and draws nothing from the RNG, so the runs of a configuration without
features are what they were before the features existed.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

from attrs import frozen

from .config import Fault, SimConfig
from .events import EventLog, Seat
from .faults import Crash, FaultPolicy, Partition
from .network import DelayModel, Network
from .observe import Event
from .seeds import uniform_int

TICK, DELIVER, READY, FAULT, RESTART, HEAL, QUIESCE = range(7)
FIRST_OWN = 7
"""A workload's own intention kinds are FIRST_OWN, FIRST_OWN + 1, ..."""


class Driven(Protocol):
    """The cluster actions and views the loop drives (both simulated clusters have them)."""

    log: EventLog
    network: Network

    @property
    def members(self) -> Mapping[int, Seat]: ...

    def tick(self, node_id: int) -> Event: ...

    def deliver(self, msg_id: int) -> Event: ...

    def drop(self, msg_id: int, reason: str = "loss") -> Event: ...

    def duplicate(self, msg_id: int) -> Event: ...

    def process_ready(self, node_id: int) -> Event: ...

    def crash(self, node_id: int) -> Event: ...

    def restart(self, node_id: int) -> Event: ...

    def partition(
        self,
        groups: Sequence[Iterable[int]] | None = None,
        cut: Iterable[Sequence[int]] | None = None,
    ) -> Event: ...

    def heal(self) -> Event: ...

    def has_ready(self, node_id: int) -> bool: ...

    def alive_ids(self) -> list[int]: ...

    def down_ids(self) -> list[int]: ...

    def active_ids(self) -> list[int]: ...

    def leaders(self) -> list[int]: ...


@frozen
class Hooks:
    """The workload's part of the loop; see the module docstring."""

    handle: Callable[[int, int, int, int], None]
    """An intention of the workload's own kinds: (kind, a, b, time)."""
    after_tick: Callable[[int], None] | None = None
    after_ready: Callable[[int], None] | None = None
    message_done: Callable[[Event], None] | None = None
    crashed: Callable[[int], None] | None = None
    after_intention: Callable[[], None] | None = None


class EventLoop:
    """The heap, the Raft layer's intentions, the fault model; see the module docstring."""

    def __init__(
        self, cluster: Driven, config: SimConfig, rng: random.Random, hooks: Hooks
    ) -> None:
        self.cluster = cluster
        self.config = config
        self.rng = rng
        self.hooks = hooks
        self.heap: list[tuple[int, int, int, int, int]] = []
        self.seq = 0
        """Intentions pushed so far (each one's tie-breaker in the heap)."""
        self.delays = DelayModel(config)
        self.faults = FaultPolicy(config)
        self.ready_pending: set[int] = set()
        self.period: dict[int, int] = {}
        self.quiet = False
        """From `faults_until` on: no new faults, everything healed and restarted."""
        self._set_message_faults()

    def _set_message_faults(self) -> None:
        f = self.config.faults
        on = not self.quiet
        self.loss = on and Fault.loss in f and self.config.loss_rate > 0
        self.dup = on and Fault.dup in f and self.config.dup_rate > 0
        self.reorder = on and Fault.reorder in f

    def push(self, t: int, kind: int, a: int = 0, b: int = 0) -> None:
        heapq.heappush(self.heap, (t, self.seq, kind, a, b))
        self.seq += 1

    def full(self) -> bool:
        """No room for another event (the step budget is spent, or the run stopped)."""
        log = self.cluster.log
        return log.violation is not None or log.step >= self.config.steps

    # ---------------------------------------------------------------- start

    def start_ticks(self, members: Iterable[int]) -> None:
        """Draw each member's tick period and schedule its first tick."""
        rng = self.rng
        cfg = self.config
        for i in members:
            period = cfg.tick_interval + rng.randint(-cfg.clock_skew, cfg.clock_skew)
            self.period[i] = period
            self.push(rng.randint(1, period), TICK, i, 0)

    def start_faults(self) -> None:
        """Schedule the first fault decision and the quiet period (when configured)."""
        if self.faults.active:
            self.push(self.faults.next_interval(self.rng), FAULT)
        if self.config.faults_until is not None:
            self.push(self.config.faults_until, QUIESCE)

    def start_member(self, node_id: int) -> None:
        """A member that just joined: its tick period, its first tick, its first Ready."""
        cfg = self.config
        period = cfg.tick_interval + self.rng.randint(-cfg.clock_skew, cfg.clock_skew)
        self.period[node_id] = period
        self.push(self.cluster.log.time + period, TICK, node_id, 0)
        self.maybe_ready(node_id)

    # ------------------------------------------------------------- the loop

    def run(self, until: int | None = None) -> None:
        """Run to the step budget (or `max_time`); with `until`, stop before the first
        intention later than that time, so that a test can act on the cluster and run on."""
        cluster = self.cluster
        log = cluster.log
        limit = self.config.steps
        heap = self.heap
        pop = heapq.heappop
        members = cluster.members
        max_time = self.config.max_time
        hooks = self.hooks
        handle = hooks.handle
        after_tick = hooks.after_tick
        message_done = hooks.message_done
        after_intention = hooks.after_intention
        period = self.period
        while log.violation is None and log.step < limit and heap:
            t, seq, kind, a, b = pop(heap)
            if max_time is not None and t > max_time:
                break
            if until is not None and t > until:
                heapq.heappush(heap, (t, seq, kind, a, b))
                break
            log.time = t  # monotone by heap order; advance_to's check is not needed here
            if kind == TICK:
                m = members[a]
                if not m.alive or m.incarnation != b:
                    continue  # the member crashed since: its tick chain ends
                cluster.tick(a)
                heapq.heappush(heap, (t + period[a], self.seq, TICK, a, b))
                self.seq += 1
                if after_tick is not None:
                    after_tick(a)
                self.maybe_ready(a)
            elif kind == DELIVER:
                ev = cluster.deliver(a)
                to = ev.node
                if to is not None and to in members:
                    self.maybe_ready(to)
                if message_done is not None:
                    message_done(ev)
            elif kind == READY:
                self._on_ready(a, b)
            elif kind >= FIRST_OWN:
                handle(kind, a, b, t)
            elif kind == FAULT:
                self._on_fault()
            elif kind == RESTART:
                m = members[a]
                if not m.alive and m.incarnation == b and not m.stopped:
                    self.restart(a)
            elif kind == HEAL:
                if cluster.network.partitioned:
                    cluster.heal()
            elif kind == QUIESCE:
                self._on_quiesce()
            if after_intention is not None:
                after_intention()

    # ------------------------------------------------------------- handlers

    def maybe_ready(self, node_id: int) -> None:
        """Schedule n's Ready after a disk delay, unless one is pending already."""
        if node_id in self.ready_pending:
            return
        cluster = self.cluster
        if cluster.has_ready(node_id):
            self.ready_pending.add(node_id)
            cfg = self.config
            delay = uniform_int(self.rng, cfg.disk_delay_min, cfg.disk_delay_max)
            incarnation = cluster.members[node_id].incarnation
            self.push(cluster.log.time + delay, READY, node_id, incarnation)

    def _on_ready(self, node_id: int, incarnation: int) -> None:
        cluster = self.cluster
        m = cluster.members[node_id]
        if not m.alive or m.incarnation != incarnation:
            return  # lost in a crash
        self.ready_pending.discard(node_id)
        net = cluster.network
        first = net.next_id
        cluster.process_ready(node_id)
        for mid in range(first, net.next_id):
            if self.full():
                return
            self.route(mid)
        after_ready = self.hooks.after_ready
        if after_ready is not None:
            after_ready(node_id)
        if not self.full():
            self.maybe_ready(node_id)

    def route(self, mid: int) -> None:
        """Route a freshly sent message: lose it, or schedule its delivery (and a copy)."""
        cluster = self.cluster
        rng = self.rng
        cfg = self.config
        now = cluster.log.time
        if self.loss and rng.random() < cfg.loss_rate:
            ev = cluster.drop(mid, "loss")
            message_done = self.hooks.message_done
            if message_done is not None:
                message_done(ev)
            return
        msg = cluster.network.in_flight[mid]
        hold = 0
        if self.reorder and rng.random() < cfg.reorder_rate:
            hold = uniform_int(rng, 1, cfg.reorder_delay_max)
        fifo = not self.reorder
        at = self.delays.delivery_time(rng, now, msg, fifo=fifo, hold_back=hold)
        self.push(at, DELIVER, mid)
        if self.dup and rng.random() < cfg.dup_rate and not self.full():
            ev = cluster.duplicate(mid)
            copy = ev.payload["copy"]
            self.push(self.delays.delivery_time(rng, now, msg, fifo=fifo), DELIVER, copy)

    def _on_fault(self) -> None:
        if self.quiet:
            return
        cluster = self.cluster
        rng = self.rng
        strike = self.faults.strike(
            rng,
            cluster.active_ids(),
            cluster.alive_ids(),
            cluster.network.partitioned,
            cluster.leaders(),
        )
        now = cluster.log.time
        if isinstance(strike, Crash):
            self.crash(strike.node)
            inc = cluster.members[strike.node].incarnation
            self.push(now + strike.down_for, RESTART, strike.node, inc)
            crashed = self.hooks.crashed
            if crashed is not None:
                crashed(strike.node)
        elif isinstance(strike, Partition):
            cluster.partition(cut=strike.cut)
            self.push(now + strike.lasts, HEAL)
        self.push(now + self.faults.next_interval(rng), FAULT)

    def crash(self, node_id: int) -> None:
        """Crash a member now; its pending Ready is lost with it."""
        self.cluster.crash(node_id)
        self.ready_pending.discard(node_id)

    def restart(self, node_id: int) -> None:
        """Restart a crashed member now, with its tick chain and Ready scheduling."""
        cluster = self.cluster
        cluster.restart(node_id)
        if cluster.log.violation is not None:
            return
        incarnation = cluster.members[node_id].incarnation
        self.push(cluster.log.time + self.period[node_id], TICK, node_id, incarnation)
        self.maybe_ready(node_id)

    def _on_quiesce(self) -> None:
        self.quiet = True
        self._set_message_faults()
        cluster = self.cluster
        if cluster.network.partitioned and not self.full():
            cluster.heal()
        for node_id in cluster.down_ids():
            if self.full():
                return
            self.restart(node_id)
