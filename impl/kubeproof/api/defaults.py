"""Defaulting: the values kube-apiserver fills in when a client leaves them out.

Theory of operation
-------------------
Each function takes a conformed object (see `schema`) and returns it with
kube's defaults set, never overwriting what the client gave.  They run on
every create and update (kube defaults on decode, so an update that drops a
defaulted field gets it back; that is what makes pod specs compare equal
across updates).  The values are kube 1.32's ``SetDefaults_*``:

    Pod        restartPolicy Always, dnsPolicy ClusterFirst,
               terminationGracePeriodSeconds 30, schedulerName
               default-scheduler, securityContext {}, enableServiceLinks true,
               preemptionPolicy PreemptLowerPriority, priority 0;
               containers: imagePullPolicy (Always for :latest or no tag,
               else IfNotPresent), terminationMessagePath
               /dev/termination-log, terminationMessagePolicy File, ports
               protocol TCP; tolerations operator Equal.
    Service    type ClusterIP, sessionAffinity None, ports protocol TCP and
               targetPort = port, ipFamilies/ipFamilyPolicy SingleStack,
               internalTrafficPolicy Cluster.
    ReplicaSet replicas 1; the pod template's spec as a Pod's.
    Namespace  spec.finalizers [kubernetes]; status.phase Active; the
               kubernetes.io/metadata.name label = the name.
    RBAC       subjects' apiGroup (rbac.authorization.k8s.io for User/Group).
"""

from __future__ import annotations

from typing import Any

from .resources import RBAC

Obj = dict[str, Any]


def _image_pull_policy(image: str) -> str:
    # kube: no tag or ":latest" (and no digest) -> Always, else IfNotPresent.
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    if ":" not in last or last.endswith(":latest"):
        return "Always"
    return "IfNotPresent"


def default_container(c: Obj) -> None:
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    if "image" in c and isinstance(c["image"], str):
        c.setdefault("imagePullPolicy", _image_pull_policy(c["image"]))
    c.setdefault("resources", {})
    for p in c.get("ports") or []:
        p.setdefault("protocol", "TCP")


def default_pod_spec(spec: Obj) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    spec.setdefault("priority", 0)
    if "serviceAccount" in spec and "serviceAccountName" not in spec:
        spec["serviceAccountName"] = spec["serviceAccount"]
    for c in spec.get("containers") or []:
        default_container(c)
    for c in spec.get("initContainers") or []:
        default_container(c)
    for t in spec.get("tolerations") or []:
        if "operator" not in t:
            t["operator"] = "Equal"


def default_pod(obj: Obj) -> Obj:
    spec = obj.setdefault("spec", {})
    default_pod_spec(spec)
    status = obj.setdefault("status", {})
    status.setdefault("phase", "Pending")
    status.setdefault("qosClass", qos_class(spec))
    return obj


def qos_class(spec: Obj) -> str:
    """kube's GetPodQOS, enough for the pod's status.qosClass."""
    containers = list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
    any_set = False
    guaranteed = bool(containers)
    for c in containers:
        res = c.get("resources") or {}
        req = res.get("requests") or {}
        lim = res.get("limits") or {}
        if req or lim:
            any_set = True
        for r in ("cpu", "memory"):
            if r not in lim or (r in req and str(req[r]) != str(lim[r])):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def default_service(obj: Obj) -> Obj:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    if spec["type"] != "ExternalName":
        spec.setdefault("sessionAffinity", "None")
        spec.setdefault("internalTrafficPolicy", "Cluster")
    for p in spec.get("ports") or []:
        p.setdefault("protocol", "TCP")
        if "targetPort" not in p and "port" in p:
            p["targetPort"] = p["port"]
    obj.setdefault("status", {"loadBalancer": {}})
    return obj


def default_replicaset(obj: Obj) -> Obj:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    template = spec.get("template")
    if isinstance(template, dict):
        tspec = template.setdefault("spec", {})
        default_pod_spec(tspec)
        tmeta = template.setdefault("metadata", {})
        tmeta.pop("creationTimestamp", None)
        # kube defaults an absent selector from the template labels only in
        # extensions/v1beta1; apps/v1 requires it (validation says so).
    obj.setdefault("status", {"replicas": 0})
    return obj


def default_namespace(obj: Obj) -> Obj:
    name = (obj.get("metadata") or {}).get("name")
    meta = obj.setdefault("metadata", {})
    if isinstance(name, str) and name:
        labels = meta.setdefault("labels", {})
        labels["kubernetes.io/metadata.name"] = name
    spec = obj.setdefault("spec", {})
    spec.setdefault("finalizers", ["kubernetes"])
    status = obj.setdefault("status", {})
    status.setdefault("phase", "Active")
    return obj


def default_node(obj: Obj) -> Obj:
    obj.setdefault("spec", {})
    obj.setdefault("status", {})
    return obj


def default_binding(obj: Obj) -> Obj:
    for s in obj.get("subjects") or []:
        if "apiGroup" not in s and s.get("kind") in ("User", "Group"):
            s["apiGroup"] = RBAC
    ref = obj.get("roleRef")
    if isinstance(ref, dict):
        ref.setdefault("apiGroup", RBAC)
    return obj


def default_event(obj: Obj) -> Obj:
    obj.setdefault("involvedObject", {})
    if "type" not in obj:
        obj["type"] = "Normal"
    return obj


def _identity(obj: Obj) -> Obj:
    return obj


DEFAULTERS = {
    "Pod": default_pod,
    "Service": default_service,
    "ReplicaSet": default_replicaset,
    "Namespace": default_namespace,
    "Node": default_node,
    "RoleBinding": default_binding,
    "ClusterRoleBinding": default_binding,
    "Event": default_event,
}


def apply_defaults(kind: str, obj: Obj) -> Obj:
    return DEFAULTERS.get(kind, _identity)(obj)
