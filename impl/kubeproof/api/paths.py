"""Request paths to request attributes, as kube-apiserver's RequestInfoFactory does it.

Theory of operation
-------------------
A resource path is ``/api/VERSION/...`` (core group) or
``/apis/GROUP/VERSION/...`` followed by

    RESOURCE                              collection (cluster, or all namespaces)
    RESOURCE/NAME[/SUBRESOURCE]           one object
    namespaces/NS/RESOURCE                collection in a namespace
    namespaces/NS/RESOURCE/NAME[/SUB]     one namespaced object

with kube's quirks, all kept because RBAC decisions depend on them:

* ``namespaces/NS`` alone (or ``namespaces/NS/status|finalize``) is the
  Namespace NS *in namespace NS*, so a RoleBinding in NS can grant reading
  NS itself;
* a leading ``watch/`` segment makes the verb ``watch``;
* the verb comes from the method: POST create, GET/HEAD get, PUT update,
  PATCH patch, DELETE delete; a GET without a name is ``list`` (``watch``
  with ``?watch=true|1``) and a DELETE without one ``deletecollection``;
* a list or watch whose field selector pins ``metadata.name=X`` is
  authorized as a request for the object named X.

Shorter paths (``/api``, ``/apis/apps/v1`` ...) and everything outside
/api and /apis are non-resource requests: their verb is the lower-case
method and RBAC matches them against ``nonResourceURLs``.  The parse is
total: it never fails; whether the resource exists is decided after
authorization, as in kube (so an unauthorized user learns nothing).
"""

from __future__ import annotations

from attrs import frozen

from .errors import bad_request, method_not_allowed, path_not_found
from .meta import path_segment
from .resources import ResourceInfo, lookup

_METHOD_VERBS = {
    "POST": "create",
    "GET": "get",
    "HEAD": "get",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}


@frozen
class RequestInfo:
    """kube's RequestInfo: the authorization attributes of one request."""

    is_resource: bool
    verb: str
    path: str
    api_prefix: str = ""
    group: str = ""
    version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    parts: tuple[str, ...] = ()
    url_name: str = ""
    """The name in the URL (``name`` may also come from a field selector)."""


def _field_selector_name(field_selector: str | None) -> str:
    """The X of a selector that requires exactly metadata.name=X (kube's RequiresExactMatch)."""
    if not field_selector:
        return ""
    for part in field_selector.split(","):
        p = part.strip()
        for sym in ("==", "="):
            if sym in p and "!=" not in p:
                k, _, v = p.partition(sym)
                if k.strip() == "metadata.name":
                    v = v.strip()
                    return v if not path_segment(v) else ""
                break
    return ""


def parse_path(
    method: str, path: str, watch_param: str | None = None, field_selector: str | None = None
) -> RequestInfo:
    raw = path  # the HTTP layer has split off the query and decoded the path
    parts = [p for p in raw.strip("/").split("/") if p] if raw else []
    non_resource = RequestInfo(False, method.lower(), raw)
    if len(parts) < 3 or parts[0] not in ("api", "apis"):
        return non_resource
    prefix = parts[0]
    rest = parts[1:]
    group = ""
    if prefix == "apis":
        if len(rest) < 3:
            return non_resource
        group, rest = rest[0], rest[1:]
    version, rest = rest[0], rest[1:]
    verb = ""
    if rest[0] == "watch":
        if len(rest) < 2:
            return RequestInfo(True, "watch", raw, prefix, group, version)
        verb, rest = "watch", rest[1:]
    else:
        verb = _METHOD_VERBS.get(method.upper(), "")
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in ("status", "finalize"):
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) >= 2 else ""
    subresource = rest[2] if len(rest) >= 3 else ""
    url_name = name
    if not name and verb == "get":
        verb = "watch" if watch_param in ("true", "1") else "list"
        name = _field_selector_name(field_selector)
    elif not name and verb == "watch":
        name = _field_selector_name(field_selector)
    if not name and verb == "delete":
        verb = "deletecollection"
    return RequestInfo(
        True,
        verb,
        raw,
        prefix,
        group,
        version,
        namespace,
        resource,
        subresource,
        name,
        tuple(rest),
        url_name,
    )


@frozen
class Target:
    """A resolved resource request: the resource and what the URL names."""

    info: ResourceInfo
    verb: str
    namespace: str
    name: str
    subresource: str


def resolve(ri: RequestInfo) -> Target:
    """The served resource the request addresses; 404/405/400 as kube answers."""
    if not ri.is_resource or not ri.resource:
        raise path_not_found()
    info = lookup(ri.group, ri.version, ri.resource)
    if info is None:
        raise path_not_found()
    if len(ri.parts) > 3:
        raise path_not_found()
    name = ri.url_name
    namespace = ri.namespace
    if info.plural == "namespaces":
        if ri.parts and ri.parts[0] == "namespaces" and len(ri.parts) >= 2:
            name = ri.parts[1]
        namespace = ""
    elif (not info.namespaced and namespace) or (info.namespaced and not namespace and name):
        raise path_not_found()
    for what, value in (("namespace", ri.namespace), ("resource name", name)):
        if value:
            errs = path_segment(value)
            if errs:
                raise bad_request(f"invalid {what} {value!r}: [{', '.join(errs)}]")
    if ri.subresource and info.subresource(ri.subresource) is None:
        raise path_not_found()
    verb = ri.verb
    if ri.subresource:
        sub = info.subresource(ri.subresource)
        assert sub is not None
        allowed = sub.verbs
    else:
        allowed = info.verbs
    base_verb = "get" if verb == "watch" and name else verb
    if verb == "watch" and "watch" in info.verbs and not ri.subresource:
        pass
    elif base_verb not in allowed:
        raise method_not_allowed()
    if verb == "create" and name and not ri.subresource:
        raise method_not_allowed()
    if verb in ("update", "patch") and not name:
        raise method_not_allowed()
    return Target(info, verb, namespace, name, ri.subresource)
