"""State Machine Safety: every application of index i applies the same entry.

Theory of operation
-------------------
A member's `applied` index (the node's own) tells which indexes it has just
handed to its state machine: when it moves from a to b within one life,
indexes a+1..b were applied at this event.  For each, the checker looks at
what was applied (the member's `NodeView.applied` record, which the
harness overwrites on a re-application after a restart) and at what the
node's log holds there, and compares both with the first application of
that index anywhere in the run and with the known-committed entry.  A
restart starts a new life whose `applied` begins again (at the snapshot
point): re-applications are compared like any other.  An index applied by
a snapshot (no entry in the record or the log) has nothing to compare.
Work per event: the indexes applied at that event.
"""

from __future__ import annotations

from typing import Any

from kubeproof.raft.types import Entry
from kubeproof.sim.observe import ClusterView, Event, Violation

from . import ids
from .checker import RaftChecker
from .tracker import ClusterTracker, NodeTrack, Observation, entry_json


class StateMachineSafety(RaftChecker):
    """RAFT-STATE-MACHINE-SAFETY: no two applications of one index apply different entries.

    Property: for every index i, every time any member's state machine
    applies index i (in any of its lives), it applies the same entry; that
    entry is the one the applying node's log holds at i, and the known
    committed entry at i.  Also a node never applies beyond its commit
    index, and its applied index never goes backwards within a life.

    History kept: index -> (entry, member, step) of the first application
    of each index in the run; per member, the applied index already checked
    in its current life.
    """

    ID = ids.STATE_MACHINE_SAFETY

    def __init__(self, tracker: ClusterTracker | None = None) -> None:
        super().__init__(tracker)
        self.first: dict[int, tuple[Entry, int, int]] = {}
        self.cursor: dict[int, int] = {}

    def inspect(
        self, view: ClusterView, event: Event, obs: Observation, out: list[Violation]
    ) -> None:
        step = obs.step
        for tr in obs.touched:
            if not tr.alive:
                continue
            if tr.life_start:
                self.cursor[tr.id] = tr.applied
                continue
            cur = self.cursor.get(tr.id, 0)
            applied = tr.applied
            if applied == cur:
                continue
            self.cursor[tr.id] = applied
            if applied < cur:
                self._report(
                    out,
                    ("back", tr.id, tr.incarnation, applied),
                    step,
                    f"node {tr.id}'s applied index went back from {cur} to {applied}",
                    {"node": tr.id, "applied_before": cur, "applied": applied},
                )
                continue
            if applied > tr.commit:
                self._report(
                    out,
                    ("uncommitted", tr.id, applied),
                    step,
                    f"node {tr.id} applied up to {applied} beyond its commit index {tr.commit}",
                    {"node": tr.id, "applied": applied, "commit": tr.commit},
                )
            for i in range(cur + 1, applied + 1):
                if self._one(tr, i, step, out):
                    break

    def _one(self, tr: NodeTrack, i: int, step: int, out: list[Violation]) -> bool:
        """Check the application of index i by `tr`; True if a violation was reported."""
        recorded = tr.view.applied.get(i)
        in_log = tr.live_entry(i)
        if recorded is not None and in_log is not None and recorded != in_log:
            self._report(
                out,
                ("log", tr.id, i),
                step,
                f"node {tr.id} applied at index {i} an entry its log does not hold there",
                {
                    "node": tr.id,
                    "index": i,
                    "applied": entry_json(recorded),
                    "log_entry": entry_json(in_log),
                },
            )
            return True
        e = recorded if recorded is not None else in_log
        if e is None:
            return False  # applied through a snapshot
        c = self.tracker.committed
        if i <= c.index:
            ce = c.ents[i]
            if ce is not None and ce is not e and ce != e:
                self._report(
                    out,
                    ("committed", tr.id, i),
                    step,
                    f"node {tr.id} applied at index {i} an entry other than the committed one",
                    {
                        "node": tr.id,
                        "index": i,
                        "applied": entry_json(e),
                        "committed": entry_json(ce),
                        "committed_by": c.by[i],
                        "committed_at_step": c.steps[i],
                    },
                )
                return True
        rec = self.first.get(i)
        if rec is None:
            self.first[i] = (e, tr.id, step)
            return False
        first, who, when = rec
        if first is e or first == e:
            return False
        ev: dict[str, Any] = {
            "index": i,
            "first": {"node": who, "step": when, "entry": entry_json(first)},
            "second": {"node": tr.id, "incarnation": tr.incarnation, "entry": entry_json(e)},
        }
        again = "re-applied" if who == tr.id else "applied"
        self._report(
            out,
            ("diverge", tr.id, i),
            step,
            f"node {tr.id} {again} a different entry at index {i} than node {who} "
            f"applied at step {when}",
            ev,
        )
        return True
