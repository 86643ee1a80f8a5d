"""`kubeproof check raft` and `kubeproof replay` from the outside: exit codes, output, files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from kubeproof.cli.main import _register, cli

pytest.importorskip("kubeproof.spec.raft")

_register()
MUTANT = "tests.mutants.raft_mutants:DoubleVoteNode"


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_check_raft_passes(tmp_path: Path) -> None:
    r = run("check", "raft", "--seeds", "0..3", "--steps", "2000", "--save-failures", str(tmp_path))
    assert r.exit_code == 0, r.output
    assert "kubeproof check raft" in r.output and "4 (0..3)" in r.output
    assert "violations" in r.output
    assert not list(tmp_path.iterdir())


def test_check_json(tmp_path: Path) -> None:
    r = run("check", "raft", "--seed", "5", "--nodes", "5", "--steps", "1500", "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["violations"] == 0 and report["violations_by_invariant"] == {}
    assert report["seeds"] == {"first": 5, "last": 5, "count": 1}
    assert report["counters"]["events"] == 1500
    assert report["counters"]["elections"] >= 1
    assert report["faults"] == ["crash", "dup", "loss", "partition", "reorder"]


def test_keep_traces_twice_is_byte_identical(tmp_path: Path) -> None:
    for d in ("a", "b"):
        r = run("check", "raft", "--seeds", "11..11", "--keep-traces", str(tmp_path / d))
        assert r.exit_code == 0, r.output
    a = (tmp_path / "a" / "raft-seed-11.jsonl").read_bytes()
    b = (tmp_path / "b" / "raft-seed-11.jsonl").read_bytes()
    assert a == b and len(a.splitlines()) == 2000 + 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seeds", "5..2"], "empty"),
        (["--seeds", "zero..9"], "not a seed range"),
        (["--faults", "loss,meteor"], "unknown fault 'meteor'"),
        (["--seed", "1", "--seeds", "0..3"], "not both"),
        (["--nodes", "0"], "--nodes"),
        (["--steps", "-5"], "--steps"),
    ],
)
def test_bad_flags_exit_2(args: list[str], message: str) -> None:
    r = CliRunner().invoke(cli, ["check", "raft", *args])
    assert r.exit_code == 2, r.output
    assert message in r.output


@pytest.mark.parametrize(
    ("target", "message"), [("cluster", "not built yet"), ("paxos", "unknown target 'paxos'")]
)
def test_unknown_or_unbuilt_target_exits_2(target: str, message: str) -> None:
    r = CliRunner().invoke(cli, ["check", target])
    assert r.exit_code == 2 and message in r.output


@pytest.fixture(scope="module")
def mutant_failure(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    out = tmp_path_factory.mktemp("failures")
    r = run(
        "check", "raft", "--seeds", "0..3", "--steps", "3000", "--node-factory", MUTANT,
        "--save-failures", str(out), "--json",
    )  # fmt: skip
    assert r.exit_code == 1, r.output
    report = json.loads(r.output)
    assert report["violations"] >= 1
    failure = report["failures"][0]
    assert failure["reproduced"] is True
    path = Path(failure["trace"])
    assert path.parent == out and path.exists()
    return path, failure


def test_mutant_failure_is_saved_and_replays_to_the_same_step(
    mutant_failure: tuple[Path, dict[str, object]],
) -> None:
    path, failure = mutant_failure
    header = json.loads(path.read_text().splitlines()[0])
    assert header["node"] == MUTANT
    r = run("replay", str(path), "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["matched"] is True and report["mode"] == "seed"
    assert report["violation"]["invariant"] == failure["invariant"]
    assert report["violation"]["step"] == failure["step"]
    assert report["timeline"][-1]["step"] == failure["step"]
    r = run("replay", str(path), "--by", "schedule", "--json")
    assert r.exit_code == 0 and json.loads(r.output)["violation"]["step"] == failure["step"]


def test_replay_text_and_html(
    mutant_failure: tuple[Path, dict[str, object]], tmp_path: Path
) -> None:
    path, failure = mutant_failure
    html = tmp_path / "diagram.html"
    r = run("replay", str(path), "--html", str(html), "--tail", "10")
    assert r.exit_code == 0, r.output
    assert "matched the trace" in r.output
    assert f"violation {failure['invariant']}" in r.output
    assert "timeline" in r.output
    page = html.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "node 3" in page
    assert "marker-end" in page  # message arrows
    assert f"VIOLATION {failure['invariant']}" in page


def test_replay_reports_divergence_with_exit_1(
    mutant_failure: tuple[Path, dict[str, object]], tmp_path: Path
) -> None:
    path, _ = mutant_failure
    lines = path.read_text().splitlines()
    i = next(
        i
        for i in range(1, len(lines))
        if json.loads(lines[i]).get("kind") == "process_ready"
        and json.loads(lines[i])["payload"].get("sent")
    )
    ev = json.loads(lines[i])
    ev["payload"]["sent"][0]["msg"]["term"] += 7
    lines[i] = json.dumps(ev, sort_keys=True, separators=(",", ":"))
    bad = tmp_path / "tampered.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    r = run("replay", str(bad))
    assert r.exit_code == 1
    assert f"DIVERGED at step {ev['step']}" in r.output.replace("\n", " ")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", ":1: empty file"),
        ("{not json\n", ":1: not JSON"),
        ('{"format": "pcap"}\n', ":1: not a kubeproof trace"),
    ],
)
def test_replay_bad_files_exit_2(tmp_path: Path, content: str, message: str) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(content)
    r = CliRunner().invoke(cli, ["replay", str(bad)])
    assert r.exit_code == 2, r.output
    assert message in r.output.replace("\n", "")


def test_replay_missing_file_exits_2(tmp_path: Path) -> None:
    r = CliRunner().invoke(cli, ["replay", str(tmp_path / "nope.jsonl")])
    assert r.exit_code == 2 and "no such file" in r.output
