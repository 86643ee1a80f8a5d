"""Small helpers shared by the verb handlers of the API server.

Theory of operation
-------------------
Nothing here holds state: response headers, the retry bound of the
read-modify-write loops, the resourceVersion parser, the continue-token
codec (kube's: base64url of ``{"v":"meta.k8s.io/v1","rv":N,"start":KEY}``)
and two error constructors used by several handlers.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from .errors import ApiError, bad_request
from .resources import ResourceInfo

Obj = dict[str, Any]

JSON_HEADERS: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)
MAX_RETRIES = 8
"""How often a read-modify-write loop retries after losing a race (kube retries forever)."""

CONTINUE_EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this "
    "response to retrieve the remainder of the results. Continuing with the provided token "
    "results in an inconsistent list - objects that were created, modified, or deleted between "
    "the time the first chunk was returned and now may show up in the list."
)


def strip_type(obj: Obj) -> Obj:
    out = dict(obj)
    out.pop("apiVersion", None)
    out.pop("kind", None)
    return out


def parse_rv(rv: str) -> int:
    try:
        n = int(rv)
    except ValueError:
        raise bad_request(
            f'resourceVersion: Invalid value: "{rv}": must be a non-negative integer'
        ) from None
    if n < 0 or n >= 2**64 or str(n) != rv.strip():
        raise bad_request(f'resourceVersion: Invalid value: "{rv}": must be a non-negative integer')
    return n


def encode_continue(rev: int, start: str) -> str:
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rev, "start": start}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, str]:
    try:
        pad = "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(token + pad))
        if not isinstance(data, dict) or data.get("v") != "meta.k8s.io/v1":
            raise ValueError("unknown version")
        rev = data["rv"]
        start = data["start"]
        if (
            not isinstance(rev, int)
            or isinstance(rev, bool)
            or rev <= 0
            or not isinstance(start, str)
        ):
            raise ValueError("bad fields")
        if ".." in start.split("/") or start.startswith("/"):
            raise ValueError("path traversal")
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"
        ) from None
    return rev, start


def invalid_patch(info: ResourceInfo, name: str, why: str) -> ApiError:
    return ApiError(
        422,
        "Invalid",
        f"the server rejected our request due to an error in our request: {why}",
        name=name,
        group=info.group,
        kind=info.kind,
    )
