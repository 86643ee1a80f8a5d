"""The official `kubernetes` Python client against `kubeproof.serve`, over TLS with a client cert."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubeproof.serve.app import ServerThread
from tests.serve_helpers import running_server

# The client has no type hints; Any keeps mypy --strict quiet about it.
_k8s: Any = pytest.importorskip("kubernetes")
client: Any = _k8s.client
watch: Any = pytest.importorskip("kubernetes.watch")
ApiException: Any = _k8s.client.exceptions.ApiException

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    with running_server(tmp_path_factory.mktemp("pyclient-server")) as srv:
        yield srv


def _api_client(srv: ServerThread, token: str | None = None) -> Any:
    assert srv.server is not None and srv.server.pki is not None
    pki = srv.server.pki
    cfg = client.Configuration()
    cfg.host = srv.url
    cfg.ssl_ca_cert = str(pki.ca_cert)
    if token is None:
        cfg.cert_file = str(pki.admin_cert)
        cfg.key_file = str(pki.admin_key)
    else:
        cfg.api_key = {"authorization": token}
        cfg.api_key_prefix = {"authorization": "Bearer"}
    return client.ApiClient(cfg)


@pytest.fixture(scope="module")
def core(server: ServerThread) -> Iterator[Any]:
    with _api_client(server) as api:
        yield client.CoreV1Api(api)


def _pod(name: str, labels: dict[str, str] | None = None) -> Any:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels=labels or {"app": "py"}),
        spec=client.V1PodSpec(
            containers=[client.V1Container(name="main", image="busybox:1.36", command=["sleep"])]
        ),
    )


def test_create_read_list_patch_delete_pod(core: Any) -> None:
    created = core.create_namespaced_pod("default", _pod("py-1"))
    assert created.metadata.name == "py-1"
    assert created.metadata.uid and created.metadata.resource_version
    assert created.status.phase == "Pending"

    read = core.read_namespaced_pod("py-1", "default")
    assert read.metadata.uid == created.metadata.uid
    assert read.spec.containers[0].image == "busybox:1.36"

    listed = core.list_namespaced_pod("default", label_selector="app=py")
    assert "py-1" in [p.metadata.name for p in listed.items]
    assert int(listed.metadata.resource_version) >= int(created.metadata.resource_version)

    patched = core.patch_namespaced_pod("py-1", "default", {"metadata": {"labels": {"x": "y"}}})
    assert patched.metadata.labels == {"app": "py", "x": "y"}
    assert int(patched.metadata.resource_version) > int(read.metadata.resource_version)

    core.delete_namespaced_pod("py-1", "default")
    with pytest.raises(ApiException) as e:
        core.read_namespaced_pod("py-1", "default")
    assert e.value.status == 404
    assert json.loads(e.value.body)["reason"] == "NotFound"


def test_create_twice_is_already_exists(core: Any) -> None:
    core.create_namespaced_pod("default", _pod("py-dup"))
    with pytest.raises(ApiException) as e:
        core.create_namespaced_pod("default", _pod("py-dup"))
    assert e.value.status == 409
    assert "AlreadyExists" in e.value.body


def test_watch_sees_existing_then_new_pods(core: Any) -> None:
    core.create_namespaced_pod("default", _pod("py-w0", {"watch": "me"}))
    w = watch.Watch()
    events: list[tuple[str, str]] = []
    created_second = False
    for ev in w.stream(
        core.list_namespaced_pod, "default", label_selector="watch=me", timeout_seconds=20
    ):
        events.append((ev["type"], ev["object"].metadata.name))
        if not created_second:
            created_second = True
            core.create_namespaced_pod("default", _pod("py-w1", {"watch": "me"}))
        elif ev["object"].metadata.name == "py-w1" and ev["type"] == "ADDED":
            core.delete_namespaced_pod("py-w1", "default")
        elif ev["type"] == "DELETED":
            w.stop()
    assert events == [("ADDED", "py-w0"), ("ADDED", "py-w1"), ("DELETED", "py-w1")]


def test_read_namespaced_service(core: Any) -> None:
    svc = client.V1Service(
        metadata=client.V1ObjectMeta(name="py-svc"),
        spec=client.V1ServiceSpec(
            selector={"app": "py"},
            ports=[client.V1ServicePort(port=80, target_port=8080, protocol="TCP")],
        ),
    )
    core.create_namespaced_service("default", svc)
    got = core.read_namespaced_service("py-svc", "default")
    assert got.metadata.name == "py-svc"
    assert got.spec.type == "ClusterIP"
    assert got.spec.cluster_ip  # allocated from the service range
    assert got.spec.ports[0].port == 80 and got.spec.ports[0].target_port == 8080


def test_namespaces_and_a_token_user(server: ServerThread, core: Any) -> None:
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="py-ns")))
    names = [n.metadata.name for n in core.list_namespace().items]
    assert {"default", "kube-system", "py-ns"} <= set(names)
    with _api_client(server, token="bob-token") as api:
        bob = client.CoreV1Api(api)
        with pytest.raises(ApiException) as e:
            bob.list_namespaced_pod("default")
        assert e.value.status == 403
        assert 'User \\"bob\\" cannot list resource \\"pods\\"' in e.value.body


def test_version_and_discovery(server: ServerThread) -> None:
    with _api_client(server) as api:
        info = client.VersionApi(api).get_code()
        assert (info.major, info.minor) == ("1", "32")
        groups = client.ApisApi(api).get_api_versions()
        assert "apps" in [g.name for g in groups.groups]
        resources = client.CoreV1Api(api).get_api_resources()
        assert {"pods", "pods/status", "namespaces", "services"} <= {
            r.name for r in resources.resources
        }


def test_dynamic_client_discovers_and_lists(server: ServerThread, tmp_path: Path) -> None:
    dynamic: Any = pytest.importorskip("kubernetes.dynamic")
    with _api_client(server) as api:
        dyn = dynamic.DynamicClient(api)
        rs_api = dyn.resources.get(api_version="apps/v1", kind="ReplicaSet")
        rs = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": "py-rs"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"r": "s"}},
                "template": {
                    "metadata": {"labels": {"r": "s"}},
                    "spec": {"containers": [{"name": "c", "image": "busybox"}]},
                },
            },
        }
        rs_api.create(body=rs, namespace="default")
        names = [i.metadata.name for i in rs_api.get(namespace="default").items]
        assert "py-rs" in names
