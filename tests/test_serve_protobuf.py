"""Kubernetes protobuf bodies: the exact bytes kubectl 1.32 sent, decoded to the JSON it means.

The constants below were captured from `kubectl.1.32 create ...` and `auth
can-i` against a recording server (November 2026); each test names the
command that produced its body.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubeproof.serve.protobuf import ProtobufError, decode_k8s_protobuf, read_fields

CONFIGMAP = (
    b'k8s\x00\n\x0f\n\x02v1\x12\tConfigMap\x12%\n\x13\n\x03cm1\x12\x00\x1a\x00"\x00*\x002\x00'
    b'8\x00B\x00\x12\x06\n\x01a\x12\x01b\x12\x06\n\x01c\x12\x01d\x1a\x00"\x00'
)

CLUSTERROLE = (
    b"k8s\x00\n+\n\x1crbac.authorization.k8s.io/v1\x12\x0bCl"
    b'usterRole\x12&\n\x13\n\x03cr1\x12\x00\x1a\x00"\x00*\x002\x008\x00B\x00\x12\x0f\n\x03get*'
    b'\x08/healthz\x1a\x00"\x00'
)

ROLEBINDING = (
    b"k8s\x00\n+\n\x1crbac.authorization.k8s.io/v1\x12\x0bRo"
    b'leBinding\x12\xb1\x01\n\x13\n\x03rb1\x12\x00\x1a\x00"\x00*\x002\x008\x00B\x00\x12(\n\x04Use'
    b'r\x12\x19rbac.authorization.k8s.io\x1a\x03bob"\x00\x12(\n\x05G'
    b'roup\x12\x19rbac.authorization.k8s.io\x1a\x02g1"\x00\x12\x1f\n'
    b'\x0eServiceAccount\x12\x00\x1a\x02sa"\x07default\x1a%\n\x19rbac.a'
    b'uthorization.k8s.io\x12\x04Role\x1a\x02r1\x1a\x00"\x00'
)

CLUSTERROLEBINDING = (
    b"k8s\x00\n2\n\x1crbac.authorization.k8s.io/v1\x12\x12Cl"
    b'usterRoleBinding\x12o\n\x14\n\x04crb1\x12\x00\x1a\x00"\x00*\x002\x008\x00B\x00'
    b"\x12(\n\x04User\x12\x19rbac.authorization.k8s.io\x1a\x03bob"
    b'"\x00\x1a-\n\x19rbac.authorization.k8s.io\x12\x0bCluster'
    b'Role\x1a\x03cr1\x1a\x00"\x00'
)

SERVICE_CLUSTERIP = (
    b'k8s\x00\n\r\n\x02v1\x12\x07Service\x12f\n\x1d\n\x02s1\x12\x00\x1a\x00"\x00*\x002\x008\x00B'
    b'\x00Z\t\n\x03app\x12\x02s1\x12A\n\x1b\n\x0780-8080\x12\x03TCP\x18P"\x07\x08\x00\x10\x90?\x1a'
    b'\x00(\x00\x12\t\n\x03app\x12\x02s1\x1a\x00"\tClusterIP:\x00B\x00R\x00Z\x00`\x00h\x00\x1a'
    b'\x02\n\x00\x1a\x00"\x00'
)

SERVICE_NODEPORT = (
    b'k8s\x00\n\r\n\x02v1\x12\x07Service\x12h\n\x1d\n\x02s2\x12\x00\x1a\x00"\x00*\x002\x008\x00B'
    b'\x00Z\t\n\x03app\x12\x02s2\x12C\n\x1e\n\x0780-http\x12\x03TCP\x18P"\n\x08\x01\x10\x00\x1a\x04'
    b'http(\x00\x12\t\n\x03app\x12\x02s2\x1a\x00"\x08NodePort:\x00B\x00R\x00Z\x00`\x00h'
    b'\x00\x1a\x02\n\x00\x1a\x00"\x00'
)

NAMESPACE = (
    b'k8s\x00\n\x0f\n\x02v1\x12\tNamespace\x12\x1b\n\x13\n\x03ns1\x12\x00\x1a\x00"\x00*\x002\x00'
    b'8\x00B\x00\x12\x00\x1a\x02\n\x00\x1a\x00"\x00'
)

CLUSTERROLE_AGGREGATED = (
    b"k8s\x00\n+\n\x1crbac.authorization.k8s.io/v1\x12\x0bCl"
    b'usterRole\x12!\n\x13\n\x03agg\x12\x00\x1a\x00"\x00*\x002\x008\x00B\x00\x1a\n\n\x08\n\x06\n\x01'
    b'x\x12\x01y\x1a\x00"\x00'
)

SSAR_SUBRESOURCE = (
    b"k8s\x00\n2\n\x17authorization.k8s.io/v1\x12\x17SelfSub"
    b'jectAccessReview\x12B\n\x10\n\x00\x12\x00\x1a\x00"\x00*\x002\x008\x00B\x00\x12$\n"'
    b'\n\x07default\x12\x03get\x1a\x00"\x00*\x04pods2\x03log:\x03log\x1a\x08\x08\x00\x12\x00'
    b'\x1a\x00 \x00\x1a\x00"\x00'
)

SSAR_ALL_NAMESPACES = (
    b"k8s\x00\n2\n\x17authorization.k8s.io/v1\x12\x17SelfSub"
    b'jectAccessReview\x126\n\x10\n\x00\x12\x00\x1a\x00"\x00*\x002\x008\x00B\x00\x12\x18\n\x16'
    b'\n\x00\x12\x04list\x1a\x00"\x00*\x04pods2\x00:\x00\x1a\x08\x08\x00\x12\x00\x1a\x00 \x00\x1a\x00"\x00'
)

SSAR_NONRESOURCE = (
    b"k8s\x00\n2\n\x17authorization.k8s.io/v1\x12\x17SelfSub"
    b'jectAccessReview\x12/\n\x10\n\x00\x12\x00\x1a\x00"\x00*\x002\x008\x00B\x00\x12\x11\x12\x0f'
    b'\n\x08/healthz\x12\x03get\x1a\x08\x08\x00\x12\x00\x1a\x00 \x00\x1a\x00"\x00'
)

SSRR = (
    b"k8s\x00\n1\n\x17authorization.k8s.io/v1\x12\x16SelfSub"
    b'jectRulesReview\x12#\n\x10\n\x00\x12\x00\x1a\x00"\x00*\x002\x008\x00B\x00\x12\t\n\x07d'
    b'efault\x1a\x04\x18\x00"\x00\x1a\x00"\x00'
)

RBAC = "rbac.authorization.k8s.io"
CASES: list[tuple[str, bytes, dict[str, Any]]] = [
    (
        "create namespace ns1",
        NAMESPACE,
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns1"}},
    ),
    (
        "create configmap cm1 --from-literal=a=b --from-literal=c=d",
        CONFIGMAP,
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm1"},
         "data": {"a": "b", "c": "d"}},
    ),
    (
        "create clusterrole cr1 --verb=get --non-resource-url=/healthz",
        CLUSTERROLE,
        {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRole", "metadata": {"name": "cr1"},
         "rules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]},
    ),
    (
        "create clusterrole agg --aggregation-rule=x=y",
        CLUSTERROLE_AGGREGATED,
        {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRole", "metadata": {"name": "agg"},
         "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"x": "y"}}]}},
    ),
    (
        "create rolebinding rb1 --role=r1 --user=bob --group=g1 --serviceaccount=default:sa",
        ROLEBINDING,
        {"apiVersion": f"{RBAC}/v1", "kind": "RoleBinding", "metadata": {"name": "rb1"},
         "subjects": [{"kind": "User", "apiGroup": RBAC, "name": "bob"},
                      {"kind": "Group", "apiGroup": RBAC, "name": "g1"},
                      {"kind": "ServiceAccount", "name": "sa", "namespace": "default"}],
         "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "r1"}},
    ),
    (
        "create clusterrolebinding crb1 --clusterrole=cr1 --user=bob",
        CLUSTERROLEBINDING,
        {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "crb1"},
         "subjects": [{"kind": "User", "apiGroup": RBAC, "name": "bob"}],
         "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "cr1"}},
    ),
    (
        "create service clusterip s1 --tcp=80:8080",
        SERVICE_CLUSTERIP,
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "s1", "labels": {"app": "s1"}},
         "spec": {"ports": [{"name": "80-8080", "protocol": "TCP", "port": 80,
                             "targetPort": 8080}],
                  "selector": {"app": "s1"}, "type": "ClusterIP"}},
    ),
    (
        "create service nodeport s2 --tcp=80:http",
        SERVICE_NODEPORT,
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "s2", "labels": {"app": "s2"}},
         "spec": {"ports": [{"name": "80-http", "protocol": "TCP", "port": 80,
                             "targetPort": "http"}],
                  "selector": {"app": "s2"}, "type": "NodePort"}},
    ),
    (
        "auth can-i get pods/log --subresource=log",
        SSAR_SUBRESOURCE,
        {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
         "metadata": {},
         "spec": {"resourceAttributes": {"namespace": "default", "verb": "get",
                                         "resource": "pods", "subresource": "log",
                                         "name": "log"}}},
    ),
    (
        "auth can-i list pods --all-namespaces",
        SSAR_ALL_NAMESPACES,
        {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
         "metadata": {}, "spec": {"resourceAttributes": {"verb": "list", "resource": "pods"}}},
    ),
    (
        "auth can-i get /healthz",
        SSAR_NONRESOURCE,
        {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
         "metadata": {}, "spec": {"nonResourceAttributes": {"path": "/healthz", "verb": "get"}}},
    ),
    (
        "auth can-i --list",
        SSRR,
        {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
         "metadata": {}, "spec": {"namespace": "default"}},
    ),
]  # fmt: skip


@pytest.mark.parametrize(("command", "body", "expected"), CASES, ids=[c[0] for c in CASES])
def test_kubectl_bodies_decode_to_their_json(
    command: str, body: bytes, expected: dict[str, Any]
) -> None:
    assert decode_k8s_protobuf(body) == expected


def test_an_unknown_field_is_an_error_not_a_silent_drop() -> None:
    # ObjectMeta field 99 (varint) appended inside the Namespace's metadata.
    meta = b"\n\x03ns1" + b"\x98\x06\x01"
    raw = b"\n" + bytes([len(meta)]) + meta
    type_meta = b"\n\x02v1\x12\tNamespace"
    unknown = b"\n" + bytes([len(type_meta)]) + type_meta + b"\x12" + bytes([len(raw)]) + raw
    with pytest.raises(ProtobufError, match="ObjectMeta: field number 99 is not supported"):
        decode_k8s_protobuf(b"k8s\x00" + unknown)


def test_unsupported_kind_names_it() -> None:
    type_meta = b"\n\x07apps/v1\x12\nDeployment"
    body = b"k8s\x00\n" + bytes([len(type_meta)]) + type_meta
    with pytest.raises(ProtobufError, match=r"kind Deployment \(apps/v1\) are not supported"):
        decode_k8s_protobuf(body)


def test_missing_magic_is_refused() -> None:
    with pytest.raises(ProtobufError, match="must start with"):
        decode_k8s_protobuf(b'{"kind":"Namespace"}')


@pytest.mark.parametrize("cut", [5, 12, 20, len(NAMESPACE) - 3])
def test_truncated_bodies_are_errors(cut: int) -> None:
    with pytest.raises(ProtobufError):
        decode_k8s_protobuf(NAMESPACE[:cut])


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash_the_decoder(data: bytes) -> None:
    # Anything a hostile client sends is a dict or a ProtobufError, nothing else.
    try:
        out = decode_k8s_protobuf(b"k8s\x00" + data)
    except ProtobufError:
        return
    assert isinstance(out, dict) and "kind" in out


def test_wire_reader_decodes_negative_varints() -> None:
    # int32 -1 is a ten-byte varint on the wire.
    data = b"\x08" + b"\xff" * 9 + b"\x01"
    ((number, wire, value),) = list(read_fields(data))
    assert (number, wire, value) == (1, 0, (1 << 64) - 1)
