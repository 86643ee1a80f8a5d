"""Deletion: graceful and finalized deletes, propagation to dependents, namespaces.

Theory of operation
-------------------
`delete_one` is kube's registry delete plus the work kube leaves to
controllers, done synchronously:

    preconditions (uid, resourceVersion)        409 when they do not hold
    a namespace                                 -> `delete_namespace`
    Orphan                                      strip the owner reference
                                                from every dependent first
    finalizers, or a pod bound to a node with   set deletionTimestamp (now +
    a grace period > 0                          grace) and
                                                deletionGracePeriodSeconds; 202
    otherwise                                   If(mod == rev) DeleteRange;
                                                then `after_remove`: dependents
                                                deleted (Background; Foreground
                                                deletes them before the owner),
                                                and a terminating namespace
                                                that became empty is removed

A dependent is an object of the owner's namespace (any namespace for a
cluster-scoped owner) whose ownerReferences name the owner's uid; one that
has other owners only loses the reference (kube's garbage collector).
`delete_namespace` marks the namespace Terminating, deletes every object in
it with grace 0, and removes it once it is empty and has no finalizers.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kubeproof.mvcc import (
    KeyValue,
)

from . import reads
from .body import (
    check_size,
    media_type,
    parse,
)
from .common import (
    JSON_HEADERS,
    MAX_RETRIES,
    strip_type,
)
from .errors import (
    ApiError,
    bad_request,
    conflict,
    invalid,
    not_found,
    unsupported_media_type,
)
from .meta import FieldErrors, add_seconds
from .paths import Target
from .registry import strategy
from .resources import ResourceInfo, by_plural, stored
from .storage import collection_prefix, decode, object_key, prefix_end
from .types import ApiRequest, ApiResponse, UserInfo

if TYPE_CHECKING:
    from .server import ApiServer

Obj = dict[str, Any]


def delete_options(api: ApiServer, req: ApiRequest) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    if req.body and req.body.strip():
        check_size(req.body, api.max_request_bytes)
        mt = media_type(req.content_type)
        if mt not in ("application/json", "application/yaml"):
            raise unsupported_media_type(mt, ("application/json", "application/yaml"))
        value, _ = parse(req.body, mt)
        if not isinstance(value, dict):
            raise bad_request("DeleteOptions must be a JSON object")
        k = value.get("kind")
        if k not in (None, "", "DeleteOptions"):
            raise bad_request(f'the body of a delete must be DeleteOptions, not "{k}"')
        opts = value
    for name in ("gracePeriodSeconds", "propagationPolicy", "orphanDependents"):
        v = req.param(name)
        if v is not None:
            opts[name] = v
    out: dict[str, Any] = {}
    g = opts.get("gracePeriodSeconds")
    if g is not None:
        try:
            out["grace"] = int(g)
        except (TypeError, ValueError):
            raise bad_request(
                f'gracePeriodSeconds: Invalid value: "{g}": must be an integer'
            ) from None
        if isinstance(g, bool):
            raise bad_request("gracePeriodSeconds must be an integer")
    pp = opts.get("propagationPolicy")
    od = opts.get("orphanDependents")
    if pp is not None and od is not None:
        raise bad_request(
            "propagationPolicy: Invalid value: ...: orphanDependents and deletionPropagation cannot be both set"
        )
    if od is not None:
        pp = "Orphan" if od in (True, "true") else "Background"
    if pp is not None and pp not in ("Orphan", "Background", "Foreground"):
        raise invalid(
            "DeleteOptions",
            "",
            "",
            (
                _policy_cause(
                    "propagationPolicy",
                    pp,
                ),
            ),
        )
    out["policy"] = pp or "Background"
    pre = opts.get("preconditions")
    if pre is not None:
        if not isinstance(pre, dict):
            raise bad_request("preconditions must be an object")
        out["uid"] = pre.get("uid")
        out["rv"] = pre.get("resourceVersion")
    return out


def handle_delete(api: ApiServer, t: Target, req: ApiRequest, user: UserInfo) -> ApiResponse:
    api.check_accept(req)
    opts = delete_options(api, req)
    dry = api.dry_run(req)
    code, obj = delete_one(api, t.info, t.namespace, t.name, user, opts, dry_run=dry)
    return ApiResponse(code, api.typed(t.info, obj), JSON_HEADERS)


def delete_one(
    api: ApiServer,
    info: ResourceInfo,
    namespace: str,
    name: str,
    user: UserInfo | None,
    opts: Mapping[str, Any],
    *,
    dry_run: bool = False,
) -> tuple[int, Obj]:
    key = object_key(info, namespace, name)
    for _ in range(MAX_RETRIES):
        kv = api.objects.get_kv(key)
        if kv is None:
            raise not_found(info.qualified, name)
        cur = decode(kv)
        meta = cur["metadata"]
        if opts.get("uid") is not None and opts["uid"] != meta.get("uid"):
            raise conflict(
                info.qualified,
                name,
                f"Precondition failed: UID in precondition: {opts['uid']}, "
                f"UID in object meta: {meta.get('uid', '')}",
            )
        if opts.get("rv") is not None and opts["rv"] != meta.get("resourceVersion"):
            raise conflict(
                info.qualified,
                name,
                f"Precondition failed: ResourceVersion in precondition: {opts['rv']}, "
                f"ResourceVersion in object meta: {meta.get('resourceVersion')}",
            )
        if user is not None:
            api.validate_admission(
                api.admission_attrs("DELETE", info, namespace, name, "", user, None, cur)
            )
        if dry_run:
            return 200, cur
        if info.plural == "namespaces":
            return delete_namespace(api, kv, cur)
        policy = str(opts.get("policy", "Background"))
        grace = grace_period(api, info, cur, opts.get("grace"))
        if policy == "Orphan":
            orphan_dependents(api, info, namespace, cur)
        if meta.get("finalizers") or grace > 0:
            # Graceful or finalized deletion: mark it and wait.
            new = copy.deepcopy(cur)
            nm = new["metadata"]
            if not nm.get("deletionTimestamp") or grace < int(
                nm.get("deletionGracePeriodSeconds", grace + 1)
            ):
                nm["deletionTimestamp"] = add_seconds(api.now(), grace)
                nm["deletionGracePeriodSeconds"] = grace
            if grace == 0 and not nm.get("finalizers"):
                pass
            else:
                if new == cur:
                    return 202, cur
                nm.pop("resourceVersion", None)
                ok, rev, _ = api.objects.update(key, new, kv.mod_revision)
                if not ok:
                    continue
                nm["resourceVersion"] = str(rev)
                if policy == "Foreground":
                    delete_dependents(api, info, namespace, cur)
                return 202, new
        if policy == "Foreground":
            delete_dependents(api, info, namespace, cur)
            kv2 = api.objects.get_kv(key)
            if kv2 is None:
                raise not_found(info.qualified, name)
            kv = kv2
        ok, rev, _ = api.objects.delete(key, kv.mod_revision)
        if not ok:
            continue
        after_remove(api, info, namespace, cur, policy)
        cur["metadata"]["resourceVersion"] = str(rev)
        return 200, cur
    raise conflict(info.qualified, name)


def grace_period(api: ApiServer, info: ResourceInfo, obj: Obj, requested: int | None) -> int:
    if not strategy(info.kind).graceful:
        return 0
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
        # Never scheduled or already finished: kube deletes it at once.
        return 0
    if requested is not None:
        g = int(requested)
        # kube turns a negative grace into 1s and keeps 0 as "now".
        return 1 if g < 0 else g
    g = spec.get("terminationGracePeriodSeconds", 30)
    return max(int(g), 0) if isinstance(g, int) else 30


def after_remove(api: ApiServer, info: ResourceInfo, namespace: str, obj: Obj, policy: str) -> None:
    """Bookkeeping after an object left the store: its dependents, and the
    namespace it was holding open."""
    if policy != "Orphan":
        delete_dependents(api, info, namespace, obj)
    if info.namespaced:
        maybe_finish_namespace(api, namespace)


def dependents(
    api: ApiServer, info: ResourceInfo, namespace: str, owner: Obj
) -> list[tuple[ResourceInfo, KeyValue]]:
    uid = str((owner.get("metadata") or {}).get("uid", ""))
    if not uid:
        return []
    needle = uid.encode()
    out: list[tuple[ResourceInfo, KeyValue]] = []
    for dep_info in stored():
        if not dep_info.namespaced and info.namespaced:
            continue
        prefix = collection_prefix(dep_info, namespace if info.namespaced else "")
        for kv in api.objects.range(prefix, prefix_end(prefix)).kvs:
            if needle not in kv.value:
                continue
            refs = (decode(kv).get("metadata") or {}).get("ownerReferences") or []
            if any(r.get("uid") == uid for r in refs):
                out.append((dep_info, kv))
    return out


def orphan_dependents(api: ApiServer, info: ResourceInfo, namespace: str, owner: Obj) -> None:
    uid = (owner.get("metadata") or {}).get("uid")
    for _dep_info, kv in dependents(api, info, namespace, owner):
        dep = decode(kv)
        refs = [r for r in dep["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
        if refs:
            dep["metadata"]["ownerReferences"] = refs
        else:
            dep["metadata"].pop("ownerReferences", None)
        dep["metadata"].pop("resourceVersion", None)
        api.objects.update(kv.key, dep, kv.mod_revision)


def delete_dependents(api: ApiServer, info: ResourceInfo, namespace: str, owner: Obj) -> None:
    uid = (owner.get("metadata") or {}).get("uid")
    for dep_info, kv in dependents(api, info, namespace, owner):
        dep = decode(kv)
        refs = dep["metadata"].get("ownerReferences") or []
        if len(refs) > 1:
            # Other owners keep it alive: drop only this reference (kube's GC).
            dep["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != uid]
            dep["metadata"].pop("resourceVersion", None)
            api.objects.update(kv.key, dep, kv.mod_revision)
            continue
        dm = dep["metadata"]
        # Gone meanwhile, or held by a finalizer: nothing more to do.
        with contextlib.suppress(ApiError):
            delete_one(
                api,
                dep_info,
                str(dm.get("namespace", "")) if dep_info.namespaced else "",
                str(dm.get("name", "")),
                None,
                {"policy": "Background"},
            )


def delete_namespace(api: ApiServer, kv: KeyValue, cur: Obj) -> tuple[int, Obj]:
    info = by_plural("namespaces")
    assert info is not None
    name = cur["metadata"]["name"]
    marked = cur
    if not cur["metadata"].get("deletionTimestamp"):
        new = copy.deepcopy(cur)
        new["metadata"]["deletionTimestamp"] = api.now()
        new["metadata"]["deletionGracePeriodSeconds"] = 0
        new.setdefault("status", {})["phase"] = "Terminating"
        new["metadata"].pop("resourceVersion", None)
        ok, rev, _ = api.objects.update(kv.key, new, kv.mod_revision)
        if not ok:
            raise conflict("namespaces", name)
        new["metadata"]["resourceVersion"] = str(rev)
        marked = new
    # The namespace controller's work, done now: remove the contents.
    for dep_info in stored():
        if not dep_info.namespaced:
            continue
        prefix = collection_prefix(dep_info, name)
        for okv in api.objects.range(prefix, prefix_end(prefix)).kvs:
            o = decode(okv)
            with contextlib.suppress(ApiError):
                delete_one(
                    api,
                    dep_info,
                    name,
                    o["metadata"]["name"],
                    None,
                    {"policy": "Background", "grace": 0},
                )
    finished = maybe_finish_namespace(api, name)
    got = api.objects.get(info, "", name)
    if got is None:
        return 200, finished or marked
    return 202, got[0]


def maybe_finish_namespace(api: ApiServer, name: str) -> Obj | None:
    info = by_plural("namespaces")
    assert info is not None
    got = api.objects.get(info, "", name)
    if got is None:
        return None
    ns, mod = got
    if not ns["metadata"].get("deletionTimestamp"):
        return None
    for dep_info in stored():
        if not dep_info.namespaced:
            continue
        prefix = collection_prefix(dep_info, name)
        if api.objects.range(prefix, prefix_end(prefix), limit=1).kvs:
            return None
    key = object_key(info, "", name)
    spec_f = [f for f in (ns.get("spec") or {}).get("finalizers") or [] if f != "kubernetes"]
    if spec_f or ns["metadata"].get("finalizers"):
        new = copy.deepcopy(ns)
        new.setdefault("spec", {})["finalizers"] = spec_f
        new["metadata"].pop("resourceVersion", None)
        if new != {
            **ns,
            "metadata": {k: v for k, v in ns["metadata"].items() if k != "resourceVersion"},
        }:
            api.objects.update(key, new, mod)
        return None
    ok, rev, _ = api.objects.delete(key, mod)
    if ok:
        ns["metadata"]["resourceVersion"] = str(rev)
        return ns
    return None


def handle_delete_collection(
    api: ApiServer, t: Target, req: ApiRequest, user: UserInfo
) -> ApiResponse:
    api.check_accept(req)
    opts = delete_options(api, req)
    dry = api.dry_run(req)
    items, _meta = reads.list_objects(
        api,
        t,
        ApiRequest(
            "GET",
            req.path,
            {k: v for k, v in req.query.items() if k in ("labelSelector", "fieldSelector")},
        ),
    )
    deleted: list[Obj] = []
    for obj in items:
        m = obj["metadata"]
        try:
            _, out = delete_one(
                api,
                t.info,
                str(m.get("namespace", "")) if t.info.namespaced else "",
                str(m["name"]),
                user,
                opts,
                dry_run=dry,
            )
            deleted.append(strip_type(out))
        except ApiError as e:
            if e.code != 404:
                raise
    body = {
        "kind": t.info.list_kind,
        "apiVersion": t.info.api_version,
        "metadata": {"resourceVersion": str(api.objects.revision)},
        "items": deleted,
    }
    return ApiResponse(200, body, JSON_HEADERS)


def _policy_cause(path: str, value: Any) -> Any:
    errs = FieldErrors()
    errs.not_supported(path, value, ("Foreground", "Background", "Orphan"))
    return errs.causes[0]
