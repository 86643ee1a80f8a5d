"""The API server core: verbs, storage layout, validation, defaulting, status codes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kubeproof.api import RESOURCES, ApiRequest, ApiServer, UserInfo
from kubeproof.mvcc import MVCCStore

from .api_helpers import ADMIN, TABLE, Api, cm, pod


@pytest.fixture
def api() -> Api:
    a = Api()
    a.ns("x")
    return a


# ---------------------------------------------------------------------------
# Storage layout and resourceVersion


def test_objects_live_under_kube_apiserver_keys(api: Api) -> None:
    api.ok("POST", "/api/v1/namespaces/x/pods", pod("p"))
    api.ok("POST", "/api/v1/nodes", {"metadata": {"name": "n1"}})
    api.ok(
        "POST",
        "/api/v1/namespaces/x/services",
        {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}},
    )
    keys = {kv.key for kv in api.store.range(b"/registry/", b"/registry0").kvs}
    assert b"/registry/pods/x/p" in keys
    assert b"/registry/minions/n1" in keys
    assert b"/registry/services/specs/x/s" in keys
    assert b"/registry/namespaces/x" in keys
    assert b"/registry/clusterroles/cluster-admin" in keys
    assert b"/registry/clusterrolebindings/cluster-admin" in keys
    # The stored value carries no resourceVersion: it is the key's mod_revision.
    kv = api.store.range(b"/registry/pods/x/p").kvs[0]
    assert "resourceVersion" not in json.loads(kv.value)["metadata"]
    got = api.ok("GET", "/api/v1/namespaces/x/pods/p")
    assert got["metadata"]["resourceVersion"] == str(kv.mod_revision)


def test_resource_version_is_the_store_revision(api: Api) -> None:
    a = api.ok("POST", "/api/v1/namespaces/x/configmaps", cm("a", k="1"))
    assert a["metadata"]["resourceVersion"] == str(api.store.revision)
    b = api.ok("POST", "/api/v1/namespaces/x/configmaps", cm("b", k="1"))
    assert int(b["metadata"]["resourceVersion"]) > int(a["metadata"]["resourceVersion"])
    lst = api.ok("GET", "/api/v1/namespaces/x/configmaps")
    assert lst["metadata"]["resourceVersion"] == str(api.store.revision)
    assert lst["kind"] == "ConfigMapList"
    assert [i["metadata"]["name"] for i in lst["items"]] == ["a", "b"]
    assert "kind" not in lst["items"][0]  # list items carry no type meta, as kube's


def test_create_uses_kube_txn_shape_and_refuses_duplicates(api: Api) -> None:
    api.ok("POST", "/api/v1/namespaces/x/configmaps", cm("a"))
    rev = api.store.revision
    r = api.req("POST", "/api/v1/namespaces/x/configmaps", cm("a"))
    assert r.status == 409
    assert r.body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'configmaps "a" already exists',
        "reason": "AlreadyExists",
        "details": {"name": "a", "kind": "configmaps"},
        "code": 409,
    }
    assert api.store.revision == rev  # the failed compare wrote nothing


def test_stale_update_is_a_conflict_with_kube_message(api: Api) -> None:
    a = api.ok("POST", "/api/v1/namespaces/x/configmaps", cm("a", k="1"))
    first = json.loads(json.dumps(a))
    first["data"] = {"k": "2"}
    api.ok("PUT", "/api/v1/namespaces/x/configmaps/a", first)
    second = json.loads(json.dumps(a))
    second["data"] = {"k": "3"}
    r = api.req("PUT", "/api/v1/namespaces/x/configmaps/a", second)
    assert r.status == 409
    assert r.body is not None
    assert r.body["reason"] == "Conflict"
    assert r.body["message"] == (
        'Operation cannot be fulfilled on configmaps "a": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    assert api.ok("GET", "/api/v1/namespaces/x/configmaps/a")["data"] == {"k": "2"}


def test_unconditional_update_and_noop_update_keeps_version(api: Api) -> None:
    a = api.ok("POST", "/api/v1/namespaces/x/configmaps", cm("a", k="1"))
    body = {"metadata": {"name": "a"}, "data": {"k": "9"}}
    b = api.ok("PUT", "/api/v1/namespaces/x/configmaps/a", body)
    assert b["data"] == {"k": "9"}
    assert b["metadata"]["uid"] == a["metadata"]["uid"]
    rev = api.store.revision
    c = api.ok("PUT", "/api/v1/namespaces/x/configmaps/a", b)
    assert c["metadata"]["resourceVersion"] == b["metadata"]["resourceVersion"]
    assert api.store.revision == rev  # nothing changed, nothing written


def test_update_of_missing_object(api: Api) -> None:
    r = api.req("PUT", "/api/v1/namespaces/x/configmaps/nope", cm("nope"))
    assert r.status == 404
    assert r.body is not None and r.body["message"] == 'configmaps "nope" not found'
    # RBAC objects (and services, events) are created by PUT, as in kube.
    role = {"metadata": {"name": "r"}, "rules": []}
    resp = api.req("PUT", "/apis/rbac.authorization.k8s.io/v1/namespaces/x/roles/r", role)
    assert resp.status == 201


def test_get_missing_and_not_found_paths(api: Api) -> None:
    r = api.req("GET", "/api/v1/namespaces/x/pods/nope")
    assert r.status == 404 and r.body is not None
    assert r.body["message"] == 'pods "nope" not found'
    assert r.body["details"] == {"name": "nope", "kind": "pods"}
    r = api.req("GET", "/apis/apps/v1/namespaces/x/replicasets/nope")
    assert r.body is not None and r.body["message"] == 'replicasets.apps "nope" not found'
    assert r.body["details"]["group"] == "apps"
    for path in ("/api/v1/widgets", "/api/v2/pods", "/apis/apps/v1/pods", "/api/v1/pods/p"):
        assert api.req("GET", path).status == 404, path
    assert api.req("POST", "/api/v1/namespaces/x/pods/p").status == 405
    assert api.req("PATCH", "/api/v1/namespaces/x/pods", {}).status == 405


def test_future_resource_version_is_a_timeout(api: Api) -> None:
    r = api.req("GET", "/api/v1/namespaces/x/configmaps", query={"resourceVersion": "99999"})
    assert r.status == 504 and r.body is not None
    assert r.body["reason"] == "Timeout"
    assert "Too large resource version: 99999" in r.body["message"]


# ---------------------------------------------------------------------------
# Lists: pagination, selectors, exact reads


def test_pagination_with_continue_reads_one_revision(api: Api) -> None:
    for i in range(5):
        api.ok("POST", "/api/v1/namespaces/x/configmaps", cm(f"c{i}"))
    page1 = api.ok("GET", "/api/v1/namespaces/x/configmaps", query={"limit": "2"})
    assert [i["metadata"]["name"] for i in page1["items"]] == ["c0", "c1"]
    assert page1["metadata"]["remainingItemCount"] == 3
    rv = page1["metadata"]["resourceVersion"]
    # A write between pages is not seen: the pages are one snapshot.
    api.ok("POST", "/api/v1/namespaces/x/configmaps", cm("c15"))
    token = page1["metadata"]["continue"]
    page2 = api.ok(
        "GET", "/api/v1/namespaces/x/configmaps", query={"limit": "2", "continue": token}
    )
    assert [i["metadata"]["name"] for i in page2["items"]] == ["c2", "c3"]
    assert page2["metadata"]["resourceVersion"] == rv
    page3 = api.ok(
        "GET",
        "/api/v1/namespaces/x/configmaps",
        query={"limit": "2", "continue": page2["metadata"]["continue"]},
    )
    assert [i["metadata"]["name"] for i in page3["items"]] == ["c4"]
    assert "continue" not in page3["metadata"]
    bad = api.req(
        "GET", "/api/v1/namespaces/x/configmaps", query={"continue": token, "resourceVersion": "5"}
    )
    assert bad.status == 400


def test_expired_continue_token_is_410(api: Api) -> None:
    for i in range(3):
        api.ok("POST", "/api/v1/namespaces/x/configmaps", cm(f"c{i}"))
    page = api.ok("GET", "/api/v1/namespaces/x/configmaps", query={"limit": "1"})
    api.ok("POST", "/api/v1/namespaces/x/configmaps", cm("later"))
    api.store.compact(api.store.revision)
    r = api.req(
        "GET",
        "/api/v1/namespaces/x/configmaps",
        query={"limit": "1", "continue": page["metadata"]["continue"]},
    )
    assert r.status == 410 and r.body is not None
    assert r.body["reason"] == "Expired"
    garbage = api.req("GET", "/api/v1/namespaces/x/configmaps", query={"continue": "!!notbase64"})
    assert garbage.status == 400


def test_exact_list_at_an_old_revision(api: Api) -> None:
    api.ok("POST", "/api/v1/namespaces/x/configmaps", cm("a"))
    rv = api.store.revision
    api.ok("POST", "/api/v1/namespaces/x/configmaps", cm("b"))
    old = api.ok(
        "GET",
        "/api/v1/namespaces/x/configmaps",
        query={"resourceVersion": str(rv), "resourceVersionMatch": "Exact"},
    )
    assert [i["metadata"]["name"] for i in old["items"]] == ["a"]
    assert old["metadata"]["resourceVersion"] == str(rv)


def test_label_and_field_selectors(api: Api) -> None:
    for name, labels in (("a", {"tier": "web"}), ("b", {"tier": "db"}), ("c", {})):
        api.ok(
            "POST",
            "/api/v1/namespaces/x/configmaps",
            {"metadata": {"name": name, "labels": labels}},
        )

    def names(**q: str) -> list[str]:
        body = api.ok("GET", "/api/v1/namespaces/x/configmaps", query=q)
        return [i["metadata"]["name"] for i in body["items"]]

    assert names(labelSelector="tier=web") == ["a"]
    assert names(labelSelector="tier!=web") == ["b", "c"]
    assert names(labelSelector="tier in (web,db)") == ["a", "b"]
    assert names(labelSelector="!tier") == ["c"]
    assert names(labelSelector="tier") == ["a", "b"]
    assert names(fieldSelector="metadata.name=b") == ["b"]
    assert names(fieldSelector="metadata.name!=b") == ["a", "c"]
    assert names(labelSelector="tier", limit="1") == ["a"]
    r = api.req("GET", "/api/v1/namespaces/x/configmaps", query={"fieldSelector": "spec.bogus=1"})
    assert r.status == 400 and r.body is not None
    assert r.body["message"] == "field label not supported: spec.bogus"
    assert (
        api.req("GET", "/api/v1/namespaces/x/configmaps", query={"labelSelector": "a in (b"}).status
        == 400
    )


def test_pod_field_selectors_and_all_namespaces(api: Api) -> None:
    api.ns("y")
    api.ok("POST", "/api/v1/namespaces/x/pods", pod("p1", nodeName="n1"))
    api.ok("POST", "/api/v1/namespaces/y/pods", pod("p2"))
    all_pods = api.ok("GET", "/api/v1/pods")
    assert sorted(i["metadata"]["name"] for i in all_pods["items"]) == ["p1", "p2"]
    on_n1 = api.ok("GET", "/api/v1/pods", query={"fieldSelector": "spec.nodeName=n1"})
    assert [i["metadata"]["name"] for i in on_n1["items"]] == ["p1"]
    pending = api.ok(
        "GET", "/api/v1/pods", query={"fieldSelector": "status.phase=Pending,metadata.namespace=y"}
    )
    assert [i["metadata"]["name"] for i in pending["items"]] == ["p2"]


# ---------------------------------------------------------------------------
# Validation and body handling


def test_validation_errors_are_422_with_causes(api: Api) -> None:
    r = api.req("POST", "/api/v1/namespaces/x/pods", {"metadata": {"name": "Bad_Name"}, "spec": {}})
    assert r.status == 422 and r.body is not None
    assert r.body["reason"] == "Invalid"
    assert r.body["message"].startswith(
        'Pod "Bad_Name" is invalid: [metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain'
    )
    fields = [c["field"] for c in r.body["details"]["causes"]]
    assert fields == ["metadata.name", "spec.containers"]
    assert r.body["details"]["causes"][1] == {
        "reason": "FieldValueRequired",
        "message": "Required value",
        "field": "spec.containers",
    }
    r = api.req("POST", "/api/v1/namespaces", {"metadata": {"name": "a.b"}})
    assert r.status == 422  # namespaces need an RFC 1123 *label*
    r = api.req(
        "POST",
        "/api/v1/namespaces/x/services",
        {"metadata": {"name": "1svc"}, "spec": {"ports": [{"port": 80}]}},
    )
    assert r.status == 422  # services need an RFC 1035 label
    r = api.req(
        "POST",
        "/api/v1/namespaces/x/pods",
        {
            "metadata": {"name": "p"},
            "spec": {
                "containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 70000}]}]
            },
        },
    )
    assert r.status == 422 and r.body is not None
    assert (
        "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive"
        in r.body["message"]
    )


def test_missing_name_and_generate_name(api: Api) -> None:
    r = api.req("POST", "/api/v1/namespaces/x/configmaps", {"metadata": {}})
    assert r.status == 422 and r.body is not None
    assert "metadata.name: Required value: name or generateName is required" in r.body["message"]
    a = api.ok("POST", "/api/v1/namespaces/x/configmaps", {"metadata": {"generateName": "gen-"}})
    b = api.ok("POST", "/api/v1/namespaces/x/configmaps", {"metadata": {"generateName": "gen-"}})
    assert a["metadata"]["name"].startswith("gen-") and len(a["metadata"]["name"]) == 9
    assert a["metadata"]["name"] != b["metadata"]["name"]


def test_unknown_fields_strict_warn_ignore(api: Api) -> None:
    body = {"metadata": {"name": "a", "bogus": 1}, "data": {"k": "v"}, "extra": True}
    strict = api.req(
        "POST", "/api/v1/namespaces/x/configmaps", body, query={"fieldValidation": "Strict"}
    )
    assert strict.status == 400 and strict.body is not None
    assert (
        strict.body["message"]
        == 'strict decoding error: unknown field "metadata.bogus", unknown field "extra"'
    )
    warn = api.req("POST", "/api/v1/namespaces/x/configmaps", body)
    assert warn.status == 201
    assert ("Warning", '299 - "unknown field \\"metadata.bogus\\""') in warn.headers
    assert warn.body is not None and "extra" not in warn.body  # dropped, as Go structs drop it
    ignore = api.req(
        "POST",
        "/api/v1/namespaces/x/configmaps",
        dict(body, metadata={"name": "b"}),
        query={"fieldValidation": "Ignore"},
    )
    assert ignore.status == 201 and not [h for h in ignore.headers if h[0] == "Warning"]
    dup = api.req(
        "POST",
        "/api/v1/namespaces/x/configmaps",
        raw=b'{"metadata":{"name":"c","name":"d"}}',
        query={"fieldValidation": "Strict"},
    )
    assert dup.status == 400 and dup.body is not None
    assert 'duplicate field "metadata.name"' in dup.body["message"]


def test_wrong_types_kinds_and_media(api: Api) -> None:
    r = api.req(
        "POST", "/api/v1/namespaces/x/configmaps", {"metadata": {"name": "a"}, "data": ["x"]}
    )
    assert r.status == 400 and r.body is not None
    assert r.body["message"].startswith(
        "json: cannot unmarshal array into Go struct field ConfigMap.data"
    )
    r = api.req(
        "POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "q"}}
    )
    assert r.status == 400
    r = api.req("POST", "/api/v1/namespaces", {"apiVersion": "apps/v1", "metadata": {"name": "q"}})
    assert r.status == 400 and r.body is not None
    assert (
        r.body["message"]
        == "the API version in the data (apps/v1) does not match the expected API version (v1)"
    )
    r = api.req("POST", "/api/v1/namespaces", raw=b"{not json")
    assert r.status == 400
    r = api.req("POST", "/api/v1/namespaces", raw=b"kind: x", content_type="text/plain")
    assert r.status == 415 and r.body is not None and r.body["reason"] == "UnsupportedMediaType"
    r = api.req("GET", "/api/v1/namespaces", accept="text/html")
    assert r.status == 406
    y = api.req(
        "POST",
        "/api/v1/namespaces",
        raw=b"metadata:\n  name: from-yaml\n",
        content_type="application/yaml",
    )
    assert y.status == 201
    # The Python client sends no Content-Type: JSON it is.
    assert api.req("POST", "/api/v1/namespaces", {"metadata": {"name": "noct"}}).status == 201


def test_namespace_mismatch_and_body_limits(api: Api) -> None:
    r = api.req(
        "POST", "/api/v1/namespaces/x/configmaps", {"metadata": {"name": "a", "namespace": "other"}}
    )
    assert r.status == 400 and r.body is not None
    assert (
        r.body["message"]
        == "the namespace of the provided object does not match the namespace sent on the request"
    )
    big = b'{"metadata":{"name":"big"},"data":{"k":"' + b"x" * (3 * 1024 * 1024) + b'"}}'
    r = api.req("POST", "/api/v1/namespaces/x/configmaps", raw=big)
    assert r.status == 413 and r.body is not None and r.body["reason"] == "RequestEntityTooLarge"
    r = api.req("PUT", "/api/v1/namespaces/x/configmaps/a", {"metadata": {"name": "b"}})
    assert r.status == 400


def test_dry_run_writes_nothing(api: Api) -> None:
    rev = api.store.revision
    r = api.req("POST", "/api/v1/namespaces/x/configmaps", cm("a"), query={"dryRun": "All"})
    assert r.status == 201
    assert api.store.revision == rev
    assert api.req("GET", "/api/v1/namespaces/x/configmaps/a").status == 404


# ---------------------------------------------------------------------------
# Defaulting and strategies


def test_pod_defaults_and_status_reset(api: Api) -> None:
    body = pod("p", image="nginx")
    body["status"] = {"phase": "Running"}
    body["spec"]["containers"][0]["ports"] = [{"containerPort": 80}]
    got = api.ok("POST", "/api/v1/namespaces/x/pods", body)
    spec = got["spec"]
    assert spec["restartPolicy"] == "Always"
    assert spec["dnsPolicy"] == "ClusterFirst"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["schedulerName"] == "default-scheduler"
    c = spec["containers"][0]
    assert c["imagePullPolicy"] == "Always"  # no tag means :latest
    assert c["terminationMessagePath"] == "/dev/termination-log"
    assert c["terminationMessagePolicy"] == "File"
    assert c["ports"][0]["protocol"] == "TCP"
    assert got["status"] == {"phase": "Pending", "qosClass": "BestEffort"}
    tagged = api.ok("POST", "/api/v1/namespaces/x/pods", pod("q", image="nginx:1.25"))
    assert tagged["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert "generation" not in got["metadata"]


def test_pod_spec_is_immutable_except_images(api: Api) -> None:
    p = api.ok("POST", "/api/v1/namespaces/x/pods", pod("p"))
    p["spec"]["containers"][0]["image"] = "nginx:2"
    p2 = api.ok("PUT", "/api/v1/namespaces/x/pods/p", p)
    assert p2["spec"]["containers"][0]["image"] == "nginx:2"
    p2["spec"]["restartPolicy"] = "Never"
    r = api.req("PUT", "/api/v1/namespaces/x/pods/p", p2)
    assert r.status == 422 and r.body is not None
    assert (
        "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`"
        in r.body["message"]
    )


def test_status_subresource_and_main_resource_split(api: Api) -> None:
    p = api.ok("POST", "/api/v1/namespaces/x/pods", pod("p"))
    p["status"] = {"phase": "Running", "podIP": "10.0.0.5"}
    p["metadata"]["labels"]["via"] = "status"
    s = api.ok("PUT", "/api/v1/namespaces/x/pods/p/status", p)
    assert s["status"]["phase"] == "Running"
    # The main resource ignores status changes.
    s["status"]["phase"] = "Failed"
    m = api.ok("PUT", "/api/v1/namespaces/x/pods/p", s)
    assert m["status"]["phase"] == "Running"
    sp = api.ok(
        "PATCH",
        "/api/v1/namespaces/x/pods/p/status",
        {"status": {"phase": "Succeeded"}, "spec": {"nodeName": "sneaky"}},
        content_type="application/merge-patch+json",
    )
    assert sp["status"]["phase"] == "Succeeded"
    assert "nodeName" not in sp["spec"]


def test_binding_subresource(api: Api) -> None:
    api.ok("POST", "/api/v1/namespaces/x/pods", pod("p"))
    b = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": "p"},
        "target": {"kind": "Node", "name": "n1"},
    }
    r = api.req("POST", "/api/v1/namespaces/x/pods/p/binding", b)
    assert r.status == 201
    assert r.body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "code": 201,
    }
    got = api.ok("GET", "/api/v1/namespaces/x/pods/p")
    assert got["spec"]["nodeName"] == "n1"
    assert any(
        c["type"] == "PodScheduled" and c["status"] == "True" for c in got["status"]["conditions"]
    )
    again = api.req("POST", "/api/v1/namespaces/x/pods/p/binding", b)
    assert again.status == 409 and again.body is not None
    assert (
        again.body["message"]
        == 'Operation cannot be fulfilled on pods/binding "p": pod p is already assigned to node "n1"'
    )


def test_replicaset_generation_and_scale(api: Api) -> None:
    rs: dict[str, Any] = {
        "metadata": {"name": "rs"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "i"}]},
            },
        },
    }
    got = api.ok("POST", "/apis/apps/v1/namespaces/x/replicasets", rs)
    assert got["metadata"]["generation"] == 1
    assert got["spec"]["template"]["spec"]["restartPolicy"] == "Always"
    scale = api.ok("GET", "/apis/apps/v1/namespaces/x/replicasets/rs/scale")
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"] == {"replicas": 2}
    assert scale["status"] == {"replicas": 0, "selector": "app=web"}
    scale["spec"]["replicas"] = 5
    api.ok("PUT", "/apis/apps/v1/namespaces/x/replicasets/rs/scale", scale)
    after = api.ok("GET", "/apis/apps/v1/namespaces/x/replicasets/rs")
    assert after["spec"]["replicas"] == 5
    assert after["metadata"]["generation"] == 2
    stale = api.req("PUT", "/apis/apps/v1/namespaces/x/replicasets/rs/scale", scale)
    assert stale.status == 409
    bad = dict(rs, metadata={"name": "bad"})
    bad["spec"] = dict(rs["spec"], selector={"matchLabels": {"app": "other"}})
    r = api.req("POST", "/apis/apps/v1/namespaces/x/replicasets", bad)
    assert r.status == 422 and r.body is not None
    assert "`selector` does not match template `labels`" in r.body["message"]


def test_service_ip_allocation_and_defaults(api: Api) -> None:
    kube = api.ok("GET", "/api/v1/namespaces/default/services/kubernetes")
    assert kube["spec"]["clusterIP"] == "10.96.0.1"
    s1 = api.ok(
        "POST",
        "/api/v1/namespaces/x/services",
        {"metadata": {"name": "a"}, "spec": {"ports": [{"port": 80}]}},
    )
    s2 = api.ok(
        "POST",
        "/api/v1/namespaces/x/services",
        {"metadata": {"name": "b"}, "spec": {"ports": [{"port": 80}], "type": "NodePort"}},
    )
    assert s1["spec"]["clusterIP"] == "10.96.0.2" and s2["spec"]["clusterIP"] == "10.96.0.3"
    assert s1["spec"]["type"] == "ClusterIP" and s1["spec"]["sessionAffinity"] == "None"
    assert s1["spec"]["ports"][0] == {"port": 80, "protocol": "TCP", "targetPort": 80}
    assert s2["spec"]["ports"][0]["nodePort"] == 30000
    taken = api.req(
        "POST",
        "/api/v1/namespaces/x/services",
        {"metadata": {"name": "c"}, "spec": {"ports": [{"port": 80}], "clusterIP": "10.96.0.2"}},
    )
    assert taken.status == 422 and taken.body is not None
    assert "provided IP is already allocated" in taken.body["message"]
    s1["spec"]["clusterIP"] = "10.96.0.99"
    r = api.req("PUT", "/api/v1/namespaces/x/services/a", s1)
    assert r.status == 422
    # A deleted service's address is free again.
    api.ok("DELETE", "/api/v1/namespaces/x/services/a")
    s3 = api.ok(
        "POST",
        "/api/v1/namespaces/x/services",
        {"metadata": {"name": "d"}, "spec": {"ports": [{"port": 80}]}},
    )
    assert s3["spec"]["clusterIP"] == "10.96.0.2"
    read = api.ok("GET", "/api/v1/namespaces/x/services/d")
    assert read["spec"]["clusterIP"] == "10.96.0.2"


def test_namespace_defaults(api: Api) -> None:
    ns = api.ok("GET", "/api/v1/namespaces/x")
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "x"}
    assert ns["status"] == {"phase": "Active"}
    assert ns["spec"] == {"finalizers": ["kubernetes"]}
    names = [i["metadata"]["name"] for i in api.ok("GET", "/api/v1/namespaces")["items"]]
    assert {"default", "kube-system", "kube-public", "kube-node-lease", "x"} <= set(names)


# ---------------------------------------------------------------------------
# Deletion


def test_graceful_pod_deletion(api: Api) -> None:
    api.ok("POST", "/api/v1/namespaces/x/pods", pod("p", nodeName="n1"))
    r = api.req("DELETE", "/api/v1/namespaces/x/pods/p")
    assert r.status == 202 and r.body is not None
    meta = r.body["metadata"]
    assert meta["deletionGracePeriodSeconds"] == 30
    assert meta["deletionTimestamp"] == "2026-01-01T00:00:30Z"
    assert api.req("GET", "/api/v1/namespaces/x/pods/p").status == 200
    final = api.req("DELETE", "/api/v1/namespaces/x/pods/p", query={"gracePeriodSeconds": "0"})
    assert final.status == 200
    assert api.req("GET", "/api/v1/namespaces/x/pods/p").status == 404
    # An unscheduled pod goes at once.
    api.ok("POST", "/api/v1/namespaces/x/pods", pod("q"))
    assert api.req("DELETE", "/api/v1/namespaces/x/pods/q").status == 200
    assert api.req("GET", "/api/v1/namespaces/x/pods/q").status == 404


def test_finalizers_hold_deletion_until_removed(api: Api) -> None:
    body = cm("a")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    api.ok("POST", "/api/v1/namespaces/x/configmaps", body)
    r = api.req("DELETE", "/api/v1/namespaces/x/configmaps/a")
    assert r.status == 202 and r.body is not None
    assert r.body["metadata"]["deletionTimestamp"]
    held = api.ok("GET", "/api/v1/namespaces/x/configmaps/a")
    held["metadata"]["finalizers"].append("example.com/more")
    bad = api.req("PUT", "/api/v1/namespaces/x/configmaps/a", held)
    assert bad.status == 422
    api.ok(
        "PATCH",
        "/api/v1/namespaces/x/configmaps/a",
        {"metadata": {"finalizers": None}},
        content_type="application/merge-patch+json",
    )
    assert api.req("GET", "/api/v1/namespaces/x/configmaps/a").status == 404


def test_delete_preconditions(api: Api) -> None:
    a = api.ok("POST", "/api/v1/namespaces/x/configmaps", cm("a"))
    r = api.req("DELETE", "/api/v1/namespaces/x/configmaps/a", {"preconditions": {"uid": "wrong"}})
    assert r.status == 409 and r.body is not None
    assert r.body["message"].startswith(
        'Operation cannot be fulfilled on configmaps "a": Precondition failed: UID in precondition: wrong'
    )
    r = api.req(
        "DELETE", "/api/v1/namespaces/x/configmaps/a", {"preconditions": {"resourceVersion": "1"}}
    )
    assert r.status == 409
    ok = api.req(
        "DELETE",
        "/api/v1/namespaces/x/configmaps/a",
        {
            "preconditions": {
                "uid": a["metadata"]["uid"],
                "resourceVersion": a["metadata"]["resourceVersion"],
            }
        },
    )
    assert ok.status == 200


def _owned(name: str, owner: dict[str, object]) -> dict[str, object]:
    meta = owner["metadata"]
    assert isinstance(meta, dict)
    body = pod(name)
    body["metadata"]["ownerReferences"] = [
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": meta["name"],
            "uid": meta["uid"],
            "controller": True,
        }
    ]
    return body


def _rs(api: Api) -> dict[str, object]:
    return api.ok(
        "POST",
        "/apis/apps/v1/namespaces/x/replicasets",
        {
            "metadata": {"name": "rs"},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "i"}]},
                },
            },
        },
    )


@pytest.mark.parametrize("policy", ["Background", "Foreground"])
def test_propagation_deletes_dependents(api: Api, policy: str) -> None:
    rs = _rs(api)
    api.ok("POST", "/api/v1/namespaces/x/pods", _owned("p1", rs))
    api.ok("POST", "/api/v1/namespaces/x/pods", _owned("p2", rs))
    api.ok("POST", "/api/v1/namespaces/x/pods", pod("free"))
    r = api.req(
        "DELETE", "/apis/apps/v1/namespaces/x/replicasets/rs", {"propagationPolicy": policy}
    )
    assert r.status == 200
    left = [i["metadata"]["name"] for i in api.ok("GET", "/api/v1/namespaces/x/pods")["items"]]
    assert left == ["free"]


def test_orphan_propagation_keeps_dependents(api: Api) -> None:
    rs = _rs(api)
    api.ok("POST", "/api/v1/namespaces/x/pods", _owned("p1", rs))
    api.ok(
        "DELETE", "/apis/apps/v1/namespaces/x/replicasets/rs", query={"propagationPolicy": "Orphan"}
    )
    p = api.ok("GET", "/api/v1/namespaces/x/pods/p1")
    assert "ownerReferences" not in p["metadata"]
    bad = api.req("DELETE", "/api/v1/namespaces/x/pods/p1", {"propagationPolicy": "Sideways"})
    assert bad.status == 422


def test_namespace_deletion_removes_contents(api: Api) -> None:
    api.ok("POST", "/api/v1/namespaces/x/pods", pod("p", nodeName="n1"))
    api.ok("POST", "/api/v1/namespaces/x/configmaps", cm("c"))
    held = cm("held")
    held["metadata"]["finalizers"] = ["example.com/hold"]
    api.ok("POST", "/api/v1/namespaces/x/configmaps", held)
    r = api.req("DELETE", "/api/v1/namespaces/x")
    assert r.status == 202 and r.body is not None
    assert r.body["status"]["phase"] == "Terminating"
    assert [
        i["metadata"]["name"] for i in api.ok("GET", "/api/v1/namespaces/x/configmaps")["items"]
    ] == ["held"]
    assert api.ok("GET", "/api/v1/namespaces/x/pods")["items"] == []
    # No new content in a terminating namespace.
    r = api.req("POST", "/api/v1/namespaces/x/configmaps", cm("new"))
    assert r.status == 403 and r.body is not None
    assert (
        r.body["message"]
        == 'configmaps "new" is forbidden: unable to create new content in namespace x because it is being terminated'
    )
    assert r.body["details"]["causes"][0]["reason"] == "NamespaceTerminating"
    # Releasing the last finalizer lets the namespace go.
    api.ok(
        "PATCH",
        "/api/v1/namespaces/x/configmaps/held",
        {"metadata": {"finalizers": None}},
        content_type="application/merge-patch+json",
    )
    assert api.req("GET", "/api/v1/namespaces/x").status == 404
    r = api.req("POST", "/api/v1/namespaces/x/configmaps", cm("late"))
    assert (
        r.status == 404 and r.body is not None and r.body["message"] == 'namespaces "x" not found'
    )
    assert api.req("DELETE", "/api/v1/namespaces/default").status == 403


def test_deletecollection(api: Api) -> None:
    for name, tier in (("a", "db"), ("b", "db"), ("c", "web")):
        api.ok(
            "POST",
            "/api/v1/namespaces/x/configmaps",
            {"metadata": {"name": name, "labels": {"tier": tier}}},
        )
    out = api.ok("DELETE", "/api/v1/namespaces/x/configmaps", query={"labelSelector": "tier=db"})
    assert out["kind"] == "ConfigMapList"
    assert sorted(i["metadata"]["name"] for i in out["items"]) == ["a", "b"]
    left = [
        i["metadata"]["name"] for i in api.ok("GET", "/api/v1/namespaces/x/configmaps")["items"]
    ]
    assert left == ["c"]


# ---------------------------------------------------------------------------
# Tables


def test_pod_table_columns_and_cells(api: Api) -> None:
    p = pod("p", nodeName="n1")
    api.ok("POST", "/api/v1/namespaces/x/pods", p)
    api.clock.tick(150)
    t = api.ok("GET", "/api/v1/namespaces/x/pods", accept=TABLE)
    assert t["kind"] == "Table" and t["apiVersion"] == "meta.k8s.io/v1"
    cols = [(c["name"], c["priority"]) for c in t["columnDefinitions"]]
    assert cols == [
        ("Name", 0),
        ("Ready", 0),
        ("Status", 0),
        ("Restarts", 0),
        ("Age", 0),
        ("IP", 1),
        ("Node", 1),
        ("Nominated Node", 1),
        ("Readiness Gates", 1),
    ]
    row = t["rows"][0]
    assert row["cells"] == ["p", "0/1", "Pending", "0", "2m30s", "<none>", "n1", "<none>", "<none>"]
    assert row["object"]["kind"] == "PartialObjectMetadata"
    assert row["object"]["metadata"]["name"] == "p"
    assert t["metadata"]["resourceVersion"] == str(api.store.revision)
    one = api.ok("GET", "/api/v1/namespaces/x/pods/p", accept=TABLE)
    assert one["kind"] == "Table" and len(one["rows"]) == 1
    api.req("DELETE", "/api/v1/namespaces/x/pods/p")
    t2 = api.ok("GET", "/api/v1/namespaces/x/pods", accept=TABLE)
    assert t2["rows"][0]["cells"][2] == "Terminating"


def test_other_tables(api: Api) -> None:
    ns = api.ok("GET", "/api/v1/namespaces", accept=TABLE)
    assert [c["name"] for c in ns["columnDefinitions"]] == ["Name", "Status", "Age"]
    api.ok(
        "POST",
        "/api/v1/namespaces/x/services",
        {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}], "selector": {"app": "web"}}},
    )
    svc = api.ok("GET", "/api/v1/namespaces/x/services", accept=TABLE)
    assert svc["rows"][0]["cells"][:5] == ["s", "ClusterIP", "10.96.0.2", "<none>", "80/TCP"]
    assert svc["rows"][0]["cells"][6] == "app=web"
    roles = api.ok("GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles", accept=TABLE)
    assert [c["name"] for c in roles["columnDefinitions"]] == ["Name", "Created At"]


# ---------------------------------------------------------------------------
# The registry


def test_registry_describes_every_resource() -> None:
    plurals = {(r.group, r.plural) for r in RESOURCES}
    for want in (
        ("", "pods"),
        ("", "namespaces"),
        ("", "nodes"),
        ("", "services"),
        ("", "events"),
        ("", "configmaps"),
        ("apps", "replicasets"),
        ("rbac.authorization.k8s.io", "roles"),
        ("rbac.authorization.k8s.io", "clusterrolebindings"),
        ("authorization.k8s.io", "selfsubjectaccessreviews"),
        ("authorization.k8s.io", "selfsubjectrulesreviews"),
    ):
        assert want in plurals
    pods = next(r for r in RESOURCES if r.plural == "pods")
    assert pods.short_names == ("po",) and pods.namespaced
    assert [s.name for s in pods.subresources] == ["status", "binding"]
    rs = next(r for r in RESOURCES if r.plural == "replicasets")
    assert rs.subresource("scale") is not None and rs.group_version == "apps/v1"


def test_restart_over_the_same_store_changes_nothing() -> None:
    store = MVCCStore()
    ApiServer(store)
    rev = store.revision
    again = ApiServer(store)
    assert store.revision == rev  # bootstrap is idempotent
    resp = again.handle(ApiRequest("GET", "/api/v1/namespaces", user=ADMIN))
    assert resp.status == 200


def test_unauthenticated_is_401_unless_anonymous_enabled() -> None:
    api = Api()
    r = api.req("GET", "/api/v1/namespaces", user=None)
    assert r.status == 401 and r.body is not None and r.body["reason"] == "Unauthorized"
    anon = Api(anonymous=True)
    r = anon.req("GET", "/api/v1/namespaces", user=None)
    assert r.status == 403 and r.body is not None
    assert (
        r.body["message"]
        == 'namespaces is forbidden: User "system:anonymous" cannot list resource "namespaces" '
        'in API group "" at the cluster scope'
    )
    assert anon.server.authorize_request(ApiRequest("GET", "/version", user=None)) is None
    denied = anon.server.authorize_request(ApiRequest("GET", "/api", user=None))
    assert denied is not None and denied.status == 403
    assert (
        anon.server.authorize_request(
            ApiRequest("GET", "/api", user=UserInfo("u", ("system:authenticated",)))
        )
        is None
    )


def test_an_escaped_lone_surrogate_becomes_the_replacement_character(api: Api) -> None:
    # Go's encoding/json (so kube-apiserver) decodes "\ud800" to U+FFFD; keeping the
    # surrogate made the store's UTF-8 encoding fail with a 500.
    raw = b'{"metadata": {"name": "s"}, "data": {"k": "a\\ud800b", "e": "\\ud83d\\ude00"}}'
    made = api.ok("POST", "/api/v1/namespaces/x/configmaps", raw=raw)
    assert made["data"] == {"k": "a\ufffdb", "e": "\U0001f600"}
    assert api.ok("GET", "/api/v1/namespaces/x/configmaps/s")["data"]["k"] == "a\ufffdb"
