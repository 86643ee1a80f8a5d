"""Malformed and hostile requests: always a 4xx Status, never a 500, and the store unchanged."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kubeproof.api import ApiRequest, ApiServer, UserInfo
from kubeproof.mvcc import MVCCStore

from .api_helpers import ADMIN, Clock, Uids, pod

RBAC = "rbac.authorization.k8s.io"


def _server() -> tuple[ApiServer, MVCCStore]:
    store = MVCCStore()
    api = ApiServer(store, now=Clock(), uid_source=Uids())
    for ns in ("x",):
        api.handle(
            ApiRequest(
                "POST",
                "/api/v1/namespaces",
                body=json.dumps({"metadata": {"name": ns}}).encode(),
                user=ADMIN,
            )
        )
    api.handle(
        ApiRequest(
            "POST", "/api/v1/namespaces/x/pods", body=json.dumps(pod("p")).encode(), user=ADMIN
        )
    )
    api.handle(
        ApiRequest(
            "POST",
            "/apis/apps/v1/namespaces/x/replicasets",
            body=json.dumps(
                {
                    "metadata": {"name": "rs"},
                    "spec": {
                        "selector": {"matchLabels": {"app": "web"}},
                        "template": {
                            "metadata": {"labels": {"app": "web"}},
                            "spec": {"containers": [{"name": "c", "image": "i"}]},
                        },
                    },
                }
            ).encode(),
            user=ADMIN,
        )
    )
    return api, store


def _snapshot(store: MVCCStore) -> tuple[int, list[tuple[bytes, bytes]]]:
    kvs = store.range(b"\x00", b"\x00").kvs
    return store.revision, [(kv.key, kv.value) for kv in kvs]


def _check_refused(api: ApiServer, store: MVCCStore, req: ApiRequest) -> int:
    before = _snapshot(store)
    resp = api.handle(req)
    if resp.watch is not None:
        resp.watch.close()
        return resp.status
    if resp.status == 504 and req.param("resourceVersion"):
        # kube's answer to a resourceVersion from the future: "Too large resource version".
        assert resp.body is not None and resp.body["reason"] == "Timeout"
        assert _snapshot(store) == before
        return resp.status
    assert resp.status < 500, (req, resp.status, resp.body, api.last_internal_error)
    assert api.internal_errors == 0
    if resp.status >= 400:
        body = resp.body
        assert body is not None and body["kind"] == "Status" and body["status"] == "Failure"
        assert body["code"] == resp.status
        assert isinstance(body["message"], str) and body["message"]
        assert _snapshot(store) == before, (req, resp.status)
    return resp.status


# st.text() never draws surrogates; JSON can still carry them as escapes ("\ud800").
json_strings = st.text(max_size=5) | st.sampled_from(["\ud800", "a\udfffb", "\udbff\ud800"])
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | json_strings
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(json_strings, inner, max_size=3),
    max_leaves=8,
)

write_paths = st.sampled_from(
    [
        "/api/v1/namespaces",
        "/api/v1/namespaces/x/pods",
        "/api/v1/namespaces/x/configmaps",
        "/api/v1/namespaces/x/services",
        "/api/v1/namespaces/x/events",
        "/api/v1/nodes",
        "/apis/apps/v1/namespaces/x/replicasets",
        f"/apis/{RBAC}/v1/namespaces/x/roles",
        f"/apis/{RBAC}/v1/clusterrolebindings",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        "/api/v1/namespaces/x/pods/p/binding",
    ]
)
content_types = st.sampled_from(
    [
        None,
        "application/json",
        "application/yaml",
        "application/vnd.kubernetes.protobuf",
        "text/plain",
        "application/json; charset=utf-8",
        "",
    ]
)


@given(write_paths, st.binary(max_size=60), content_types)
def test_garbage_bodies(path: str, body: bytes, ct: str | None) -> None:
    api, store = _server()
    status = _check_refused(
        api, store, ApiRequest("POST", path, body=body, content_type=ct, user=ADMIN)
    )
    assert status >= 400


@given(write_paths, json_values)
def test_json_of_any_shape(path: str, value: Any) -> None:
    api, store = _server()
    _check_refused(
        api, store, ApiRequest("POST", path, body=json.dumps(value).encode(), user=ADMIN)
    )


def _paths_of(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths_of(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths_of(v, (*prefix, i))
    return out


def _set(obj: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    cur = obj
    for p in path[:-1]:
        cur = cur[p]
    cur[path[-1]] = value
    return obj


VALID_POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "q",
        "labels": {"a": "b"},
        "annotations": {"k": "v"},
        "finalizers": ["x/y"],
    },
    "spec": {
        "containers": [
            {
                "name": "c",
                "image": "i",
                "ports": [{"containerPort": 80}],
                "env": [{"name": "E", "value": "1"}],
            }
        ],
        "tolerations": [{"key": "k", "operator": "Exists"}],
        "nodeSelector": {"d": "e"},
        "terminationGracePeriodSeconds": 5,
    },
}


@given(st.data(), json_values)
def test_pods_with_one_field_replaced(data: st.DataObject, value: Any) -> None:
    """Any one field of a valid pod replaced by any JSON value: a 4xx (nothing
    stored) or a success that reads back; never a 500."""
    api, store = _server()
    body = copy.deepcopy(VALID_POD)
    target = data.draw(st.sampled_from(_paths_of(body)[1:]))
    _set(body, target, value)
    status = _check_refused(
        api,
        store,
        ApiRequest(
            "POST",
            "/api/v1/namespaces/x/pods",
            body=json.dumps(body).encode(),
            user=ADMIN,
            query={"fieldValidation": "Strict"},
        ),
    )
    if status < 300:
        got = api.handle(ApiRequest("GET", "/api/v1/namespaces/x/pods/q", user=ADMIN))
        assert got.status == 200


names = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "..",
            ".",
            "a/b",
            "a%2Fb",
            "%2e%2e",
            "A",
            "-a",
            "a-",
            "a" * 300,
            "ü",
            " a",
            "a\x00b",
            "a.b",
            "x" * 64,
        ]
    ),
)


@given(names, st.sampled_from(["pods", "configmaps", "namespaces", "roles", "services"]))
def test_invalid_names_in_bodies(name: str, kind: str) -> None:
    api, store = _server()
    bodies = {
        "pods": {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "i"}]}},
        "configmaps": {"metadata": {"name": name}},
        "namespaces": {"metadata": {"name": name}},
        "roles": {"metadata": {"name": name}, "rules": []},
        "services": {"metadata": {"name": name}, "spec": {"ports": [{"port": 1}]}},
    }
    path = {
        "namespaces": "/api/v1/namespaces",
        "roles": f"/apis/{RBAC}/v1/namespaces/x/roles",
    }.get(kind, f"/api/v1/namespaces/x/{kind}")
    status = _check_refused(
        api, store, ApiRequest("POST", path, body=json.dumps(bodies[kind]).encode(), user=ADMIN)
    )
    if status < 300:
        # Whatever was accepted must be addressable again.
        got = api.handle(ApiRequest("GET", f"{path}/{name}", user=ADMIN))
        assert got.status == 200, (name, kind)


@given(
    st.lists(
        st.sampled_from(
            [
                "api",
                "apis",
                "v1",
                "namespaces",
                "x",
                "pods",
                "p",
                "..",
                ".",
                "%2e%2e",
                "",
                "status",
                "binding",
                "scale",
                "watch",
                "apps",
                "etc",
                "passwd",
            ]
        ),
        max_size=8,
    ),
    st.sampled_from(["GET", "PUT", "DELETE", "PATCH", "POST", "OPTIONS", "TRACE"]),
)
def test_hostile_paths(segments: list[str], method: str) -> None:
    api, store = _server()
    path = "/" + "/".join(segments)
    _check_refused(
        api,
        store,
        ApiRequest(
            method,
            path,
            body=b"{}",
            content_type="application/merge-patch+json" if method == "PATCH" else None,
            user=ADMIN,
        ),
    )


patch_ops = st.lists(
    st.fixed_dictionaries(
        {
            "op": st.sampled_from(["add", "remove", "replace", "move", "copy", "test", "bogus"]),
            "path": st.sampled_from(
                [
                    "",
                    "/",
                    "/metadata",
                    "/metadata/name",
                    "/metadata/labels/a",
                    "/spec/containers/0",
                    "/spec/containers/-",
                    "/spec/containers/9",
                    "/status",
                    "/kind",
                    "/spec/~1x",
                    "/metadata/resourceVersion",
                    "/metadata/uid",
                ]
            ),
        },
        optional={
            "value": json_values,
            "from": st.sampled_from(["/metadata/labels", "/spec", "/nope"]),
        },
    ),
    max_size=4,
)


@settings(max_examples=80)
@given(patch_ops)
def test_json_patches_that_break_the_schema(ops: list[dict[str, Any]]) -> None:
    api, store = _server()
    _check_refused(
        api,
        store,
        ApiRequest(
            "PATCH",
            "/api/v1/namespaces/x/pods/p",
            body=json.dumps(ops).encode(),
            content_type="application/json-patch+json",
            user=ADMIN,
        ),
    )


@settings(max_examples=80)
@given(
    json_values,
    st.sampled_from(
        [
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
            "application/apply-patch+yaml",
        ]
    ),
)
def test_merge_patches_of_any_shape(patch: Any, ct: str) -> None:
    api, store = _server()
    for path in (
        "/api/v1/namespaces/x/pods/p",
        "/apis/apps/v1/namespaces/x/replicasets/rs/scale",
        "/api/v1/namespaces/x/pods/p/status",
    ):
        _check_refused(
            api,
            store,
            ApiRequest(
                "PATCH",
                path,
                body=json.dumps(patch).encode(),
                content_type=ct,
                user=ADMIN,
                query={"fieldValidation": "Strict"},
            ),
        )


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "limit",
                "continue",
                "resourceVersion",
                "resourceVersionMatch",
                "labelSelector",
                "fieldSelector",
                "watch",
                "timeoutSeconds",
                "fieldValidation",
                "dryRun",
                "gracePeriodSeconds",
                "propagationPolicy",
                "allowWatchBookmarks",
                "sendInitialEvents",
            ]
        ),
        st.text(max_size=10)
        | st.sampled_from(
            ["-1", "0", "99999999999999999999", "true", "Exact", "a=b", "a in (", "metadata.name=p"]
        ),
        max_size=4,
    ),
    st.sampled_from(["GET", "DELETE"]),
    st.sampled_from(["/api/v1/namespaces/x/pods", "/api/v1/namespaces/x/pods/p", "/api/v1/pods"]),
)
def test_hostile_query_parameters(query: dict[str, str], method: str, path: str) -> None:
    api, store = _server()
    if method == "DELETE":
        query = {k: v for k, v in query.items() if k != "watch"}
        # A delete that may legitimately succeed changes the store; only judge its status.
        resp = api.handle(ApiRequest(method, path, query, user=ADMIN))
        assert resp.status < 500 and api.internal_errors == 0, (query, resp.body)
        return
    _check_refused(api, store, ApiRequest(method, path, query, user=ADMIN))


def test_huge_bodies_and_strict_unknown_fields() -> None:
    api, store = _server()
    huge = b'{"metadata":{"name":"h"},"data":{"k":"' + b"a" * (3 * 1024 * 1024 + 1) + b'"}}'
    for path, method in (
        ("/api/v1/namespaces/x/configmaps", "POST"),
        ("/api/v1/namespaces/x/pods/p", "PUT"),
        ("/api/v1/namespaces/x/pods/p", "PATCH"),
    ):
        resp = api.handle(
            ApiRequest(
                method,
                path,
                body=huge,
                content_type="application/merge-patch+json" if method == "PATCH" else None,
                user=ADMIN,
            )
        )
        assert (
            resp.status == 413
            and resp.body is not None
            and resp.body["reason"] == "RequestEntityTooLarge"
        )
    assert (
        _check_refused(
            api,
            store,
            ApiRequest(
                "POST",
                "/api/v1/namespaces/x/pods",
                body=json.dumps(
                    {**VALID_POD, "spec": {**VALID_POD["spec"], "hostile": 1}}
                ).encode(),
                user=ADMIN,
                query={"fieldValidation": "Strict"},
            ),
        )
        == 400
    )
    nested = b"[" * 100000 + b"]" * 100000
    assert (
        _check_refused(
            api, store, ApiRequest("POST", "/api/v1/namespaces", body=nested, user=ADMIN)
        )
        == 400
    )
    absurd = ApiRequest(
        "GET", "/api/v1/namespaces/x/pods", {"resourceVersion": "99999999999999999999"}, user=ADMIN
    )
    assert _check_refused(api, store, absurd) == 400


def test_anonymous_and_unprivileged_hostility() -> None:
    api, store = _server()
    eve = UserInfo("eve", ("system:authenticated",))
    for method, path in (
        ("DELETE", "/api/v1/namespaces/x"),
        ("PUT", "/api/v1/namespaces/x/pods/p"),
        ("POST", f"/apis/{RBAC}/v1/clusterrolebindings"),
    ):
        assert _check_refused(api, store, ApiRequest(method, path, body=b"{}", user=eve)) == 403
        assert _check_refused(api, store, ApiRequest(method, path, body=b"{}", user=None)) == 401
