"""Kubernetes quantities as apimachinery parses and rounds them (pinned: kube v1.32)."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubeproof.sched.quantity import (
    QuantityError,
    milli_value,
    parse_quantity,
    resource_value,
    value,
)


@pytest.mark.parametrize(
    ("text", "exact"),
    [
        ("100m", Fraction(1, 10)),
        ("1", Fraction(1)),
        ("1.5", Fraction(3, 2)),
        ("0.1", Fraction(1, 10)),
        (".5", Fraction(1, 2)),
        ("5.", Fraction(5)),
        ("1e3", Fraction(1000)),
        ("1E3", Fraction(1000)),
        ("2e-3", Fraction(2, 1000)),
        ("1Ki", Fraction(1024)),
        ("1Gi", Fraction(2**30)),
        ("500Mi", Fraction(500 * 2**20)),
        ("1.5Gi", Fraction(3 * 2**29)),
        ("1k", Fraction(1000)),
        ("1M", Fraction(10**6)),
        ("1E", Fraction(10**18)),  # exa, not an exponent
        ("1n", Fraction(1, 10**9)),
        ("1u", Fraction(1, 10**6)),
        ("+2", Fraction(2)),
        ("-2", Fraction(-2)),
        (3, Fraction(3)),
        (0.5, Fraction(1, 2)),
    ],
)
def test_parse(text: object, exact: Fraction) -> None:
    assert parse_quantity(text) == exact


@pytest.mark.parametrize(
    ("text", "milli", "units"),
    [
        ("100m", 100, 1),  # Value() rounds up: 0.1 -> 1
        ("1.5", 1500, 2),
        ("0.1", 100, 1),
        ("0.0001", 1, 1),  # MilliValue() rounds up too: 0.1m -> 1m
        ("1Gi", 2**30 * 1000, 2**30),
        ("0.3Ki", 307200, 308),  # 307.2 bytes -> 308
        ("250m", 250, 1),
        ("2", 2000, 2),
        ("-0.5", -500, -1),  # away from zero
    ],
)
def test_rounding(text: str, milli: int, units: int) -> None:
    assert milli_value(text) == milli
    assert value(text) == units


def test_resource_value_uses_milli_for_cpu_only() -> None:
    assert resource_value("cpu", "0.5") == 500
    assert resource_value("memory", "0.5") == 1
    assert resource_value("nvidia.com/gpu", "2") == 2


@pytest.mark.parametrize(
    "text", ["", "abc", "1Zi", "1 Gi", "1.2.3", "--1", "1e", "1ee3", "Gi", True, None, [1]]
)
def test_invalid(text: object) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(text)


@given(st.integers(min_value=0, max_value=10**12), st.sampled_from(["", "m", "k", "Ki", "Mi"]))
def test_integer_quantities_are_exact(n: int, suffix: str) -> None:
    scales: dict[str, Fraction] = {
        "": Fraction(1),
        "m": Fraction(1, 1000),
        "k": Fraction(1000),
        "Ki": Fraction(1024),
        "Mi": Fraction(2**20),
    }
    scale = scales[suffix]
    assert parse_quantity(f"{n}{suffix}") == n * scale


@given(st.decimals(min_value=0, max_value=10**6, places=4, allow_nan=False))
def test_milli_value_is_ceiling_of_thousandths(d: object) -> None:
    text = str(d)
    exact = Fraction(text)
    m = milli_value(text)
    assert m - 1 < exact * 1000 <= m
