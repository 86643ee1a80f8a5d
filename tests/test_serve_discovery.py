"""Discovery and OpenAPI documents, and their content negotiation, over real HTTP."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest

from kubeproof.api import RESOURCES, UserInfo
from kubeproof.serve import discovery, openapi
from kubeproof.serve.app import ServeOptions, ServerThread

KUBECTL_ACCEPT = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
    "application/json"
)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (KUBECTL_ACCEPT, discovery.AGGREGATED_V2),
        ("application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList",
         discovery.AGGREGATED_V2BETA1),
        ("application/json", None),
        ("application/json, */*", None),
        (None, None),
        ("application/json;as=Table;v=v1;g=meta.k8s.io,application/json", None),
        # Preference order is the client's: plain JSON first means legacy.
        ("application/json," + KUBECTL_ACCEPT, None),
        ("application/json;g=apidiscovery.k8s.io;v=v9;as=APIGroupDiscoveryList", None),
    ],
)  # fmt: skip
def test_negotiate(accept: str | None, expected: str | None) -> None:
    assert discovery.negotiate(accept) == expected


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    opts = ServeOptions(
        secure_port=0,
        tls=False,
        fixed_user=UserInfo("admin", ("system:masters", "system:authenticated")),
    )
    with ServerThread(opts) as srv:
        yield srv


def _get(srv: ServerThread, path: str, accept: str | None = None) -> tuple[int, str, Any]:
    assert srv.server is not None
    conn = http.client.HTTPConnection("127.0.0.1", srv.server.port, timeout=30)
    try:
        conn.request("GET", path, headers={"Accept": accept} if accept else {})
        r = conn.getresponse()
        body = r.read()
        return r.status, r.getheader("Content-Type", ""), json.loads(body)
    finally:
        conn.close()


def test_aggregated_discovery_has_the_exact_content_type(server: ServerThread) -> None:
    status, ctype, doc = _get(server, "/api", KUBECTL_ACCEPT)
    assert status == 200
    # kubectl takes any other Content-Type for legacy discovery and then finds no resources.
    assert ctype == "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    assert doc["kind"] == "APIGroupDiscoveryList" and doc["apiVersion"] == "apidiscovery.k8s.io/v2"
    (core,) = doc["items"]
    assert "name" not in core["metadata"]
    pods = next(r for r in core["versions"][0]["resources"] if r["resource"] == "pods")
    assert pods["scope"] == "Namespaced" and pods["shortNames"] == ["po"]
    assert {s["subresource"] for s in pods["subresources"]} == {"status", "binding"}
    status, ctype, doc = _get(server, "/apis", KUBECTL_ACCEPT)
    assert ctype == discovery.AGGREGATED_V2
    groups = {i["metadata"]["name"] for i in doc["items"]}
    assert groups == {r.group for r in RESOURCES if r.group}


def test_legacy_discovery_for_plain_json(server: ServerThread) -> None:
    status, ctype, doc = _get(server, "/api", "application/json")
    assert (status, ctype, doc["kind"], doc["versions"]) == (
        200, "application/json", "APIVersions", ["v1"]
    )  # fmt: skip
    _, _, groups = _get(server, "/apis/")
    assert groups["kind"] == "APIGroupList"
    _, _, apps = _get(server, "/apis/apps")
    assert apps["kind"] == "APIGroup" and apps["preferredVersion"]["groupVersion"] == "apps/v1"
    _, _, v1 = _get(server, "/api/v1")
    names = {r["name"] for r in v1["resources"]}
    assert {"pods", "pods/status", "pods/binding", "namespaces", "nodes"} <= names
    _, _, appsv1 = _get(server, "/apis/apps/v1")
    scale = next(r for r in appsv1["resources"] if r["name"] == "replicasets/scale")
    assert (scale["group"], scale["version"], scale["kind"]) == ("autoscaling", "v1", "Scale")
    status, _, missing = _get(server, "/apis/nope.example.com/v1")
    assert status == 404 and missing["kind"] == "Status"


def test_version_reports_1_32(server: ServerThread) -> None:
    _, _, v = _get(server, "/version")
    assert (v["major"], v["minor"]) == ("1", "32") and v["gitVersion"].startswith("v1.32.")


def test_openapi_index_and_documents(server: ServerThread) -> None:
    _, _, index = _get(server, "/openapi/v3")
    keys = set(index["paths"])
    assert keys == {openapi.gv_path(r.group, r.version) for r in RESOURCES}
    for key, entry in index["paths"].items():
        status, _, doc = _get(server, entry["serverRelativeURL"])
        assert status == 200 and doc["openapi"].startswith("3.")
        patch_gvks = [
            op["patch"]["x-kubernetes-group-version-kind"]
            for op in doc["paths"].values()
            if "patch" in op
        ]
        # kubectl's rule for server-side field validation: the kind's PATCH
        # operation lists a fieldValidation parameter.
        for r in RESOURCES:
            if openapi.gv_path(r.group, r.version) != key or "patch" not in r.verbs:
                continue
            gvk = {"group": r.group, "version": r.version, "kind": r.kind}
            assert gvk in patch_gvks, (key, r.kind)
            item = doc["paths"][
                f"/{key}{'/namespaces/{namespace}' if r.namespaced else ''}/{r.plural}/{{name}}"
            ]
            assert "fieldValidation" in {p["name"] for p in item["patch"]["parameters"]}
            assert (
                "application/strategic-merge-patch+json" in item["patch"]["requestBody"]["content"]
            )
    status, _, _ = _get(server, "/openapi/v2")
    assert status == 404


def test_health_endpoints(server: ServerThread) -> None:
    assert server.server is not None
    conn = http.client.HTTPConnection("127.0.0.1", server.server.port, timeout=30)
    for path in ("/healthz", "/livez", "/readyz"):
        conn.request("GET", path)
        r = conn.getresponse()
        assert (r.status, r.read()) == (200, b"ok")
    conn.close()
