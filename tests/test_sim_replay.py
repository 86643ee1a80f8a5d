"""Determinism, traces and replay: a seed is a complete repro, and a replay says where it diverges."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import pytest

from kubeproof.raft import RaftInvariantError, RaftNode, StateType
from kubeproof.sim.cluster import NODE_EXCEPTION, Cluster
from kubeproof.sim.config import ALL_FAULTS, SimConfig
from kubeproof.sim.harness import run_simulation
from kubeproof.sim.observe import ClusterView, Event, Violation
from kubeproof.sim.replay import ReplayError, replay
from kubeproof.sim.trace import (
    TRACE_FORMAT,
    TRACE_VERSION,
    TraceFormatError,
    TraceHeader,
    TraceReader,
    TraceWriter,
    read_trace,
)

CFG = SimConfig(nodes=5, steps=3000, faults=ALL_FAULTS, fault_interval=150, down_max=500)


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _write(path: Path, lines: Sequence[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("traces") / "seed-11.jsonl"
    result = run_simulation(CFG, 11, trace=path)
    assert result.ok and result.counters.events == CFG.steps
    # The run must have exercised the faults for the replay tests to mean something.
    kinds = {json.loads(line).get("kind") for line in _lines(path)}
    assert {"crash", "restart", "partition", "drop", "duplicate", "propose"} <= kinds
    return path


def test_same_seed_gives_a_byte_identical_trace(trace: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.jsonl"
    run_simulation(CFG, 11, trace=again)
    assert again.read_bytes() == trace.read_bytes()
    other = tmp_path / "other.jsonl"
    run_simulation(CFG, 12, trace=other)
    assert other.read_bytes() != trace.read_bytes()


def test_trace_layout(trace: Path) -> None:
    lines = _lines(trace)
    header = json.loads(lines[0])
    assert header["format"] == TRACE_FORMAT and header["version"] == TRACE_VERSION == 2
    assert header["seed"] == 11 and header["config"]["nodes"] == 5
    assert header["node"] == "kubeproof.raft.node:RaftNode" and header["driver"] == "random"
    assert len(lines) == CFG.steps + 2
    assert json.loads(lines[-1]) == {"outcome": "ok"}
    for n, line in enumerate(lines[1:-1], start=1):
        ev = json.loads(line)
        assert set(ev) == {"step", "time", "kind", "node", "payload"} and ev["step"] == n
        assert line == json.dumps(ev, sort_keys=True, separators=(",", ":"))


def test_untraced_run_equals_traced_run(trace: Path) -> None:
    _, events, _ = read_trace(trace)
    plain = run_simulation(CFG, 11)
    assert plain.counters.events == len(events)
    assert plain.time == events[-1].time


@pytest.mark.parametrize("mode", ["seed", "schedule"])
def test_replay_matches(trace: Path, mode: str) -> None:
    r = replay(trace, mode=mode)  # type: ignore[arg-type]
    assert r.matched, r.divergence and r.divergence.describe()
    assert r.steps == CFG.steps and r.violation is None
    assert r.tail[-1].step == CFG.steps


def _tamper(trace: Path, out: Path, pick: int) -> int:
    """Change the term of the first message sent after event `pick`; return its step."""
    lines = _lines(trace)
    for i in range(pick, len(lines) - 1):
        ev = json.loads(lines[i])
        if ev["kind"] == "process_ready" and ev["payload"].get("sent"):
            ev["payload"]["sent"][0]["msg"]["term"] += 1
            lines[i] = json.dumps(ev, sort_keys=True, separators=(",", ":"))
            _write(out, lines)
            return int(ev["step"])
    raise AssertionError("no message to tamper with")


@pytest.mark.parametrize("mode", ["seed", "schedule"])
def test_tampered_trace_diverges_at_the_tampered_step(
    trace: Path, tmp_path: Path, mode: str
) -> None:
    step = _tamper(trace, tmp_path / "t.jsonl", 1500)
    r = replay(tmp_path / "t.jsonl", mode=mode)  # type: ignore[arg-type]
    assert r.divergence is not None
    assert r.divergence.step == step
    assert r.divergence.where == "payload.sent[0].msg.term"
    assert r.divergence.expected == r.divergence.actual + 1
    assert f"step {step}" in r.divergence.describe()


def test_removed_event_is_reported_where_it_was(trace: Path, tmp_path: Path) -> None:
    lines = _lines(trace)
    # A delivered MsgApp: its target must answer, so its absence has consequences.
    victim = next(
        i
        for i in range(1000, len(lines))
        if json.loads(lines[i]).get("kind") == "deliver"
        and json.loads(lines[i])["payload"]["type"] == "MsgApp"
        and json.loads(lines[i])["payload"]["result"] == "ok"
    )
    del lines[victim]
    # Renumber the steps after it so the file stays well-formed.
    for i in range(victim, len(lines) - 1):
        ev = json.loads(lines[i])
        ev["step"] -= 1
        lines[i] = json.dumps(ev, sort_keys=True, separators=(",", ":"))
    bad = _write(tmp_path / "cut.jsonl", lines)
    # By seed, the scheduler makes the missing delivery right there.
    r = replay(bad, mode="seed")
    assert r.divergence is not None and r.divergence.step == victim, r.divergence
    # By schedule, the message is simply never delivered: the first consequence shows
    # later (the target does not answer), never earlier.
    r = replay(bad, mode="schedule")
    assert r.divergence is not None and r.divergence.step > victim, r.divergence


def test_a_schedule_action_that_cannot_run_is_a_divergence(trace: Path, tmp_path: Path) -> None:
    lines = _lines(trace)
    i = next(i for i in range(1, len(lines)) if json.loads(lines[i]).get("kind") == "deliver")
    ev = json.loads(lines[i])
    ev["payload"]["id"] = 999_999
    lines[i] = json.dumps(ev, sort_keys=True, separators=(",", ":"))
    r = replay(_write(tmp_path / "x.jsonl", lines), mode="schedule")
    assert r.divergence is not None and r.divergence.step == ev["step"]
    assert "message 999999 is not in flight" in r.divergence.describe()


# ------------------------------------------------------------ violations end a run


class ExplodingNode(RaftNode):
    """Raises etcd-panic style once it leads in term >= 2 (stands in for a node bug)."""

    def tick(self) -> None:
        if self.state is StateType.Leader and self.term >= 2:
            raise RaftInvariantError("TEST-BOOM", f"node {self.id} led in term {self.term}")
        super().tick()


class CrashingNode(RaftNode):
    def tick(self) -> None:
        if self.state is StateType.Leader:
            raise KeyError("oops")
        super().tick()


class LeaderTermCap:
    """A stand-in checker: flags any leader in term >= 3."""

    def check(self, view: ClusterView, event: Event) -> list[Violation]:
        for m in view.nodes.values():
            node = m.node
            if node is not None and node.state is StateType.Leader and node.term >= 3:
                return [Violation("TEST-TERM-CAP", view.step, "leader in term 3", {"node": m.id})]
        return []


def _first_failing_seed(factory: type[RaftNode] = RaftNode, checker: bool = False) -> int:
    for seed in range(50):
        checkers = [LeaderTermCap()] if checker else []
        r = run_simulation(CFG, seed, node_factory=factory, checkers=checkers)
        if not r.ok:
            return seed
    raise AssertionError("no seed failed")


@pytest.mark.parametrize(
    ("factory", "checker", "invariant"),
    [
        (ExplodingNode, False, "TEST-BOOM"),
        (CrashingNode, False, NODE_EXCEPTION),
        (RaftNode, True, "TEST-TERM-CAP"),
    ],
)
def test_violation_stops_the_run_is_recorded_and_replays(
    tmp_path: Path, factory: type[RaftNode], checker: bool, invariant: str
) -> None:
    seed = _first_failing_seed(factory, checker)
    path = tmp_path / "fail.jsonl"
    checkers = [LeaderTermCap()] if checker else []
    r = run_simulation(CFG, seed, node_factory=factory, checkers=checkers, trace=path)
    assert r.violation is not None and r.violation.invariant == invariant
    header, events, outcome = read_trace(path)
    assert header.node.endswith(factory.__qualname__)
    assert outcome.violation is not None
    assert outcome.violation.invariant == invariant
    assert outcome.violation.step == r.violation.step == len(events)  # the run stopped there
    if not checker:
        assert "error" in events[-1].payload
    modes: tuple[Literal["seed"], Literal["schedule"]] = ("seed", "schedule")
    for mode in modes:
        again = replay(path, mode=mode, checkers=[LeaderTermCap()] if checker else [])
        assert again.matched, again.divergence and again.divergence.describe()
        assert again.violation is not None
        assert (again.violation.invariant, again.violation.step) == (invariant, len(events))
    # Replaying with the real node instead diverges (the bug is gone), and says where.
    if not checker:
        fixed = replay(path, mode="schedule", node_factory=RaftNode)
        assert not fixed.matched and fixed.divergence is not None
        assert fixed.divergence.step == len(events)


def test_node_factory_that_cannot_be_imported(trace: Path, tmp_path: Path) -> None:
    lines = _lines(trace)
    header = json.loads(lines[0])
    header["node"] = "no_such_module_xyz:Node"
    lines[0] = json.dumps(header, sort_keys=True, separators=(",", ":"))
    with pytest.raises(ReplayError, match="no_such_module_xyz:Node"):
        replay(_write(tmp_path / "n.jsonl", lines))


def test_cluster_rejects_impossible_actions() -> None:
    from kubeproof.sim.cluster import SimError

    c = Cluster(SimConfig(nodes=3), seed=0)
    with pytest.raises(SimError, match="no member 7"):
        c.tick(7)
    c.crash(2)
    with pytest.raises(SimError, match="already down"):
        c.crash(2)
    with pytest.raises(SimError, match="is alive"):
        c.restart(1)
    c.advance_to(5)
    with pytest.raises(SimError, match="backwards"):
        c.advance_to(4)
    assert c.propose(2).payload == {"data": "cDE=", "result": "down"}


# ------------------------------------------------------------------ bad trace files


def _good_lines(trace: Path) -> list[str]:
    lines = _lines(trace)
    return [*lines[:6], lines[-1]]


@pytest.mark.parametrize(
    ("mutate", "line", "fragment"),
    [
        (lambda ls: [], 1, "empty file"),
        (lambda ls: ["hello world", *ls[1:]], 1, "not JSON"),
        (lambda ls: ["[1, 2]", *ls[1:]], 1, "expected a JSON object"),
        (
            lambda ls: [ls[0].replace(TRACE_FORMAT, "other-trace"), *ls[1:]],
            1,
            "not a kubeproof trace",
        ),
        (lambda ls: [ls[0].replace('"version":2', '"version":3'), *ls[1:]], 1, "version 3"),
        (lambda ls: ls[:-1], 6, "truncated"),
        (lambda ls: [*ls[:3], ls[4], *ls[5:]], 4, "step is 4, expected 3"),
        (lambda ls: [*ls[:2], ls[2].replace('"tick"', '"teleport"'), *ls[3:]], 3, "teleport"),
        (lambda ls: [*ls, '{"kind":"tick"}'], 8, "after the outcome"),
        (lambda ls: [*ls[:2], "", *ls[2:]], 3, "empty line"),
        (
            lambda ls: [ls[0].replace('"nodes":5', '"nodes":"five"'), *ls[1:]],
            1,
            "SimConfig.nodes",
        ),
    ],
)
def test_malformed_traces_are_named_with_their_line(
    trace: Path, tmp_path: Path, mutate: object, line: int, fragment: str
) -> None:
    lines = mutate(_good_lines(trace))  # type: ignore[operator]
    bad = _write(tmp_path / "bad.jsonl", lines)
    with pytest.raises(TraceFormatError) as err:
        read_trace(bad)
    assert err.value.line == line, str(err.value)
    assert fragment in str(err.value)
    assert str(err.value).startswith(f"{bad}:{line}:")


def test_cut_short_and_binary_files(trace: Path, tmp_path: Path) -> None:
    data = trace.read_bytes()
    short = tmp_path / "short.jsonl"
    short.write_bytes(data[: len(data) // 2])
    with pytest.raises(TraceFormatError, match="truncated"):
        read_trace(short)
    binary = tmp_path / "bin.jsonl"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    with pytest.raises(TraceFormatError, match=r":1: not UTF-8"):
        TraceReader(binary)


def test_writer_and_reader_round_trip_a_hand_made_trace(tmp_path: Path) -> None:
    path = tmp_path / "hand.jsonl"
    cfg = SimConfig(nodes=3)
    with TraceWriter.open(path) as w:
        w.header(TraceHeader(seed=4, config=cfg, driver="schedule"))
        c = Cluster(cfg, 4, sink=w.event)
        c.advance_to(3)
        c.tick(1)
        c.partition(groups=[[1], [2, 3]])
        c.heal()
        c.propose(3, b"hello")
        evidence: dict[Any, Any] = {"n": 1, "b": b"\x01", 3: {5}}
        w.outcome(Violation("X-Y", 4, "made up", evidence))
    header, events, outcome = read_trace(path)
    assert header == TraceHeader(seed=4, config=cfg, driver="schedule")
    assert [e.kind for e in events] == ["tick", "partition", "heal", "propose"]
    assert events[1].payload == {"cut": [[1, 2], [1, 3], [2, 1], [3, 1]]}
    assert outcome.violation == Violation("X-Y", 4, "made up", {"n": 1, "b": "AQ==", "3": [5]})
    with pytest.raises(ReplayError, match="driver 'schedule'"):
        replay(path, mode="seed")


def test_client_outcomes_are_recorded(trace: Path) -> None:
    _, events, _ = read_trace(trace)
    proposed: dict[str, tuple[int | None, str]] = {}
    acked: list[str] = []
    for e in events:
        if e.kind == "propose":
            assert e.payload["data"] not in proposed  # payloads are unique
            proposed[e.payload["data"]] = (e.node, e.payload["result"])
        for data in e.payload.get("acknowledged", []):
            # Acknowledged by the member it was proposed to, after it was accepted there.
            assert proposed[data] == (e.node, "accepted")
            assert data in [a.get("data") for a in e.payload["applied"]]
            acked.append(data)
    results = {r for _, r in proposed.values()}
    assert {"accepted", "dropped"} <= results
    assert len(acked) == len(set(acked)) > 10
    plain = run_simulation(CFG, 11)
    assert plain.counters.proposals_acknowledged == len(acked)
    assert plain.counters.proposals == len(proposed)
