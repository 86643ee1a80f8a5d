"""The API server core: one REST request in, one response out.

Theory of operation
-------------------
`ApiServer.handle` runs a request through kube-apiserver's chain, in its
order, every step a pure function of the request and the store:

    1. parse the path into request attributes (`paths.parse_path`)
    2. authenticate: the caller's `UserInfo`, or system:anonymous when
       enabled, else 401
    3. authorize the attributes (system:masters, then RBAC): 403 with kube's
       message on a denial
    4. resolve the resource (404 if none, 405 if the verb is not served)
    5. the verb's handler: decode and check the body, mutating admission,
       escalation checks for RBAC writes, the kind's strategy (system
       fields, status handling, defaults), validation (422), validating
       admission, then the store transaction of kube's shape (see `storage`)

Every failure is an `ApiError` answered with its Status; anything else that
escapes a handler is a bug, answered 500 and counted in
``internal_errors`` (tests assert it stays 0).

The handlers live with their concept: `reads` (get, list, watch and the
resourceVersion rules), create/update/patch here (kube's GuaranteedUpdate:
read, transform, write if the key's mod_revision is unchanged, retry on a
lost race; a named resourceVersion that is not current is a 409 Conflict),
`deletion` (graceful and finalized deletes, dependents, namespaces),
`subresources` (binding, scale), `reviews` (access reviews), `services`
(address allocation).  They are module functions taking the server; the
server's small helpers they share (`typed`, `check_accept`, `dry_run`,
`admit` ...) are public for them, not for callers.

Time and identity are injected: ``now()`` gives the RFC 3339 timestamp,
``uid_source()`` a fresh uid; the core reads no clock and draws no random
numbers, so a run is a function of its inputs.
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Callable, Sequence
from typing import Any

from kubeproof.mvcc import (
    Compare,
)

from . import deletion, reads, reviews, services, subresources
from . import table as tables
from .admission import DEFAULT_CHAIN, AdmissionAttributes, AdmissionPlugin
from .authn import ANONYMOUS_USER
from .body import (
    MAX_REQUEST_BYTES,
    PATCH_TYPES,
    check_size,
    check_type_meta,
    conform_object,
    field_validation_param,
    media_type,
    parse,
    read_object,
    warning_headers,
)
from .bootstrap import bootstrap_objects
from .common import JSON_HEADERS, MAX_RETRIES, invalid_patch
from .errors import (
    ApiError,
    already_exists,
    bad_request,
    conflict,
    forbidden,
    method_not_allowed,
    not_acceptable,
    not_found,
    unauthorized,
    unsupported_media_type,
)
from .meta import EPOCH
from .patch import PatchError, json_patch, merge_patch, strategic_merge_patch
from .paths import RequestInfo, Target, parse_path, resolve
from .rbac import (
    MASTERS,
    Attributes,
    Authorizer,
    RBACAuthorizer,
    RbacState,
    RoleRef,
    Rule,
    covers,
    escalation_message,
    role_rules,
    rules_for,
    rules_of,
)
from .rbaccache import RbacCache
from .registry import prepare_create, prepare_update, strategy
from .resources import RBAC, ResourceInfo, by_plural
from .storage import (
    ObjectStore,
    Store,
    decode,
    object_key,
)
from .types import ApiRequest, ApiResponse, UserInfo
from .validation import validate_create, validate_update

Obj = dict[str, Any]

SERVICE_CIDR = "10.96.0.0/12"
GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def _default_uid_source(start: int) -> Callable[[], str]:
    counter = [0]

    def next_uid() -> str:
        counter[0] += 1
        n = (start << 20) + counter[0]
        h = f"{n:032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-8{h[17:20]}-{h[20:32]}"

    return next_uid


class ApiServer:
    """The pure API server over a `Store`; see the module docstring."""

    def __init__(
        self,
        store: Store,
        *,
        now: Callable[[], str] | None = None,
        uid_source: Callable[[], str] | None = None,
        authorizer: Authorizer | None = None,
        admission: Sequence[AdmissionPlugin] | None = None,
        anonymous: bool = False,
        bootstrap: bool = True,
        max_request_bytes: int = MAX_REQUEST_BYTES,
        service_cidr: str = SERVICE_CIDR,
    ) -> None:
        self.objects = ObjectStore(store)
        self.store = store
        self.now = now or (lambda: EPOCH)
        self.uid_source = uid_source or _default_uid_source(store.revision)
        self.rbac = RbacCache(self.objects)
        self.authorizer: Authorizer = authorizer or RBACAuthorizer(self.rbac.state)
        self.admission: tuple[AdmissionPlugin, ...] = tuple(
            DEFAULT_CHAIN if admission is None else admission
        )
        self.anonymous = anonymous
        self.max_request_bytes = max_request_bytes
        self.service_net = ipaddress.ip_network(service_cidr)
        self.internal_errors = 0
        self.last_internal_error: BaseException | None = None
        if bootstrap:
            self.ensure_bootstrap()

    # ------------------------------------------------------------------
    # Entry points

    def handle(self, req: ApiRequest) -> ApiResponse:
        try:
            return self._handle(req)
        except ApiError as e:
            return self.error(e)
        except Exception as e:  # a bug: never let it look like a client error
            self.internal_errors += 1
            self.last_internal_error = e
            return ApiResponse(
                500,
                ApiError(
                    500, "InternalError", f"Internal error occurred: {type(e).__name__}: {e}"
                ).status(),
                JSON_HEADERS,
            )

    def authorize_request(self, req: ApiRequest) -> ApiResponse | None:
        """Authentication and authorization only (for the paths the HTTP layer
        serves itself: discovery, /version, /openapi, /healthz): the 401/403
        response, or None when the request may proceed."""
        try:
            ri = self.request_info(req)
            user = self.user(req)
            self.authorize(ri, user)
        except ApiError as e:
            return self.error(e)
        return None

    def user_for(self, req: ApiRequest) -> UserInfo:
        """The effective user of a request (anonymous when allowed); 401 if none."""
        return self.user(req)

    def close(self) -> None:
        """Releases the store watchers this instance holds (its RBAC cache)."""
        self.rbac.close()

    def error(self, e: ApiError) -> ApiResponse:
        headers = JSON_HEADERS
        if e.code == 401:
            headers = (*headers, ("WWW-Authenticate", 'Basic realm="kubernetes-master"'))
        return ApiResponse(e.code, e.status(), headers)

    def request_info(self, req: ApiRequest) -> RequestInfo:
        return parse_path(req.method, req.path, req.param("watch"), req.param("fieldSelector"))

    def user(self, req: ApiRequest) -> UserInfo:
        if req.user is not None:
            return req.user
        if self.anonymous:
            return ANONYMOUS_USER
        raise unauthorized()

    def attributes(self, ri: RequestInfo, user: UserInfo) -> Attributes:
        if not ri.is_resource:
            return Attributes(user, ri.verb, False, path=ri.path)
        return Attributes(
            user,
            ri.verb,
            True,
            namespace=ri.namespace,
            api_group=ri.group,
            api_version=ri.version,
            resource=ri.resource,
            subresource=ri.subresource,
            name=ri.name,
            path=ri.path,
        )

    def authorize(self, ri: RequestInfo, user: UserInfo) -> None:
        attrs = self.attributes(ri, user)
        decision = self.authorizer.authorize(attrs)
        if not decision.allowed:
            raise forbidden_for(attrs, decision.reason)

    def _handle(self, req: ApiRequest) -> ApiResponse:
        ri = self.request_info(req)
        user = self.user(req)
        self.authorize(ri, user)
        if not ri.is_resource:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        t = resolve(ri)
        return self.dispatch(t, req, user)

    # ------------------------------------------------------------------
    # Dispatch

    def dispatch(self, t: Target, req: ApiRequest, user: UserInfo) -> ApiResponse:
        info = t.info
        if not info.storage:
            if t.verb != "create":
                raise method_not_allowed()
            return reviews.handle_review(self, t, req, user)
        if t.subresource == "binding":
            return subresources.handle_binding(self, t, req, user)
        if t.subresource == "scale":
            return subresources.handle_scale(self, t, req, user)
        verb = t.verb
        if verb == "get" and req.param("watch") in ("true", "1"):
            verb = "watch"
        if verb == "get":
            return reads.handle_get(self, t, req)
        if verb == "list":
            return reads.handle_list(self, t, req)
        if verb == "watch":
            return reads.handle_watch(self, t, req)
        if verb == "create":
            return self._create(t, req, user)
        if verb == "update":
            return self._update(t, req, user)
        if verb == "patch":
            return self._patch(t, req, user)
        if verb == "delete":
            return deletion.handle_delete(self, t, req, user)
        if verb == "deletecollection":
            return deletion.handle_delete_collection(self, t, req, user)
        raise method_not_allowed()

    # ------------------------------------------------------------------
    # Helpers

    def lookup(self, plural: str, namespace: str, name: str) -> Obj | None:
        info = by_plural(plural)
        if info is None:
            return None
        got = self.objects.get(info, namespace if info.namespaced else "", name)
        return got[0] if got is not None else None

    def render(self, t: Target, req: ApiRequest, obj: Obj) -> tuple[int, Obj]:
        fmt = tables.negotiate(req.accept)
        if fmt is None:
            raise not_acceptable(
                ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")
            )
        if fmt == "table" and not t.subresource:
            include = req.param("includeObject", "Metadata") or "Metadata"
            return 200, tables.to_table(
                t.info.plural,
                [obj],
                self.now(),
                list_meta={"resourceVersion": obj["metadata"].get("resourceVersion", "")},
                include=include,
            )
        return 200, obj

    def check_accept(self, req: ApiRequest) -> str:
        fmt = tables.negotiate(req.accept)
        if fmt is None:
            raise not_acceptable(
                ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")
            )
        return fmt

    def typed(self, info: ResourceInfo, obj: Obj) -> Obj:
        out: Obj = {"apiVersion": info.api_version, "kind": info.kind}
        out.update({k: v for k, v in obj.items() if k not in ("apiVersion", "kind")})
        return out

    def admission_attrs(
        self,
        op: str,
        info: ResourceInfo,
        namespace: str,
        name: str,
        sub: str,
        user: UserInfo,
        obj: Obj | None,
        old: Obj | None,
    ) -> AdmissionAttributes:
        return AdmissionAttributes(
            op, info.plural, info.qualified, info.kind, namespace, name, sub, user, obj, old
        )

    def admit(self, attrs: AdmissionAttributes) -> Obj | None:
        obj = attrs.obj
        for p in self.admission:
            a = AdmissionAttributes(
                attrs.operation,
                attrs.plural,
                attrs.qualified,
                attrs.kind,
                attrs.namespace,
                attrs.name,
                attrs.subresource,
                attrs.user,
                obj,
                attrs.old,
            )
            obj = p.admit(a, self.lookup)
        return obj

    def validate_admission(self, attrs: AdmissionAttributes) -> None:
        for p in self.admission:
            p.validate(attrs, self.lookup)

    def field_validation(self, req: ApiRequest) -> str:
        return field_validation_param(req.param("fieldValidation"))

    def dry_run(self, req: ApiRequest) -> bool:
        values = req.query.get("dryRun", ())
        for v in values:
            if v != "All":
                raise bad_request(f'dryRun: Unsupported value: "{v}": supported values: "All"')
        return bool(values)

    def generate_name(self, prefix: str) -> str:
        seed = self.uid_source().replace("-", "")
        n = int(seed, 16) if all(c in "0123456789abcdef" for c in seed) and seed else hash(seed)
        chars = []
        for _ in range(5):
            n, r = divmod(n, len(GENERATE_ALPHABET))
            chars.append(GENERATE_ALPHABET[r])
        base = prefix[: 63 - 5] if len(prefix) > 58 else prefix
        return base + "".join(chars)

    # ------------------------------------------------------------------
    # Bootstrap

    def ensure_bootstrap(self) -> None:
        """Creates the system namespaces, default RBAC policy and the
        ``kubernetes`` service where missing (idempotent)."""
        for plural, obj in bootstrap_objects():
            info = by_plural(plural)
            assert info is not None
            name = obj["metadata"]["name"]
            ns = obj["metadata"].get("namespace", "")
            key = object_key(info, ns, name)
            if self.objects.get_kv(key) is not None:
                continue
            o = prepare_create(info.kind, copy.deepcopy(obj), uid=self.uid_source(), now=self.now())
            self.objects.create(key, o)
        svc = by_plural("services")
        assert svc is not None
        key = object_key(svc, "default", "kubernetes")
        if self.objects.get_kv(key) is None:
            o = prepare_create(
                "Service",
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {
                        "name": "kubernetes",
                        "namespace": "default",
                        "labels": {"component": "apiserver", "provider": "kubernetes"},
                    },
                    "spec": {
                        "type": "ClusterIP",
                        "clusterIP": str(self.service_net.network_address + 1),
                        "clusterIPs": [str(self.service_net.network_address + 1)],
                        "ipFamilies": ["IPv4"],
                        "ipFamilyPolicy": "SingleStack",
                        "ports": [
                            {"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}
                        ],
                    },
                },
                uid=self.uid_source(),
                now=self.now(),
            )
            self.objects.create(key, o)

    # ------------------------------------------------------------------
    # get / list

    # ------------------------------------------------------------------
    # watch

    def watch_start_revision(self, rv: int) -> int:
        """A watch from resourceVersion N sees every change after N: from N + 1."""
        return rv + 1

    # ------------------------------------------------------------------
    # create

    def _create(self, t: Target, req: ApiRequest, user: UserInfo) -> ApiResponse:
        self.check_accept(req)
        fv = self.field_validation(req)
        obj, warnings = read_object(
            req.body,
            req.content_type,
            limit=self.max_request_bytes,
            api_version=t.info.api_version,
            kind=t.info.kind,
            field_validation=fv,
        )
        created = self.create_object(t.info, t.namespace, obj, user, dry_run=self.dry_run(req))
        return ApiResponse(201, created, (*JSON_HEADERS, *warning_headers(warnings)))

    def create_object(
        self, info: ResourceInfo, namespace: str, obj: Obj, user: UserInfo, *, dry_run: bool = False
    ) -> Obj:
        meta = obj.setdefault("metadata", {})
        if info.namespaced:
            body_ns = meta.get("namespace", "")
            if body_ns and body_ns != namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on "
                    "the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        if meta.get("resourceVersion"):
            raise bad_request("resourceVersion should not be set on objects to be created")
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = self.generate_name(meta["generateName"])
        name = meta.get("name", "")
        obj = self.typed(info, obj)
        obj = prepare_create(info.kind, obj, uid=self.uid_source(), now=self.now())
        attrs = self.admission_attrs("CREATE", info, namespace, name, "", user, obj, None)
        admitted = self.admit(attrs)
        obj = admitted if admitted is not None else obj
        if info.group == RBAC:
            self.check_escalation(info, namespace, name, obj, user, creating=True)
        errs = validate_create(info.kind, obj, info.namespaced)
        errs.raise_if_any(info.kind, info.group, name)
        self.validate_admission(
            self.admission_attrs("CREATE", info, namespace, name, "", user, obj, None)
        )
        extra: tuple[Compare, ...] = ()
        if info.kind == "Service":
            extra = services.allocate_service(self, obj, None)
        key = object_key(info, namespace, name)
        if dry_run:
            return obj
        ok, rev = self.objects.create(key, obj, extra)
        if not ok:
            if self.objects.get_kv(key) is not None:
                raise already_exists(info.qualified, name)
            # A service allocation raced with another create: try once more.
            if info.kind == "Service":
                extra = services.allocate_service(self, obj, None)
                ok, rev = self.objects.create(key, obj, extra)
            if not ok:
                raise conflict(info.qualified, name)
        # obj was built by this request and is already stored as bytes: hand it out.
        obj["metadata"]["resourceVersion"] = str(rev)
        return obj

    # ------------------------------------------------------------------
    # update / patch

    def _update(self, t: Target, req: ApiRequest, user: UserInfo) -> ApiResponse:
        self.check_accept(req)
        fv = self.field_validation(req)
        status = t.subresource == "status"
        obj, warnings = read_object(
            req.body,
            req.content_type,
            limit=self.max_request_bytes,
            api_version=t.info.api_version,
            kind=t.info.kind,
            field_validation=fv,
        )
        meta = obj.setdefault("metadata", {})
        if meta.get("name", t.name) != t.name:
            raise bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL "
                f"({t.name})"
            )
        meta["name"] = t.name
        dry = self.dry_run(req)

        def mutate(cur: Obj) -> Obj:
            return copy.deepcopy(obj)

        code, out = self.guaranteed_update(
            t,
            user,
            mutate,
            body_rv=meta.get("resourceVersion", ""),
            status=status,
            create_body=obj,
            dry_run=dry,
        )
        return ApiResponse(code, out, (*JSON_HEADERS, *warning_headers(warnings)))

    def _patch(self, t: Target, req: ApiRequest, user: UserInfo) -> ApiResponse:
        self.check_accept(req)
        fv = self.field_validation(req)
        check_size(req.body, self.max_request_bytes)
        mt = media_type(req.content_type)
        if mt not in PATCH_TYPES:
            raise unsupported_media_type(mt, PATCH_TYPES)
        patch_doc, dups = parse(req.body, mt, "patch")
        if mt == "application/json-patch+json" and not isinstance(patch_doc, list):
            raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
        if mt != "application/json-patch+json" and not isinstance(patch_doc, dict):
            raise bad_request(
                "couldn't get version/kind; json parse error: the patch is not a JSON object"
            )
        status = t.subresource == "status"
        info = t.info
        warnings_out: list[str] = []
        dry = self.dry_run(req)

        def mutate(cur: Obj) -> Obj:
            cur_typed = self.typed(info, cur)
            try:
                if mt == "application/json-patch+json":
                    patched = json_patch(cur_typed, patch_doc)
                elif mt == "application/merge-patch+json":
                    patched = merge_patch(cur_typed, patch_doc)
                else:
                    patched = strategic_merge_patch(info.kind, cur_typed, patch_doc)
            except PatchError as e:
                raise invalid_patch(info, t.name, str(e)) from None
            if not isinstance(patched, dict):
                raise invalid_patch(info, t.name, "the patched document is not an object")
            check_type_meta(patched, info.api_version, info.kind)
            conformed, warnings = conform_object(info.kind, patched, dups, fv)
            warnings_out[:] = warnings
            pm = conformed.setdefault("metadata", {})
            if pm.get("name") != t.name:
                raise bad_request(
                    f"the name of the object ({pm.get('name')}) does not match the name on the "
                    f"URL ({t.name})"
                )
            if info.namespaced and pm.get("namespace") != t.namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on "
                    "the request"
                )
            return conformed

        create_body: Obj | None = None
        if mt == "application/apply-patch+yaml":
            # Server-side apply, simplified: create when absent, else a strategic merge.
            create_body, _ = conform_object(info.kind, copy.deepcopy(patch_doc), dups, fv)
        code, out = self.guaranteed_update(
            t,
            user,
            mutate,
            body_rv=None,
            status=status,
            create_body=create_body,
            dry_run=dry,
            from_patch=True,
        )
        return ApiResponse(code, out, (*JSON_HEADERS, *warning_headers(warnings_out)))

    def guaranteed_update(
        self,
        t: Target,
        user: UserInfo,
        mutate: Callable[[Obj], Obj],
        *,
        body_rv: str | None,
        status: bool,
        create_body: Obj | None,
        dry_run: bool = False,
        from_patch: bool = False,
    ) -> tuple[int, Obj]:
        """kube's GuaranteedUpdate: read, transform, write if unchanged since the
        read (mod_revision compare), retry on a lost race."""
        info = t.info
        key = object_key(info, t.namespace, t.name)
        st = strategy(info.kind)
        for _ in range(MAX_RETRIES):
            kv = self.objects.get_kv(key)
            if kv is None:
                if create_body is not None and (st.create_on_update or from_patch) and not status:
                    body = copy.deepcopy(create_body)
                    body.setdefault("metadata", {}).pop("resourceVersion", None)
                    return 201, self.create_object(info, t.namespace, body, user, dry_run=dry_run)
                raise not_found(info.qualified, t.name)
            cur = decode(kv)
            cur_rv = str(kv.mod_revision)
            new = mutate(cur)
            new_rv = (
                new.get("metadata", {}).get("resourceVersion", "") if body_rv is None else body_rv
            )
            self.check_precondition(info, t.name, new_rv, cur_rv)
            new.setdefault("metadata", {})
            if info.namespaced:
                new["metadata"]["namespace"] = t.namespace
            else:
                new["metadata"].pop("namespace", None)
            new = self.typed(info, new)
            new = prepare_update(info.kind, new, cur, status=status)
            attrs = self.admission_attrs(
                "UPDATE", info, t.namespace, t.name, t.subresource, user, new, cur
            )
            admitted = self.admit(attrs)
            new = admitted if admitted is not None else new
            if info.group == RBAC:
                self.check_escalation(info, t.namespace, t.name, new, user, creating=False)
            errs = validate_update(info.kind, new, cur, info.namespaced)
            errs.raise_if_any(info.kind, info.group, t.name)
            self.validate_admission(
                self.admission_attrs(
                    "UPDATE", info, t.namespace, t.name, t.subresource, user, new, cur
                )
            )
            if info.kind == "Service":
                services.allocate_service(self, new, cur)
            new["metadata"].pop("resourceVersion", None)
            cur_cmp = dict(cur)
            cur_cmp["metadata"] = {
                k: v for k, v in cur["metadata"].items() if k != "resourceVersion"
            }
            if new == cur_cmp:
                # kube skips a write that changes nothing: same object, same RV.
                new["metadata"]["resourceVersion"] = cur_rv
                return 200, new
            if dry_run:
                new["metadata"]["resourceVersion"] = cur_rv
                return 200, new
            nm = new["metadata"]
            if (
                nm.get("deletionTimestamp")
                and not nm.get("finalizers")
                and nm.get("deletionGracePeriodSeconds", 0) == 0
            ):
                # The last finalizer is gone: the deletion completes now.
                ok, rev, _ = self.objects.delete(key, kv.mod_revision)
                if not ok:
                    continue
                deletion.after_remove(self, info, t.namespace, new, "Background")
                new["metadata"]["resourceVersion"] = str(rev)
                return 200, new
            ok, rev, _ = self.objects.update(key, new, kv.mod_revision)
            if ok:
                new["metadata"]["resourceVersion"] = str(rev)
                return 200, new
        raise conflict(info.qualified, t.name)

    def check_precondition(self, info: ResourceInfo, name: str, given: str, current: str) -> None:
        """Optimistic concurrency: an update that names a resourceVersion must
        name the current one (409 Conflict otherwise); none means unconditional."""
        if given and given != current:
            raise conflict(info.qualified, name)

    # ------------------------------------------------------------------
    # RBAC escalation

    def check_escalation(
        self,
        info: ResourceInfo,
        namespace: str,
        name: str,
        obj: Obj,
        user: UserInfo,
        *,
        creating: bool,
    ) -> None:
        if MASTERS in user.groups:
            return
        state = self.rbac.state()
        if info.kind in ("Role", "ClusterRole"):
            attrs = Attributes(
                user,
                "escalate",
                True,
                namespace=namespace,
                api_group=RBAC,
                api_version="*",
                resource=info.plural,
                name="" if creating else name,
            )
            if self.authorizer.authorize(attrs).allowed:
                return
            owner = rules_for(state, user, namespace)
            ok, missing = covers(owner, rules_of(obj))
            if not ok:
                raise forbidden(info.qualified, name, escalation_message(user, missing))
            return
        ref = obj.get("roleRef") or {}
        kind = str(ref.get("kind", ""))
        rname = str(ref.get("name", ""))
        if kind not in ("Role", "ClusterRole"):
            return  # validation reports it
        bind = Attributes(
            user,
            "bind",
            True,
            namespace=namespace,
            api_group=str(ref.get("apiGroup", RBAC)),
            resource="clusterroles" if kind == "ClusterRole" else "roles",
            name=rname,
        )
        if self.authorizer.authorize(bind).allowed:
            return
        rules = role_rules(state, RoleRef(kind, rname), namespace)
        if rules is None:
            plural = "clusterroles" if kind == "ClusterRole" else "roles"
            raise not_found(f"{plural}.{RBAC}", rname)
        owner = rules_for(state, user, namespace)
        ok, missing = covers(owner, rules)
        if not ok:
            raise forbidden(info.qualified, name, escalation_message(user, missing))

    def rbac_state(self) -> RbacState:
        return self.rbac.state()

    # ------------------------------------------------------------------
    # Services: cluster IP and node port allocation

    # ------------------------------------------------------------------
    # delete

    # ------------------------------------------------------------------
    # Subresources: binding and scale

    # ------------------------------------------------------------------
    # authorization.k8s.io reviews


# ---------------------------------------------------------------------------
# Module helpers


def forbidden_for(attrs: Attributes, reason: str = "") -> ApiError:
    """kube's responsewriters.Forbidden for an authorization denial."""
    user = attrs.user.name
    if not attrs.resource_request:
        msg = f'User "{user}" cannot {attrs.verb} path "{attrs.path}"'
        resource = ""
        name = ""
    else:
        res = attrs.resource + (f"/{attrs.subresource}" if attrs.subresource else "")
        if attrs.namespace:
            msg = (
                f'User "{user}" cannot {attrs.verb} resource "{res}" in API group '
                f'"{attrs.api_group}" in the namespace "{attrs.namespace}"'
            )
        else:
            msg = (
                f'User "{user}" cannot {attrs.verb} resource "{res}" in API group '
                f'"{attrs.api_group}" at the cluster scope'
            )
        resource = f"{attrs.resource}.{attrs.api_group}" if attrs.api_group else attrs.resource
        name = attrs.name
    if reason:
        msg = f"{msg}: {reason}"
    return forbidden(resource, name, msg)


__all__ = ["ApiServer", "Rule", "forbidden_for"]
