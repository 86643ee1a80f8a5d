"""Reading the API simulation's traces back (for `replay.replay`).

Theory of operation
-------------------
`kubeproof check api` writes a failing seed's run (`apisim.ApiSimulation`
with ``record``) as JSON Lines, like the Raft harness's traces but for the
API simulation's own events:

    line 1      header   {"format": "kubeproof-trace", "version": 1, "target": "api",
                          "driver": "api", "kubeproof": ..., "seed": ..., "config":
                          {ApiSimConfig, every field}, "server": "module:attribute"}
    lines 2..   events   {"step": n, "time": t, "kind": k, "payload": {...}}
    last line   outcome  as in every trace (`trace.TraceOutcome`)

An API step may hold several events (a restart, a crash, a request), and
the setup's requests are step 0, so steps never decrease but repeat; event
kinds are ``request``, ``drop``, ``crash``, ``restart``, ``compact`` and
``watch``.  Values no JSON type holds were written as their ``str``
(`api_json`), which is how a re-run's events are compared with the file.

`ApiTraceReader` reads such a file as strictly as `trace.TraceReader` reads
a Raft trace (`trace.LineReader`: every problem a `TraceFormatError`
naming the file and the line).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from attrs import frozen

from kubeproof import codec
from kubeproof.version import __version__

from .apisim import API_FAULTS, ApiSimConfig
from .observe import Event
from .trace import TRACE_FORMAT, LineReader

API_TRACE_VERSION = 1
API_EVENT_KINDS = frozenset({"request", "drop", "crash", "restart", "compact", "watch"})
API_SERVER = "kubeproof.api.server:ApiServer"


@frozen
class ApiTraceHeader:
    """The header of an API simulation trace (``"target": "api"``)."""

    seed: int
    config: ApiSimConfig
    server: str = API_SERVER
    """The API server factory as "module:attribute" (a mutant's, if the run used one)."""
    kubeproof: str = __version__


def api_json(value: Any) -> Any:
    """A value as an API trace holds it: JSON, with anything else as its ``str``."""
    return json.loads(json.dumps(value, default=str))


def api_config_from_json(data: Any) -> ApiSimConfig:
    """The header's configuration; raises `codec.CodecError` or `ValueError` saying why."""
    config = codec.decode(data, ApiSimConfig)
    unknown = sorted(config.faults - set(API_FAULTS))
    if unknown:
        raise ValueError(f"unknown faults {unknown} (known: {', '.join(API_FAULTS)})")
    if config.servers < 1 or config.clients < 1 or config.steps < 0:
        raise ValueError("servers and clients must be >= 1, steps >= 0")
    return config


class ApiTraceReader(LineReader[ApiTraceHeader]):
    """An API simulation trace; see the module docstring."""

    kinds = API_EVENT_KINDS
    event_keys = frozenset({"step", "time", "kind", "payload"})

    def _header(self, obj: dict[str, Any]) -> ApiTraceHeader:
        seed, version_text = self._check_format(obj, TRACE_FORMAT, frozenset({API_TRACE_VERSION}))
        if obj.get("target") != "api":
            raise self._fail(f"header 'target' must be 'api', got {obj.get('target')!r}")
        server = self._factory(obj, "server", API_SERVER)
        config = self._config(obj, api_config_from_json)
        return ApiTraceHeader(seed=seed, config=config, server=server, kubeproof=version_text)

    def _check_step(self, step: Any, last: Event | None) -> None:
        """Steps from 0 on, never decreasing (a step may hold several events)."""
        least = 0 if last is None else last.step
        if type(step) is not int or step < least:
            raise self._fail(f"event step {step!r} must be an integer >= {least}")


def api_event_json(event: Event) -> dict[str, Any]:
    """An event as an API trace line holds it (no ``node``)."""
    return {"step": event.step, "time": event.time, "kind": event.kind, "payload": event.payload}


def api_event(data: Mapping[str, Any]) -> Event:
    """A recorded `apisim.ApiSimulation` event (a dict) as an `observe.Event`."""
    return Event(data["step"], data["time"], data["kind"], None, api_json(data["payload"]))
