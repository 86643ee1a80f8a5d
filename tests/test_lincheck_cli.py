"""`kubeproof lincheck`: exit codes, JSON, witness output, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kubeproof.cli.lincheck import command

from .lincheck_support import DATA, require_data

OK_JSONL = """\
{"format": "kubeproof-history", "version": 1, "model": "kv"}
{"id": 1, "client": 0, "call": 0, "return": 2, "input": {"op": "put", "key": "a", "value": "1"}, "output": null}
{"id": 2, "client": 1, "call": 3, "return": 4, "input": {"op": "get", "key": "a"}, "output": "1"}
"""

STALE_JSONL = OK_JSONL.replace('"output": "1"}', '"output": ""}')


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(command, list(args))
    return result.exit_code, result.stdout, result.stderr


def write(tmp_path: Path, name: str, text: str) -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_linearizable_exits_0(tmp_path: Path) -> None:
    code, out, _ = run(write(tmp_path, "h.jsonl", OK_JSONL))
    assert code == 0 and out.startswith("linearizable:")


def test_not_linearizable_exits_1_with_a_witness(tmp_path: Path) -> None:
    code, out, _ = run(write(tmp_path, "h.jsonl", STALE_JSONL))
    assert code == 1
    assert "NOT linearizable" in out
    assert "cannot be ordered" in out and "op 2" in out and "get('a') -> ''" in out


def test_json_output(tmp_path: Path) -> None:
    code, out, _ = run("--json", write(tmp_path, "h.jsonl", STALE_JSONL))
    assert code == 1
    report = json.loads(out)
    assert report["linearizable"] is False
    assert report["operations"] == 2 and report["model"] == "kv"
    assert isinstance(report["seconds"], float)
    core = [op["id"] for op in report["witness"]["core"]]
    assert core == [1, 2]  # the put that returned, then the get that missed it
    code, out, _ = run("--json", write(tmp_path, "ok.jsonl", OK_JSONL))
    assert code == 0 and json.loads(out)["linearizable"] is True


def test_shared_histories_through_the_cli() -> None:
    data = require_data()
    code, out, _ = run("--json", str(data / "c50-ok.txt"))
    assert code == 0 and json.loads(out)["partitions"] == 10
    code, out, _ = run(str(data / "etcd_000.log"))
    assert code == 1 and "line 85" in out  # names the log line of the read that cannot fit
    code, _, _ = run("--model", "kv-nopartition", str(data / "c01-bad.txt"))
    assert code == 1


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--model", "nope"], "Invalid value for '--model'"),
        (["--timeout", "-1"], "Invalid value for '--timeout'"),
        (["--model", "etcd-register"], "cannot read it"),
    ],
)
def test_bad_flags_exit_2(tmp_path: Path, args: list[str], fragment: str) -> None:
    path = write(tmp_path, "c.txt", '{:process 0, :type :invoke, :f :get, :key "0", :value nil}\n')
    code, _, err = run(*args, path)
    assert code == 2 and fragment in err


def test_unreadable_input_exits_2(tmp_path: Path) -> None:
    code, _, err = run(str(tmp_path / "missing.log"))
    assert code == 2 and "does not exist" in err
    bad = write(tmp_path, "bad.log", "INFO  jepsen.util - 0\t:invoke\t:read\tnil\ngarbage\n")
    code, _, err = run(bad)
    assert code == 2 and "bad.log:2:" in err
    empty = write(tmp_path, "empty.log", "")
    code, _, err = run(empty)
    assert code == 2 and "empty" in err
    binary = tmp_path / "bin.log"
    binary.write_bytes(b"\xff\xfe\x00")
    code, _, err = run(str(binary))
    assert code == 2 and "UTF-8" in err


def test_model_disagreeing_with_header_exits_2(tmp_path: Path) -> None:
    code, _, err = run("--model", "kv-nopartition", write(tmp_path, "h.jsonl", OK_JSONL))
    assert code == 2 and "disagrees" in err


def test_timeout_gives_unknown_exit_3(tmp_path: Path) -> None:
    code, out, _ = run("--timeout", "1e-9", write(tmp_path, "h.jsonl", OK_JSONL))
    assert code == 3 and out.startswith("unknown")


def test_registered_in_the_kubeproof_group() -> None:
    from kubeproof.cli.commands import all_commands

    assert any(c.name == "lincheck" for c in all_commands())
    assert DATA.name == "porcupine"
