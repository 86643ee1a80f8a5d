"""Reading history files: the three formats, their meanings, and clear errors."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubeproof.models.lincheck import (
    History,
    HistoryFormatError,
    KvInput,
    Operation,
    RegisterInput,
    RegisterOutput,
    check,
    detect_format,
    dump_json_history,
    get_model,
    parse_history,
    parse_jepsen_etcd,
    parse_json_history,
    parse_porcupine_kv,
)
from kubeproof.models.lincheck.generate import kv_inputs, linearizable_history, register_inputs

JEPSEN = """\
INFO  jepsen.util - 0\t:invoke\t:read\tnil
INFO  jepsen.util - 1\t:invoke\t:write\t3
INFO  jepsen.util - 0\t:ok\t:read\tnil
INFO  jepsen.util - 2   :invoke :cas    [3 4]
INFO  jepsen.util - 1\t:info\t:write\t:timed-out
INFO  jepsen.util - 2   :fail   :cas    [3 4]
INFO  jepsen.util - :nemesis\t:info\t:start\tnil
INFO  jepsen.util - 3\t:invoke\t:read\tnil
INFO  jepsen.util - 3\t:fail\t:read\t:timed-out
INFO  jepsen.util - 4\t:invoke\t:cas\t[0 1]
"""


def test_jepsen_lines_mean_what_jepsen_means() -> None:
    h = parse_jepsen_etcd(JEPSEN, "t.log")
    ops = {o.id: o for o in h.operations}
    assert ops[1] == Operation(1, 0, 1, RegisterInput("read"), 3, RegisterOutput(True, None))
    # :info -> pending: may have happened, at any time after the call
    assert ops[2].pending and ops[2].input == RegisterInput("write", 3)
    # :fail :cas -> it ran and the compare was false (spaces as well as tabs)
    assert ops[4] == Operation(4, 2, 4, RegisterInput("cas", 3, 4), 6, RegisterOutput(False))
    # a timed-out read is pending too; an invoke the log never completes is pending
    assert ops[8].pending and ops[10].pending
    assert 7 not in ops  # the nemesis is not a client
    assert detect_format(JEPSEN) == "jepsen-etcd"


KV = """\
{:process 0, :type :invoke, :f :append, :key "0", :value "x 0 0 y"}
{:process 1, :type :invoke, :f :get, :key "0", :value nil}
{:process 0, :type :ok, :f :append, :key "0", :value "x 0 0 y"}
{:process 1, :type :ok, :f :get, :key "0", :value "x \\"q\\" y"}
{:process 2, :type :invoke, :f :put, :key "1", :value "v"}
{:process 2, :type :info, :f :put, :key "1", :value "v"}
{:process 3, :type :invoke, :f :put, :key "1", :value "w"}
{:process 3, :type :fail, :f :put, :key "1", :value "w"}
"""


def test_porcupine_kv_lines() -> None:
    h = parse_porcupine_kv(KV, "c.txt")
    ops = {o.id: o for o in h.operations}
    assert ops[1] == Operation(1, 0, 1, KvInput("append", "0", "x 0 0 y"), 3, None)
    assert ops[2] == Operation(2, 1, 2, KvInput("get", "0"), 4, 'x "q" y')
    assert ops[5].pending  # :info
    assert 7 not in ops  # :fail did not happen
    assert detect_format(KV) == "porcupine-kv"
    assert parse_history(KV, "c.txt").model == "kv"


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        (
            "INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO jepsen.util - 0 :ok",
            2,
            "Jepsen operation line",
        ),
        ("INFO  jepsen.util - 0\t:invoke\t:write\tx\n", 1, "write value must be an integer"),
        ("INFO  jepsen.util - 0\t:invoke\t:cas\t[1]\n", 1, "[expected new]"),
        ("INFO  jepsen.util - 0\t:ok\t:read\t1\n", 1, "never invoked"),
        (
            "INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:invoke\t:read\tnil\n",
            2,
            "still open",
        ),
        (
            "INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:ok\t:write\t1\n",
            2,
            ":read",
        ),
        ("INFO  jepsen.util - 0\t:invoke\t:frob\tnil\n", 1, "unknown function"),
        (
            '{:process 0, :type :invoke, :f :get, :key "0", :value nil}\n{:process 0}\n',
            2,
            "not a kv map",
        ),
        ('{:process 0, :type :invoke, :f :put, :key "0", :value nil}\n', 1, "needs a string"),
        ('{:process 0, :type :begin, :f :get, :key "0", :value nil}\n', 1, "unknown :type"),
        ("hello\n", 1, "unknown format"),
    ],
)
def test_malformed_lines_are_named(text: str, line: int, fragment: str) -> None:
    with pytest.raises(HistoryFormatError) as e:
        parse_history(text, "h.log")
    assert e.value.line == line
    assert f"h.log:{line}:" in str(e.value) and fragment in str(e.value)


def test_empty_input_is_an_error() -> None:
    with pytest.raises(HistoryFormatError, match="empty"):
        parse_history("\n\n", "x")


JSON = """\
{"format": "kubeproof-history", "version": 1, "model": "kv"}
{"id": 1, "client": 0, "call": 0, "return": 2.5, "input": {"op": "put", "key": "a", "value": "1"}, "output": null}
{"id": 2, "client": "c1", "call": 1, "return": 3, "input": {"op": "get", "key": "a"}, "output": "1"}
{"id": 3, "client": 2, "call": 1, "input": {"op": "append", "key": "a", "value": "2"}}
"""


def test_json_history() -> None:
    parsed = parse_history(JSON, "h.jsonl")
    assert parsed.format == "json" and parsed.model == "kv"
    ops = {o.id: o for o in parsed.history.operations}
    assert ops[1].ret == 2.5 and ops[2].client == "c1" and ops[3].pending
    assert check(parsed.history, get_model("kv")).linearizable is True


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ('{"format": "other"}\n', 1, "kubeproof-history"),
        (
            '{"format": "kubeproof-history", "version": 9, "model": "kv"}\n',
            1,
            "unsupported version",
        ),
        ('{"format": "kubeproof-history", "version": 1, "model": "nope"}\n', 1, "unknown model"),
        ('{"format": "kubeproof-history", "version": 1}\n{"client": 0}\n', 1, "give --model"),
        (
            '{"format": "kubeproof-history", "version": 1, "model": "kv"}\n{"client": 0, "call": 0\n',
            2,
            "invalid JSON",
        ),
        ('{"format": "kubeproof-history", "version": 1, "model": "kv"}\n[1]\n', 2, "JSON object"),
        (
            '{"format": "kubeproof-history", "version": 1, "model": "kv"}\n'
            '{"client": 0, "call": 0, "return": 1, "input": {"op": "get", "key": "a"}}\n',
            2,
            'needs "output"',
        ),
        (
            '{"format": "kubeproof-history", "version": 1, "model": "kv"}\n'
            '{"client": 0, "call": 3, "return": 1, "input": {"op": "get", "key": "a"}, "output": ""}\n',
            2,
            "before its call",
        ),
        (
            '{"format": "kubeproof-history", "version": 1, "model": "kv"}\n'
            '{"client": 0, "call": 0, "input": {"op": "zap", "key": "a"}}\n',
            2,
            "kv op must be one of",
        ),
        (
            '{"format": "kubeproof-history", "version": 1, "model": "kv"}\n'
            '{"id": 4, "client": 0, "call": 0, "input": {"op": "get", "key": "a"}}\n'
            '{"id": 4, "client": 0, "call": 1, "input": {"op": "get", "key": "a"}}\n',
            3,
            "already used on line 2",
        ),
        (
            '{"format": "kubeproof-history", "version": 1, "model": "kv"}\n'
            '{"client": 0, "call": 0, "input": {"op": "get", "key": "a"}, "colour": 1}\n',
            2,
            "unknown field",
        ),
    ],
)
def test_malformed_json_is_named(text: str, line: int, fragment: str) -> None:
    with pytest.raises(HistoryFormatError) as e:
        parse_json_history(text, "h.jsonl")
    assert e.value.line == line and fragment in str(e.value)


@given(seed=st.integers(0, 2**32 - 1), which=st.sampled_from(["kv", "etcd-register"]))
def test_json_round_trip(seed: int, which: str) -> None:
    model = get_model(which)
    inputs = kv_inputs() if which == "kv" else register_inputs()
    h = linearizable_history(model, inputs, random.Random(seed), operations=30, pending_rate=0.2)
    back = parse_json_history(dump_json_history(h, model), "x").history
    assert sorted(back.operations, key=lambda o: o.id) == sorted(h.operations, key=lambda o: o.id)


def test_history_rejects_duplicate_ids_and_pending_outputs() -> None:
    from kubeproof.models.lincheck import HistoryError

    with pytest.raises(HistoryError, match="duplicate"):
        History([Operation(1, 0, 0, None, 1, None), Operation(1, 0, 2, None, 3, None)])
    with pytest.raises(HistoryError, match="pending"):
        Operation(1, 0, 0, KvInput("get", "k"), None, "x")
