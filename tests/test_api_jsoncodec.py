"""The fast JSON codec of the read paths decodes exactly what `json.loads` does, and
encodes the same JSON value as `json.dumps`, including where orjson alone would not."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from kubeproof.api import jsoncodec

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()  # unbounded: orjson alone turns 2**64 and beyond into floats
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()  # includes lone surrogates, which orjson refuses
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def same(a: Any, b: Any) -> bool:
    """Equal with the same types all the way down (1 is not 1.0, True is not 1)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@given(VALUES)
def test_loads_is_json_loads(value: Any) -> None:
    for text in (json.dumps(value), json.dumps(value, ensure_ascii=False)):
        try:
            data = text.encode()
        except UnicodeEncodeError:
            data = text.encode("utf-8", "surrogatepass")
        try:
            expected = json.loads(data)
        except ValueError:
            continue
        assert same(jsoncodec.loads(data), expected)


@given(VALUES)
def test_dumps_is_the_same_json_value(value: Any) -> None:
    assert same(json.loads(jsoncodec.dumps(value)), json.loads(json.dumps(value)))


def test_the_cases_orjson_alone_gets_wrong_or_refuses() -> None:
    big = {"n": 2**70, "m": -(2**70), "s": "x" * 3}
    assert same(jsoncodec.loads(json.dumps(big).encode()), big)
    assert same(json.loads(jsoncodec.dumps(big)), big)
    lone = {"s": "\ud800"}
    assert same(jsoncodec.loads(json.dumps(lone).encode()), lone)
    assert same(json.loads(jsoncodec.dumps(lone)), lone)
    assert same(json.loads(jsoncodec.dumps({1: "a"})), {"1": "a"})
    nan = jsoncodec.loads(b'{"x": NaN}')["x"]
    assert isinstance(nan, float) and math.isnan(nan)
    # Key order and separators as json.dumps(separators=(",", ":")).
    assert jsoncodec.dumps({"b": 1, "a": [1, 2]}) == b'{"b":1,"a":[1,2]}'
