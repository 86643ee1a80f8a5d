"""Label selectors, node selectors and tolerations, compiled for matching.

Theory of operation
-------------------
Kubernetes has three small matching languages that the scheduler evaluates
millions of times: label selectors (`metav1.LabelSelector`, for pods),
node selectors (`v1.NodeSelector`, for nodes: labels and the
``metadata.name`` field) and tolerations against taints.  Each is compiled
once into a value with a `matches` method; the semantics are those of
k8s.io/apimachinery/pkg/labels and k8s.io/component-helpers (v1.32):

* A label selector's requirements are ANDed.  ``In`` needs the key present
  with a listed value; ``NotIn`` is true when the key is absent; ``Exists``
  and ``DoesNotExist`` test presence.  A *nil* selector matches nothing and
  an *empty* one everything (`LabelSelectorAsSelector`).
* A node selector ORs its terms and ANDs each term's requirements; an empty
  term matches nothing.  ``Gt``/``Lt`` compare the label and the value as
  64-bit integers; a label that is not an integer does not match.
* A toleration tolerates a taint when its effect is empty or equal, its key
  is empty or equal, and its operator is Exists or (Equal and) the values
  are equal (`ToleratesTaint`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Final

from .model import (
    LabelSelector,
    Node,
    NodeSelector,
    NodeSelectorRequirement,
    NodeSelectorTerm,
    Pod,
    Taint,
    Toleration,
)

__all__ = [
    "EVERYTHING",
    "NOTHING",
    "NodeSelectorMatcher",
    "RequiredNodeAffinity",
    "Selector",
    "compile_selector",
    "find_untolerated_taint",
    "tolerates",
    "tolerates_any",
]

_INT64 = re.compile(r"[+-]?[0-9]+")
_INT64_MAX: Final = 2**63 - 1


def _parse_int64(s: str) -> int | None:
    # strconv.ParseInt(s, 10, 64): optional sign, decimal digits, in range.
    if not _INT64.fullmatch(s):
        return None
    v = int(s)
    return v if -_INT64_MAX - 1 <= v <= _INT64_MAX else None


class Selector:
    """A compiled label selector."""

    __slots__ = ("empty", "equals", "exprs", "nothing")

    def __init__(
        self,
        equals: tuple[tuple[str, str], ...] = (),
        exprs: tuple[tuple[str, str, frozenset[str]], ...] = (),
        nothing: bool = False,
    ) -> None:
        self.equals = equals
        self.exprs = exprs
        self.nothing = nothing
        self.empty = not nothing and not equals and not exprs
        """`labels.Selector.Empty()`: true for the everything-selector only."""

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.nothing:
            return False
        for k, v in self.equals:
            if labels.get(k) != v:
                return False
        for k, op, values in self.exprs:
            present = k in labels
            if op == "In":
                if not present or labels[k] not in values:
                    return False
            elif op == "NotIn":
                if present and labels[k] in values:
                    return False
            elif op == "Exists":
                if not present:
                    return False
            elif present:  # DoesNotExist
                return False
        return True

    def __repr__(self) -> str:
        if self.nothing:
            return "Selector(nothing)"
        return f"Selector({self.equals!r}, {self.exprs!r})"


NOTHING: Final = Selector(nothing=True)
EVERYTHING: Final = Selector()


def compile_selector(
    sel: LabelSelector | None,
    extra: Sequence[tuple[str, str, frozenset[str]]] = (),
) -> Selector:
    """Compile a label selector; `extra` requirements (from matchLabelKeys) are ANDed in."""
    if sel is None:
        return NOTHING if not extra else Selector((), tuple(extra))
    equals = tuple(sorted(sel.match_labels.items()))
    exprs = tuple((r.key, r.operator, frozenset(r.values)) for r in sel.match_expressions)
    return Selector(equals, exprs + tuple(extra))


# --------------------------------------------------------------------------- nodes


def _req_matches(r: NodeSelectorRequirement, value: str | None) -> bool:
    op = r.operator
    if op == "In":
        return value is not None and value in r.values
    if op == "NotIn":
        return value is None or value not in r.values
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if value is None:
        return False
    have = _parse_int64(value)
    want = _parse_int64(r.values[0]) if r.values else None
    if have is None or want is None:
        return False
    return have > want if op == "Gt" else have < want


def term_matches(term: NodeSelectorTerm, node: Node) -> bool:
    """One node selector term: requirements ANDed; an empty term matches nothing."""
    if not term.match_expressions and not term.match_fields:
        return False
    labels = node.labels
    for r in term.match_expressions:
        if not _req_matches(r, labels.get(r.key)):
            return False
    return all(_req_matches(r, node.name) for r in term.match_fields)


class NodeSelectorMatcher:
    """A compiled `v1.NodeSelector` (terms ORed)."""

    __slots__ = ("terms",)

    def __init__(self, selector: NodeSelector) -> None:
        self.terms = selector.terms

    def matches(self, node: Node) -> bool:
        return any(term_matches(t, node) for t in self.terms)


class RequiredNodeAffinity:
    """`nodeaffinity.GetRequiredNodeAffinity`: a pod's nodeSelector AND its required terms."""

    __slots__ = ("label_selector", "node_selector", "trivial")

    def __init__(self, pod: Pod) -> None:
        self.label_selector: tuple[tuple[str, str], ...] = tuple(pod.node_selector.items())
        na = pod.affinity.node_affinity if pod.affinity else None
        self.node_selector = (
            NodeSelectorMatcher(na.required) if na is not None and na.required is not None else None
        )
        self.trivial = not self.label_selector and self.node_selector is None

    def matches(self, node: Node) -> bool:
        if self.trivial:
            return True
        labels = node.labels
        for k, v in self.label_selector:
            if labels.get(k) != v:
                return False
        return self.node_selector is None or self.node_selector.matches(node)


# --------------------------------------------------------------------------- taints


def tolerates(t: Toleration, taint: Taint) -> bool:
    """`Toleration.ToleratesTaint` (v1.32)."""
    if t.effect and t.effect != taint.effect:
        return False
    if t.key and t.key != taint.key:
        return False
    if t.operator in ("", "Equal"):
        return t.value == taint.value
    return t.operator == "Exists"


def tolerates_any(tolerations: Sequence[Toleration], taint: Taint) -> bool:
    return any(tolerates(t, taint) for t in tolerations)


def find_untolerated_taint(
    taints: Sequence[Taint], tolerations: Sequence[Toleration], effects: frozenset[str]
) -> Taint | None:
    """`FindMatchingUntoleratedTaint`: the first taint with one of `effects` not tolerated."""
    for taint in taints:
        if taint.effect in effects and not tolerates_any(tolerations, taint):
            return taint
    return None
