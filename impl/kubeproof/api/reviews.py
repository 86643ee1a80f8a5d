"""Reviews: authorization.k8s.io's SelfSubjectAccessReview, SelfSubjectRulesReview and
SubjectAccessReview, and authentication.k8s.io's SelfSubjectReview.

Theory of operation
-------------------
A review is created (201) and never stored: the server asks its authorizer
about the attributes in the spec, for the requesting user (self reviews) or
for the user and groups in the spec (SubjectAccessReview, which itself needs
``create`` on subjectaccessreviews), and echoes the spec with a status:
``allowed`` and kube's RBAC reason, or for a rules review the resource and
non-resource rules that apply in the namespace.  A SelfSubjectReview (what
``kubectl auth whoami`` sends) answers with the requesting user's name, uid
and groups in ``status.userInfo``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .body import (
    read_object,
    warning_headers,
)
from .common import (
    JSON_HEADERS,
)
from .meta import FieldErrors
from .paths import Target
from .rbac import MASTERS, Attributes, subject_rules_review
from .types import ApiRequest, ApiResponse, UserInfo

if TYPE_CHECKING:
    from .server import ApiServer

Obj = dict[str, Any]


def handle_review(api: ApiServer, t: Target, req: ApiRequest, user: UserInfo) -> ApiResponse:
    api.check_accept(req)
    fv = api.field_validation(req)
    obj, warnings = read_object(
        req.body,
        req.content_type,
        limit=api.max_request_bytes,
        api_version=t.info.api_version,
        kind=t.info.kind,
        field_validation=fv,
    )
    kind = t.info.kind
    if kind == "SelfSubjectReview":
        info: Obj = {"username": user.name, "groups": list(user.groups)}
        if user.uid:
            info["uid"] = user.uid
        out = {
            "kind": kind,
            "apiVersion": t.info.api_version,
            "metadata": {"creationTimestamp": None},
            "status": {"userInfo": info},
        }
        return ApiResponse(201, out, (*JSON_HEADERS, *warning_headers(warnings)))
    spec = obj.get("spec") or {}
    if kind == "SelfSubjectRulesReview":
        ns = str(spec.get("namespace", ""))
        res, nonres = subject_rules_review(api.rbac.state(), user, ns)
        if MASTERS in user.groups:
            res.insert(0, {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]})
            nonres.insert(0, {"verbs": ["*"], "nonResourceURLs": ["*"]})
        out = {
            "kind": kind,
            "apiVersion": t.info.api_version,
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": {"resourceRules": res, "nonResourceRules": nonres, "incomplete": False},
        }
        return ApiResponse(201, out, (*JSON_HEADERS, *warning_headers(warnings)))
    subject = user
    if kind == "SubjectAccessReview":
        sname = str(spec.get("user", ""))
        sgroups = tuple(str(g) for g in spec.get("groups") or [])
        if not sname and not sgroups:
            errs = FieldErrors()
            errs.invalid("spec.user", sname, "at least one of user or group must be specified")
            errs.raise_if_any(kind, t.info.group, "")
        subject = UserInfo(sname, sgroups, str(spec.get("uid", "")))
    ra = spec.get("resourceAttributes")
    na = spec.get("nonResourceAttributes")
    if (ra is None) == (na is None):
        errs = FieldErrors()
        errs.invalid(
            "spec.resourceAttributes",
            ra,
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        )
        errs.raise_if_any(kind, t.info.group, "")
    if ra is not None:
        attrs = Attributes(
            subject,
            str(ra.get("verb", "")),
            True,
            namespace=str(ra.get("namespace", "")),
            api_group=str(ra.get("group", "")),
            api_version=str(ra.get("version", "")),
            resource=str(ra.get("resource", "")),
            subresource=str(ra.get("subresource", "")),
            name=str(ra.get("name", "")),
        )
    else:
        assert na is not None
        attrs = Attributes(subject, str(na.get("verb", "")), False, path=str(na.get("path", "")))
    decision = api.authorizer.authorize(attrs)
    status: dict[str, Any] = {"allowed": decision.allowed}
    if decision.reason:
        status["reason"] = decision.reason
    out = {
        "kind": kind,
        "apiVersion": t.info.api_version,
        "metadata": {"creationTimestamp": None},
        "spec": spec,
        "status": status,
    }
    return ApiResponse(201, out, (*JSON_HEADERS, *warning_headers(warnings)))
