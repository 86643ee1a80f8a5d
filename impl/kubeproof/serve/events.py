"""Events, as the control plane's event recorders write them (core/v1 Event).

Theory of operation
-------------------
kube's event recorder names an event ``<involved object name>.<hex nanoseconds>``
and fills ``involvedObject`` from the object, ``source``/``reportingComponent``
from the component, first and last timestamps from now, count 1; messages are
cut to validation's NoteLengthLimit.  `EventRecorder` does that for the
extensions of ``kubeproof up`` (scheduler, ReplicaSet controller): the body is
built by the pure `event_body`, the name's nanoseconds come from the wall clock
(this is the I/O shell), kept strictly increasing so two events of one object in
the same nanosecond do not collide.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Final

__all__ = ["NOTE_LENGTH_LIMIT", "EventRecorder", "event_body"]

NOTE_LENGTH_LIMIT: Final = 1024  # validation.NoteLengthLimit: event messages are cut to it

Obj = Mapping[str, Any]


def event_body(
    obj: Obj, typ: str, reason: str, message: str, *, component: str, now: str, nanos: int
) -> dict[str, Any]:
    """The Event about ``obj`` (any namespaced object with kind and apiVersion)."""
    meta = obj.get("metadata") or {}
    ns, name = meta.get("namespace", "default"), meta.get("name", "")
    if len(message) > NOTE_LENGTH_LIMIT:
        message = message[: NOTE_LENGTH_LIMIT - 4] + " ..."
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{name}.{nanos:x}", "namespace": ns},
        "involvedObject": {
            "kind": obj.get("kind", "Pod"),
            "namespace": ns,
            "name": name,
            "uid": meta.get("uid", ""),
            "apiVersion": obj.get("apiVersion", "v1"),
            "resourceVersion": meta.get("resourceVersion", ""),
        },
        "reason": reason,
        "message": message,
        "source": {"component": component},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "type": typ,
        "reportingComponent": component,
        "reportingInstance": "",
    }


class EventRecorder:
    """Builds events for one component; `clock` gives nanoseconds (the wall clock)."""

    def __init__(self, component: str, clock: Callable[[], int] = time.time_ns) -> None:
        self.component = component
        self.clock = clock
        self._last = 0

    def body(self, obj: Obj, typ: str, reason: str, message: str, now: str) -> dict[str, Any]:
        self._last = max(self.clock(), self._last + 1)
        return event_body(
            obj, typ, reason, message, component=self.component, now=now, nanos=self._last
        )
