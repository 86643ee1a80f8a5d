"""Discovery documents, legacy and aggregated, built from the resource registry.

Theory of operation
-------------------
Clients learn what the server serves from two forms of discovery, both
derived here from `kubeproof.api.RESOURCES` (so a resource is declared once):

| path                  | legacy (``Accept: application/json``) | aggregated v2 (Accept asks for it)   |
| --------------------- | ------------------------------------- | ------------------------------------ |
| ``/api``              | ``APIVersions``                       | ``APIGroupDiscoveryList`` (core)     |
| ``/apis``             | ``APIGroupList``                      | ``APIGroupDiscoveryList`` (groups)   |
| ``/apis/G``           | ``APIGroup``                          | (legacy only)                        |
| ``/api/v1``, ``/apis/G/V`` | ``APIResourceList``              | (legacy only)                        |

kubectl 1.32 sends ``Accept: application/json;g=apidiscovery.k8s.io;v=v2;
as=APIGroupDiscoveryList,...;v=v2beta1;...,application/json`` and reads
the answer as aggregated only if its Content-Type is exactly the aggregated
media type (else it takes it for legacy and finds no resources).  The
Python client asks for plain JSON and reads legacy.  `negotiate` walks the
Accept list in order and picks the first form it can serve.
"""

from __future__ import annotations

from typing import Any

from kubeproof.api import RESOURCES

__all__ = [
    "AGGREGATED_V2",
    "AGGREGATED_V2BETA1",
    "aggregated",
    "api_group",
    "api_group_list",
    "api_resource_list",
    "api_versions",
    "negotiate",
]

AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGGREGATED_V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"


def _params(media: str) -> tuple[str, dict[str, str]]:
    parts = [p.strip() for p in media.split(";")]
    params: dict[str, str] = {}
    for p in parts[1:]:
        k, _, v = p.partition("=")
        params[k.strip().lower()] = v.strip()
    return parts[0].lower(), params


def negotiate(accept: str | None) -> str | None:
    """The aggregated media type to answer with (v2 or v2beta1), or None for
    legacy JSON, following the client's order of preference."""
    if not accept:
        return None
    for media in accept.split(","):
        kind, params = _params(media)
        if kind not in ("application/json", "*/*", "application/*"):
            continue
        if params.get("as") == "APIGroupDiscoveryList" and params.get("g") == "apidiscovery.k8s.io":
            if params.get("v") == "v2":
                return AGGREGATED_V2
            if params.get("v") == "v2beta1":
                return AGGREGATED_V2BETA1
            continue
        if "as" in params:
            continue  # some other conversion (a Table...) that discovery does not offer
        return None
    return None


def _group_versions() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in RESOURCES:
        versions = out.setdefault(r.group, [])
        if r.version not in versions:
            versions.append(r.version)
    return out


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": _group_versions().get("", ["v1"]),
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _group_doc(group: str, versions: list[str]) -> dict[str, Any]:
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}


def api_group_list() -> dict[str, Any]:
    groups = [_group_doc(g, vs) for g, vs in _group_versions().items() if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(group: str) -> dict[str, Any] | None:
    versions = _group_versions().get(group)
    if not group or versions is None:
        return None
    doc = _group_doc(group, versions)
    return {"kind": "APIGroup", "apiVersion": "v1", **doc}


def api_resource_list(group: str, version: str) -> dict[str, Any] | None:
    """``APIResourceList`` of one group-version, or None if it is not served."""
    resources: list[dict[str, Any]] = []
    for r in RESOURCES:
        if r.group != group or r.version != version:
            continue
        entry: dict[str, Any] = {
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": list(r.verbs),
        }
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        resources.append(entry)
        for sub in r.subresources:
            s: dict[str, Any] = {
                "name": f"{r.plural}/{sub.name}",
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": sub.kind,
                "verbs": list(sub.verbs),
            }
            if (sub.group, sub.version) != (r.group, r.version):
                s["group"] = sub.group
                s["version"] = sub.version
            resources.append(s)
    if not resources:
        return None
    gv = f"{group}/{version}" if group else version
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": resources,
    }


def _discovery_resource(r: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": "Namespaced" if r.namespaced else "Cluster",
        "singularResource": r.singular,
        "verbs": list(r.verbs),
    }
    if r.short_names:
        entry["shortNames"] = list(r.short_names)
    if r.categories:
        entry["categories"] = list(r.categories)
    if r.subresources:
        entry["subresources"] = [
            {
                "subresource": s.name,
                "responseKind": {"group": s.group, "version": s.version, "kind": s.kind},
                "verbs": list(s.verbs),
            }
            for s in r.subresources
        ]
    return entry


def aggregated(core: bool, media_type: str) -> dict[str, Any]:
    """The ``APIGroupDiscoveryList`` for ``/api`` (core) or ``/apis``."""
    items: list[dict[str, Any]] = []
    for group, versions in _group_versions().items():
        if (group == "") != core:
            continue
        version_docs = [
            {
                "version": v,
                "resources": [
                    _discovery_resource(r) for r in RESOURCES if r.group == group and r.version == v
                ],
                "freshness": "Current",
            }
            for v in versions
        ]
        meta: dict[str, Any] = {"creationTimestamp": None}
        if group:
            meta["name"] = group
        items.append({"metadata": meta, "versions": version_docs})
    api_version = (
        "apidiscovery.k8s.io/v2beta1"
        if media_type == AGGREGATED_V2BETA1
        else ("apidiscovery.k8s.io/v2")
    )
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": api_version,
        "metadata": {},
        "items": items,
    }
