"""The resource registry: every kind the API server serves, as discovery describes it.

Theory of operation
-------------------
`RESOURCES` lists one `ResourceInfo` per resource (group, version, kind,
plural and singular names, scope, verbs, short names, categories,
subresources) plus where kube-apiserver keeps it in etcd (``etcd_prefix``,
e.g. ``/registry/minions`` for nodes, ``/registry/services/specs`` for
services).  The path parser, the storage layout, the authorizer and the
HTTP layer's discovery and OpenAPI documents are all derived from it, so a
resource exists in exactly one place.

``storage`` says whether objects are kept (the review resources of
authorization.k8s.io and authentication.k8s.io are create-only and answer
without storing anything, as in kube).
"""

from __future__ import annotations

from collections.abc import Iterator

from attrs import frozen

RW_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
CREATE_ONLY = ("create",)
STATUS_VERBS = ("get", "patch", "update")


@frozen
class SubresourceInfo:
    name: str
    kind: str
    group: str
    version: str
    verbs: tuple[str, ...]


@frozen
class ResourceInfo:
    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    verbs: tuple[str, ...]
    etcd_prefix: str
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[SubresourceInfo, ...] = ()
    storage: bool = True

    @property
    def group_version(self) -> str:
        """'v1' for the core group, else 'group/version'."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def api_version(self) -> str:
        return self.group_version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def qualified(self) -> str:
        """The resource as error messages print it: 'pods', 'replicasets.apps'."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def subresource(self, name: str) -> SubresourceInfo | None:
        for s in self.subresources:
            if s.name == name:
                return s
        return None


def _status(group: str, version: str, kind: str) -> SubresourceInfo:
    return SubresourceInfo("status", kind, group, version, STATUS_VERBS)


RBAC = "rbac.authorization.k8s.io"
AUTHZ = "authorization.k8s.io"
AUTHN = "authentication.k8s.io"

RESOURCES: tuple[ResourceInfo, ...] = (
    ResourceInfo(
        "",
        "v1",
        "Namespace",
        "namespaces",
        "namespace",
        False,
        RW_VERBS[:2] + RW_VERBS[3:],  # no deletecollection on namespaces
        "/registry/namespaces",
        short_names=("ns",),
        subresources=(_status("", "v1", "Namespace"),),
    ),
    ResourceInfo(
        "",
        "v1",
        "Node",
        "nodes",
        "node",
        False,
        RW_VERBS,
        "/registry/minions",
        short_names=("no",),
        subresources=(_status("", "v1", "Node"),),
    ),
    ResourceInfo(
        "",
        "v1",
        "Pod",
        "pods",
        "pod",
        True,
        RW_VERBS,
        "/registry/pods",
        short_names=("po",),
        categories=("all",),
        subresources=(
            _status("", "v1", "Pod"),
            SubresourceInfo("binding", "Binding", "", "v1", CREATE_ONLY),
        ),
    ),
    ResourceInfo(
        "",
        "v1",
        "Service",
        "services",
        "service",
        True,
        ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"),
        "/registry/services/specs",
        short_names=("svc",),
        categories=("all",),
        subresources=(_status("", "v1", "Service"),),
    ),
    ResourceInfo(
        "",
        "v1",
        "Event",
        "events",
        "event",
        True,
        RW_VERBS,
        "/registry/events",
        short_names=("ev",),
    ),
    ResourceInfo(
        "",
        "v1",
        "ConfigMap",
        "configmaps",
        "configmap",
        True,
        RW_VERBS,
        "/registry/configmaps",
        short_names=("cm",),
    ),
    ResourceInfo(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        "replicaset",
        True,
        RW_VERBS,
        "/registry/replicasets",
        short_names=("rs",),
        categories=("all",),
        subresources=(
            _status("apps", "v1", "ReplicaSet"),
            SubresourceInfo("scale", "Scale", "autoscaling", "v1", STATUS_VERBS),
        ),
    ),
    ResourceInfo(RBAC, "v1", "Role", "roles", "role", True, RW_VERBS, "/registry/roles"),
    ResourceInfo(
        RBAC,
        "v1",
        "ClusterRole",
        "clusterroles",
        "clusterrole",
        False,
        RW_VERBS,
        "/registry/clusterroles",
    ),
    ResourceInfo(
        RBAC,
        "v1",
        "RoleBinding",
        "rolebindings",
        "rolebinding",
        True,
        RW_VERBS,
        "/registry/rolebindings",
    ),
    ResourceInfo(
        RBAC,
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        "clusterrolebinding",
        False,
        RW_VERBS,
        "/registry/clusterrolebindings",
    ),
    ResourceInfo(
        AUTHZ,
        "v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        "selfsubjectaccessreview",
        False,
        CREATE_ONLY,
        "",
        storage=False,
    ),
    ResourceInfo(
        AUTHZ,
        "v1",
        "SelfSubjectRulesReview",
        "selfsubjectrulesreviews",
        "selfsubjectrulesreview",
        False,
        CREATE_ONLY,
        "",
        storage=False,
    ),
    ResourceInfo(
        AUTHZ,
        "v1",
        "SubjectAccessReview",
        "subjectaccessreviews",
        "subjectaccessreview",
        False,
        CREATE_ONLY,
        "",
        storage=False,
    ),
    # What `kubectl auth whoami` asks: who the server thinks the caller is.
    ResourceInfo(
        AUTHN,
        "v1",
        "SelfSubjectReview",
        "selfsubjectreviews",
        "selfsubjectreview",
        False,
        CREATE_ONLY,
        "",
        storage=False,
    ),
)
"""Every served resource.  Discovery lists them in this order."""

_BY_PATH: dict[tuple[str, str, str], ResourceInfo] = {
    (r.group, r.version, r.plural): r for r in RESOURCES
}
_BY_KIND: dict[tuple[str, str], ResourceInfo] = {(r.group, r.kind): r for r in RESOURCES}


def lookup(group: str, version: str, plural: str) -> ResourceInfo | None:
    """The resource at /api(s)/group/version/plural, or None."""
    return _BY_PATH.get((group, version, plural))


def by_kind(group: str, kind: str) -> ResourceInfo | None:
    return _BY_KIND.get((group, kind))


def by_plural(plural: str) -> ResourceInfo | None:
    """The first resource with this plural (plurals are unique among ours)."""
    for r in RESOURCES:
        if r.plural == plural:
            return r
    return None


def group_versions() -> Iterator[tuple[str, str]]:
    """(group, version) pairs served, core group first, in registry order."""
    seen: set[tuple[str, str]] = set()
    for r in RESOURCES:
        gv = (r.group, r.version)
        if gv not in seen:
            seen.add(gv)
            yield gv


def stored() -> tuple[ResourceInfo, ...]:
    return tuple(r for r in RESOURCES if r.storage)
