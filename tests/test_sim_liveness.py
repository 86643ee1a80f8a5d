"""Liveness: once faults stop and the cluster is whole again, a leader is elected and a
client proposal commits within a bound of virtual time derived from the configuration.

The bound (all in virtual time units, with the default SimConfig; see docs/concepts.md):

    P  = tick_interval + clock_skew                  the slowest member's tick period (12)
    E  = (2 * election_tick - 1) * P                 the longest election timeout (228)
    R  = disk_delay_max + delay_max                  one hop: persist, then the wire (24)
    round = E + P + 2 * R                            a timeout, then a vote request and its
                                                     answer (288)
    K  = nodes + 1                                   election rounds allowed: a member that
                                                     inflated its term while cut off, or came
                                                     back from a crash, can depose a leader at
                                                     most once before terms converge, plus one
                                                     split vote
    LEADER_BOUND = K * round                         a leader of the highest term exists
    COMMIT_BOUND = LEADER_BOUND + 2 * proposal_interval + 4 * R + P + disk_delay_max
                                                     ... and a proposal made after the faults
                                                     stopped has been applied by the member it
                                                     was proposed to (wait for the client's
                                                     next proposal, forward, replicate, answer,
                                                     learn the commit index on a heartbeat,
                                                     apply)

Randomized timeouts make election liveness probabilistic; the bound is a generous
deterministic budget, and each seed is a fixed, reproducible run.  Observed worst cases
over these seeds (faults stop at t=2000): leader 457 of 1152 and commit 425 of 1364 for
3 nodes; leader 506 of 1728 and commit 560 of 1940 for 5 nodes.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

import pytest

from kubeproof.raft import StateType
from kubeproof.sim.config import ALL_FAULTS, SimConfig
from kubeproof.sim.harness import Simulation
from kubeproof.sim.observe import ClusterView, Event, Violation

FAULTS_UNTIL = 2_000
SEEDS = range(50)


def bounds(cfg: SimConfig) -> tuple[int, int]:
    p = cfg.tick_interval + cfg.clock_skew
    e = (2 * cfg.election_tick - 1) * p
    r = cfg.disk_delay_max + cfg.delay_max
    leader = (cfg.nodes + 1) * (e + p + 2 * r)
    commit = leader + 2 * cfg.proposal_interval + 4 * r + p + cfg.disk_delay_max
    return leader, commit


class Probe:
    """Watches, after every event, for a settled leader and for acknowledged proposals."""

    def __init__(self, after: int) -> None:
        self.after = after
        self.proposed: dict[str, int] = {}
        self.acknowledged: dict[str, int] = {}
        self.leader_at: int | None = None
        self._acks = 0

    def check(self, view: ClusterView, event: Event) -> Sequence[Violation]:
        if event.kind == "propose" and event.payload.get("result") == "accepted":
            self.proposed[event.payload["data"]] = event.time
        if len(view.acknowledged) != self._acks:
            self._acks = len(view.acknowledged)
            for data in view.acknowledged:
                self.acknowledged.setdefault(base64.b64encode(data).decode(), event.time)
        if self.leader_at is None and event.time >= self.after:
            live = [m.node for m in view.nodes.values() if m.node is not None]
            top = max(n.term for n in live)
            if any(n.state is StateType.Leader and n.term == top for n in live):
                self.leader_at = event.time
        return []

    def first_commit_after(self) -> int | None:
        times = [
            self.acknowledged[d]
            for d, t in self.proposed.items()
            if t >= self.after and d in self.acknowledged
        ]
        return min(times, default=None)


@pytest.mark.parametrize("nodes", [3, 5])
def test_leader_and_commit_within_bound_after_faults_stop(nodes: int) -> None:
    base = SimConfig(nodes=nodes, steps=10**9, faults=ALL_FAULTS, faults_until=FAULTS_UNTIL)
    leader_bound, commit_bound = bounds(base)
    cfg = SimConfig(
        nodes=nodes,
        steps=10**9,
        faults=ALL_FAULTS,
        faults_until=FAULTS_UNTIL,
        max_time=FAULTS_UNTIL + commit_bound,
    )
    faults_seen = 0
    worst_leader = worst_commit = 0
    for seed in SEEDS:
        probe = Probe(FAULTS_UNTIL)
        sim = Simulation(cfg, seed, checkers=[probe])
        sim.run()
        counters = sim.cluster.counters
        faults_seen += counters.crashes + counters.partitions
        assert sim.quiet, f"seed {seed}: the run never reached the quiet period"
        assert not sim.cluster.network.partitioned and not sim.cluster.down_ids()
        assert probe.leader_at is not None, f"seed {seed}: no leader within {leader_bound}"
        took = probe.leader_at - FAULTS_UNTIL
        assert took <= leader_bound, f"seed {seed}: leader after {took} > {leader_bound}"
        committed = probe.first_commit_after()
        assert committed is not None, f"seed {seed}: nothing committed within {commit_bound}"
        assert committed - FAULTS_UNTIL <= commit_bound
        worst_leader = max(worst_leader, took)
        worst_commit = max(worst_commit, committed - FAULTS_UNTIL)
    # The fault phase was real, and the bound is not vacuous.
    assert faults_seen >= len(SEEDS)
    assert worst_leader > 0 and worst_commit > 0


def test_the_bound_formula() -> None:
    # Written out for the default configuration, so a change to it is a visible decision.
    assert bounds(SimConfig(nodes=3)) == (4 * (228 + 12 + 48), 4 * 288 + 100 + 96 + 12 + 4)
    assert bounds(SimConfig(nodes=5)) == (6 * 288, 6 * 288 + 212)


def test_without_a_quiet_period_partitions_can_block_progress() -> None:
    """Contrast: the liveness claim needs the quiet period; a cluster kept split into
    minorities never commits (so the probe above is able to fail)."""
    cfg = SimConfig(nodes=3, steps=10**9, max_time=3_000)
    probe = Probe(0)
    sim = Simulation(cfg, 0, checkers=[probe])
    sim.cluster.partition(groups=[[1], [2], [3]])  # the drivers share one action API
    sim.run()
    assert sim.cluster.counters.proposals > 10
    assert probe.leader_at is None and probe.first_commit_after() is None
