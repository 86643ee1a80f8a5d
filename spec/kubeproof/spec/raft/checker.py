"""The shape every Raft checker shares.

Theory of operation
-------------------
A Raft checker is a `kubeproof.sim.observe.Checker`: the harness calls
`check(view, event)` after every event and gets back the violations found
(usually none).  Each checker here asks its `ClusterTracker` what the event
changed (shared with the other checkers when built by `raft_checkers()`),
then looks only at that, and keeps whatever history its property needs.

A checker reports a given fault once (`_report` drops a key already
reported), so that a harness that keeps running after a violation is not
flooded with copies of it.  A checker instance belongs to one run: give
each run fresh ones.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any, ClassVar

from kubeproof.sim.observe import ClusterView, Event, Violation

from .tracker import ClusterTracker, Observation


class RaftChecker:
    """Base of the Raft checkers: tracker plumbing and once-only reporting."""

    ID: ClassVar[str]

    def __init__(self, tracker: ClusterTracker | None = None) -> None:
        self.tracker = tracker if tracker is not None else ClusterTracker()
        self._reported: set[Hashable] = set()

    always: ClassVar[bool] = False
    """Run even at events that changed no member and committed nothing."""

    def check(self, view: ClusterView, event: Event) -> Sequence[Violation]:
        tracker = self.tracker
        obs = tracker.obs if event is tracker.last_event else tracker.observe(view, event)
        if not (self.always or obs.touched or obs.new_hi >= obs.new_lo):
            return ()
        out: list[Violation] = []
        self.inspect(view, event, obs, out)
        return out

    def inspect(
        self, view: ClusterView, event: Event, obs: Observation, out: list[Violation]
    ) -> None:
        raise NotImplementedError

    def _report(
        self,
        out: list[Violation],
        key: Hashable,
        step: int,
        message: str,
        evidence: Mapping[str, Any],
    ) -> None:
        if key in self._reported:
            return
        self._reported.add(key)
        out.append(Violation(self.ID, step, message, dict(evidence)))
