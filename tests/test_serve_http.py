"""The HTTP layer's own duties: watch streams, durability before answers, bodies without a type."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubeproof.api import UserInfo
from kubeproof.serve.app import ServeOptions, ServerThread
from kubeproof.serve.protobuf import MAGIC

pytestmark = pytest.mark.timeout(120)

ADMIN = UserInfo("admin", ("system:masters", "system:authenticated"))
PODS = "/api/v1/namespaces/default/pods"


def _pod(name: str) -> bytes:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]},
        }
    ).encode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    # A data dir (so writes go through the WAL), no TLS, every request admin.
    data: Path = tmp_path_factory.mktemp("http")
    opts = ServeOptions(
        secure_port=0, data_dir=data, tls=False, fixed_user=ADMIN, watch_poll_interval=0.2
    )
    with ServerThread(opts) as srv:
        yield srv


def _conn(srv: ServerThread) -> http.client.HTTPConnection:
    assert srv.server is not None
    return http.client.HTTPConnection("127.0.0.1", srv.server.port, timeout=30)


def _call(
    srv: ServerThread, method: str, path: str, body: bytes | None = None, **headers: str
) -> tuple[int, Any]:
    c = _conn(srv)
    try:
        c.request(method, path, body=body, headers=headers)
        r = c.getresponse()
        return r.status, json.loads(r.read())
    finally:
        c.close()


def test_writes_are_fsynced_before_the_answer(server: ServerThread) -> None:
    assert server.server is not None and server.server.wal is not None
    wal = server.server.wal
    for i in range(5):
        status, _ = _call(server, "POST", PODS, _pod(f"durable-{i}"))
        assert status == 201
        # Group commit must have synced everything this answer depends on.
        assert server.call(lambda: (wal.synced, wal.written)) == (wal.written, wal.written)
    assert server.server.commit is not None and server.server.commit.fsyncs >= 1


def test_a_body_without_content_type_is_json(server: ServerThread) -> None:
    c = _conn(server)
    try:
        # http.client adds no Content-Type unless told; the Python client does the same.
        c.putrequest("POST", PODS)
        body = _pod("untyped")
        c.putheader("Content-Length", str(len(body)))
        c.endheaders(body)
        r = c.getresponse()
        assert r.status == 201, r.read()
        assert json.loads(r.read())["metadata"]["name"] == "untyped"
    finally:
        c.close()


def test_watch_streams_one_json_object_per_line_and_honours_timeout(
    server: ServerThread,
) -> None:
    status, listed = _call(server, "GET", PODS)
    assert status == 200
    rv = listed["metadata"]["resourceVersion"]
    c = _conn(server)
    try:
        c.request("GET", f"{PODS}?watch=true&resourceVersion={rv}&timeoutSeconds=2")
        r = c.getresponse()
        assert r.status == 200
        assert r.getheader("Transfer-Encoding") == "chunked"
        _call(server, "POST", PODS, _pod("streamed"))
        _call(server, "DELETE", f"{PODS}/streamed")
        lines = r.read().splitlines()  # ends when the server closes at timeoutSeconds
    finally:
        c.close()
    events = [json.loads(line) for line in lines]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "streamed"),
        ("DELETED", "streamed"),
    ]
    assert int(events[0]["object"]["metadata"]["resourceVersion"]) > int(rv)


def test_watch_from_a_compacted_version_is_an_in_stream_410(server: ServerThread) -> None:
    assert server.server is not None
    store = server.server.store
    _call(server, "POST", PODS, _pod("before-compaction"))
    server.call(lambda: store.compact(store.revision))
    c = _conn(server)
    try:
        c.request("GET", f"{PODS}?watch=true&resourceVersion=2")
        r = c.getresponse()
        assert r.status == 200
        (line,) = r.read().splitlines()
    finally:
        c.close()
    event = json.loads(line)
    assert event["type"] == "ERROR"
    assert event["object"]["code"] == 410 and event["object"]["reason"] == "Expired"


def test_protobuf_of_an_unsupported_kind_is_415(server: ServerThread) -> None:
    type_meta = b"\n\x07apps/v1\x12\nDeployment"
    body = MAGIC + b"\n" + bytes([len(type_meta)]) + type_meta
    status, answer = _call(
        server,
        "POST",
        "/apis/apps/v1/namespaces/default/replicasets",
        body,
        **{"Content-Type": "application/vnd.kubernetes.protobuf"},
    )
    assert status == 415 and answer["reason"] == "UnsupportedMediaType"
    assert "send JSON" in answer["message"]


def test_unknown_paths_are_404_status(server: ServerThread) -> None:
    for path in ("/nope", "/api/v2/pods", "/apis/apps/v9/replicasets", "/openapi/v3/apis/x/v1"):
        status, answer = _call(server, "GET", path)
        assert status == 404 and answer["kind"] == "Status", path
