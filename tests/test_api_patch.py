"""PATCH: JSON patch, merge patch, strategic merge patch (as client-side kubectl apply sends it)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubeproof.api.patch import PatchError, json_patch, merge_patch, strategic_merge_patch

from .api_helpers import Api, pod

SMP = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSONP = "application/json-patch+json"
LAST = "kubectl.kubernetes.io/last-applied-configuration"


# ---------------------------------------------------------------------------
# JSON patch (RFC 6902)


def test_json_patch_operations() -> None:
    doc = {"a": {"b": [1, 2]}, "c": "x"}
    out = json_patch(
        doc,
        [
            {"op": "add", "path": "/a/b/1", "value": 9},
            {"op": "add", "path": "/a/b/-", "value": 3},
            {"op": "replace", "path": "/c", "value": "y"},
            {"op": "copy", "from": "/c", "path": "/d"},
            {"op": "move", "from": "/d", "path": "/e"},
            {"op": "remove", "path": "/a/b/0"},
            {"op": "test", "path": "/e", "value": "y"},
            {"op": "add", "path": "/k~1v", "value": 1},
        ],
    )
    assert out == {"a": {"b": [9, 2, 3]}, "c": "y", "e": "y", "k/v": 1}
    assert doc == {"a": {"b": [1, 2]}, "c": "x"}  # never mutated


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "test", "path": "/c", "value": "nope"}],
        [{"op": "remove", "path": "/missing"}],
        [{"op": "replace", "path": "/missing", "value": 1}],
        [{"op": "add", "path": "/a/b/9", "value": 1}],
        [{"op": "move", "from": "/a", "path": "/a/b"}],
        [{"op": "frobnicate", "path": "/c"}],
        [{"op": "add", "path": "c", "value": 1}],
        [{"op": "add", "path": "/c"}],
        {"op": "add"},
    ],
)
def test_json_patch_failures(ops: object) -> None:
    with pytest.raises(PatchError):
        json_patch({"a": {"b": [1]}, "c": "x"}, ops)


# ---------------------------------------------------------------------------
# Merge patch (RFC 7386): the RFC's own examples


@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"a": "foo"}, "bar", "bar"),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch_rfc_examples(target: object, patch: object, result: object) -> None:
    assert merge_patch(target, patch) == result


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text("ab", max_size=2),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text("abc", min_size=1, max_size=2), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(json_values, json_values)
def test_merge_patch_is_idempotent(target: object, patch: object) -> None:
    once = merge_patch(target, patch)
    assert merge_patch(once, patch) == once


# ---------------------------------------------------------------------------
# Strategic merge patch


def _pod_doc() -> dict[str, object]:
    return {
        "metadata": {"name": "p", "labels": {"a": "1", "b": "2"}, "finalizers": ["x/a", "x/b"]},
        "spec": {
            "containers": [
                {
                    "name": "web",
                    "image": "nginx:1",
                    "ports": [{"containerPort": 80}, {"containerPort": 443}],
                    "env": [{"name": "A", "value": "1"}],
                },
                {"name": "side", "image": "busybox"},
            ],
            "tolerations": [{"key": "k", "operator": "Exists"}],
            "volumes": [{"name": "v", "emptyDir": {}}],
        },
    }


def test_smp_merges_lists_by_merge_key() -> None:
    out = strategic_merge_patch(
        "Pod",
        _pod_doc(),
        {
            "spec": {
                "containers": [
                    {
                        "name": "web",
                        "image": "nginx:2",
                        "ports": [{"containerPort": 8080}],
                        "env": [{"name": "B", "value": "2"}],
                    },
                    {"name": "new", "image": "redis"},
                ]
            }
        },
    )
    cs = out["spec"]["containers"]
    assert [c["name"] for c in cs] == ["web", "side", "new"]
    assert cs[0]["image"] == "nginx:2"
    assert [p["containerPort"] for p in cs[0]["ports"]] == [80, 443, 8080]
    assert [e["name"] for e in cs[0]["env"]] == ["A", "B"]
    # A list without a patch strategy (tolerations) is replaced.
    out2 = strategic_merge_patch(
        "Pod", _pod_doc(), {"spec": {"tolerations": [{"key": "z", "operator": "Exists"}]}}
    )
    assert out2["spec"]["tolerations"] == [{"key": "z", "operator": "Exists"}]


def test_smp_directives() -> None:
    doc = _pod_doc()
    out = strategic_merge_patch(
        "Pod",
        doc,
        {
            "metadata": {"labels": {"a": None}, "$deleteFromPrimitiveList/finalizers": ["x/a"]},
            "spec": {
                "containers": [{"name": "side", "$patch": "delete"}],
                "volumes": [{"$patch": "replace"}, {"name": "w", "emptyDir": {}}],
            },
        },
    )
    assert out["metadata"]["labels"] == {"b": "2"}
    assert out["metadata"]["finalizers"] == ["x/b"]
    assert [c["name"] for c in out["spec"]["containers"]] == ["web"]
    assert out["spec"]["volumes"] == [{"name": "w", "emptyDir": {}}]
    replaced = strategic_merge_patch(
        "Pod", doc, {"metadata": {"labels": {"$patch": "replace", "z": "9"}}}
    )
    assert replaced["metadata"]["labels"] == {"z": "9"}
    finalizers = strategic_merge_patch("Pod", doc, {"metadata": {"finalizers": ["x/c", "x/a"]}})
    assert finalizers["metadata"]["finalizers"] == ["x/a", "x/b", "x/c"]  # a set union
    ordered = strategic_merge_patch(
        "Pod",
        doc,
        {
            "spec": {
                "$setElementOrder/containers": [{"name": "side"}, {"name": "web"}],
                "containers": [{"name": "web", "image": "nginx:3"}],
            }
        },
    )
    assert [c["name"] for c in ordered["spec"]["containers"]] == ["side", "web"]
    retained = strategic_merge_patch(
        "Pod", doc, {"spec": {"$retainKeys": ["containers"], "containers": []}}
    )
    assert set(retained["spec"]) == {"containers"}
    with pytest.raises(PatchError):
        strategic_merge_patch("Pod", doc, {"spec": {"containers": [{"image": "no-name"}]}})
    with pytest.raises(PatchError):
        strategic_merge_patch("Pod", doc, {"$patch": "explode"})


def test_service_ports_merge_by_port() -> None:
    svc = {"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]}}
    out = strategic_merge_patch(
        "Service", svc, {"spec": {"ports": [{"port": 80, "targetPort": 8080}]}}
    )
    assert out["spec"]["ports"] == [
        {"port": 80, "name": "http", "targetPort": 8080},
        {"port": 443, "name": "https"},
    ]


# ---------------------------------------------------------------------------
# Through the server


@pytest.fixture
def api() -> Api:
    a = Api()
    a.ns("x")
    return a


def test_patch_types_through_the_server(api: Api) -> None:
    api.ok("POST", "/api/v1/namespaces/x/pods", pod("p"))
    j = api.ok(
        "PATCH",
        "/api/v1/namespaces/x/pods/p",
        [{"op": "add", "path": "/metadata/labels/j", "value": "1"}],
        content_type=JSONP,
    )
    assert j["metadata"]["labels"]["j"] == "1"
    m = api.ok(
        "PATCH",
        "/api/v1/namespaces/x/pods/p",
        {"metadata": {"labels": {"j": None, "m": "2"}}},
        content_type=MERGE,
    )
    assert m["metadata"]["labels"] == {"app": "web", "m": "2"}
    s = api.ok(
        "PATCH",
        "/api/v1/namespaces/x/pods/p",
        {"spec": {"containers": [{"name": "c", "image": "nginx:2"}]}},
        content_type=SMP,
    )
    assert s["spec"]["containers"][0]["image"] == "nginx:2"
    assert s["spec"]["containers"][0]["terminationMessagePath"] == "/dev/termination-log"
    assert int(s["metadata"]["resourceVersion"]) > int(m["metadata"]["resourceVersion"])


def test_bad_patches_are_4xx_and_change_nothing(api: Api) -> None:
    api.ok("POST", "/api/v1/namespaces/x/pods", pod("p"))
    rev = api.store.revision
    cases = [
        ([{"op": "test", "path": "/metadata/name", "value": "q"}], JSONP, 422),
        ([{"op": "replace", "path": "/spec/containers", "value": "oops"}], JSONP, 400),
        ({"spec": {"containers": [{"image": "x"}]}}, SMP, 422),
        ({"metadata": {"name": "other"}}, MERGE, 400),
        ({"spec": {"restartPolicy": "Never"}}, MERGE, 422),
        ({"spec": {"bogus": 1}}, MERGE, 400),
        ({"metadata": {"labels": "flat"}}, MERGE, 400),
        ({"a": 1}, "application/xml", 415),
        ({"metadata": {"resourceVersion": "1"}}, MERGE, 409),
    ]
    for patch, ct, code in cases:
        r = api.req(
            "PATCH",
            "/api/v1/namespaces/x/pods/p",
            patch,
            content_type=ct,
            query={"fieldValidation": "Strict"},
        )
        assert r.status == code, (patch, r.status, r.body)
        assert r.body is not None and r.body["kind"] == "Status"
    assert api.store.revision == rev
    missing = api.req(
        "PATCH", "/api/v1/namespaces/x/pods/nope", {"metadata": {}}, content_type=MERGE
    )
    assert missing.status == 404


def test_kubectl_client_side_apply_round_trip(api: Api) -> None:
    """kubectl apply: create with the last-applied annotation, then a three-way
    strategic merge patch carrying the new annotation; an unchanged apply is a no-op."""
    first = pod("nginx", image="nginx:1.25")
    first["metadata"]["labels"] = {"app": "web", "old": "x"}
    applied1 = json.dumps(first, sort_keys=True) + "\n"
    first["metadata"]["annotations"] = {LAST: applied1}
    created = api.ok(
        "POST",
        "/api/v1/namespaces/x/pods",
        first,
        query={"fieldManager": "kubectl-client-side-apply", "fieldValidation": "Strict"},
    )
    assert created["metadata"]["annotations"][LAST] == applied1
    # Second apply: image changed, one label changed, one removed (kubectl's patch).
    second = pod("nginx", image="nginx:1.26")
    second["metadata"]["labels"] = {"app": "web2"}
    applied2 = json.dumps(second, sort_keys=True) + "\n"
    patch = {
        "metadata": {"annotations": {LAST: applied2}, "labels": {"app": "web2", "old": None}},
        "spec": {
            "$setElementOrder/containers": [{"name": "c"}],
            "containers": [{"image": "nginx:1.26", "name": "c"}],
        },
    }
    patched = api.ok(
        "PATCH",
        "/api/v1/namespaces/x/pods/nginx",
        patch,
        content_type=SMP,
        query={"fieldManager": "kubectl-client-side-apply", "fieldValidation": "Strict"},
    )
    assert patched["metadata"]["labels"] == {"app": "web2"}
    assert patched["metadata"]["annotations"][LAST] == applied2
    assert patched["spec"]["containers"][0]["image"] == "nginx:1.26"
    assert patched["metadata"]["uid"] == created["metadata"]["uid"]
    rev = api.store.revision
    again = api.ok("PATCH", "/api/v1/namespaces/x/pods/nginx", patch, content_type=SMP)
    assert again["metadata"]["resourceVersion"] == patched["metadata"]["resourceVersion"]
    assert api.store.revision == rev  # "pod/nginx unchanged"


def test_server_side_apply_creates_then_merges(api: Api) -> None:
    body = pod("ssa")
    r = api.req(
        "PATCH",
        "/api/v1/namespaces/x/pods/ssa",
        body,
        content_type="application/apply-patch+yaml",
        query={"fieldManager": "kubectl"},
    )
    assert r.status == 201
    body["metadata"]["labels"] = {"app": "web", "v": "2"}
    r = api.req(
        "PATCH",
        "/api/v1/namespaces/x/pods/ssa",
        body,
        content_type="application/apply-patch+yaml",
        query={"fieldManager": "kubectl"},
    )
    assert r.status == 200 and r.body is not None
    assert r.body["metadata"]["labels"]["v"] == "2"
