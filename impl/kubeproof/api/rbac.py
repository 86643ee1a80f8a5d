"""RBAC authorization, with Kubernetes' rule semantics and escalation checks.

Theory of operation
-------------------
A request is described by its `Attributes` (kube's authorizer.Attributes):
the user, the verb, and either a resource (API group, resource,
subresource, namespace, name) or a non-resource path.  The RBAC authorizer
allows it iff some rule of some role bound to the user matches, where the
bindings considered are every ClusterRoleBinding and, for a namespaced
request, the RoleBindings of that namespace (a RoleBinding grants its
role's rules only inside its own namespace, whether it refers to a Role or
a ClusterRole).  Nothing denies: rules only add permissions; no match is a
denial ("default deny").

A subject applies to a user when it is ``User`` with the user's name,
``Group`` with one of the user's groups, or ``ServiceAccount`` NAME in
NAMESPACE (empty: the binding's namespace) and the user is
``system:serviceaccount:NAMESPACE:NAME``.

A rule matches (kube's rbac/v1 helpers, exactly):

    verbs          contains the verb, or "*"
    apiGroups      contains the group, or "*"
    resources      contains "*", or "RES" (no subresource), or "RES/SUB",
                   or "*/SUB" (any resource's SUB); never by prefix
    resourceNames  empty, or contains the request's name (so a rule with
                   names never matches a list, watch, create or
                   deletecollection, which have no name)
    nonResourceURLs  contains "*", or the path, or "P*" with the path
                   starting with P

The ``system:masters`` group is allowed everything before RBAC is asked
(kube-apiserver's privileged-group authorizer), and is exempt from the
escalation checks.

Escalation (`covers`): a set of owner rules covers servant rules when every
servant rule, broken down to one verb / group / resource / name (or URL)
each, is covered by a single owner rule (kube's ``validation.Covers``).
Creating or updating a Role or ClusterRole needs the creator's own rules
(at the role's namespace, or cluster-wide) to cover it, or the
``escalate`` verb on it; creating or updating a binding needs the
referenced role's rules covered at the binding's namespace, or the
``bind`` verb on the referenced role.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from attrs import field, frozen

from .types import UserInfo

MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
ANONYMOUS = "system:anonymous"


@frozen
class Rule:
    verbs: tuple[str, ...] = ()
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()

    @staticmethod
    def from_json(r: Mapping[str, Any]) -> Rule:
        def strs(key: str) -> tuple[str, ...]:
            v = r.get(key) or ()
            return tuple(str(x) for x in v) if isinstance(v, list | tuple) else ()

        return Rule(
            strs("verbs"),
            strs("apiGroups"),
            strs("resources"),
            strs("resourceNames"),
            strs("nonResourceURLs"),
        )

    def to_json(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {"verbs": list(self.verbs)}
        if self.api_groups or self.resources:
            out["apiGroups"] = list(self.api_groups)
            out["resources"] = list(self.resources)
        if self.resource_names:
            out["resourceNames"] = list(self.resource_names)
        if self.non_resource_urls:
            out["nonResourceURLs"] = list(self.non_resource_urls)
        return out

    def __str__(self) -> str:
        # kube's PolicyRule CompactString form, used in escalation messages.
        parts = []
        if self.api_groups or self.resources:
            parts.append("APIGroups:[" + " ".join(f'"{g}"' for g in self.api_groups) + "]")
            parts.append("Resources:[" + " ".join(f'"{r}"' for r in self.resources) + "]")
        if self.resource_names:
            parts.append("ResourceNames:[" + " ".join(f'"{n}"' for n in self.resource_names) + "]")
        if self.non_resource_urls:
            parts.append(
                "NonResourceURLs:[" + " ".join(f'"{u}"' for u in self.non_resource_urls) + "]"
            )
        parts.append("Verbs:[" + " ".join(f'"{v}"' for v in self.verbs) + "]")
        return "{" + ", ".join(parts) + "}"


@frozen
class Subject:
    kind: str
    name: str
    namespace: str = ""


@frozen
class RoleRef:
    kind: str
    name: str


@frozen
class Binding:
    name: str
    namespace: str  # "" for a ClusterRoleBinding
    role_ref: RoleRef
    subjects: tuple[Subject, ...] = ()

    @staticmethod
    def from_json(obj: Mapping[str, Any]) -> Binding:
        meta = obj.get("metadata") or {}
        ref = obj.get("roleRef") or {}
        subjects = tuple(
            Subject(str(s.get("kind", "")), str(s.get("name", "")), str(s.get("namespace", "")))
            for s in obj.get("subjects") or []
            if isinstance(s, Mapping)
        )
        return Binding(
            str(meta.get("name", "")),
            str(meta.get("namespace", "")),
            RoleRef(str(ref.get("kind", "")), str(ref.get("name", ""))),
            subjects,
        )


def rules_of(obj: Mapping[str, Any]) -> tuple[Rule, ...]:
    return tuple(Rule.from_json(r) for r in obj.get("rules") or [] if isinstance(r, Mapping))


@frozen
class RbacState:
    """A snapshot of every RBAC object, as the authorizer needs them."""

    cluster_roles: Mapping[str, tuple[Rule, ...]] = field(factory=dict)
    roles: Mapping[tuple[str, str], tuple[Rule, ...]] = field(factory=dict)
    cluster_role_bindings: tuple[Binding, ...] = ()
    role_bindings: Mapping[str, tuple[Binding, ...]] = field(factory=dict)


@frozen
class Attributes:
    """kube's authorizer.Attributes."""

    user: UserInfo
    verb: str
    resource_request: bool = True
    namespace: str = ""
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    path: str = ""


@frozen
class Decision:
    allowed: bool
    reason: str = ""


class Authorizer(Protocol):
    def authorize(self, attrs: Attributes) -> Decision: ...


# ---------------------------------------------------------------------------
# Matching


def verb_matches(rule: Rule, verb: str) -> bool:
    return "*" in rule.verbs or verb in rule.verbs


def group_matches(rule: Rule, group: str) -> bool:
    return "*" in rule.api_groups or group in rule.api_groups


def resource_matches(rule: Rule, combined: str, subresource: str) -> bool:
    for r in rule.resources:
        if r == "*" or r == combined:
            return True
        if subresource and r == "*/" + subresource:
            return True
    return False


def name_matches(rule: Rule, name: str) -> bool:
    return not rule.resource_names or name in rule.resource_names


def url_matches(rule: Rule, path: str) -> bool:
    for u in rule.non_resource_urls:
        if u == "*" or u == path:
            return True
        if u.endswith("*") and path.startswith(u[:-1]):
            return True
    return False


def rule_allows(rule: Rule, attrs: Attributes) -> bool:
    if attrs.resource_request:
        combined = attrs.resource + ("/" + attrs.subresource if attrs.subresource else "")
        return (
            verb_matches(rule, attrs.verb)
            and group_matches(rule, attrs.api_group)
            and resource_matches(rule, combined, attrs.subresource)
            and name_matches(rule, attrs.name)
        )
    return verb_matches(rule, attrs.verb) and url_matches(rule, attrs.path)


def applies_to(subject: Subject, user: UserInfo, binding_namespace: str) -> bool:
    if subject.kind == "User":
        return subject.name == user.name
    if subject.kind == "Group":
        return subject.name in user.groups
    if subject.kind == "ServiceAccount":
        ns = subject.namespace or binding_namespace
        return user.name == f"system:serviceaccount:{ns}:{subject.name}"
    return False


def role_rules(state: RbacState, ref: RoleRef, namespace: str) -> tuple[Rule, ...] | None:
    """The rules of a binding's role; None when it does not exist."""
    if ref.kind == "ClusterRole":
        return state.cluster_roles.get(ref.name)
    if ref.kind == "Role":
        return state.roles.get((namespace, ref.name))
    return None


def _bindings(state: RbacState, namespace: str) -> Iterable[Binding]:
    yield from state.cluster_role_bindings
    if namespace:
        yield from state.role_bindings.get(namespace, ())


def rules_for(state: RbacState, user: UserInfo, namespace: str) -> list[Rule]:
    """Every rule that applies to the user at this namespace ('' = cluster scope)."""
    out: list[Rule] = []
    for b in _bindings(state, namespace):
        if not any(applies_to(s, user, b.namespace) for s in b.subjects):
            continue
        rules = role_rules(state, b.role_ref, b.namespace)
        if rules:
            out.extend(rules)
    return out


def rbac_allows(state: RbacState, attrs: Attributes) -> Decision:
    for b in _bindings(state, attrs.namespace if attrs.resource_request else ""):
        if not any(applies_to(s, attrs.user, b.namespace) for s in b.subjects):
            continue
        rules = role_rules(state, b.role_ref, b.namespace)
        for r in rules or ():
            if rule_allows(r, attrs):
                return Decision(True, _allow_reason(b, attrs.user))
    return Decision(False, "")


def _allow_reason(b: Binding, user: UserInfo) -> str:
    """kube's RBAC reason: 'RBAC: allowed by RoleBinding "b/ns" of Role "r" to User "u"'."""
    subject = next((s for s in b.subjects if applies_to(s, user, b.namespace)), None)
    who = f'{subject.kind} "{subject.name}"' if subject is not None else ""
    binding = (
        f'RoleBinding "{b.name}/{b.namespace}"' if b.namespace else f'ClusterRoleBinding "{b.name}"'
    )
    return f'RBAC: allowed by {binding} of {b.role_ref.kind} "{b.role_ref.name}" to {who}'


class StateSource(Protocol):
    def __call__(self) -> RbacState: ...


class RBACAuthorizer:
    """kube-apiserver's authorizer chain for ``--authorization-mode=RBAC``:
    the privileged group first, then RBAC over the current state."""

    def __init__(self, source: StateSource) -> None:
        self.source = source

    def authorize(self, attrs: Attributes) -> Decision:
        if MASTERS in attrs.user.groups:
            return Decision(True, "")
        return rbac_allows(self.source(), attrs)


class AlwaysAllow:
    def authorize(self, attrs: Attributes) -> Decision:
        return Decision(True, "")


# ---------------------------------------------------------------------------
# Escalation (kube's rbac/validation Covers)


def breakdown(rule: Rule) -> list[Rule]:
    """One rule per verb x group x resource x name (or per verb x URL)."""
    out: list[Rule] = []
    for verb in rule.verbs:
        for group in rule.api_groups:
            for res in rule.resources:
                if rule.resource_names:
                    for name in rule.resource_names:
                        out.append(Rule((verb,), (group,), (res,), (name,)))
                else:
                    out.append(Rule((verb,), (group,), (res,)))
        for url in rule.non_resource_urls:
            out.append(Rule((verb,), non_resource_urls=(url,)))
    return out


def _has(items: Sequence[str], item: str) -> bool:
    return item in items


def _resource_covers(owner: Sequence[str], servant: str) -> bool:
    if "*" in owner or servant in owner:
        return True
    if "/" in servant:
        sub = servant.split("/", 1)[1]
        return "*/" + sub in owner
    return False


def _url_covers(owner: Sequence[str], servant: str) -> bool:
    for u in owner:
        if u == servant or u == "*":
            return True
        if u.endswith("*") and servant.startswith(u[:-1]):
            return True
    return False


def rule_covers(owner: Rule, servant: Rule) -> bool:
    """Does one owner rule cover one broken-down servant rule?"""
    verbs = "*" in owner.verbs or all(v in owner.verbs for v in servant.verbs)
    groups = "*" in owner.api_groups or all(g in owner.api_groups for g in servant.api_groups)
    resources = all(_resource_covers(owner.resources, r) for r in servant.resources)
    urls = all(_url_covers(owner.non_resource_urls, u) for u in servant.non_resource_urls)
    if servant.resource_names:
        names = not owner.resource_names or all(
            n in owner.resource_names for n in servant.resource_names
        )
    else:
        names = not owner.resource_names
    return verbs and groups and resources and urls and names


def covers(owner: Sequence[Rule], servant: Sequence[Rule]) -> tuple[bool, list[Rule]]:
    """(every servant rule covered, the broken-down rules that are not)."""
    missing: list[Rule] = []
    for s in servant:
        for atom in breakdown(s):
            if not any(rule_covers(o, atom) for o in owner):
                missing.append(atom)
    return not missing, missing


def escalation_message(user: UserInfo, missing: Sequence[Rule]) -> str:
    groups = "[" + " ".join(f'"{g}"' for g in user.groups) + "]"
    lines = "\n".join(str(r) for r in missing)
    return (
        f'user "{user.name}" (groups={groups}) is attempting to grant RBAC permissions not '
        f"currently held:\n{lines}"
    )


def subject_rules_review(
    state: RbacState, user: UserInfo, namespace: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(resourceRules, nonResourceRules) of a SelfSubjectRulesReview."""
    res: list[dict[str, Any]] = []
    nonres: list[dict[str, Any]] = []
    for r in rules_for(state, user, namespace):
        if r.non_resource_urls:
            nonres.append({"verbs": list(r.verbs), "nonResourceURLs": list(r.non_resource_urls)})
        else:
            item: dict[str, Any] = {
                "verbs": list(r.verbs),
                "apiGroups": list(r.api_groups),
                "resources": list(r.resources),
            }
            if r.resource_names:
                item["resourceNames"] = list(r.resource_names)
            res.append(item)
    return res, nonres
