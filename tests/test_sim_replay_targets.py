"""`kubeproof replay` on the store's and the API simulation's traces: the header picks the
re-executor, a faithful trace replays identically, a tampered one names its divergent step,
a broken file names its line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from kubeproof.cli.main import _register, cli
from kubeproof.etcd import Member
from kubeproof.sim.apitrace import ApiTraceHeader, ApiTraceReader
from kubeproof.sim.config import ALL_FAULTS, SimConfig
from kubeproof.sim.kv import run_kv_simulation
from kubeproof.sim.kvconfig import KVSimConfig
from kubeproof.sim.replay import Checkers, ReplayError, replay
from kubeproof.sim.trace import KVTraceHeader, KVTraceReader, TraceFormatError, TraceReader
from kubeproof.spec.api import API_NO_LOST_UPDATE, api_checkers
from kubeproof.spec.kv import kv_checkers
from tests.mutants.kv_mutants import DoubleApplyMember

_register()
KV_CFG = KVSimConfig(sim=SimConfig(steps=1200, faults=ALL_FAULTS))
CHECKERS = Checkers(kv=kv_checkers, api=api_checkers)
API_MUTANT = "tests.mutants.api_mutants:StaleUpdateServer"


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def lines_of(path: Path) -> list[str]:
    return path.read_text().splitlines()


def tamper(path: Path, out: Path, pick: Callable[[dict[str, Any]], bool], key: str) -> int:
    """Change one payload value of the first event `pick` accepts; return its line (1-based)."""
    lines = lines_of(path)
    i = next(i for i in range(1, len(lines) - 1) if pick(json.loads(lines[i])))
    event = json.loads(lines[i])
    value = event["payload"][key]
    event["payload"][key] = value + 7 if isinstance(value, int) else f"{value}!"
    lines[i] = json.dumps(event, sort_keys=True, separators=(",", ":"))
    out.write_text("".join(line + "\n" for line in lines))
    return i + 1


@pytest.fixture(scope="module")
def kv_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("kv") / "kv-seed-3.jsonl"
    result = run_kv_simulation(KV_CFG, 3, checkers=kv_checkers(KV_CFG), trace=path)
    assert result.ok and result.counters.events == KV_CFG.steps
    return path


@pytest.fixture(scope="module")
def api_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A failing API run, saved the way `kubeproof check api` saves it."""
    out = tmp_path_factory.mktemp("api")
    r = run(
        "check", "api", "--seed", "0", "--save-failures", str(out), "--node-factory", API_MUTANT
    )
    assert r.exit_code == 1, r.output
    path = out / "api-seed-0.jsonl"
    assert path.exists()
    return path


def test_a_store_trace_replays_identically(kv_trace: Path) -> None:
    r = replay(kv_trace, checkers=CHECKERS)
    assert r.target == "kv" and r.mode == "seed" and isinstance(r.header, KVTraceHeader)
    assert r.header.config == KV_CFG and r.header.seed == 3
    assert r.matched, r.divergence and r.divergence.describe()
    assert r.steps == KV_CFG.steps and r.violation is None
    assert r.recorded is not None and r.recorded.ok


def test_a_store_trace_with_a_violation_replays_with_its_verdict(tmp_path: Path) -> None:
    path = tmp_path / "kv-mutant.jsonl"
    cfg = KVSimConfig(sim=SimConfig(steps=3000, faults=ALL_FAULTS))
    found = run_kv_simulation(
        cfg, 0, checkers=kv_checkers(cfg), member_factory=DoubleApplyMember, trace=path
    )
    assert found.violation is not None
    r = replay(path, checkers=CHECKERS)
    assert r.matched, r.divergence and r.divergence.describe()
    assert r.violation is not None and r.violation.invariant == found.violation.invariant
    # The correct member does not reproduce it: the replay says where it parts.
    fixed = replay(path, checkers=CHECKERS, node_factory=Member)
    assert not fixed.matched and fixed.divergence is not None


def test_a_tampered_store_trace_names_the_divergent_step(kv_trace: Path, tmp_path: Path) -> None:
    bad = tmp_path / "kv-bad.jsonl"
    line = tamper(kv_trace, bad, lambda e: e["kind"] == "call" and e["step"] > 300, "seq")
    step = line - 1  # event k is on line k + 1
    r = replay(bad, checkers=CHECKERS)
    assert r.divergence is not None and r.divergence.step == step
    assert r.divergence.where == "payload.seq"
    assert r.divergence.expected == r.divergence.actual + 7
    cli_run = run("replay", str(bad))
    assert cli_run.exit_code == 1
    assert f"DIVERGED at step {step}: payload.seq" in cli_run.output.replace("\n", " ")


def test_a_store_trace_that_ends_early_is_a_divergence(kv_trace: Path, tmp_path: Path) -> None:
    lines = lines_of(kv_trace)
    short = tmp_path / "short.jsonl"
    short.write_text("".join(line + "\n" for line in [*lines[:-2], lines[-1]]))
    r = replay(short, checkers=CHECKERS)
    assert r.divergence is not None and r.divergence.step == KV_CFG.steps
    assert "no more events" in r.divergence.describe()


def test_replay_of_a_store_trace_on_the_command_line(kv_trace: Path) -> None:
    r = run("replay", str(kv_trace), "--tail", "5")
    assert r.exit_code == 0, r.output
    assert "store trace, seed 3" in r.output and "no violation" in r.output
    assert f"matched the trace: {KV_CFG.steps} events identical" in r.output.replace("\n", " ")
    report = json.loads(run("replay", str(kv_trace), "--json").output)
    assert report["target"] == "kv" and report["matched"] is True
    assert report["node"] == "kubeproof.etcd.member:Member"


def test_store_traces_replay_by_seed_only(kv_trace: Path) -> None:
    with pytest.raises(ReplayError, match="by seed only"):
        replay(kv_trace, mode="schedule")
    r = run("replay", str(kv_trace), "--by", "schedule")
    assert r.exit_code == 2 and "by seed only" in r.output
    r = run("replay", str(kv_trace), "--html", "x.html")
    assert r.exit_code == 2 and "Raft harness traces" in r.output


def test_an_api_trace_replays_identically(api_trace: Path) -> None:
    recorded = lines_of(api_trace)
    r = replay(api_trace, checkers=CHECKERS)
    assert r.target == "api" and isinstance(r.header, ApiTraceHeader)
    assert r.header.server == API_MUTANT and r.header.seed == 0
    assert r.matched, r.divergence and r.divergence.describe()
    assert r.steps == len(recorded) - 2
    assert r.violation is not None and r.violation.invariant == API_NO_LOST_UPDATE
    out = run("replay", str(api_trace), "--tail", "5")
    assert out.exit_code == 0, out.output
    text = out.output.replace("\n", " ")
    assert "API trace, seed 0" in text and f"violation {API_NO_LOST_UPDATE}" in text
    assert "events identical, same outcome" in text


def test_a_tampered_api_trace_names_the_divergent_step(api_trace: Path, tmp_path: Path) -> None:
    bad = tmp_path / "api-bad.jsonl"
    line = tamper(api_trace, bad, lambda e: e["kind"] == "request" and e["step"] > 50, "status")
    step = json.loads(lines_of(bad)[line - 1])["step"]
    r = replay(bad, checkers=CHECKERS)
    assert r.divergence is not None and r.divergence.step == step
    assert r.divergence.event == line - 1 and r.divergence.where == "payload.status"
    out = run("replay", str(bad), "--json")
    assert out.exit_code == 1
    report = json.loads(out.output)
    assert report["divergence"]["step"] == step
    assert f"step {step} (event {line - 1}): payload.status" in report["divergence"]["message"]


def test_a_changed_api_outcome_is_a_divergence(api_trace: Path, tmp_path: Path) -> None:
    lines = lines_of(api_trace)
    outcome = json.loads(lines[-1])
    outcome["message"] = "something else"
    lines[-1] = json.dumps(outcome, sort_keys=True, separators=(",", ":"))
    bad = tmp_path / "api-outcome.jsonl"
    bad.write_text("".join(line + "\n" for line in lines))
    r = replay(bad, checkers=CHECKERS)
    assert r.divergence is not None and r.divergence.where == "outcome.message"


def _kv_header(kv_trace: Path) -> dict[str, Any]:
    header: dict[str, Any] = json.loads(lines_of(kv_trace)[0])
    return header


@pytest.mark.parametrize(
    ("which", "make", "message"),
    [
        ("kv", lambda lines: [lines[0], "{not json", *lines[2:]], ":2: not JSON"),
        ("kv", lambda lines: lines[:200], ":200: truncated: no outcome line"),
        (
            "kv",
            lambda lines: [lines[0].replace('"version":1', '"version":9'), *lines[1:]],
            ":1: unsupported trace version 9",
        ),
        (
            "kv",
            lambda lines: [lines[0].replace('"clients":4', '"clients":0'), *lines[1:]],
            ":1: header 'config' is invalid: cannot decode KVSimConfig",
        ),
        (
            "kv",
            lambda lines: [*lines[:9], lines[10], *lines[11:]],
            ":10: event step is 10, expected 9",
        ),
        ("api", lambda lines: lines[:50], ":50: truncated: no outcome line"),
        (
            "api",
            lambda lines: [
                lines[0].replace('"faults":["compact"', '"faults":["quake"'),
                *lines[1:],
            ],
            ":1: header 'config' is invalid: unknown faults ['quake']",
        ),
        (
            "api",
            lambda lines: [lines[0].replace('"target":"api"', '"target":"sched"'), *lines[1:]],
            ":1: header 'target' is 'sched'",
        ),
        ("api", lambda lines: [*lines[:5], '{"kind":"request"}', *lines[5:]], ":6: not an event"),
    ],
)
def test_broken_trace_files_name_file_and_line(
    which: str,
    make: Callable[[list[str]], list[str]],
    message: str,
    kv_trace: Path,
    api_trace: Path,
    tmp_path: Path,
) -> None:
    source = kv_trace if which == "kv" else api_trace
    bad = tmp_path / "broken.jsonl"
    bad.write_text("".join(line + "\n" for line in make(lines_of(source))))
    with pytest.raises(TraceFormatError) as info:
        replay(bad, checkers=CHECKERS)
    assert str(info.value).startswith(f"{bad}:") and message in str(info.value)
    r = run("replay", str(bad))
    assert r.exit_code == 2
    text = r.output.replace("\n", "")
    assert "not a readable trace" in text and message in text and bad.name in text


def test_each_reader_reads_its_own_format(kv_trace: Path, api_trace: Path) -> None:
    with KVTraceReader(kv_trace) as kv:
        assert kv.header.member == "kubeproof.etcd.member:Member"
        assert sum(1 for _ in kv.events()) == KV_CFG.steps
    with ApiTraceReader(api_trace) as api:
        steps = [e.step for e in api.events()]
        assert steps[0] == 0 and steps == sorted(steps) and len(set(steps)) < len(steps)
    with pytest.raises(TraceFormatError, match="'kubeproof-kv-trace'"):
        TraceReader(kv_trace)
    with pytest.raises(TraceFormatError, match="not a Raft harness trace"):
        TraceReader(api_trace)
