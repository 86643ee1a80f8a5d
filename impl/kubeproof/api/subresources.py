"""The pods/binding and replicasets/scale subresources.

Theory of operation
-------------------
``POST pods/NAME/binding`` with a ``Binding`` sets the pod's
``spec.nodeName`` and a ``PodScheduled`` condition (a 201 ``Status``
Success), refusing with 409 a pod that is bound already or being deleted:
the scheduler's compare-and-set.  ``replicasets/NAME/scale`` reads and
writes an ``autoscaling/v1 Scale`` view of a ReplicaSet (``spec.replicas``,
``status.replicas``, ``status.selector`` as a string); its writes go through
the ReplicaSet's optimistic concurrency.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from .body import (
    PATCH_TYPES,
    check_size,
    conform_object,
    media_type,
    parse,
    read_object,
    warning_headers,
)
from .common import (
    JSON_HEADERS,
    MAX_RETRIES,
    invalid_patch,
)
from .errors import (
    bad_request,
    conflict,
    not_found,
    success_status,
    unsupported_media_type,
)
from .meta import FieldErrors
from .patch import PatchError, json_patch, merge_patch
from .paths import Target
from .storage import decode, object_key
from .types import ApiRequest, ApiResponse, UserInfo

if TYPE_CHECKING:
    from .server import ApiServer

Obj = dict[str, Any]


def handle_binding(api: ApiServer, t: Target, req: ApiRequest, user: UserInfo) -> ApiResponse:
    api.check_accept(req)
    fv = api.field_validation(req)
    binding, warnings = read_object(
        req.body,
        req.content_type,
        limit=api.max_request_bytes,
        api_version="v1",
        kind="Binding",
        field_validation=fv,
    )
    meta = binding.get("metadata") or {}
    if meta.get("name") and meta["name"] != t.name:
        raise bad_request(
            f"the name of the object ({meta['name']}) does not match the name on the URL ({t.name})"
        )
    if meta.get("namespace") and meta["namespace"] != t.namespace:
        raise bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    target = binding.get("target") or {}
    node = target.get("name", "")
    errs = FieldErrors()
    if not node:
        errs.required("target.name")
    kind = target.get("kind", "Node")
    if kind not in ("", "Node"):
        errs.not_supported("target.kind", kind, ("Node",))
    errs.raise_if_any("Binding", "", t.name)
    info = t.info
    key = object_key(info, t.namespace, t.name)
    for _ in range(MAX_RETRIES):
        kv = api.objects.get_kv(key)
        if kv is None:
            raise not_found("pods", t.name)
        pod = decode(kv)
        if pod["metadata"].get("deletionTimestamp"):
            raise conflict(
                "pods/binding",
                t.name,
                f"pod {t.name} is being deleted, cannot be assigned to a host",
            )
        current = (pod.get("spec") or {}).get("nodeName")
        if current:
            raise conflict(
                "pods/binding", t.name, f'pod {t.name} is already assigned to node "{current}"'
            )
        pod.setdefault("spec", {})["nodeName"] = node
        conds = [
            c
            for c in (pod.setdefault("status", {}).get("conditions") or [])
            if c.get("type") != "PodScheduled"
        ]
        conds.append(
            {
                "type": "PodScheduled",
                "status": "True",
                "lastProbeTime": None,
                "lastTransitionTime": api.now(),
            }
        )
        conds[-1].pop("lastProbeTime")
        pod["status"]["conditions"] = conds
        if api.dry_run(req):
            break
        pod["metadata"].pop("resourceVersion", None)
        ok, _, _ = api.objects.update(key, pod, kv.mod_revision)
        if ok:
            break
    else:
        raise conflict("pods", t.name)
    return ApiResponse(201, success_status(201), (*JSON_HEADERS, *warning_headers(warnings)))


def scale_of(api: ApiServer, rs: Obj) -> Obj:
    from .table import _selector_string

    meta = rs["metadata"]
    sel = _selector_string((rs.get("spec") or {}).get("selector"))
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": int((rs.get("spec") or {}).get("replicas", 1))},
        "status": {
            "replicas": int((rs.get("status") or {}).get("replicas", 0)),
            "selector": "" if sel == "<none>" else sel,
        },
    }


def handle_scale(api: ApiServer, t: Target, req: ApiRequest, user: UserInfo) -> ApiResponse:
    api.check_accept(req)
    info = t.info
    if t.verb == "get":
        got = api.objects.get(info, t.namespace, t.name)
        if got is None:
            raise not_found(info.qualified, t.name)
        return ApiResponse(200, scale_of(api, got[0]), JSON_HEADERS)
    fv = api.field_validation(req)
    if t.verb == "update":
        scale, warnings = read_object(
            req.body,
            req.content_type,
            limit=api.max_request_bytes,
            api_version="autoscaling/v1",
            kind="Scale",
            field_validation=fv,
        )
    else:
        check_size(req.body, api.max_request_bytes)
        mt = media_type(req.content_type)
        if mt not in PATCH_TYPES:
            raise unsupported_media_type(mt, PATCH_TYPES)
        patch_doc, dups = parse(req.body, mt, "patch")
        got = api.objects.get(info, t.namespace, t.name)
        if got is None:
            raise not_found(info.qualified, t.name)
        cur_scale = scale_of(api, got[0])
        try:
            if mt == "application/json-patch+json":
                patched = json_patch(cur_scale, patch_doc)
            elif isinstance(patch_doc, dict):
                patched = merge_patch(cur_scale, patch_doc)
            else:
                raise PatchError("the patch is not a JSON object")
        except PatchError as e:
            raise invalid_patch(info, t.name, str(e)) from None
        if not isinstance(patched, dict):
            raise invalid_patch(info, t.name, "the patched document is not an object")
        scale, warnings = conform_object("Scale", patched, dups, fv)
    replicas = (scale.get("spec") or {}).get("replicas", 0)
    if replicas < 0:
        errs = FieldErrors()
        errs.invalid("spec.replicas", replicas, "must be greater than or equal to 0")
        errs.raise_if_any("Scale", "autoscaling", t.name)
    rv = (scale.get("metadata") or {}).get("resourceVersion", "")

    def mutate(cur: Obj) -> Obj:
        new = copy.deepcopy(cur)
        new.setdefault("spec", {})["replicas"] = replicas
        return new

    code, out = api.guaranteed_update(
        Target(info, "update", t.namespace, t.name, ""),
        user,
        mutate,
        body_rv=rv,
        status=False,
        create_body=None,
        dry_run=api.dry_run(req),
    )
    return ApiResponse(code, scale_of(api, out), (*JSON_HEADERS, *warning_headers(warnings)))
