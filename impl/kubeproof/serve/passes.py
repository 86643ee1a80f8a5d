"""The pass loop shared by the control-plane extensions of ``kubeproof up``.

Theory of operation
-------------------
The hollow kubelet and the ReplicaSet controller (and, with its own extra
"run again at once" rule, the scheduler) are shells of the same shape: a
*pass* drains their watches, decides, and writes through the API core; between
passes they sleep on the server's change signal, taken *before* the pass so
that a change landing during it wakes them again.  A pass that fails must not
take the control plane down: a refused watch is logged, any other exception is
a bug, logged with its traceback, after which the shell's ``recover`` marks
everything for another look on the next change.  Cancellation (server stop)
closes the watches.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Protocol

from .scheduler import WatchRefused

__all__ = ["PassShell", "run_passes"]


class _Closeable(Protocol):
    def close(self) -> None: ...


class PassShell(Protocol):
    """What `run_passes` needs of a shell."""

    errors: int

    @property
    def watches(self) -> Mapping[str, _Closeable]: ...

    async def step(self) -> None:
        """One pass: the watches, the decisions, the writes."""

    def recover(self) -> None:
        """After a failed pass: mark everything to be looked at again."""


async def run_passes(
    shell: PassShell, name: str, changed: Callable[[], asyncio.Event], log: logging.Logger
) -> None:
    """Passes until cancelled; between them, waits for ``changed()`` to be set."""
    try:
        while True:
            wake = changed()
            try:
                await shell.step()
            except WatchRefused as e:
                shell.errors += 1
                log.error("%s: %s", name, e)
            except Exception:
                shell.errors += 1
                shell.recover()
                log.exception("%s pass failed", name)
            await wake.wait()
    finally:
        for w in shell.watches.values():
            w.close()
