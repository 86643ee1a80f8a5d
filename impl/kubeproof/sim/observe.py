"""What a checker sees of a simulated cluster, and what it returns.

Theory of operation
-------------------
The harness owns the cluster; checkers (the spec's invariants, wired in by
the composition root) only look.  After every event the harness calls
`Checker.check(view, event)` on each checker; a checker returns the
violations it found (usually none).  The views are live, read-only
windows onto the harness's state, not copies, so that checking after every
event stays cheap; a checker that needs history keeps its own.

This module is the contract between `kubeproof.sim` (which implements the
views) and `kubeproof.spec` (which implements checkers).  The harness never
imports the spec.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from attrs import field, frozen

from kubeproof.raft import Entry, MemoryStorage, RaftNode


@frozen
class Violation:
    """An invariant that failed: its stable ID, where, and the evidence (JSON-able)."""

    invariant: str
    step: int
    message: str
    evidence: Mapping[str, Any] = field(factory=dict)


@frozen
class Event:
    """One harness event as the trace records it."""

    step: int
    time: int
    kind: str
    node: int | None
    payload: Mapping[str, Any] = field(factory=dict)


class NodeView(Protocol):
    """One member: its live node (None while crashed), its disk, what it applied."""

    @property
    def id(self) -> int: ...

    @property
    def alive(self) -> bool: ...

    @property
    def node(self) -> RaftNode | None: ...

    @property
    def storage(self) -> MemoryStorage: ...

    @property
    def incarnation(self) -> int:
        """0 for the first life, +1 at every restart."""
        ...

    @property
    def applied(self) -> Mapping[int, Entry]:
        """Every entry this member's state machine applied, by index, over all its lives."""
        ...


class ClusterView(Protocol):
    @property
    def step(self) -> int: ...

    @property
    def time(self) -> int: ...

    @property
    def nodes(self) -> Mapping[int, NodeView]: ...

    @property
    def acknowledged(self) -> Mapping[bytes, int]:
        """Client proposals acknowledged as committed: payload -> log index."""
        ...


class Checker(Protocol):
    def check(self, view: ClusterView, event: Event) -> Sequence[Violation]: ...
