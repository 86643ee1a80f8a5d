"""The API server core's request and response values.

Theory of operation
-------------------
The core is sans-IO: the HTTP layer (`kubeproof.serve`) turns one HTTP
request into an `ApiRequest` (method, path, decoded query, raw body, the
Content-Type and Accept headers, and the user it has already authenticated
with `Authenticator`), calls `ApiServer.handle`, and writes the
`ApiResponse` back: ``status`` is the HTTP status, ``body`` the JSON object
to serialize (a Kubernetes object, a list, a Table or a ``Status``), and
``headers`` extra headers (Content-Type is always ``application/json``
unless a header here says otherwise).

A watch answers 200 with ``watch`` set and ``body`` None.  The stream is
sans-IO too: the HTTP layer calls ``watch.poll()`` after writes and
periodically; each call returns the watch events (``{"type": ADDED |
MODIFIED | DELETED | BOOKMARK | ERROR, "object": {...}}``) that became
available, already converted for the Accept header (plain objects or
one-row Tables).  ``watch.done`` turns True once the stream has ended (an
ERROR event was sent, or the stream was closed); the HTTP layer then ends
the chunked response.  ``close()`` releases the store watcher.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

from attrs import field, frozen


def _frozen_query(value: Mapping[str, Any]) -> Mapping[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for k, v in dict(value).items():
        if isinstance(v, str):
            out[str(k)] = (v,)
        else:
            out[str(k)] = tuple(str(x) for x in v)
    return out


def _str_tuple(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@frozen
class UserInfo:
    """An authenticated user: name, groups (system:authenticated included by
    the authenticator), and uid."""

    name: str
    groups: tuple[str, ...] = field(default=(), converter=_str_tuple)
    uid: str = ""


@frozen
class ApiRequest:
    """One REST request under /api or /apis.

    ``query`` maps each parameter to its values (a plain string is taken as
    one value).  ``content_type`` None means JSON (the Python client POSTs
    without a Content-Type).  ``user`` None means no credentials were given:
    the server treats the request as ``system:anonymous`` when anonymous
    access is enabled, else answers 401."""

    method: str
    path: str
    query: Mapping[str, tuple[str, ...]] = field(factory=dict, converter=_frozen_query)
    body: bytes = b""
    content_type: str | None = None
    accept: str | None = None
    user: UserInfo | None = None

    def param(self, name: str, default: str | None = None) -> str | None:
        """The first value of query parameter ``name``."""
        values = self.query.get(name)
        return values[0] if values else default


@runtime_checkable
class WatchStream(Protocol):
    """A watch in progress (sans-IO): ``poll`` returns the events that became
    available since the last call; ``done`` is True once the stream ended."""

    def poll(self) -> list[Mapping[str, Any]]: ...

    def close(self) -> None: ...

    @property
    def done(self) -> bool: ...


@frozen
class ApiResponse:
    """The HTTP status, the JSON body (None for a watch), extra headers and,
    for a watch, the stream."""

    status: int
    body: Mapping[str, Any] | None
    headers: tuple[tuple[str, str], ...] = ()
    watch: WatchStream | None = None
