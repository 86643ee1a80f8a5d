"""The Kubernetes HTTP API over aiohttp: the I/O adapter around `kubeproof.api`.

Theory of operation
-------------------
`KubeHTTP.handle` is the one aiohttp handler.  For each request it

1. authenticates: the verified TLS client certificate (CN = user, each O a
   group), else the Authorization header (bearer token, basic), through the
   core's `Authenticator`; no credentials is anonymous (if enabled) or 401;
2. answers the paths that belong to the HTTP layer itself: ``/version``,
   ``/healthz`` ``/livez`` ``/readyz``, discovery (``/api``, ``/apis``,
   ``/api/v1``, ``/apis/G``, ``/apis/G/V``; legacy or aggregated by the
   Accept header), ``/openapi/v3`` and its documents; these need an
   authenticated user (kube's system:discovery and system:public-info-viewer
   roles, bound to system:authenticated), and health and version are also
   open to anonymous users when anonymous access is on, as in kube;
3. hands every other ``/api/...`` and ``/apis/...`` request to the pure core
   as an `ApiRequest`: the raw path with each segment percent-decoded (an
   encoded ``/`` or a ``.``/``..`` segment is refused here: no path trick
   reaches the core), the decoded query, the body (a Kubernetes protobuf
   body is decoded to JSON first, since the core takes JSON), the
   Content-Type (None when absent: the Python client sends none) and the
   Accept header;
4. waits until the write-ahead log is durable up to everything written so
   far (`GroupCommit.barrier`), then writes the `ApiResponse` as JSON; a
   watch becomes a chunked stream of JSON lines, polled after every change
   and every second, flushed as events arrive, ended when the core says
   done, at ``timeoutSeconds``, or when the client goes away.

Everything runs on one event loop thread, so the core (which is not
thread-safe and needs no locks) sees one request at a time.  Any exception
that escapes the core is a bug: it is logged and answered 500 InternalError.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from kubeproof.api import ApiError, ApiRequest, ApiResponse, Attributes, UserInfo, jsoncodec
from kubeproof.api.server import forbidden_for

from . import discovery, openapi
from .commit import GroupCommit
from .protobuf import ProtobufError, decode_k8s_protobuf

__all__ = ["MAX_BODY", "VERSION_INFO", "ChangeSignal", "KubeHTTP", "status_body"]

log = logging.getLogger("kubeproof.serve")

# kube-apiserver's limit for a request body (3 MiB).
MAX_BODY = 3 * 1024 * 1024
PROTOBUF = "application/vnd.kubernetes.protobuf"
# How long a watch may stay silent before it gets a BOOKMARK (if it asked).
BOOKMARK_INTERVAL = 30.0
JSON = "application/json"

VERSION_INFO: dict[str, str] = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.4-kubeproof",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z",
    "goVersion": "go1.23",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def status_body(code: int, reason: str, message: str, **details: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details:
        out["details"] = details
    out["code"] = code
    return out


class _Refused(Exception):
    """A request answered with a Status before it reached the core."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


class ChangeSignal:
    """Wakes every watch stream after the store changed.  A waiter takes
    `current` before polling, so a change between its poll and its wait
    still wakes it."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    @property
    def current(self) -> asyncio.Event:
        return self._event

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()


def _dumps(body: Any) -> bytes:
    # orjson, with the standard library for what it refuses (see jsoncodec).
    return jsoncodec.dumps(body)


def _json_response(
    code: int, body: Any, content_type: str = JSON, headers: Mapping[str, str] | None = None
) -> web.Response:
    h = {"Content-Type": content_type, "Cache-Control": "no-cache, private"}
    if headers:
        h.update(headers)
    return web.Response(status=code, body=_dumps(body), headers=h)


def _status_response(code: int, reason: str, message: str) -> web.Response:
    return _json_response(code, status_body(code, reason, message))


def _not_found() -> web.Response:
    return _status_response(404, "NotFound", "the server could not find the requested resource")


def _decoded_path(raw_path: str) -> str:
    """The path with each segment percent-decoded; a segment that decodes to
    something holding '/', NUL or that is '.'/'..' is refused (404), so
    ``..%2f`` tricks never reach the core."""
    segments = raw_path.split("/")
    out: list[str] = []
    for s in segments:
        d = urllib.parse.unquote(s, errors="strict") if "%" in s else s
        if "/" in d or "\x00" in d or (d in (".", "..") and s != ""):
            raise _Refused(404, "NotFound", "the server could not find the requested resource")
        out.append(d)
    return "/".join(out)


def _is_discovery(path: str) -> bool:
    """/api/V, /apis/G and /apis/G/V: discovery documents, not resources."""
    parts = path.strip("/").split("/")
    return (parts[0] == "api" and len(parts) == 2) or (parts[0] == "apis" and len(parts) in (2, 3))


def _cert_subject(request: web.BaseRequest) -> tuple[str, tuple[str, ...]] | None:
    transport = request.transport
    if transport is None:
        return None
    cert = transport.get_extra_info("peercert")
    if not cert:
        return None
    cn = ""
    orgs: list[str] = []
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                cn = value
            elif key == "organizationName":
                orgs.append(value)
    if not cn:
        return None
    return cn, tuple(orgs)


class KubeHTTP:
    """The handler: see the module docstring.

    ``api`` is a `kubeproof.api.ApiServer` (which also decides anonymous
    access); ``authenticator`` the core's `Authenticator` (None: requests
    carry no identity, for the benchmark's fixed-user core);
    ``commit`` the group commit of a durable store (None: in memory);
    ``revision`` reads the store's revision (to wake watches after writes).
    """

    def __init__(
        self,
        api: Any,
        *,
        authenticator: Any | None,
        revision: Callable[[], int],
        commit: GroupCommit | None = None,
        server_address: str = "127.0.0.1:6443",
        watch_poll_interval: float = 1.0,
    ) -> None:
        self.api = api
        self.authenticator = authenticator
        self.revision = revision
        self.commit = commit
        self.server_address = server_address
        self.signal = ChangeSignal()
        self.watch_poll_interval = watch_poll_interval
        self.ready = True
        self.requests = 0
        self.watches: set[Any] = set()

    # ------------------------------------------------------------------

    def _authenticate(self, request: web.BaseRequest) -> UserInfo | None:
        """The user, or None for a request without credentials (the core
        then makes it system:anonymous, or answers 401)."""
        if self.authenticator is None:
            return None
        subject = _cert_subject(request)
        try:
            user = self.authenticator.authenticate(request.headers, client_cert_subject=subject)
        except ApiError as e:
            # Credentials that are present but wrong: 401, even when anonymous
            # access is on (as kube does).
            raise _Refused(e.code, e.reason, e.message) from None
        user = user if isinstance(user, UserInfo) else None
        return self._impersonate(request, user)

    def _impersonate(self, request: web.BaseRequest, user: UserInfo | None) -> UserInfo | None:
        """kube's impersonation filter (``kubectl --as=U --as-group=G``): the
        requester needs the ``impersonate`` verb on ``users`` U (and on
        ``groups`` G, and ``uids``) in the core group; the request then runs
        as U in groups G plus system:authenticated.  Never ignored: running
        the request as the requester instead would answer for someone else."""
        headers = request.headers
        name = headers.get("Impersonate-User")
        groups = tuple(headers.getall("Impersonate-Group", ()))
        uid = headers.get("Impersonate-Uid", "")
        extras = [k for k in headers if k.lower().startswith("impersonate-extra-")]
        if name is None and not groups and not uid and not extras:
            return user
        if extras:
            raise _Refused(400, "BadRequest", "impersonating user extras is not supported")
        if not name:
            raise _Refused(
                400,
                "BadRequest",
                "requested impersonation of groups or a uid without impersonating a user",
            )
        if user is None:
            raise _Refused(401, "Unauthorized", "Unauthorized")
        checks = [("", "users", name)] + [("", "groups", g) for g in groups]
        if uid:
            checks.append(("authentication.k8s.io", "uids", uid))
        authorizer = getattr(self.api, "authorizer", None)
        for group, resource, target in checks:
            attrs = Attributes(
                user, "impersonate", True, api_group=group, resource=resource, name=target
            )
            if authorizer is None or not authorizer.authorize(attrs).allowed:
                e = forbidden_for(attrs)
                raise _Refused(e.code, e.reason, e.message)
        implied = "system:unauthenticated" if name == "system:anonymous" else "system:authenticated"
        return UserInfo(name, tuple(dict.fromkeys((*groups, implied))), uid)

    def _authorize_local(self, user: UserInfo | None, path: str) -> web.Response | None:
        """401/403 for a path the HTTP layer serves, decided by the core's
        authentication and RBAC (kube's system:discovery and
        system:public-info-viewer roles grant them by default)."""
        resp = self.api.authorize_request(ApiRequest("GET", path, user=user))
        if resp is None:
            return None
        headers = {k: v for k, v in resp.headers if k.lower() != "content-type"}
        return _json_response(resp.status, resp.body, JSON, headers)

    async def _read_body(self, request: web.BaseRequest) -> bytes:
        length = request.content_length
        if length is not None and length > MAX_BODY:
            raise _Refused(413, "RequestEntityTooLarge", "Request entity too large")
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = await request.content.readany()
            if not chunk:
                break
            total += len(chunk)
            if total > MAX_BODY:
                raise _Refused(413, "RequestEntityTooLarge", "Request entity too large")
            chunks.append(chunk)
        return b"".join(chunks)

    # ------------------------------------------------------------------

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        self.requests += 1
        try:
            return await self._handle(request)
        except _Refused as r:
            return _status_response(r.code, r.reason, r.message)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.exception("internal error on %s %s", request.method, request.raw_path)
            return _status_response(500, "InternalError", f"Internal error occurred: {e}")

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        raw = request.raw_path
        raw_path, _, raw_query = raw.partition("?")
        try:
            path = _decoded_path(raw_path)
        except UnicodeDecodeError:
            raise _Refused(400, "BadRequest", "the request path is not valid UTF-8") from None
        if len(path) > 1 and path.endswith("/"):
            # "/apis/" (the Python client's ApisApi) and other non-resource
            # paths mean the same without the slash; resource paths do not.
            trimmed = path.rstrip("/")
            if trimmed in ("/api", "/apis") or not trimmed.startswith(("/api/", "/apis/")):
                path = trimmed or "/"
            elif _is_discovery(trimmed):
                path = trimmed
        user = self._authenticate(request)
        method = request.method.upper()
        if not (path.startswith("/api/") or path.startswith("/apis/")) or _is_discovery(path):
            local = self._local(method, path, raw_query, request.headers.get("Accept"))
            denied = self._authorize_local(user, path)
            if denied is not None:
                return denied
            return local if local is not None else _not_found()
        body = (
            await self._read_body(request) if method in ("POST", "PUT", "PATCH", "DELETE") else b""
        )
        content_type = request.headers.get("Content-Type")
        query = {
            k: tuple(v) for k, v in urllib.parse.parse_qs(raw_query, keep_blank_values=True).items()
        }
        if content_type is not None and content_type.split(";")[0].strip().lower() == PROTOBUF:
            # Authenticate and authorize before decoding, as kube does: a
            # stranger learns nothing from how its body fails to decode.
            denied = self.api.authorize_request(
                ApiRequest(method=method, path=path, query=query, user=user)
            )
            if denied is not None:
                return _json_response(denied.status, denied.body)
            try:
                obj = decode_k8s_protobuf(body)
            except ProtobufError as e:
                if e.unsupported:
                    raise _Refused(415, "UnsupportedMediaType", str(e)) from None
                raise _Refused(
                    400, "BadRequest", f"the protobuf body cannot be decoded: {e}"
                ) from None
            body = _dumps(obj)
            content_type = JSON
        req = ApiRequest(
            method=method,
            path=path,
            query=query,
            body=body,
            content_type=content_type,
            accept=request.headers.get("Accept"),
            user=user,
        )
        before = self.revision()
        resp: ApiResponse = self.api.handle(req)
        if self.revision() != before:
            self.signal.notify()
        if self.commit is not None:
            await self.commit.barrier()
        if resp.watch is not None:
            return await self._stream(request, resp, query)
        headers = {k: v for k, v in resp.headers}
        content = headers.pop("Content-Type", JSON)
        return _json_response(resp.status, resp.body, content, headers)

    # ------------------------------------------------------------------

    def _local(
        self, method: str, path: str, raw_query: str, accept: str | None
    ) -> web.StreamResponse | None:
        """Answers for the paths the HTTP layer owns, or None."""
        if path in ("/healthz", "/livez", "/readyz") or path.startswith(
            ("/healthz/", "/livez/", "/readyz/")
        ):
            if method != "GET":
                return _status_response(405, "MethodNotAllowed", "the method is not allowed")
            ok = self.ready and (self.commit is None or self.commit.failed is None)
            text = b"ok" if ok else b"not ready"
            if "verbose" in urllib.parse.parse_qs(raw_query, keep_blank_values=True):
                check = path.split("/")[1]
                text = (f"[+]ping ok\n[+]etcd ok\n{check} check passed\n").encode()
            return web.Response(
                status=200 if ok else 503,
                body=text,
                headers={"Content-Type": "text/plain; charset=utf-8"},
            )
        if path == "/version":
            return _json_response(200, VERSION_INFO) if method == "GET" else None
        if method != "GET":
            return None
        if path in ("/api", "/apis"):
            media = discovery.negotiate(accept)
            if media is not None:
                return _json_response(200, discovery.aggregated(path == "/api", media), media)
            if path == "/api":
                return _json_response(200, discovery.api_versions(self.server_address))
            return _json_response(200, discovery.api_group_list())
        parts = path.split("/")[1:]
        if parts[0] == "api" and len(parts) == 2:
            doc = discovery.api_resource_list("", parts[1])
            return _json_response(200, doc) if doc is not None else _not_found()
        if parts[0] == "apis" and len(parts) == 2:
            group_doc = discovery.api_group(parts[1])
            return _json_response(200, group_doc) if group_doc is not None else _not_found()
        if parts[0] == "apis" and len(parts) == 3:
            doc = discovery.api_resource_list(parts[1], parts[2])
            return _json_response(200, doc) if doc is not None else _not_found()
        if path == "/openapi/v3":
            return _json_response(200, openapi.index())
        if path.startswith("/openapi/v3/"):
            found = openapi.document(path[len("/openapi/v3/") :])
            if found is None:
                return _not_found()
            text, digest = found
            return web.Response(
                status=200,
                body=text,
                headers={"Content-Type": JSON, "Etag": f'"{digest}"'},
            )
        if path == "/openapi/v2" or path == "/openapi":
            return _not_found()
        return None

    # ------------------------------------------------------------------

    async def _stream(
        self, request: web.BaseRequest, resp: ApiResponse, query: Mapping[str, tuple[str, ...]]
    ) -> web.StreamResponse:
        watch = resp.watch
        assert watch is not None
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        timeout = query.get("timeoutSeconds", ("",))[0]
        if timeout:
            try:
                deadline = loop.time() + max(0, int(timeout))
            except ValueError:
                watch.close()
                raise _Refused(400, "BadRequest", f"invalid timeoutSeconds {timeout!r}") from None
        out = web.StreamResponse(
            status=resp.status,
            headers={
                "Content-Type": JSON,
                "Cache-Control": "no-cache, private",
                **{k: v for k, v in resp.headers if k.lower() != "content-type"},
            },
        )
        out.enable_chunked_encoding()
        self.watches.add(watch)
        try:
            await out.prepare(request)
            last_sent = loop.time()
            while True:
                wake = self.signal.current
                events = list(watch.poll())
                if not events and loop.time() - last_sent >= BOOKMARK_INTERVAL:
                    # Bookmarks (only if the client asked) tell it how far the
                    # stream has got, so a re-watch need not start from older.
                    bookmark = getattr(watch, "bookmark", lambda: None)()
                    if bookmark is not None:
                        events.append(bookmark)
                if events:
                    if self.commit is not None:
                        await self.commit.barrier()
                    await out.write(b"".join(_dumps(e) + b"\n" for e in events))
                    last_sent = loop.time()
                if watch.done:
                    break
                transport = request.transport
                if transport is None or transport.is_closing():
                    break
                wait = self.watch_poll_interval
                if deadline is not None:
                    left = deadline - loop.time()
                    if left <= 0:
                        break
                    wait = min(wait, left)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), wait)
            await out.write_eof()
        except (ConnectionResetError, ConnectionError):
            pass
        finally:
            self.watches.discard(watch)
            watch.close()
        return out

    def close_watches(self) -> None:
        for w in list(self.watches):
            w.close()


def wall_clock() -> float:
    return time.time()
