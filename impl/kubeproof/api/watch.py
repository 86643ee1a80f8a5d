"""Watch streams: the store's watch events as Kubernetes watch events, sans-IO.

Theory of operation
-------------------
A `StoreWatchStream` wraps one store watcher over a collection's key prefix
(started with ``prev_kv`` so that deletes and selector transitions can be
judged) and turns each store event into at most one Kubernetes event:

    store event          before matched  now matches   Kubernetes event
    PUT (create)              -              yes        ADDED
    PUT (update)             yes             yes        MODIFIED
    PUT (update)             no              yes        ADDED
    PUT (update)             yes             no         DELETED (new state)
    DELETE                   yes             -          DELETED (last state,
                                                        resourceVersion = the
                                                        delete's revision)

When the store has compacted away an event's previous value, the stream
uses the last state it saw of the object (its initial list, or an earlier
event) and, failing that, judges the change by the new state alone (a
DELETED then carries only the name, namespace and resourceVersion).

Events come in store order, so resourceVersions never go back.  A watch
from resourceVersion N asks the store for revisions N+1 on; without one
(or "0"), the stream first emits a synthetic ADDED event for each object
that matched at the list revision R, then the changes from R+1 on.  If the
store has compacted past N+1, the first poll yields one ERROR event with
kube's 410 ``Expired`` Status (``too old resource version: N (C)``) and the
stream is done.

`poll()` drains what the store has for the watcher; `bookmark()` returns a
BOOKMARK event carrying the revision up to which everything has been
delivered (only if bookmarks were asked for).  Events are rendered by a
caller-supplied function (plain objects, or one-row Tables whose
columnDefinitions appear on the first event only).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kubeproof.mvcc import EventType, KeyValue, WatchResponse

from .errors import expired
from .storage import StoreWatcher, decode

Obj = dict[str, Any]
Render = Callable[[Obj, bool], Mapping[str, Any]]
"""(object, first) -> the wire object of an event."""


def too_old(rv: int, compact_revision: int) -> dict[str, Any]:
    return expired(f"too old resource version: {rv} ({compact_revision - 1})").status()


class StoreWatchStream:
    def __init__(
        self,
        watcher: StoreWatcher | None,
        *,
        kind: str,
        api_version: str,
        matches: Callable[[Obj], bool],
        render: Render,
        initial: list[Obj] | None = None,
        start_revision: int = 0,
        bookmarks: bool = False,
        error: Mapping[str, Any] | None = None,
        revision: Callable[[], int] | None = None,
        timeout_seconds: int | None = None,
        initial_events_end: bool = False,
        namespaced: bool = True,
        known: dict[bytes, Obj] | None = None,
    ) -> None:
        self._watcher = watcher
        self._known: dict[bytes, Obj] = {}
        self._namespaced = namespaced
        self.kind = kind
        self.api_version = api_version
        self._matches = matches
        self._render = render
        self._first = True
        self._done = False
        self._bookmarks = bookmarks
        self._revision = revision
        self.timeout_seconds = timeout_seconds
        # The revision through which every event has been handed out.
        self.progress = max(start_revision - 1, 0)
        self._pending: list[dict[str, Any]] = []
        if error is not None:
            self._pending.append({"type": "ERROR", "object": dict(error)})
            self._done_after_pending = True
        else:
            self._done_after_pending = False
        for obj in initial or []:
            self._pending.append(self._event("ADDED", obj))
        for key, obj in (known or {}).items():
            self._known[key] = obj
        if initial_events_end:
            self._pending.append(
                {
                    "type": "BOOKMARK",
                    "object": {
                        "kind": kind,
                        "apiVersion": api_version,
                        "metadata": {
                            "resourceVersion": str(self.progress),
                            "annotations": {"k8s.io/initial-events-end": "true"},
                        },
                    },
                }
            )

    @property
    def done(self) -> bool:
        return self._done

    def _event(self, typ: str, obj: Obj) -> dict[str, Any]:
        out = {"type": typ, "object": self._render(obj, self._first)}
        self._first = False
        return out

    def _previous(self, key: bytes, prev: KeyValue | None) -> Obj | None:
        """The object as it was before an event: from the event's prev_kv, else
        (the store compacted it away) from what this stream last saw of it."""
        if prev is not None:
            return decode(prev)
        return self._known.get(key)

    def _convert(self, resp: WatchResponse) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for ev in resp.events:
            kv: KeyValue = ev.kv
            if ev.type is EventType.DELETE:
                old = self._previous(kv.key, ev.prev_kv)
                if old is None:
                    old = self._stub(kv.key)
                old["metadata"]["resourceVersion"] = str(kv.mod_revision)
                self._known.pop(kv.key, None)
                if self._matches(old):
                    out.append(self._event("DELETED", old))
            else:
                obj = decode(kv)
                now = self._matches(obj)
                if kv.create_revision == kv.mod_revision:
                    if now:
                        out.append(self._event("ADDED", obj))
                else:
                    prev = self._previous(kv.key, ev.prev_kv)
                    before = self._matches(prev) if prev is not None else now
                    if now and before:
                        out.append(self._event("MODIFIED", obj))
                    elif now:
                        out.append(self._event("ADDED", obj))
                    elif before:
                        out.append(self._event("DELETED", obj))
                self._known[kv.key] = obj
            self.progress = max(self.progress, kv.mod_revision)
        return out

    def _stub(self, key: bytes) -> Obj:
        """An object known only by its key (its last state was compacted away)."""
        parts = key.decode(errors="replace").split("/")
        meta: dict[str, Any] = {"name": parts[-1]}
        if self._namespaced and len(parts) >= 2:
            meta["namespace"] = parts[-2]
        return {"kind": self.kind, "apiVersion": self.api_version, "metadata": meta}

    def poll(self) -> list[Mapping[str, Any]]:
        if self._done:
            return []
        out: list[Mapping[str, Any]] = list(self._pending)
        self._pending = []
        if self._done_after_pending:
            self.close()
            return out
        if self._watcher is None:
            return out
        for resp in self._watcher.poll():
            if resp.canceled:
                # Compacted past our start: kube's 410 Expired, then the end.
                out.append(
                    {"type": "ERROR", "object": too_old(self.progress, resp.compact_revision)}
                )
                self.close()
                return out
            out.extend(self._convert(resp))
        if self._revision is not None:
            # The store hands a watcher everything up to its current revision
            # in one poll, so after draining it we have seen all of it.
            self.progress = max(self.progress, self._revision())
        return out

    def bookmark(self) -> Mapping[str, Any] | None:
        """A BOOKMARK at the revision through which every event was delivered
        (None unless the watch asked for bookmarks, or after the end)."""
        if not self._bookmarks or self._done:
            return None
        return {
            "type": "BOOKMARK",
            "object": {
                "kind": self.kind,
                "apiVersion": self.api_version,
                "metadata": {"resourceVersion": str(self.progress)},
            },
        }

    def close(self) -> None:
        self._done = True
        if self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None
