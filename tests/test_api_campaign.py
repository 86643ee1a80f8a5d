"""`kubeproof check api`: the campaign finds no violation in the real server and catches the mutants."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kubeproof.api import ApiServer
from kubeproof.cli.check_api import ApiTraceError, api_campaign, replay_api
from kubeproof.cli.main import _register, cli
from kubeproof.sim.apisim import (
    ApiSimConfig,
    ApiSimConfigError,
    parse_api_faults,
    run_api_simulation,
)
from kubeproof.spec.api import API_AUTHORIZED, API_NO_LOST_UPDATE, API_WATCH_COMPLETE, api_checkers

from .mutants.api_mutants import PrefixRbacServer, SkipFirstWatchEventServer, StaleUpdateServer


def test_the_real_server_passes_a_faulty_campaign() -> None:
    result = api_campaign(range(6), steps=300, faults="all")
    assert result.violations == 0, [f.violation for f in result.failures]
    assert result.internal_errors == 0
    t = result.totals
    # The run really exercised what the invariants talk about.
    for counter in (
        "writes_ok",
        "conflicts",
        "forbidden",
        "watch_events",
        "expired",
        "crashes",
        "compactions",
        "dropped",
        "duplicated",
        "rbac_writes",
    ):
        assert t[counter] > 0, counter


def test_runs_are_deterministic() -> None:
    cfg = ApiSimConfig(steps=150)
    a = run_api_simulation(3, cfg, api_checkers(), record=True)
    b = run_api_simulation(3, cfg, api_checkers(), record=True)
    assert a.events == b.events and a.counters == b.counters
    c = run_api_simulation(4, cfg, api_checkers(), record=True)
    assert c.events != a.events


@pytest.mark.parametrize(
    ("mutant", "invariant"),
    [
        (StaleUpdateServer, API_NO_LOST_UPDATE),
        (PrefixRbacServer, API_AUTHORIZED),
        (SkipFirstWatchEventServer, API_WATCH_COMPLETE),
    ],
)
def test_mutants_are_caught(mutant: type[ApiServer], invariant: str, tmp_path: Path) -> None:
    result = api_campaign(
        range(20), server_factory=mutant, save_failures=tmp_path, stop_at_first=True
    )
    assert result.failures, f"{mutant.__name__} was not caught in 20 seeds"
    f = result.failures[0]
    assert f.violation.invariant == invariant, f.violation
    assert f.reproduced
    assert f.trace is not None and f.trace.exists()
    lines = f.trace.read_text().splitlines()
    header, outcome = json.loads(lines[0]), json.loads(lines[-1])
    assert header["format"] == "kubeproof-trace" and header["target"] == "api"
    assert header["server"].endswith(mutant.__qualname__)
    assert outcome["outcome"] == "violation" and outcome["invariant"] == invariant
    again, same = replay_api(f.trace)
    assert same and again.violation is not None and again.violation.invariant == invariant


def test_replay_refuses_foreign_files(tmp_path: Path) -> None:
    bad = tmp_path / "x.jsonl"
    bad.write_text('{"format":"kubeproof-trace","version":1,"driver":"random"}\n{}\n')
    with pytest.raises(ApiTraceError, match="not an API trace"):
        replay_api(bad)
    (tmp_path / "y.jsonl").write_text("not json\n")
    with pytest.raises(ApiTraceError, match="not a readable trace"):
        replay_api(tmp_path / "y.jsonl")


def test_fault_names() -> None:
    assert parse_api_faults("all") == frozenset(
        {"compact", "crash", "delay", "drop", "dup", "reorder"}
    )
    assert parse_api_faults("none") == frozenset()
    assert parse_api_faults("drop, crash") == frozenset({"drop", "crash"})
    with pytest.raises(ApiSimConfigError, match="unknown fault 'partition'"):
        parse_api_faults("partition")


def test_cli_check_api(tmp_path: Path) -> None:
    _register()
    runner = CliRunner()
    ok = runner.invoke(
        cli,
        [
            "check",
            "api",
            "--seeds",
            "0..1",
            "--steps",
            "120",
            "--json",
            "--save-failures",
            str(tmp_path),
        ],
    )
    assert ok.exit_code == 0, ok.output
    report = json.loads(ok.output)
    assert report["target"] == "api" and report["violations"] == 0
    assert report["seeds"] == {"first": 0, "last": 1, "count": 2}
    assert report["steps"] == 120 and report["servers"] == 2
    table = runner.invoke(cli, ["check", "api", "--seed", "5", "--steps", "60", "--faults", "none"])
    assert table.exit_code == 0 and "violations" in table.output
    bad = runner.invoke(cli, ["check", "api", "--faults", "bogus"])
    assert bad.exit_code == 2 and "unknown fault 'bogus'" in bad.output
    bad_seeds = runner.invoke(cli, ["check", "api", "--seeds", "9..1"])
    assert bad_seeds.exit_code == 2
    caught = runner.invoke(
        cli,
        [
            "check",
            "api",
            "--seed",
            "0",
            "--steps",
            "200",
            "--json",
            "--node-factory",
            "tests.mutants.api_mutants:SkipFirstWatchEventServer",
            "--save-failures",
            str(tmp_path),
        ],
    )
    assert caught.exit_code == 1, caught.output
    assert json.loads(caught.output)["violations_by_invariant"].get(API_WATCH_COMPLETE, 0) >= 1
