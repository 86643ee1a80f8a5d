"""Admission: a small chain of plugins run on every write, after authorization.

Theory of operation
-------------------
kube-apiserver runs mutating admission plugins before an object is
validated and stored, and validating ones after.  Here a plugin is any
object with ``admit(attrs, lookup)`` (mutating: returns the object to
continue with) and/or ``validate(attrs, lookup)`` (raises an `ApiError`
to refuse).  The chain is a tuple; the server runs every ``admit`` in order,
then its own defaulting and validation, then every ``validate`` in order.
``lookup(plural, namespace, name)`` reads the current object from the
store (the plugins have no other access).

Shipped plugins:

    NamespaceLifecycle   no create in a namespace that does not exist (404)
                         or is Terminating (403, reason Forbidden, cause
                         NamespaceTerminating); the system namespaces
                         default, kube-system, kube-public can not be deleted.
    PodDefaults          fills a pod's defaults (also the ones of its
                         containers) before validation; kube does this in its
                         decoder, the plugin makes the step explicit.
    ObjectSizeLimit      refuses an object larger than etcd's request limit
                         (1.5 MiB), which etcd itself would refuse.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

from attrs import frozen

from .bootstrap import SYSTEM_NAMESPACES
from .defaults import default_pod
from .errors import ApiError, Cause, forbidden, not_found
from .types import UserInfo

Obj = dict[str, Any]
Lookup = Callable[[str, str, str], Obj | None]


@frozen
class AdmissionAttributes:
    operation: str  # CREATE, UPDATE, DELETE, CONNECT
    plural: str
    qualified: str
    kind: str
    namespace: str
    name: str
    subresource: str
    user: UserInfo
    obj: Obj | None
    old: Obj | None


class AdmissionPlugin(Protocol):
    name: str

    def admit(self, attrs: AdmissionAttributes, lookup: Lookup) -> Obj | None: ...

    def validate(self, attrs: AdmissionAttributes, lookup: Lookup) -> None: ...


class NamespaceLifecycle:
    name = "NamespaceLifecycle"

    def admit(self, attrs: AdmissionAttributes, lookup: Lookup) -> Obj | None:
        return attrs.obj

    def validate(self, attrs: AdmissionAttributes, lookup: Lookup) -> None:
        if attrs.plural == "namespaces":
            if attrs.operation == "DELETE" and attrs.name in SYSTEM_NAMESPACES[:3]:
                raise forbidden("namespaces", attrs.name, "this namespace may not be deleted")
            return
        if not attrs.namespace:
            return
        if attrs.operation != "CREATE":
            return
        ns = lookup("namespaces", "", attrs.namespace)
        if ns is None:
            raise not_found("namespaces", attrs.namespace)
        if (ns.get("status") or {}).get("phase") == "Terminating" or (ns.get("metadata") or {}).get(
            "deletionTimestamp"
        ):
            # Subresource creates (bindings, evictions) are still allowed in kube.
            if attrs.subresource:
                return
            e = forbidden(
                attrs.qualified,
                attrs.name,
                f"unable to create new content in namespace {attrs.namespace} because it is "
                "being terminated",
            )
            raise ApiError(
                e.code,
                e.reason,
                e.message,
                name=e.name,
                group=e.group,
                kind=e.kind,
                causes=(
                    Cause(
                        "NamespaceTerminating",
                        f"namespace {attrs.namespace} is being terminated",
                        "metadata.namespace",
                    ),
                ),
            )


class PodDefaults:
    name = "PodDefaults"

    def admit(self, attrs: AdmissionAttributes, lookup: Lookup) -> Obj | None:
        if attrs.plural == "pods" and not attrs.subresource and attrs.obj is not None:
            return default_pod(attrs.obj)
        return attrs.obj

    def validate(self, attrs: AdmissionAttributes, lookup: Lookup) -> None:
        return None


class ObjectSizeLimit:
    """A validating step: kube's limit on the size of metadata.annotations plus
    labels is enforced by validation; this refuses objects above etcd's default
    request size (1.5 MiB), which etcd itself would refuse."""

    name = "ObjectSizeLimit"
    limit = 3 * 512 * 1024

    def admit(self, attrs: AdmissionAttributes, lookup: Lookup) -> Obj | None:
        return attrs.obj

    def validate(self, attrs: AdmissionAttributes, lookup: Lookup) -> None:
        if attrs.obj is None:
            return
        size = len(json.dumps(attrs.obj, separators=(",", ":")))
        if size > self.limit:
            raise ApiError(
                413,
                "RequestEntityTooLarge",
                f"etcdserver: request is too large ({size} bytes, limit {self.limit})",
            )


DEFAULT_CHAIN: tuple[AdmissionPlugin, ...] = (
    PodDefaults(),
    NamespaceLifecycle(),
    ObjectSizeLimit(),
)
