"""Label and field selectors, with apimachinery's grammar and errors.

Theory of operation
-------------------
A label selector is a comma-separated conjunction of requirements:

    key            key exists              !key           key does not exist
    key=v, key==v  key exists, equals v    key!=v         missing, or not v
    key in (a,b)   exists, one of them     key notin (a,b) missing, or none of them
    key>n, key<n   exists and is an integer greater / less than n

A field selector is a conjunction of ``field=v`` / ``field==v`` /
``field!=v`` over the fields a resource supports (kube's per-resource
field label conversion: ``metadata.name`` and ``metadata.namespace``
everywhere, plus e.g. ``spec.nodeName`` and ``status.phase`` on pods and the
``involvedObject.*`` fields on events).  An unsupported field is a 400, as
in kube.  Parsing is total: any text either parses or raises
`SelectorError` with a message naming what is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from attrs import frozen


class SelectorError(ValueError):
    pass


_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


@frozen
class Requirement:
    key: str
    op: str  # exists, !, =, !=, in, notin, gt, lt
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        has = self.key in labels
        v = labels.get(self.key)
        if self.op == "exists":
            return has
        if self.op == "!":
            return not has
        if self.op in ("=", "in"):
            return has and v in self.values
        if self.op in ("!=", "notin"):
            return not has or v not in self.values
        if self.op in ("gt", "lt"):
            if not has or v is None:
                return False
            try:
                n = int(v)
            except ValueError:
                return False
            bound = int(self.values[0])
            return n > bound if self.op == "gt" else n < bound
        raise AssertionError(self.op)


@frozen
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        lab = labels or {}
        return all(r.matches(lab) for r in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements


def _check_key(key: str) -> None:
    if not key or len(key) > 317 or not _KEY.match(key):
        raise SelectorError(f"unable to parse requirement: invalid label key {key!r}")
    name = key.rsplit("/", 1)[-1]
    if len(name) > 63:
        raise SelectorError(
            f"unable to parse requirement: invalid label key {key!r}: name part must be no more than 63 characters"
        )


def _check_value(value: str) -> None:
    if len(value) > 63 or not _VALUE.match(value):
        raise SelectorError(
            f"unable to parse requirement: invalid label value: {value!r}: a valid label must be "
            "an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
            "start and end with an alphanumeric character"
        )


def _split_top(text: str) -> list[str]:
    """Splits on commas outside parentheses."""
    out: list[str] = []
    depth = 0
    cur: list[str] = []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise SelectorError(f"found ')', expected: identifier in {text!r}")
        if ch == "," and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth != 0:
        raise SelectorError(f"found end of string, expected: ')' in {text!r}")
    out.append("".join(cur))
    return out


_SET = re.compile(r"^\s*(\S+?)\s+(in|notin)\s*\((.*)\)\s*$")


def parse_label_selector(text: str) -> LabelSelector:
    text = text.strip()
    if not text:
        return LabelSelector()
    reqs: list[Requirement] = []
    for part in _split_top(text):
        p = part.strip()
        if not p:
            raise SelectorError(f"found ',', expected: identifier in {text!r}")
        m = _SET.match(p)
        if m:
            key, op, inner = m.group(1), m.group(2), m.group(3)
            _check_key(key)
            values = tuple(v.strip() for v in inner.split(",")) if inner.strip() else ()
            if not values:
                raise SelectorError(
                    f"for 'in', 'notin' operators, values set can't be empty: {p!r}"
                )
            for v in values:
                _check_value(v)
            reqs.append(Requirement(key, op, tuple(sorted(set(values)))))
            continue
        if p.startswith("!"):
            key = p[1:].strip()
            _check_key(key)
            reqs.append(Requirement(key, "!"))
            continue
        for sym, op in (("==", "="), ("!=", "!="), ("=", "="), (">", "gt"), ("<", "lt")):
            if sym in p:
                key, _, value = p.partition(sym)
                key, value = key.strip(), value.strip()
                _check_key(key)
                if op in ("gt", "lt"):
                    try:
                        int(value)
                    except ValueError:
                        raise SelectorError(
                            f"unable to parse requirement: for 'Gt', 'Lt' operators, the value "
                            f"must be an integer: {value!r}"
                        ) from None
                else:
                    _check_value(value)
                reqs.append(Requirement(key, op, (value,)))
                break
        else:
            if " " in p:
                raise SelectorError(f"unable to parse requirement: {p!r}")
            _check_key(p)
            reqs.append(Requirement(p, "exists"))
    return LabelSelector(tuple(reqs))


def selector_from_match(spec: Mapping[str, Any] | None) -> LabelSelector:
    """A metav1.LabelSelector (matchLabels / matchExpressions) as a selector."""
    if not spec:
        return LabelSelector()
    reqs: list[Requirement] = []
    for k, v in sorted((spec.get("matchLabels") or {}).items()):
        reqs.append(Requirement(str(k), "=", (str(v),)))
    for e in spec.get("matchExpressions") or []:
        op = str(e.get("operator", ""))
        key = str(e.get("key", ""))
        values = tuple(str(x) for x in (e.get("values") or ()))
        mapped = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}.get(op)
        if mapped is None:
            raise SelectorError(f"{op!r} is not a valid label selector operator")
        reqs.append(Requirement(key, mapped, values))
    return LabelSelector(tuple(reqs))


# ---------------------------------------------------------------------------
# Field selectors


@frozen
class FieldRequirement:
    field: str
    op: str  # = or !=
    value: str


@frozen
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, fields: Mapping[str, str]) -> bool:
        for r in self.requirements:
            v = fields.get(r.field, "")
            if (v == r.value) != (r.op == "="):
                return False
        return True

    def value_of(self, name: str) -> str | None:
        """The value an equality requirement on ``name`` pins, if any."""
        for r in self.requirements:
            if r.field == name and r.op == "=":
                return r.value
        return None


def _unescape(v: str) -> str:
    # apimachinery escapes '\', ',' and '=' with a backslash.
    out: list[str] = []
    i = 0
    while i < len(v):
        ch = v[i]
        if ch == "\\" and i + 1 < len(v):
            out.append(v[i + 1])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def parse_field_selector(text: str, supported: frozenset[str]) -> FieldSelector:
    text = text.strip()
    if not text:
        return FieldSelector()
    reqs: list[FieldRequirement] = []
    for part in re.split(r"(?<!\\),", text):
        p = part.strip()
        if not p:
            raise SelectorError(f"invalid selector: {text!r}; can't understand {part!r}")
        for sym, op in (("==", "="), ("!=", "!="), ("=", "=")):
            if sym in p:
                name, _, value = p.partition(sym)
                name = name.strip()
                if name not in supported:
                    raise SelectorError(f"field label not supported: {name}")
                reqs.append(FieldRequirement(name, op, _unescape(value.strip())))
                break
        else:
            raise SelectorError(f"invalid selector: {text!r}; can't understand {p!r}")
    return FieldSelector(tuple(reqs))


def _get(obj: Mapping[str, Any], path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, Mapping):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


_COMMON = ("metadata.name", "metadata.namespace")
_EXTRA: dict[str, tuple[str, ...]] = {
    "pods": (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    "events": (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
    "namespaces": ("status.phase",),
    "nodes": ("spec.unschedulable",),
    "replicasets": ("status.replicas",),
    "services": ("spec.clusterIP", "spec.type"),
}


def field_set(plural: str) -> frozenset[str]:
    return frozenset(_COMMON + _EXTRA.get(plural, ()))


def object_fields(plural: str, obj: Mapping[str, Any]) -> dict[str, str]:
    """The selectable fields of an object (kube's per-resource GetAttrs)."""
    out = {f: _get(obj, f) for f in field_set(plural)}
    if plural == "events":
        out["source"] = _get(obj, "source.component") or _get(obj, "reportingComponent")
    if plural == "nodes" and out["spec.unschedulable"] == "":
        out["spec.unschedulable"] = "false"
    if plural == "pods" and out["spec.hostNetwork"] == "":
        out["spec.hostNetwork"] = "false"
    return out


Matcher = Callable[[Mapping[str, Any]], bool]


def matcher(plural: str, labels: LabelSelector, fields: FieldSelector) -> Matcher:
    def match(obj: Mapping[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        if not labels.matches(meta.get("labels") or {}):
            return False
        return fields.empty or fields.matches(object_fields(plural, obj))

    return match
