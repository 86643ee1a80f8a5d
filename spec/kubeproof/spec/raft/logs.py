"""How logs may change: leaders only append, followers only cut at a conflict,
and an (index, term) pair names one entry and one history.

Theory of operation
-------------------
All three checkers read the tracker's per-event `LogDelta`s (what changed
in a live log, or in a storage, since the previous event), so each costs
the size of the change.

`LogMatching` uses the inductive form of the Log Matching Property.  It
keeps one ghost map over the whole run,

    (index, term) -> (entry, term at index - 1)

filled from every entry that appears in any live log or storage.  If two
logs hold an entry with the same index and term but differ somewhere
below it, then walking down from there there is a first index where they
differ: either both hold the same (index, term) with different contents,
or both hold the same entry at index + 1 preceded by different terms.
Either way the map sees two values for one key the moment the second log
gets its entry, so checking the map is checking the property, for every
pair of logs, without ever comparing two logs.  (It is also stronger: an
(index, term) must name the same entry over the whole history, which Raft
guarantees since only the leader of a term creates entries of that term,
once per index.)
"""

from __future__ import annotations

from typing import Any

from kubeproof.raft.types import Entry, StateType
from kubeproof.sim.observe import ClusterView, Event, Violation

from . import ids
from .checker import RaftChecker
from .mirror import LogDelta
from .tracker import ClusterTracker, NodeTrack, Observation, entries_json, entry_json

_LEADER = StateType.Leader


class LeaderAppendOnly(RaftChecker):
    """RAFT-LEADER-APPEND-ONLY: a leader never overwrites or deletes entries of its log.

    Property: while a member stays leader of one term in one life (between
    two consecutive events at which it is leader with the same term and
    incarnation), no entry of its live log above its snapshot point is
    removed or replaced; the log only grows (compaction of the prefix
    aside).

    History kept: the tracker's mirror of each live log and the previous
    role/term sample.  The violation is reported at the event that changed
    the leader's log, with the entries removed and what replaced them.
    """

    ID = ids.LEADER_APPEND_ONLY

    def inspect(
        self, view: ClusterView, event: Event, obs: Observation, out: list[Violation]
    ) -> None:
        for tr in obs.touched:
            d = tr.log_delta
            if d is None or d.fresh or tr.life_start or not d.removed:
                continue
            if tr.p_state is _LEADER and tr.state is _LEADER and tr.p_term == tr.term:
                self._report(
                    out,
                    (tr.id, tr.term, d.cut, obs.step),
                    obs.step,
                    f"leader {tr.id} of term {tr.term} removed or replaced {len(d.removed)} "
                    f"entries of its log from index {d.cut}",
                    {
                        "node": tr.id,
                        "term": tr.term,
                        "index": d.cut,
                        "removed": entries_json(d.removed),
                        "replaced_by": entries_json(list(d.added)),
                        "last_index_before": d.old_top,
                        "last_index_after": d.new_top,
                    },
                )


class TruncateOnConflict(RaftChecker):
    """RAFT-TRUNCATE-ON-CONFLICT: a log loses entries only where a conflicting entry replaces them.

    Property (AppendEntries rule 3 of the paper's Figure 2): within one
    life, if an event removes or replaces entries of a member's live log
    from index c on, then either the log now has at c an entry whose term
    differs from the one it replaced, or a snapshot was installed that the
    log conflicted with: the log's start moved forward to the snapshot's
    index s, the log did not hold the snapshot's entry (index s with the
    snapshot's term), and s is above the commit index the node had (etcd's
    restore: a log that already holds the snapshot's entry only moves its
    commit).  A stale or duplicated append whose entries all match must
    not cut the log's tail, nor may a stale snapshot.  (A crash may lose
    unpersisted entries; that is a new life, not a change within one.)

    History kept: the tracker's mirror of each live log.  The violation is
    reported at the delivery that cut the log, before the loss can reach
    the disk or a quorum.
    """

    ID = ids.TRUNCATE_ON_CONFLICT

    def inspect(
        self, view: ClusterView, event: Event, obs: Observation, out: list[Violation]
    ) -> None:
        for tr in obs.touched:
            d = tr.log_delta
            if d is None or d.fresh or tr.life_start or not d.removed:
                continue
            if d.snapshot:
                self._snapshot(tr, d, event, obs.step, out)
                continue
            old = d.removed[0]
            new = tr.live_entry(d.cut)
            if new is not None and new.term != old.term:
                continue
            if new is None:
                msg = (
                    f"node {tr.id} cut its log from index {d.cut} (last index {d.old_top} -> "
                    f"{d.new_top}) without a conflicting entry"
                )
            else:
                msg = (
                    f"node {tr.id} replaced entry {d.cut} by one of the same term {old.term} "
                    "(no term conflict)"
                )
            self._report(
                out,
                (tr.id, tr.incarnation, d.cut, obs.step),
                obs.step,
                msg,
                {
                    "node": tr.id,
                    "term": tr.term,
                    "state": tr.state.value,
                    "index": d.cut,
                    "removed": entries_json(d.removed),
                    "now": entry_json(new),
                    "last_index_before": d.old_top,
                    "last_index_after": d.new_top,
                    "event": event.kind,
                },
            )

    def _snapshot(
        self, tr: NodeTrack, d: LogDelta, event: Event, step: int, out: list[Violation]
    ) -> None:
        s = d.new_base
        log = tr.log
        assert log is not None
        snap_term = log.base_term
        matched = d.old_term_at_base is not None and d.old_term_at_base == snap_term
        if not matched and s > tr.p_commit:
            return
        why = (
            f"although its log already held the snapshot's entry (index {s}, term {snap_term})"
            if matched
            else f"at or below its commit index {tr.p_commit}"
        )
        self._report(
            out,
            (tr.id, tr.incarnation, "snapshot", s, step),
            step,
            f"node {tr.id} installed a snapshot at index {s}, discarding its log from "
            f"index {d.cut} on, {why}",
            {
                "node": tr.id,
                "term": tr.term,
                "snapshot_index": s,
                "snapshot_term": snap_term,
                "log_term_at_snapshot_index": d.old_term_at_base,
                "commit_before": tr.p_commit,
                "removed": entries_json(d.removed),
                "event": event.kind,
            },
        )


class LogMatching(RaftChecker):
    """RAFT-LOG-MATCHING: same index and term means the same entry and the same log below it.

    Property: for any two logs L1, L2 among all members' live (unified)
    logs and durable storages, at any step, if L1 and L2 both hold an entry
    with index i and term t, they hold identical entries at every index
    j <= i that both still hold (above their snapshot points).  Checked in
    its inductive, history-wide form (module docstring): the ghost map
    (index, term) -> (entry, term at index - 1) must be a function over
    every entry that ever appeared in any of those logs.  Each log is also
    checked to be well-formed where it changed: the entry at position i
    has index i, and terms never decrease along the log.

    History kept: the ghost map, one record per distinct (index, term)
    ever seen (entry, predecessor term, where and when first seen).  Work
    per event: the entries added by that event.
    """

    ID = ids.LOG_MATCHING

    def __init__(self, tracker: ClusterTracker | None = None) -> None:
        super().__init__(tracker)
        self.ghost: dict[tuple[int, int], tuple[Entry, int | None, int, str, int]] = {}

    def inspect(
        self, view: ClusterView, event: Event, obs: Observation, out: list[Violation]
    ) -> None:
        for tr in obs.touched:
            if tr.log_delta is not None and tr.log_delta.added:
                self._register(tr, tr.log_delta, "log", obs.step, out)
            if tr.disk_delta is not None and tr.disk_delta.added:
                self._register(tr, tr.disk_delta, "storage", obs.step, out)

    def _register(
        self, tr: NodeTrack, d: LogDelta, where: str, step: int, out: list[Violation]
    ) -> None:
        ghost = self.ghost
        prev = d.prev_term
        i = d.cut
        for e in d.added:
            if e.index != i or (prev is not None and e.term < prev):
                self._malformed(tr, where, i, e, prev, step, out)
                return
            key = (i, e.term)
            rec = ghost.get(key)
            if rec is None:
                ghost[key] = (e, prev, tr.id, where, step)
            else:
                first, first_prev, who, first_where, first_step = rec
                same_entry = first is e or first == e
                same_prev = prev is None or first_prev is None or prev == first_prev
                if not (same_entry and same_prev):
                    ev: dict[str, Any] = {
                        "index": i,
                        "term": e.term,
                        "first": {
                            "node": who,
                            "in": first_where,
                            "step": first_step,
                            "entry": entry_json(first),
                            "prev_term": first_prev,
                        },
                        "second": {
                            "node": tr.id,
                            "in": where,
                            "entry": entry_json(e),
                            "prev_term": prev,
                        },
                    }
                    what = "different entries" if not same_entry else "different logs below it"
                    self._report(
                        out,
                        (key, tr.id, where),
                        step,
                        f"entry ({i}, term {e.term}) has {what}: node {who}'s {first_where} "
                        f"(step {first_step}) and node {tr.id}'s {where}",
                        ev,
                    )
                    return
            prev = e.term
            i += 1

    def _malformed(
        self,
        tr: NodeTrack,
        where: str,
        i: int,
        e: Entry,
        prev: int | None,
        step: int,
        out: list[Violation],
    ) -> None:
        if e.index != i:
            msg = f"node {tr.id}'s {where} holds an entry claiming index {e.index} at index {i}"
        else:
            msg = f"node {tr.id}'s {where} has term {e.term} at index {i} after term {prev}"
        self._report(
            out,
            ("malformed", tr.id, where, i),
            step,
            msg,
            {"node": tr.id, "in": where, "index": i, "entry": entry_json(e), "prev_term": prev},
        )
