"""The harness's features beyond the paper: snapshots, membership, transfers, reads, flow control.

Scripted scenarios drive the `Cluster` action API through a tiny synchronous
driver (deliver everything in flight, process every Ready, join and stop
members as the cluster says), with every spec invariant checked after every
event; seeded runs of the scheduler cover the rest (catch-up through a
snapshot after a restart, replay of every new event kind, batching).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kubeproof.cli.main import _register, cli
from kubeproof.raft import (
    ConfChangeSingle,
    ConfChangeTransition,
    ConfChangeType,
    ConfChangeV2,
    ConfState,
    StateType,
)
from kubeproof.sim.cluster import Cluster
from kubeproof.sim.config import ALL_FAULTS, SimConfig
from kubeproof.sim.harness import Simulation, run_simulation
from kubeproof.sim.observe import Event
from kubeproof.sim.replay import replay
from kubeproof.sim.trace import read_trace
from kubeproof.spec.raft import raft_checkers

FEATURES: dict[str, Any] = {
    "snapshots": True,
    "conf_changes": True,
    "transfers": True,
    "reads": True,
}


def add(n: int) -> ConfChangeSingle:
    return ConfChangeSingle(type=ConfChangeType.ConfChangeAddNode, node_id=n)


def learner(n: int) -> ConfChangeSingle:
    return ConfChangeSingle(type=ConfChangeType.ConfChangeAddLearnerNode, node_id=n)


def remove(n: int) -> ConfChangeSingle:
    return ConfChangeSingle(type=ConfChangeType.ConfChangeRemoveNode, node_id=n)


class Driver:
    """Synchronous rounds over the action API: Readys, membership, then every message."""

    def __init__(self, nodes: int = 3, **cfg: Any) -> None:
        self.events: list[Event] = []
        self.c = Cluster(
            SimConfig(nodes=nodes, election_tick=5, **cfg),
            seed=0,
            checkers=raft_checkers(),
            sink=self.events.append,
        )

    def _readys(self) -> bool:
        c = self.c
        did = False
        for n in c.alive_ids():
            if c.has_ready(n):
                c.process_ready(n)
                did = True
                for x in c.pending_joins():
                    c.join(x)
                for x in c.due_stops():
                    c.stop(x)
        return did

    def settle(self, limit: int = 500) -> None:
        c = self.c
        for _ in range(limit):
            assert c.violation is None, c.violation
            c.advance_to(c.time + 1)
            did = self._readys()
            msgs = list(c.network.in_flight)
            for mid in msgs:
                c.deliver(mid)
            if not did and not msgs and not any(c.has_ready(n) for n in c.alive_ids()):
                return
        raise AssertionError("the cluster did not settle")

    def tick(self, rounds: int = 1) -> None:
        for _ in range(rounds):
            for n in self.c.alive_ids():
                self.c.tick(n)
            self.settle()

    def leader(self) -> int:
        for _ in range(40):
            leaders = self.c.leaders()
            if len(leaders) == 1:
                return leaders[0]
            self.tick()
        raise AssertionError("no leader")

    def conf(self, n: int) -> ConfState:
        node = self.c.members[n].node
        assert node is not None
        return node.conf_state()

    def change(self, at: int, cc: ConfChangeV2) -> None:
        ev = self.c.conf_change(at, cc)
        assert ev.payload["result"] == "accepted", ev.payload
        self.settle()
        self.tick(2)

    def kinds(self) -> set[str]:
        return {e.kind for e in self.events}


# ------------------------------------------------------------------ membership


def test_membership_walkthrough() -> None:
    """Learner, promotion, removing the leader, a joint change with an explicit
    leave, shrinking to one voter: every step checked by every invariant."""
    d = Driver(3)
    c = d.c
    lead = d.leader()
    c.propose(lead)
    d.tick(2)
    d.change(lead, ConfChangeV2(changes=(learner(4),)))
    assert 4 in c.members and c.members[4].alive
    assert d.conf(lead) == ConfState(voters=(1, 2, 3), learners=(4,))
    assert c.members[4].storage.last_index() == c.members[lead].storage.last_index()
    d.change(lead, ConfChangeV2(changes=(add(4),)))
    assert d.conf(lead) == ConfState(voters=(1, 2, 3, 4))
    # Remove the leader: it steps down and stops; the others elect a new one.
    old = lead
    d.change(old, ConfChangeV2(changes=(remove(old),)))
    assert c.members[old].stopped
    lead = d.leader()
    assert lead != old
    rest = sorted(set(d.conf(lead).voters))
    assert old not in rest and len(rest) == 3
    # Replace a voter by a new one in one joint change, leaving it explicitly.
    gone = next(v for v in rest if v != lead)
    d.change(
        lead,
        ConfChangeV2(transition=ConfChangeTransition.JointExplicit, changes=(add(5), remove(gone))),
    )
    joint = d.conf(lead)
    assert joint.voters_outgoing == tuple(rest) and 5 in joint.voters and gone not in joint.voters
    d.change(lead, ConfChangeV2())
    final = d.conf(lead)
    assert not final.voters_outgoing and gone not in final.voters and 5 in final.voters
    assert c.members[gone].stopped
    # Shrink to one voter: the leader alone.
    for v in [v for v in final.voters if v != lead]:
        d.change(lead, ConfChangeV2(changes=(remove(v),)))
    assert d.conf(lead).voters == (lead,)
    c.propose(lead)
    d.tick(2)
    assert c.violation is None
    assert {"conf_change", "join", "stop"} <= d.kinds()
    assert c.counters.members_stopped == 4 and c.counters.members_joined == 2


def test_a_joint_change_with_auto_leave_leaves_by_itself() -> None:
    d = Driver(3)
    lead = d.leader()
    d.tick(2)
    d.change(
        lead,
        ConfChangeV2(transition=ConfChangeTransition.JointImplicit, changes=(add(4), learner(5))),
    )
    cs = d.conf(lead)
    assert not cs.voters_outgoing and set(cs.voters) == {1, 2, 3, 4} and cs.learners == (5,)
    assert d.c.violation is None


def test_demoting_the_leader_ends_its_leadership() -> None:
    """The bug the harness found (RAFT-READ-LINEARIZABLE, then RAFT-CONFIG-SAFETY (4)):
    a leader that applies its own demotion to learner must step down."""
    d = Driver(3)
    lead = d.leader()
    d.tick(2)
    d.change(lead, ConfChangeV2(changes=(learner(lead),)))
    node = d.c.members[lead].node
    assert node is not None and node.state is not StateType.Leader
    assert lead in d.conf(lead).learners
    assert d.leader() != lead


# ------------------------------------------------------------------ transfers


def test_transfer_succeeds_then_one_to_a_crashed_member_times_out() -> None:
    d = Driver(3)
    c = d.c
    lead = d.leader()
    d.tick(2)
    target = next(i for i in (1, 2, 3) if i != lead)
    c.transfer(lead, target)
    d.settle()
    assert c.leaders() == [target]
    d.tick(2)
    down = next(i for i in (1, 2, 3) if i not in (lead, target))
    c.crash(down)
    c.transfer(target, down)
    d.settle()
    assert c.propose(target).payload["result"] == "dropped"  # transferring: refused
    d.tick(2 * 5)  # an election timeout: the transfer is abandoned
    assert c.leaders() == [target]
    assert c.propose(target).payload["result"] == "accepted"
    assert c.violation is None


# ---------------------------------------------------------------------- reads


def _served(events: list[Event], ctx: str) -> list[dict[str, Any]]:
    out = []
    for e in events:
        for item in e.payload.get("served", ()):
            if item["ctx"] == ctx:
                out.append({**item, "node": e.node})
    return out


def test_reads_cover_acknowledged_writes_and_a_cut_off_leader_serves_none() -> None:
    d = Driver(3)
    c = d.c
    lead = d.leader()
    for _ in range(3):
        c.propose(lead)
    d.tick(2)
    acked = max(c.acknowledged.values())
    follower = next(i for i in (1, 2, 3) if i != lead)
    ctx = c.read(follower).payload["ctx"]
    d.tick(1)
    (served,) = _served(d.events, ctx)
    assert served["node"] == follower and served["index"] >= acked
    # A leader cut off from the others cannot confirm its leadership: no answer.
    c.partition(groups=[[lead], [i for i in (1, 2, 3) if i != lead]])
    ctx = c.read(lead).payload["ctx"]
    d.tick(3)
    assert _served(d.events, ctx) == []
    assert c.violation is None


# ----------------------------------------------------------------- snapshots


def test_a_restarted_member_catches_up_through_a_snapshot() -> None:
    cfg = SimConfig(
        nodes=3, steps=10**9, snapshots=True, snapshot_interval=30, proposal_interval=15
    )
    sim = Simulation(cfg, 3, checkers=raft_checkers())
    c = sim.cluster
    sim.run(until=800)
    (lead,) = c.leaders()
    down = next(i for i in cfg.voters if i != lead)
    sim.crash(down)
    sim.run(until=4_000)
    # The leader's log no longer reaches back to where the crashed member's ends.
    lead = c.leaders()[0]
    assert c.members[lead].storage.first_index() > c.members[down].storage.last_index() + 1
    restored = c.counters.snapshots_restored
    sim.restart(down)
    result = sim.run(until=6_000)
    assert result.violation is None, result.violation
    m = c.members[down]
    assert c.counters.snapshots_restored > restored
    assert m.storage.snapshot().metadata.index > 0
    assert m.app is not None and m.node is not None
    assert m.app.index >= c.members[lead].storage.snapshot().metadata.index
    assert m.node.commit >= c.members[lead].storage.first_index()


def test_restart_from_a_snapshot_and_the_log_tail() -> None:
    d = Driver(3)
    c = d.c
    lead = d.leader()
    for _ in range(6):
        c.propose(lead)
    d.tick(2)
    m = c.members[lead]
    assert m.app is not None
    index = m.app.index
    ev = c.snapshot(lead, compact=index - 3)
    assert ev.payload["index"] == index and ev.payload["compact"] == index - 3
    digest = m.app.hex
    c.crash(lead)
    c.restart(lead)
    node = m.node
    assert node is not None and m.app is not None
    assert node.first_index() == index - 2 and node.applied == index
    assert (m.app.index, m.app.hex) == (index, digest)  # restored from the snapshot's data
    d.tick(12)
    assert m.app.index >= index and c.violation is None


def lease_gap(seed: int, offset: int, lease: bool) -> Any:
    """Cut the leader off `offset` time units after a CheckQuorum round of its, keep
    writing on the majority side and reading at the old leader: the first violation."""
    cfg = SimConfig(
        nodes=3,
        steps=10**9,
        pre_vote=True,
        check_quorum=True,
        read_only_lease=lease,
        proposal_interval=5,
    )
    sim = Simulation(cfg, seed, checkers=raft_checkers())
    sim.run(until=1000)
    c = sim.cluster
    (old,) = c.leaders()
    t = 1000
    node = c.members[old].node
    while node is not None and node.raft.election_elapsed != 0:
        t += 1
        sim.run(until=t)
    sim.run(until=t + offset)
    c.partition(groups=[[old], [i for i in cfg.voters if i != old]])
    t0 = c.time
    for k in range(1, 60):
        sim.run(until=t0 + 5 * k)
        node = c.members[old].node
        if c.violation is not None or node is None or node.state is not StateType.Leader:
            break
        c.read(old)
    return c.violation


def test_etcd_style_lease_reads_can_be_stale_and_read_index_is_not() -> None:
    """A known limitation of etcd's leases (etcd-io/raft#166), which kubeproof's node
    shares: the leader's lease is CheckQuorum's, and a check that saw the followers
    just before a partition keeps it leader for up to two election timeouts, while
    the followers' own lease (they ignore votes for one election timeout) has run out
    after one.  A new leader commits writes meanwhile and the old one serves lease
    reads from before them.  The checker sees it; ReadIndex, on the same schedule,
    is linearizable."""
    v = lease_gap(1, 3, lease=True)
    assert v is not None and v.invariant == "RAFT-READ-LINEARIZABLE", v
    assert lease_gap(1, 3, lease=False) is None


# ------------------------------------------------------- flow control, replay


def _msg_apps(path: Path) -> list[int]:
    sizes = []
    for line in path.read_text().splitlines()[1:-1]:
        for item in json.loads(line)["payload"].get("sent", ()):
            if item["msg"]["type"] == "MsgApp":
                sizes.append(len(item["msg"].get("entries", ())))
    return sizes


@pytest.mark.parametrize(("size", "most"), [(0, 1), (1024 * 1024, None)])
def test_bursts_are_batched_within_the_size_limit(
    tmp_path: Path, size: int, most: int | None
) -> None:
    cfg = SimConfig(
        nodes=3, steps=3000, proposal_burst=8, max_size_per_msg=size, max_inflight_msgs=2
    )
    path = tmp_path / "t.jsonl"
    assert run_simulation(cfg, 1, checkers=raft_checkers(), trace=path).ok
    sizes = _msg_apps(path)
    if most is None:
        assert max(sizes) > 1  # a burst went out in one MsgApp
    else:
        assert max(sizes) <= most


def test_every_new_event_kind_is_traced_and_replays(tmp_path: Path) -> None:
    cfg = SimConfig(
        nodes=3,
        steps=4000,
        faults=ALL_FAULTS,
        pre_vote=True,
        conf_change_interval=150,
        transfer_interval=200,
        snapshot_interval=60,
        **FEATURES,
    )
    path = tmp_path / "t.jsonl"
    result = run_simulation(cfg, 0, checkers=raft_checkers(), trace=path)
    assert result.ok, result.violation
    _, events, _ = read_trace(path)
    kinds = {e.kind for e in events}
    assert {
        "snapshot",
        "conf_change",
        "transfer",
        "read",
        "report_snapshot",
        "join",
        "stop",
    } <= kinds
    again = tmp_path / "again.jsonl"
    run_simulation(cfg, 0, checkers=raft_checkers(), trace=again)
    assert again.read_bytes() == path.read_bytes()
    for mode in ("seed", "schedule"):
        r = replay(path, mode=mode, checkers=raft_checkers())
        assert r.matched, r.divergence


# ------------------------------------------------------------------------ CLI

_register()


def test_check_turns_features_on_and_off() -> None:
    def report(*args: str) -> dict[str, Any]:
        r = CliRunner().invoke(
            cli, ["check", "raft", "--seed", "2", "--steps", "3000", "--json", *args]
        )
        assert r.exit_code == 0, r.output
        out: dict[str, Any] = json.loads(r.output)
        return out

    on = report()
    assert all(on["features"][k] for k in ("snapshots", "conf_changes", "transfers", "reads"))
    assert on["counters"]["snapshots"] > 0 and on["counters"]["reads"] > 0
    off = report("--no-snapshots", "--no-conf-changes", "--no-transfers", "--no-reads")
    assert not any(off["features"].values())
    assert off["counters"]["snapshots"] == off["counters"]["reads"] == 0
    assert off["counters"]["conf_changes"] == off["counters"]["transfers"] == 0
    lease = report("--lease-reads", "--check-quorum")
    assert lease["features"]["lease_reads"] and lease["violations"] == 0


def test_lease_reads_need_check_quorum() -> None:
    r = CliRunner().invoke(cli, ["check", "raft", "--seed", "1", "--lease-reads"])
    assert r.exit_code == 2 and "--check-quorum" in r.output
