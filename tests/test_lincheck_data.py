"""Acceptance: every shared Porcupine/Jepsen history gets its known verdict.

The histories and VERDICTS.tsv live in ../shared/testdata/porcupine (beside
the repository).  If they are missing the suite fails, it does not skip:
this is the test that says the checker is right.  For every verdict the
evidence is checked too: a linearizable history's linearization is replayed
independently, a violation's witness is shown to be a genuine, minimal
certificate.
"""

from __future__ import annotations

import pytest
from attrs import evolve

from kubeproof.models.lincheck import (
    History,
    HistoryFormatError,
    Verdict,
    check,
    get_model,
    minimize,
    parse_history,
    partition,
)
from kubeproof.models.lincheck.witness import _relax

from .lincheck_support import DATA, require_data, valid_linearization, verdict_rows

ROWS = verdict_rows()


def test_shared_histories_are_present() -> None:
    data = require_data()
    assert len(ROWS) >= 108, f"VERDICTS.tsv in {data} lists only {len(ROWS)} verdicts"
    listed = {file for file, _, _ in ROWS} | {"etcd_095.log"}
    on_disk = {p.name for p in data.iterdir() if p.suffix in (".log", ".txt")}
    assert on_disk == listed, "every history on disk has a verdict, and vice versa"


@pytest.mark.parametrize(
    ("file", "expected", "model_name"), ROWS, ids=[f"{r[0]}-{r[2]}" for r in ROWS]
)
def test_verdict(file: str, expected: bool, model_name: str) -> None:
    model = get_model(model_name)
    parsed = parse_history((DATA / file).read_text(), file)
    result = check(parsed.history, model)
    assert result.linearizable is expected
    if expected:
        groups = partition(parsed.history, model)
        assert len(result.partitions) == len(groups)
        for r in result.partitions:
            sub = History(groups[r.key])
            assert valid_linearization(sub, model, r.linearization), r.key


def test_empty_history_file_is_refused() -> None:
    require_data()
    with pytest.raises(HistoryFormatError, match="empty"):
        parse_history((DATA / "etcd_095.log").read_text(), "etcd_095.log")


ILLEGAL_ROWS = [r for r in ROWS if not r[1] and r[2] != "kv-nopartition"]


@pytest.mark.parametrize(
    ("file", "model_name"), [(r[0], r[2]) for r in ILLEGAL_ROWS], ids=[r[0] for r in ILLEGAL_ROWS]
)
def test_witness_is_a_minimal_certificate(file: str, model_name: str) -> None:
    model = get_model(model_name)
    parsed = parse_history((DATA / file).read_text(), file)
    failure = check(parsed.history, model).failure
    assert failure is not None
    ops = partition(parsed.history, model)[failure.key]
    w = minimize(model, failure, ops)
    original = {o.id: o for o in ops}
    core = list(w.history)
    assert w.core, "a witness names at least one completed operation"
    assert {o.id for o in core} == set(w.core) | set(w.context)
    for o in core:
        was = original[o.id]
        if o.id in w.core:
            assert o == was and not o.pending
        else:
            # Context: pending as it was, or relaxed to pending (a write, or cut off).
            assert o == evolve(was, ret=None, output=None)
            cut_off = w.cut is not None and was.ret is not None and was.ret > w.cut
            assert was.pending or model.mutates(was.input, was.output) or cut_off
        if w.cut is not None:
            assert o.call <= w.cut, "the cut keeps only ops called by then"
    # It is a genuine certificate: not linearizable on its own ...
    assert check(History(core), model).verdict is Verdict.ILLEGAL
    # ... and 1-minimal: relaxing any one completed op of it makes it linearizable.
    if w.minimal:
        for i in w.core:
            relaxed = [(_relax(o, model) if o.id == i else o) for o in core]
            assert check(History(o for o in relaxed if o is not None), model).verdict is not (
                Verdict.ILLEGAL
            ), f"op {i} is not needed in the witness of {file}"
