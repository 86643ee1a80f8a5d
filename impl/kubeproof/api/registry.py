"""Per-kind strategies: what kube's registry does to an object before it is stored.

Theory of operation
-------------------
Every stored kind has a `Strategy` (kube's RESTCreateStrategy and
RESTUpdateStrategy, reduced to the facts that differ between kinds):

    status_on_create   what the status becomes on create: 'reset' (the
                       client's status is dropped: pods, services,
                       replicasets, namespaces) or 'keep' (nodes, and the
                       kinds without a status)
    has_status         the main resource ignores status changes on update,
                       the status subresource ignores everything but status
                       (and metadata)
    generation         metadata.generation starts at 1 and grows with every
                       spec change (replicasets)
    create_on_update   a PUT to a missing object creates it (services, events,
                       RBAC objects), else 404
    graceful           deletion waits for a grace period (pods)

`prepare_create` and `prepare_update` apply them; they never fail.
"""

from __future__ import annotations

import copy
from typing import Any

from attrs import frozen

from .defaults import apply_defaults, qos_class

Obj = dict[str, Any]


@frozen
class Strategy:
    status_on_create: str = "keep"
    has_status: bool = False
    generation: bool = False
    create_on_update: bool = False
    graceful: bool = False


STRATEGIES: dict[str, Strategy] = {
    "Namespace": Strategy("reset", has_status=True),
    "Node": Strategy("keep", has_status=True),
    "Pod": Strategy("reset", has_status=True, graceful=True),
    "Service": Strategy("reset", has_status=True, create_on_update=True),
    "Event": Strategy(create_on_update=True),
    "ConfigMap": Strategy(),
    "ReplicaSet": Strategy("reset", has_status=True, generation=True),
    "Role": Strategy(create_on_update=True),
    "ClusterRole": Strategy(create_on_update=True),
    "RoleBinding": Strategy(create_on_update=True),
    "ClusterRoleBinding": Strategy(create_on_update=True),
}


def strategy(kind: str) -> Strategy:
    return STRATEGIES.get(kind, Strategy())


def _reset_status(kind: str, obj: Obj) -> None:
    if kind == "Pod":
        obj["status"] = {"phase": "Pending", "qosClass": qos_class(obj.get("spec") or {})}
    elif kind == "Namespace":
        obj["status"] = {"phase": "Active"}
    elif kind == "ReplicaSet":
        obj["status"] = {"replicas": 0}
    elif kind == "Service":
        obj["status"] = {"loadBalancer": {}}
    else:
        obj.pop("status", None)


def prepare_create(kind: str, obj: Obj, *, uid: str, now: str) -> Obj:
    st = strategy(kind)
    meta = obj.setdefault("metadata", {})
    meta["uid"] = uid
    meta["creationTimestamp"] = now
    meta.pop("resourceVersion", None)
    meta.pop("deletionTimestamp", None)
    meta.pop("deletionGracePeriodSeconds", None)
    meta.pop("managedFields", None)
    meta.pop("selfLink", None)
    if st.generation:
        meta["generation"] = 1
    else:
        meta.pop("generation", None)
    if st.status_on_create == "reset":
        _reset_status(kind, obj)
    return apply_defaults(kind, obj)


_SYSTEM_META = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds")


def prepare_update(kind: str, new: Obj, old: Obj, *, status: bool) -> Obj:
    """The object to store for an update of ``old`` with ``new`` (main resource,
    or the status subresource when ``status``)."""
    st = strategy(kind)
    out = copy.deepcopy(new)
    nm = out.setdefault("metadata", {})
    om = old.get("metadata") or {}
    nm.pop("managedFields", None)
    nm.pop("selfLink", None)
    if "uid" not in nm and "uid" in om:
        nm["uid"] = om["uid"]
    if om.get("creationTimestamp"):
        nm["creationTimestamp"] = om["creationTimestamp"]
    # An update can never set, remove or change a deletion timestamp.
    if om.get("deletionTimestamp"):
        nm["deletionTimestamp"] = om["deletionTimestamp"]
    else:
        nm.pop("deletionTimestamp", None)
    if "deletionGracePeriodSeconds" in om:
        nm["deletionGracePeriodSeconds"] = om["deletionGracePeriodSeconds"]
    else:
        nm.pop("deletionGracePeriodSeconds", None)
    if "generation" in om:
        nm["generation"] = om["generation"]
    else:
        nm.pop("generation", None)
    if status:
        # Only status (and metadata) change through the status subresource.
        for k in list(out):
            if k not in ("apiVersion", "kind", "metadata", "status"):
                out.pop(k)
        for k, v in old.items():
            if k not in ("apiVersion", "kind", "metadata", "status"):
                out[k] = copy.deepcopy(v)
        if kind == "Pod":
            nm["ownerReferences"] = (
                copy.deepcopy(om.get("ownerReferences")) if "ownerReferences" in om else None
            )
            if nm["ownerReferences"] is None:
                nm.pop("ownerReferences")
    elif st.has_status:
        if "status" in old:
            out["status"] = copy.deepcopy(old["status"])
        else:
            out.pop("status", None)
    out = apply_defaults(kind, out)
    if st.generation and not status and out.get("spec") != old.get("spec"):
        nm["generation"] = int(om.get("generation", 1)) + 1
    return out
