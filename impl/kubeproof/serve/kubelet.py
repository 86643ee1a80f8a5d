"""The hollow kubelet of ``kubeproof up``: a node agent that runs no containers.

Theory of operation
-------------------
Kubemark's idea: the kubelet's API side without a container runtime.  One
shell stands in for the kubelet of *every* Node object in the API (kube
runs one kubelet per node; kubemark one hollow kubelet per hollow node).  A
pod bound to a name that has no Node object has no kubelet and is left
alone, as in kube (there, the pod garbage collector eventually deletes it;
that controller is not here).

An I/O shell, as `kubeproof.serve.scheduler` is: what to write is decided
by the pure functions below (`plan_pods`, `decide_pod`, `running_status`,
`terminated_status`, `status_patch`, `pick_pod_ip`, `node_status_patch`);
the shell feeds them the API core's objects and writes what they decided
through the API core (`ApiServer.handle`, the path of an HTTP request:
authorization, admission, validation).

*Who.*  Every write is made as the kubelet of the pod's (or node's) node:
user ``system:node:NODE`` in group ``system:nodes``, the identity of a
kubelet's client certificate.  The watches are opened as
``system:hollow-kubelet`` in group ``system:nodes``: one reader for all
the nodes it stands in for.  Kube 1.32 authorizes kubelets with the Node
authorizer (``--authorization-mode=Node,RBAC``); its bootstrap
``system:node`` ClusterRoleBinding has had no subjects since 1.8.  The API
core has no Node authorizer, so its bootstrap binds the ``system:node``
ClusterRole (kube's ``NodeRules``, cut to the resources served here: pods
read and delete, ``pods/status`` update and patch, nodes read and write,
``nodes/status`` update and patch, events) to the group ``system:nodes``,
as kube did before the Node authorizer.  The per-node restriction that the
Node authorizer and the NodeRestriction admission plugin add (a kubelet
touches only its own Node and the pods bound to it) is not enforced by the
core; the shell keeps it itself.

*What it decides.*  For each pod bound to an existing Node:

=============================================  ===============================================
the pod                                         the kubelet writes
=============================================  ===============================================
not being deleted, not Succeeded or Failed      `running_status` through ``pods/status`` (a
                                                strategic merge patch carrying the pod's uid,
                                                as kube's status manager sends it) when the
                                                pod's status differs from it: phase Running,
                                                conditions, startTime, hostIP(s), podIP(s),
                                                container statuses
being deleted (``deletionTimestamp``), its      `terminated_status` through ``pods/status``:
containers running                              phase Succeeded, containers terminated
                                                (exit code 0, Completed), Ready False
                                                PodCompleted
being deleted, ``deletionGracePeriodSeconds``   ``DELETE`` with ``gracePeriodSeconds: 0`` and a
not 0                                           uid precondition (after the status above)
=============================================  ===============================================

*No containers.*  Nothing runs, so every container starts at once, is
ready at once (no probes run), never exits on its own and never restarts;
a pod's IP is made up (`pick_pod_ip`).  When a pod is deleted its
containers "stop" at once with exit code 0 (there is nothing to stop), so
the grace period is never waited out: the kubelet reports the terminal
status and deletes the pod with grace 0, as kube's kubelet does once it
has killed the containers.  That delete removes nothing else: a pod with
finalizers stays (with ``deletionGracePeriodSeconds`` 0, phase Succeeded)
until they are removed, as in kube.  A pod deleted before it was started
is deleted without a status.  Pods that cannot start (images, volumes,
admission by the kubelet) are out of scope: no image is pulled.

*Nodes.*  A Node without a ``Ready`` condition gets kube's four kubelet
conditions that it lacks (MemoryPressure, DiskPressure, PIDPressure False;
Ready True, reason KubeletReady, "kubelet is posting ready status")
through ``nodes/status``, once.  A Node that has a Ready condition (one you
wrote) is left as it is.  There are no heartbeats and no node Lease.

*Waiting.*  As the scheduler: it sleeps on the server's change signal,
reads pods and nodes through watches opened through the API core (a watch
that ends is reopened and its cache replaced), and looks again only at
the pods that changed since its last pass (and at the pods of a node that
changed).  Its own writes come back through the watch; deciding again on
them writes nothing, so the loop settles.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Any, Final

from attrs import frozen

from kubeproof.api import ApiRequest, ApiResponse, UserInfo

from .core_client import CoreApi, core_request
from .passes import run_passes
from .scheduler import WatchRefused, _key, _message, _meta, _section, _Watch

if TYPE_CHECKING:
    from .app import Extension, RunningServer

__all__ = [
    "DEFAULT_POD_RANGE",
    "KUBELET_READER",
    "KubeletShell",
    "PodAction",
    "decide_pod",
    "host_ip",
    "kubelet_extension",
    "node_status_patch",
    "node_user",
    "pick_pod_ip",
    "plan_pods",
    "running_status",
    "status_patch",
    "terminated_status",
]

log = logging.getLogger("kubeproof.serve.kubelet")

NODES_GROUP: Final = "system:nodes"

KUBELET_READER: Final = UserInfo("system:hollow-kubelet", (NODES_GROUP, "system:authenticated"))
"""Who the shell's watches are opened as: a reader in group ``system:nodes``."""

DEFAULT_POD_RANGE: Final = "10.244.0.0/16"
"""Where pod IPs come from on a node without ``spec.podCIDR``."""

TERMINAL_PHASES: Final = ("Succeeded", "Failed")

NODE_CONDITIONS: Final = (
    (
        "MemoryPressure",
        "False",
        "KubeletHasSufficientMemory",
        "kubelet has sufficient memory available",
    ),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
)
"""The conditions a kubelet reports on its Node, with kube's reasons and messages."""

STRATEGIC: Final = "application/strategic-merge-patch+json"

Obj = Mapping[str, Any]


def node_user(node: str) -> UserInfo:
    """The kubelet of ``node``, as its client certificate names it."""
    return UserInfo(f"system:node:{node}", (NODES_GROUP, "system:authenticated"))


_Api = CoreApi


class _ReaderWatch(_Watch):
    """The scheduler's watch, opened as `KUBELET_READER`."""

    def _open(self) -> None:
        req = ApiRequest("GET", self.path, {"watch": "true"}, user=KUBELET_READER)
        resp = self.api.handle(req)
        if resp.watch is None:
            message = (resp.body or {}).get("message", "")
            raise WatchRefused(f"cannot watch {self.path}: {resp.status} {message}")
        self.stream = resp.watch


# --------------------------------------------------------------------------- pure decisions


def _list(obj: Obj, name: str) -> list[Mapping[str, Any]]:
    items = obj.get(name)
    if not isinstance(items, list):
        return []
    return [i for i in items if isinstance(i, Mapping)]


def _by(items: Iterable[Mapping[str, Any]], key: str) -> dict[str, Mapping[str, Any]]:
    out: dict[str, Mapping[str, Any]] = {}
    for i in items:
        out.setdefault(str(i.get(key, "")), i)
    return out


def host_ip(node: Obj) -> str:
    """The node's address a pod reports as ``hostIP``: its first InternalIP,
    else its first ExternalIP (kube's ``GetNodeHostIPs`` order), else ""."""
    addresses = _list(_section(node, "status"), "addresses")
    for kind in ("InternalIP", "ExternalIP"):
        for a in addresses:
            if a.get("type") == kind and a.get("address"):
                return str(a["address"])
    return ""


def _pod_range(node: Obj) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    cidr = _section(node, "spec").get("podCIDR")
    if isinstance(cidr, str) and cidr:
        try:
            return ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            pass
    return ipaddress.ip_network(DEFAULT_POD_RANGE)


def pick_pod_ip(node: Obj, used: AbstractSet[str]) -> str | None:
    """A pod IP on ``node``: the lowest address of its ``spec.podCIDR`` (or
    `DEFAULT_POD_RANGE`) that no pod in ``used`` holds, skipping the network
    address and the first host (the node's bridge in kube's usual CNI
    setups); None when the range is full."""
    net = _pod_range(node)
    lo, hi = int(net.network_address), int(net.broadcast_address)
    if hi - lo >= 3:
        lo, hi = lo + 2, hi - 1
    for n in range(lo, hi + 1):
        ip = str(ipaddress.ip_address(n))
        if ip not in used:
            return ip
    return None


def _condition(
    current: Mapping[str, Mapping[str, Any]],
    ctype: str,
    status: str,
    now: str,
    reason: str = "",
    message: str = "",
) -> dict[str, Any]:
    """A pod condition; its lastTransitionTime moves only when its status does."""
    c: dict[str, Any] = {"type": ctype, "status": status}
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    old = current.get(ctype)
    kept = (
        old.get("lastTransitionTime") if old is not None and old.get("status") == status else None
    )
    c["lastTransitionTime"] = kept or now
    return c


def _running_container(
    c: Mapping[str, Any], old: Mapping[str, Any] | None, now: str
) -> dict[str, Any]:
    running = _section(_section(old, "state"), "running") if old is not None else {}
    return {
        "name": str(c.get("name", "")),
        "state": {"running": {"startedAt": running.get("startedAt") or now}},
        "lastState": {},
        "ready": True,
        "restartCount": 0,
        "image": str(c.get("image", "")),
        "imageID": "",
        "started": True,
    }


def _terminated_container(
    c: Mapping[str, Any], old: Mapping[str, Any] | None, now: str
) -> dict[str, Any]:
    """A container that exited 0: kept as it was if it already had, else stopped now."""
    state = _section(old, "state") if old is not None else {}
    done = _section(state, "terminated")
    if done and done.get("exitCode") == 0:
        started, finished = done.get("startedAt") or now, done.get("finishedAt") or now
    else:
        started, finished = _section(state, "running").get("startedAt") or now, now
    return {
        "name": str(c.get("name", "")),
        "state": {
            "terminated": {
                "exitCode": 0,
                "reason": "Completed",
                "startedAt": started,
                "finishedAt": finished,
            }
        },
        "lastState": {},
        "ready": False,
        "restartCount": int((old or {}).get("restartCount") or 0),
        "image": str(c.get("image", "")),
        "imageID": "",
        "started": False,
    }


def _sidecar(c: Mapping[str, Any]) -> bool:
    return c.get("restartPolicy") == "Always"


def running_status(pod: Obj, now: str, host: str, pod_ip: str) -> dict[str, Any]:
    """The status kube's kubelet (1.32) reports for ``pod`` once all its
    containers run and are ready: the fields it owns, with the timestamps
    of what did not change kept from the pod's current status.

    ``host`` and ``pod_ip`` are used only where the pod has no hostIP or
    podIP yet (an address is never changed once reported).  Regular init
    containers have completed (exit 0); sidecars (``restartPolicy:
    Always``) run.  Conditions: PodReadyToStartContainers, Initialized,
    Ready (False, ReadinessGatesNotReady, while a readiness gate's condition
    is not True, with kube's message), ContainersReady, PodScheduled.
    Container statuses are sorted by name, init container statuses are in
    spec order, as the kubelet writes them."""
    spec, status = _section(pod, "spec"), _section(pod, "status")
    current = _by(_list(status, "conditions"), "type")
    old_cs = _by(_list(status, "containerStatuses"), "name")
    old_ics = _by(_list(status, "initContainerStatuses"), "name")
    containers = _list(spec, "containers")
    inits = _list(spec, "initContainers")

    unready = []
    for gate in _list(spec, "readinessGates"):
        gtype = str(gate.get("conditionType", ""))
        cond = current.get(gtype)
        if cond is None:
            unready.append(
                f'corresponding condition of pod readiness gate "{gtype}" does not exist.'
            )
        elif cond.get("status") != "True":
            unready.append(
                f'the status of pod readiness gate "{gtype}" is not "True", but {cond.get("status")}'
            )
    if unready:
        ready = _condition(
            current, "Ready", "False", now, "ReadinessGatesNotReady", ", ".join(unready)
        )
    else:
        ready = _condition(current, "Ready", "True", now)

    out: dict[str, Any] = {
        "phase": "Running",
        "conditions": [
            _condition(current, "PodReadyToStartContainers", "True", now),
            _condition(current, "Initialized", "True", now),
            ready,
            _condition(current, "ContainersReady", "True", now),
            _condition(current, "PodScheduled", "True", now),
        ],
    }
    if status.get("hostIP"):
        out["hostIP"] = status["hostIP"]
        out["hostIPs"] = status.get("hostIPs") or [{"ip": status["hostIP"]}]
    elif host:
        out["hostIP"], out["hostIPs"] = host, [{"ip": host}]
    if status.get("podIP"):
        out["podIP"] = status["podIP"]
        out["podIPs"] = status.get("podIPs") or [{"ip": status["podIP"]}]
    elif pod_ip:
        out["podIP"], out["podIPs"] = pod_ip, [{"ip": pod_ip}]
    out["startTime"] = status.get("startTime") or now
    if inits:
        out["initContainerStatuses"] = [
            _running_container(c, old_ics.get(str(c.get("name"))), now)
            if _sidecar(c)
            else _terminated_container(c, old_ics.get(str(c.get("name"))), now)
            for c in inits
        ]
        # A completed init container is ready (kube's prober manager).
        for s, c in zip(out["initContainerStatuses"], inits, strict=True):
            if not _sidecar(c):
                s["ready"] = True
    out["containerStatuses"] = sorted(
        (_running_container(c, old_cs.get(str(c.get("name"))), now) for c in containers),
        key=lambda s: str(s["name"]),
    )
    return out


def terminated_status(pod: Obj, now: str) -> dict[str, Any]:
    """The status kube's kubelet reports for a deleted pod once its
    containers have stopped, every one with exit code 0 (a hollow container
    has nothing to stop): phase Succeeded, the containers (and sidecars)
    terminated Completed, Ready and ContainersReady False with reason
    PodCompleted, PodReadyToStartContainers False (the sandbox is gone)."""
    spec, status = _section(pod, "spec"), _section(pod, "status")
    current = _by(_list(status, "conditions"), "type")
    old_cs = _by(_list(status, "containerStatuses"), "name")
    old_ics = _by(_list(status, "initContainerStatuses"), "name")
    inits = _list(spec, "initContainers")
    out: dict[str, Any] = {
        "phase": "Succeeded",
        "conditions": [
            _condition(current, "PodReadyToStartContainers", "False", now),
            _condition(current, "Initialized", "True", now, "PodCompleted" if inits else ""),
            _condition(current, "Ready", "False", now, "PodCompleted"),
            _condition(current, "ContainersReady", "False", now, "PodCompleted"),
        ],
    }
    if inits:
        statuses = []
        for c in inits:
            s = _terminated_container(c, old_ics.get(str(c.get("name"))), now)
            if not _sidecar(c):
                s["ready"] = True
            statuses.append(s)
        out["initContainerStatuses"] = statuses
    out["containerStatuses"] = sorted(
        (
            _terminated_container(c, old_cs.get(str(c.get("name"))), now)
            for c in _list(spec, "containers")
        ),
        key=lambda s: str(s["name"]),
    )
    return out


def status_patch(current: Obj, desired: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``status`` part of a strategic merge patch taking ``current`` to
    ``desired``; None when there is nothing to change.  Conditions merge by
    type: only those that differ are sent, with null for the fields the new
    one drops (a reason that no longer applies)."""
    patch: dict[str, Any] = {}
    for k, v in desired.items():
        if k == "conditions":
            continue
        if current.get(k) != v:
            patch[k] = v
    have = _by(_list(current, "conditions"), "type")
    conds = []
    for c in desired.get("conditions") or ():
        old = have.get(str(c["type"]))
        if old is not None and {k: v for k, v in old.items() if k != "lastProbeTime"} == c:
            continue
        entry = dict(c)
        for k in old or {}:
            if k not in entry and k != "lastProbeTime":
                entry[k] = None
        conds.append(entry)
    if conds:
        patch["conditions"] = conds
    return patch or None


def _has_running(status: Obj) -> bool:
    statuses = _list(status, "containerStatuses") + _list(status, "initContainerStatuses")
    return any("running" in _section(s, "state") for s in statuses)


def _needs_ip(pod: Obj) -> bool:
    spec, status = _section(pod, "spec"), _section(pod, "status")
    return not spec.get("hostNetwork") and not status.get("podIP")


@frozen
class PodAction:
    """What the kubelet of ``node`` does to one pod."""

    namespace: str
    name: str
    uid: str
    node: str
    status: Mapping[str, Any] | None = None
    """The ``status`` of a strategic merge patch to ``pods/status``, or None."""
    delete: bool = False
    """Delete with grace 0 and a uid precondition (after the status)."""


def decide_pod(pod: Obj, node: Obj, now: str, pod_ip: str = "") -> PodAction | None:
    """What the kubelet of ``node`` does to ``pod`` (bound to it), or None
    (see the module docstring's table).  ``pod_ip`` is the address the pod
    gets if it has none (`pick_pod_ip`); a pod that needs one and is given
    "" is not started."""
    meta, spec, status = _meta(pod), _section(pod, "spec"), _section(pod, "status")
    action = PodAction(
        str(meta.get("namespace") or "default"),
        str(meta.get("name", "")),
        str(meta.get("uid", "")),
        str(spec.get("nodeName", "")),
    )
    terminal = status.get("phase") in TERMINAL_PHASES
    if meta.get("deletionTimestamp"):
        patch = None
        if not terminal and _has_running(status):
            patch = status_patch(status, terminated_status(pod, now))
        delete = meta.get("deletionGracePeriodSeconds") != 0
        if patch is None and not delete:
            return None
        return PodAction(
            action.namespace, action.name, action.uid, action.node, patch, delete=delete
        )
    if terminal:
        return None
    hostnet = bool(spec.get("hostNetwork"))
    host = host_ip(node)
    if _needs_ip(pod) and not pod_ip:
        return None
    patch = status_patch(status, running_status(pod, now, host, host if hostnet else pod_ip))
    if patch is None:
        return None
    return PodAction(action.namespace, action.name, action.uid, action.node, patch)


def plan_pods(
    pods: Iterable[Obj], nodes: Mapping[str, Obj], used_ips: AbstractSet[str], now: str
) -> list[PodAction]:
    """What the kubelets do to ``pods``, in the order given: each pod bound
    to one of ``nodes`` gets `decide_pod`; a pod to start without an IP gets
    the next free one (`pick_pod_ip`) given ``used_ips`` and those handed
    out before it."""
    used = set(used_ips)
    out = []
    for pod in pods:
        node = nodes.get(str(_section(pod, "spec").get("nodeName") or ""))
        if node is None:
            continue
        ip = ""
        meta, status = _meta(pod), _section(pod, "status")
        starting = not meta.get("deletionTimestamp") and status.get("phase") not in TERMINAL_PHASES
        if starting and _needs_ip(pod):
            picked = pick_pod_ip(node, used)
            if picked is None:
                log.warning("no pod IP left on node %s for %s", _key(node), _key(pod))
                continue
            ip = picked
        action = decide_pod(pod, node, now, ip)
        if action is not None:
            if ip and action.status is not None:
                used.add(ip)
            out.append(action)
    return out


def node_status_patch(node: Obj, now: str) -> dict[str, Any] | None:
    """The ``status`` of a strategic merge patch marking a Node without a
    Ready condition ready: the kubelet's conditions it lacks; None if it has
    a Ready condition."""
    have = _by(_list(_section(node, "status"), "conditions"), "type")
    if "Ready" in have:
        return None
    conds = [
        {
            "type": ctype,
            "status": status,
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
            "reason": reason,
            "message": message,
        }
        for ctype, status, reason, message in NODE_CONDITIONS
        if ctype not in have
    ]
    return {"conditions": conds}


# --------------------------------------------------------------------------- the shell


def _pod_ips(pod: Obj) -> list[str]:
    status = _section(pod, "status")
    if status.get("phase") in TERMINAL_PHASES or _section(pod, "spec").get("hostNetwork"):
        return []
    ips = [str(p.get("ip")) for p in _list(status, "podIPs") if p.get("ip")]
    if status.get("podIP") and status["podIP"] not in ips:
        ips.append(str(status["podIP"]))
    return ips


class KubeletShell:
    """The shell's state and its steps: `sync`, `plan`, `apply`; `run` loops them."""

    def __init__(self, api: _Api, *, notify: Callable[[], None] = lambda: None) -> None:
        self.api = api
        self.notify = notify
        self.watches = {
            "pods": _ReaderWatch(api, "/api/v1/pods"),
            "nodes": _ReaderWatch(api, "/api/v1/nodes"),
        }
        self.pods: dict[str, Obj] = {}
        self.nodes: dict[str, Obj] = {}
        self.ip_holders: dict[str, set[str]] = {}
        """Pod IP -> the keys of the (non-terminal) pods that hold it."""
        self.dirty_pods: set[str] = set()
        self.dirty_nodes: set[str] = set()
        self.writes = 0
        self.errors = 0

    # -- sync ------------------------------------------------------------------

    def sync(self) -> None:
        """Drains both watches into the cache (raises WatchRefused)."""
        for name, watch in self.watches.items():
            reset, events = watch.poll()
            on = self._on_pod if name == "pods" else self._on_node
            if reset:
                seen = {_key(e["object"]) for e in events}
                table = self.pods if name == "pods" else self.nodes
                for key in [k for k in table if k not in seen]:
                    on(key, None)
            for e in events:
                obj = e["object"]
                on(_key(obj), obj if e["type"] != "DELETED" else None)

    def _hold(self, key: str, obj: Obj | None, held: bool) -> None:
        for ip in _pod_ips(obj) if obj is not None else ():
            keys = self.ip_holders.setdefault(ip, set())
            if held:
                keys.add(key)
            else:
                keys.discard(key)
                if not keys:
                    del self.ip_holders[ip]

    def _on_pod(self, key: str, obj: Obj | None) -> None:
        self._hold(key, self.pods.get(key), False)
        if obj is None:
            self.pods.pop(key, None)
            self.dirty_pods.discard(key)
            return
        self.pods[key] = obj
        self._hold(key, obj, True)
        if _section(obj, "spec").get("nodeName"):
            self.dirty_pods.add(key)

    def _on_node(self, name: str, obj: Obj | None) -> None:
        if obj is None:
            self.nodes.pop(name, None)
            self.dirty_nodes.discard(name)
            return
        self.nodes[name] = obj
        self.dirty_nodes.add(name)
        # A new node's pods have a kubelet now; a changed one may have an address.
        for key, pod in self.pods.items():
            if _section(pod, "spec").get("nodeName") == name:
                self.dirty_pods.add(key)

    # -- plan ------------------------------------------------------------------

    def plan(self) -> tuple[list[tuple[str, dict[str, Any]]], list[PodAction]]:
        """(node status patches, pod actions) for what changed since the last
        plan; forgets what it looked at."""
        now = self.api.now()
        node_patches = []
        for name in sorted(self.dirty_nodes):
            node = self.nodes.get(name)
            patch = node_status_patch(node, now) if node is not None else None
            if patch is not None:
                node_patches.append((name, patch))
        self.dirty_nodes.clear()
        pods = sorted(
            (self.pods[k] for k in self.dirty_pods if k in self.pods),
            key=lambda p: (str(_meta(p).get("creationTimestamp") or ""), _key(p)),
        )
        self.dirty_pods.clear()
        return node_patches, plan_pods(pods, self.nodes, self.ip_holders.keys(), now)

    # -- apply -----------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        user: UserInfo,
        body: Mapping[str, Any],
        content_type: str | None = None,
    ) -> ApiResponse:
        resp = core_request(self.api, method, path, body, content_type, user)
        if resp.status < 400:
            self.writes += 1
            self.notify()
        return resp

    def _failed(self, what: str, resp: ApiResponse, key: str) -> None:
        if resp.status in (404, 409, 422):
            # Gone, or another pod by now (a uid precondition): the watch brings it.
            log.info("%s: %s", what, _message(resp))
            return
        self.errors += 1
        log.warning("%s: %s", what, _message(resp))
        if key in self.pods:
            self.dirty_pods.add(key)  # try again on the next change

    async def apply(
        self, node_patches: Sequence[tuple[str, Mapping[str, Any]]], actions: Sequence[PodAction]
    ) -> None:
        for name, patch in node_patches:
            resp = self._request(
                "PATCH",
                f"/api/v1/nodes/{name}/status",
                node_user(name),
                {"status": patch},
                STRATEGIC,
            )
            if resp.status >= 400:
                self.errors += 1
                log.warning("cannot mark node %s ready: %s", name, _message(resp))
                self.dirty_nodes.add(name)
            await asyncio.sleep(0)
        for a in actions:
            key, user = f"{a.namespace}/{a.name}", node_user(a.node)
            path = f"/api/v1/namespaces/{a.namespace}/pods/{a.name}"
            if a.status is not None:
                body = {"metadata": {"uid": a.uid}, "status": a.status}
                resp = self._request("PATCH", f"{path}/status", user, body, STRATEGIC)
                if resp.status >= 400:
                    self._failed(f"cannot update the status of {key}", resp, key)
                    continue
            if a.delete:
                opts = {
                    "apiVersion": "v1",
                    "kind": "DeleteOptions",
                    "gracePeriodSeconds": 0,
                    "preconditions": {"uid": a.uid},
                }
                resp = self._request("DELETE", path, user, opts)
                if resp.status >= 400:
                    self._failed(f"cannot delete {key}", resp, key)
            await asyncio.sleep(0)

    # -- the loop --------------------------------------------------------------

    async def step(self) -> None:
        """One pass: the watches, the decisions, the writes."""
        self.sync()
        node_patches, actions = self.plan()
        if node_patches or actions:
            await self.apply(node_patches, actions)

    async def run(self, changed: Callable[[], asyncio.Event]) -> None:
        """Passes until cancelled; between them, waits for ``changed()`` to be set."""
        await run_passes(self, "kubelet", changed, log)

    def recover(self) -> None:
        # A failed pass was a bug: look again at every node and pod on the next change.
        self.dirty_pods.update(self.pods)
        self.dirty_nodes.update(self.nodes)

    def close(self) -> None:
        for w in self.watches.values():
            w.close()


def kubelet_extension() -> Extension:
    """The `kubeproof.serve.app.Extension` that runs the hollow kubelet in a server."""

    async def run_kubelet(server: RunningServer) -> None:
        shell = KubeletShell(server.api, notify=server.notify_changed)
        signal = server.http.signal
        await shell.run(lambda: signal.current)

    return run_kubelet
