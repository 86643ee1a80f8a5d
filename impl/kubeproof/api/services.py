"""Services: cluster IP and node port allocation.

Theory of operation
-------------------
kube-apiserver keeps allocation bitmaps; here the store's services are the
truth.  `allocate_service` reads every service at one revision R, picks the
lowest free address of the service CIDR (``.1`` is the ``kubernetes``
service's) and the lowest free node port of 30000-32767 for NodePort and
LoadBalancer services, checks requested ones (in range, not taken), and
returns a compare ``mod_revision < R + 1`` over the whole services prefix
for the create transaction: if any service was written since R, the create
fails and is retried with a fresh read, so two services never share an
address.  An update keeps the addresses and ports the service had.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from kubeproof.mvcc import (
    Compare,
    CompareResult,
    CompareTarget,
)

from .errors import (
    ApiError,
)
from .meta import FieldErrors
from .resources import by_plural
from .storage import collection_prefix, decode, prefix_end

if TYPE_CHECKING:
    from .server import ApiServer

Obj = dict[str, Any]

NODE_PORT_RANGE = (30000, 32767)
"""kube-apiserver's default --service-node-port-range."""


def allocate_service(api: ApiServer, obj: Obj, old: Obj | None) -> tuple[Compare, ...]:
    """Fills spec.clusterIP(s) and node ports; returns the compare that makes
    the allocation safe (no service written since the allocation read)."""
    spec = obj.setdefault("spec", {})
    typ = spec.get("type", "ClusterIP")
    info = by_plural("services")
    assert info is not None
    prefix = collection_prefix(info, "")
    resp = api.objects.range(prefix, prefix_end(prefix))
    me = obj["metadata"]
    used_ips: set[str] = set()
    used_ports: set[int] = set()
    for kv in resp.kvs:
        other = decode(kv)
        om = other.get("metadata") or {}
        if om.get("name") == me.get("name") and om.get("namespace") == me.get("namespace"):
            continue
        ospec = other.get("spec") or {}
        if ospec.get("clusterIP") and ospec.get("clusterIP") != "None":
            used_ips.add(ospec["clusterIP"])
        for p in ospec.get("ports") or []:
            if p.get("nodePort"):
                used_ports.add(int(p["nodePort"]))
    errs = FieldErrors()
    if typ == "ExternalName":
        spec.pop("clusterIP", None)
        spec.pop("clusterIPs", None)
    elif old is not None and (old.get("spec") or {}).get("clusterIP"):
        spec.setdefault("clusterIP", old["spec"]["clusterIP"])
        spec.setdefault(
            "clusterIPs", list((old.get("spec") or {}).get("clusterIPs") or [spec["clusterIP"]])
        )
    else:
        want = spec.get("clusterIP")
        if want == "None":
            spec["clusterIPs"] = ["None"]
        elif want:
            try:
                ip = ipaddress.ip_address(want)
            except ValueError:
                ip = None
            if ip is not None and ip not in api.service_net:
                errs.invalid(
                    "spec.clusterIPs",
                    [want],
                    f"failed to allocate IP {want}: the provided IP ({want}) is not in the "
                    f"valid range. The range of valid IPs is {api.service_net}",
                )
            elif want in used_ips:
                errs.invalid(
                    "spec.clusterIPs",
                    [want],
                    f"failed to allocate IP {want}: provided IP is already allocated",
                )
            spec["clusterIPs"] = [want]
        else:
            ip_str = None
            for host in candidate_ips(api):
                if host not in used_ips:
                    ip_str = host
                    break
            if ip_str is None:
                raise ApiError(
                    500,
                    "InternalError",
                    "Internal error occurred: failed to allocate a serviceIP: range is full",
                )
            spec["clusterIP"] = ip_str
            spec["clusterIPs"] = [ip_str]
        if spec.get("clusterIP") != "None":
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
    if typ in ("NodePort", "LoadBalancer"):
        old_ports = {
            (p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
            for p in ((old or {}).get("spec") or {}).get("ports") or []
        }
        spec.setdefault("externalTrafficPolicy", "Cluster")
        for p in spec.get("ports") or []:
            if p.get("nodePort"):
                np = int(p["nodePort"])
                if not NODE_PORT_RANGE[0] <= np <= NODE_PORT_RANGE[1]:
                    errs.invalid(
                        "spec.ports[0].nodePort",
                        np,
                        "provided port is not in the valid range. The range of valid ports is "
                        f"{NODE_PORT_RANGE[0]}-{NODE_PORT_RANGE[1]}",
                    )
                elif (
                    np in used_ports
                    and old_ports.get((p.get("port"), p.get("protocol", "TCP"))) != np
                ):
                    errs.invalid("spec.ports[0].nodePort", np, "provided port is already allocated")
                used_ports.add(np)
                continue
            prev = old_ports.get((p.get("port"), p.get("protocol", "TCP")))
            if prev:
                p["nodePort"] = prev
                continue
            for cand in range(NODE_PORT_RANGE[0], NODE_PORT_RANGE[1] + 1):
                if cand not in used_ports:
                    p["nodePort"] = cand
                    used_ports.add(cand)
                    break
    errs.raise_if_any("Service", "", me.get("name", ""))
    return (
        Compare(
            key=prefix,
            range_end=prefix_end(prefix),
            target=CompareTarget.MOD,
            result=CompareResult.LESS,
            mod_revision=resp.header.revision + 1,
        ),
    )


def candidate_ips(api: ApiServer) -> Any:
    net = api.service_net
    first = int(net.network_address) + 1
    last = int(net.broadcast_address) - 1
    for n in range(first, last + 1):
        yield str(ipaddress.ip_address(n))
