"""The replicated store under simulation: deterministic, exercised, checked, on the CLI."""

from __future__ import annotations

import io
import json
from pathlib import Path

from click.testing import CliRunner

from kubeproof.cli.check_kv import kv_campaign
from kubeproof.cli.main import _register, cli
from kubeproof.sim.config import ALL_FAULTS, SimConfig
from kubeproof.sim.kv import KV_TRACE_FORMAT, run_kv_simulation
from kubeproof.sim.kvconfig import KVSimConfig
from kubeproof.spec.kv import KV_LINEARIZABLE, kv_checkers
from tests.mutants.kv_mutants import DoubleApplyMember

_register()


def test_a_seed_is_a_complete_repro() -> None:
    cfg = KVSimConfig(sim=SimConfig(steps=1500, faults=ALL_FAULTS))
    texts = []
    for _ in range(2):
        buf = io.StringIO()
        run_kv_simulation(cfg, 11, checkers=kv_checkers(cfg), trace=buf)
        texts.append(buf.getvalue())
    assert texts[0] == texts[1]
    lines = texts[0].splitlines()
    header = json.loads(lines[0])
    assert header["format"] == KV_TRACE_FORMAT and header["seed"] == 11
    assert header["config"]["sim"]["steps"] == 1500
    assert json.loads(lines[-1]) == {"outcome": "ok"}
    assert len(lines) == 1500 + 2


def test_the_campaign_exercises_the_store_under_all_faults() -> None:
    result = kv_campaign(range(3))
    assert result.violations == 0, result.failures
    t = result.totals
    for counter in (
        "ops_ok",
        "ops_unknown",
        "retries",
        "duplicates_suppressed",
        "reads_linearizable",
        "reads_serializable",
        "txns",
        "compactions",
        "lease_grants",
        "expiries_applied",
        "snapshots",
        "watch_events",
        "crashes",
        "partitions",
        "lincheck_ops",
    ):
        assert t[counter] > 0, counter
    assert t["lincheck_unknown"] == 0


def test_the_periodic_linearizability_check_catches_a_bug_before_the_end() -> None:
    result = kv_campaign([0], member_factory=DoubleApplyMember, lincheck_every=300)
    (failure,) = result.failures
    assert failure.violation.invariant == KV_LINEARIZABLE
    assert failure.violation.step < 6000


def test_check_kv_on_the_command_line(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(cli, ["check", "kv", "--seed", "2", "--steps", "1200", "--json"])
    assert ok.exit_code == 0, ok.output
    report = json.loads(ok.output)
    assert report["target"] == "kv" and report["violations"] == 0
    assert report["counters"]["events"] == 1200
    bad = runner.invoke(
        cli,
        [
            "check",
            "kv",
            "--seed",
            "0",
            "--node-factory",
            "tests.mutants.kv_mutants:DoubleApplyMember",
            "--save-failures",
            str(tmp_path),
            "--json",
        ],
    )
    assert bad.exit_code == 1, bad.output
    (failure,) = json.loads(bad.output)["failures"]
    assert failure["reproduced"] and Path(failure["trace"]).exists()
    wrong = runner.invoke(cli, ["check", "kv", "--node-factory", "kubeproof.raft:RaftNode"])
    assert wrong.exit_code == 2
    assert "not a kubeproof.etcd.Member class" in wrong.output
