"""The objects kube-apiserver creates at start: system namespaces and default RBAC policy.

Theory of operation
-------------------
`bootstrap_objects()` lists them in creation order; the server creates
each one that does not exist yet (kube's post-start hooks do the same with
``rbac.authorization.kubernetes.io/autoupdate``), so a restart over an
existing store changes nothing.  The roles are kube 1.32's default policy,
cut to the resources this server has:

    cluster-admin            everything, bound to group system:masters
    admin / edit / view      the user-facing roles (no aggregation: their
                             rules are written out)
    system:discovery         discovery paths, for system:authenticated
    system:basic-user        self access/rules reviews, for system:authenticated
    system:public-info-viewer  /healthz /livez /readyz /version, for everyone
    system:kube-scheduler    what the scheduler reads and writes
    system:kube-controller-manager  what the controllers read and write
    system:node              what a kubelet reads and writes

and one of kube's per-controller roles, with its rules as kube writes them
(``controller_policy.go``; rules naming groups this server does not serve
are kept, they grant nothing here), bound to the controller's service
account in kube-system, the identity kube-controller-manager uses with
``--use-service-account-credentials``:

    system:controller:replicaset-controller   the ReplicaSet controller
"""

from __future__ import annotations

from typing import Any

from .resources import RBAC

Obj = dict[str, Any]

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")

_LABELS = {"kubernetes.io/bootstrapping": "rbac-defaults"}
_ANN = {"rbac.authorization.kubernetes.io/autoupdate": "true"}

READ = ["get", "list", "watch"]
WRITE = ["create", "delete", "deletecollection", "patch", "update"]


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> Obj:
    return {"verbs": verbs, "apiGroups": groups, "resources": resources}


def _urls(urls: list[str], verbs: list[str]) -> Obj:
    return {"verbs": verbs, "nonResourceURLs": urls}


def cluster_role(name: str, rules: list[Obj]) -> Obj:
    return {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": dict(_LABELS), "annotations": dict(_ANN)},
        "rules": rules,
    }


def cluster_role_binding(name: str, role: str, subjects: list[Obj]) -> Obj:
    return {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name, "labels": dict(_LABELS), "annotations": dict(_ANN)},
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": role},
        "subjects": subjects,
    }


def _group(name: str) -> Obj:
    return {"apiGroup": RBAC, "kind": "Group", "name": name}


def _user(name: str) -> Obj:
    return {"apiGroup": RBAC, "kind": "User", "name": name}


def _service_account(namespace: str, name: str) -> Obj:
    return {"kind": "ServiceAccount", "name": name, "namespace": namespace}


# kube's eventsRule(): what every controller may do to events.
EVENTS_RULE = _rule(["", "events.k8s.io"], ["events"], ["create", "patch", "update"])

# kube 1.32's controller roles (plugin/pkg/auth/authorizer/rbac/bootstrappolicy/
# controller_policy.go), verbs, groups and resources sorted as its rule builder sorts them.
CONTROLLER_ROLES = {
    "replicaset-controller": [
        _rule(["apps", "extensions"], ["replicasets"], ["get", "list", "update", "watch"]),
        _rule(["apps", "extensions"], ["replicasets/status"], ["update"]),
        _rule(["apps", "extensions"], ["replicasets/finalizers"], ["update"]),
        _rule([""], ["pods"], ["create", "delete", "list", "patch", "watch"]),
        EVENTS_RULE,
    ],
}


VIEW_RULES = [
    _rule(
        [""],
        ["pods", "pods/status", "services", "services/status", "configmaps", "events"],
        READ,
    ),
    _rule([""], ["namespaces", "namespaces/status"], READ),
    _rule(["apps"], ["replicasets", "replicasets/scale", "replicasets/status"], READ),
]
EDIT_RULES = [
    _rule([""], ["pods", "services", "configmaps", "events"], WRITE),
    _rule(["apps"], ["replicasets", "replicasets/scale"], WRITE),
    *VIEW_RULES,
]
ADMIN_RULES = [
    _rule([RBAC], ["roles", "rolebindings"], WRITE + READ),
    *EDIT_RULES,
]


def bootstrap_objects() -> list[tuple[str, Obj]]:
    """(plural, object) in creation order."""
    out: list[tuple[str, Obj]] = []
    for ns in SYSTEM_NAMESPACES:
        out.append(
            ("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        )
    roles = [
        cluster_role("cluster-admin", [_rule(["*"], ["*"], ["*"]), _urls(["*"], ["*"])]),
        cluster_role("admin", ADMIN_RULES),
        cluster_role("edit", EDIT_RULES),
        cluster_role("view", VIEW_RULES),
        cluster_role(
            "system:discovery",
            [
                _urls(
                    [
                        "/api",
                        "/api/*",
                        "/apis",
                        "/apis/*",
                        "/healthz",
                        "/livez",
                        "/openapi",
                        "/openapi/*",
                        "/readyz",
                        "/version",
                        "/version/",
                    ],
                    ["get"],
                )
            ],
        ),
        cluster_role(
            "system:basic-user",
            [
                _rule(
                    ["authorization.k8s.io"],
                    ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                    ["create"],
                ),
                _rule(["authentication.k8s.io"], ["selfsubjectreviews"], ["create"]),
            ],
        ),
        cluster_role(
            "system:public-info-viewer",
            [_urls(["/healthz", "/livez", "/readyz", "/version", "/version/"], ["get"])],
        ),
        cluster_role(
            "system:kube-scheduler",
            [
                _rule([""], ["events"], ["create", "patch", "update"]),
                _rule([""], ["pods"], ["delete", "get", "list", "watch"]),
                _rule([""], ["pods/binding"], ["create"]),
                _rule([""], ["pods/status"], ["patch", "update"]),
                _rule([""], ["nodes", "namespaces", "services"], READ),
                _rule(["apps"], ["replicasets"], READ),
            ],
        ),
        cluster_role(
            "system:kube-controller-manager",
            [
                _rule([""], ["pods", "events"], READ + WRITE),
                _rule([""], ["nodes", "nodes/status", "pods/status"], [*READ, "patch", "update"]),
                _rule([""], ["namespaces"], READ),
                _rule(["apps"], ["replicasets", "replicasets/status"], [*READ, "patch", "update"]),
            ],
        ),
        cluster_role(
            "system:node",
            [
                _rule([""], ["nodes"], ["create", "get", "list", "watch", "patch", "update"]),
                _rule([""], ["nodes/status"], ["patch", "update"]),
                _rule([""], ["pods"], ["get", "list", "watch", "delete"]),
                _rule([""], ["pods/status"], ["patch", "update"]),
                _rule([""], ["events"], ["create", "patch", "update"]),
                _rule([""], ["services", "configmaps"], READ),
            ],
        ),
    ]
    roles += [
        cluster_role(f"system:controller:{name}", rules) for name, rules in CONTROLLER_ROLES.items()
    ]
    out += [("clusterroles", r) for r in roles]
    bindings = [
        cluster_role_binding("cluster-admin", "cluster-admin", [_group("system:masters")]),
        cluster_role_binding(
            "system:discovery", "system:discovery", [_group("system:authenticated")]
        ),
        cluster_role_binding(
            "system:basic-user", "system:basic-user", [_group("system:authenticated")]
        ),
        cluster_role_binding(
            "system:public-info-viewer",
            "system:public-info-viewer",
            [_group("system:authenticated"), _group("system:unauthenticated")],
        ),
        cluster_role_binding(
            "system:kube-scheduler", "system:kube-scheduler", [_user("system:kube-scheduler")]
        ),
        cluster_role_binding(
            "system:kube-controller-manager",
            "system:kube-controller-manager",
            [_user("system:kube-controller-manager")],
        ),
        cluster_role_binding("system:node", "system:node", [_group("system:nodes")]),
    ]
    bindings += [
        cluster_role_binding(
            f"system:controller:{name}",
            f"system:controller:{name}",
            [_service_account("kube-system", name)],
        )
        for name in CONTROLLER_ROLES
    ]
    out += [("clusterrolebindings", b) for b in bindings]
    return out
