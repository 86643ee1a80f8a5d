"""Kubernetes resource quantities: parsing and rounding, as apimachinery does.

Theory of operation
-------------------
A quantity is a decimal or binary multiple of a signed number, in the grammar
of k8s.io/apimachinery/pkg/api/resource (kube-scheduler v1.32 reads it through
that package)::

    quantity  ::= signed-number suffix
    number    ::= digits | digits "." digits | digits "." | "." digits
    suffix    ::= binarySI | decimalSI | ("e" | "E") signed-integer
    binarySI  ::= Ki | Mi | Gi | Ti | Pi | Ei
    decimalSI ::= n | u | m | "" | k | M | G | T | P | E

We keep the exact rational value (a `Fraction`), so no digit is lost, and
round only where Kubernetes does: `Quantity.Value()` and `MilliValue()`
round *up*, away from zero, to the nearest integer of their scale.  The
scheduler reads CPU with `MilliValue()` (so ``0.0001`` CPU is ``1m``) and
every other resource with `Value()` (so ``0.5`` bytes is ``1``).

A YAML document may spell a quantity as a number (``cpu: 1`` or
``cpu: 0.5``); the API server parses the number's literal text, and so do we.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

__all__ = [
    "QuantityError",
    "milli_value",
    "parse_quantity",
    "quantity_text",
    "resource_value",
    "value",
]


class QuantityError(ValueError):
    """A string that is not a Kubernetes quantity."""


_BINARY = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
_DECIMAL = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 10**3),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}
_NUMBER = re.compile(r"([+-]?)(\d+\.?\d*|\.\d+)(.*)", re.DOTALL)
_EXPONENT = re.compile(r"[eE]([+-]?\d+)")


def quantity_text(raw: object) -> str:
    """The literal text of a quantity as it appears in YAML or JSON.

    Strings pass through; ints and floats become the text the API server
    would have parsed; anything else (a bool, a list, null) is an error.
    """
    if isinstance(raw, bool) or raw is None:
        raise QuantityError(f"quantity must be a string or a number, not {raw!r}")
    if isinstance(raw, int):
        return str(raw)
    if isinstance(raw, float):
        if not math.isfinite(raw):
            raise QuantityError(f"quantity must be finite, not {raw!r}")
        return repr(raw)
    if isinstance(raw, str):
        return raw
    raise QuantityError(f"quantity must be a string or a number, not {type(raw).__name__}")


def parse_quantity(raw: object) -> Fraction:
    """The exact value of a quantity (``"100m"`` is 1/10, ``"1Ki"`` is 1024)."""
    text = quantity_text(raw)
    if text == "":
        raise QuantityError("quantity is empty")
    match = _NUMBER.fullmatch(text)
    if match is None:
        raise QuantityError(f"quantity {text!r} does not start with a number")
    sign, digits, suffix = match.groups()
    number = Fraction(digits)
    if sign == "-":
        number = -number
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    exponent = _EXPONENT.fullmatch(suffix)
    if exponent is None:
        raise QuantityError(f"quantity {text!r} has an unknown suffix {suffix!r}")
    power = int(exponent.group(1))
    if abs(power) > 10_000:
        # apimachinery keeps the exponent in an int32 scale; refuse absurd
        # exponents rather than build a huge integer.
        raise QuantityError(f"quantity {text!r} has an exponent out of range")
    return number * Fraction(10) ** power


def _round_away(x: Fraction) -> int:
    # Quantity.Value/MilliValue: "rounded up to the nearest integer away from 0".
    return math.ceil(x) if x >= 0 else -math.ceil(-x)


def value(raw: object) -> int:
    """`Quantity.Value()`: the quantity in units, rounded up away from zero."""
    return _round_away(parse_quantity(raw))


def milli_value(raw: object) -> int:
    """`Quantity.MilliValue()`: the quantity in thousandths, rounded up away from zero."""
    return _round_away(parse_quantity(raw) * 1000)


def resource_value(name: str, raw: object) -> int:
    """A resource amount in the integer base unit the scheduler keeps.

    CPU in milli-CPU, everything else (memory, ephemeral-storage, pods,
    hugepages, extended resources) in units, as `framework.Resource.Add` does.
    """
    return milli_value(raw) if name == "cpu" else value(raw)
