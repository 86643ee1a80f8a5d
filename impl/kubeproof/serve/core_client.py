"""How the extensions of ``kubeproof up`` talk to the API core: as a named user,
through `ApiServer.handle`, the path an HTTP request takes (authentication
aside), so authorization, admission and validation apply to them as to kubectl.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol

from kubeproof.api import ApiRequest, ApiResponse, UserInfo

__all__ = ["CoreApi", "core_request"]


class CoreApi(Protocol):
    """What the shells use of `kubeproof.api.ApiServer`."""

    def handle(self, req: ApiRequest) -> ApiResponse: ...

    def now(self) -> str: ...


def core_request(
    api: CoreApi,
    method: str,
    path: str,
    body: Mapping[str, Any] | None = None,
    content_type: str | None = None,
    user: UserInfo | None = None,
) -> ApiResponse:
    """One request with a JSON body (none when ``body`` is None)."""
    data = json.dumps(body).encode() if body is not None else b""
    return api.handle(ApiRequest(method, path, body=data, content_type=content_type, user=user))
