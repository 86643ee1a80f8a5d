"""Shared helpers for the API server tests: a server over a fresh store, users, requests."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from kubeproof.api import ApiRequest, ApiResponse, ApiServer, UserInfo
from kubeproof.mvcc import MVCCStore

ADMIN = UserInfo("admin", ("system:masters", "system:authenticated"))
BOB = UserInfo("bob", ("system:authenticated",))
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


class Clock:
    """A deterministic clock: every call is one second later."""

    def __init__(self, start: int = 0) -> None:
        self.t = start

    def __call__(self) -> str:
        s = self.t
        return f"2026-01-01T{s // 3600:02d}:{(s // 60) % 60:02d}:{s % 60:02d}Z"

    def tick(self, seconds: int = 1) -> None:
        self.t += seconds


class Uids:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return f"00000000-0000-4000-8000-{self.n:012d}"


class Api:
    """An ApiServer over a fresh MVCC store, with request shorthands."""

    def __init__(self, **kwargs: Any) -> None:
        self.store = MVCCStore()
        self.clock = Clock()
        self.server = ApiServer(self.store, now=self.clock, uid_source=Uids(), **kwargs)

    def req(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        user: UserInfo | None = ADMIN,
        query: Mapping[str, Any] | None = None,
        content_type: str | None = None,
        accept: str | None = None,
        raw: bytes | None = None,
    ) -> ApiResponse:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        return self.server.handle(
            ApiRequest(
                method,
                path,
                dict(query or {}),
                data,
                content_type,
                accept,
                user,
            )
        )

    def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> dict[str, Any]:
        resp = self.req(method, path, body, **kw)
        assert 200 <= resp.status < 300, (resp.status, resp.body)
        assert resp.body is not None
        return dict(resp.body)

    def ns(self, name: str) -> dict[str, Any]:
        return self.ok("POST", "/api/v1/namespaces", {"metadata": {"name": name}})


def pod(name: str, image: str = "nginx:1.25", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": image}], **spec},
    }


def cm(name: str, **data: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "data": dict(data)}
