"""An independent model of Kubernetes RBAC: who may do what, decided naively.

Theory of operation
-------------------
This is the specification the API server's authorizer is checked against
(invariant API-AUTHORIZED).  It is written apart from `kubeproof.api.rbac`,
from the Kubernetes documentation ("Using RBAC Authorization",
"Authorization Overview: determine the request verb"), and favours being
obviously right over being fast:

* A request is (user, verb, and either a resource request -- API group,
  resource, subresource, namespace, name -- or a path).  `request_of`
  derives it from the HTTP method, path and query with the documented
  rules, including kube's quirks (``/api/v1/namespaces/NS`` is the
  Namespace NS inside namespace NS; a list or watch whose fieldSelector
  pins ``metadata.name=X`` is a request for X).
* The permissions a user holds in a namespace are the union, over every
  ClusterRoleBinding and every RoleBinding *of that namespace* naming the
  user (by name, by one of its groups, or as its service account), of the
  rules of the role the binding refers to.  A rule permits a request iff
  its verb, group, resource, name (or path) each belong to the sets the
  rule describes; `*` is "everything", ``*/sub`` "that subresource of
  every resource", a trailing ``*`` on a path "every path with this
  prefix", and a rule that lists resourceNames permits only requests that
  name one of them.
* Members of ``system:masters`` may do anything.
* Escalation: writing a Role or ClusterRole is allowed iff the writer may
  ``escalate`` it, or every request the new role would permit (in its
  namespace, or anywhere for a ClusterRole) is one the writer may already
  make there; writing a binding is allowed iff the writer may ``bind`` the
  referenced role, or already holds everything that role permits at the
  binding's scope.  "Every request a rule permits" is enumerated over a
  finite universe: the values the rules mention plus one value no rule
  names (so that a wildcard is only ever covered by a wildcard).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import product
from typing import Any

from attrs import frozen

FRESH = "zz-unnamed"
"""A value no generated rule names: what a wildcard covers beyond the named ones."""


@frozen
class Req:
    user: str
    groups: frozenset[str]
    verb: str
    resource_request: bool
    group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""


@frozen
class RbacSnapshot:
    """The raw RBAC objects (JSON, as stored) at one moment."""

    cluster_roles: Mapping[str, Mapping[str, Any]]
    roles: Mapping[tuple[str, str], Mapping[str, Any]]
    cluster_role_bindings: Sequence[Mapping[str, Any]]
    role_bindings: Sequence[Mapping[str, Any]]


# ---------------------------------------------------------------------------
# The request


def request_of(
    user: str, groups: Iterable[str], method: str, path: str, query: Mapping[str, Sequence[str]]
) -> Req:
    gs = frozenset(groups)
    segs = [s for s in path.split("/") if s]
    verb_of_method = {
        "GET": "get",
        "HEAD": "get",
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete",
    }
    plain = Req(user, gs, method.lower(), False, path=path)
    if len(segs) < 3 or segs[0] not in ("api", "apis"):
        return plain
    if segs[0] == "api":
        group, rest = "", segs[2:]
    else:
        if len(segs) < 4:
            return plain
        group, rest = segs[1], segs[3:]
    verb = verb_of_method.get(method.upper(), "")
    if rest[0] == "watch":
        verb = "watch"
        rest = rest[1:]
        if not rest:
            return Req(user, gs, verb, True, group=group)
    namespace = ""
    if rest[0] == "namespaces" and len(rest) >= 2:
        namespace = rest[1]
        if len(rest) >= 3 and rest[2] not in ("status", "finalize"):
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) >= 2 else ""
    sub = rest[2] if len(rest) >= 3 else ""
    if not name and verb in ("get", "watch"):
        if verb == "get":
            verb = "watch" if (query.get("watch") or [""])[0] in ("true", "1") else "list"
        name = _pinned_name((query.get("fieldSelector") or [""])[0])
    if not name and verb == "delete":
        verb = "deletecollection"
    return Req(user, gs, verb, True, group, resource, sub, namespace, name)


def _pinned_name(selector: str) -> str:
    for term in selector.split(","):
        term = term.strip()
        if "!=" in term:
            continue
        key, eq, value = term.replace("==", "=").partition("=")
        if eq and key.strip() == "metadata.name":
            value = value.strip()
            if value in (".", "..") or "/" in value or "%" in value:
                return ""
            return value
    return ""


# ---------------------------------------------------------------------------
# Rules and bindings


def _list(obj: Mapping[str, Any], key: str) -> list[str]:
    v = obj.get(key)
    return [str(x) for x in v] if isinstance(v, list) else []


def rule_permits(rule: Mapping[str, Any], r: Req) -> bool:
    verbs = _list(rule, "verbs")
    if "*" not in verbs and r.verb not in verbs:
        return False
    if not r.resource_request:
        for url in _list(rule, "nonResourceURLs"):
            if url == "*" or url == r.path:
                return True
            if url.endswith("*") and r.path.startswith(url[:-1]):
                return True
        return False
    groups = _list(rule, "apiGroups")
    if "*" not in groups and r.group not in groups:
        return False
    wanted = r.resource + ("/" + r.subresource if r.subresource else "")
    ok = False
    for res in _list(rule, "resources"):
        if res == "*" or res == wanted or (r.subresource and res == "*/" + r.subresource):
            ok = True
    if not ok:
        return False
    names = _list(rule, "resourceNames")
    return not names or r.name in names


def _subject_is(
    subject: Mapping[str, Any], user: str, groups: frozenset[str], binding_ns: str
) -> bool:
    kind = subject.get("kind")
    name = str(subject.get("name", ""))
    if kind == "User":
        return name == user
    if kind == "Group":
        return name in groups
    if kind == "ServiceAccount":
        ns = str(subject.get("namespace") or binding_ns)
        return user == "system:serviceaccount:" + ns + ":" + name
    return False


def _rules_of_ref(
    snap: RbacSnapshot, ref: Mapping[str, Any], binding_ns: str
) -> list[Mapping[str, Any]]:
    kind = ref.get("kind")
    name = str(ref.get("name", ""))
    if kind == "ClusterRole":
        role = snap.cluster_roles.get(name)
    elif kind == "Role":
        role = snap.roles.get((binding_ns, name))
    else:
        role = None
    if role is None:
        return []
    return [r for r in role.get("rules") or [] if isinstance(r, Mapping)]


def held_rules(
    snap: RbacSnapshot, user: str, groups: frozenset[str], namespace: str
) -> list[Mapping[str, Any]]:
    """Every rule granted to the user that applies in ``namespace`` ('' = cluster-wide only)."""
    out: list[Mapping[str, Any]] = []
    for b in snap.cluster_role_bindings:
        if any(_subject_is(s, user, groups, "") for s in b.get("subjects") or []):
            out += _rules_of_ref(snap, b.get("roleRef") or {}, "")
    if namespace:
        for b in snap.role_bindings:
            bns = str((b.get("metadata") or {}).get("namespace", ""))
            if bns != namespace:
                continue
            if any(_subject_is(s, user, groups, bns) for s in b.get("subjects") or []):
                out += _rules_of_ref(snap, b.get("roleRef") or {}, bns)
    return out


def allowed(snap: RbacSnapshot, r: Req) -> bool:
    if "system:masters" in r.groups:
        return True
    ns = r.namespace if r.resource_request else ""
    return any(rule_permits(rule, r) for rule in held_rules(snap, r.user, r.groups, ns))


# ---------------------------------------------------------------------------
# Escalation


def _universe(rules: Sequence[Mapping[str, Any]], key: str) -> set[str]:
    out = {FRESH}
    for r in rules:
        out.update(x for x in _list(r, key) if "*" not in x)
    return out


def _requests_of_rule(
    rule: Mapping[str, Any],
    universe_rules: Sequence[Mapping[str, Any]],
    user: str,
    groups: frozenset[str],
    ns: str,
) -> Iterable[Req]:
    """Every request in the finite universe that ``rule`` permits."""
    verbs = _universe(universe_rules, "verbs") | {v for v in _list(rule, "verbs") if v != "*"}
    if rule.get("nonResourceURLs"):
        paths = {"/" + FRESH, FRESH}
        for r in universe_rules:
            for u in _list(r, "nonResourceURLs"):
                paths.add(u.rstrip("*"))
                paths.add(u.rstrip("*") + FRESH)
        for verb, path in product(sorted(verbs), sorted(paths)):
            req = Req(user, groups, verb, False, path=path)
            if rule_permits(rule, req):
                yield req
        return
    api_groups = _universe(universe_rules, "apiGroups") | {""}
    resources: set[str] = {FRESH}
    subs: set[str] = {"", FRESH}
    for r in universe_rules:
        for res in _list(r, "resources"):
            base, _, sub = res.partition("/")
            if base != "*":
                resources.add(base)
            if sub and sub != "*":
                subs.add(sub)
    names = _universe(universe_rules, "resourceNames") | {""}
    for verb, g, res, sub, name in product(
        sorted(verbs), sorted(api_groups), sorted(resources), sorted(subs), sorted(names)
    ):
        req = Req(user, groups, verb, True, g, res, sub, ns, name)
        if rule_permits(rule, req):
            yield req


def covered(
    owner: Sequence[Mapping[str, Any]], servant: Sequence[Mapping[str, Any]], ns: str
) -> bool:
    """Does every request a servant rule permits (in the universe) have an owner
    rule that permits it too?"""
    universe = list(owner) + list(servant)
    nobody = frozenset[str]()
    for rule in servant:
        for req in _requests_of_rule(rule, universe, "", nobody, ns):
            if not any(rule_permits(o, req) for o in owner):
                return False
    return True


def may_write_rbac(
    snap: RbacSnapshot,
    user: str,
    groups: frozenset[str],
    kind: str,
    namespace: str,
    obj: Mapping[str, Any],
    *,
    creating: bool,
) -> bool:
    """The escalation rule for writing ``obj`` (a Role, ClusterRole, RoleBinding
    or ClusterRoleBinding) into ``namespace``."""
    if "system:masters" in groups:
        return True
    name = str((obj.get("metadata") or {}).get("name", ""))
    if kind in ("Role", "ClusterRole"):
        plural = "roles" if kind == "Role" else "clusterroles"
        esc = Req(
            user,
            groups,
            "escalate",
            True,
            "rbac.authorization.k8s.io",
            plural,
            "",
            namespace,
            "" if creating else name,
        )
        if allowed(snap, esc):
            return True
        rules = [r for r in obj.get("rules") or [] if isinstance(r, Mapping)]
        return covered(held_rules(snap, user, groups, namespace), rules, namespace)
    ref = obj.get("roleRef") or {}
    rkind = ref.get("kind")
    rname = str(ref.get("name", ""))
    plural = "clusterroles" if rkind == "ClusterRole" else "roles"
    bind = Req(
        user,
        groups,
        "bind",
        True,
        str(ref.get("apiGroup", "rbac.authorization.k8s.io")),
        plural,
        "",
        namespace,
        rname,
    )
    if allowed(snap, bind):
        return True
    role = (
        snap.cluster_roles.get(rname)
        if rkind == "ClusterRole"
        else snap.roles.get((namespace, rname))
    )
    if role is None:
        return False
    rules = [r for r in role.get("rules") or [] if isinstance(r, Mapping)]
    return covered(held_rules(snap, user, groups, namespace), rules, namespace)
