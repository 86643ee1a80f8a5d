"""`kubeproof schedule` (pinned: kube-scheduler v1.32 semantics)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kubeproof.cli.schedule import schedule_command

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"

OK = """
kind: Node
metadata: {name: n1}
status: {allocatable: {cpu: "2", memory: 4Gi, pods: "10"}}
---
kind: Pod
metadata: {name: a, namespace: team}
spec: {containers: [{name: c, resources: {requests: {cpu: 500m}}}]}
---
kind: Pod
metadata: {name: r}
spec: {nodeName: n1, containers: [{name: c, resources: {requests: {cpu: "1"}}}]}
"""


def invoke(tmp_path: Path, text: str, *args: str) -> tuple[int, str]:
    f = tmp_path / "in.yaml"
    f.write_text(text)
    res = CliRunner().invoke(schedule_command, [str(f), *args])
    return res.exit_code, res.output


def test_json_all_placed_exit_0(tmp_path: Path) -> None:
    code, out = invoke(tmp_path, OK, "--json")
    assert code == 0
    assert json.loads(out) == {
        "placements": {"team/a": "n1", "default/r": "n1"},
        "reasons": {},
    }


def test_some_pending_exit_1_with_reason(tmp_path: Path) -> None:
    text = (
        OK
        + "---\nkind: Pod\nmetadata: {name: big}\nspec: {containers: [{name: c, resources: {requests: {cpu: '4'}}}]}\n"
    )
    code, out = invoke(tmp_path, text, "--json")
    assert code == 1
    data = json.loads(out)
    assert data["placements"]["default/big"] is None
    assert data["reasons"]["default/big"].startswith("0/1 nodes are available: 1 Insufficient cpu.")


def test_invalid_input_exit_2(tmp_path: Path) -> None:
    code, out = invoke(tmp_path, "kind: Pod\nmetadata: {name: p}\nspec: {}\n")
    assert code == 2
    assert "Pod default/p: spec.containers" in out
    code, out = invoke(tmp_path, OK, "--explain", "nobody")
    assert code == 2 and "no pod named 'nobody'" in out
    res = CliRunner().invoke(schedule_command, [str(tmp_path / "missing.yaml")])
    assert res.exit_code == 2


def test_explain_table_and_json(tmp_path: Path) -> None:
    code, out = invoke(tmp_path, OK, "--explain", "team/a")
    assert code == 0
    assert "Filter verdicts" in out and "Scores" in out and "n1" in out
    code, out = invoke(tmp_path, OK, "--explain", "a", "--json")
    e = json.loads(out)["explanations"]["team/a"]
    assert e["node"] == "n1"
    assert e["nodes"][0]["filters"]["NodeResourcesFit"] == "passed"


def test_gang_needs_the_z3_solver(tmp_path: Path) -> None:
    code, out = invoke(tmp_path, OK, "--gang")
    assert code == 2 and "--gang works with --solver z3 only" in out


def test_config_option_replaces_the_profile(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n"
        "profiles: [{schedulerName: other}]\n"
    )
    code, out = invoke(tmp_path, OK, "--config", str(cfg), "--json")
    assert code == 1
    assert "no scheduler profile named 'default-scheduler'" in json.loads(out)["reasons"]["team/a"]


@pytest.mark.parametrize(
    ("name", "code"),
    [("sched-basic.yaml", 1), ("sched-preemption.yaml", 1), ("sched-spread.yaml", 1)],
)
def test_examples_run(name: str, code: int) -> None:
    res = CliRunner().invoke(schedule_command, [str(EXAMPLES / name), "--json"])
    assert res.exit_code == code, res.output
    data = json.loads(res.output)
    assert set(data) == {"placements", "reasons"}


def test_seed_is_a_repro(tmp_path: Path) -> None:
    nodes = "".join(
        f"---\nkind: Node\nmetadata: {{name: n{i}}}\nstatus: {{allocatable: {{cpu: '1', pods: '9'}}}}\n"
        for i in range(6)
    )
    pods = "".join(
        f"---\nkind: Pod\nmetadata: {{name: p{i}}}\nspec: {{containers: [{{name: c}}]}}\n"
        for i in range(6)
    )
    outs = {invoke(tmp_path, nodes + pods, "--json", "--seed", "5")[1] for _ in range(3)}
    assert len(outs) == 1


EXAMPLES = Path(__file__).parents[1] / "docs" / "examples"


def test_z3_explains_an_infeasible_gang() -> None:
    r = CliRunner().invoke(
        schedule_command, [str(EXAMPLES / "sched-gang-infeasible.yaml"), "--solver", "z3", "--gang"]
    )
    assert r.exit_code == 1, r.output
    assert "Constraints that cannot hold together" in r.output
    assert "cannot all be placed" in r.output


def test_z3_places_what_greedy_leaves_pending() -> None:
    path = str(EXAMPLES / "sched-greedy-vs-z3.yaml")
    greedy = CliRunner().invoke(schedule_command, [path, "--json"])
    assert greedy.exit_code == 1
    assert None in json.loads(greedy.output)["placements"].values()
    z3 = CliRunner().invoke(schedule_command, [path, "--solver", "z3", "--json"])
    assert z3.exit_code == 0, z3.output
    out = json.loads(z3.output)
    assert None not in out["placements"].values()
    assert out["solver"]["conflicts"] == []


def test_z3_least_preemption_lists_the_evictions() -> None:
    path = str(EXAMPLES / "sched-least-preemption.yaml")
    args = [path, "--solver", "z3", "--objective", "least-preemption"]
    r = CliRunner().invoke(schedule_command, [*args, "--json"])
    assert r.exit_code == 1, r.output  # the evicted pods are no longer placed
    out = json.loads(r.output)
    assert out["evicted"] == ["default/batch-0", "default/batch-1"]
    assert out["placements"]["default/batch-0"] is None
    assert out["placements"]["default/cache-0"] == "a"
    assert {out["placements"]["default/api-0"], out["placements"]["default/api-1"]} == {"a", "b"}
    assert out["reasons"]["default/batch-0"].startswith("preempted by default/api-")
    assert out["solver"]["objective_value"] == 2 and out["solver"]["pdb_violations"] == 0
    assert out["solver"]["status"] == "optimal"
    table = CliRunner().invoke(schedule_command, args)
    assert "evicted" in table.output and "Evicted" in table.output
    assert "2 eviction(s), 0 PodDisruptionBudget violation(s)" in table.output
    # Other objectives evict nothing, and say so under the same key.
    plain = CliRunner().invoke(schedule_command, [path, "--solver", "z3", "--json"])
    assert json.loads(plain.output)["evicted"] == []
