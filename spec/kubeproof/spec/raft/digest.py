"""The applications agree: every member's state at index i is the same state.

Theory of operation
-------------------
State Machine Safety (`state_machine`) compares the *entries* members
apply.  With snapshots an application also jumps: it restores a state some
other member serialised at index j and applies the tail after it.  The
harness's application keeps a running digest of everything it applied
(`kubeproof.sim.app`) and reports it, with the index it covers, after every
Ready that moved it (`process_ready` payload `state`) and in every snapshot
it takes (`snapshot` payload `index`, `digest`).  Two members whose states
at one index differ diverged somewhere at or below it, whether through a
bad entry, a bad snapshot, or a snapshot restored over the wrong state.

The checker keeps the first digest reported at each index and compares
every later report at that index with it.  A member's digest chain, once
different, stays different, so any two members that keep applying meet at
some common index and the divergence shows there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from kubeproof.sim.observe import ClusterView, Event, Violation

from . import ids
from .checker import RaftChecker
from .tracker import ClusterTracker, Observation


class ApplyDigest(RaftChecker):
    """RAFT-APPLY-DIGEST: all applications have the same state at the same index.

    Property: whenever a member reports its application state (index i,
    digest d), after a Ready or in a snapshot it takes, d equals the digest
    first reported at index i by any member, in any life.  Restoring a
    snapshot and applying the tail after it must give the state that
    applying every entry gives.

    History kept: index -> (digest, member, step) of the first report at
    each index.  Reported at the Ready (or snapshot) whose report differs.
    """

    ID = ids.APPLY_DIGEST
    always = True

    def __init__(self, tracker: ClusterTracker | None = None) -> None:
        super().__init__(tracker)
        self.first: dict[int, tuple[str, int, int]] = {}

    def check(self, view: ClusterView, event: Event) -> Sequence[Violation]:
        # Only the payload matters: skip the tracker unless there is a report.
        if event.kind != "snapshot" and "state" not in event.payload:
            return ()
        return super().check(view, event)

    def inspect(
        self, view: ClusterView, event: Event, obs: Observation, out: list[Violation]
    ) -> None:
        p = event.payload
        report = p if event.kind == "snapshot" else p.get("state")
        if not isinstance(report, Mapping) or event.node is None:
            return
        index, digest = report.get("index"), report.get("digest")
        if not isinstance(index, int) or not isinstance(digest, str):
            return
        rec = self.first.get(index)
        if rec is None:
            self.first[index] = (digest, event.node, obs.step)
            return
        if rec[0] == digest:
            return
        self._report(
            out,
            (index, event.node),
            obs.step,
            f"member {event.node}'s application state at index {index} differs from member "
            f"{rec[1]}'s at that index (step {rec[2]})",
            {
                "index": index,
                "node": event.node,
                "digest": digest,
                "first_node": rec[1],
                "first_digest": rec[0],
                "first_step": rec[2],
                "event": event.kind,
            },
        )
