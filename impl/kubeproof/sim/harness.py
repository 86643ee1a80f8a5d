"""The random scheduler: a seed plus a SimConfig becomes a run of the cluster.

Theory of operation
-------------------
`Simulation` drives a `cluster.Cluster` through a `loop.EventLoop`: one
heap of *intentions* ordered by (virtual time, sequence number) and one RNG
(`seeds.scheduler_rng(seed)`) from which every decision is drawn.  Popping
an intention sets the clock and calls the matching `cluster.Cluster`
action; the action is what the trace records.  The loop owns the Raft
layer's intentions (tick, ready, deliver, fault, restart, heal, quiesce:
message routing, disk delays and the fault model, see `loop`); this module
adds the Raft client and the features:

| intention     | scheduled                                       | does                                |
| ------------- | ----------------------------------------------- | ----------------------------------- |
| propose       | every [1, 2*proposal_interval]                  | `propose(random live member)`       |
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

from collections.abc import Sequence
from pathlib import Path
from typing import IO

from attrs import frozen

from kubeproof.raft import RaftNode, SnapshotStatus

from .cluster import Cluster, Counters
from .config import SimConfig
from .events import EventSink
from .loop import FIRST_OWN, EventLoop, Hooks
from .member import NodeFactory
from .observe import Checker, Event, Violation
from .reconfig import choose_change
from .seeds import scheduler_rng, uniform_int
from .trace import TraceHeader, TraceWriter, factory_name

__all__ = ["RunResult", "Simulation", "factory_name", "run_simulation"]

(
    _PROPOSE,
    _SNAPSHOT,
    _CONF,
    _TRANSFER,
    _READ,
    _SNAP_FINISH,
    _SNAP_FAILURE,
) = range(FIRST_OWN, FIRST_OWN + 7)


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
        self.rng = rng = scheduler_rng(seed)
        self._snap_reports = config.snapshots
        self._membership = config.conf_changes
        self.loop = loop = EventLoop(
            self.cluster,
            config,
            rng,
            Hooks(
                self._handle,
                after_ready=self._after_ready if self._membership else None,
                message_done=self._message_done if self._snap_reports else None,
                after_intention=self._after_intention if self._membership else None,
            ),
        )
        push = loop.push
        loop.start_ticks(config.voters)
        push(rng.randint(1, 2 * config.proposal_interval), _PROPOSE)
        loop.start_faults()
        if config.snapshots:
            push(rng.randint(1, 2 * config.snapshot_interval), _SNAPSHOT)
        self._conf_next = 0
        if config.conf_changes:
            self._conf_next = rng.randint(1, 2 * config.conf_change_interval)
            push(self._conf_next, _CONF)
        if config.transfers:
            push(rng.randint(1, 2 * config.transfer_interval), _TRANSFER)
        if config.reads:
            push(rng.randint(1, 2 * config.read_interval), _READ)
        self._next_member = config.nodes + 1
        self._configurations = 0
        self._elections = 0

    @property
    def quiet(self) -> bool:
        """The quiet period (`faults_until`) began: no new faults."""
        return self.loop.quiet

    @property
    def _heap(self) -> list[tuple[int, int, int, int, int]]:
        return self.loop.heap  # bench/bench_harness.py reports the heap's depth

    @property
    def _seq(self) -> int:
        return self.loop.seq

    # -------------------------------------------------------------- the loop

    def run(self, until: int | None = None) -> RunResult:
        """Run to the step budget (or `max_time`); with `until`, stop before the first
        event later than that time, so that a test can act on the cluster and run on."""
        self.loop.run(until)
        cluster = self.cluster
        return RunResult(self.seed, self.config, cluster.counters, cluster.violation, cluster.time)

    def _handle(self, kind: int, a: int, b: int, t: int) -> None:
        if kind == _PROPOSE:
            self._on_propose()
        elif kind == _SNAPSHOT:
            self._on_snapshot()
        elif kind == _CONF:
            self._on_conf(t)
        elif kind == _TRANSFER:
            self._on_transfer()
        elif kind == _READ:
            self._on_read()
        elif self.cluster.members[a].node is not None:  # a snapshot report to a live sender
            status = SnapshotStatus.Finish if kind == _SNAP_FINISH else SnapshotStatus.Failure
            self.cluster.report_snapshot(a, b, status)

    def _after_intention(self) -> None:
        if self.cluster.counters.elections != self._elections:
            self._after_election()

    def _after_ready(self, node_id: int) -> None:
        if not self.loop.full():
            self._follow_membership()

    def _message_done(self, ev: Event) -> None:
        if ev.payload.get("type") == "MsgSnap":
            self._snapshot_sent(ev.payload, ev.node)

    # ------------------------------------------------------------- handlers

    def _on_propose(self) -> None:
        cfg = self.config
        rng = self.rng
        cluster = self.cluster
        alive = cluster.alive_ids()
        if alive:
            target = rng.choice(alive)
            burst = 1 if cfg.proposal_burst == 1 else rng.randint(1, cfg.proposal_burst)
            for _ in range(burst):
                if self.loop.full():
                    return
                cluster.propose(target)
            self.loop.maybe_ready(target)
        self.loop.push(cluster.time + rng.randint(1, 2 * cfg.proposal_interval), _PROPOSE)

    # ------------------------------------------------------------ features

    def _snapshot_sent(self, payload: object, to: int | None) -> None:
        """etcd's transport reports how sending a MsgSnap went: Finish or Failure."""
        assert isinstance(payload, dict)
        sender = payload.get("from")
        if not isinstance(sender, int) or to is None:
            return
        ok = payload.get("result") == "ok"
        delay = uniform_int(self.rng, self.config.delay_min, self.config.delay_max)
        self.loop.push(self.cluster.time + delay, _SNAP_FINISH if ok else _SNAP_FAILURE, sender, to)

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
        self.loop.push(cluster.time + rng.randint(1, 2 * self.config.snapshot_interval), _SNAPSHOT)

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
                self.loop.maybe_ready(lid)
        if self._conf_next <= t:
            self._conf_next = t + self.rng.randint(1, 2 * self.config.conf_change_interval)
            self.loop.push(self._conf_next, _CONF)

    def _after_election(self) -> None:
        """Sometimes ask for a change right after an election: the window in which a
        leader has not yet committed an entry of its term (Ongaro's membership bug)."""
        self._elections = self.cluster.counters.elections
        if self.rng.random() < 0.25:
            self.loop.push(self.cluster.time + uniform_int(self.rng, 1, 20), _CONF)

    def _follow_membership(self) -> None:
        cluster = self.cluster
        counters = cluster.counters
        if counters.configurations != self._configurations:
            self._configurations = counters.configurations
            for nid in cluster.pending_joins():
                if self.loop.full():
                    return
                self._join(nid)
        for nid in cluster.due_stops():
            if self.loop.full():
                return
            cluster.stop(nid)
            self.loop.ready_pending.discard(nid)

    def _join(self, node_id: int) -> None:
        self.cluster.join(node_id)
        if self.cluster.violation is None:
            self.loop.start_member(node_id)

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
            self.loop.maybe_ready(issuer)
        self.loop.push(cluster.time + rng.randint(1, 2 * self.config.transfer_interval), _TRANSFER)

    def _on_read(self) -> None:
        cluster = self.cluster
        rng = self.rng
        alive = cluster.alive_ids()
        if alive:
            leaders = cluster.leaders()
            target = rng.choice(leaders) if leaders and rng.random() < 0.5 else rng.choice(alive)
            cluster.read(target)
            self.loop.maybe_ready(target)
        self.loop.push(cluster.time + rng.randint(1, 2 * self.config.read_interval), _READ)

    # ------------------------------------------------------ scripted faults

    def crash(self, node_id: int) -> None:
        """Crash a member now (a scripted fault); it stays down until `restart`."""
        self.loop.crash(node_id)

    def restart(self, node_id: int) -> None:
        """Restart a crashed member now, with its tick chain and Ready scheduling."""
        self.loop.restart(node_id)


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
