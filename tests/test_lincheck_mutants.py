"""The acceptance suite has teeth: each broken checker gets some shared verdict wrong."""

from __future__ import annotations

import pytest

from kubeproof.models.lincheck import get_model, parse_history

from .lincheck_support import DATA, require_data, verdict_rows
from .mutants.lincheck_mutants import MUTANTS, Checker


def first_wrong_verdict(checker: Checker) -> str | None:
    """The first shared history the checker gets wrong (the etcd ones first: they are small)."""
    rows = sorted(
        (r for r in verdict_rows() if r[2] != "kv-nopartition"),
        key=lambda r: not r[0].startswith("etcd"),
    )
    for file, expected, model_name in rows:
        parsed = parse_history((DATA / file).read_text(), file)
        # A mutant may search far longer than the real checker: give up (not caught) then.
        result = checker(parsed.history, get_model(model_name), budget=100_000)
        if result.linearizable is not None and result.linearizable != expected:
            return file
    return None


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutant_is_caught(name: str) -> None:
    require_data()
    assert first_wrong_verdict(MUTANTS[name]) is not None, f"the checker that {name} passes"


def test_the_real_checker_gets_every_verdict_right() -> None:
    from kubeproof.models.lincheck import check

    require_data()
    assert first_wrong_verdict(check) is None
