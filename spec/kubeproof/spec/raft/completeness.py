"""Leader Completeness: a committed entry is in the log of every later leader.

Theory of operation
-------------------
The tracker's known-committed log gives, for each index, the committed
entry and `seen_term`, the term of the first node seen to know it
committed.  An entry committed in term T is first known committed by the
leader of T (or by a node that learned it later, at a term >= T), so
`seen_term >= T` and "every leader of a term > seen_term holds it" is
implied by the paper's property (and is exactly it in a run where the
committing leader is seen first, which is how Raft spreads commit).

Three moments, each O(what changed) except the first:

* a member becomes leader (role, term or life change): every known
  committed index whose `seen_term` is below its term is compared with its
  log, in bulk (a list comparison, entry per entry only on a mismatch);
* indexes become committed: every current leader of a later term must
  hold them already;
* a current leader's log changes below the known commit: the changed part
  is compared again.

An index at or below a log's snapshot point is covered by the snapshot;
at the snapshot point itself the snapshot's term must be the committed one.
"""

from __future__ import annotations

from typing import Any

from kubeproof.raft.types import StateType
from kubeproof.sim.observe import ClusterView, Event, Violation

from . import ids
from .checker import RaftChecker
from .tracker import UNKNOWN, NodeTrack, Observation, entry_json

_LEADER = StateType.Leader


class LeaderCompleteness(RaftChecker):
    """RAFT-LEADER-COMPLETENESS: committed entries appear in the logs of all later leaders.

    Property: let index i be known committed (some live node's commit
    index reached i) with entry e, first known committed by a node whose
    term was T.  Then at every step, every live node that is leader of a
    term > T holds e at index i in its live log, or has i at or below its
    snapshot point (where, at the point itself, the snapshot term is e's).

    History kept: none of its own; it reads the tracker's known-committed
    log and each leader's mirrored log.  A violation is reported at the
    event that made the bad leader (the election), or that committed an
    entry a current later-term leader lacks, or that changed a leader's log
    under the commit index.
    """

    ID = ids.LEADER_COMPLETENESS

    def inspect(
        self, view: ClusterView, event: Event, obs: Observation, out: list[Violation]
    ) -> None:
        c = self.tracker.committed
        if c.index == 0:
            return
        checked: set[int] = set()
        for tr in obs.touched:
            if not tr.alive or tr.state is not _LEADER:
                continue
            if tr.life_start or tr.p_state is not _LEADER or tr.p_term != tr.term:
                self._check(tr, 1, c.index, obs.step, "became leader", out)
                checked.add(tr.id)
            else:
                d = tr.log_delta
                if d is not None and (d.removed or d.snapshot) and d.cut <= c.index:
                    self._check(tr, min(d.cut, d.new_base), c.index, obs.step, "log changed", out)
                    checked.add(tr.id)
        if obs.new_hi >= obs.new_lo:
            for tr in self.tracker.tracks.values():
                if tr.id not in checked and tr.alive and tr.state is _LEADER:
                    self._check(tr, obs.new_lo, obs.new_hi, obs.step, "entries committed", out)

    def _check(
        self, tr: NodeTrack, lo: int, hi: int, step: int, why: str, out: list[Violation]
    ) -> None:
        """Does leader `tr` hold every committed entry in lo..hi that it must?"""
        c = self.tracker.committed
        log = tr.log
        assert log is not None
        term = tr.term
        seen = c.seen_term
        lo = max(lo, 1)
        base, top = log.base, log.top
        # At the snapshot point only the term can be compared.
        if lo <= base <= hi and seen[base] < term:
            ct = c.terms[base]
            if ct != UNKNOWN and log.base_term is not None and log.base_term != ct:
                self._fail(tr, base, None, log.base_term, step, why, out)
                return
        a, b = max(lo, base + 1), min(hi, top)
        if a <= b:
            mine = log.ents[a - base - 1 : b - base]
            if mine != c.ents[a : b + 1]:
                for i in range(a, b + 1):
                    if seen[i] >= term:
                        continue
                    e = mine[i - a]
                    ce = c.ents[i]
                    if ce is None:
                        if c.terms[i] == UNKNOWN or c.terms[i] == e.term:
                            continue
                    elif ce is e or ce == e:
                        continue
                    self._fail(tr, i, e, e.term, step, why, out)
                    return
        for i in range(max(lo, top + 1), hi + 1):
            if seen[i] < term:
                self._fail(tr, i, None, None, step, why, out)
                return

    def _fail(
        self,
        tr: NodeTrack,
        i: int,
        has: Any,
        has_term: int | None,
        step: int,
        why: str,
        out: list[Violation],
    ) -> None:
        c = self.tracker.committed
        log = tr.log
        assert log is not None
        if has is None and has_term is None:
            what = f"lacks it (its last index is {log.top})"
        else:
            what = f"holds term {has_term} there instead"
        self._report(
            out,
            (tr.id, tr.term, tr.incarnation, i),
            step,
            f"leader {tr.id} of term {tr.term} ({why}) does not hold committed entry {i} "
            f"(term {c.terms[i]}, known committed since step {c.steps[i]} by node {c.by[i]} "
            f"at term {c.seen_term[i]}); it {what}",
            {
                "leader": tr.id,
                "term": tr.term,
                "index": i,
                "committed": entry_json(c.ents[i]),
                "committed_term": c.terms[i],
                "committed_by": c.by[i],
                "committed_at_step": c.steps[i],
                "committed_seen_term": c.seen_term[i],
                "leader_entry": entry_json(has),
                "leader_term_at_index": has_term,
                "leader_last_index": log.top,
                "leader_first_index": log.base + 1,
            },
        )
