"""The network and fault model behave as docs/concepts.md states."""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path

import pytest

from kubeproof.raft import Message, MessageType, StateType
from kubeproof.sim.cluster import Cluster, SimError
from kubeproof.sim.config import ALL_FAULTS, ConfigError, Fault, SimConfig, parse_faults
from kubeproof.sim.harness import run_simulation
from kubeproof.sim.network import DelayModel, Network, NetworkError
from kubeproof.sim.observe import Event
from kubeproof.sim.trace import read_trace

# ------------------------------------------------------------------ Network unit


def _msg(frm: int, to: int, term: int = 1) -> Message:
    return Message(type=MessageType.MsgHeartbeat, from_=frm, to=to, term=term)


def test_in_flight_ids_take_drop_duplicate() -> None:
    net = Network([1, 2, 3])
    a = net.send(_msg(1, 2))
    b = net.send(_msg(2, 3))
    assert (a, b) == (1, 2)
    c = net.duplicate(a)
    assert c == 3 and net.in_flight[c] == net.in_flight[a]
    assert net.take(a) == _msg(1, 2)
    with pytest.raises(NetworkError, match="message 1 is not in flight"):
        net.take(a)
    net.drop(b)
    assert list(net.in_flight) == [c]


def test_symmetric_split_and_asymmetric_cut() -> None:
    net = Network([1, 2, 3, 4, 5])
    net.split([[1, 2], [3, 4, 5]])
    assert net.reachable(1, 2) and net.reachable(2, 1) and net.reachable(3, 5)
    assert not net.reachable(1, 3) and not net.reachable(3, 1)
    assert net.majority_connected()
    net.split([[1, 2], [3, 4]])  # 5 is in no group: isolated
    assert not net.reachable(5, 3) and not net.reachable(3, 5)
    assert not net.majority_connected()
    net.cut_links([(1, 2)])  # replaces the partition; one direction only
    assert not net.reachable(1, 2) and net.reachable(2, 1) and net.reachable(3, 5)
    assert net.cut == frozenset({(1, 2)})
    assert not net.graph.has_edge(1, 2) and net.graph.has_edge(2, 1)
    net.heal()
    assert not net.partitioned and net.reachable(1, 2)
    with pytest.raises(NetworkError, match="no member 9"):
        net.split([[9]])
    with pytest.raises(NetworkError, match="two groups"):
        net.split([[1], [1, 2]])
    with pytest.raises(NetworkError, match="no link 1->1"):
        net.cut_links([(1, 1)])


def test_fifo_links_never_overtake_and_reordering_does() -> None:
    cfg = SimConfig(delay_min=1, delay_max=50)
    rng = random.Random(7)
    fifo = DelayModel(cfg)
    times = [fifo.delivery_time(rng, now, _msg(1, 2), fifo=True) for now in range(200)]
    assert times == sorted(times)
    loose = DelayModel(cfg)
    times = [loose.delivery_time(rng, now, _msg(1, 2), fifo=False) for now in range(200)]
    assert times != sorted(times)
    assert all(1 <= t - now <= 50 for now, t in enumerate(times))


def test_parse_faults() -> None:
    assert parse_faults("all") == ALL_FAULTS
    assert parse_faults("none") == frozenset()
    assert parse_faults("loss, crash") == {Fault.loss, Fault.crash}
    with pytest.raises(ConfigError, match="unknown fault 'meteor'"):
        parse_faults("loss,meteor")


# ------------------------------------------------- the harness's use of the model


def _run(
    tmp_path: Path, faults: str, seed: int = 1, steps: int = 4000, **kw: object
) -> list[Event]:
    cfg = SimConfig(nodes=3, steps=steps, faults=parse_faults(faults), **kw)  # type: ignore[arg-type]
    path = tmp_path / f"{faults or 'none'}-{seed}.jsonl"
    run_simulation(cfg, seed, trace=path)
    _, events, outcome = read_trace(path)
    assert outcome.ok
    return events


def _sends(events: list[Event]) -> dict[int, tuple[int, int]]:
    """message id -> (from, to), over every process_ready and duplicate."""
    out: dict[int, tuple[int, int]] = {}
    for e in events:
        if e.kind == "process_ready":
            for s in e.payload.get("sent", []):
                out[s["id"]] = (s["msg"]["from"], s["msg"]["to"])
        elif e.kind == "duplicate":
            out[e.payload["copy"]] = out[e.payload["id"]]
    return out


def _link_orders(events: list[Event]) -> dict[tuple[int, int], list[int]]:
    sends = _sends(events)
    orders: dict[tuple[int, int], list[int]] = defaultdict(list)
    for e in events:
        if e.kind == "deliver":
            orders[sends[e.payload["id"]]].append(e.payload["id"])
    return orders


def test_no_faults_is_a_reliable_fifo_network(tmp_path: Path) -> None:
    events = _run(tmp_path, "none")
    kinds = {e.kind for e in events}
    assert not kinds & {"drop", "duplicate", "crash", "partition"}
    assert all(e.payload["result"] == "ok" for e in events if e.kind == "deliver")
    orders = _link_orders(events)
    assert len(orders) == 6  # every directed link of 3 members carried traffic
    for link, ids in orders.items():
        assert ids == sorted(ids), f"link {link} delivered out of send order"


def test_loss_drops_about_the_configured_fraction(tmp_path: Path) -> None:
    events = _run(tmp_path, "loss", loss_rate=0.2, steps=6000)
    sent = sum(len(e.payload.get("sent", [])) for e in events if e.kind == "process_ready")
    lost = sum(1 for e in events if e.kind == "drop" and e.payload["reason"] == "loss")
    assert sent > 500
    assert 0.1 < lost / sent < 0.3
    assert not any(e.kind == "duplicate" for e in events)


def test_duplication_delivers_a_second_identical_copy(tmp_path: Path) -> None:
    events = _run(tmp_path, "dup", dup_rate=0.2)
    dups = [e for e in events if e.kind == "duplicate"]
    assert len(dups) > 20
    delivered = [e.payload["id"] for e in events if e.kind == "deliver"]
    for d in dups:
        original, copy = d.payload["id"], d.payload["copy"]
        if original in delivered and copy in delivered:
            break
    else:
        pytest.fail("no duplicated message was delivered twice")
    assert not any(e.kind == "drop" for e in events)


def test_reorder_breaks_fifo(tmp_path: Path) -> None:
    orders = _link_orders(_run(tmp_path, "reorder", reorder_rate=0.2))
    assert any(ids != sorted(ids) for ids in orders.values())


def test_partitions_cut_exactly_their_links(tmp_path: Path) -> None:
    events = _run(tmp_path, "partition", fault_interval=50, down_min=50, down_max=300, steps=8000)
    sends = _sends(events)
    cut: set[tuple[int, int]] = set()
    shapes = 0
    blocked = delivered_across = 0
    for e in events:
        if e.kind == "partition":
            cut = {(u, v) for u, v in e.payload["cut"]}
            shapes += 1
        elif e.kind == "heal":
            cut = set()
        elif e.kind == "deliver":
            link = sends[e.payload["id"]]
            if link in cut:
                assert e.payload["result"] == "partitioned"
                blocked += 1
            else:
                assert e.payload["result"] == "ok"
                delivered_across += 1
    assert shapes >= 3 and blocked > 0 and delivered_across > 0
    asymmetric = [
        e
        for e in events
        if e.kind == "partition"
        and any([v, u] not in e.payload["cut"] for u, v in e.payload["cut"])
    ]
    assert asymmetric, "no asymmetric partition was drawn"


def test_asymmetric_partition_through_the_action_api() -> None:
    c = Cluster(SimConfig(nodes=3), seed=0)
    c.partition(cut=[[1, 2]])
    a = c.network.send(_msg(1, 2))
    b = c.network.send(_msg(2, 1))
    assert c.deliver(a).payload["result"] == "partitioned"
    assert c.deliver(b).payload["result"] == "ok"
    c.heal()
    d = c.network.send(_msg(1, 2))
    assert c.deliver(d).payload["result"] == "ok"
    assert c.counters.messages_dropped == 1


def _elect(c: Cluster, leader: int) -> None:
    c.members[leader].node.campaign()  # type: ignore[union-attr]
    for _ in range(20):
        for i in c.members:
            if c.has_ready(i):
                c.process_ready(i)
        for mid in list(c.network.in_flight):
            c.deliver(mid)
    assert c.members[leader].node.state is StateType.Leader  # type: ignore[union-attr]


def test_crash_loses_the_unprocessed_ready_and_keeps_the_disk() -> None:
    c = Cluster(SimConfig(nodes=3), seed=0)
    _elect(c, 1)
    disk = c.members[1].storage
    before = disk.last_index()
    assert c.propose(1).payload["result"] == "accepted"
    node = c.members[1].node
    assert node is not None and node.last_index() == before + 1
    assert c.crash(1).payload == {"lost_ready": True}
    assert disk.last_index() == before  # the unsynced append is gone ...
    with pytest.raises(SimError, match="member 1 is down"):
        c.tick(1)
    ev = c.restart(1)
    assert ev.payload["incarnation"] == 1
    node = c.members[1].node
    assert node is not None and node.last_index() == before  # ... and stays gone
    assert node.term == disk.hard_state.term  # the persisted term survives
    assert c.members[1].incarnation == 1


def test_process_ready_persists_before_it_sends() -> None:
    c = Cluster(SimConfig(nodes=3), seed=0)
    node = c.members[2].node
    assert node is not None
    node.campaign()
    assert not c.network.in_flight  # nothing leaves before the Ready is processed
    ev = c.process_ready(2)
    assert c.members[2].storage.hard_state.vote == 2
    assert ev.payload["hard_state"]["vote"] == 2
    assert {s["msg"]["type"] for s in ev.payload["sent"]} == {"MsgVote"}
    assert len(c.network.in_flight) == 2
