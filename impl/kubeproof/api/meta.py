"""Object metadata helpers: name rules, field errors, timestamps.

Theory of operation
-------------------
Validation collects `FieldErrors` the way apimachinery's ``field.ErrorList``
does (``metadata.name: Invalid value: "X": <why>``), and the caller turns
the list into one 422 ``Invalid`` Status.  The name rules are kube's: most
objects need an RFC 1123 subdomain, namespaces an RFC 1123 label, services
an RFC 1035 label, RBAC objects only a valid path segment.  Timestamps are
RFC 3339 strings in UTC with second precision, as kube writes them; the
only arithmetic needed (a graceful deletion's deadline, a Table's AGE) is
done here on strings the caller's injected clock produced.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from .errors import ApiError, Cause, invalid

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)


def dns1123_subdomain(value: str) -> list[str]:
    out = []
    if len(value) > 253:
        out.append("must be no more than 253 characters")
    if not _DNS1123_SUBDOMAIN.match(value):
        out.append(SUBDOMAIN_MSG)
    return out


def dns1123_label(value: str) -> list[str]:
    out = []
    if len(value) > 63:
        out.append("must be no more than 63 characters")
    if not _DNS1123_LABEL.match(value):
        out.append(LABEL_MSG)
    return out


def dns1035_label(value: str) -> list[str]:
    out = []
    if len(value) > 63:
        out.append("must be no more than 63 characters")
    if not _DNS1035_LABEL.match(value):
        out.append(DNS1035_MSG)
    return out


def path_segment(value: str) -> list[str]:
    """kube's ValidatePathSegmentName (RBAC object names)."""
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    out = []
    for bad in ("/", "%"):
        if bad in value:
            out.append(f"may not contain '{bad}'")
    return out


NameRule = Callable[[str], list[str]]


def go_repr(value: Any) -> str:
    """How apimachinery prints a bad value in 'Invalid value: ...'."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if value is None:
        return "null"
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


class FieldErrors:
    """An apimachinery field.ErrorList under construction."""

    def __init__(self) -> None:
        self.causes: list[Cause] = []

    def __bool__(self) -> bool:
        return bool(self.causes)

    def required(self, path: str, detail: str = "") -> None:
        msg = "Required value" + (f": {detail}" if detail else "")
        self.causes.append(Cause("FieldValueRequired", msg, path))

    def invalid(self, path: str, value: Any, detail: str) -> None:
        msg = f"Invalid value: {go_repr(value)}" + (f": {detail}" if detail else "")
        self.causes.append(Cause("FieldValueInvalid", msg, path))

    def not_supported(self, path: str, value: Any, supported: tuple[str, ...]) -> None:
        vals = ", ".join(json.dumps(s) for s in supported)
        self.causes.append(
            Cause(
                "FieldValueNotSupported",
                f"Unsupported value: {go_repr(value)}: supported values: {vals}",
                path,
            )
        )

    def forbidden(self, path: str, detail: str) -> None:
        self.causes.append(Cause("FieldValueForbidden", f"Forbidden: {detail}", path))

    def duplicate(self, path: str, value: Any) -> None:
        self.causes.append(Cause("FieldValueDuplicate", f"Duplicate value: {go_repr(value)}", path))

    def not_found(self, path: str, value: Any) -> None:
        self.causes.append(Cause("FieldValueNotFound", f"Not found: {go_repr(value)}", path))

    def too_long(self, path: str, limit: int) -> None:
        self.causes.append(
            Cause("FieldValueTooLong", f"Too long: must have at most {limit} bytes", path)
        )

    def raise_if_any(self, kind: str, group: str, name: str) -> None:
        if self.causes:
            raise self.error(kind, group, name)

    def error(self, kind: str, group: str, name: str) -> ApiError:
        return invalid(kind, group, name, self.causes)


# ---------------------------------------------------------------------------
# Time


def parse_time(text: str) -> datetime:
    """RFC 3339 (kube's format, 'Z' or an offset) -> aware datetime; ValueError if not one."""
    t = text.strip()
    if t.endswith("Z"):
        t = t[:-1] + "+00:00"
    dt = datetime.fromisoformat(t)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt


def format_time(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def add_seconds(ts: str, seconds: int) -> str:
    return format_time(parse_time(ts) + timedelta(seconds=seconds))


def seconds_between(earlier: str, later: str) -> float:
    return (parse_time(later) - parse_time(earlier)).total_seconds()


def human_duration(seconds: float) -> str:
    """apimachinery's duration.HumanDuration, as kubectl's AGE column shows it."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rem = s % 60
        return f"{minutes}m" if rem == 0 else f"{minutes}m{rem}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


EPOCH = "1970-01-01T00:00:00Z"
