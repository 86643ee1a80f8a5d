"""Kubernetes API errors as `Status` objects, with kube-apiserver's messages.

Theory of operation
-------------------
Every failure of a request is an `ApiError` carrying the ``Status`` body
kube-apiserver would send (``kind: Status``, ``apiVersion: v1``, ``status:
Failure``, ``message``, ``reason``, ``details``, ``code``).  The core raises
them anywhere below `ApiServer.handle`, which turns them into the response;
nothing else escapes as a 4xx.  The constructors below reproduce the
message forms of k8s.io/apimachinery's ``errors`` package, which clients
print verbatim (``Error from server (NotFound): pods "x" not found``).

``resource`` arguments are qualified resources as kube prints them:
``pods`` for the core group, ``replicasets.apps`` otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from attrs import frozen


@frozen
class Cause:
    """One ``details.causes`` entry (a field validation error)."""

    reason: str
    message: str
    field: str

    def to_json(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.message, "field": self.field}


class ApiError(Exception):
    """A request failure, answered with its ``Status``."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        name: str = "",
        group: str = "",
        kind: str = "",
        causes: Sequence[Cause] = (),
        retry_after: int = 0,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.name = name
        self.group = group
        self.kind = kind
        self.causes = tuple(causes)
        self.retry_after = retry_after

    def status(self) -> dict[str, Any]:
        details: dict[str, Any] = {}
        if self.name:
            details["name"] = self.name
        if self.group:
            details["group"] = self.group
        if self.kind:
            details["kind"] = self.kind
        if self.causes:
            details["causes"] = [c.to_json() for c in self.causes]
        if self.retry_after:
            details["retryAfterSeconds"] = self.retry_after
        out: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if details:
            out["details"] = details
        out["code"] = self.code
        return out

    def __repr__(self) -> str:
        return f"ApiError({self.code}, {self.reason!r}, {self.message!r})"


def split_resource(resource: str) -> tuple[str, str]:
    """'replicasets.apps' -> ('replicasets', 'apps'); 'pods' -> ('pods', '')."""
    plural, _, group = resource.partition(".")
    return plural, group


def not_found(resource: str, name: str) -> ApiError:
    plural, group = split_resource(resource)
    return ApiError(
        404, "NotFound", f'{resource} "{name}" not found', name=name, group=group, kind=plural
    )


def already_exists(resource: str, name: str) -> ApiError:
    plural, group = split_resource(resource)
    return ApiError(
        409,
        "AlreadyExists",
        f'{resource} "{name}" already exists',
        name=name,
        group=group,
        kind=plural,
    )


CONFLICT_MODIFIED = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


def conflict(resource: str, name: str, why: str = CONFLICT_MODIFIED) -> ApiError:
    plural, group = split_resource(resource)
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {resource} "{name}": {why}',
        name=name,
        group=group,
        kind=plural,
    )


def invalid(kind: str, group: str, name: str, causes: Sequence[Cause]) -> ApiError:
    """kube's NewInvalid: 'Pod "x" is invalid: <field>: <message>' (several in [...])."""
    parts = [f"{c.field}: {c.message}" if c.field else c.message for c in causes]
    qualified = f"{kind}.{group}" if group else kind
    if len(parts) == 1:
        msg = f'{qualified} "{name}" is invalid: {parts[0]}'
    else:
        msg = f'{qualified} "{name}" is invalid: [{", ".join(parts)}]'
    return ApiError(422, "Invalid", msg, name=name, group=group, kind=kind, causes=causes)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def forbidden(resource: str, name: str, why: str) -> ApiError:
    """kube's NewForbidden: '<resource> "<name>" is forbidden: <why>'."""
    plural, group = split_resource(resource)
    if not resource:
        msg = f"forbidden: {why}"
    elif name:
        msg = f'{resource} "{name}" is forbidden: {why}'
    else:
        msg = f"{resource} is forbidden: {why}"
    return ApiError(403, "Forbidden", msg, name=name, group=group, kind=plural)


def unauthorized(message: str = "Unauthorized") -> ApiError:
    return ApiError(401, "Unauthorized", message)


def method_not_allowed() -> ApiError:
    return ApiError(
        405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
    )


def path_not_found() -> ApiError:
    """The 404 for a path that names no resource (kube's default 404 Status)."""
    return ApiError(404, "NotFound", "the server could not find the requested resource")


def expired(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def gone(message: str) -> ApiError:
    return ApiError(410, "Gone", message)


def not_acceptable(accepted: Sequence[str]) -> ApiError:
    return ApiError(
        406,
        "NotAcceptable",
        "only the following media types are accepted: " + ", ".join(accepted),
    )


def unsupported_media_type(content_type: str, accepted: Sequence[str]) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: {', '.join(accepted)}"
        if content_type
        else "the body of the request was in an unknown format",
    )


def too_large(limit: int) -> ApiError:
    return ApiError(413, "RequestEntityTooLarge", f"Request entity too large: limit is {limit}")


def timeout(message: str) -> ApiError:
    return ApiError(504, "Timeout", message)


def success_status(code: int = 200, details: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A ``Status`` with ``status: Success`` (binding, deletecollection of some kinds)."""
    out: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
    }
    if details:
        out["details"] = dict(details)
    out["code"] = code
    return out
