"""Validation of the served kinds, with kube's rules and field paths.

Theory of operation
-------------------
`validate_create(kind, obj)` and `validate_update(kind, new, old)` return
the `FieldErrors` kube-apiserver would report (every check below is one of
its ``Validate*`` rules, with its field path and message); the caller raises
them as one 422 ``Invalid``.  Objects arrive conformed (`schema.conform`)
and defaulted, so the structure is known and only values are checked.

Immutable fields on update: a pod's spec except container images,
activeDeadlineSeconds, added tolerations and terminationGracePeriodSeconds;
a service's clusterIP and type ExternalName's absence of one; a
ReplicaSet's selector; a binding's roleRef; an immutable ConfigMap's data;
metadata.uid, creationTimestamp and a namespace's name everywhere.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from .meta import (
    FieldErrors,
    NameRule,
    dns1035_label,
    dns1123_label,
    dns1123_subdomain,
    path_segment,
)
from .resources import RBAC
from .selectors import SelectorError, selector_from_match

Obj = dict[str, Any]

NAME_RULES: dict[str, NameRule] = {
    "Namespace": dns1123_label,
    "Node": dns1123_subdomain,
    "Pod": dns1123_subdomain,
    "Service": dns1035_label,
    "Event": dns1123_subdomain,
    "ConfigMap": dns1123_subdomain,
    "ReplicaSet": dns1123_subdomain,
    "Role": path_segment,
    "ClusterRole": path_segment,
    "RoleBinding": path_segment,
    "ClusterRoleBinding": path_segment,
}

_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_C_IDENT = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


def validate_name(kind: str, name: str, errs: FieldErrors, path: str = "metadata.name") -> None:
    rule = NAME_RULES.get(kind, dns1123_subdomain)
    for msg in rule(name):
        errs.invalid(path, name, msg)


def _qualified_name(key: str) -> list[str]:
    """kube's IsQualifiedName (label and annotation keys)."""
    out: list[str] = []
    parts = key.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            out.append("prefix part must be non-empty")
        else:
            out += ["prefix part " + m for m in dns1123_subdomain(prefix)]
    else:
        return [
            "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must "
            "start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
            "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') "
            "with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        out.append("name part must be non-empty")
    elif len(name) > 63:
        out.append("name part must be no more than 63 characters")
    elif not _LABEL_NAME.match(name):
        out.append(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start "
            "and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
            "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        )
    return out


def validate_labels(labels: Mapping[str, str], path: str, errs: FieldErrors) -> None:
    for k, v in labels.items():
        for msg in _qualified_name(k):
            errs.invalid(path, k, msg)
        if len(v) > 63:
            errs.invalid(f"{path}", v, "must be no more than 63 characters")
        elif not _LABEL_VALUE.match(v):
            errs.invalid(
                path,
                v,
                "a valid label must be an empty string or consist of alphanumeric characters, "
                "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
                "'MyValue',  or 'my_value',  or '12345', regex used for validation is "
                "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
            )


def validate_meta(kind: str, obj: Obj, namespaced: bool, errs: FieldErrors) -> None:
    meta = obj.get("metadata") or {}
    name = meta.get("name", "")
    if not name:
        errs.required("metadata.name", "name or generateName is required")
    else:
        validate_name(kind, name, errs)
    ns = meta.get("namespace", "")
    if namespaced:
        if not ns:
            errs.required("metadata.namespace")
        else:
            for msg in dns1123_label(ns):
                errs.invalid("metadata.namespace", ns, msg)
    elif ns:
        errs.forbidden("metadata.namespace", "not allowed on this type")
    validate_labels(meta.get("labels") or {}, "metadata.labels", errs)
    ann = meta.get("annotations") or {}
    total = 0
    for k, v in ann.items():
        for msg in _qualified_name(k.lower()):
            errs.invalid("metadata.annotations", k, msg)
        total += len(k) + len(v)
    if total > 256 * 1024:
        errs.too_long("metadata.annotations", 256 * 1024)
    for i, f in enumerate(meta.get("finalizers") or []):
        if "/" not in f and f not in ("kubernetes", "orphan", "foregroundDeletion"):
            errs.invalid(
                f"metadata.finalizers[{i}]",
                f,
                "name is neither a standard finalizer name nor is it fully qualified",
            )
        elif "/" in f:
            for msg in _qualified_name(f):
                errs.invalid(f"metadata.finalizers[{i}]", f, msg)
    for i, ref in enumerate(meta.get("ownerReferences") or []):
        base = f"metadata.ownerReferences[{i}]"
        for fld in ("apiVersion", "kind", "name", "uid"):
            if not ref.get(fld):
                if fld == "uid":
                    errs.invalid(f"{base}.uid", "", "uid must not be empty")
                else:
                    errs.invalid(f"{base}.{fld}", ref.get(fld, ""), f"{fld} must not be empty")
    if sum(1 for r in meta.get("ownerReferences") or [] if r.get("controller")) > 1:
        errs.invalid(
            "metadata.ownerReferences",
            len(meta.get("ownerReferences") or []),
            "Only one reference can have Controller set to true",
        )
    gen = meta.get("generation", 0)
    if gen < 0:
        errs.invalid("metadata.generation", gen, "must be greater than or equal to 0")


# ---------------------------------------------------------------------------
# Pods

RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
PROTOCOLS = ("SCTP", "TCP", "UDP")
TAINT_EFFECTS = ("NoExecute", "NoSchedule", "PreferNoSchedule")


def _port_range(value: int, path: str, errs: FieldErrors) -> None:
    if not 1 <= value <= 65535:
        errs.invalid(path, value, "must be between 1 and 65535, inclusive")


def validate_containers(
    containers: list[Obj], path: str, errs: FieldErrors, names: set[str], required: bool
) -> None:
    if required and not containers:
        errs.required(path)
    for i, c in enumerate(containers):
        base = f"{path}[{i}]"
        name = c.get("name", "")
        if not name:
            errs.required(f"{base}.name")
        else:
            for msg in dns1123_label(name):
                errs.invalid(f"{base}.name", name, msg)
            if name in names:
                errs.duplicate(f"{base}.name", name)
            names.add(name)
        image = c.get("image", "")
        if not image or image.strip() != image:
            if not image:
                errs.required(f"{base}.image")
            else:
                errs.invalid(f"{base}.image", image, "must not have leading or trailing whitespace")
        policy = c.get("imagePullPolicy")
        if policy is not None and policy not in PULL_POLICIES:
            errs.not_supported(f"{base}.imagePullPolicy", policy, PULL_POLICIES)
        tmp = c.get("terminationMessagePolicy")
        if tmp is not None and tmp not in ("File", "FallbackToLogsOnError"):
            errs.not_supported(
                f"{base}.terminationMessagePolicy", tmp, ("File", "FallbackToLogsOnError")
            )
        port_names: set[str] = set()
        for j, p in enumerate(c.get("ports") or []):
            pbase = f"{base}.ports[{j}]"
            if "containerPort" not in p:
                errs.required(f"{pbase}.containerPort")
            else:
                _port_range(p["containerPort"], f"{pbase}.containerPort", errs)
            if "hostPort" in p and p["hostPort"] != 0:
                _port_range(p["hostPort"], f"{pbase}.hostPort", errs)
            proto = p.get("protocol", "TCP")
            if proto not in PROTOCOLS:
                errs.not_supported(f"{pbase}.protocol", proto, PROTOCOLS)
            pname = p.get("name")
            if pname:
                if len(pname) > 15 or not re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", pname):
                    errs.invalid(f"{pbase}.name", pname, "must be an IANA_SVC_NAME")
                elif pname in port_names:
                    errs.duplicate(f"{pbase}.name", pname)
                port_names.add(pname)
        for j, e in enumerate(c.get("env") or []):
            ename = e.get("name", "")
            if not ename:
                errs.required(f"{base}.env[{j}].name")
            elif not _C_IDENT.match(ename):
                errs.invalid(
                    f"{base}.env[{j}].name",
                    ename,
                    "a valid environment variable name must consist of alphabetic characters, "
                    "digits, '_', '-', or '.', and must not start with a digit",
                )
        for j, m in enumerate(c.get("volumeMounts") or []):
            if not m.get("name"):
                errs.required(f"{base}.volumeMounts[{j}].name")
            if not m.get("mountPath"):
                errs.required(f"{base}.volumeMounts[{j}].mountPath")


def validate_pod_spec(spec: Obj, path: str, errs: FieldErrors) -> None:
    vol_names: set[str] = set()
    for i, v in enumerate(spec.get("volumes") or []):
        name = v.get("name", "")
        if not name:
            errs.required(f"{path}.volumes[{i}].name")
        else:
            for msg in dns1123_label(name):
                errs.invalid(f"{path}.volumes[{i}].name", name, msg)
            if name in vol_names:
                errs.duplicate(f"{path}.volumes[{i}].name", name)
            vol_names.add(name)
    names: set[str] = set()
    validate_containers(list(spec.get("containers") or []), f"{path}.containers", errs, names, True)
    validate_containers(
        list(spec.get("initContainers") or []), f"{path}.initContainers", errs, names, False
    )
    for key in ("containers", "initContainers"):
        for i, c in enumerate(spec.get(key) or []):
            for j, m in enumerate(c.get("volumeMounts") or []):
                if m.get("name") and m["name"] not in vol_names:
                    errs.not_found(f"{path}.{key}[{i}].volumeMounts[{j}].name", m["name"])
    rp = spec.get("restartPolicy", "Always")
    if rp not in RESTART_POLICIES:
        errs.not_supported(f"{path}.restartPolicy", rp, RESTART_POLICIES)
    dp = spec.get("dnsPolicy", "ClusterFirst")
    if dp not in DNS_POLICIES:
        errs.not_supported(f"{path}.dnsPolicy", dp, DNS_POLICIES)
    tgps = spec.get("terminationGracePeriodSeconds")
    if tgps is not None and tgps < 0:
        errs.invalid(
            f"{path}.terminationGracePeriodSeconds", tgps, "must be greater than or equal to 0"
        )
    ads = spec.get("activeDeadlineSeconds")
    if ads is not None and ads <= 0:
        errs.invalid(
            f"{path}.activeDeadlineSeconds", ads, "must be between 1 and 2147483647, inclusive"
        )
    node = spec.get("nodeName")
    if node:
        for msg in dns1123_subdomain(node):
            errs.invalid(f"{path}.nodeName", node, msg)
    validate_labels(spec.get("nodeSelector") or {}, f"{path}.nodeSelector", errs)
    for i, t in enumerate(spec.get("tolerations") or []):
        op = t.get("operator", "Equal")
        if op not in ("Equal", "Exists"):
            errs.not_supported(f"{path}.tolerations[{i}].operator", op, ("Equal", "Exists"))
        if op == "Exists" and t.get("value"):
            errs.invalid(
                f"{path}.tolerations[{i}].operator",
                t.get("value"),
                "value must be empty when `operator` is 'Exists'",
            )
        eff = t.get("effect")
        if eff and eff not in TAINT_EFFECTS:
            errs.not_supported(f"{path}.tolerations[{i}].effect", eff, TAINT_EFFECTS)
        if not t.get("key") and op != "Exists":
            errs.invalid(
                f"{path}.tolerations[{i}].operator",
                op,
                'operator must be Exists when `key` is empty, which means "match all values '
                'and all keys"',
            )
    sa = spec.get("serviceAccountName")
    if sa:
        for msg in dns1123_subdomain(sa):
            errs.invalid(f"{path}.serviceAccountName", sa, msg)


def validate_pod(obj: Obj, errs: FieldErrors) -> None:
    validate_pod_spec(obj.get("spec") or {}, "spec", errs)


POD_UPDATE_MSG = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only "
    "additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be "
    "set to 1 if it was previously negative)"
)


def _mutable_masked(spec: Obj) -> Obj:
    out = dict(spec)
    for key in ("containers", "initContainers"):
        out[key] = [{k: v for k, v in c.items() if k != "image"} for c in spec.get(key) or []]
    out.pop("activeDeadlineSeconds", None)
    out.pop("tolerations", None)
    out.pop("terminationGracePeriodSeconds", None)
    out.pop("schedulingGates", None)
    return out


def validate_pod_update(new: Obj, old: Obj, errs: FieldErrors) -> None:
    ns, os_ = new.get("spec") or {}, old.get("spec") or {}
    for key in ("containers", "initContainers"):
        if len(ns.get(key) or []) != len(os_.get(key) or []):
            errs.forbidden("spec", POD_UPDATE_MSG)
            return
    if _mutable_masked(ns) != _mutable_masked(os_):
        errs.forbidden("spec", POD_UPDATE_MSG)
        return
    old_tol = list(os_.get("tolerations") or [])
    new_tol = list(ns.get("tolerations") or [])
    for t in old_tol:
        if t not in new_tol:
            errs.forbidden(
                "spec.tolerations",
                "existing toleration can not be modified except its tolerationSeconds",
            )
            break
    old_ads = os_.get("activeDeadlineSeconds")
    new_ads = ns.get("activeDeadlineSeconds")
    if old_ads is not None and (new_ads is None or new_ads > old_ads):
        errs.invalid(
            "spec.activeDeadlineSeconds",
            new_ads,
            "must be less than or equal to previous value",
        )
    for i, g in enumerate(ns.get("schedulingGates") or []):
        if g not in (os_.get("schedulingGates") or []):
            errs.forbidden(
                f"spec.schedulingGates[{i}]",
                "only deletion is allowed, but found new scheduling gate",
            )


# ---------------------------------------------------------------------------
# Services

SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")


def validate_service(obj: Obj, errs: FieldErrors) -> None:
    spec = obj.get("spec") or {}
    typ = spec.get("type", "ClusterIP")
    if typ not in SERVICE_TYPES:
        errs.not_supported("spec.type", typ, SERVICE_TYPES)
    ports = spec.get("ports") or []
    if typ != "ExternalName" and not ports and spec.get("clusterIP") != "None":
        errs.required("spec.ports")
    if typ == "ExternalName" and not spec.get("externalName"):
        errs.required("spec.externalName")
    names: set[str] = set()
    seen: set[tuple[int, str]] = set()
    for i, p in enumerate(ports):
        base = f"spec.ports[{i}]"
        name = p.get("name", "")
        if len(ports) > 1 and not name:
            errs.required(f"{base}.name")
        elif name:
            for msg in dns1123_label(name):
                errs.invalid(f"{base}.name", name, msg)
            if name in names:
                errs.duplicate(f"{base}.name", name)
            names.add(name)
        if "port" not in p:
            errs.required(f"{base}.port")
        else:
            _port_range(p["port"], f"{base}.port", errs)
        proto = p.get("protocol", "TCP")
        if proto not in PROTOCOLS:
            errs.not_supported(f"{base}.protocol", proto, PROTOCOLS)
        key = (p.get("port", 0), proto)
        if key in seen:
            errs.duplicate(f"{base}", {"port": key[0], "protocol": key[1]})
        seen.add(key)
        tp = p.get("targetPort")
        if isinstance(tp, int):
            _port_range(tp, f"{base}.targetPort", errs)
        elif isinstance(tp, str) and (
            len(tp) > 15 or not re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", tp)
        ):
            errs.invalid(f"{base}.targetPort", tp, "must contain at least one letter (a-z)")
        if typ in ("ClusterIP", "ExternalName") and p.get("nodePort"):
            errs.forbidden(f"{base}.nodePort", "may not be used when `type` is 'ClusterIP'")
    ip = spec.get("clusterIP")
    if ip and ip != "None":
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            errs.invalid(
                "spec.clusterIPs[0]",
                ip,
                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
            )
    sa = spec.get("sessionAffinity")
    if sa is not None and sa not in ("ClientIP", "None"):
        errs.not_supported("spec.sessionAffinity", sa, ("ClientIP", "None"))
    validate_labels(spec.get("selector") or {}, "spec.selector", errs)


def validate_service_update(new: Obj, old: Obj, errs: FieldErrors) -> None:
    nip = (new.get("spec") or {}).get("clusterIP")
    oip = (old.get("spec") or {}).get("clusterIP")
    if oip and nip != oip and (old.get("spec") or {}).get("type") != "ExternalName":
        errs.invalid("spec.clusterIPs[0]", nip or "", "may not change once set")


# ---------------------------------------------------------------------------
# ReplicaSets


def validate_replicaset(obj: Obj, errs: FieldErrors) -> None:
    spec = obj.get("spec") or {}
    replicas = spec.get("replicas", 1)
    if replicas < 0:
        errs.invalid("spec.replicas", replicas, "must be greater than or equal to 0")
    mrs = spec.get("minReadySeconds", 0)
    if mrs < 0:
        errs.invalid("spec.minReadySeconds", mrs, "must be greater than or equal to 0")
    selector = spec.get("selector")
    if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        if selector is None:
            errs.required("spec.selector")
        else:
            errs.invalid("spec.selector", selector, "empty selector is invalid for deployment")
        sel = None
    else:
        try:
            sel = selector_from_match(selector)
        except SelectorError as e:
            errs.invalid("spec.selector", selector, str(e))
            sel = None
        validate_labels(selector.get("matchLabels") or {}, "spec.selector.matchLabels", errs)
    template = spec.get("template")
    if template is None:
        errs.required("spec.template")
        return
    labels = (template.get("metadata") or {}).get("labels") or {}
    validate_labels(labels, "spec.template.metadata.labels", errs)
    if sel is not None and not sel.matches(labels):
        errs.invalid(
            "spec.template.metadata.labels",
            labels,
            "`selector` does not match template `labels`",
        )
    tspec = template.get("spec") or {}
    validate_pod_spec(tspec, "spec.template.spec", errs)
    rp = tspec.get("restartPolicy", "Always")
    if rp != "Always" and rp in RESTART_POLICIES:
        errs.not_supported("spec.template.spec.restartPolicy", rp, ("Always",))
    if tspec.get("activeDeadlineSeconds") is not None:
        errs.forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            "activeDeadlineSeconds in ReplicaSet is not Supported",
        )


def validate_replicaset_update(new: Obj, old: Obj, errs: FieldErrors) -> None:
    if (new.get("spec") or {}).get("selector") != (old.get("spec") or {}).get("selector"):
        errs.invalid("spec.selector", (new.get("spec") or {}).get("selector"), "field is immutable")


def validate_replicaset_status(obj: Obj, errs: FieldErrors) -> None:
    st = obj.get("status") or {}
    for f in (
        "replicas",
        "fullyLabeledReplicas",
        "readyReplicas",
        "availableReplicas",
        "observedGeneration",
    ):
        v = st.get(f, 0)
        if v < 0:
            errs.invalid(f"status.{f}", v, "must be greater than or equal to 0")


# ---------------------------------------------------------------------------
# Others


def validate_configmap(obj: Obj, errs: FieldErrors) -> None:
    total = 0
    data = obj.get("data") or {}
    binary = obj.get("binaryData") or {}
    for path, m in (("data", data), ("binaryData", binary)):
        for k, v in m.items():
            if len(k) > 253 or not _CONFIG_KEY.match(k):
                errs.invalid(
                    f"{path}[{k}]",
                    k,
                    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' "
                    "(e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation "
                    "is '[-._a-zA-Z0-9]+')",
                )
            total += len(v)
    for k in data:
        if k in binary:
            errs.invalid(f"data[{k}]", k, "duplicate of key present in binaryData")
    if total > 1024 * 1024:
        errs.too_long("", 1024 * 1024)


def validate_configmap_update(new: Obj, old: Obj, errs: FieldErrors) -> None:
    if old.get("immutable"):
        if not new.get("immutable"):
            errs.forbidden("immutable", "field is immutable when `immutable` is set")
        if new.get("data") != old.get("data") or new.get("binaryData") != old.get("binaryData"):
            errs.forbidden("data", "field is immutable when `immutable` is set")


def validate_event(obj: Obj, errs: FieldErrors) -> None:
    ns = (obj.get("metadata") or {}).get("namespace", "")
    inv = obj.get("involvedObject") or {}
    ins = inv.get("namespace", "")
    if ins and ns and ins != ns:
        errs.invalid("involvedObject.namespace", ins, "does not match event.namespace")
    typ = obj.get("type")
    if typ not in (None, "", "Normal", "Warning"):
        errs.not_supported("type", typ, ("Normal", "Warning"))


def validate_node(obj: Obj, errs: FieldErrors) -> None:
    for i, t in enumerate((obj.get("spec") or {}).get("taints") or []):
        eff = t.get("effect", "")
        if not eff:
            errs.required(f"spec.taints[{i}].effect")
        elif eff not in TAINT_EFFECTS:
            errs.not_supported(f"spec.taints[{i}].effect", eff, TAINT_EFFECTS)
        key = t.get("key", "")
        for msg in _qualified_name(key) if key else ["name part must be non-empty"]:
            errs.invalid(f"spec.taints[{i}].key", key, msg)


def validate_namespace_update(new: Obj, old: Obj, errs: FieldErrors) -> None:
    for i, f in enumerate((new.get("spec") or {}).get("finalizers") or []):
        if "/" not in f and f != "kubernetes":
            errs.invalid(
                f"spec.finalizers[{i}]",
                f,
                "name is neither a standard finalizer name nor is it fully qualified",
            )


def validate_policy_rules(obj: Obj, namespaced: bool, errs: FieldErrors) -> None:
    for i, r in enumerate(obj.get("rules") or []):
        base = f"rules[{i}]"
        if not r.get("verbs"):
            errs.required(f"{base}.verbs", "verbs must contain at least one value")
        if r.get("nonResourceURLs"):
            if namespaced:
                errs.invalid(
                    f"{base}.nonResourceURLs",
                    r["nonResourceURLs"],
                    "namespaced rules cannot apply to non-resource URLs",
                )
            if r.get("apiGroups") or r.get("resources") or r.get("resourceNames"):
                errs.invalid(
                    f"{base}.nonResourceURLs",
                    r["nonResourceURLs"],
                    "rules cannot apply to both regular resources and non-resource URLs",
                )
            continue
        if not r.get("apiGroups"):
            errs.required(f"{base}.apiGroups", "resource rules must supply at least one api group")
        if not r.get("resources"):
            errs.required(f"{base}.resources", "resource rules must supply at least one resource")


def validate_role(obj: Obj, errs: FieldErrors) -> None:
    validate_policy_rules(obj, True, errs)


def validate_cluster_role(obj: Obj, errs: FieldErrors) -> None:
    validate_policy_rules(obj, False, errs)


def validate_binding(obj: Obj, namespaced: bool, errs: FieldErrors) -> None:
    ref = obj.get("roleRef") or {}
    if ref.get("apiGroup", RBAC) != RBAC:
        errs.not_supported("roleRef.apiGroup", ref.get("apiGroup"), (RBAC,))
    kinds = ("Role", "ClusterRole") if namespaced else ("ClusterRole",)
    if ref.get("kind") not in kinds:
        errs.not_supported("roleRef.kind", ref.get("kind", ""), kinds)
    if not ref.get("name"):
        errs.required("roleRef.name")
    else:
        for msg in path_segment(ref["name"]):
            errs.invalid("roleRef.name", ref["name"], msg)
    for i, s in enumerate(obj.get("subjects") or []):
        base = f"subjects[{i}]"
        kind = s.get("kind", "")
        name = s.get("name", "")
        if not name:
            errs.required(f"{base}.name")
        if kind == "ServiceAccount":
            if s.get("apiGroup"):
                errs.not_supported(f"{base}.apiGroup", s["apiGroup"], ("",))
            if name:
                for msg in dns1123_subdomain(name):
                    errs.invalid(f"{base}.name", name, msg)
            if not namespaced and not s.get("namespace"):
                errs.required(f"{base}.namespace")
        elif kind in ("User", "Group"):
            if s.get("apiGroup") != RBAC:
                errs.not_supported(f"{base}.apiGroup", s.get("apiGroup", ""), (RBAC,))
        else:
            errs.not_supported(f"{base}.kind", kind, ("ServiceAccount", "User", "Group"))


def validate_binding_update(new: Obj, old: Obj, errs: FieldErrors) -> None:
    if new.get("roleRef") != old.get("roleRef"):
        errs.invalid("roleRef", new.get("roleRef"), "cannot change roleRef")


def validate_create(kind: str, obj: Obj, namespaced: bool) -> FieldErrors:
    errs = FieldErrors()
    validate_meta(kind, obj, namespaced, errs)
    _validate_body(kind, obj, errs)
    return errs


def _validate_body(kind: str, obj: Obj, errs: FieldErrors) -> None:
    if kind == "Pod":
        validate_pod(obj, errs)
    elif kind == "Service":
        validate_service(obj, errs)
    elif kind == "ReplicaSet":
        validate_replicaset(obj, errs)
        validate_replicaset_status(obj, errs)
    elif kind == "ConfigMap":
        validate_configmap(obj, errs)
    elif kind == "Event":
        validate_event(obj, errs)
    elif kind == "Node":
        validate_node(obj, errs)
    elif kind == "Role":
        validate_role(obj, errs)
    elif kind == "ClusterRole":
        validate_cluster_role(obj, errs)
    elif kind == "RoleBinding":
        validate_binding(obj, True, errs)
    elif kind == "ClusterRoleBinding":
        validate_binding(obj, False, errs)


def validate_update(kind: str, new: Obj, old: Obj, namespaced: bool) -> FieldErrors:
    errs = FieldErrors()
    validate_meta(kind, new, namespaced, errs)
    nm, om = new.get("metadata") or {}, old.get("metadata") or {}
    if nm.get("uid") != om.get("uid"):
        errs.invalid("metadata.uid", nm.get("uid", ""), "field is immutable")
    if nm.get("creationTimestamp") != om.get("creationTimestamp"):
        errs.invalid(
            "metadata.creationTimestamp", nm.get("creationTimestamp"), "field is immutable"
        )
    if om.get("deletionTimestamp") and nm.get("deletionTimestamp") != om.get("deletionTimestamp"):
        errs.invalid(
            "metadata.deletionTimestamp",
            nm.get("deletionTimestamp"),
            "field is immutable; may only be changed via deletion",
        )
    if om.get("deletionTimestamp"):
        added = set(nm.get("finalizers") or []) - set(om.get("finalizers") or [])
        if added:
            errs.forbidden(
                "metadata.finalizers",
                "no new finalizers can be added if the object is being deleted, found new "
                f"finalizers {sorted(added)!r}",
            )
    _validate_body(kind, new, errs)
    if kind == "Pod":
        validate_pod_update(new, old, errs)
    elif kind == "Service":
        validate_service_update(new, old, errs)
    elif kind == "ReplicaSet":
        validate_replicaset_update(new, old, errs)
    elif kind == "ConfigMap":
        validate_configmap_update(new, old, errs)
    elif kind == "Namespace":
        validate_namespace_update(new, old, errs)
    elif kind in ("RoleBinding", "ClusterRoleBinding"):
        validate_binding_update(new, old, errs)
    return errs


def any_map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
