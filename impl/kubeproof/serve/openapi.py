"""OpenAPI v3 documents generated from the resource registry.

Theory of operation
-------------------
``GET /openapi/v3`` lists one document per group-version, each with a
``serverRelativeURL`` that carries a hash of its content (clients cache by
it).  ``GET /openapi/v3/api/v1`` (or ``.../apis/G/V``) is that document:
one path item per collection, object and subresource, each operation with
kube's ``x-kubernetes-action`` and ``x-kubernetes-group-version-kind``.

What kubectl 1.32 takes from them:

* ``apply``/``create``/``replace`` with default validation
  (``--validate=strict``) decide that the server validates fields itself
  when the object's PATCH operation lists a ``fieldValidation`` parameter;
  they then send ``fieldValidation=Strict`` and skip client-side schema
  validation.  Without these documents apply fails ("failed to download
  openapi").
* ``apply`` on an existing object looks for a component schema tagged with
  the object's GVK to compute a strategic merge patch.  The documents here
  carry no such schemas on purpose: kubectl then falls back to its own
  compiled-in Go types, which hold the exact patch metadata (merge keys,
  patch strategies) of the built-in kinds; a partial schema here would
  yield worse patches than none.  ``kubectl explain`` therefore has nothing
  to show.

``/openapi/v2`` is not served (kubectl tolerates its 404).
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from typing import Any

from kubeproof.api import RESOURCES

__all__ = ["document", "gv_path", "index"]

PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)


def _query(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "description": description,
        "schema": {"type": "string", "uniqueItems": True},
    }


_DRY_RUN = _query("dryRun", "When present, indicates that modifications should not be persisted.")
_FIELD_MANAGER = _query("fieldManager", "A name associated with the actor making these changes.")
_FIELD_VALIDATION = _query(
    "fieldValidation",
    "How the server treats unknown or duplicate fields: Ignore, Warn or Strict.",
)
_FORCE = {
    "name": "force",
    "in": "query",
    "description": "Force apply requests to take ownership of conflicting fields.",
    "schema": {"type": "boolean", "uniqueItems": True},
}
_WRITE_PARAMS = [_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION]
_LIST_PARAMS = [
    _query("labelSelector", "A selector on labels."),
    _query("fieldSelector", "A selector on fields."),
    {"name": "limit", "in": "query", "schema": {"type": "integer", "uniqueItems": True}},
    _query("continue", "The continue token of a previous page."),
    _query("resourceVersion", "Which resource version to read at."),
    {"name": "watch", "in": "query", "schema": {"type": "boolean", "uniqueItems": True}},
    {"name": "timeoutSeconds", "in": "query", "schema": {"type": "integer", "uniqueItems": True}},
    {"name": "allowWatchBookmarks", "in": "query", "schema": {"type": "boolean"}},
]


def _path_param(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string", "uniqueItems": True},
    }


def _body(types: tuple[str, ...]) -> dict[str, Any]:
    return {"content": {t: {"schema": {"type": "object"}} for t in types}, "required": True}


def _op(action: str, op_id: str, gvk: dict[str, str], params: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "operationId": op_id,
        "parameters": params,
        "responses": {"200": {"description": "OK"}, "401": {"description": "Unauthorized"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk,
    }
    return out


def _gv_prefix(group: str, version: str) -> str:
    return f"/apis/{group}/{version}" if group else f"/api/{version}"


def gv_path(group: str, version: str) -> str:
    """The index key of a group-version: 'api/v1' or 'apis/G/V'."""
    return _gv_prefix(group, version)[1:]


def _camel(s: str) -> str:
    return s[:1].upper() + s[1:]


def _paths_for(r: Any) -> dict[str, Any]:
    gvk = {"group": r.group, "version": r.version, "kind": r.kind}
    prefix = _gv_prefix(r.group, r.version)
    ns = "/namespaces/{namespace}" if r.namespaced else ""
    scope = "Namespaced" if r.namespaced else ""
    kind = r.kind
    collection = f"{prefix}{ns}/{r.plural}"
    item = f"{collection}/{{name}}"
    paths: dict[str, Any] = {}
    verbs = set(r.verbs)
    coll_params = [_path_param("namespace")] if r.namespaced else []
    coll: dict[str, Any] = {"parameters": coll_params}
    if "list" in verbs:
        coll["get"] = _op("list", f"list{scope}{kind}", gvk, _LIST_PARAMS)
    if "create" in verbs:
        post = _op("post", f"create{scope}{kind}", gvk, _WRITE_PARAMS)
        post["requestBody"] = _body(("application/json", "application/vnd.kubernetes.protobuf"))
        coll["post"] = post
    if "deletecollection" in verbs:
        coll["delete"] = _op("deletecollection", f"deleteCollection{scope}{kind}", gvk, [])
    paths[collection] = coll
    if r.namespaced and "list" in verbs:
        paths[f"{prefix}/{r.plural}"] = {
            "get": _op("list", f"list{kind}ForAllNamespaces", gvk, _LIST_PARAMS)
        }
    if not {"get", "update", "patch", "delete"} & verbs:
        return paths
    obj: dict[str, Any] = {"parameters": [*coll_params, _path_param("name")]}
    if "get" in verbs:
        obj["get"] = _op("get", f"read{scope}{kind}", gvk, [])
    if "update" in verbs:
        put = _op("put", f"replace{scope}{kind}", gvk, _WRITE_PARAMS)
        put["requestBody"] = _body(("application/json",))
        obj["put"] = put
    if "patch" in verbs:
        patch = _op("patch", f"patch{scope}{kind}", gvk, [*_WRITE_PARAMS, _FORCE])
        patch["requestBody"] = _body(PATCH_TYPES)
        obj["patch"] = patch
    if "delete" in verbs:
        obj["delete"] = _op("delete", f"delete{scope}{kind}", gvk, [_DRY_RUN])
    paths[item] = obj
    for sub in r.subresources:
        sub_gvk = {"group": sub.group, "version": sub.version, "kind": sub.kind}
        sv = set(sub.verbs)
        entry: dict[str, Any] = {"parameters": obj["parameters"]}
        name = f"{scope}{kind}{_camel(sub.name)}"
        if "get" in sv:
            entry["get"] = _op("get", f"read{name}", sub_gvk, [])
        if "update" in sv:
            entry["put"] = _op("put", f"replace{name}", sub_gvk, _WRITE_PARAMS)
            entry["put"]["requestBody"] = _body(("application/json",))
        if "patch" in sv:
            entry["patch"] = _op("patch", f"patch{name}", sub_gvk, [*_WRITE_PARAMS, _FORCE])
            entry["patch"]["requestBody"] = _body(PATCH_TYPES)
        if "create" in sv:
            entry["post"] = _op("post", f"create{name}", sub_gvk, _WRITE_PARAMS)
            entry["post"]["requestBody"] = _body(("application/json",))
        paths[f"{item}/{sub.name}"] = entry
    return paths


@cache
def _documents() -> dict[str, tuple[bytes, str]]:
    docs: dict[str, dict[str, Any]] = {}
    for r in RESOURCES:
        key = gv_path(r.group, r.version)
        doc = docs.setdefault(
            key,
            {
                "openapi": "3.0.0",
                "info": {"title": "Kubernetes", "version": "v1.32.0"},
                "paths": {},
                "components": {"schemas": {}},
            },
        )
        doc["paths"].update(_paths_for(r))
    out: dict[str, tuple[bytes, str]] = {}
    for key, doc in docs.items():
        text = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
        out[key] = (text, hashlib.sha512(text).hexdigest().upper()[:64])
    return out


def index() -> dict[str, Any]:
    """The ``/openapi/v3`` discovery document."""
    return {
        "paths": {
            key: {"serverRelativeURL": f"/openapi/v3/{key}?hash={h}"}
            for key, (_, h) in _documents().items()
        }
    }


def document(key: str) -> tuple[bytes, str] | None:
    """The serialized document for 'api/v1' or 'apis/G/V' and its hash, or None."""
    return _documents().get(key)
