"""The hollow kubelet of `kubeproof up` (`kubeproof.serve.kubelet`).

Its decisions are pure functions, tested directly first.  Then the shell
over a bare API core (who it writes as, and that RBAC is what lets it),
and the whole thing for real: a TLS server with the scheduler and the
kubelet, driven by kubectl 1.32, and `kubeproof up` with and without
``--no-kubelet``.  Every wait has a deadline (a short poll loop, or a watch
with timeoutSeconds), never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from kubeproof.api import ApiRequest, ApiServer, UserInfo
from kubeproof.mvcc import MVCCStore
from kubeproof.serve.app import ServeOptions, ServerThread
from kubeproof.serve.kubelet import (
    DEFAULT_POD_RANGE,
    KUBELET_READER,
    KubeletShell,
    decide_pod,
    host_ip,
    kubelet_extension,
    node_status_patch,
    node_user,
    pick_pod_ip,
    plan_pods,
    running_status,
    status_patch,
    terminated_status,
)
from kubeproof.serve.scheduler import WatchRefused, scheduler_extension
from tests.serve_helpers import (
    CORE_ADMIN,
    KUBECTL,
    Kubectl,
    RecordingApi,
    core_admin,
    core_allows,
)
from tests.test_serve_scheduler import _call, _watch_until, node, pod, wait_for
from tests.test_serve_up import kubeproof_up

pytestmark = pytest.mark.timeout(120)

T0 = "2025-01-01T00:00:00Z"
T1 = "2025-01-01T00:01:00Z"
T2 = "2025-01-01T00:02:00Z"


def node_obj(name: str = "n1", *, ip: str = "192.168.0.7", **spec: Any) -> dict[str, Any]:
    obj = node(name, "4")
    if ip:
        obj["status"]["addresses"] = [
            {"type": "Hostname", "address": name},
            {"type": "ExternalIP", "address": "203.0.113.9"},
            {"type": "InternalIP", "address": ip},
        ]
    obj["spec"].update(spec)
    return obj


def bound_pod(name: str = "web", node_name: str = "n1", **spec: Any) -> dict[str, Any]:
    obj = pod(name, nodeName=node_name, **spec)
    obj["metadata"].update({"namespace": "default", "uid": f"uid-{name}"})
    obj["status"] = {"phase": "Pending", "qosClass": "Burstable"}
    return obj


def with_status(obj: dict[str, Any], status: Mapping[str, Any], **meta: Any) -> dict[str, Any]:
    """``obj`` after a strategic merge of ``status`` (as the core stores it)."""
    out: dict[str, Any] = json.loads(json.dumps(obj))
    conds = {c["type"]: c for c in out["status"].get("conditions", [])}
    for k, v in status.items():
        if k == "conditions":
            for c in v:
                merged = {**conds.get(c["type"], {}), **c}
                conds[c["type"]] = {f: x for f, x in merged.items() if x is not None}
        else:
            out["status"][k] = v
    if conds:
        out["status"]["conditions"] = list(conds.values())
    out["metadata"].update(meta)
    return out


def cond(status: dict[str, Any], ctype: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in status["conditions"] if c["type"] == ctype)
    return found


# --------------------------------------------------------------------------- pure decisions


def test_a_bound_pod_is_reported_running_and_ready_as_kubes_kubelet_reports_it() -> None:
    p = bound_pod(
        containers=[{"name": "web", "image": "nginx:1.27"}, {"name": "log", "image": "fluentd"}],
        initContainers=[
            {"name": "setup", "image": "busybox"},
            {"name": "proxy", "image": "envoy", "restartPolicy": "Always"},
        ],
    )
    st = running_status(p, T0, "192.168.0.7", "10.244.0.2")
    assert st["phase"] == "Running" and st["startTime"] == T0
    assert (st["hostIP"], st["hostIPs"]) == ("192.168.0.7", [{"ip": "192.168.0.7"}])
    assert (st["podIP"], st["podIPs"]) == ("10.244.0.2", [{"ip": "10.244.0.2"}])
    assert [(c["type"], c["status"]) for c in st["conditions"]] == [
        ("PodReadyToStartContainers", "True"),
        ("Initialized", "True"),
        ("Ready", "True"),
        ("ContainersReady", "True"),
        ("PodScheduled", "True"),
    ]
    assert all(c["lastTransitionTime"] == T0 for c in st["conditions"])
    # Sorted by name, as the kubelet writes them.
    assert [c["name"] for c in st["containerStatuses"]] == ["log", "web"]
    web = st["containerStatuses"][1]
    assert web == {
        "name": "web",
        "state": {"running": {"startedAt": T0}},
        "lastState": {},
        "ready": True,
        "restartCount": 0,
        "image": "nginx:1.27",
        "imageID": "",
        "started": True,
    }
    setup, proxy = st["initContainerStatuses"]
    assert setup["state"] == {
        "terminated": {"exitCode": 0, "reason": "Completed", "startedAt": T0, "finishedAt": T0}
    }
    assert setup["ready"] is True and setup["started"] is False
    assert proxy["state"] == {"running": {"startedAt": T0}} and proxy["ready"] is True


def test_the_running_status_is_a_fixed_point_so_the_kubelet_settles() -> None:
    p = bound_pod(initContainers=[{"name": "setup", "image": "busybox"}])
    first = running_status(p, T0, "192.168.0.7", "10.244.0.2")
    patch = status_patch(p["status"], first)
    assert patch is not None
    started = with_status(p, patch)
    # Later, with another node address and another free IP: nothing to write
    # (timestamps kept, addresses never changed once reported).
    assert running_status(started, T1, "192.168.9.9", "10.244.0.9") == first
    assert status_patch(started["status"], running_status(started, T1, "x", "y")) is None
    node = node_obj()
    assert decide_pod(started, node, T1, "10.244.0.3") is None
    assert plan_pods([started], {"n1": node}, set(), T1) == []


def test_a_condition_moves_its_transition_time_only_when_its_status_changes() -> None:
    p = bound_pod(readinessGates=[{"conditionType": "example.com/lb"}])
    st = running_status(p, T0, "", "10.244.0.2")
    ready = cond(st, "Ready")
    assert ready == {
        "type": "Ready",
        "status": "False",
        "reason": "ReadinessGatesNotReady",
        "message": 'corresponding condition of pod readiness gate "example.com/lb" does not exist.',
        "lastTransitionTime": T0,
    }
    assert cond(st, "ContainersReady")["status"] == "True"
    assert "hostIP" not in st  # a node without addresses
    started = with_status(p, st)
    gate = {"type": "example.com/lb", "status": "False", "lastTransitionTime": T0}
    gated = with_status(started, {"conditions": [gate]})
    again = running_status(gated, T1, "", "")
    assert cond(again, "Ready")["message"] == (
        'the status of pod readiness gate "example.com/lb" is not "True", but False'
    )
    assert cond(again, "Ready")["lastTransitionTime"] == T0  # still False
    opened = with_status(gated, {"conditions": [{**gate, "status": "True"}]})
    final = running_status(opened, T2, "", "")
    assert cond(final, "Ready") == {"type": "Ready", "status": "True", "lastTransitionTime": T2}
    patch = status_patch(opened["status"], final)
    # Only Ready changes; the reason and message it no longer has are nulled.
    assert patch == {
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "lastTransitionTime": T2,
                "reason": None,
                "message": None,
            }
        ]
    }


def test_pod_ips_come_from_the_nodes_pod_cidr_or_the_default_range() -> None:
    assert DEFAULT_POD_RANGE == "10.244.0.0/16"
    n = node_obj()
    assert pick_pod_ip(n, set()) == "10.244.0.2"  # .0 network, .1 the bridge
    assert pick_pod_ip(n, {"10.244.0.2", "10.244.0.3"}) == "10.244.0.4"
    assert pick_pod_ip(node_obj(podCIDR="10.1.2.0/24"), set()) == "10.1.2.2"
    full = {f"10.1.2.{i}" for i in range(2, 255)}
    assert pick_pod_ip(node_obj(podCIDR="10.1.2.0/24"), full) is None
    assert pick_pod_ip(node_obj(podCIDR="not a cidr"), set()) == "10.244.0.2"
    assert pick_pod_ip(node_obj(podCIDR="fd00:10:244::/64"), set()) == "fd00:10:244::2"


def test_the_host_ip_is_the_nodes_internal_ip_else_its_external_ip() -> None:
    assert host_ip(node_obj()) == "192.168.0.7"
    external = node_obj()
    external["status"]["addresses"] = [{"type": "ExternalIP", "address": "203.0.113.9"}]
    assert host_ip(external) == "203.0.113.9"
    assert host_ip(node_obj(ip="")) == ""


def test_plan_hands_out_distinct_ips_in_order_and_skips_pods_without_a_node() -> None:
    pods = [bound_pod("a"), bound_pod("b"), bound_pod("elsewhere", "ghost"), bound_pod("c")]
    host = bound_pod("host", hostNetwork=True)
    actions = plan_pods([*pods, host], {"n1": node_obj()}, {"10.244.0.3"}, T0)
    assert [(a.name, a.node, a.uid, a.delete) for a in actions] == [
        ("a", "n1", "uid-a", False),
        ("b", "n1", "uid-b", False),
        ("c", "n1", "uid-c", False),
        ("host", "n1", "uid-host", False),
    ]
    ips = [a.status["podIP"] for a in actions if a.status is not None]
    assert ips == ["10.244.0.2", "10.244.0.4", "10.244.0.5", "192.168.0.7"]
    # A pod that needs an IP and gets none is not started.
    assert decide_pod(bound_pod("x"), node_obj(), T0, "") is None


def test_a_deleted_pod_is_reported_terminated_then_deleted_with_grace_0() -> None:
    n = node_obj()
    p = bound_pod()
    running = with_status(p, running_status(p, T0, "192.168.0.7", "10.244.0.2"))
    deleting = with_status(running, {}, deletionTimestamp=T2, deletionGracePeriodSeconds=30)
    a = decide_pod(deleting, n, T1)
    assert (
        a is not None and a.delete and (a.namespace, a.name, a.uid) == ("default", "web", "uid-web")
    )
    assert a.status is not None and a.status["phase"] == "Succeeded"
    (main,) = a.status["containerStatuses"]
    assert main["state"] == {
        "terminated": {"exitCode": 0, "reason": "Completed", "startedAt": T0, "finishedAt": T1}
    }
    assert main["ready"] is False and main["started"] is False
    by_type = {c["type"]: c for c in a.status["conditions"]}
    assert by_type["Ready"]["status"] == "False" and by_type["Ready"]["reason"] == "PodCompleted"
    assert by_type["ContainersReady"]["reason"] == "PodCompleted"
    assert by_type["PodReadyToStartContainers"]["status"] == "False"
    assert "PodScheduled" not in by_type  # unchanged
    assert terminated_status(deleting, T1)["phase"] == "Succeeded"
    # Held by a finalizer after the grace-0 delete: nothing more to do.
    held = with_status(deleting, a.status, deletionGracePeriodSeconds=0)
    assert decide_pod(held, n, T2) is None
    # Deleted with grace 0 by someone else while running: the status only.
    forced = with_status(running, {}, deletionTimestamp=T1, deletionGracePeriodSeconds=0)
    b = decide_pod(forced, n, T1)
    assert b is not None and not b.delete and b.status is not None
    # Never started (its node came late): deleted without a status.
    c = decide_pod(with_status(p, {}, deletionTimestamp=T1, deletionGracePeriodSeconds=30), n, T1)
    assert c is not None and c.delete and c.status is None
    # Finished pods are left alone.
    assert decide_pod(with_status(p, {"phase": "Failed"}), n, T1) is None


def test_a_node_without_ready_gets_the_kubelets_conditions_once() -> None:
    n = node_obj()
    patch = node_status_patch(n, T0)
    assert patch is not None
    assert [(c["type"], c["status"], c["reason"]) for c in patch["conditions"]] == [
        ("MemoryPressure", "False", "KubeletHasSufficientMemory"),
        ("DiskPressure", "False", "KubeletHasNoDiskPressure"),
        ("PIDPressure", "False", "KubeletHasSufficientPID"),
        ("Ready", "True", "KubeletReady"),
    ]
    assert patch["conditions"][-1]["message"] == "kubelet is posting ready status"
    n["status"]["conditions"] = [{"type": "MemoryPressure", "status": "True"}]
    partial = node_status_patch(n, T0)
    assert partial is not None
    assert [c["type"] for c in partial["conditions"]] == ["DiskPressure", "PIDPressure", "Ready"]
    n["status"]["conditions"].append({"type": "Ready", "status": "False"})
    assert node_status_patch(n, T0) is None  # yours: left alone


# --------------------------------------------------------------------------- the shell, over a bare core


def _pod(api: ApiServer, name: str) -> Any:
    resp = api.handle(ApiRequest("GET", f"/api/v1/namespaces/default/pods/{name}", user=CORE_ADMIN))
    return resp.body if resp.status == 200 else None


def test_the_shell_writes_as_each_pods_node_and_settles() -> None:
    api = ApiServer(MVCCStore())
    rec = RecordingApi(api)
    core_admin(api, "POST", "/api/v1/nodes", node_obj("n1"))
    core_admin(api, "POST", "/api/v1/nodes", node_obj("n2", ip="192.168.0.8"))
    core_admin(api, "POST", "/api/v1/namespaces/default/pods", pod("a", nodeName="n1"))
    core_admin(api, "POST", "/api/v1/namespaces/default/pods", pod("b", nodeName="n2"))
    core_admin(api, "POST", "/api/v1/namespaces/default/pods", pod("pending"))
    shell = KubeletShell(rec)
    asyncio.run(shell.step())
    assert shell.errors == 0
    writes = [c for c in rec.calls if c[0] != "GET"]
    assert sorted(writes) == [
        ("PATCH", "/api/v1/namespaces/default/pods/a/status", "system:node:n1"),
        ("PATCH", "/api/v1/namespaces/default/pods/b/status", "system:node:n2"),
        ("PATCH", "/api/v1/nodes/n1/status", "system:node:n1"),
        ("PATCH", "/api/v1/nodes/n2/status", "system:node:n2"),
    ]
    assert {c[2] for c in rec.calls if c[0] == "GET"} == {KUBELET_READER.name}
    a, b = _pod(api, "a"), _pod(api, "b")
    assert a["status"]["phase"] == "Running" and b["status"]["phase"] == "Running"
    assert (a["status"]["hostIP"], b["status"]["hostIP"]) == ("192.168.0.7", "192.168.0.8")
    assert a["status"]["podIP"] != b["status"]["podIP"]
    assert _pod(api, "pending")["status"]["phase"] == "Pending"
    # Its own writes come back through the watch and change nothing.
    before = len(rec.calls)
    asyncio.run(shell.step())
    asyncio.run(shell.step())
    assert rec.calls[before:] == []
    # A graceful delete is finished at once, as the pod's node.
    core_admin(api, "DELETE", "/api/v1/namespaces/default/pods/a")
    assert _pod(api, "a")["metadata"]["deletionGracePeriodSeconds"] == 30
    asyncio.run(shell.step())
    assert rec.calls[before:] == [
        ("PATCH", "/api/v1/namespaces/default/pods/a/status", "system:node:n1"),
        ("DELETE", "/api/v1/namespaces/default/pods/a", "system:node:n1"),
    ]
    assert _pod(api, "a") is None
    shell.close()


def test_the_kubelet_is_authorized_by_rbac_through_the_system_node_binding() -> None:
    """The core has no Node authorizer: the bootstrap ClusterRoleBinding of
    ``system:node`` to group ``system:nodes`` is what lets the kubelet write.
    Without it every write is refused and nothing starts."""
    api = ApiServer(MVCCStore())

    def allowed(user: UserInfo, verb: str, resource: str, subresource: str = "") -> bool:
        return core_allows(api, user, verb, resource, subresource)

    kubelet = node_user("n1")
    assert kubelet.groups[0] == "system:nodes"
    assert allowed(kubelet, "patch", "pods", "status") and allowed(kubelet, "delete", "pods")
    assert allowed(kubelet, "patch", "nodes", "status")
    for verb in ("get", "list", "watch"):
        assert allowed(KUBELET_READER, verb, "pods") and allowed(KUBELET_READER, verb, "nodes")
    assert not allowed(kubelet, "update", "pods") and not allowed(
        kubelet, "create", "pods", "binding"
    )
    assert not allowed(kubelet, "delete", "nodes")

    core_admin(api, "DELETE", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/system:node")
    core_admin(api, "POST", "/api/v1/nodes", node_obj("n1"))
    core_admin(api, "POST", "/api/v1/namespaces/default/pods", pod("a", nodeName="n1"))
    shell = KubeletShell(api)
    with pytest.raises(WatchRefused, match="cannot watch /api/v1/pods: 403"):
        asyncio.run(shell.step())
    shell.close()
    assert _pod(api, "a")["status"]["phase"] == "Pending"


# --------------------------------------------------------------------------- for real: TLS, kubectl

POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: {name}
{extra}spec:
  containers:
  - name: nginx
    image: nginx:1.27
    resources: {{requests: {{cpu: 100m, memory: 64Mi}}}}
"""

NODE = """\
apiVersion: v1
kind: Node
metadata:
  name: node-1
  labels: {kubernetes.io/hostname: node-1}
status:
  capacity: {cpu: "2", memory: 4Gi, pods: "110"}
  addresses:
  - {type: InternalIP, address: 192.168.49.2}
"""


@pytest.fixture
def kubectl(tmp_path: Path) -> Iterator[Kubectl]:
    if KUBECTL is None:
        pytest.fail("kubectl 1.32 must be installed (expected at /usr/bin/kubectl)")
    opts = ServeOptions(secure_port=0, data_dir=tmp_path / "data", watch_poll_interval=0.2)
    with ServerThread(opts, [scheduler_extension(), kubelet_extension()]) as srv:
        k = Kubectl(srv.kubeconfig, tmp_path / "kubectl-cache")
        k.run("apply", "-f", "-", input=NODE)
        yield k


def _row(k: Kubectl, name: str) -> list[str] | None:
    out = k.run("get", "pod", name, "--no-headers", check=False)
    return out.stdout.split() if out.returncode == 0 and out.stdout.strip() else None


def _running(k: Kubectl, name: str) -> list[str] | None:
    row = _row(k, name)
    return row if row is not None and row[1:3] == ["1/1", "Running"] else None


def test_a_pod_is_bound_started_and_deleted_at_once(kubectl: Kubectl) -> None:
    k = kubectl
    k.run("apply", "-f", "-", input=POD.format(name="web", extra=""))
    row = wait_for("web 1/1 Running", lambda: _running(k, "web"))
    assert row[0] == "web" and row[3] == "0"
    wide = k.run("get", "pod", "web", "-o", "wide", "--no-headers").stdout.split()
    assert wide[5:7] == ["10.244.0.2", "node-1"], wide
    got = k.json("get", "pod", "web")
    status = got["status"]
    assert status["phase"] == "Running" and status["hostIP"] == "192.168.49.2"
    conds = {c["type"]: c["status"] for c in status["conditions"]}
    assert conds == {
        "PodScheduled": "True",
        "PodReadyToStartContainers": "True",
        "Initialized": "True",
        "Ready": "True",
        "ContainersReady": "True",
    }
    (cs,) = status["containerStatuses"]
    assert cs["ready"] is True and cs["started"] is True and cs["image"] == "nginx:1.27"
    assert "startedAt" in cs["state"]["running"] and cs["restartCount"] == 0
    nodes = k.run("get", "nodes", "--no-headers").stdout.split()
    assert nodes[:2] == ["node-1", "Ready"], nodes
    described = k.run("describe", "pod", "web").stdout
    fields = dict(re.findall(r"^([A-Z][\w ]*?):\s+(.*)$", described, re.MULTILINE))
    assert fields["Status"] == "Running" and fields["Node"] == "node-1/192.168.49.2", described
    assert fields["IP"] == "10.244.0.2", described

    # A bound pod's deletion is graceful (30 s); the kubelet finishes it at once.
    start = time.monotonic()
    out = k.run("delete", "pod", "web")
    took = time.monotonic() - start
    assert out.stdout.strip() == 'pod "web" deleted'
    assert took < 5.0, f"kubectl delete pod took {took:.1f}s"
    gone = k.run("get", "pod", "web", check=False)
    assert gone.returncode == 1 and "NotFound" in gone.stderr


def test_a_pod_with_a_finalizer_stays_until_the_finalizer_goes(kubectl: Kubectl) -> None:
    k = kubectl
    extra = "  finalizers: [example.com/hold]\n"
    k.run("apply", "-f", "-", input=POD.format(name="held", extra=extra))
    wait_for("held Running", lambda: _running(k, "held"))
    k.run("delete", "pod", "held", "--wait=false")

    def finished() -> Any:
        p = k.json("get", "pod", "held")
        return p if p["metadata"].get("deletionGracePeriodSeconds") == 0 else None

    p = wait_for("the kubelet's grace-0 delete", finished)
    assert p["metadata"]["finalizers"] == ["example.com/hold"]
    assert p["status"]["phase"] == "Succeeded"
    (cs,) = p["status"]["containerStatuses"]
    assert cs["state"]["terminated"]["exitCode"] == 0 and cs["ready"] is False
    row = _row(k, "held")
    assert row is not None and row[2] == "Terminating", row  # still there
    k.run("patch", "pod", "held", "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    wait_for("held gone", lambda: _row(k, "held") is None)


# --------------------------------------------------------------------------- kubeproof up


@pytest.mark.parametrize("flags", [(), ("--no-kubelet",)])
def test_kubeproof_up_runs_the_kubelet_unless_told_not_to(
    tmp_path: Path, flags: tuple[str, ...]
) -> None:
    data = tmp_path / "data"

    def running(event: Any) -> bool:
        return bool(event["object"].get("status", {}).get("phase") == "Running")

    with kubeproof_up(data, *flags) as (url, _, lines):
        _call(f"{url}/api/v1/nodes", data, "POST", node("n1", "2"))
        created = _call(f"{url}/api/v1/namespaces/default/pods", data, "POST", pod("web"))
        rv = created["metadata"]["resourceVersion"]
        # The pod's changes until it runs, or (without the kubelet) for 2 s
        # after which it is bound and still Pending.
        events = _watch_until(
            f"{url}/api/v1/namespaces/default/pods?watch=true&resourceVersion={rv}"
            f"&fieldSelector=metadata.name%3Dweb&timeoutSeconds={2 if flags else 10}",
            data,
            running,
        )
        got = _call(f"{url}/api/v1/namespaces/default/pods/web", data)
        assert got["spec"]["nodeName"] == "n1"
        n1 = _call(f"{url}/api/v1/nodes/n1", data)
        if flags:
            assert [e for e in events if running(e)] == []
            assert got["status"]["phase"] == "Pending"
            assert "containerStatuses" not in got["status"]
            assert "conditions" not in n1["status"]
        else:
            assert events and running(events[-1]), events
            ready = [c for c in n1["status"]["conditions"] if c["type"] == "Ready"]
            assert ready and ready[0]["status"] == "True"
    text = "".join(lines)
    if flags:
        assert "kubelet: off (--no-kubelet)" in text
    else:
        assert "kubelet: running (hollow" in text
    # Printed before the kubeconfig line, which says the server is ready.
    assert text.index("kubelet:") < text.index("admin kubeconfig:")
