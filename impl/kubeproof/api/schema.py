"""The wire schema of the served kinds: which fields exist and their JSON types.

Theory of operation
-------------------
kube-apiserver decodes a body into Go structs: a value of the wrong JSON
type is a 400 (``json: cannot unmarshal ...``), a field the struct does not
have is dropped, and with ``fieldValidation=Strict`` an unknown or
duplicated field is a 400 (``strict decoding error: unknown field
"spec.foo"``), with ``Warn`` (the default) a warning.  `conform` does the
same over a schema written as plain Python values:

    "string" "int" "bool" "number"   a scalar of that JSON type
    "quantity" "intstr"              a string or a number (resource quantities,
                                     IntOrString ports)
    "time"                           an RFC 3339 string
    "any"                            anything (opaque sub-documents)
    [S]                              a list of S
    {"*": S}                         a map of string keys to S
    {"field": S, ...}                a struct (other keys are unknown fields)

JSON ``null`` anywhere means "absent", as Go's decoder treats it.  The
result is a pruned copy that the rest of the core can trust structurally:
after `conform`, ``spec.containers`` *is* a list of objects whose ``name``
is a string.  This is what keeps hostile bodies from reaching code that
would crash on them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import bad_request

Schema = Any

S, INT, B, N, Q, IOS, T, ANY = (
    "string",
    "int",
    "bool",
    "number",
    "quantity",
    "intstr",
    "time",
    "any",
)
MAP_S = {"*": S}

OWNER_REF = {
    "apiVersion": S,
    "kind": S,
    "name": S,
    "uid": S,
    "controller": B,
    "blockOwnerDeletion": B,
}

OBJECT_META = {
    "name": S,
    "generateName": S,
    "namespace": S,
    "selfLink": S,
    "uid": S,
    "resourceVersion": S,
    "generation": INT,
    "creationTimestamp": T,
    "deletionTimestamp": T,
    "deletionGracePeriodSeconds": INT,
    "labels": MAP_S,
    "annotations": MAP_S,
    "ownerReferences": [OWNER_REF],
    "finalizers": [S],
    "managedFields": [ANY],
}

LABEL_SELECTOR = {
    "matchLabels": MAP_S,
    "matchExpressions": [{"key": S, "operator": S, "values": [S]}],
}

RESOURCES_REQ = {"limits": {"*": Q}, "requests": {"*": Q}, "claims": [ANY]}

CONTAINER_PORT = {"name": S, "hostPort": INT, "containerPort": INT, "protocol": S, "hostIP": S}
ENV_VAR = {"name": S, "value": S, "valueFrom": ANY}
VOLUME_MOUNT = {
    "name": S,
    "readOnly": B,
    "recursiveReadOnly": S,
    "mountPath": S,
    "subPath": S,
    "mountPropagation": S,
    "subPathExpr": S,
}
CONTAINER = {
    "name": S,
    "image": S,
    "command": [S],
    "args": [S],
    "workingDir": S,
    "ports": [CONTAINER_PORT],
    "envFrom": [ANY],
    "env": [ENV_VAR],
    "resources": RESOURCES_REQ,
    "resizePolicy": [ANY],
    "restartPolicy": S,
    "volumeMounts": [VOLUME_MOUNT],
    "volumeDevices": [ANY],
    "livenessProbe": ANY,
    "readinessProbe": ANY,
    "startupProbe": ANY,
    "lifecycle": ANY,
    "terminationMessagePath": S,
    "terminationMessagePolicy": S,
    "imagePullPolicy": S,
    "securityContext": ANY,
    "stdin": B,
    "stdinOnce": B,
    "tty": B,
}
TOLERATION = {"key": S, "operator": S, "value": S, "effect": S, "tolerationSeconds": INT}
VOLUME = {
    "name": S,
    "hostPath": ANY,
    "emptyDir": ANY,
    "secret": ANY,
    "configMap": ANY,
    "persistentVolumeClaim": ANY,
    "projected": ANY,
    "downwardAPI": ANY,
    "nfs": ANY,
    "csi": ANY,
    "ephemeral": ANY,
    "image": ANY,
}
POD_SPEC = {
    "volumes": [VOLUME],
    "initContainers": [CONTAINER],
    "containers": [CONTAINER],
    "ephemeralContainers": [ANY],
    "restartPolicy": S,
    "terminationGracePeriodSeconds": INT,
    "activeDeadlineSeconds": INT,
    "dnsPolicy": S,
    "nodeSelector": MAP_S,
    "serviceAccountName": S,
    "serviceAccount": S,
    "automountServiceAccountToken": B,
    "nodeName": S,
    "hostNetwork": B,
    "hostPID": B,
    "hostIPC": B,
    "shareProcessNamespace": B,
    "securityContext": ANY,
    "imagePullSecrets": [{"name": S}],
    "hostname": S,
    "subdomain": S,
    "affinity": ANY,
    "schedulerName": S,
    "tolerations": [TOLERATION],
    "hostAliases": [ANY],
    "priorityClassName": S,
    "priority": INT,
    "dnsConfig": ANY,
    "readinessGates": [{"conditionType": S}],
    "runtimeClassName": S,
    "enableServiceLinks": B,
    "preemptionPolicy": S,
    "overhead": {"*": Q},
    "topologySpreadConstraints": [ANY],
    "setHostnameAsFQDN": B,
    "os": {"name": S},
    "hostUsers": B,
    "schedulingGates": [{"name": S}],
    "resourceClaims": [ANY],
    "resources": RESOURCES_REQ,
}
CONTAINER_STATUS = {
    "name": S,
    "state": ANY,
    "lastState": ANY,
    "ready": B,
    "restartCount": INT,
    "image": S,
    "imageID": S,
    "containerID": S,
    "started": B,
    "allocatedResources": ANY,
    "resources": ANY,
    "volumeMounts": [ANY],
    "user": ANY,
    "allocatedResourcesStatus": [ANY],
}
CONDITION = {
    "type": S,
    "status": S,
    "lastProbeTime": T,
    "lastTransitionTime": T,
    "lastHeartbeatTime": T,
    "lastUpdateTime": T,
    "reason": S,
    "message": S,
    "observedGeneration": INT,
}
POD_STATUS = {
    "phase": S,
    "conditions": [CONDITION],
    "message": S,
    "reason": S,
    "nominatedNodeName": S,
    "hostIP": S,
    "hostIPs": [{"ip": S}],
    "podIP": S,
    "podIPs": [{"ip": S}],
    "startTime": T,
    "initContainerStatuses": [CONTAINER_STATUS],
    "containerStatuses": [CONTAINER_STATUS],
    "qosClass": S,
    "ephemeralContainerStatuses": [ANY],
    "resize": S,
    "resourceClaimStatuses": [ANY],
}
POD_TEMPLATE = {"metadata": OBJECT_META, "spec": POD_SPEC}

NODE = {
    "spec": {
        "podCIDR": S,
        "podCIDRs": [S],
        "providerID": S,
        "unschedulable": B,
        "taints": [{"key": S, "value": S, "effect": S, "timeAdded": T}],
        "configSource": ANY,
        "externalID": S,
    },
    "status": {
        "capacity": {"*": Q},
        "allocatable": {"*": Q},
        "phase": S,
        "conditions": [CONDITION],
        "addresses": [{"type": S, "address": S}],
        "daemonEndpoints": ANY,
        "nodeInfo": {"*": S},
        "images": [{"names": [S], "sizeBytes": INT}],
        "volumesInUse": [S],
        "volumesAttached": [ANY],
        "config": ANY,
        "runtimeHandlers": [ANY],
        "features": ANY,
    },
}

SERVICE_PORT = {
    "name": S,
    "protocol": S,
    "appProtocol": S,
    "port": INT,
    "targetPort": IOS,
    "nodePort": INT,
}
SERVICE = {
    "spec": {
        "ports": [SERVICE_PORT],
        "selector": MAP_S,
        "clusterIP": S,
        "clusterIPs": [S],
        "type": S,
        "externalIPs": [S],
        "sessionAffinity": S,
        "loadBalancerIP": S,
        "loadBalancerSourceRanges": [S],
        "externalName": S,
        "externalTrafficPolicy": S,
        "healthCheckNodePort": INT,
        "publishNotReadyAddresses": B,
        "sessionAffinityConfig": ANY,
        "ipFamilies": [S],
        "ipFamilyPolicy": S,
        "allocateLoadBalancerNodePorts": B,
        "loadBalancerClass": S,
        "internalTrafficPolicy": S,
        "trafficDistribution": S,
    },
    "status": {"loadBalancer": ANY, "conditions": [CONDITION]},
}

REPLICA_SET = {
    "spec": {
        "replicas": INT,
        "minReadySeconds": INT,
        "selector": LABEL_SELECTOR,
        "template": POD_TEMPLATE,
    },
    "status": {
        "replicas": INT,
        "fullyLabeledReplicas": INT,
        "readyReplicas": INT,
        "availableReplicas": INT,
        "terminatingReplicas": INT,
        "observedGeneration": INT,
        "conditions": [CONDITION],
    },
}

OBJECT_REF = {
    "kind": S,
    "namespace": S,
    "name": S,
    "uid": S,
    "apiVersion": S,
    "resourceVersion": S,
    "fieldPath": S,
}
EVENT = {
    "involvedObject": OBJECT_REF,
    "reason": S,
    "message": S,
    "source": {"component": S, "host": S},
    "firstTimestamp": T,
    "lastTimestamp": T,
    "count": INT,
    "type": S,
    "eventTime": T,
    "series": ANY,
    "action": S,
    "related": OBJECT_REF,
    "reportingComponent": S,
    "reportingInstance": S,
}

CONFIG_MAP = {"data": MAP_S, "binaryData": MAP_S, "immutable": B}

POLICY_RULE = {
    "verbs": [S],
    "apiGroups": [S],
    "resources": [S],
    "resourceNames": [S],
    "nonResourceURLs": [S],
}
ROLE = {"rules": [POLICY_RULE]}
CLUSTER_ROLE = {
    "rules": [POLICY_RULE],
    "aggregationRule": {"clusterRoleSelectors": [LABEL_SELECTOR]},
}
SUBJECT = {"kind": S, "apiGroup": S, "name": S, "namespace": S}
ROLE_REF = {"apiGroup": S, "kind": S, "name": S}
BINDING = {"subjects": [SUBJECT], "roleRef": ROLE_REF}

NAMESPACE = {"spec": {"finalizers": [S]}, "status": {"phase": S, "conditions": [CONDITION]}}

RESOURCE_ATTRS = {
    "namespace": S,
    "verb": S,
    "group": S,
    "version": S,
    "resource": S,
    "subresource": S,
    "name": S,
    "fieldSelector": ANY,
    "labelSelector": ANY,
}
NON_RESOURCE_ATTRS = {"path": S, "verb": S}
REVIEW_STATUS = {"allowed": B, "denied": B, "reason": S, "evaluationError": S}
SSAR = {
    "spec": {"resourceAttributes": RESOURCE_ATTRS, "nonResourceAttributes": NON_RESOURCE_ATTRS},
    "status": REVIEW_STATUS,
}
SAR = {
    "spec": {
        "resourceAttributes": RESOURCE_ATTRS,
        "nonResourceAttributes": NON_RESOURCE_ATTRS,
        "user": S,
        "groups": [S],
        "extra": {"*": [S]},
        "uid": S,
    },
    "status": REVIEW_STATUS,
}
SSRR = {"spec": {"namespace": S}, "status": ANY}
SSR = {"status": {"userInfo": {"username": S, "uid": S, "groups": [S], "extra": {"*": [S]}}}}

BINDING_OBJ = {"target": OBJECT_REF}
SCALE = {"spec": {"replicas": INT}, "status": {"replicas": INT, "selector": S}}

_KIND_SCHEMAS: dict[str, dict[str, Any]] = {
    "Namespace": NAMESPACE,
    "Node": NODE,
    "Pod": {"spec": POD_SPEC, "status": POD_STATUS},
    "Service": SERVICE,
    "Event": EVENT,
    "ConfigMap": CONFIG_MAP,
    "ReplicaSet": REPLICA_SET,
    "Role": ROLE,
    "ClusterRole": CLUSTER_ROLE,
    "RoleBinding": BINDING,
    "ClusterRoleBinding": BINDING,
    "SelfSubjectAccessReview": SSAR,
    "SelfSubjectRulesReview": SSRR,
    "SubjectAccessReview": SAR,
    "SelfSubjectReview": SSR,
    "Binding": BINDING_OBJ,
    "Scale": SCALE,
}


def kind_schema(kind: str) -> dict[str, Any]:
    """The top-level struct of a kind (apiVersion, kind, metadata and its body)."""
    body = _KIND_SCHEMAS[kind]
    return {"apiVersion": S, "kind": S, "metadata": OBJECT_META, **body}


_GO_TYPES = {
    S: "string",
    INT: "int64",
    B: "bool",
    N: "float64",
    T: "v1.Time",
    Q: "Quantity",
    IOS: "IntOrString",
}


def _json_type(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return "null"


class Conformer:
    """One `conform` run: collects unknown fields, raises on type errors."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.unknown: list[str] = []

    def _type_error(self, value: Any, path: str, want: str) -> Exception:
        return bad_request(
            f"json: cannot unmarshal {_json_type(value)} into Go struct field "
            f"{self.kind}.{path} of type {want}"
        )

    def run(self, value: Any, schema: Schema, path: str) -> Any:
        if schema == ANY:
            return value
        if isinstance(schema, str):
            return self._scalar(value, schema, path)
        if isinstance(schema, list):
            if not isinstance(value, list):
                raise self._type_error(value, path, "[]" + _go_name(schema[0]))
            return (
                [
                    self.run(v, schema[0], f"{path}[{i}]")
                    for i, v in enumerate(value)
                    if v is not None
                ]
                if schema[0] != ANY
                else value
            )
        assert isinstance(schema, dict)
        if not isinstance(value, dict):
            raise self._type_error(value, path, "map[string]" if "*" in schema else "struct")
        out: dict[str, Any] = {}
        if "*" in schema and len(schema) == 1:
            for k, v in value.items():
                if v is None:
                    continue
                out[k] = self.run(v, schema["*"], f"{path}.{k}" if path else k)
            return out
        for k, v in value.items():
            sub = f"{path}.{k}" if path else k
            if k not in schema:
                self.unknown.append(sub)
                continue
            if v is None:
                continue
            out[k] = self.run(v, schema[k], sub)
        return out

    def _scalar(self, value: Any, schema: str, path: str) -> Any:
        ok: bool
        if schema in (S, T):
            ok = isinstance(value, str)
        elif schema == INT:
            ok = (isinstance(value, int) and not isinstance(value, bool)) or (
                isinstance(value, float) and value.is_integer() and abs(value) < 2**63
            )
            if ok:
                value = int(value)
                if not -(2**63) <= value < 2**63:
                    ok = False
        elif schema == B:
            ok = isinstance(value, bool)
        elif schema == N:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        elif schema in (Q, IOS):
            ok = isinstance(value, str | int | float) and not isinstance(value, bool)
            if ok and isinstance(value, float) and schema == IOS:
                ok = value.is_integer()
                value = int(value) if ok else value
        else:  # pragma: no cover - schema typo
            raise AssertionError(schema)
        if not ok:
            raise self._type_error(value, path, _GO_TYPES.get(schema, schema))
        return value


def _go_name(schema: Schema) -> str:
    if isinstance(schema, str):
        return _GO_TYPES.get(schema, schema)
    if isinstance(schema, list):
        return "[]" + _go_name(schema[0])
    return "map[string]" if "*" in schema else "struct"


def conform(kind: str, obj: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The object pruned to the kind's schema, and its unknown field paths.

    Raises a 400 ApiError on a JSON type mismatch."""
    c = Conformer(kind)
    out = c.run(dict(obj), kind_schema(kind), "")
    assert isinstance(out, dict)
    return out, c.unknown
