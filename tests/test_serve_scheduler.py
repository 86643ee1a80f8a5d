"""The scheduler of `kubeproof up` (`kubeproof.serve.scheduler`) with real components.

Nodes and pods are created through the HTTPS API with the official
`kubernetes` client (and kubectl, where installed); the scheduler runs in
the server as in `kubeproof up` and binds through the API core.  Each test
waits for what it expects with a deadline (a short poll loop, or a watch
with timeoutSeconds), never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pytest
from click.testing import CliRunner

from kubeproof.api import ApiRequest, ApiResponse, ApiServer, UserInfo
from kubeproof.cli.up import command as up_command
from kubeproof.mvcc import MVCCStore
from kubeproof.serve.app import ServeOptions, ServerThread
from kubeproof.serve.scheduler import (
    SCHEDULER_USER,
    SchedulerShell,
    load_scheduler_config,
    scheduler_extension,
)
from tests.serve_helpers import KUBECTL, Kubectl, core_allows
from tests.test_serve_up import kubeproof_up

_k8s: Any = pytest.importorskip("kubernetes")
client: Any = _k8s.client
ApiException: Any = _k8s.client.exceptions.ApiException

pytestmark = pytest.mark.timeout(120)

T = TypeVar("T")
DEADLINE = 10.0
TAINT = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}


def wait_for(what: str, probe: Callable[[], T | None], deadline: float = DEADLINE) -> T:
    """Polls ``probe`` until it returns a truthy value; fails after ``deadline`` seconds."""
    end = time.monotonic() + deadline
    last: T | None = None
    while time.monotonic() < end:
        last = probe()
        if last:
            return last
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def node(
    name: str,
    cpu: str,
    memory: str = "8Gi",
    *,
    taints: list[dict[str, str]] | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": {"taints": taints} if taints else {},
        "status": {
            "capacity": {"cpu": cpu, "memory": memory, "pods": "110"},
            "allocatable": {"cpu": cpu, "memory": memory, "pods": "110"},
        },
    }


def pod(name: str, cpu: str = "100m", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "image": "busybox:1.36",
                    "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}},
                }
            ],
            **spec,
        },
    }


def _api_client(srv: ServerThread) -> Any:
    assert srv.server is not None and srv.server.pki is not None
    pki = srv.server.pki
    cfg = client.Configuration()
    cfg.host = srv.url
    cfg.ssl_ca_cert = str(pki.ca_cert)
    cfg.cert_file = str(pki.admin_cert)
    cfg.key_file = str(pki.admin_key)
    return client.ApiClient(cfg)


def _server(data_dir: Path, **kw: Any) -> ServerThread:
    opts = ServeOptions(secure_port=0, data_dir=data_dir, watch_poll_interval=0.2)
    return ServerThread(opts, [scheduler_extension(**kw)])


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[ServerThread, Any]]:
    with _server(tmp_path / "data") as srv, _api_client(srv) as api:
        yield srv, client.CoreV1Api(api)


def node_of(core: Any, name: str) -> str | None:
    got: str | None = core.read_namespaced_pod(name, "default").spec.node_name
    return got


def scheduled_condition(core: Any, name: str) -> Any:
    p = core.read_namespaced_pod(name, "default")
    return next((c for c in p.status.conditions or () if c.type == "PodScheduled"), None)


def events_for(core: Any, name: str, reason: str | None = None) -> list[Any]:
    items = core.list_namespaced_event(
        "default", field_selector=f"involvedObject.name={name}"
    ).items
    return [e for e in items if reason is None or e.reason == reason]


def cpu_milli(q: str) -> int:
    return int(q[:-1]) if q.endswith("m") else int(float(q) * 1000)


# --------------------------------------------------------------------------- placement


def test_pods_are_bound_to_nodes_their_filters_allow(
    cluster: tuple[ServerThread, Any],
) -> None:
    _, core = cluster
    core.create_node(node("n1", "2"))
    core.create_node(node("n2", "2"))
    core.create_node(node("gpu", "8", taints=[TAINT], labels={"accelerator": "gpu"}))
    for i in range(4):
        core.create_namespaced_pod("default", pod(f"web-{i}", "500m"))
    core.create_namespaced_pod(
        "default",
        pod(
            "trainer",
            "4",
            tolerations=[{"key": "dedicated", "operator": "Equal", "value": "gpu"}],
            nodeSelector={"accelerator": "gpu"},
        ),
    )
    names = [f"web-{i}" for i in range(4)]
    placed = {n: wait_for(f"{n} bound", partial(node_of, core, n)) for n in names}
    # A pod that tolerates nothing never lands on the tainted node.
    assert set(placed.values()) <= {"n1", "n2"}, placed
    assert wait_for("trainer bound", lambda: node_of(core, "trainer")) == "gpu"
    # NodeResourcesFit: no node holds more than its allocatable cpu.
    used: dict[str, int] = {}
    for p in core.list_namespaced_pod("default").items:
        req = p.spec.containers[0].resources.requests["cpu"]
        used[p.spec.node_name] = used.get(p.spec.node_name, 0) + cpu_milli(req)
    assert used["n1"] <= 2000 and used["n2"] <= 2000 and used["gpu"] <= 8000, used
    for name in [*names, "trainer"]:
        cond = scheduled_condition(core, name)
        assert cond is not None and cond.status == "True"
        (ev,) = events_for(core, name, "Scheduled")
        target = node_of(core, name)
        assert ev.type == "Normal"
        assert ev.message == f"Successfully assigned default/{name} to {target}"
        assert ev.source.component == "default-scheduler"
        assert ev.involved_object.kind == "Pod"
        assert ev.involved_object.uid == core.read_namespaced_pod(name, "default").metadata.uid


def test_a_pod_too_large_for_every_node_stays_pending_until_one_fits(
    cluster: tuple[ServerThread, Any], tmp_path: Path
) -> None:
    srv, core = cluster
    core.create_node(node("n1", "2"))
    core.create_node(node("n2", "2"))
    core.create_node(node("gpu", "8", taints=[TAINT]))
    core.create_namespaced_pod("default", pod("big", "6"))
    cond = wait_for("PodScheduled=False", lambda: scheduled_condition(core, "big"))
    assert cond.status == "False" and cond.reason == "Unschedulable"
    assert cond.message.startswith("0/3 nodes are available: ")
    assert "2 Insufficient cpu" in cond.message
    assert "1 node(s) had untolerated taint {dedicated: gpu}" in cond.message
    assert node_of(core, "big") is None
    (ev,) = wait_for("FailedScheduling", lambda: events_for(core, "big", "FailedScheduling"))
    assert ev.type == "Warning" and ev.message == cond.message
    if KUBECTL is not None:
        k = Kubectl(srv.kubeconfig, tmp_path / "kubectl-cache")
        out = k.run("describe", "pod", "big").stdout
        assert "FailedScheduling" in out and "0/3 nodes are available" in out, out

    # A big enough node: the pending pod is retried and bound to it.
    core.create_node(node("n3", "8"))
    assert wait_for("big bound", lambda: node_of(core, "big")) == "n3"
    cond = scheduled_condition(core, "big")
    assert cond.status == "True"
    assert len(events_for(core, "big", "Scheduled")) == 1


def test_queue_order_is_priority_then_creation_time(cluster: tuple[ServerThread, Any]) -> None:
    _, core = cluster
    for name, extra in (
        ("first", {}),
        ("second", {}),
        ("urgent", {"priority": 100, "preemptionPolicy": "Never"}),
    ):
        core.create_namespaced_pod("default", pod(name, "1500m", **extra))
    for name in ("first", "second", "urgent"):
        cond = wait_for(f"{name} unschedulable", partial(scheduled_condition, core, name))
        assert cond.message == "no nodes available to schedule pods"
    core.create_node(node("n1", "2"))  # room for one of them
    assert wait_for("urgent bound", lambda: node_of(core, "urgent")) == "n1"
    core.create_node(node("n2", "2"))  # room for one more: the older pod
    assert wait_for("first bound", lambda: node_of(core, "first")) == "n2"
    cond = wait_for(
        "second re-evaluated",
        lambda: (c := scheduled_condition(core, "second")) and "0/2" in c.message and c,
    )
    assert node_of(core, "second") is None
    assert cond.message.startswith("0/2 nodes are available: 2 Insufficient cpu.")


def test_preemption_deletes_the_lower_priority_victim(cluster: tuple[ServerThread, Any]) -> None:
    _, core = cluster
    core.create_node(node("n1", "2"))
    core.create_namespaced_pod("default", pod("low", "2"))
    assert wait_for("low bound", lambda: node_of(core, "low")) == "n1"
    high = core.create_namespaced_pod("default", pod("high", "2", priority=1000))
    assert wait_for("high bound", lambda: node_of(core, "high")) == "n1"
    with pytest.raises(ApiException) as gone:
        core.read_namespaced_pod("low", "default")
    assert gone.value.status == 404
    (ev,) = events_for(core, "low", "Preempted")
    assert ev.message == f"Preempted by pod {high.metadata.uid} on node n1"


def test_a_pod_waiting_for_its_affinity_is_placed_when_a_matching_pod_is_bound(
    cluster: tuple[ServerThread, Any],
) -> None:
    _, core = cluster
    core.create_node(node("n1", "2"))
    core.create_node(node("n2", "2"))
    term = {
        "labelSelector": {"matchLabels": {"app": "db"}},
        "topologyKey": "kubernetes.io/hostname",
    }
    follower = pod(
        "follower",
        affinity={"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}},
    )
    core.create_namespaced_pod("default", follower)
    cond = wait_for("follower unschedulable", lambda: scheduled_condition(core, "follower"))
    assert cond.reason == "Unschedulable"
    assert "didn't match pod affinity rules" in cond.message, cond.message
    # The scheduler binds a matching pod: its own binding wakes the follower
    # (the core's queueing hint), which then joins it on its node.
    leader = pod("leader")
    leader["metadata"]["labels"] = {"app": "db"}
    core.create_namespaced_pod("default", leader)
    where = wait_for("leader bound", lambda: node_of(core, "leader"))
    assert wait_for("follower bound", lambda: node_of(core, "follower")) == where


# --------------------------------------------------------------------------- binding once


def test_a_pod_is_bound_once_and_a_bound_pod_is_left_alone(
    cluster: tuple[ServerThread, Any],
) -> None:
    _, core = cluster
    core.create_node(node("n1", "4"))
    core.create_node(node("n2", "4"))
    core.create_namespaced_pod("default", pod("placed-by-hand", nodeName="n2"))
    core.create_namespaced_pod("default", pod("a"))
    first = wait_for("a bound", lambda: node_of(core, "a"))
    rv = core.read_namespaced_pod("a", "default").metadata.resource_version
    # More changes make the scheduler run more passes; wait until it has
    # (a later pod is bound), then check that nothing was bound again.
    core.create_node(node("n3", "4"))
    core.patch_node("n1", {"metadata": {"labels": {"zone": "z1"}}})
    core.create_namespaced_pod("default", pod("b"))
    wait_for("b bound", lambda: node_of(core, "b"))
    a = core.read_namespaced_pod("a", "default")
    assert a.spec.node_name == first and a.metadata.resource_version == rv
    assert len(events_for(core, "a", "Scheduled")) == 1
    hand = core.read_namespaced_pod("placed-by-hand", "default")
    assert hand.spec.node_name == "n2"
    assert events_for(core, "placed-by-hand") == []


ADMIN = UserInfo("admin", ("system:masters", "system:authenticated"))


def _admin(api: ApiServer, method: str, path: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else b""
    ctype = "application/merge-patch+json" if method == "PATCH" else None
    resp = api.handle(ApiRequest(method, path, body=data, content_type=ctype, user=ADMIN))
    assert resp.status < 300, resp.body
    return resp.body


def test_a_binding_lost_to_a_race_is_not_retried() -> None:
    """The pod is bound by someone else between the core's decision and the
    binding: the binding's compare-and-set refuses it, the shell drops the
    stale pass and does not bind the pod again."""
    api = ApiServer(MVCCStore())
    _admin(api, "POST", "/api/v1/nodes", node("n1", "2"))
    _admin(api, "POST", "/api/v1/nodes", node("n2", "2"))
    _admin(api, "POST", "/api/v1/namespaces/default/pods", pod("racy", nodeSelector={"x": "y"}))
    _admin(api, "PATCH", "/api/v1/nodes/n1", {"metadata": {"labels": {"x": "y"}}})
    shell = SchedulerShell(api)
    shell.sync()
    plan = shell.plan()
    assert plan is not None and plan.binds == (("default/racy", "n1"),)
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "racy"}}
    binding["target"] = {"kind": "Node", "name": "n2"}
    _admin(api, "POST", "/api/v1/namespaces/default/pods/racy/binding", binding)
    assert asyncio.run(shell.apply(plan)) is True  # stale: run another pass
    assert asyncio.run(shell.step()) is False  # nothing left to do
    got = _admin(api, "GET", "/api/v1/namespaces/default/pods/racy")
    assert got["spec"]["nodeName"] == "n2"
    events = _admin(api, "GET", "/api/v1/namespaces/default/events")["items"]
    assert [e for e in events if e["reason"] == "Scheduled"] == []
    shell.close()


class _Stream:
    """A watch stream whose polls hand out scripted batches of events."""

    def __init__(self, batches: list[list[dict[str, Any]]]) -> None:
        self.batches = batches
        self.done = False

    def poll(self) -> list[Mapping[str, Any]]:
        out: list[Mapping[str, Any]] = list(self.batches.pop(0)) if self.batches else []
        if any(e["type"] == "ERROR" for e in out):
            self.done = True
        return out

    def close(self) -> None:
        self.done = True


class _ScriptedApi:
    """Answers watches of pods with scripted streams, every other collection empty."""

    def __init__(self, pod_streams: list[list[list[dict[str, Any]]]]) -> None:
        self.pod_streams = pod_streams
        self.opened: list[str] = []

    def handle(self, req: ApiRequest) -> ApiResponse:
        self.opened.append(req.path)
        assert req.user == SCHEDULER_USER and req.param("watch") == "true"
        events = self.pod_streams.pop(0) if req.path == "/api/v1/pods" else []
        return ApiResponse(200, None, watch=_Stream(events))

    def now(self) -> str:
        return "2025-01-01T00:00:00Z"


def test_an_expired_watch_is_reopened_and_the_cache_replaced() -> None:
    def added(name: str) -> dict[str, Any]:
        obj = pod(name)
        obj["metadata"].update(namespace="default", uid=f"uid-{name}", resourceVersion="5")
        return {"type": "ADDED", "object": obj}

    expired = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}}
    api = _ScriptedApi([[[added("p1"), added("p2")], [expired]], [[added("p1")]]])
    shell = SchedulerShell(api)
    shell.sync()
    assert sorted(shell.pods) == ["default/p1", "default/p2"]
    shell.sync()  # the 410: listed again, p2 was deleted meanwhile
    assert sorted(shell.pods) == ["default/p1"]
    assert api.opened.count("/api/v1/pods") == 2
    shell.close()


def test_a_gated_pod_waits_for_its_gates_without_a_word_from_the_scheduler() -> None:
    api = ApiServer(MVCCStore())
    shell = SchedulerShell(api)
    _admin(api, "POST", "/api/v1/nodes", node("n1", "2"))
    _admin(
        api,
        "POST",
        "/api/v1/namespaces/default/pods",
        pod("gated", schedulingGates=[{"name": "example.com/wait"}]),
    )
    assert asyncio.run(shell.step()) is False
    got = _admin(api, "GET", "/api/v1/namespaces/default/pods/gated")
    assert "nodeName" not in got["spec"]
    assert not any(c["type"] == "PodScheduled" for c in got["status"].get("conditions") or ())
    assert _admin(api, "GET", "/api/v1/namespaces/default/events")["items"] == []
    _admin(
        api, "PATCH", "/api/v1/namespaces/default/pods/gated", {"spec": {"schedulingGates": None}}
    )
    assert asyncio.run(shell.step()) is False
    got = _admin(api, "GET", "/api/v1/namespaces/default/pods/gated")
    assert got["spec"]["nodeName"] == "n1"
    shell.close()


def test_the_scheduler_user_is_authorized_by_kubes_bootstrap_role() -> None:
    api = ApiServer(MVCCStore())

    def allowed(verb: str, resource: str, subresource: str = "", group: str = "") -> bool:
        return core_allows(api, SCHEDULER_USER, verb, resource, subresource, group)

    assert allowed("create", "pods", "binding")
    assert allowed("patch", "pods", "status") and allowed("update", "pods", "status")
    assert allowed("create", "events") and allowed("patch", "events")
    assert allowed("delete", "pods")
    for verb in ("get", "list", "watch"):
        assert allowed(verb, "pods") and allowed(verb, "nodes")
        assert allowed(verb, "namespaces") and allowed(verb, "services")
        assert allowed(verb, "replicasets", group="apps")
    assert not allowed("create", "pods") and not allowed("update", "pods")
    assert not allowed("update", "nodes") and not allowed("delete", "nodes")


# --------------------------------------------------------------------------- configuration


def test_a_scheduler_config_chooses_the_profiles(tmp_path: Path) -> None:
    conf = tmp_path / "sched.yaml"
    conf.write_text(
        "apiVersion: kubescheduler.config.k8s.io/v1\n"
        "kind: KubeSchedulerConfiguration\n"
        "profiles:\n"
        "- schedulerName: my-scheduler\n"
    )
    config = load_scheduler_config(conf)
    with _server(tmp_path / "data", config=config) as srv, _api_client(srv) as api:
        core = client.CoreV1Api(api)
        core.create_node(node("n1", "2"))
        core.create_namespaced_pod("default", pod("other"))  # default-scheduler: not ours
        core.create_namespaced_pod("default", pod("mine", schedulerName="my-scheduler"))
        assert wait_for("mine bound", lambda: node_of(core, "mine")) == "n1"
        assert len(events_for(core, "mine", "Scheduled")) == 1
        assert node_of(core, "other") is None
        assert scheduled_condition(core, "other") is None
        assert events_for(core, "other") == []


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("profiles: [\n", "not valid YAML"),
        ("kind: Pod\napiVersion: v1\n", "expected one KubeSchedulerConfiguration, found Pod"),
        (
            "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n"
            "profiles:\n- plugins:\n    score:\n      enabled:\n      - name: NoSuchPlugin\n",
            "NoSuchPlugin",
        ),
    ],
)
def test_a_bad_scheduler_config_is_a_usage_error_naming_the_file(
    tmp_path: Path, text: str, says: str
) -> None:
    conf = tmp_path / "bad-sched.yaml"
    conf.write_text(text)
    result = CliRunner().invoke(
        up_command, ["--data-dir", str(tmp_path / "d"), "--scheduler-config", str(conf)]
    )
    assert result.exit_code == 2, result.output
    assert str(conf) in result.output and says in result.output, result.output
    assert not (tmp_path / "d").exists()  # refused before anything started


def test_scheduler_config_without_the_scheduler_is_refused(tmp_path: Path) -> None:
    conf = tmp_path / "sched.yaml"
    conf.write_text(
        "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n"
    )
    args = ["--no-scheduler", "--data-dir", str(tmp_path / "d")]
    result = CliRunner().invoke(up_command, [*args, "--scheduler-config", str(conf)])
    assert result.exit_code == 2 and "--scheduler-config" in result.output, result.output


# --------------------------------------------------------------------------- kubeproof up


def _context(data_dir: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(data_dir / "pki" / "ca.crt"))
    ctx.load_cert_chain(data_dir / "pki" / "admin.crt", data_dir / "pki" / "admin.key")
    return ctx


def _call(url: str, data_dir: Path, method: str = "GET", body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, context=_context(data_dir), timeout=30) as r:
        return json.loads(r.read())


def _watch_until(url: str, data_dir: Path, done: Callable[[Any], bool]) -> list[Any]:
    """The events of a watch (whose timeoutSeconds bounds it) up to the first
    one ``done`` accepts, or all of them when none does."""
    events = []
    with urllib.request.urlopen(url, context=_context(data_dir), timeout=30) as r:
        for line in r:
            if line.strip():
                events.append(json.loads(line))
                if done(events[-1]):
                    break
    return events


@pytest.mark.parametrize("flags", [(), ("--no-scheduler",)])
def test_kubeproof_up_schedules_unless_told_not_to(tmp_path: Path, flags: tuple[str, ...]) -> None:
    data = tmp_path / "data"

    def bound(event: Any) -> bool:
        return bool(event["object"]["spec"].get("nodeName"))

    with kubeproof_up(data, *flags) as (url, _, lines):
        _call(f"{url}/api/v1/nodes", data, "POST", node("n1", "2"))
        created = _call(f"{url}/api/v1/namespaces/default/pods", data, "POST", pod("web"))
        rv = created["metadata"]["resourceVersion"]
        # The pod's changes, until it is bound or the watch's deadline passes
        # (5 s with the scheduler; 1 s to see that nothing happens without it).
        events = _watch_until(
            f"{url}/api/v1/namespaces/default/pods?watch=true&resourceVersion={rv}"
            f"&fieldSelector=metadata.name%3Dweb&timeoutSeconds={1 if flags else 5}",
            data,
            bound,
        )
        if flags:
            assert [e for e in events if bound(e)] == []
            got = _call(f"{url}/api/v1/namespaces/default/pods/web", data)
            assert "nodeName" not in got["spec"] and "conditions" not in got["status"]
        else:
            assert events and bound(events[-1]), events
            assert events[-1]["object"]["spec"]["nodeName"] == "n1"
    expected = "scheduler: off" if flags else "scheduler: running (profiles: default-scheduler)"
    assert expected in "".join(lines)
