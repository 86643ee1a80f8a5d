"""Table responses (``Accept: application/json;as=Table;v=v1;g=meta.k8s.io``).

Theory of operation
-------------------
`to_table(plural, objects, now, ...)` is a pure function from objects to a
``meta.k8s.io/v1 Table``: the column definitions kubectl prints for the
resource (kube's printers: pods NAME READY STATUS RESTARTS AGE and, with
priority 1 for ``-o wide``, IP NODE NOMINATED NODE READINESS GATES;
namespaces, nodes, services, replicasets, configmaps, events, bindings;
NAME / CREATED AT for the rest) and one row per object, whose ``object`` is
the object's metadata as a ``PartialObjectMetadata`` (kube's default
``includeObject=Metadata``), the whole object (``Object``) or nothing
(``None``).  Ages are computed against ``now``, the injected clock, so the
output is deterministic.

`accepts_table(accept)` reads an Accept header the way kube's negotiation
does for this purpose: the first media range that is a Table of
meta.k8s.io v1 or v1beta1 wins; JSON, YAML, protobuf and ``*/*`` mean a
plain object.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .meta import EPOCH, human_duration, parse_time, seconds_between

Obj = Mapping[str, Any]
NONE = "<none>"

_DESC = {
    "Name": "Name must be unique within a namespace. Is required when creating resources, "
    "although some resources may allow a client to request the generation of an appropriate "
    "name automatically. Name is primarily intended for creation idempotence and configuration "
    "definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
    "Age": "CreationTimestamp is a timestamp representing the server time when this object was "
    "created. It is not guaranteed to be set in happens-before order across separate "
    "operations. Clients may not set this value. It is represented in RFC3339 form and is in "
    "UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
}


def _col(
    name: str, typ: str = "string", priority: int = 0, fmt: str = "", desc: str = ""
) -> dict[str, Any]:
    return {
        "name": name,
        "type": typ,
        "format": fmt,
        "description": desc or _DESC.get(name, name),
        "priority": priority,
    }


def _name_col() -> dict[str, Any]:
    return _col("Name", fmt="name")


def _age(obj: Obj, now: str) -> str:
    ts = (obj.get("metadata") or {}).get("creationTimestamp")
    if not isinstance(ts, str):
        return "<unknown>"
    try:
        return human_duration(seconds_between(ts, now))
    except ValueError:
        return "<unknown>"


def _meta(obj: Obj) -> Mapping[str, Any]:
    m = obj.get("metadata")
    return m if isinstance(m, Mapping) else {}


def _name(obj: Obj) -> str:
    return str(_meta(obj).get("name", ""))


# ---------------------------------------------------------------------------
# Pods


def pod_status_reason(pod: Obj) -> str:
    """kubectl's printPod STATUS column."""
    status = pod.get("status") or {}
    spec = pod.get("spec") or {}
    reason = str(status.get("phase", "") or "")
    if status.get("reason"):
        reason = str(status["reason"])
    if spec.get("schedulingGates") and reason == "Pending":
        reason = "SchedulingGated"
    init_statuses = status.get("initContainerStatuses") or []
    initializing = False
    for i, c in enumerate(init_statuses):
        state = c.get("state") or {}
        term = state.get("terminated")
        waiting = state.get("waiting")
        if term and term.get("exitCode", 0) == 0:
            continue
        if term:
            reason = "Init:" + (term.get("reason") or f"ExitCode:{term.get('exitCode', 0)}")
        elif waiting and waiting.get("reason") and waiting.get("reason") != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{i}/{len(spec.get('initContainers') or [])}"
        initializing = True
        break
    if not initializing:
        has_running = False
        for c in reversed(status.get("containerStatuses") or []):
            state = c.get("state") or {}
            waiting, term = state.get("waiting"), state.get("terminated")
            if waiting and waiting.get("reason"):
                reason = str(waiting["reason"])
            elif term and term.get("reason"):
                reason = str(term["reason"])
            elif term:
                reason = (
                    f"Signal:{term['signal']}"
                    if term.get("signal")
                    else f"ExitCode:{term.get('exitCode', 0)}"
                )
            elif c.get("ready") and state.get("running") is not None:
                has_running = True
        if reason == "Completed" and has_running:
            reason = "Running"
    if _meta(pod).get("deletionTimestamp"):
        reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"
    return reason


def _pod_row(pod: Obj, now: str) -> list[Any]:
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    total = len(spec.get("containers") or [])
    statuses = status.get("containerStatuses") or []
    ready = sum(1 for c in statuses if c.get("ready"))
    restarts = sum(int(c.get("restartCount", 0) or 0) for c in statuses)
    gates = spec.get("readinessGates") or []
    if gates:
        conds = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
        ok = sum(1 for g in gates if conds.get(g.get("conditionType")) == "True")
        gate_cell = f"{ok}/{len(gates)}"
    else:
        gate_cell = NONE
    return [
        _name(pod),
        f"{ready}/{total}",
        pod_status_reason(pod),
        str(restarts),
        _age(pod, now),
        status.get("podIP") or NONE,
        spec.get("nodeName") or NONE,
        status.get("nominatedNodeName") or NONE,
        gate_cell,
    ]


POD_COLUMNS = [
    _name_col(),
    _col("Ready", desc="The aggregate readiness state of this pod for accepting traffic."),
    _col("Status", desc="The aggregate status of the containers in this pod."),
    _col(
        "Restarts",
        desc="The number of times the containers in this pod have been restarted and when the "
        "last container in this pod has restarted.",
    ),
    _col("Age"),
    _col(
        "IP",
        priority=1,
        desc="IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
    ),
    _col(
        "Node", priority=1, desc="NodeName is a request to schedule this pod onto a specific node."
    ),
    _col(
        "Nominated Node",
        priority=1,
        desc="nominatedNodeName is set only when this pod preempts other pods on the node, but it "
        "cannot be scheduled right away as preemption victims receive their graceful termination "
        "periods.",
    ),
    _col(
        "Readiness Gates",
        priority=1,
        desc="If specified, all readiness gates will be evaluated for pod readiness.",
    ),
]


# ---------------------------------------------------------------------------
# Other kinds


def _ns_row(ns: Obj, now: str) -> list[Any]:
    return [_name(ns), (ns.get("status") or {}).get("phase", ""), _age(ns, now)]


def _node_status(node: Obj) -> str:
    conds = (node.get("status") or {}).get("conditions") or []
    ready = next((c for c in conds if c.get("type") == "Ready"), None)
    if ready is None:
        s = "Unknown"
    elif ready.get("status") == "True":
        s = "Ready"
    elif ready.get("status") == "False":
        s = "NotReady"
    else:
        s = "Unknown"
    if (node.get("spec") or {}).get("unschedulable"):
        s += ",SchedulingDisabled"
    return s


def _node_row(node: Obj, now: str) -> list[Any]:
    labels = _meta(node).get("labels") or {}
    roles = sorted(
        k.split("/", 1)[1]
        for k in labels
        if k.startswith("node-role.kubernetes.io/") and k.split("/", 1)[1]
    )
    if labels.get("kubernetes.io/role"):
        roles.append(labels["kubernetes.io/role"])
    status = node.get("status") or {}
    info = status.get("nodeInfo") or {}
    addrs = status.get("addresses") or []

    def addr(kind: str) -> str:
        return next((a.get("address", "") for a in addrs if a.get("type") == kind), NONE)

    return [
        _name(node),
        _node_status(node),
        ",".join(sorted(set(roles))) or NONE,
        _age(node, now),
        info.get("kubeletVersion", ""),
        addr("InternalIP"),
        addr("ExternalIP"),
        info.get("osImage") or "<unknown>",
        info.get("kernelVersion") or "<unknown>",
        info.get("containerRuntimeVersion") or "<unknown>",
    ]


def _svc_row(svc: Obj, now: str) -> list[Any]:
    spec = svc.get("spec") or {}
    ports = []
    for p in spec.get("ports") or []:
        s = str(p.get("port", ""))
        if p.get("nodePort"):
            s += f":{p['nodePort']}"
        ports.append(f"{s}/{p.get('protocol', 'TCP')}")
    ext = list(spec.get("externalIPs") or [])
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    ext += [i.get("ip") or i.get("hostname") for i in ingress if i.get("ip") or i.get("hostname")]
    typ = spec.get("type", "ClusterIP")
    if not ext:
        external = (
            spec.get("externalName", NONE)
            if typ == "ExternalName"
            else ("<pending>" if typ == "LoadBalancer" else NONE)
        )
    else:
        external = ",".join(ext)
    sel = spec.get("selector") or {}
    return [
        _name(svc),
        typ,
        spec.get("clusterIP") or NONE,
        external,
        ",".join(ports) or NONE,
        _age(svc, now),
        ",".join(f"{k}={v}" for k, v in sorted(sel.items())) or NONE,
    ]


def _selector_string(sel: Mapping[str, Any] | None) -> str:
    if not sel:
        return NONE
    parts = [f"{k}={v}" for k, v in sorted((sel.get("matchLabels") or {}).items())]
    for e in sel.get("matchExpressions") or []:
        op = e.get("operator")
        vals = ",".join(e.get("values") or [])
        if op == "In":
            parts.append(f"{e.get('key')} in ({vals})")
        elif op == "NotIn":
            parts.append(f"{e.get('key')} notin ({vals})")
        elif op == "Exists":
            parts.append(str(e.get("key")))
        elif op == "DoesNotExist":
            parts.append(f"!{e.get('key')}")
    return ",".join(parts) or NONE


def _rs_row(rs: Obj, now: str) -> list[Any]:
    spec = rs.get("spec") or {}
    status = rs.get("status") or {}
    cs = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    return [
        _name(rs),
        int(spec.get("replicas", 1)),
        int(status.get("replicas", 0)),
        int(status.get("readyReplicas", 0)),
        _age(rs, now),
        ",".join(str(c.get("name", "")) for c in cs),
        ",".join(str(c.get("image", "")) for c in cs),
        _selector_string(spec.get("selector")),
    ]


def _cm_row(cm: Obj, now: str) -> list[Any]:
    n = len(cm.get("data") or {}) + len(cm.get("binaryData") or {})
    return [_name(cm), n, _age(cm, now)]


def _event_row(ev: Obj, now: str) -> list[Any]:
    inv = ev.get("involvedObject") or {}
    src = ev.get("source") or {}
    last = ev.get("lastTimestamp") or ev.get("eventTime") or (_meta(ev).get("creationTimestamp"))
    first = ev.get("firstTimestamp") or ev.get("eventTime") or last

    def since(ts: Any) -> str:
        if not isinstance(ts, str):
            return "<unknown>"
        try:
            return human_duration(seconds_between(ts, now))
        except ValueError:
            return "<unknown>"

    source = src.get("component") or ev.get("reportingComponent") or ""
    if src.get("host"):
        source += ", " + src["host"]
    return [
        since(last),
        ev.get("type", ""),
        ev.get("reason", ""),
        f"{str(inv.get('kind', '')).lower()}/{inv.get('name', '')}",
        inv.get("fieldPath", ""),
        source,
        str(ev.get("message", "")).strip(),
        since(first),
        int(ev.get("count", 1) or 1),
        _name(ev),
    ]


def _binding_row(b: Obj, now: str) -> list[Any]:
    ref = b.get("roleRef") or {}
    subjects = b.get("subjects") or []

    def names(kind: str) -> str:
        out = []
        for s in subjects:
            if s.get("kind") == kind:
                out.append(
                    f"{s.get('namespace', '')}/{s.get('name', '')}"
                    if kind == "ServiceAccount"
                    else s.get("name", "")
                )
        return ", ".join(out)

    return [
        _name(b),
        f"{ref.get('kind', '')}/{ref.get('name', '')}",
        _age(b, now),
        names("User"),
        names("Group"),
        names("ServiceAccount"),
    ]


def _created_at_row(obj: Obj, now: str) -> list[Any]:
    ts = _meta(obj).get("creationTimestamp")
    try:
        created = parse_time(ts).strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(ts, str) else EPOCH
    except ValueError:
        created = EPOCH
    return [_name(obj), created]


Row = Callable[[Obj, str], list[Any]]

_PRINTERS: dict[str, tuple[list[dict[str, Any]], Row]] = {
    "pods": (POD_COLUMNS, _pod_row),
    "namespaces": (
        [
            _name_col(),
            _col("Status", desc="The status of the namespace"),
            _col("Age"),
        ],
        _ns_row,
    ),
    "nodes": (
        [
            _name_col(),
            _col("Status", desc="The status of the node"),
            _col("Roles", desc="The roles of the node"),
            _col("Age"),
            _col("Version", desc="Kubelet Version reported by the node."),
            _col(
                "Internal-IP",
                priority=1,
                desc="List of addresses reachable to the node. Queried from cloud provider, if available.",
            ),
            _col(
                "External-IP",
                priority=1,
                desc="List of addresses reachable to the node. Queried from cloud provider, if available.",
            ),
            _col(
                "OS-Image",
                priority=1,
                desc="OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
            ),
            _col(
                "Kernel-Version",
                priority=1,
                desc="Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
            ),
            _col(
                "Container-Runtime",
                priority=1,
                desc="ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
            ),
        ],
        _node_row,
    ),
    "services": (
        [
            _name_col(),
            _col("Type", desc="type determines how the Service is exposed."),
            _col(
                "Cluster-IP",
                desc="clusterIP is the IP address of the service and is usually assigned randomly.",
            ),
            _col(
                "External-IP",
                desc="externalIPs is a list of IP addresses for which nodes in the cluster will also "
                "accept traffic for this service.",
            ),
            _col("Port(s)", desc="The list of ports that are exposed by this service."),
            _col("Age"),
            _col(
                "Selector",
                priority=1,
                desc="Route service traffic to pods with label keys and values matching this selector.",
            ),
        ],
        _svc_row,
    ),
    "replicasets": (
        [
            _name_col(),
            _col("Desired", "integer", desc="Replicas is the number of desired pods."),
            _col(
                "Current",
                "integer",
                desc="Replicas is the most recently observed number of replicas.",
            ),
            _col(
                "Ready",
                "integer",
                desc="readyReplicas is the number of pods targeted by this ReplicaSet with a Ready Condition.",
            ),
            _col("Age"),
            _col("Containers", priority=1, desc="Names of each container in the template."),
            _col("Images", priority=1, desc="Images referenced by each container in the template."),
            _col(
                "Selector",
                priority=1,
                desc="Selector is a label query over pods that should match the replica count.",
            ),
        ],
        _rs_row,
    ),
    "configmaps": (
        [
            _name_col(),
            _col("Data", "integer", desc="Data contains the configuration data."),
            _col("Age"),
        ],
        _cm_row,
    ),
    "events": (
        [
            _col(
                "Last Seen",
                desc="The time at which the most recent occurrence of this event was recorded.",
            ),
            _col(
                "Type",
                desc="Type of this event (Normal, Warning), new types could be added in the future.",
            ),
            _col(
                "Reason",
                desc="This should be a short, machine understandable string that gives the reason for "
                "the transition into the object's current status.",
            ),
            _col("Object", desc="The object that this event is about."),
            _col("Subobject", priority=1, desc="The field of the object that this event is about."),
            _col(
                "Source",
                priority=1,
                desc="The component reporting this event. Should be a short machine understandable string.",
            ),
            _col("Message", desc="A human-readable description of the status of this operation."),
            _col("First Seen", priority=1, desc="The time at which the event was first recorded."),
            _col(
                "Count", "integer", priority=1, desc="The number of times this event has occurred."
            ),
            _col("Name", priority=1, fmt="name"),
        ],
        _event_row,
    ),
    "rolebindings": (
        [
            _name_col(),
            _col("Role", desc="Role references a role in the current namespace or a cluster role."),
            _col("Age"),
            _col("Users", priority=1, desc="Users in the roleBinding"),
            _col("Groups", priority=1, desc="Groups in the roleBinding"),
            _col("ServiceAccounts", priority=1, desc="ServiceAccounts in the roleBinding"),
        ],
        _binding_row,
    ),
}
_PRINTERS["clusterrolebindings"] = _PRINTERS["rolebindings"]
_DEFAULT = (
    [
        _name_col(),
        _col(
            "Created At",
            "date",
            desc="CreationTimestamp is a timestamp representing the server time when this object was created.",
        ),
    ],
    _created_at_row,
)


def columns(plural: str) -> list[dict[str, Any]]:
    return [dict(c) for c in _PRINTERS.get(plural, _DEFAULT)[0]]


def row_object(obj: Obj, include: str) -> dict[str, Any] | None:
    if include == "None":
        return None
    if include == "Object":
        return dict(obj)
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": dict(_meta(obj)),
    }


def rows(
    plural: str, objects: Sequence[Obj], now: str, include: str = "Metadata"
) -> list[dict[str, Any]]:
    printer = _PRINTERS.get(plural, _DEFAULT)[1]
    out = []
    for obj in objects:
        row: dict[str, Any] = {"cells": printer(obj, now)}
        ro = row_object(obj, include)
        if ro is not None:
            row["object"] = ro
        out.append(row)
    return out


def to_table(
    plural: str,
    objects: Sequence[Obj],
    now: str,
    *,
    list_meta: Mapping[str, Any] | None = None,
    include: str = "Metadata",
    with_columns: bool = True,
) -> dict[str, Any]:
    table: dict[str, Any] = {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": dict(list_meta or {}),
    }
    if with_columns:
        table["columnDefinitions"] = columns(plural)
    table["rows"] = rows(plural, objects, now, include)
    return table


def _media_ranges(accept: str) -> list[dict[str, str]]:
    out = []
    for part in accept.split(","):
        items = [p.strip() for p in part.split(";")]
        if not items[0]:
            continue
        params: dict[str, str] = {"": items[0].lower()}
        for p in items[1:]:
            k, _, v = p.partition("=")
            params[k.strip().lower()] = v.strip()
        out.append(params)
    return out


JSON_TYPES = (
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "*/*",
    "application/*",
)


def negotiate(accept: str | None) -> str | None:
    """'table' (meta.k8s.io Table), 'json' (a plain object), or None (nothing acceptable)."""
    if not accept or not accept.strip():
        return "json"
    for r in _media_ranges(accept):
        mt = r[""]
        if r.get("as") == "Table":
            if (
                r.get("g") == "meta.k8s.io"
                and r.get("v") in ("v1", "v1beta1")
                and mt == "application/json"
            ):
                return "table"
            continue
        if r.get("as"):
            # PartialObjectMetadata and friends: not served; a later range may be.
            continue
        if mt in JSON_TYPES:
            return "json"
    return None
