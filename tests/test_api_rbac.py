"""Authentication, RBAC authorization and escalation, checked against the independent model."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubeproof.api import (
    ApiRequest,
    Attributes,
    Authenticator,
    CredentialFileError,
    Unauthorized,
    UserInfo,
)
from kubeproof.api.rbac import Rule, covers, rbac_allows
from kubeproof.api.rbaccache import build_state
from kubeproof.spec.api import rbac_model as model
from kubeproof.spec.api import snapshot

from .api_helpers import ADMIN, Api, pod

RBAC = "rbac.authorization.k8s.io"
BOB = UserInfo("bob", ("system:authenticated",))


# ---------------------------------------------------------------------------
# Authentication


TOKENS = 'abc123,alice,uid-1,"devs,ops"\n# a comment\nt2,bob,uid-2\n'
PASSWORDS = "secret,carol,uid-3,admins\n"


def test_token_file_bearer_authentication() -> None:
    a = Authenticator(token_file_csv_text=TOKENS)
    alice = a.authenticate({"Authorization": "Bearer abc123"})
    assert alice == UserInfo("alice", ("devs", "ops", "system:authenticated"), "uid-1")
    assert a.authenticate({"authorization": "bearer t2"}) == UserInfo(
        "bob", ("system:authenticated",), "uid-2"
    )
    with pytest.raises(Unauthorized):
        a.authenticate({"Authorization": "Bearer nope"})
    with pytest.raises(Unauthorized):
        a.authenticate({"Authorization": "Bearer "})
    with pytest.raises(Unauthorized):
        a.authenticate({"Authorization": "Negotiate xyz"})
    assert a.authenticate({}) is None


def test_basic_and_certificate_authentication() -> None:
    a = Authenticator(basic_file_csv_text=PASSWORDS)
    cred = base64.b64encode(b"carol:secret").decode()
    assert a.authenticate({"Authorization": f"Basic {cred}"}) == UserInfo(
        "carol", ("admins", "system:authenticated"), "uid-3"
    )
    for bad in (
        base64.b64encode(b"carol:wrong").decode(),
        base64.b64encode(b"nobody:secret").decode(),
        "%%%",
    ):
        with pytest.raises(Unauthorized):
            a.authenticate({"Authorization": f"Basic {bad}"})
    cert = a.authenticate({}, ("alice", ("devs", "system:masters")))
    assert cert == UserInfo("alice", ("devs", "system:masters", "system:authenticated"))
    err = Unauthorized()
    assert err.status()["code"] == 401 and err.status()["reason"] == "Unauthorized"


def test_bad_credential_files_are_refused_with_the_line() -> None:
    with pytest.raises(CredentialFileError, match="line 2"):
        Authenticator(token_file_csv_text="a,b,c\nonly-two,cols\n")
    with pytest.raises(CredentialFileError, match="line 1"):
        Authenticator(basic_file_csv_text=",user,uid\n")


# ---------------------------------------------------------------------------
# RBAC through the server


def _grant(
    api: Api,
    ns: str,
    name: str,
    rules: list[dict[str, Any]],
    subjects: list[dict[str, Any]],
    cluster: bool = False,
) -> None:
    if cluster:
        api.ok(
            "POST", f"/apis/{RBAC}/v1/clusterroles", {"metadata": {"name": name}, "rules": rules}
        )
        api.ok(
            "POST",
            f"/apis/{RBAC}/v1/clusterrolebindings",
            {
                "metadata": {"name": name},
                "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": name},
                "subjects": subjects,
            },
        )
        return
    api.ok(
        "POST",
        f"/apis/{RBAC}/v1/namespaces/{ns}/roles",
        {"metadata": {"name": name}, "rules": rules},
    )
    api.ok(
        "POST",
        f"/apis/{RBAC}/v1/namespaces/{ns}/rolebindings",
        {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": name},
            "subjects": subjects,
        },
    )


def _user(name: str) -> list[dict[str, Any]]:
    return [{"kind": "User", "name": name, "apiGroup": RBAC}]


@pytest.fixture
def api() -> Api:
    a = Api()
    a.ns("x")
    a.ns("y")
    a.ok("POST", "/api/v1/namespaces/x/pods", pod("p"))
    a.ok("POST", "/api/v1/namespaces/x/pods", pod("q"))
    return a


def test_forbidden_messages_are_kubes(api: Api) -> None:
    def msg(method: str, path: str, **kw: Any) -> str:
        r = api.req(method, path, user=BOB, **kw)
        assert r.status == 403 and r.body is not None
        return str(r.body["message"])

    assert msg("GET", "/api/v1/namespaces/x/pods") == (
        'pods is forbidden: User "bob" cannot list resource "pods" in API group "" in the namespace "x"'
    )
    assert msg("GET", "/api/v1/namespaces/x/pods/p") == (
        'pods "p" is forbidden: User "bob" cannot get resource "pods" in API group "" in the namespace "x"'
    )
    assert msg("GET", "/api/v1/nodes") == (
        'nodes is forbidden: User "bob" cannot list resource "nodes" in API group "" at the cluster scope'
    )
    assert msg("GET", "/api/v1/namespaces/x/pods/p/status") == (
        'pods "p" is forbidden: User "bob" cannot get resource "pods/status" in API group "" in the namespace "x"'
    )
    assert msg("GET", "/apis/apps/v1/namespaces/x/replicasets") == (
        'replicasets.apps is forbidden: User "bob" cannot list resource "replicasets" '
        'in API group "apps" in the namespace "x"'
    )
    assert msg("GET", "/api/v1/namespaces/x") == (
        'namespaces "x" is forbidden: User "bob" cannot get resource "namespaces" in API group "" in the namespace "x"'
    )
    denied = api.server.authorize_request(ApiRequest("GET", "/metrics", user=BOB))
    assert denied is not None and denied.body is not None
    assert denied.body["message"] == 'forbidden: User "bob" cannot get path "/metrics"'


def test_subresources_and_wildcards(api: Api) -> None:
    _grant(
        api,
        "x",
        "pods-only",
        [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
        _user("bob"),
    )
    assert api.req("GET", "/api/v1/namespaces/x/pods/p", user=BOB).status == 200
    assert api.req("GET", "/api/v1/namespaces/x/pods/p/status", user=BOB).status == 403
    _grant(
        api,
        "x",
        "any-status",
        [{"apiGroups": [""], "resources": ["*/status"], "verbs": ["get"]}],
        _user("bob"),
    )
    assert api.req("GET", "/api/v1/namespaces/x/pods/p/status", user=BOB).status == 200
    # Never by prefix: "pod" does not grant "pods".
    _grant(
        api,
        "y",
        "pod-singular",
        [{"apiGroups": [""], "resources": ["pod"], "verbs": ["*"]}],
        _user("bob"),
    )
    assert api.req("GET", "/api/v1/namespaces/y/pods", user=BOB).status == 403


def test_resource_names_limit_named_requests_only(api: Api) -> None:
    _grant(
        api,
        "x",
        "just-p",
        [
            {
                "apiGroups": [""],
                "resources": ["pods"],
                "resourceNames": ["p"],
                "verbs": ["get", "list", "delete"],
            }
        ],
        _user("bob"),
    )
    assert api.req("GET", "/api/v1/namespaces/x/pods/p", user=BOB).status == 200
    assert api.req("GET", "/api/v1/namespaces/x/pods/q", user=BOB).status == 403
    assert api.req("GET", "/api/v1/namespaces/x/pods", user=BOB).status == 403
    # kube authorizes a list pinned to one name as a request for that name.
    pinned = api.req(
        "GET", "/api/v1/namespaces/x/pods", user=BOB, query={"fieldSelector": "metadata.name=p"}
    )
    assert pinned.status == 200 and pinned.body is not None
    assert [i["metadata"]["name"] for i in pinned.body["items"]] == ["p"]
    assert api.req("DELETE", "/api/v1/namespaces/x/pods", user=BOB).status == 403


def test_rolebinding_to_clusterrole_is_confined_to_its_namespace(api: Api) -> None:
    api.ok(
        "POST",
        f"/apis/{RBAC}/v1/namespaces/x/rolebindings",
        {
            "metadata": {"name": "b"},
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "view"},
            "subjects": _user("bob"),
        },
    )
    assert api.req("GET", "/api/v1/namespaces/x/pods", user=BOB).status == 200
    assert api.req("GET", "/api/v1/namespaces/y/pods", user=BOB).status == 403
    assert api.req("GET", "/api/v1/pods", user=BOB).status == 403
    assert api.req("GET", "/api/v1/namespaces/x", user=BOB).status == 200  # the namespace quirk


def test_groups_service_accounts_and_masters(api: Api) -> None:
    _grant(
        api,
        "x",
        "g",
        [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}],
        [{"kind": "Group", "name": "devs", "apiGroup": RBAC}],
    )
    dev = UserInfo("dana", ("devs", "system:authenticated"))
    assert api.req("GET", "/api/v1/namespaces/x/pods", user=dev).status == 200
    _grant(
        api,
        "x",
        "sa",
        [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
        [{"kind": "ServiceAccount", "name": "robot"}],
    )
    robot = UserInfo(
        "system:serviceaccount:x:robot", ("system:serviceaccounts", "system:authenticated")
    )
    other_robot = UserInfo(
        "system:serviceaccount:y:robot", ("system:serviceaccounts", "system:authenticated")
    )
    assert api.req("GET", "/api/v1/namespaces/x/pods/p", user=robot).status == 200
    assert api.req("GET", "/api/v1/namespaces/x/pods/p", user=other_robot).status == 403
    # system:masters passes even with its binding gone (kube's privileged-group authorizer).
    api.ok("DELETE", f"/apis/{RBAC}/v1/clusterrolebindings/cluster-admin")
    assert api.req("GET", "/api/v1/nodes", user=ADMIN).status == 200


def test_default_policy_discovery_and_reviews(api: Api) -> None:
    assert api.server.authorize_request(ApiRequest("GET", "/apis/apps/v1", user=BOB)) is None
    assert api.server.authorize_request(ApiRequest("GET", "/healthz", user=BOB)) is None
    ssar = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"namespace": "x", "verb": "get", "resource": "pods"}},
    }
    r = api.req("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", ssar, user=BOB)
    assert r.status == 201 and r.body is not None
    assert r.body["status"] == {"allowed": False}
    _grant(
        api,
        "x",
        "reader",
        [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
        _user("bob"),
    )
    r = api.req("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", ssar, user=BOB)
    assert r.body is not None and r.body["status"]["allowed"] is True
    assert (
        r.body["status"]["reason"]
        == 'RBAC: allowed by RoleBinding "reader/x" of Role "reader" to User "bob"'
    )
    nonres = {"spec": {"nonResourceAttributes": {"path": "/healthz", "verb": "get"}}}
    r = api.req("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", nonres, user=BOB)
    assert r.body is not None and r.body["status"]["allowed"] is True
    neither = api.req(
        "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", {"spec": {}}, user=BOB
    )
    assert neither.status == 422
    rules = api.req(
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
        {"spec": {"namespace": "x"}},
        user=BOB,
    )
    assert rules.status == 201 and rules.body is not None
    assert {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]} in rules.body["status"][
        "resourceRules"
    ]
    assert rules.body["status"]["incomplete"] is False
    sar = {
        "spec": {
            "user": "bob",
            "resourceAttributes": {"namespace": "x", "verb": "get", "resource": "pods"},
        }
    }
    assert (
        api.req("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", sar, user=BOB).status
        == 403
    )
    r = api.req("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", sar)
    assert r.body is not None and r.body["status"]["allowed"] is True


def test_escalation_rules(api: Api) -> None:
    # bob administers RBAC in x and may read pods there, nothing more.
    _grant(
        api,
        "x",
        "rbac-admin",
        [
            {
                "apiGroups": [RBAC],
                "resources": ["roles", "rolebindings"],
                "verbs": ["create", "update", "get"],
            },
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
        ],
        _user("bob"),
    )
    modest = {
        "metadata": {"name": "modest"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
    }
    assert api.req("POST", f"/apis/{RBAC}/v1/namespaces/x/roles", modest, user=BOB).status == 201
    greedy = {
        "metadata": {"name": "greedy"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "delete"]}],
    }
    r = api.req("POST", f"/apis/{RBAC}/v1/namespaces/x/roles", greedy, user=BOB)
    assert r.status == 403 and r.body is not None
    assert r.body["message"] == (
        'roles.rbac.authorization.k8s.io "greedy" is forbidden: user "bob" (groups=["system:authenticated"]) '
        "is attempting to grant RBAC permissions not currently held:\n"
        '{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}'
    )
    # Binding: bob may bind "modest" (he holds it all) but not the admin ClusterRole.
    bind_modest = {
        "metadata": {"name": "b1"},
        "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "modest"},
        "subjects": _user("eve"),
    }
    assert (
        api.req("POST", f"/apis/{RBAC}/v1/namespaces/x/rolebindings", bind_modest, user=BOB).status
        == 201
    )
    bind_admin = {
        "metadata": {"name": "b2"},
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "admin"},
        "subjects": _user("eve"),
    }
    assert (
        api.req("POST", f"/apis/{RBAC}/v1/namespaces/x/rolebindings", bind_admin, user=BOB).status
        == 403
    )
    missing = {
        "metadata": {"name": "b3"},
        "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "nope"},
        "subjects": _user("eve"),
    }
    r = api.req("POST", f"/apis/{RBAC}/v1/namespaces/x/rolebindings", missing, user=BOB)
    assert r.status == 404 and r.body is not None
    assert r.body["message"] == 'roles.rbac.authorization.k8s.io "nope" not found'
    # The escalate and bind verbs lift the rule.
    _grant(
        api,
        "x",
        "lift",
        [
            {"apiGroups": [RBAC], "resources": ["roles"], "verbs": ["escalate"]},
            {
                "apiGroups": [RBAC],
                "resources": ["clusterroles"],
                "verbs": ["bind"],
                "resourceNames": ["admin"],
            },
        ],
        _user("bob"),
    )
    assert api.req("POST", f"/apis/{RBAC}/v1/namespaces/x/roles", greedy, user=BOB).status == 201
    assert (
        api.req("POST", f"/apis/{RBAC}/v1/namespaces/x/rolebindings", bind_admin, user=BOB).status
        == 201
    )


def test_role_ref_is_immutable_and_rules_validated(api: Api) -> None:
    b = api.ok(
        "POST",
        f"/apis/{RBAC}/v1/namespaces/x/rolebindings",
        {
            "metadata": {"name": "b"},
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "view"},
            "subjects": _user("bob"),
        },
    )
    b["roleRef"]["name"] = "edit"
    r = api.req("PUT", f"/apis/{RBAC}/v1/namespaces/x/rolebindings/b", b)
    assert r.status == 422 and r.body is not None and "cannot change roleRef" in r.body["message"]
    bad = {
        "metadata": {"name": "r"},
        "rules": [
            {"verbs": ["get"], "nonResourceURLs": ["/x"]},
            {"verbs": [], "apiGroups": [""], "resources": ["pods"]},
        ],
    }
    r = api.req("POST", f"/apis/{RBAC}/v1/namespaces/x/roles", bad)
    assert r.status == 422 and r.body is not None
    assert (
        "rules[0].nonResourceURLs" in r.body["message"]
        and "rules[1].verbs: Required value" in r.body["message"]
    )
    crb = {
        "metadata": {"name": "c"},
        "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "x"},
        "subjects": [{"kind": "ServiceAccount", "name": "s"}],
    }
    r = api.req("POST", f"/apis/{RBAC}/v1/clusterrolebindings", crb)
    assert r.status == 422 and r.body is not None
    assert (
        'roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole"'
        in r.body["message"]
    )
    assert "subjects[0].namespace: Required value" in r.body["message"]


# ---------------------------------------------------------------------------
# The authorizer against the independent model (API-AUTHORIZED)

VERBS = [
    "get",
    "list",
    "watch",
    "create",
    "update",
    "delete",
    "deletecollection",
    "patch",
    "escalate",
    "bind",
    "*",
]
GROUPS = ["", "apps", RBAC, "*"]
RESOURCES = [
    "pods",
    "pods/status",
    "configmaps",
    "roles",
    "replicasets",
    "*",
    "*/status",
    "pod",
    "replicasets/scale",
]
NAMES = ["a", "b"]
URLS = ["/healthz", "/api", "/api/*", "*", "/apis/*", "/version"]
USERS = ["alice", "bob", "system:serviceaccount:x:robot"]
NSS = ["x", "y"]

resource_rules = st.fixed_dictionaries(
    {
        "verbs": st.lists(st.sampled_from(VERBS), min_size=1, max_size=3, unique=True),
        "apiGroups": st.lists(st.sampled_from(GROUPS), min_size=1, max_size=2, unique=True),
        "resources": st.lists(st.sampled_from(RESOURCES), min_size=1, max_size=3, unique=True),
    },
    optional={
        "resourceNames": st.lists(st.sampled_from(NAMES), min_size=1, max_size=2, unique=True)
    },
)
url_rules = st.fixed_dictionaries(
    {
        "verbs": st.lists(
            st.sampled_from(["get", "post", "*"]), min_size=1, max_size=2, unique=True
        ),
        "nonResourceURLs": st.lists(st.sampled_from(URLS), min_size=1, max_size=2, unique=True),
    }
)
subjects = st.lists(
    st.one_of(
        st.builds(
            lambda n: {"kind": "User", "name": n, "apiGroup": RBAC}, st.sampled_from(USERS[:2])
        ),
        st.just({"kind": "Group", "name": "devs", "apiGroup": RBAC}),
        st.builds(
            lambda ns: {"kind": "ServiceAccount", "name": "robot", "namespace": ns},
            st.sampled_from(NSS),
        ),
        st.just({"kind": "ServiceAccount", "name": "robot"}),
    ),
    min_size=1,
    max_size=2,
)


@st.composite
def rbac_objects(draw: st.DrawFn) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for i in range(draw(st.integers(0, 3))):
        rules = draw(st.lists(st.one_of(resource_rules, url_rules), min_size=1, max_size=3))
        out.append(("clusterroles", {"metadata": {"name": f"cr{i}"}, "rules": rules}))
    for i in range(draw(st.integers(0, 3))):
        rules = draw(st.lists(resource_rules, min_size=1, max_size=3))
        out.append(
            (
                "roles",
                {
                    "metadata": {"name": f"r{i}", "namespace": draw(st.sampled_from(NSS))},
                    "rules": rules,
                },
            )
        )
    for i in range(draw(st.integers(0, 3))):
        ref = {
            "apiGroup": RBAC,
            "kind": "ClusterRole",
            "name": draw(st.sampled_from(["cr0", "cr1", "cr2", "view", "nope"])),
        }
        subs = [s for s in draw(subjects) if s["kind"] != "ServiceAccount" or s.get("namespace")]
        out.append(
            (
                "clusterrolebindings",
                {"metadata": {"name": f"crb{i}"}, "roleRef": ref, "subjects": subs},
            )
        )
    for i in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["Role", "ClusterRole"]))
        name = draw(
            st.sampled_from(["r0", "r1", "r2"] if kind == "Role" else ["cr0", "cr1", "edit"])
        )
        ns = draw(st.sampled_from(NSS))
        out.append(
            (
                "rolebindings",
                {
                    "metadata": {"name": f"rb{i}", "namespace": ns},
                    "roleRef": {"apiGroup": RBAC, "kind": kind, "name": name},
                    "subjects": draw(subjects),
                },
            )
        )
    return out


def _snapshot(objs: list[tuple[str, dict[str, Any]]]) -> model.RbacSnapshot:
    crs = {o["metadata"]["name"]: o for p, o in objs if p == "clusterroles"}
    roles = {
        (o["metadata"]["namespace"], o["metadata"]["name"]): o for p, o in objs if p == "roles"
    }
    return model.RbacSnapshot(
        crs,
        roles,
        [o for p, o in objs if p == "clusterrolebindings"],
        [o for p, o in objs if p == "rolebindings"],
    )


users = st.sampled_from(
    [
        UserInfo("alice", ("devs", "system:authenticated")),
        UserInfo("bob", ("system:authenticated",)),
        UserInfo(
            "system:serviceaccount:x:robot", ("system:serviceaccounts", "system:authenticated")
        ),
        UserInfo("system:serviceaccount:y:robot", ("system:authenticated",)),
        UserInfo("root", ("system:masters",)),
    ]
)
attributes = st.one_of(
    st.builds(
        lambda u, v, g, r, s, ns, n: Attributes(
            u, v, True, namespace=ns, api_group=g, resource=r, subresource=s, name=n
        ),
        users,
        st.sampled_from([*VERBS[:-1], "frob"]),
        st.sampled_from(["", "apps", RBAC, "other"]),
        st.sampled_from(["pods", "configmaps", "roles", "replicasets", "pod", "widgets"]),
        st.sampled_from(["", "status", "scale", "log"]),
        st.sampled_from(["", *NSS]),
        st.sampled_from(["", "a", "b", "c"]),
    ),
    st.builds(
        lambda u, v, p: Attributes(u, v, False, path=p),
        users,
        st.sampled_from(["get", "post"]),
        st.sampled_from(
            ["/healthz", "/api", "/api/v1", "/apis/apps", "/version", "/metrics", "/apiz"]
        ),
    ),
)


def _impl_state(objs: list[tuple[str, dict[str, Any]]]) -> Any:
    return build_state([(p, o) for p, o in objs])


@given(rbac_objects(), st.lists(attributes, min_size=1, max_size=25))
def test_authorizer_agrees_with_the_model(
    objs: list[tuple[str, dict[str, Any]]], requests: list[Attributes]
) -> None:
    state = _impl_state(objs)
    snap = _snapshot(objs)
    from kubeproof.api import RBACAuthorizer

    authz = RBACAuthorizer(lambda: state)
    for a in requests:
        req = model.Req(
            a.user.name,
            frozenset(a.user.groups),
            a.verb,
            a.resource_request,
            a.api_group,
            a.resource,
            a.subresource,
            a.namespace,
            a.name,
            a.path,
        )
        assert authz.authorize(a).allowed == model.allowed(snap, req), (a, objs)


@given(
    st.lists(st.one_of(resource_rules, url_rules), max_size=4),
    st.lists(st.one_of(resource_rules, url_rules), min_size=1, max_size=3),
)
def test_escalation_cover_agrees_with_the_model(
    owner: list[dict[str, Any]], servant: list[dict[str, Any]]
) -> None:
    impl, _ = covers([Rule.from_json(r) for r in owner], [Rule.from_json(r) for r in servant])
    assert impl == model.covered(owner, servant, "x"), (owner, servant)


def test_covers_needs_wildcards_for_wildcards() -> None:
    every = [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]
    listed = [{"verbs": VERBS[:-1], "apiGroups": GROUPS[:-1], "resources": RESOURCES[:5]}]
    assert model.covered(every, listed, "x")
    assert not model.covered(listed, every, "x")
    assert covers([Rule.from_json(every[0])], [Rule.from_json(listed[0])])[0]
    assert not covers([Rule.from_json(listed[0])], [Rule.from_json(every[0])])[0]


paths = st.sampled_from(
    [
        ("GET", "/api/v1/namespaces/x/pods"),
        ("GET", "/api/v1/namespaces/x/pods/a"),
        ("GET", "/api/v1/namespaces/y/pods/a/status"),
        ("DELETE", "/api/v1/namespaces/x/pods/a"),
        ("DELETE", "/api/v1/namespaces/x/configmaps"),
        ("GET", "/api/v1/pods"),
        ("GET", "/api/v1/namespaces/x"),
        ("GET", "/api/v1/namespaces/x/configmaps?fieldSelector=metadata.name=a"),
        ("GET", "/api/v1/namespaces/y/configmaps?watch=true"),
        ("GET", "/api/v1/watch/namespaces/x/pods"),
        ("PATCH", "/apis/apps/v1/namespaces/x/replicasets/a/scale"),
        ("GET", f"/apis/{RBAC}/v1/namespaces/y/roles"),
        ("GET", "/api/v1/widgets"),
        ("GET", "/healthz"),
        ("GET", "/api"),
        ("POST", "/api/v1/namespaces/x/pods"),
    ]
)


@settings(max_examples=40)
@given(rbac_objects(), st.lists(st.tuples(users, paths), min_size=1, max_size=8))
def test_server_decisions_agree_with_the_model(
    objs: list[tuple[str, dict[str, Any]]], reqs: list[Any]
) -> None:
    """API-AUTHORIZED at the HTTP-path level: the server refuses with an
    authorization 403 exactly the requests the model denies."""
    api = Api()
    for ns in NSS:
        api.ns(ns)
    for plural, obj in objs:
        ns = obj["metadata"].get("namespace")
        path = f"/apis/{RBAC}/v1/namespaces/{ns}/{plural}" if ns else f"/apis/{RBAC}/v1/{plural}"
        api.ok("POST", path, obj)
    snap = snapshot(api.store)  # with the default policy the server bootstrapped
    for user, (method, full) in reqs:
        path, _, qs = full.partition("?")
        query = dict([qs.split("=", 1)]) if qs else {}
        r = api.req(
            method,
            path,
            user=user,
            query=query,
            content_type="application/merge-patch+json" if method == "PATCH" else None,
            body={} if method in ("PATCH", "POST") else None,
        )
        if r.watch is not None:
            r.watch.close()
        want = model.allowed(
            snap,
            model.request_of(
                user.name, user.groups, method, path, {k: (v,) for k, v in query.items()}
            ),
        )
        refused = r.status == 403 and r.body is not None and " cannot " in str(r.body["message"])
        assert refused == (not want), (user, method, full, r.status, r.body)
        assert r.status != 500
    assert api.server.internal_errors == 0


def test_rbac_allows_reason_names_the_binding() -> None:
    objs = [
        (
            "clusterroles",
            {
                "metadata": {"name": "r"},
                "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}],
            },
        ),
        (
            "clusterrolebindings",
            {
                "metadata": {"name": "b"},
                "roleRef": {"kind": "ClusterRole", "name": "r"},
                "subjects": [{"kind": "Group", "name": "devs"}],
            },
        ),
    ]
    d = rbac_allows(
        _impl_state(objs),
        Attributes(UserInfo("u", ("devs",)), "get", True, resource="pods", namespace="x"),
    )
    assert (
        d.allowed
        and d.reason == 'RBAC: allowed by ClusterRoleBinding "b" of ClusterRole "r" to Group "devs"'
    )
