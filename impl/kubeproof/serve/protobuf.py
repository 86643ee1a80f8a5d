"""Kubernetes protobuf request bodies, decoded by hand into the JSON the core takes.

Theory of operation
-------------------
kubectl 1.32's typed client sends some bodies as
``application/vnd.kubernetes.protobuf`` (``create namespace``, ``create
configmap``, ``create role`` ..., and the SelfSubjectAccessReview of ``auth
can-i``) and never falls back to JSON.  The body is

    b"k8s\\x00" + runtime.Unknown{1: typeMeta{1: apiVersion, 2: kind},
                                   2: raw (the object's own message),
                                   3: contentEncoding, 4: contentType}

Decoding has two layers:

1. The wire format (`read_fields`): a message is a run of (tag, value);
   tag = field_number << 3 | wire_type; wire types 0 varint, 1 fixed64,
   2 length-delimited, 5 fixed32 (3 and 4, groups, are refused).
2. Schemas (`SCHEMAS`): for each message kind, field number -> (JSON name,
   type).  Types: ``str``, ``bytes`` (base64 in JSON), ``int``, ``bool``,
   ``time`` (a meta/v1 Time: seconds, nanos -> RFC 3339), ``intorstr``, a
   nested message's schema name, ``map`` of string to string (map entries are
   messages {1: key, 2: value}), and ``repeated`` forms of each.

The field numbers are the public ones of k8s.io/api's ``generated.proto``
(proto2).  Go's JSON leaves out empty values (``omitempty``) of plain fields
but keeps pointer fields that are set, so a field marked ``keep`` is emitted
even when zero, the others only when non-empty: the JSON equals what kubectl
would have sent in JSON.

A field number that a schema does not know is an error naming the message
and the number (`ProtobufError`), never silently dropped: dropping a field
would store something other than what the client sent.
"""

from __future__ import annotations

import base64
import datetime as _dt
from collections.abc import Iterator
from typing import Any

from attrs import frozen

__all__ = ["MAGIC", "SCHEMAS", "ProtobufError", "decode_k8s_protobuf", "read_fields"]

MAGIC = b"k8s\x00"


class ProtobufError(ValueError):
    """A body that is not a valid Kubernetes protobuf object of a known kind.
    ``unsupported`` is True when the body may be valid but uses a kind or a
    field this decoder does not know (HTTP 415), False when it is malformed
    (HTTP 400)."""

    def __init__(self, message: str, unsupported: bool = False) -> None:
        super().__init__(message)
        self.unsupported = unsupported


# ---------------------------------------------------------------------------
# Wire format


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(data):
            raise ProtobufError("truncated varint")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift >= 64:
            raise ProtobufError("varint longer than 10 bytes")


def read_fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yields (field number, wire type, value) for each field of a message:
    an int for varint and fixed widths, bytes for length-delimited fields."""
    pos = 0
    while pos < len(data):
        tag, pos = _varint(data, pos)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise ProtobufError("field number 0")
        if wire == 0:
            value, pos = _varint(data, pos)
            yield number, wire, value
        elif wire == 1:
            if pos + 8 > len(data):
                raise ProtobufError("truncated fixed64")
            yield number, wire, int.from_bytes(data[pos : pos + 8], "little")
            pos += 8
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ProtobufError(f"field {number}: length {length} runs past the end")
            yield number, wire, data[pos : pos + length]
            pos += length
        elif wire == 5:
            if pos + 4 > len(data):
                raise ProtobufError("truncated fixed32")
            yield number, wire, int.from_bytes(data[pos : pos + 4], "little")
            pos += 4
        else:
            raise ProtobufError(f"field {number}: unsupported wire type {wire}")


# ---------------------------------------------------------------------------
# Schemas


@frozen
class F:
    """One field: JSON name, type, repeated, and whether a zero value is kept
    (Go pointer fields)."""

    name: str
    type: str
    repeated: bool = False
    keep: bool = False


def _s(name: str, keep: bool = False) -> F:
    return F(name, "str", keep=keep)


def _rs(name: str) -> F:
    return F(name, "str", repeated=True)


SCHEMAS: dict[str, dict[int, F]] = {
    "Unknown": {1: F("typeMeta", "TypeMeta"), 2: F("raw", "bytes"), 3: _s("contentEncoding"),
                4: _s("contentType")},
    "TypeMeta": {1: _s("apiVersion"), 2: _s("kind")},
    "ObjectMeta": {
        1: _s("name"), 2: _s("generateName"), 3: _s("namespace"), 4: _s("selfLink"),
        5: _s("uid"), 6: _s("resourceVersion"), 7: F("generation", "int"),
        8: F("creationTimestamp", "time"), 9: F("deletionTimestamp", "time"),
        10: F("deletionGracePeriodSeconds", "int", keep=True), 11: F("labels", "map"),
        12: F("annotations", "map"), 13: F("ownerReferences", "OwnerReference", repeated=True),
        14: _rs("finalizers"), 17: F("managedFields", "ManagedFieldsEntry", repeated=True),
    },
    "OwnerReference": {
        1: _s("kind"), 3: _s("name"), 4: _s("uid"), 5: _s("apiVersion"),
        6: F("controller", "bool", keep=True), 7: F("blockOwnerDeletion", "bool", keep=True),
    },
    "ManagedFieldsEntry": {
        1: _s("manager"), 2: _s("operation"), 3: _s("apiVersion"), 4: F("time", "time"),
        6: _s("fieldsType"), 7: F("fieldsV1", "FieldsV1"), 8: _s("subresource"),
    },
    "FieldsV1": {1: F("Raw", "bytes")},
    "LabelSelector": {
        1: F("matchLabels", "map"),
        2: F("matchExpressions", "LabelSelectorRequirement", repeated=True),
    },
    "LabelSelectorRequirement": {1: _s("key"), 2: _s("operator"), 3: _rs("values")},
    # core/v1
    "Namespace": {1: F("metadata", "ObjectMeta"), 2: F("spec", "NamespaceSpec"),
                  3: F("status", "NamespaceStatus")},
    "NamespaceSpec": {1: _rs("finalizers")},
    "NamespaceStatus": {1: _s("phase")},
    "ConfigMap": {1: F("metadata", "ObjectMeta"), 2: F("data", "map"),
                  3: F("binaryData", "bytesmap"), 4: F("immutable", "bool", keep=True)},
    "Service": {1: F("metadata", "ObjectMeta"), 2: F("spec", "ServiceSpec"),
                3: F("status", "ServiceStatus")},
    "ServiceSpec": {
        1: F("ports", "ServicePort", repeated=True), 2: F("selector", "map"),
        3: _s("clusterIP"), 4: _s("type"), 5: _rs("externalIPs"), 7: _s("sessionAffinity"),
        8: _s("loadBalancerIP"), 9: _rs("loadBalancerSourceRanges"), 10: _s("externalName"),
        11: _s("externalTrafficPolicy"), 12: F("healthCheckNodePort", "int"),
        13: F("publishNotReadyAddresses", "bool"), 18: _rs("clusterIPs"),
        19: _rs("ipFamilies"), 20: _s("ipFamilyPolicy", keep=True),
        21: F("allocateLoadBalancerNodePorts", "bool", keep=True),
        22: _s("loadBalancerClass", keep=True), 23: _s("internalTrafficPolicy", keep=True),
        24: _s("trafficDistribution", keep=True),
    },
    "ServicePort": {1: _s("name"), 2: _s("protocol"), 3: F("port", "int"),
                    4: F("targetPort", "intorstr"), 5: F("nodePort", "int"),
                    6: _s("appProtocol", keep=True)},
    "ServiceStatus": {1: F("loadBalancer", "LoadBalancerStatus"),
                      2: F("conditions", "Condition", repeated=True)},
    "LoadBalancerStatus": {1: F("ingress", "LoadBalancerIngress", repeated=True)},
    "LoadBalancerIngress": {1: _s("ip"), 2: _s("hostname"), 3: _s("ipMode", keep=True),
                            4: F("ports", "PortStatus", repeated=True)},
    "PortStatus": {1: F("port", "int"), 2: _s("protocol"), 3: _s("error", keep=True)},
    "Condition": {1: _s("type"), 2: _s("status"), 3: F("observedGeneration", "int"),
                  4: F("lastTransitionTime", "time"), 5: _s("reason"), 6: _s("message")},
    # rbac.authorization.k8s.io/v1
    "Role": {1: F("metadata", "ObjectMeta"), 2: F("rules", "PolicyRule", repeated=True)},
    "ClusterRole": {1: F("metadata", "ObjectMeta"), 2: F("rules", "PolicyRule", repeated=True),
                    3: F("aggregationRule", "AggregationRule")},
    "AggregationRule": {1: F("clusterRoleSelectors", "LabelSelector", repeated=True)},
    "PolicyRule": {1: _rs("verbs"), 2: _rs("apiGroups"), 3: _rs("resources"),
                   4: _rs("resourceNames"), 5: _rs("nonResourceURLs")},
    "RoleBinding": {1: F("metadata", "ObjectMeta"), 2: F("subjects", "Subject", repeated=True),
                    3: F("roleRef", "RoleRef")},
    "ClusterRoleBinding": {1: F("metadata", "ObjectMeta"),
                           2: F("subjects", "Subject", repeated=True), 3: F("roleRef", "RoleRef")},
    "Subject": {1: _s("kind"), 2: _s("apiGroup"), 3: _s("name"), 4: _s("namespace")},
    "RoleRef": {1: _s("apiGroup"), 2: _s("kind"), 3: _s("name")},
    # authorization.k8s.io/v1
    "SelfSubjectAccessReview": {1: F("metadata", "ObjectMeta"),
                                2: F("spec", "SelfSubjectAccessReviewSpec"),
                                3: F("status", "SubjectAccessReviewStatus")},
    "SelfSubjectAccessReviewSpec": {1: F("resourceAttributes", "ResourceAttributes"),
                                    2: F("nonResourceAttributes", "NonResourceAttributes")},
    "ResourceAttributes": {1: _s("namespace"), 2: _s("verb"), 3: _s("group"), 4: _s("version"),
                           5: _s("resource"), 6: _s("subresource"), 7: _s("name"),
                           8: F("fieldSelector", "FieldSelectorAttributes"),
                           9: F("labelSelector", "LabelSelectorAttributes")},
    "FieldSelectorAttributes": {1: _s("rawSelector"),
                                2: F("requirements", "SelectorRequirement", repeated=True)},
    "LabelSelectorAttributes": {1: _s("rawSelector"),
                                2: F("requirements", "SelectorRequirement", repeated=True)},
    "SelectorRequirement": {1: _s("key"), 2: _s("operator"), 3: _rs("values")},
    "NonResourceAttributes": {1: _s("path"), 2: _s("verb")},
    "SubjectAccessReviewStatus": {1: F("allowed", "bool"), 2: _s("reason"),
                                  3: _s("evaluationError"), 4: F("denied", "bool")},
    "SelfSubjectRulesReview": {1: F("metadata", "ObjectMeta"),
                               2: F("spec", "SelfSubjectRulesReviewSpec"),
                               3: F("status", "SubjectRulesReviewStatus")},
    "SelfSubjectRulesReviewSpec": {1: _s("namespace")},
    "SubjectRulesReviewStatus": {1: F("resourceRules", "ResourceRule", repeated=True),
                                 2: F("nonResourceRules", "NonResourceRule", repeated=True),
                                 3: F("incomplete", "bool"), 4: _s("evaluationError")},
    "ResourceRule": {1: _rs("verbs"), 2: _rs("apiGroups"), 3: _rs("resources"),
                     4: _rs("resourceNames")},
    "NonResourceRule": {1: _rs("verbs"), 2: _rs("nonResourceURLs")},
    # authentication.k8s.io/v1
    "SelfSubjectReview": {1: F("metadata", "ObjectMeta"), 2: F("status", "SelfSubjectReviewStatus")},
    "SelfSubjectReviewStatus": {1: F("userInfo", "AuthnUserInfo")},
    "AuthnUserInfo": {1: _s("username"), 2: _s("uid"), 3: _rs("groups")},
}  # fmt: skip

# Kinds accepted at the top level, by (apiVersion, kind).
TOP_LEVEL: dict[tuple[str, str], str] = {
    ("v1", "Namespace"): "Namespace",
    ("v1", "ConfigMap"): "ConfigMap",
    ("v1", "Service"): "Service",
    ("rbac.authorization.k8s.io/v1", "Role"): "Role",
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): "ClusterRole",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "RoleBinding",
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): "ClusterRoleBinding",
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): "SelfSubjectAccessReview",
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview"): "SelfSubjectRulesReview",
    ("authentication.k8s.io/v1", "SelfSubjectReview"): "SelfSubjectReview",
}

_MAX_DEPTH = 32


def _signed64(v: int) -> int:
    # int32/int64 negatives travel as 10-byte two's complement varints.
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >= 1 << 63 else v


def _time(data: bytes, where: str) -> str | None:
    seconds = 0
    for number, wire, value in read_fields(data):
        if number == 1 and wire == 0:
            assert isinstance(value, int)
            seconds = _signed64(value)
        elif number == 2 and wire == 0:
            pass  # nanos: metav1.Time's JSON form has whole seconds only
        else:
            raise ProtobufError(f"{where}: unexpected field {number} in a Time")
    if seconds == 0:
        return None
    try:
        t = _dt.datetime.fromtimestamp(seconds, tz=_dt.UTC)
    except (OverflowError, OSError, ValueError) as e:
        raise ProtobufError(f"{where}: time out of range ({e})") from None
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _intorstr(data: bytes, where: str) -> int | str:
    kind, ival, sval = 0, 0, ""
    for number, wire, value in read_fields(data):
        if number == 1 and wire == 0 and isinstance(value, int):
            kind = value
        elif number == 2 and wire == 0 and isinstance(value, int):
            ival = _signed64(value)
        elif number == 3 and wire == 2 and isinstance(value, bytes):
            sval = _text(value, where)
        else:
            raise ProtobufError(f"{where}: unexpected field {number} in an IntOrString")
    return sval if kind == 1 else ival


def _text(value: bytes, where: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtobufError(f"{where}: a string field is not valid UTF-8") from None


def _map_entry(data: bytes, where: str, binary: bool) -> tuple[str, Any]:
    key, val = "", b""
    for number, wire, value in read_fields(data):
        if wire != 2 or not isinstance(value, bytes) or number not in (1, 2):
            raise ProtobufError(f"{where}: bad map entry field {number}")
        if number == 1:
            key = _text(value, where)
        else:
            val = value
    return key, (base64.b64encode(val).decode("ascii") if binary else _text(val, where))


def decode_message(
    schema_name: str, data: bytes, where: str = "", depth: int = 0
) -> dict[str, Any]:
    """One message, by schema name, into its JSON form."""
    if depth > _MAX_DEPTH:
        raise ProtobufError(f"{where}: nested too deeply")
    schema = SCHEMAS[schema_name]
    here = f"{where}.{schema_name}" if where else schema_name
    out: dict[str, Any] = {}
    for number, wire, value in read_fields(data):
        f = schema.get(number)
        if f is None:
            raise ProtobufError(f"{here}: field number {number} is not supported", True)
        decoded = _field(f, wire, value, here, depth)
        if f.type in ("map", "bytesmap"):
            k, v = decoded
            out.setdefault(f.name, {})[k] = v
        elif f.repeated:
            out.setdefault(f.name, []).append(decoded)
        elif _present(f, decoded):
            out[f.name] = decoded
        else:
            out.pop(f.name, None)
    return out


def _present(f: F, value: Any) -> bool:
    if f.keep:
        return value is not None
    if isinstance(value, (dict, list, bytes)):
        return bool(value)
    return value not in (None, "", 0, False)


def _field(f: F, wire: int, value: int | bytes, where: str, depth: int) -> Any:
    here = f"{where}.{f.name}"
    if f.type == "int":
        if wire != 0 or not isinstance(value, int):
            raise ProtobufError(f"{here}: expected a varint")
        return _signed64(value)
    if f.type == "bool":
        if wire != 0 or not isinstance(value, int):
            raise ProtobufError(f"{here}: expected a varint")
        return value != 0
    if not isinstance(value, bytes) or wire != 2:
        raise ProtobufError(f"{here}: expected a length-delimited field, got wire type {wire}")
    if f.type == "str":
        return _text(value, here)
    if f.type == "bytes":
        return value
    if f.type == "time":
        return _time(value, here)
    if f.type == "intorstr":
        return _intorstr(value, here)
    if f.type in ("map", "bytesmap"):
        return _map_entry(value, here, binary=f.type == "bytesmap")
    return decode_message(f.type, value, here, depth + 1)


def decode_k8s_protobuf(body: bytes) -> dict[str, Any]:
    """A whole ``application/vnd.kubernetes.protobuf`` body -> the object's JSON
    form, with ``apiVersion`` and ``kind``; `ProtobufError` says what is wrong."""
    if not body.startswith(MAGIC):
        raise ProtobufError("not a Kubernetes protobuf body (it must start with 'k8s\\x00')")
    unknown = decode_message("Unknown", body[len(MAGIC) :])
    tm = unknown.get("typeMeta", {})
    api_version, kind = tm.get("apiVersion", ""), tm.get("kind", "")
    encoding = unknown.get("contentEncoding", "")
    if encoding:
        raise ProtobufError(f"content encoding {encoding!r} is not supported", True)
    schema = TOP_LEVEL.get((api_version, kind))
    if schema is None:
        raise ProtobufError(
            f"protobuf bodies of kind {kind or '?'} ({api_version or '?'}) are not supported;"
            " send JSON",
            True,
        )
    raw = unknown.get("raw", b"")
    assert isinstance(raw, bytes)
    obj = decode_message(schema, raw)
    result: dict[str, Any] = {"apiVersion": api_version, "kind": kind}
    result.update(obj)
    result.setdefault("metadata", {})
    return result
