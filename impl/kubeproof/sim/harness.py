"""The random scheduler: a seed plus a SimConfig becomes a run of the cluster.

Theory of operation
-------------------
`Simulation` owns a heap of *intentions* ordered by (virtual time, sequence
number) and one RNG (`seeds.scheduler_rng(seed)`) from which it draws every
decision.  Popping an intention sets the clock and calls the matching
`cluster.Cluster` action; the action is what the trace records.  An
intention that no longer applies (a tick or Ready of a member that crashed
since, a restart already done by the quiet period) is discarded without an
event.

| intention     | scheduled                                       | does                                |
| ------------- | ----------------------------------------------- | ----------------------------------- |
| tick(n, inc)  | every tick period of n (tick_interval +/- skew) | `tick(n)`                           |
| ready(n, inc) | disk delay after n first has a Ready            | `process_ready(n)`, then routes the |
|               |                                                 | messages it sent (below)            |
| deliver(id)   | when routing message id                         | `deliver(id)`                       |
| propose       | every [1, 2*proposal_interval]                  | `propose(random live member)`       |
| fault         | every [1, 2*fault_interval]                     | `faults.FaultPolicy.strike`         |
| restart(n)    | a down time after n crashed                     | `restart(n)`                        |
| heal          | a partition's duration after it started         | `heal()`                            |
| quiesce       | at `faults_until`                               | heal, restart all; faults stop      |
| snapshot      | every [1, 2*snapshot_interval] (`snapshots`)    | a random live member snapshots its  |
|               |                                                 | applied state, compacts to a random |
|               |                                                 | point at or below it                |
| snap report   | a network delay after a MsgSnap was delivered   | `report_snapshot` to its sender:    |
|               | (Finish) or lost/cut/undeliverable (Failure)    | Finish or Failure, as etcd's        |
|               |                                                 | transport reports                   |
| conf change   | every [1, 2*conf_change_interval], and soon     | `reconfig.choose_change` at the     |
|               | after some elections (`conf_changes`)           | leader                              |
| transfer      | every [1, 2*transfer_interval] (`transfers`)    | transfer to a voter, itself, a      |
|               |                                                 | learner or anyone, at the leader or |
|               |                                                 | at a follower (forwarded)           |
| read          | every [1, 2*read_interval] (`reads`)            | `read` at the leader or any member  |

Routing a freshly sent message: with `loss`, lost with probability
`loss_rate` (a `drop` event); otherwise a delivery is scheduled at a time
from `network.DelayModel` (FIFO per link unless `reorder`; with `reorder`,
some messages are also held back); with `dup`, a second copy is scheduled
independently.

Between a member's state changing and its Ready being processed there is a
disk delay; a crash in that window loses the Ready (the intention is stale
when it pops).  Only one Ready per member is pending at a time; everything
the node produces meanwhile joins it.

After every `process_ready` the membership bookkeeping of the cluster is
consulted: members the latest configuration adds `join` (with their own tick
chain), removed ones `stop` (`cluster.Cluster.pending_joins`, `due_stops`).
The client proposes up to `proposal_burst` entries back to back to one
member, which its next Ready batches.

A feature that is off schedules nothing and draws nothing from the RNG, so
the runs of a configuration without features are what they were before the
features existed.

Nothing here reads a clock or a global RNG, so `(seed, config)` fixes the
run; `run_simulation` writes the trace (header, events, outcome).
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from attrs import frozen

from kubeproof.raft import RaftNode, SnapshotStatus

from .cluster import Cluster, Counters, EventSink
from .config import Fault, SimConfig
from .faults import Crash, FaultPolicy, Partition
from .member import NodeFactory
from .network import DelayModel
from .observe import Checker, Violation
from .reconfig import choose_change
from .seeds import scheduler_rng, uniform_int
from .trace import TraceHeader, TraceWriter

(
    _TICK,
    _DELIVER,
    _READY,
    _PROPOSE,
    _FAULT,
    _RESTART,
    _HEAL,
    _QUIESCE,
    _SNAPSHOT,
    _CONF,
    _TRANSFER,
    _READ,
    _SNAP_FINISH,
    _SNAP_FAILURE,
) = range(14)


@frozen
class RunResult:
    seed: int
    config: SimConfig
    counters: Counters
    violation: Violation | None
    time: int

    @property
    def ok(self) -> bool:
        return self.violation is None


class Simulation:
    """One seeded run; see the module docstring."""

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
        self.cluster = Cluster(
            config, seed, checkers=checkers, node_factory=node_factory, sink=sink
        )
        self.rng = scheduler_rng(seed)
        self._heap: list[tuple[int, int, int, int, int]] = []
        self._seq = 0
        self._delays = DelayModel(config)
        self._faults = FaultPolicy(config)
        self._ready_pending: set[int] = set()
        self.quiet = False
        rng = self.rng
        self._period: dict[int, int] = {}
        for i in config.voters:
            period = config.tick_interval + rng.randint(-config.clock_skew, config.clock_skew)
            self._period[i] = period
            self._push(rng.randint(1, period), _TICK, i, 0)
        self._push(rng.randint(1, 2 * config.proposal_interval), _PROPOSE)
        if self._faults.active:
            self._push(self._faults.next_interval(rng), _FAULT)
        if config.faults_until is not None:
            self._push(config.faults_until, _QUIESCE)
        if config.snapshots:
            self._push(rng.randint(1, 2 * config.snapshot_interval), _SNAPSHOT)
        self._conf_next = 0
        if config.conf_changes:
            self._conf_next = rng.randint(1, 2 * config.conf_change_interval)
            self._push(self._conf_next, _CONF)
        if config.transfers:
            self._push(rng.randint(1, 2 * config.transfer_interval), _TRANSFER)
        if config.reads:
            self._push(rng.randint(1, 2 * config.read_interval), _READ)
        self._snap_reports = config.snapshots
        self._membership = config.conf_changes
        self._next_member = config.nodes + 1
        self._configurations = 0
        self._elections = 0
        self._set_message_faults()

    def _set_message_faults(self) -> None:
        f = self.config.faults
        on = not self.quiet
        self._loss = on and Fault.loss in f and self.config.loss_rate > 0
        self._dup = on and Fault.dup in f and self.config.dup_rate > 0
        self._reorder = on and Fault.reorder in f

    def _push(self, t: int, kind: int, a: int = 0, b: int = 0) -> None:
        heapq.heappush(self._heap, (t, self._seq, kind, a, b))
        self._seq += 1

    # -------------------------------------------------------------- the loop

    def run(self, until: int | None = None) -> RunResult:
        """Run to the step budget (or `max_time`); with `until`, stop before the first
        event later than that time, so that a test can act on the cluster and run on."""
        cluster = self.cluster
        limit = self.config.steps
        heap = self._heap
        pop = heapq.heappop
        members = cluster.members
        max_time = self.config.max_time
        while cluster.violation is None and cluster.step < limit:
            t, seq, kind, a, b = pop(heap)
            if max_time is not None and t > max_time:
                break
            if until is not None and t > until:
                heapq.heappush(heap, (t, seq, kind, a, b))
                break
            cluster._time = t  # monotone by heap order; advance_to's check is not needed here
            if kind == _TICK:
                m = members[a]
                if m.node is None or m.incarnation != b:
                    continue  # the member crashed since: its tick chain ends
                cluster.tick(a)
                heapq.heappush(heap, (t + self._period[a], self._seq, _TICK, a, b))
                self._seq += 1
                if a not in self._ready_pending:
                    self._maybe_ready(a)
            elif kind == _DELIVER:
                ev = cluster.deliver(a)
                to = ev.node
                if to is not None and to not in self._ready_pending and to in members:
                    self._maybe_ready(to)
                if self._snap_reports and ev.payload.get("type") == "MsgSnap":
                    self._snapshot_sent(ev.payload, to)
            elif kind == _READY:
                self._on_ready(a, b)
            elif kind == _PROPOSE:
                self._on_propose()
            elif kind == _FAULT:
                self._on_fault()
            elif kind == _RESTART:
                m = members[a]
                if m.node is None and m.incarnation == b and not m.stopped:
                    self._restart(a)
            elif kind == _HEAL:
                if cluster.network.partitioned:
                    cluster.heal()
            elif kind == _QUIESCE:
                self._on_quiesce()
            elif kind == _SNAPSHOT:
                self._on_snapshot()
            elif kind == _CONF:
                self._on_conf(t)
            elif kind == _TRANSFER:
                self._on_transfer()
            elif kind == _READ:
                self._on_read()
            elif kind in (_SNAP_FINISH, _SNAP_FAILURE):
                m = members[a]
                if m.node is not None:
                    status = (
                        SnapshotStatus.Finish if kind == _SNAP_FINISH else SnapshotStatus.Failure
                    )
                    cluster.report_snapshot(a, b, status)
            if self._membership and cluster.counters.elections != self._elections:
                self._after_election()
        return RunResult(self.seed, self.config, cluster.counters, cluster.violation, cluster.time)

    def _full(self) -> bool:
        """No room for another event (the step budget is spent, or the run stopped)."""
        c = self.cluster
        return c.violation is not None or c.step >= self.config.steps

    # ------------------------------------------------------------- handlers

    def _maybe_ready(self, node_id: int) -> None:
        m = self.cluster.members[node_id]
        node = m.node
        if node is not None and node.has_ready():
            self._ready_pending.add(node_id)
            cfg = self.config
            delay = uniform_int(self.rng, cfg.disk_delay_min, cfg.disk_delay_max)
            heapq.heappush(
                self._heap, (self.cluster._time + delay, self._seq, _READY, node_id, m.incarnation)
            )
            self._seq += 1

    def _on_ready(self, node_id: int, incarnation: int) -> None:
        cluster = self.cluster
        m = cluster.members[node_id]
        if m.node is None or m.incarnation != incarnation:
            return  # lost in a crash
        self._ready_pending.discard(node_id)
        net = cluster.network
        first = net.next_id
        cluster.process_ready(node_id)
        last = net.next_id
        for mid in range(first, last):
            if self._full():
                return
            self._route(mid)
        if self._membership and not self._full():
            self._follow_membership()
        if not self._full():
            self._maybe_ready(node_id)

    def _route(self, mid: int) -> None:
        cluster = self.cluster
        rng = self.rng
        now = cluster.time
        if self._loss and rng.random() < self.config.loss_rate:
            ev = cluster.drop(mid, "loss")
            if self._snap_reports and ev.payload.get("type") == "MsgSnap":
                self._snapshot_sent(ev.payload, ev.node)
            return
        msg = cluster.network.in_flight[mid]
        hold = 0
        if self._reorder and rng.random() < self.config.reorder_rate:
            hold = uniform_int(rng, 1, self.config.reorder_delay_max)
        fifo = not self._reorder
        at = self._delays.delivery_time(rng, now, msg, fifo=fifo, hold_back=hold)
        heapq.heappush(self._heap, (at, self._seq, _DELIVER, mid, 0))
        self._seq += 1
        if self._dup and rng.random() < self.config.dup_rate and not self._full():
            ev = cluster.duplicate(mid)
            copy = ev.payload["copy"]
            self._push(self._delays.delivery_time(rng, now, msg, fifo=fifo), _DELIVER, copy)

    def _on_propose(self) -> None:
        cfg = self.config
        rng = self.rng
        cluster = self.cluster
        alive = cluster.alive_ids()
        if alive:
            target = rng.choice(alive)
            burst = 1 if cfg.proposal_burst == 1 else rng.randint(1, cfg.proposal_burst)
            for _ in range(burst):
                if self._full():
                    return
                cluster.propose(target)
            if target not in self._ready_pending:
                self._maybe_ready(target)
        self._push(cluster.time + rng.randint(1, 2 * cfg.proposal_interval), _PROPOSE)

    def _on_fault(self) -> None:
        if self.quiet:
            return
        cluster = self.cluster
        rng = self.rng
        strike = self._faults.strike(
            rng,
            cluster.active_ids(),
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
        elif isinstance(strike, Partition):
            cluster.partition(cut=strike.cut)
            self._push(now + strike.lasts, _HEAL)
        self._push(now + self._faults.next_interval(rng), _FAULT)

    # ------------------------------------------------------------ features

    def _snapshot_sent(self, payload: object, to: int | None) -> None:
        """etcd's transport reports how sending a MsgSnap went: Finish or Failure."""
        assert isinstance(payload, dict)
        sender = payload.get("from")
        if not isinstance(sender, int) or to is None:
            return
        ok = payload.get("result") == "ok"
        delay = uniform_int(self.rng, self.config.delay_min, self.config.delay_max)
        self._push(self.cluster.time + delay, _SNAP_FINISH if ok else _SNAP_FAILURE, sender, to)

    def _on_snapshot(self) -> None:
        cluster = self.cluster
        rng = self.rng
        candidates = []
        for i in cluster.alive_ids():
            m = cluster.members[i]
            if m.app is not None and m.app.index > m.storage.snapshot().metadata.index:
                candidates.append(i)
        if candidates:
            i = rng.choice(candidates)
            m = cluster.members[i]
            assert m.app is not None
            index = m.app.index
            # Half the time up to the snapshot; else keep a short tail for slow followers.
            low = max(m.storage.first_index(), index - 20)
            compact = index if rng.random() < 0.5 else uniform_int(rng, low, index)
            cluster.snapshot(i, compact)
        self._push(cluster.time + rng.randint(1, 2 * self.config.snapshot_interval), _SNAPSHOT)

    def _leader(self) -> int | None:
        """The live leader of the highest term, if any."""
        best: int | None = None
        best_term = -1
        for i in self.cluster.leaders():
            node = self.cluster.members[i].node
            assert node is not None
            if node.term > best_term:
                best, best_term = i, node.term
        return best

    def _fresh_member(self) -> int:
        nid = self._next_member
        self._next_member += 1
        return nid

    def _on_conf(self, t: int) -> None:
        cluster = self.cluster
        lid = self._leader()
        if lid is not None:
            node = cluster.members[lid].node
            assert node is not None
            cc = choose_change(
                self.rng, node.conf_state(), lid, self._fresh_member, self.config.member_limit
            )
            if cc is not None:
                cluster.conf_change(lid, cc)
                if lid not in self._ready_pending:
                    self._maybe_ready(lid)
        if self._conf_next <= t:
            self._conf_next = t + self.rng.randint(1, 2 * self.config.conf_change_interval)
            self._push(self._conf_next, _CONF)

    def _after_election(self) -> None:
        """Sometimes ask for a change right after an election: the window in which a
        leader has not yet committed an entry of its term (Ongaro's membership bug)."""
        self._elections = self.cluster.counters.elections
        if self.rng.random() < 0.25:
            self._push(self.cluster.time + uniform_int(self.rng, 1, 20), _CONF)

    def _follow_membership(self) -> None:
        cluster = self.cluster
        counters = cluster.counters
        if counters.configurations != self._configurations:
            self._configurations = counters.configurations
            for nid in cluster.pending_joins():
                if self._full():
                    return
                self._join(nid)
        for nid in cluster.due_stops():
            if self._full():
                return
            cluster.stop(nid)
            self._ready_pending.discard(nid)

    def _join(self, node_id: int) -> None:
        cluster = self.cluster
        cluster.join(node_id)
        if cluster.violation is not None:
            return
        cfg = self.config
        period = cfg.tick_interval + self.rng.randint(-cfg.clock_skew, cfg.clock_skew)
        self._period[node_id] = period
        self._push(cluster.time + period, _TICK, node_id, 0)
        self._maybe_ready(node_id)

    def _on_transfer(self) -> None:
        cluster = self.cluster
        rng = self.rng
        lid = self._leader()
        if lid is not None:
            node = cluster.members[lid].node
            assert node is not None
            cs = node.conf_state()
            others = [v for v in (*cs.voters, *cs.voters_outgoing) if v != lid]
            r = rng.random()
            if r < 0.7 and others:
                target = rng.choice(others)
            elif r < 0.8:
                target = lid
            elif r < 0.9 and cs.learners:
                target = rng.choice(cs.learners)
            else:
                target = rng.choice(cluster.active_ids())
            alive = cluster.alive_ids()
            issuer = lid if rng.random() < 0.8 else rng.choice(alive)
            cluster.transfer(issuer, target)
            if issuer not in self._ready_pending:
                self._maybe_ready(issuer)
        self._push(cluster.time + rng.randint(1, 2 * self.config.transfer_interval), _TRANSFER)

    def _on_read(self) -> None:
        cluster = self.cluster
        rng = self.rng
        alive = cluster.alive_ids()
        if alive:
            leaders = cluster.leaders()
            target = rng.choice(leaders) if leaders and rng.random() < 0.5 else rng.choice(alive)
            cluster.read(target)
            if target not in self._ready_pending:
                self._maybe_ready(target)
        self._push(cluster.time + rng.randint(1, 2 * self.config.read_interval), _READ)

    # ------------------------------------------------------ scripted faults

    def crash(self, node_id: int) -> None:
        """Crash a member now (a scripted fault); it stays down until `restart`."""
        self.cluster.crash(node_id)
        self._ready_pending.discard(node_id)

    def restart(self, node_id: int) -> None:
        """Restart a crashed member now, with its tick chain and Ready scheduling."""
        self._restart(node_id)

    def _restart(self, node_id: int) -> None:
        cluster = self.cluster
        cluster.restart(node_id)
        if cluster.violation is not None:
            return
        m = cluster.members[node_id]
        self._push(cluster.time + self._period[node_id], _TICK, node_id, m.incarnation)
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


def factory_name(factory: NodeFactory) -> str:
    """'module:qualname' of a node factory, as trace headers record it."""
    module = getattr(factory, "__module__", None) or "?"
    qualname = getattr(factory, "__qualname__", None) or type(factory).__qualname__
    return f"{module}:{qualname}"


def run_simulation(
    config: SimConfig,
    seed: int,
    *,
    checkers: Sequence[Checker] = (),
    node_factory: NodeFactory = RaftNode,
    trace: str | Path | IO[str] | None = None,
) -> RunResult:
    """Run one seed; if `trace` is given (a path or a text stream) write the trace there."""
    if trace is None:
        return Simulation(config, seed, checkers=checkers, node_factory=node_factory).run()
    writer = TraceWriter.open(trace) if isinstance(trace, (str, Path)) else TraceWriter(trace)
    with writer:
        writer.header(TraceHeader(seed=seed, config=config, node=factory_name(node_factory)))
        sim = Simulation(
            config, seed, checkers=checkers, node_factory=node_factory, sink=writer.event
        )
        result = sim.run()
        writer.outcome(result.violation)
    return result
