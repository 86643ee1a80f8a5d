"""The Z3 proofs: every claim is proved, every false variant refuted, the CLI reports both."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
import z3
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

import kubeproof.proofs as proofs
from kubeproof.cli.prove import prove
from kubeproof.proofs import FALSE_VARIANTS, PROOFS, Proof, Verdict
from kubeproof.proofs.commit import (
    committed_at,
    etcd_position,
    joint_commit_index,
    majority_has,
    upper_median,
)
from kubeproof.proofs.majority import half_quorums_intersect, majority_quorums_intersect
from kubeproof.proofs.result import Obligation, discharge

# Each proof runs once per session at its default bounds (the whole table takes a few
# seconds); the tests below look at the results.


@pytest.fixture(scope="module")
def proved() -> Mapping[str, Proof]:
    return {name: run() for name, run in PROOFS.items()}


@pytest.fixture(scope="module")
def refuted() -> Mapping[str, Proof]:
    return {name: run() for name, run in FALSE_VARIANTS.items()}


def test_the_table_covers_the_issue() -> None:
    assert set(PROOFS) == {
        "majority-quorums-intersect",
        "majority-quorums-intersect-all-sizes",
        "joint-quorums-intersect",
        "single-change-quorums-intersect",
        "commit-index-is-majority-index",
        "joint-commit-index",
    }
    # Every claim has a false neighbour, to show its encoding can fail.
    assert set(FALSE_VARIANTS) == set(PROOFS)


@pytest.mark.parametrize("name", list(PROOFS))
def test_every_claim_is_proved(proved: Mapping[str, Proof], name: str) -> None:
    proof = proved[name]
    assert proof.name == name
    assert proof.result is Verdict.PROVED, proof.detail
    assert proof.counterexample is None and proof.model is None
    assert proof.queries >= 1
    assert proof.statement and not proof.statement.startswith("(false)")


@pytest.mark.parametrize("name", list(FALSE_VARIANTS))
def test_every_false_variant_is_refuted(refuted: Mapping[str, Proof], name: str) -> None:
    proof = refuted[name]
    assert proof.name != name
    assert proof.statement.startswith("(false)")
    assert proof.result is Verdict.REFUTED, proof.detail
    assert proof.counterexample
    assert proof.model and "=" in proof.model  # Z3's own model, as it printed it


def test_counterexamples_are_the_small_classic_ones(refuted: Mapping[str, Proof]) -> None:
    # Two halves of a 2-member cluster are disjoint "quorums".
    half = refuted["majority-quorums-intersect"].counterexample
    assert half == (
        "n = 2: Q1 = {1} and Q2 = {2} each hold >= (n+1)/2 = 1 of the 2 members {1..2},"
        " and share no member"
    )
    assert "n = 2: Q1 = {1} and Q2 = {2}" in str(
        refuted["majority-quorums-intersect-all-sizes"].counterexample
    )
    # A direct change, and a two-voter change, shrunk to two members in all.
    for name in ("joint-quorums-intersect", "single-change-quorums-intersect"):
        words = str(refuted[name].counterexample)
        assert "(differing by 2)" in words
        assert words.count("{1}") == 2 and words.count("{2}") == 2, words
    # The upper median of two matches is held by one voter only.
    median = str(refuted["commit-index-is-majority-index"].counterexample)
    assert median.startswith("n = 2: ") and "only 1 of 2 voters" in median
    assert refuted["joint-commit-index"].counterexample is not None
    assert "|C_old| = 1, |C_new| = 1" in refuted["joint-commit-index"].counterexample


def test_at_least_half_is_a_quorum_for_odd_sizes_only() -> None:
    # (n+1)/2 is the majority when n is odd: the false variant holds up to n = 1 and
    # fails at the first even size, so the encoding tells the two apart.
    assert half_quorums_intersect(max_size=1).result is Verdict.PROVED
    at_two = half_quorums_intersect(max_size=2)
    assert at_two.result is Verdict.REFUTED
    assert at_two.queries == 2


def test_bounds_are_parameters() -> None:
    small = majority_quorums_intersect(max_size=3)
    assert small.result is Verdict.PROVED and small.queries == 3 and "1..3" in small.statement
    joint = joint_commit_index(max_size=2)
    # Pairs (a, b), a <= b, b >= 1: (0,1) (0,2) (1,1) (1,2) (2,2).
    assert joint.result is Verdict.PROVED and joint.queries == 5
    with pytest.raises(ValueError, match="max_size"):
        majority_quorums_intersect(max_size=0)


def test_the_clock_is_injected() -> None:
    ticks = iter([10.0, 12.5])
    proof = majority_quorums_intersect(max_size=1, clock=lambda: next(ticks))
    assert proof.seconds == 2.5


# --- the discharge machinery: it must not be fooled ----------------------------------------


def _ints(*names: str) -> list[Any]:
    ctx = z3.Context()
    return [z3.Int(n, ctx) for n in names]


def test_contradictory_premises_prove_nothing() -> None:
    (x,) = _ints("x")
    vacuous = Obligation("x", (x > 1, x < 0), x == 42, lambda m: (True, ""))
    proof = discharge("vacuous", "x is 42", [vacuous], bounds="none")
    assert proof.result is Verdict.UNKNOWN
    assert "contradict" in proof.detail


def test_a_model_that_does_not_replay_is_not_a_counterexample() -> None:
    (x,) = _ints("x")
    bogus = Obligation("x", (x > 0,), x > 5, lambda m: (False, "no such thing"))
    proof = discharge("bogus", "x > 5", [bogus], bounds="none")
    assert proof.result is Verdict.UNKNOWN
    assert proof.counterexample is None
    assert "does not replay" in proof.detail


def test_counterexamples_are_shrunk() -> None:
    (x,) = _ints("x")
    ob = Obligation(
        "x",
        (x > 3,),
        x > 1000,
        lambda m: (True, f"x = {m.eval(x)}"),
        smaller=lambda m: x < m.eval(x),
    )
    proof = discharge("shrink", "x > 1000", [ob], bounds="none")
    assert proof.result is Verdict.REFUTED
    assert proof.counterexample == "x: x = 4"


def test_an_undecided_query_is_unknown() -> None:
    # x^3 + y^3 = z^3 has no positive solution (Fermat, n = 3): beyond Z3's
    # nonlinear arithmetic, so it gives up (at the latest at the timeout).
    x, y, z = _ints("x", "y", "z")
    fermat = Obligation(
        "cubes",
        (x > 0, y > 0, z > 0),
        x * x * x + y * y * y != z * z * z,
        lambda m: (True, ""),
    )
    proof = discharge("fermat", "no cubes", [fermat], bounds="none", timeout_ms=300)
    assert proof.result is Verdict.UNKNOWN
    assert "unknown" in proof.detail


def test_the_first_failure_stops_the_proof() -> None:
    (x,) = _ints("x")
    ok = Obligation("ok", (x > 0,), x >= 0, lambda m: (True, ""))
    bad = Obligation("bad", (x > 0,), x > 1, lambda m: (True, f"x = {m.eval(x)}"))
    proof = discharge("first", "x > 1", [ok, bad, ok], bounds="none")
    assert proof.result is Verdict.REFUTED and proof.queries == 2
    assert proof.counterexample == "bad: x = 1"


# --- the plain-Python rule the counterexamples replay against ------------------------------


@given(st.lists(st.integers(0, 20), min_size=1, max_size=9))
def test_replay_rule_is_the_largest_index_a_majority_has(matches: list[int]) -> None:
    committed = committed_at(matches, etcd_position)
    assert committed is not None
    assert majority_has(matches, committed)
    assert not majority_has(matches, committed + 1)
    upper = committed_at(matches, upper_median)
    assert upper is not None
    if len(matches) % 2 == 1:
        assert upper == committed


@given(
    st.lists(st.integers(0, 20), min_size=1, max_size=7),
    st.lists(st.integers(0, 20), min_size=1, max_size=7),
)
def test_raft_quorum_uses_the_proved_rule(old: list[int], new: list[int]) -> None:
    # The proofs are about etcd's formula; this ties kubeproof.raft's quorum to it.
    quorum = pytest.importorskip("kubeproof.raft.quorum")
    ids_old = range(1, len(old) + 1)
    ids_new = range(100, 100 + len(new))
    acked = dict(zip(ids_old, old, strict=True)) | dict(zip(ids_new, new, strict=True))
    c_old, c_new = committed_at(old, etcd_position), committed_at(new, etcd_position)
    assert c_old is not None and c_new is not None
    assert quorum.majority_committed_index(ids_old, acked.get) == c_old
    joint = quorum.JointConfig(incoming=frozenset(ids_new), outgoing=frozenset(ids_old))
    assert joint.committed_index(acked.get) == min(c_old, c_new)


# --- the command --------------------------------------------------------------------------


def test_cli_json_for_one_proof() -> None:
    result = CliRunner().invoke(prove, ["--only", "majority-quorums-intersect-all-sizes", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] is True
    [entry] = report["proofs"]
    assert entry["name"] == "majority-quorums-intersect-all-sizes"
    assert entry["result"] == "proved" and entry["expected"] == "proved"
    assert entry["seconds"] >= 0 and entry["queries"] == 3


def test_cli_table_with_teeth() -> None:
    result = CliRunner().invoke(prove, ["--only", "majority-quorums-intersect", "--teeth"])
    assert result.exit_code == 0, result.output
    assert "majority-quorums-intersect" in result.output
    assert "half-quorums-intersect" in result.output
    assert "proved" in result.output and "refuted*" in result.output
    assert "counterexample at n = 2" in result.output
    assert "2 of 2 as expected" in result.output


def test_cli_unknown_name_is_bad_input() -> None:
    result = CliRunner().invoke(prove, ["--only", "quorums-are-nice"])
    assert result.exit_code == 2
    assert "quorums-are-nice" in result.output
    assert "majority-quorums-intersect" in result.output  # the known names are listed


def test_cli_exits_1_when_a_claim_is_not_proved(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(proofs, "PROOFS", {"half": lambda: half_quorums_intersect(max_size=2)})
    result = CliRunner().invoke(prove, ["--json"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.output)
    assert report["ok"] is False
    assert report["proofs"][0]["result"] == "refuted"
    assert "Q1 = {1}" in report["proofs"][0]["counterexample"]


def test_prove_is_registered() -> None:
    from kubeproof.cli import commands

    assert "prove" in [command.name for command in commands.all_commands()]
