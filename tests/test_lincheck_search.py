"""Properties of the linearizability search, against a brute-force oracle.

The search prunes hard (memoization with dominance, forced reads, pending
operations used in canonical order, dead-end hints, simplification); each
rule is argued sound in the code, and these tests check the argument:
tiny random histories, including nonsense outputs and timeouts, get the
same verdict as trying every order.  Larger generated histories are
linearizable by construction, and stay so; one stale read makes them not.
"""

from __future__ import annotations

import random

from attrs import evolve
from hypothesis import given, settings
from hypothesis import strategies as st

from kubeproof.models.lincheck import (
    History,
    KvInput,
    Operation,
    RegisterInput,
    RegisterOutput,
    Verdict,
    check,
    get_model,
    partition,
)
from kubeproof.models.lincheck.generate import kv_inputs, linearizable_history, register_inputs

from .lincheck_support import brute_force, valid_linearization

# --- tiny histories vs brute force -------------------------------------------

kv_values = st.sampled_from(["a", "b", "ab", ""])
kv_outputs = st.sampled_from(["", "a", "b", "ab", "ba", "aab", "abab", "bb"])
reg_values = st.sampled_from([0, 1, 2])


@st.composite
def kv_op(draw: st.DrawFn, keys: str) -> tuple[KvInput, str | None]:
    key = draw(st.sampled_from(keys))
    op = draw(st.sampled_from(["get", "get", "put", "append", "append"]))
    if op == "get":
        return KvInput("get", key), draw(kv_outputs)
    return KvInput("put" if op == "put" else "append", key, draw(kv_values)), None


@st.composite
def register_op(draw: st.DrawFn) -> tuple[RegisterInput, RegisterOutput]:
    op = draw(st.sampled_from(["read", "write", "cas"]))
    if op == "read":
        return RegisterInput("read"), RegisterOutput(True, draw(st.none() | reg_values))
    if op == "write":
        return RegisterInput("write", draw(reg_values)), RegisterOutput(True)
    return RegisterInput("cas", draw(reg_values), draw(reg_values)), RegisterOutput(
        draw(st.booleans())
    )


@st.composite
def tiny_history(draw: st.DrawFn, op_strategy: st.SearchStrategy[tuple[object, object]]) -> History:
    ops = []
    for i in range(draw(st.integers(1, 7))):
        inp, out = draw(op_strategy)
        call = draw(st.integers(0, 12))
        if draw(st.integers(0, 3)) == 0:
            ops.append(Operation(i, i, call, inp))  # pending
        else:
            ops.append(Operation(i, i, call, inp, call + draw(st.integers(0, 6)), out))
    return History(ops)


MODEL_CASES = [
    ("kv", kv_op("k")),
    ("kv", kv_op("kj")),
    ("kv-nopartition", kv_op("kj")),
    ("etcd-register", register_op()),
]


# Cheap examples and the most important property: more than the ci default.
@settings(max_examples=300)
@given(data=st.data(), case=st.sampled_from(MODEL_CASES))
def test_verdict_equals_brute_force(
    data: st.DataObject, case: tuple[str, st.SearchStrategy[tuple[object, object]]]
) -> None:
    name, op_strategy = case
    model = get_model(name)
    history = data.draw(tiny_history(op_strategy))
    result = check(history, model)
    expected = all(brute_force(History(ops), model) for ops in partition(history, model).values())
    assert result.linearizable is expected
    if expected:
        groups = partition(history, model)
        for r in result.partitions:
            assert valid_linearization(History(groups[r.key]), model, r.linearization)


def test_a_write_of_the_current_value_is_not_forced_first() -> None:
    # Regression: treating "write 1 while the value is 1" as a read (forcing it
    # early, since it changes nothing there) loses the order where it runs
    # after write 2 and so feeds the cas below.
    m = get_model("etcd-register")
    ok = RegisterOutput(True)
    h = History(
        [
            Operation(1, "a", 4, RegisterInput("write", 1), 11, ok),
            Operation(2, "b", 5, RegisterInput("read"), 11, RegisterOutput(True, 1)),
            Operation(5, "a", 12, RegisterInput("write", 2), 13, ok),
            Operation(3, "b", 13, RegisterInput("write", 1), 20, ok),
            Operation(4, "b", 24, RegisterInput("cas", 1, 2), 30, ok),
            Operation(6, "b", 32, RegisterInput("cas", 1, 1), 36, RegisterOutput(False)),
        ]
    )
    assert check(h, m).linearizable is True
    assert brute_force(h, m)


def test_a_pending_op_used_early_does_not_hide_the_path_that_saves_it() -> None:
    # Regression for the dominance cache: (C, state) first reached having
    # spent the timed-out write(0) early must not prune the same (C, state)
    # reached with write(0) still available for the cas(0, 0) below.
    m = get_model("etcd-register")
    ok = RegisterOutput(True)
    h = History(
        [
            Operation(2, 2, 1, RegisterInput("cas", 2, 1)),
            Operation(0, 0, 2, RegisterInput("read")),
            Operation(6, 6, 2, RegisterInput("write", 7)),
            Operation(1, 1, 7, RegisterInput("write", 0)),
            Operation(3, 3, 7, RegisterInput("write", 2)),
            Operation(4, 4, 7, RegisterInput("cas", 2, 1), 8, ok),
            Operation(5, 5, 9, RegisterInput("cas", 0, 0), 10, ok),
        ]
    )
    assert brute_force(h, m)
    assert check(h, m).linearizable is True


def test_a_pending_put_used_early_does_not_hide_the_path_that_saves_it() -> None:
    m = get_model("kv")
    h = History(
        [
            Operation(2, 2, 5, KvInput("append", "k", "b")),
            Operation(0, 0, 6, KvInput("get", "k"), 7, "bb"),
            Operation(4, 4, 6, KvInput("put", "k", "b")),
            Operation(1, 1, 10, KvInput("put", "k", "a"), 10, None),
            Operation(3, 3, 10, KvInput("put", "k", "a"), 10, None),
            Operation(5, 5, 10, KvInput("put", "k", ""), 14, None),
        ]
    )
    assert brute_force(h, m)
    assert check(h, m).linearizable is True


# --- generated histories -----------------------------------------------------

GENERATORS = [
    ("kv", kv_inputs(keys=3, put_rate=0.05)),
    ("kv", kv_inputs(keys=1, put_rate=0.1)),
    ("etcd-register", register_inputs(values=5)),
    ("etcd-register", register_inputs(values=50)),
]


@given(
    seed=st.integers(0, 2**32 - 1),
    case=st.sampled_from(GENERATORS),
    operations=st.integers(1, 120),
    clients=st.integers(1, 8),
    pending_rate=st.sampled_from([0.0, 0.1, 0.3]),
)
def test_generated_histories_are_linearizable(
    seed: int, case: tuple[str, object], operations: int, clients: int, pending_rate: float
) -> None:
    name, inputs = case
    model = get_model(name)
    history = linearizable_history(
        model,
        inputs,  # type: ignore[arg-type]
        random.Random(seed),
        clients=clients,
        operations=operations,
        pending_rate=pending_rate,
    )
    result = check(history, model, budget=200_000)
    assert result.linearizable is True


@given(seed=st.integers(0, 2**32 - 1), operations=st.integers(1, 60))
def test_sequential_histories_are_linearizable(seed: int, operations: int) -> None:
    # One client, no overlap: the only order is the real-time one.
    model = get_model("etcd-register")
    history = linearizable_history(
        model, register_inputs(), random.Random(seed), clients=1, operations=operations
    )
    result = check(history, model)
    assert result.linearizable is True
    expected = tuple(o.id for o in sorted(history.operations, key=lambda o: o.call))
    assert result.partitions[0].linearization == expected


def _stale_read(history: History) -> History | None:
    """Make one get return an older value: one an append it follows had not seen."""
    ops = sorted(history.operations, key=lambda o: o.call)
    for r in ops:
        if r.pending or r.input.op != "get":
            continue
        for a in ops:
            if (
                not a.pending
                and a.input.op == "append"
                and a.input.key == r.input.key
                and a.precedes(r)
                and r.output.endswith(a.input.value)
            ):
                stale = r.output[: -len(a.input.value)]
                return History(evolve(o, output=stale) if o.id == r.id else o for o in ops)
    return None


@given(
    seed=st.integers(0, 2**32 - 1),
    operations=st.integers(4, 80),
    clients=st.integers(1, 6),
    pending_rate=st.sampled_from([0.0, 0.2]),
)
def test_an_injected_stale_read_is_caught(
    seed: int, operations: int, clients: int, pending_rate: float
) -> None:
    # Appends only (no puts) with unique values: a get after an append
    # returned must contain it, so dropping it from the get's value is a
    # stale read no order can explain.
    model = get_model("kv")
    history = linearizable_history(
        model,
        kv_inputs(keys=2, put_rate=0.0),
        random.Random(seed),
        clients=clients,
        operations=operations,
        pending_rate=pending_rate,
    )
    bad = _stale_read(history)
    if bad is None:
        return  # no get followed a completed append in this history
    result = check(bad, model, budget=200_000)
    assert result.verdict is Verdict.ILLEGAL


def test_stale_register_read_is_caught() -> None:
    m = get_model("etcd-register")
    ok = RegisterOutput(True)
    h = History(
        [
            Operation(0, 0, 0, RegisterInput("write", 1), 1, ok),
            Operation(1, 0, 2, RegisterInput("write", 2), 3, ok),
            Operation(2, 1, 4, RegisterInput("read"), 5, RegisterOutput(True, 1)),
            Operation(3, 2, 0, RegisterInput("write", 3)),  # timed out: no help
        ]
    )
    r = check(h, m)
    assert r.linearizable is False
    assert r.failure is not None and 2 in r.failure.stuck


# --- budget and stop ---------------------------------------------------------


def test_budget_exhaustion_is_unknown() -> None:
    model = get_model("kv")
    history = linearizable_history(
        model, kv_inputs(keys=1), random.Random(7), clients=6, operations=200
    )
    assert check(history, model).linearizable is True
    tight = check(history, model, budget=3)
    assert tight.verdict is Verdict.UNKNOWN and tight.linearizable is None


def test_should_stop_is_obeyed() -> None:
    model = get_model("kv")
    history = linearizable_history(model, kv_inputs(keys=4), random.Random(3), operations=50)
    calls = []

    def stop() -> bool:
        calls.append(1)
        return True

    assert check(history, model, should_stop=stop).verdict is Verdict.UNKNOWN
    assert calls


def test_pending_only_history_is_linearizable() -> None:
    model = get_model("kv")
    h = History([Operation(0, 0, 0, KvInput("append", "k", "x"))])
    assert check(h, model).linearizable is True
    assert check(History([]), model).linearizable is True
