"""Membership changes: each step keeps quorums overlapping, one change at a time.

Theory of operation
-------------------
Raft changes its configuration safely only if no two leaders can be made
by disjoint quorums, of the old and the new configuration.  etcd's rules
(which kubeproof's node follows): a change takes effect when it is
applied; a change of more than one voter goes through a joint
configuration; a leader accepts a change only when every earlier change in
its log is applied, and not before it has committed an entry of its own
term (the fix of Ongaro's single-server bug: a new leader's empty entry).

The checker sees the changes three ways:

* in the application's payloads (`tracker.Observation.confs`): every change
  a member applies names its index, the configuration before and after; the
  two must have intersecting quorums, and every member must reach the same
  configuration at one index;
* in the logs of leaders: when a leader's log gains a configuration change
  of its own term, the leader has applied an entry of its term, and no
  other change in its log is unapplied;
* at elections: the configuration a leader was elected in (its
  `conf_state()`, when the node reports one) names it as a voter, and one
  term has no two leaders of different configurations; and a leader that
  applies a change removing or demoting itself is no longer leader after
  that event (a learner left leading a one-voter configuration would answer
  ReadIndex on its own).
"""

from __future__ import annotations

from typing import Any

from kubeproof.raft.types import ConfState, EntryType, StateType
from kubeproof.sim.observe import ClusterView, Event, Violation

from . import ids
from .checker import RaftChecker
from .quorums import describe, disjoint_quorums, quorums_intersect
from .tracker import ClusterTracker, NodeTrack, Observation, entry_json

_LEADER = StateType.Leader
_NORMAL = EntryType.EntryNormal


def _conf_of(tr: NodeTrack) -> ConfState | None:
    fn = getattr(tr.node, "conf_state", None)
    if not callable(fn):
        return None
    cs = fn()
    return cs if isinstance(cs, ConfState) else None


class ConfigSafety(RaftChecker):
    """RAFT-CONFIG-SAFETY: configuration changes never let disjoint quorums decide.

    Property:

    1. quorums overlap: when a member applies a membership change, every
       quorum of the configuration after it intersects every quorum of the
       configuration before it (at most one voter changes outside a joint
       configuration; entering and leaving a joint one keep one half);
    2. one configuration per index: every member that applies the change
       at index i (or restores a snapshot taken at i) reaches the same
       configuration;
    3. one change at a time: when a leader's log gains a configuration
       change of its term, the leader has already applied an entry of its
       term (it committed one: Ongaro's single-server fix, etcd's empty
       entry) and every earlier configuration change in its log;
    4. leaders are voters: a member becomes leader only as a voter of the
       configuration it is in, stays leader only while it is one (after
       applying a change that removes or demotes it, it is leader no
       more), and no term has two leaders of different configurations.

    History kept: index -> first configuration reached there (member,
    step); term -> (leader, configuration, step) of its first leader.
    Reported at the Ready that applied the change, the event that put the
    change in the leader's log, or the election.
    """

    ID = ids.CONFIG_SAFETY
    always = True  # a change can arrive in a payload that moved nothing else

    def __init__(self, tracker: ClusterTracker | None = None) -> None:
        super().__init__(tracker)
        self.first: dict[int, tuple[ConfState, int, int]] = {}
        self.leaders: dict[int, tuple[int, ConfState | None, int]] = {}

    def inspect(
        self, view: ClusterView, event: Event, obs: Observation, out: list[Violation]
    ) -> None:
        step = obs.step
        last: dict[int, ConfState] = {}
        for ac in obs.confs:
            self._applied(ac.node, ac.index, ac.conf, ac.prev, ac.cc, ac.snapshot, step, out)
            last[ac.node] = ac.conf
        for nid, cs in last.items():
            tr = self.tracker.tracks.get(nid)
            if tr is None or not tr.alive or tr.state is not _LEADER:
                continue
            if nid in set(cs.voters) | set(cs.voters_outgoing):
                continue
            self._report(
                out,
                ("still", nid, tr.term),
                step,
                f"leader {nid} of term {tr.term} applied configuration {describe(cs)}, "
                "in which it is not a voter, and is still leader",
                {"leader": nid, "term": tr.term, "configuration": describe(cs)},
            )
        for tr in obs.touched:
            if not tr.alive or tr.state is not _LEADER:
                continue
            if tr.life_start or tr.p_state is not _LEADER or tr.p_term != tr.term:
                self._elected(tr, step, out)
            else:
                self._appended(tr, step, out)

    # ------------------------------------------------------------- (1), (2)

    def _applied(
        self,
        node: int,
        index: int,
        cs: ConfState,
        prev: ConfState | None,
        cc: Any,
        snapshot: bool,
        step: int,
        out: list[Violation],
    ) -> None:
        rec = self.first.get(index)
        if rec is None:
            self.first[index] = (cs, node, step)
        elif rec[0] != cs:
            how = "restored a snapshot with" if snapshot else "applied"
            self._report(
                out,
                ("index", index, node),
                step,
                f"member {node} {how} configuration {describe(cs)} at index {index}, but "
                f"member {rec[1]} reached {describe(rec[0])} there (step {rec[2]})",
                {
                    "index": index,
                    "node": node,
                    "configuration": describe(cs),
                    "first_node": rec[1],
                    "first_configuration": describe(rec[0]),
                    "first_step": rec[2],
                },
            )
        if prev is None or quorums_intersect(prev, cs):
            return
        split = disjoint_quorums(prev, cs)
        self._report(
            out,
            ("overlap", index),
            step,
            f"the change at index {index} (applied by member {node}) takes configuration "
            f"{describe(prev)} to {describe(cs)}, whose quorums do not all intersect",
            {
                "index": index,
                "node": node,
                "change": cc,
                "before": describe(prev),
                "after": describe(cs),
                "disjoint_quorums": list(split) if split is not None else None,
            },
        )

    # ----------------------------------------------------------------- (3)

    def _appended(self, tr: NodeTrack, step: int, out: list[Violation]) -> None:
        d = tr.log_delta
        log = tr.log
        if d is None or not d.added or log is None:
            return
        term = tr.term
        for e in d.added:
            if e.type is _NORMAL or e.term != term:
                continue
            applied = tr.applied
            applied_term = log.term(applied)
            why = ""
            if applied_term != term:
                why = (
                    f"before it applied any entry of its term {term} (it has applied up to "
                    f"{applied}, of term {applied_term})"
                )
            else:
                for i in range(max(applied + 1, log.base + 1), e.index):
                    other = log.entry(i)
                    if other is not None and other.type is not _NORMAL:
                        why = (
                            f"while the change at index {i} is not applied yet (applied {applied})"
                        )
                        break
            if not why:
                continue
            self._report(
                out,
                ("pending", tr.id, term, e.index),
                step,
                f"leader {tr.id} of term {term} appended a configuration change at index "
                f"{e.index} {why}",
                {
                    "leader": tr.id,
                    "term": term,
                    "index": e.index,
                    "entry": entry_json(e),
                    "applied": applied,
                    "applied_term": applied_term,
                    "commit": tr.commit,
                },
            )
            return

    # ----------------------------------------------------------------- (4)

    def _elected(self, tr: NodeTrack, step: int, out: list[Violation]) -> None:
        cs = _conf_of(tr)
        term = tr.term
        if cs is not None and tr.id not in set(cs.voters) | set(cs.voters_outgoing):
            self._report(
                out,
                ("voter", tr.id, term),
                step,
                f"member {tr.id} became leader of term {term} but is not a voter of its "
                f"configuration {describe(cs)}",
                {"leader": tr.id, "term": term, "configuration": describe(cs)},
            )
        rec = self.leaders.get(term)
        if rec is None:
            self.leaders[term] = (tr.id, cs, step)
            return
        lid, lcs, lstep = rec
        if lid == tr.id or lcs is None or cs is None or lcs == cs:
            return  # the same leader again, or (same configuration) Election Safety's case
        self._report(
            out,
            ("two", term, tr.id),
            step,
            f"two leaders in term {term} in different configurations: member {lid} in "
            f"{describe(lcs)} (step {lstep}) and member {tr.id} in {describe(cs)}",
            {
                "term": term,
                "first_leader": lid,
                "first_configuration": describe(lcs),
                "first_step": lstep,
                "second_leader": tr.id,
                "second_configuration": describe(cs),
            },
        )
