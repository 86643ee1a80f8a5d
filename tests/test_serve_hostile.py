"""Hostile HTTP requests: every one gets a 4xx Status, never a 5xx, and the store stays unchanged.

A real server (HTTP on a free port, token authentication, RBAC) takes
requests built to be wrong in one way each: bodies that are not JSON, not
objects, of the wrong kind, too large or too deep; names that are invalid
or try path traversal (``..%2f``); content types the server cannot decode;
unknown fields under ``fieldValidation=Strict``; patches that break the
schema or touch immutable fields; protobuf bodies that are garbage or of
another kind.  Each must be answered with a ``Status`` whose code is the
HTTP status, in 400..499, and the store's revision must not move.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubeproof.serve.app import ServeOptions, ServerThread
from tests.serve_helpers import write_token_file

pytestmark = pytest.mark.timeout(600)

ADMIN = {"Authorization": "Bearer admin-token"}
PODS = "/api/v1/namespaces/default/pods"
VICTIM = f"{PODS}/victim"


def _pod(name: str = "p", **extra: Any) -> dict[str, Any]:
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]},
    }
    pod.update(extra)
    return pod


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    d: Path = tmp_path_factory.mktemp("hostile")
    opts = ServeOptions(
        secure_port=0,
        tls=False,
        data_dir=None,
        token_auth_file=write_token_file(d / "tokens.csv"),
        anonymous_auth=False,
    )
    with ServerThread(opts) as srv:
        status, _ = _send(srv, "POST", PODS, json.dumps(_pod("victim")).encode(), ADMIN)
        assert status == 201
        yield srv


def _send(
    srv: ServerThread,
    method: str,
    path: str,
    body: bytes | None,
    headers: dict[str, str],
) -> tuple[int, Any]:
    assert srv.server is not None
    conn = http.client.HTTPConnection("127.0.0.1", srv.server.port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        ctype = resp.getheader("Content-Type", "")
    finally:
        conn.close()
    assert ctype.startswith("application/json"), (resp.status, ctype, data[:200])
    return resp.status, json.loads(data)


def _revision(srv: ServerThread) -> int:
    assert srv.server is not None
    store = srv.server.store
    rev: int = srv.call(lambda: store.revision)
    return rev


def _internal_errors(srv: ServerThread) -> int:
    assert srv.server is not None
    api = srv.server.api
    n: int = srv.call(lambda: api.internal_errors)
    return n


# ---------------------------------------------------------------------------
# What can be wrong

HOSTILE_NAMES = st.sampled_from(
    [
        "..",
        "%2e%2e",
        "..%2f..%2fsecrets",
        "a%2fb",
        "..%252f",
        "%2e%2e%2f%2e%2e%2fapi",
        "UPPER",
        "under_score",
        "-lead",
        "trail-",
        "x" * 254,
        "%C3%A4",
        "a%20b",
        "%00",
        "a.b..c",
    ]
)

BAD_JSON = st.one_of(
    st.sampled_from([b"", b"{", b"{]", b'{"kind": "Pod",}', b"nul", b"\xff\xfe", b"[1, 2"]),
    st.binary(min_size=1, max_size=64).filter(lambda b: not b.strip().startswith((b"{", b"["))),
)
NOT_OBJECTS = st.sampled_from([b"[]", b"42", b'"pod"', b"null", b"true", b"[{}]"])
WRONG_KINDS = st.sampled_from(
    [
        _pod(kind="Node"),
        _pod(kind="Service"),
        _pod(apiVersion="apps/v1"),
        _pod(apiVersion="v2"),
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "sneaky"}},
    ]
)
SCHEMA_BREAKERS = st.sampled_from(
    [
        _pod(spec={"containers": 5}),
        _pod(spec={"containers": []}),
        _pod(spec={}),
        _pod(spec={"containers": [{"name": "c"}]}),
        _pod(spec={"containers": [{"name": "Bad_Name", "image": "x"}]}),
        _pod(metadata=[]),
        _pod(metadata={"name": "p", "labels": {"a": 5}}),
        _pod(metadata={"name": "p", "labels": {"bad key!": "v"}}),
        _pod(metadata={}),
        _pod(spec={"containers": [{"name": "c", "image": "x"}], "restartPolicy": "Sometimes"}),
    ]
)
BAD_CONTENT_TYPES = st.sampled_from(
    ["text/plain", "application/xml", "image/png", "garbage", "application/json-patch+json"]
)


@st.composite
def hostile_create(draw: st.DrawFn) -> tuple[str, str, bytes, dict[str, str]]:
    choice = draw(st.integers(0, 8))
    headers = {**ADMIN, "Content-Type": "application/json"}
    path = PODS
    if choice == 0:
        body = draw(BAD_JSON)
    elif choice == 1:
        body = draw(NOT_OBJECTS)
    elif choice == 2:
        body = json.dumps(draw(WRONG_KINDS)).encode()
    elif choice == 3:
        body = json.dumps(draw(SCHEMA_BREAKERS)).encode()
    elif choice == 4:
        name = draw(HOSTILE_NAMES)
        body = json.dumps(_pod(name=name)).encode()
    elif choice == 5:
        field = draw(st.sampled_from(["bogus", "specification", "metdata"]))
        pod = _pod()
        pod[field] = {"x": 1}
        body = json.dumps(pod).encode()
        path = PODS + "?fieldValidation=Strict"
    elif choice == 6:
        headers["Content-Type"] = draw(BAD_CONTENT_TYPES)
        body = json.dumps(_pod("ctype")).encode()
    elif choice == 7:
        headers["Content-Type"] = "application/vnd.kubernetes.protobuf"
        body = b"k8s\x00" + draw(st.binary(max_size=64))
    else:
        # A duplicate field is an error under Strict validation.
        body = b'{"apiVersion":"v1","kind":"Pod","metadata":{"name":"d","name":"e"},"spec":{}}'
        path = PODS + "?fieldValidation=Strict"
    return "POST", path, body, headers


@st.composite
def hostile_named(draw: st.DrawFn) -> tuple[str, str, bytes, dict[str, str]]:
    method = draw(st.sampled_from(["GET", "PUT", "PATCH", "DELETE"]))
    name = draw(HOSTILE_NAMES)
    ns = draw(
        st.sampled_from(["default", "..", "%2e%2e", "NoSuchNS", "default%2f..%2fkube-system"])
    )
    path = f"/api/v1/namespaces/{ns}/pods/{name}"
    body = json.dumps(_pod(name)).encode() if method in ("PUT", "PATCH") else b""
    ctype = "application/merge-patch+json" if method == "PATCH" else "application/json"
    return method, path, body, {**ADMIN, "Content-Type": ctype}


PATCHES = st.sampled_from(
    [
        ("application/merge-patch+json", {"spec": {"containers": 5}}),
        ("application/merge-patch+json", {"spec": {"containers": None}}),
        ("application/merge-patch+json", {"metadata": {"name": "renamed"}}),
        ("application/merge-patch+json", {"spec": {"restartPolicy": "Never"}}),
        ("application/merge-patch+json", {"metadata": {"labels": {"bad key!": "v"}}}),
        ("application/merge-patch+json", {"kind": "Node"}),
        ("application/strategic-merge-patch+json", {"spec": {"containers": [{"image": "x"}]}}),
        ("application/strategic-merge-patch+json", {"spec": {"containers": "nope"}}),
        ("application/json-patch+json", [{"op": "remove", "path": "/spec/containers"}]),
        ("application/json-patch+json", [{"op": "bogus", "path": "/metadata"}]),
        ("application/json-patch+json", [{"op": "replace", "path": "/nope/deeper", "value": 1}]),
        ("application/json-patch+json", [{"op": "test", "path": "/metadata/name", "value": "x"}]),
        ("application/json-patch+json", {"op": "add"}),
        ("application/json-patch+json", [{"op": "add", "path": "/metadata/uid", "value": "u"}]),
        ("application/merge-patch+json", [1, 2, 3]),
        ("text/plain", {"metadata": {"labels": {"a": "b"}}}),
    ]
)


@st.composite
def hostile_patch(draw: st.DrawFn) -> tuple[str, str, bytes, dict[str, str]]:
    ctype, patch = draw(PATCHES)
    path = VICTIM + draw(st.sampled_from(["", "?fieldValidation=Strict"]))
    return "PATCH", path, json.dumps(patch).encode(), {**ADMIN, "Content-Type": ctype}


@st.composite
def hostile_auth(draw: st.DrawFn) -> tuple[str, str, bytes, dict[str, str]]:
    headers = draw(
        st.sampled_from(
            [
                {},
                {"Authorization": "Bearer wrong"},
                {"Authorization": "Bearer "},
                {"Authorization": "Basic !!!"},
                {"Authorization": "Negotiate abc"},
                {"Authorization": "Bearer bob-token"},  # known user, no role
            ]
        )
    )
    method = draw(st.sampled_from(["POST", "DELETE", "GET"]))
    path = PODS if method != "DELETE" else VICTIM
    body = json.dumps(_pod("intruder")).encode() if method == "POST" else b""
    return method, path, body, {**headers, "Content-Type": "application/json"}


HOSTILE = st.one_of(hostile_create(), hostile_named(), hostile_patch(), hostile_auth())


@settings(max_examples=150)
@given(req=HOSTILE)
def test_hostile_requests_get_a_4xx_status_and_change_nothing(
    server: ServerThread, req: tuple[str, str, bytes, dict[str, str]]
) -> None:
    method, path, body, headers = req
    before = _revision(server)
    status, answer = _send(server, method, path, body, headers)
    assert 400 <= status < 500, (status, answer)
    assert answer["kind"] == "Status" and answer["status"] == "Failure"
    assert answer["code"] == status
    assert answer["message"]
    assert _revision(server) == before
    assert _internal_errors(server) == 0


def test_huge_body_is_413_and_changes_nothing(server: ServerThread) -> None:
    before = _revision(server)
    pod = _pod("huge")
    pod["metadata"]["annotations"] = {"a": "x" * (3 * 1024 * 1024)}
    status, answer = _send(server, "POST", PODS, json.dumps(pod).encode(), ADMIN)
    assert status == 413 and answer["reason"] == "RequestEntityTooLarge"
    assert _revision(server) == before


def test_deeply_nested_json_is_400(server: ServerThread) -> None:
    before = _revision(server)
    body = b'{"apiVersion":"v1","kind":"Pod","metadata":{"name":"deep"},"x":' + b"[" * 200_000
    status, answer = _send(
        server, "POST", PODS, body, {**ADMIN, "Content-Type": "application/json"}
    )
    assert status == 400, answer
    assert _revision(server) == before
    assert _internal_errors(server) == 0


def test_path_traversal_never_reaches_another_object(server: ServerThread) -> None:
    # ../ tricks in a name must not address the namespace, another resource or
    # the victim pod from a different path.
    for path in (
        f"{PODS}/..%2fvictim",
        f"{PODS}/%2e%2e/%2e%2e/namespaces/default",
        "/api/v1/namespaces/kube-system/pods/..%2f..%2fdefault%2fpods%2fvictim",
        f"{PODS}/victim%2f..%2f..%2f..%2fnamespaces%2fdefault",
    ):
        before = _revision(server)
        status, answer = _send(server, "DELETE", path, b"", ADMIN)
        assert status in (400, 404), (path, status, answer)
        assert _revision(server) == before
    status, pod = _send(server, "GET", VICTIM, None, ADMIN)
    assert status == 200 and pod["metadata"]["name"] == "victim"


def test_a_valid_request_still_works_after_all_that(server: ServerThread) -> None:
    # The control: the same server accepts a correct create (so the 4xx above
    # are about the requests, not a broken server).
    before = _revision(server)
    status, pod = _send(
        server, "POST", PODS, json.dumps(_pod("fine")).encode(), {**ADMIN, "Content-Type": ""}
    )
    assert status == 201, pod
    assert _revision(server) == before + 1
