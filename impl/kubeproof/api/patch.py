"""PATCH bodies: JSON patch (RFC 6902), JSON merge patch (RFC 7386), strategic merge patch.

Theory of operation
-------------------
Each function takes the current object (JSON values) and the patch, and
returns the patched copy or raises `PatchError` with a message naming the
operation or field at fault.  Nothing is mutated in place.

JSON patch applies its operations in order (add, remove, replace, move,
copy, test) on JSON pointers (``~1`` is '/', ``~0`` is '~', ``-`` appends
to an array); any failure fails the whole patch.  Merge patch replaces
lists, merges objects and deletes keys whose patch value is null.

Strategic merge patch is kube's: like merge patch, except for the list
fields that carry a patch strategy in the built-in types, which merge
element by element on a merge key (containers by name, a container's ports
by containerPort, a service's ports by port, env by name, volumes by name,
volumeMounts by mountPath, ownerReferences by uid, conditions by type ...)
or, for lists of strings such as finalizers, as a set union.  The
directives ``$patch: replace|delete|merge`` (in an object, or as a list
element), ``$deleteFromPrimitiveList/<field>``, ``$setElementOrder/<field>``
(the order client-side ``kubectl apply`` sends) and ``$retainKeys`` are
honoured, so ``kubectl apply``'s three-way patches round-trip.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any


class PatchError(ValueError):
    pass


# ---------------------------------------------------------------------------
# JSON patch


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str):
        raise PatchError(f"path must be a string, got {path!r}")
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f'JSON pointer must start with "/": {path!r}')
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(container: list[Any], token: str, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise PatchError(f"invalid array index {token!r}")
    i = int(token)
    limit = len(container) if allow_end else len(container) - 1
    if i > limit:
        raise PatchError(f"array index {i} out of bounds")
    return i


def _walk(doc: Any, tokens: list[str], path: str) -> Any:
    """The value the pointer tokens lead to; PatchError naming `path` if none."""
    cur = doc
    for t in tokens:
        if isinstance(cur, dict):
            if t not in cur:
                raise PatchError(f"doc is missing path: {path!r}")
            cur = cur[t]
        elif isinstance(cur, list):
            cur = cur[_index(cur, t, False)]
        else:
            raise PatchError(f"doc is missing path: {path!r}")
    return cur


def _parent(doc: Any, tokens: list[str], path: str) -> Any:
    return _walk(doc, tokens[:-1], path)


def _get(doc: Any, path: str) -> Any:
    return _walk(doc, _pointer(path), path)


def _add(doc: Any, path: str, value: Any) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, True), value)
    else:
        raise PatchError(f"doc is missing path: {path!r}")
    return doc


def _remove(doc: Any, path: str) -> tuple[Any, Any]:
    tokens = _pointer(path)
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"unable to remove nonexistent key: {last}: missing value")
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_index(parent, last, False))
    raise PatchError(f"doc is missing path: {path!r}")


def json_patch(doc: Any, ops: Any) -> Any:
    if not isinstance(ops, list):
        raise PatchError("a JSON patch must be a list of operations")
    out = copy.deepcopy(doc)
    for i, op in enumerate(ops):
        if not isinstance(op, dict):
            raise PatchError(f"operation {i} is not an object")
        kind = op.get("op")
        path = op.get("path")
        if not isinstance(path, str):
            raise PatchError(f"operation {i} has no string path")
        if kind == "add":
            if "value" not in op:
                raise PatchError(f"operation {i} (add) has no value")
            out = _add(out, path, copy.deepcopy(op["value"]))
        elif kind == "remove":
            out, _ = _remove(out, path)
        elif kind == "replace":
            if "value" not in op:
                raise PatchError(f"operation {i} (replace) has no value")
            _get(out, path)
            tokens = _pointer(path)
            if not tokens:
                out = copy.deepcopy(op["value"])
            else:
                out, _ = _remove(out, path)
                out = _add(out, path, copy.deepcopy(op["value"]))
        elif kind in ("move", "copy"):
            src = op.get("from")
            if not isinstance(src, str):
                raise PatchError(f"operation {i} ({kind}) has no from")
            if kind == "move":
                if isinstance(path, str) and (path + "/").startswith(src + "/") and path != src:
                    raise PatchError(f"cannot move {src!r} into its own child {path!r}")
                out, value = _remove(out, src)
            else:
                value = copy.deepcopy(_get(out, src))
            out = _add(out, path, value)
        elif kind == "test":
            if "value" not in op:
                raise PatchError(f"operation {i} (test) has no value")
            if _get(out, path) != op["value"]:
                raise PatchError(f"testing value {path} failed: test failed")
        else:
            raise PatchError(f"Unexpected kind: {kind}")
    return out


# ---------------------------------------------------------------------------
# JSON merge patch


def merge_patch(doc: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(doc) if isinstance(doc, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


# ---------------------------------------------------------------------------
# Strategic merge patch

# Merge keys of list fields by field name; "" = a set of primitives.
_MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "ownerReferences": "uid",
    "conditions": "type",
    "finalizers": "",
    "schedulingGates": "name",
    "resourceClaims": "name",
    "podIPs": "ip",
    "hostIPs": "ip",
    "topologySpreadConstraints": "topologyKey",
    "addresses": "type",
}


def merge_key(kind: str, path: tuple[str, ...]) -> str | None:
    """The merge key of the list at ``path`` in ``kind`` ('' for a primitive set,
    None for a list that is replaced)."""
    if not path:
        return None
    name = path[-1]
    if name == "ports":
        if kind == "Service" and path == ("spec", "ports"):
            return "port"
        if len(path) >= 2 and path[-2] in ("containers", "initContainers", "ephemeralContainers"):
            return "containerPort"
        return None
    if name == "addresses" and path != ("status", "addresses"):
        return None
    if name == "finalizers" and path != ("metadata", "finalizers"):
        return None
    if name in ("conditions",) and path[0] != "status":
        return None
    return _MERGE_KEYS.get(name)


def strategic_merge_patch(kind: str, doc: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        raise PatchError("a strategic merge patch must be a JSON object")
    if not isinstance(doc, dict):
        raise PatchError("the object to patch is not a JSON object")
    return _merge_map(kind, doc, patch, ())


def _merge_map(
    kind: str, doc: Mapping[str, Any], patch: Mapping[str, Any], path: tuple[str, ...]
) -> Any:
    directive = patch.get("$patch")
    if directive == "delete":
        return _DELETE
    if directive == "replace":
        return _strip_directives(dict(patch))
    if directive not in (None, "merge"):
        raise PatchError(f"unknown patch type: {directive!r} in map")
    out = dict(doc)
    retain = patch.get("$retainKeys")
    orders: dict[str, list[Any]] = {}
    deletes: dict[str, list[Any]] = {}
    for k, v in patch.items():
        if k in ("$patch", "$retainKeys"):
            continue
        if k.startswith("$setElementOrder/"):
            if isinstance(v, list):
                orders[k.split("/", 1)[1]] = v
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            if not isinstance(v, list):
                raise PatchError(f"{k} must be a list")
            deletes[k.split("/", 1)[1]] = v
            continue
        if k.startswith("$"):
            raise PatchError(f"unknown directive {k!r}")
        if v is None:
            out.pop(k, None)
            continue
        sub = (*path, k)
        cur = out.get(k)
        if isinstance(v, dict):
            merged = _merge_map(kind, cur if isinstance(cur, dict) else {}, v, sub)
            if merged is _DELETE:
                out.pop(k, None)
            else:
                out[k] = merged
        elif isinstance(v, list):
            out[k] = _merge_list(kind, cur if isinstance(cur, list) else [], v, sub)
        else:
            out[k] = v
    for k, values in deletes.items():
        cur = out.get(k)
        if isinstance(cur, list):
            out[k] = [x for x in cur if x not in values]
    for k, order in orders.items():
        cur = out.get(k)
        if isinstance(cur, list):
            out[k] = _reorder(kind, cur, order, (*path, k))
    if isinstance(retain, list):
        out = {k: v for k, v in out.items() if k in retain}
    return out


class _Delete:
    pass


_DELETE: Any = _Delete()


def _strip_directives(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip_directives(v) for k, v in obj.items() if not k.startswith("$")}
    if isinstance(obj, list):
        return [_strip_directives(x) for x in obj]
    return obj


def _merge_list(kind: str, cur: list[Any], patch: list[Any], path: tuple[str, ...]) -> list[Any]:
    key = merge_key(kind, path)
    if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch):
        return [_strip_directives(x) for x in patch if not (isinstance(x, dict) and "$patch" in x)]
    if key is None:
        return [_strip_directives(x) for x in patch]
    if key == "":
        out = list(cur)
        for x in patch:
            if x not in out:
                out.append(x)
        return out
    out = [copy.deepcopy(x) for x in cur]
    for item in patch:
        if not isinstance(item, dict):
            raise PatchError(
                f"a list with merge key {key!r} at {'.'.join(path)} holds a non-object"
            )
        if key not in item:
            raise PatchError(f"map: {item!r} does not contain declared merge key: {key}")
        kv = item[key]
        idx = next((i for i, x in enumerate(out) if isinstance(x, dict) and x.get(key) == kv), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                out.pop(idx)
            continue
        if idx is None:
            out.append(_strip_directives(item))
        else:
            merged = _merge_map(kind, out[idx], item, path)
            if merged is _DELETE:
                out.pop(idx)
            else:
                out[idx] = merged
    return out


def _reorder(kind: str, items: list[Any], order: Sequence[Any], path: tuple[str, ...]) -> list[Any]:
    """$setElementOrder: the listed elements first, in that order, then the rest."""
    key = merge_key(kind, path)

    def ident(x: Any) -> Any:
        if key and isinstance(x, dict):
            return x.get(key)
        return x

    wanted = [ident(o) for o in order]
    first: list[Any] = []
    rest: list[Any] = []
    for x in items:
        (first if ident(x) in wanted else rest).append(x)
    first.sort(key=lambda x: wanted.index(ident(x)))
    return first + rest
