"""The ReplicaSet controller of `kubeproof up` (`kubeproof.serve.replicaset`).

Its decisions are pure functions, tested directly first.  Then the shell
over a bare API core (who it acts as, and that kube's bootstrap RBAC is what
lets it), and the whole thing for real: a TLS server with the scheduler, the
hollow kubelet and the controller, driven by kubectl 1.32, and `kubeproof
up` with and without ``--no-controllers``.  Every wait has a deadline (a
short poll loop, or a watch with timeoutSeconds), never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubeproof.api import ApiServer
from kubeproof.api.bootstrap import bootstrap_objects
from kubeproof.mvcc import MVCCStore
from kubeproof.serve.app import ServeOptions, ServerThread
from kubeproof.serve.kubelet import kubelet_extension
from kubeproof.serve.replicaset import (
    BURST_REPLICAS,
    CONTROLLER_USER,
    ReplicaSetShell,
    adopt_patch,
    calculate_status,
    claim_pods,
    deletion_order,
    plan_replicaset,
    pod_from_template,
    pods_to_delete,
    related_pods,
    release_patch,
    replicaset_extension,
    slow_start_batches,
    status_update,
)
from kubeproof.serve.scheduler import WatchRefused, scheduler_extension
from tests.serve_helpers import (
    KUBECTL,
    Kubectl,
    RecordingApi,
    core_admin,
    core_allows,
)
from tests.test_serve_scheduler import _call, _watch_until, node, wait_for
from tests.test_serve_up import kubeproof_up

pytestmark = pytest.mark.timeout(120)

NOW = "2025-01-01T01:00:00Z"
RS_UID = "rs-uid"


def rs(replicas: int = 3, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "uid": RS_UID,
            "generation": 2,
            **meta,
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web", "tier": "front"}, "annotations": {"a": "b"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]},
            },
        },
        "status": {"replicas": 0, "observedGeneration": 1},
    }


def mine(uid: str = RS_UID) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": "web",
            "uid": uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def pd(
    name: str,
    *,
    labels: dict[str, str] | None = None,
    owner: str | None = RS_UID,
    node_name: str = "n1",
    phase: str = "Running",
    ready: bool = True,
    ready_at: str = "2025-01-01T00:00:00Z",
    created: str = "2025-01-01T00:00:00Z",
    restarts: int = 0,
    **meta: Any,
) -> dict[str, Any]:
    m: dict[str, Any] = {
        "name": name,
        "namespace": "default",
        "uid": f"uid-{name}",
        "labels": {"app": "web", "tier": "front"} if labels is None else labels,
        "creationTimestamp": created,
        **meta,
    }
    if owner is not None:
        m["ownerReferences"] = mine(owner)
    status: dict[str, Any] = {"phase": phase}
    if ready:
        status["conditions"] = [{"type": "Ready", "status": "True", "lastTransitionTime": ready_at}]
    status["containerStatuses"] = [{"name": "nginx", "restartCount": restarts}]
    return {
        "metadata": m,
        "spec": {"nodeName": node_name} if node_name else {},
        "status": status,
    }


def names(pods: Any) -> list[str]:
    return [p["metadata"]["name"] for p in pods]


# --------------------------------------------------------------------------- pure decisions


def test_claim_keeps_its_pods_adopts_matching_orphans_and_releases_mismatches() -> None:
    pods = [
        pd("own"),
        pd("orphan", owner=None),
        pd("stranger", owner=None, labels={"app": "db"}),
        pd("others", owner="other-uid"),
        pd("relabelled", labels={"app": "api"}),
        pd("done", phase="Succeeded"),
        pd("going", deletionTimestamp=NOW),
        pd("orphan-going", owner=None, deletionTimestamp=NOW),
        {**pd("elsewhere", owner=None), "metadata": {**pd("x")["metadata"], "namespace": "ns2"}},
    ]
    c = claim_pods(rs(), pods)
    assert names(c.owned) == ["own", "orphan"]
    assert names(c.adopt) == ["orphan"]
    assert names(c.release) == ["relabelled"]
    # Being deleted: it adopts nothing and releases nothing.
    c = claim_pods(rs(deletionTimestamp=NOW), pods)
    assert names(c.owned) == ["own"] and c.adopt == () and c.release == ()


def test_adoption_and_release_are_kubes_strategic_merge_patches() -> None:
    p = pd("orphan", owner=None)
    assert adopt_patch(rs(), p) == {"metadata": {"ownerReferences": mine(), "uid": "uid-orphan"}}
    assert release_patch(rs(), p) == {
        "metadata": {"uid": "uid-orphan", "ownerReferences": [{"$patch": "delete", "uid": RS_UID}]}
    }


def test_a_new_pod_is_the_template_with_a_generated_name_and_a_controller_reference() -> None:
    got = pod_from_template(rs())
    assert got == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "web-",
            "labels": {"app": "web", "tier": "front"},
            "annotations": {"a": "b"},
            "ownerReferences": mine(),
        },
        "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]},
    }
    long = rs()
    long["metadata"]["name"] = "x" * 253
    assert pod_from_template(long)["metadata"]["generateName"] == "x" * 253


def test_plan_creates_the_shortfall_up_to_the_burst_and_deletes_the_surplus() -> None:
    assert plan_replicaset(rs(3), [pd("a", owner=None)]).create == 2
    assert plan_replicaset(rs(1000), []).create == BURST_REPLICAS
    newer = pd("c", created="2025-01-01T00:58:00Z")
    plan = plan_replicaset(rs(1), [pd("a"), pd("b", node_name=""), newer], now=NOW)
    assert plan.create == 0 and names(plan.delete) == ["b", "c"]
    assert plan_replicaset(rs(2), [pd("a"), pd("b")]).empty
    # Being deleted: no pods are created or deleted.
    assert plan_replicaset(rs(3, deletionTimestamp=NOW), []).empty
    assert slow_start_batches(10) == [1, 2, 4, 3]
    assert slow_start_batches(0) == []


def test_the_surplus_goes_in_kubes_order() -> None:
    """kube 1.32's ActivePodsWithRanks.Less, key by key."""

    def order(*pods: dict[str, Any], related: Any = ()) -> list[str]:
        return names(deletion_order(list(pods), related, NOW))

    # 1. unassigned before assigned; 2. Pending < Unknown < Running; 3. not ready first.
    assert order(pd("run"), pd("unassigned", node_name="", phase="Pending", ready=False)) == [
        "unassigned",
        "run",
    ]
    assert order(
        pd("run"), pd("unknown", phase="Unknown"), pd("pending", phase="Pending", ready=False)
    ) == ["pending", "unknown", "run"]
    assert order(pd("ready"), pd("unready", ready=False)) == ["unready", "ready"]
    # 4. lower pod-deletion-cost first (invalid values count as 0).
    cost = "controller.kubernetes.io/pod-deletion-cost"
    assert order(
        pd("high", annotations={cost: "10"}),
        pd("zero"),
        pd("low", annotations={cost: "-5"}),
        pd("bad", annotations={cost: "+3"}),
    ) == ["low", "zero", "bad", "high"]
    # 5. more related pods on the same node first.
    crowded = [pd("x1", node_name="n2"), pd("x2", node_name="n2")]
    assert order(pd("alone"), pd("doubled", node_name="n2"), related=crowded) == [
        "doubled",
        "alone",
    ]
    # 6. ready more recently first, by log2 buckets of the age (then uid).
    assert order(
        pd("old", ready_at="2025-01-01T00:00:00Z"), pd("new", ready_at="2025-01-01T00:59:00Z")
    ) == ["new", "old"]
    same_bucket = order(
        pd("b", ready_at="2025-01-01T00:00:00Z"), pd("a", ready_at="2025-01-01T00:00:01Z")
    )
    assert same_bucket == ["a", "b"]  # 60 min and 59:59 share a bucket: uid-a < uid-b
    # 7. more restarts first; 8. newer first.
    assert order(pd("calm"), pd("flappy", restarts=3)) == ["flappy", "calm"]
    assert order(
        pd("older", created="2025-01-01T00:00:00Z"), pd("newer", created="2025-01-01T00:58:00Z")
    ) == ["newer", "older"]
    # When every pod goes, none is sorted.
    assert names(pods_to_delete([pd("b"), pd("a")], (), 2, NOW)) == ["b", "a"]


def test_related_pods_are_those_of_the_replicasets_sharing_its_controller() -> None:
    owner: list[dict[str, Any]] = [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": "d",
            "uid": "d1",
            "controller": True,
        }
    ]
    a = rs(ownerReferences=owner)
    b = rs(ownerReferences=owner)
    b["metadata"].update(name="web-2", uid="rs2")
    b["spec"]["selector"] = {"matchLabels": {"app": "web2"}}
    pods = [pd("p1"), pd("p2", labels={"app": "web2"}), pd("p3", labels={"app": "db"})]
    assert names(related_pods(a, [a, b], pods)) == ["p1", "p2"]
    assert related_pods(rs(), [rs()], pods) == []  # no controller, no relatives


def test_status_counts_its_pods_and_is_written_only_when_it_changed() -> None:
    owned = [pd("a"), pd("b", ready=False), pd("c", labels={"app": "web"})]
    st = calculate_status(rs(), owned, NOW)
    assert (
        st["replicas"],
        st["fullyLabeledReplicas"],
        st["readyReplicas"],
        st["availableReplicas"],
    ) == (3, 2, 2, 2)
    body = status_update(rs(), st)
    assert body is not None and body["status"]["observedGeneration"] == 2
    assert body["metadata"] == rs()["metadata"]  # a whole ReplicaSet, for PUT
    assert status_update(body, calculate_status(body, owned, NOW)) is None  # steady
    failed = calculate_status(rs(5), owned, NOW, "pods is forbidden")
    (cond,) = failed["conditions"]
    assert (cond["type"], cond["status"], cond["reason"]) == (
        "ReplicaFailure",
        "True",
        "FailedCreate",
    )
    recovered = {**rs(5), "status": failed}
    assert "conditions" not in calculate_status(recovered, owned, NOW)


# --------------------------------------------------------------------------- the shell, over a bare core


RS_PATH = "/apis/apps/v1/namespaces/default/replicasets"
PODS_PATH = "/api/v1/namespaces/default/pods"


def _new_rs(replicas: int) -> dict[str, Any]:
    obj = rs(replicas)
    for k in ("uid", "generation"):
        del obj["metadata"][k]
    del obj["status"]
    return obj


def test_the_shell_acts_as_the_controllers_service_account_and_settles() -> None:
    api = ApiServer(MVCCStore())
    rec = RecordingApi(api)
    orphan = pd("orphan", owner=None, node_name="")
    del orphan["metadata"]["uid"], orphan["metadata"]["creationTimestamp"]
    orphan["spec"]["containers"] = [{"name": "nginx", "image": "nginx:1.27"}]
    del orphan["status"]
    core_admin(api, "POST", PODS_PATH, orphan)
    created = core_admin(api, "POST", RS_PATH, _new_rs(3))
    shell = ReplicaSetShell(rec)
    asyncio.run(shell.step())
    assert shell.errors == 0
    assert {c[2] for c in rec.calls} == {CONTROLLER_USER.name}
    events_path = "/api/v1/namespaces/default/events"
    assert [(m, p) for m, p, _ in rec.calls if m != "GET"] == [
        ("PATCH", f"{PODS_PATH}/orphan"),
        ("POST", PODS_PATH),
        ("POST", events_path),
        ("POST", PODS_PATH),
        ("POST", events_path),
        ("PUT", f"{RS_PATH}/web/status"),
    ]
    events = core_admin(api, "GET", events_path)["items"]
    assert {
        (e["reason"], e["involvedObject"]["kind"], e["source"]["component"]) for e in events
    } == {("SuccessfulCreate", "ReplicaSet", "replicaset-controller")}
    assert (
        sorted(e["message"][: len("Created pod: web-")] for e in events)
        == ["Created pod: web-"] * 2
    )
    pods = core_admin(api, "GET", PODS_PATH)["items"]
    assert len(pods) == 3
    for p in pods:
        (ref,) = p["metadata"]["ownerReferences"]
        assert ref["uid"] == created["metadata"]["uid"] and ref["controller"] is True
    # The status counted the pods it had (the orphan) before creating; the
    # next pass sees the new ones, and the one after writes nothing.
    asyncio.run(shell.step())
    got = core_admin(api, "GET", f"{RS_PATH}/web")
    assert got["status"]["replicas"] == 3 and got["status"]["observedGeneration"] == 1
    before = len(rec.calls)
    asyncio.run(shell.step())
    assert rec.calls[before:] == []
    # Scale down: the surplus goes.
    core_admin(api, "PATCH", f"{RS_PATH}/web", {"spec": {"replicas": 1}})
    asyncio.run(shell.step())
    assert len(core_admin(api, "GET", PODS_PATH)["items"]) == 1
    shell.close()


def test_the_controller_is_authorized_by_kubes_bootstrap_role_and_binding() -> None:
    objs = dict(
        ((p, o["metadata"]["name"]), o)
        for p, o in bootstrap_objects()
        if "replicaset-controller" in o["metadata"]["name"]
    )
    role = objs["clusterroles", "system:controller:replicaset-controller"]
    binding = objs["clusterrolebindings", "system:controller:replicaset-controller"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "replicaset-controller", "namespace": "kube-system"}
    ]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]

    api = ApiServer(MVCCStore())

    def allowed(verb: str, resource: str, subresource: str = "", group: str = "") -> bool:
        return core_allows(api, CONTROLLER_USER, verb, resource, subresource, group)

    for verb in ("get", "list", "watch", "update"):
        assert allowed(verb, "replicasets", group="apps")
    assert allowed("update", "replicasets", "status", group="apps")
    assert not allowed("patch", "replicasets", "status", group="apps")
    for verb in ("list", "watch", "create", "patch", "delete"):
        assert allowed(verb, "pods")
    assert not allowed("get", "pods") and not allowed("update", "pods")
    assert allowed("create", "events")

    core_admin(
        api,
        "DELETE",
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/system:controller:replicaset-controller",
    )
    shell = ReplicaSetShell(api)
    with pytest.raises(WatchRefused, match="cannot watch /api/v1/pods: 403"):
        asyncio.run(shell.step())
    shell.close()


# --------------------------------------------------------------------------- for real: TLS, kubectl

RS_YAML = """\
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: web
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        resources: {{requests: {{cpu: {cpu}, memory: 64Mi}}}}
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

ORPHAN = """\
apiVersion: v1
kind: Pod
metadata:
  name: stray
  labels: {app: web}
spec:
  containers:
  - name: nginx
    image: nginx:1.27
    resources: {requests: {cpu: 100m, memory: 64Mi}}
"""


@pytest.fixture
def kubectl(tmp_path: Path) -> Iterator[Kubectl]:
    if KUBECTL is None:
        pytest.fail("kubectl 1.32 must be installed (expected at /usr/bin/kubectl)")
    opts = ServeOptions(secure_port=0, data_dir=tmp_path / "data", watch_poll_interval=0.2)
    extensions = [scheduler_extension(), kubelet_extension(), replicaset_extension()]
    with ServerThread(opts, extensions) as srv:
        k = Kubectl(srv.kubeconfig, tmp_path / "kubectl-cache")
        k.run("apply", "-f", "-", input=NODE)
        yield k


def _pods(k: Kubectl) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = k.json("get", "pods", "-l", "app=web")["items"]
    return items


def _running(k: Kubectl, n: int) -> list[dict[str, Any]] | None:
    """The web pods when there are exactly ``n``, all bound, Running and not
    being deleted."""
    pods = _pods(k)
    ok = len(pods) == n and all(
        p["spec"].get("nodeName") == "node-1"
        and p["status"].get("phase") == "Running"
        and not p["metadata"].get("deletionTimestamp")
        for p in pods
    )
    return pods if ok else None


def _rs_row(k: Kubectl) -> list[str]:
    return k.run("get", "rs", "web", "--no-headers").stdout.split()


def test_a_replicaset_is_kept_at_its_replicas_and_its_pods_go_with_it(kubectl: Kubectl) -> None:
    k = kubectl
    k.run("apply", "-f", "-", input=RS_YAML.format(replicas=3, cpu="100m"))
    pods = wait_for("3 web pods Running", lambda: _running(k, 3))
    rs_uid = k.json("get", "rs", "web")["metadata"]["uid"]
    for p in pods:
        assert p["metadata"]["name"].startswith("web-")
        (ref,) = p["metadata"]["ownerReferences"]
        assert ref == {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": "web",
            "uid": rs_uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }

    def desired_current_ready(n: str) -> list[str] | None:
        row = _rs_row(k)
        return row if row[1:4] == [n] * 3 else None

    assert wait_for("DESIRED 3 CURRENT 3 READY 3", lambda: desired_current_ready("3"))[0] == "web"
    status = k.json("get", "rs", "web")["status"]
    assert status["availableReplicas"] == 3 and status["fullyLabeledReplicas"] == 3
    assert status["observedGeneration"] == 1

    # A deleted pod is replaced.
    victim = pods[0]["metadata"]["name"]
    k.run("delete", "pod", victim)
    replaced = wait_for("a replacement Running", lambda: _running(k, 3))
    assert victim not in names(replaced)

    # Scaled down: two go, one stays.
    k.run("scale", "rs", "web", "--replicas=1")
    (left,) = wait_for("1 web pod", lambda: _running(k, 1))
    assert left["metadata"]["name"] in names(replaced)
    wait_for("DESIRED 1 CURRENT 1 READY 1", lambda: desired_current_ready("1"))
    assert k.json("get", "rs", "web")["status"]["observedGeneration"] == 2

    # Deleted (kubectl's default: background propagation): its pods go too.
    out = k.run("delete", "rs", "web")
    assert out.stdout.strip() == 'replicaset.apps "web" deleted'
    wait_for("no web pods", lambda: _pods(k) == [] or None)


def test_the_unassigned_pending_pod_goes_first_and_an_orphan_is_adopted(
    kubectl: Kubectl,
) -> None:
    k = kubectl
    k.run("apply", "-f", "-", input=ORPHAN)
    stray_uid = k.json("get", "pod", "stray")["metadata"]["uid"]
    # The stray (100m) is adopted as one of the 3; of the two 1-CPU pods
    # created for the others, one fits on the 2-CPU node and one stays Pending.
    k.run("apply", "-f", "-", input=RS_YAML.format(replicas=3, cpu="1"))
    rs_uid = k.json("get", "rs", "web")["metadata"]["uid"]

    def settled() -> list[dict[str, Any]] | None:
        pods = _pods(k)
        bound = [p for p in pods if p["status"].get("phase") == "Running"]
        pending = [p for p in pods if not p["spec"].get("nodeName")]
        return pods if len(pods) == 3 and len(bound) == 2 and len(pending) == 1 else None

    pods = wait_for("2 Running and 1 Pending", settled)
    stray = next(p for p in pods if p["metadata"]["name"] == "stray")
    assert stray["metadata"]["uid"] == stray_uid  # adopted, not replaced
    (ref,) = stray["metadata"]["ownerReferences"]
    assert ref["uid"] == rs_uid and ref["controller"] is True
    pending = next(p["metadata"]["name"] for p in pods if not p["spec"].get("nodeName"))

    k.run("scale", "rs", "web", "--replicas=2")
    left = wait_for("2 web pods Running", lambda: _running(k, 2))
    assert pending not in names(left)
    assert sorted(names(left)) == sorted(
        p["metadata"]["name"] for p in pods if p["metadata"]["name"] != pending
    )


# --------------------------------------------------------------------------- kubeproof up


@pytest.mark.parametrize("flags", [(), ("--no-controllers",)])
def test_kubeproof_up_runs_the_controllers_unless_told_not_to(
    tmp_path: Path, flags: tuple[str, ...]
) -> None:
    data = tmp_path / "data"
    with kubeproof_up(data, *flags) as (url, _, lines):
        _call(f"{url}/api/v1/nodes", data, "POST", node("n1", "2"))
        body = json.loads(json.dumps(_new_rs(2)))
        body["spec"]["template"]["metadata"] = {"labels": {"app": "web"}}
        created = _call(f"{url}{RS_PATH}", data, "POST", body)
        assert created["status"].get("replicas", 0) == 0

        def two(event: Any) -> bool:
            return bool(event["object"].get("status", {}).get("readyReplicas") == 2)

        # The ReplicaSet's changes until 2 pods are ready, or (without the
        # controllers) for 2 s, after which it still has none.
        events = _watch_until(
            f"{url}{RS_PATH}?watch=true&fieldSelector=metadata.name%3Dweb"
            f"&timeoutSeconds={2 if flags else 15}",
            data,
            two,
        )
        pods = _call(f"{url}{PODS_PATH}", data)["items"]
        if flags:
            assert [e for e in events if two(e)] == [] and pods == []
        else:
            assert events and two(events[-1]), events
            assert len(pods) == 2
    text = "".join(lines)
    if flags:
        assert "controllers: off (--no-controllers)" in text
    else:
        assert "controllers: running (replicaset)" in text
    # Printed before the kubeconfig line, which says the server is ready.
    assert text.index("controllers:") < text.index("admin kubeconfig:")
