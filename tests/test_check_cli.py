"""`kubeproof check all` and the driver every target shares (`kubeproof.cli.campaign_runner`):
one report per target, a summary row per target, the worst exit status, and bad input
answered with exit 2 and a message naming what is wrong, whatever the target."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import pytest
from attrs import define, field, frozen
from click.testing import CliRunner, Result

from kubeproof.cli.campaign_runner import Campaign, SeedRun, drive
from kubeproof.cli.check import BUILT
from kubeproof.cli.main import _register, cli
from kubeproof.sim.observe import Violation

pytest.importorskip("kubeproof.spec.raft")

_register()


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def test_check_all_runs_every_built_target(tmp_path: Path) -> None:
    r = run("check", "all", "--seeds", "0..1", "--steps", "300", "--save-failures", str(tmp_path))
    assert r.exit_code == 0, r.output
    for target in ("raft", "kv", "api"):
        assert f"kubeproof check {target}" in r.output
    summary = r.output[r.output.index("kubeproof check all") :]
    rows = [line for line in summary.splitlines() if "2 (0..1)" in line]
    assert [row.split()[1] for row in rows] == ["raft", "kv", "api"]
    assert not list(tmp_path.iterdir())


def test_check_all_json_has_one_report_per_target() -> None:
    r = run("check", "all", "--seed", "3", "--steps", "250", "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["target"] == "all" and report["exit"] == 0 and report["violations"] == 0
    assert report["seeds"] == {"first": 3, "last": 3, "count": 1}
    targets = report["targets"]
    assert [t["target"] for t in targets] == list(BUILT) == ["raft", "kv", "api"]
    raft, kv, api = targets
    # --steps given applies to each target; flags left alone take each target's defaults
    assert raft["steps"] == kv["steps"] == api["steps"] == 250
    assert raft["counters"]["events"] == kv["counters"]["events"] == 250
    assert raft["nodes"] == kv["nodes"] == 3 and api["servers"] == 2
    assert "features" in raft and "seconds" in kv and "internal_errors" in api


@frozen
class _Run:
    violation: Violation | None


@frozen
class _Failure:
    seed: int
    violation: Violation
    trace: Path | None = None
    reproduced: bool = True


@define
class _Result:
    seeds: list[int] = field(factory=list)
    totals: dict[str, int] = field(factory=dict)
    failures: list[_Failure] = field(factory=list)
    errors: int = 0

    @property
    def violations(self) -> int:
        return len(self.failures)

    def by_invariant(self) -> dict[str, int]:
        return {f.violation.invariant: 1 for f in self.failures}


@frozen
class _Fake(Campaign[_Result]):
    """A campaign whose listed seeds violate an invariant (and may count errors)."""

    name: str
    bad: frozenset[int] = frozenset()
    errors: int = 0

    def run(self, seeds: Sequence[int], on_result: Callable[[SeedRun], None]) -> _Result:
        result = _Result(errors=self.errors)
        for seed in seeds:
            v = Violation("FAKE-INVARIANT", seed, f"seed {seed} is bad", {})
            violation = v if seed in self.bad else None
            result.seeds.append(seed)
            result.totals["runs"] = result.totals.get("runs", 0) + 1
            if violation is not None:
                result.failures.append(_Failure(seed, violation))
            on_result(_Run(violation))
        return result

    def rows(self, result: _Result, seconds: float) -> Iterable[tuple[str, str]]:
        return [("runs", str(result.totals["runs"]))]

    def report(self, result: _Result, seconds: float) -> dict[str, object]:
        return {"errors": result.errors}

    def failed(self, result: _Result) -> bool:
        return bool(result.violations or result.errors)


def test_the_exit_status_of_several_targets_is_the_worst(
    capsys: pytest.CaptureFixture[str],
) -> None:
    ok, bad, erring = _Fake("ok"), _Fake("bad", frozenset({2})), _Fake("erring", errors=1)
    assert drive([ok], range(4), as_json=False) == 0
    assert drive([bad], range(4), as_json=False) == 1
    assert drive([ok, erring, ok], range(4), as_json=False) == 1
    capsys.readouterr()
    assert drive([ok, bad, ok], range(4), as_json=False) == 1
    out = capsys.readouterr().out
    assert "seed 2: FAKE-INVARIANT at step 2: seed 2 is bad" in out
    summary = out[out.index("kubeproof check all") :]
    assert [line.split()[1] for line in summary.splitlines() if "4 (0..3)" in line] == [
        "ok",
        "bad",
        "ok",
    ]
    assert drive([ok, bad], range(4), as_json=True) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["exit"] == 1 and report["violations"] == 1
    assert [t["target"] for t in report["targets"]] == ["ok", "bad"]
    assert report["targets"][1]["failures"][0]["seed"] == 2


@pytest.mark.parametrize("target", ["raft", "kv", "api", "all"])
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seeds", "5..2"], "'5..2' is empty: the first seed must not exceed the last"),
        (["--seeds", "abc"], "'abc' is not a seed range"),
        (["--seeds", ""], "'' is not a seed range"),
        (["--seeds", "1..x"], "'1..x' is not a seed range"),
        (["--seed", "1", "--seeds", "0..3"], "give --seeds A..B or --seed N, not both"),
        (["--seed", "-1"], "--seed"),
        (["--faults", "meteor"], "unknown fault 'meteor'"),
    ],
)
def test_bad_input_exits_2_and_names_the_problem(
    target: str, args: list[str], message: str
) -> None:
    r = run("check", target, *args)
    assert r.exit_code == 2, r.output
    assert message in " ".join(r.output.split()), r.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["paxos"], "unknown target 'paxos'; targets: raft, kv, api, sched, cluster, all"),
        (["paxos", "--seeds", "5..2"], "unknown target 'paxos'"),
        (["sched"], "target 'sched' is not built yet; built targets: raft, kv, api"),
        (["cluster", "--seeds", "abc"], "target 'cluster' is not built yet"),
        # with all, a flag one target cannot take is named with that target
        (["all", "--faults", "loss"], "unknown fault 'loss' for the api target"),
        (["all", "--faults", "drop"], "unknown fault 'drop'; known faults: loss"),
        (["all", "--faults", "drop"], "(for target raft of all)"),
        (["all", "--lease-reads"], "leases) (for target raft of all)"),
        (["all", "--node-factory", "x:y"], "give that target, not all"),
        (["api", "--node-factory", "kubeproof.api"], "is not 'module:attribute'"),
        (["kv", "--node-factory", "kubeproof.raft:RaftNode"], "not a kubeproof.etcd.Member"),
    ],
)
def test_bad_targets_and_flags_for_all_exit_2(args: list[str], message: str) -> None:
    r = run("check", *args)
    assert r.exit_code == 2, r.output
    assert message in " ".join(r.output.split()), r.output


def test_all_checks_every_target_before_running_any(tmp_path: Path) -> None:
    # api's faults are checked (and refused) before raft or kv run a seed
    r = run("check", "all", "--faults", "partition", "--keep-traces", str(tmp_path / "t"))
    assert r.exit_code == 2 and "for target api of all" in r.output
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["api", "--swarm"], "target api does not take --[no-]swarm"),
        (["api", "--jobs", "2"], "target api does not take --jobs"),
        (
            ["api", "--keep-traces", "t", "--pre-vote"],
            "does not take --keep-traces, --[no-]pre-vote",
        ),
        (["kv", "--no-snapshots"], "target kv does not take --[no-]snapshots"),
        (["kv", "--lease-reads", "--no-transfers"], "--lease-reads, --[no-]transfers"),
    ],
)
def test_a_flag_a_target_has_no_use_for_is_refused(args: list[str], message: str) -> None:
    # Silently ignoring it would let a user believe a run did what it did not.
    r = run("check", *args, "--seeds", "0..0")
    assert r.exit_code == 2, r.output
    assert message in " ".join(r.output.split()), r.output


def test_with_all_each_target_takes_the_flags_it_has_a_use_for() -> None:
    r = run("check", "all", "--seeds", "0..0", "--jobs", "2", "--swarm", "--json")
    assert r.exit_code == 0, r.output
    assert [t["target"] for t in json.loads(r.output)["targets"]] == ["raft", "kv", "api"]
