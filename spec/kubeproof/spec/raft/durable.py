"""Committed entries are never lost: not by a quorum's disks, not by the node
that committed them, not from under an acknowledged client.

Theory of operation
-------------------
The durable part uses the prefix structure of a committed log.  For each
member's storage the checker keeps `held`, the highest index h <= C (C the
highest known-committed index) such that the storage holds the committed
entries 1..h: at index h it holds the committed entry, or h is at or below
its snapshot point.  Given Log Matching (checked separately), a
storage holding committed entry h holds every committed entry below it, so
"every committed index is on enough disks" is an order statistic of `held`,
the same computation a leader makes for its commit index.

"Enough" is relative to the configuration in force (the tracker's
`ConfigHistory`: the configuration applied at the highest index anywhere):
the disks holding index i must *block* it, i.e. the voters lacking i must
not form a quorum (`quorums.blocked_up_to`).  For an odd number of voters
that is a majority; for an even number, half (a configuration just grown
from 3 to 4 voters holds its committed entries on 2 of them, and no quorum
of 3 can avoid both); for a joint configuration, blocking either half.
Learners never count.  With no configuration known (a view whose nodes do
not report one) every member counts as a voter, as before membership
changes existed; `raft_checkers(voters=...)` fixes the voters instead.

`held` is maintained incrementally: a storage change at index c lowers it
to at most c - 1 (the prefix below c did not change); when it may rise
(C grew, or the storage gained entries) the checker looks down from
min(C, last index) towards the old value, stopping at the first match, and
remembers how far up it already looked in vain (`looked`) so that a
lagging or divergent storage is not walked again at every commit.
"""

from __future__ import annotations

from itertools import islice
from typing import Any

from kubeproof.raft.types import ConfState
from kubeproof.sim.observe import ClusterView, Event, Violation

from . import ids
from .checker import RaftChecker
from .quorums import blocked_up_to, describe
from .tracker import UNKNOWN, ClusterTracker, NodeTrack, Observation, entries_json, entry_json


class CommittedDurable(RaftChecker):
    """RAFT-COMMITTED-DURABLE: an entry once committed is never lost.

    Let C be the highest index known committed (some live node's commit
    index reached it), and for i <= C let e_i be the entry first known
    committed at i (term t_i).  At every step:

    1. quorum on disk: every i <= C is durable on a set of disks that
       blocks every quorum of the configuration in force (the one applied
       at the highest index anywhere; for an odd number of voters a
       majority, for an even number half, for a joint one either half;
       every member of the view if no configuration is known, or `voters`
       if given): each of those storages holds e_i at i, or has i at or
       below its snapshot point (the entry is compared at the highest
       committed index a storage holds; below it, Log Matching makes the
       prefix the committed one);
    2. one entry per index: no node's commit index ever covers an index i
       at which its log holds an entry other than e_i (nor a snapshot whose
       term at its point differs from the committed term there), and no
       node's commit index exceeds its own last index;
    3. a node keeps what it committed: within one life, no event removes or
       replaces an entry of a node's live log at or below the commit index
       the node had before the event (moving the snapshot point over it is
       not a loss);
    4. acknowledged writes stay: every payload the client was told is
       committed at index i (`ClusterView.acknowledged`) was known committed
       at i when acknowledged, with that payload as data; by (2) it stays.

    History kept: per storage `held` and `looked` (module docstring), the
    number of acknowledgements already checked, and index -> payload of
    acknowledged writes (for evidence).  Violations are reported at the
    event that breaks the property: the Ready that overwrote a disk, the
    delivery that made a node commit or cut, the acknowledgement.
    """

    ID = ids.COMMITTED_DURABLE
    always = True

    def __init__(
        self, tracker: ClusterTracker | None = None, voters: tuple[int, ...] | None = None
    ) -> None:
        super().__init__(tracker)
        self.voters = voters
        self.held: dict[int, int] = {}
        self.looked: dict[int, int] = {}
        self.acks_seen = 0
        self.acked: dict[int, bytes] = {}

    def inspect(
        self, view: ClusterView, event: Event, obs: Observation, out: list[Violation]
    ) -> None:
        step = obs.step
        c = self.tracker.committed
        for i, tr, e, t in obs.conflicts:
            self._report(
                out,
                ("conflict", i, tr.id),
                step,
                f"node {tr.id} committed index {i} with term {t}, but entry {i} was already "
                f"committed with term {c.terms[i]} (by node {c.by[i]} at step {c.steps[i]})",
                {
                    "index": i,
                    "node": tr.id,
                    "entry": entry_json(e),
                    "term": t,
                    "committed": entry_json(c.ents[i]),
                    "committed_term": c.terms[i],
                    "committed_by": c.by[i],
                    "committed_at_step": c.steps[i],
                    "acknowledged_payload": _payload(self.acked.get(i)),
                },
            )
        for tr, commit, top in obs.beyond:
            self._report(
                out,
                ("beyond", tr.id, commit),
                step,
                f"node {tr.id}'s commit index {commit} is beyond its last index {top}",
                {"node": tr.id, "commit": commit, "last_index": top},
            )
        for tr in obs.touched:
            self._own_log(tr, step, out)
            self._snapshot_terms(tr, step, out)
        self._quorum(view, obs, out)
        self._acks(view, step, out)

    # ------------------------------------------------------------ (2), (3)

    def _own_log(self, tr: NodeTrack, step: int, out: list[Violation]) -> None:
        d = tr.log_delta
        if d is None or d.fresh or tr.life_start or not d.removed or d.cut > tr.p_commit:
            return
        self._report(
            out,
            ("own", tr.id, tr.incarnation, d.cut),
            step,
            f"node {tr.id} removed or replaced entry {d.cut} of its log, at or below its "
            f"commit index {tr.p_commit}",
            {
                "node": tr.id,
                "index": d.cut,
                "commit": tr.p_commit,
                "removed": entries_json(d.removed),
                "replaced_by": entries_json(list(d.added)),
            },
        )

    def _snapshot_terms(self, tr: NodeTrack, step: int, out: list[Violation]) -> None:
        c = self.tracker.committed
        for d, mirror, where in (
            (tr.log_delta, tr.log, "log"),
            (tr.disk_delta, tr.disk, "storage"),
        ):
            if d is None or mirror is None or not (d.snapshot or d.fresh):
                continue
            b = mirror.base
            if not 1 <= b <= c.index:
                continue
            ct = c.terms[b]
            if ct == UNKNOWN or mirror.base_term is None or mirror.base_term == ct:
                continue
            self._report(
                out,
                ("snap", tr.id, where, b),
                step,
                f"node {tr.id}'s {where} starts at a snapshot of index {b} with term "
                f"{mirror.base_term}, but entry {b} was committed with term {ct}",
                {
                    "node": tr.id,
                    "in": where,
                    "index": b,
                    "snapshot_term": mirror.base_term,
                    "committed_term": ct,
                },
            )

    # ----------------------------------------------------------------- (1)

    def _quorum(self, view: ClusterView, obs: Observation, out: list[Violation]) -> None:
        c = self.tracker.committed
        top = c.index
        grown = obs.new_hi >= obs.new_lo
        moved = False
        for tr in self.tracker.tracks.values() if grown else obs.touched:
            if grown or tr.disk_delta is not None or tr.id not in self.held:
                self._update_held(tr, top)
                moved = True
        if not (moved or obs.config_changed) or top == 0:
            return
        conf = self._config(view)
        q = blocked_up_to(conf, self.held)
        if q >= top:
            return
        i = q + 1
        voters = sorted(set(conf.voters) | set(conf.voters_outgoing))
        held = [self.held.get(v, 0) for v in voters]
        tracks = self.tracker.tracks
        on_disk: dict[str, Any] = {}
        for v in voters:
            vt = tracks.get(v)
            if vt is not None:
                disk = vt.disk
                on_disk[str(v)] = disk.term(i) if i > disk.base else f"snapshot {disk.base}"
        need = " and ".join(
            f"{len(h) - len(h) // 2} of {sorted(h)}"
            for h in (set(conf.voters), set(conf.voters_outgoing))
            if h
        )
        self._report(
            out,
            ("quorum", i),
            obs.step,
            f"committed entry {i} (term {c.terms[i]}) is durable on {sum(h >= i for h in held)} "
            f"of {len(voters)} voters, too few to block every quorum (needs {need})",
            {
                "index": i,
                "committed": entry_json(c.ents[i]),
                "committed_term": c.terms[i],
                "committed_by": c.by[i],
                "committed_at_step": c.steps[i],
                "voters": list(voters),
                "configuration": describe(conf),
                "configuration_index": self.tracker.configs.latest_index,
                "holders": [v for v in voters if self.held.get(v, 0) >= i],
                "durable_term_at_index": on_disk,
                "acknowledged_payload": _payload(self.acked.get(i)),
            },
        )

    def _config(self, view: ClusterView) -> ConfState:
        if self.voters is not None:
            return ConfState(voters=self.voters)
        latest = self.tracker.configs.latest
        if latest is not None:
            return latest
        return ConfState(voters=tuple(view.nodes))

    def _update_held(self, tr: NodeTrack, top: int) -> None:
        c = self.tracker.committed
        disk = tr.disk
        nid = tr.id
        h = self.held.get(nid, 0)
        looked = self.looked.get(nid, 0)
        d = tr.disk_delta
        if d is not None:
            if d.fresh:
                h = looked = 0
            else:
                low = d.cut - 1
                h = min(h, low)
                looked = min(looked, low)
        # The snapshot covers everything up to its point, if it agrees there.
        b = disk.base
        if b >= top:
            h = top
        elif b > h:
            ct = c.terms[b]
            if ct == UNKNOWN or disk.base_term == ct:
                h = b
        limit = min(top, disk.top)
        if limit > max(h, looked):
            terms, cents = c.terms, c.ents
            i = limit
            floor = max(h, looked)
            while i > floor:
                ct = terms[i]
                if ct == UNKNOWN:
                    h = i
                    break
                if disk.term(i) == ct:
                    ce, mine = cents[i], disk.entry(i)
                    if ce is None or ce is mine or ce == mine:
                        h = i
                        break
                i -= 1
            looked = limit
        self.held[nid] = h
        self.looked[nid] = max(looked, h)

    # ----------------------------------------------------------------- (4)

    def _acks(self, view: ClusterView, step: int, out: list[Violation]) -> None:
        acks = view.acknowledged
        n = len(acks)
        if n <= self.acks_seen:
            return
        c = self.tracker.committed
        for payload, i in islice(acks.items(), self.acks_seen, None):
            self.acked[i] = payload
            ev: dict[str, Any] = {"payload": _payload(payload), "index": i}
            if i > c.index:
                ev["known_committed_index"] = c.index
                self._report(
                    out,
                    ("ack", payload),
                    step,
                    f"payload {payload!r} acknowledged at index {i}, which is not known "
                    f"committed (highest known committed index {c.index})",
                    ev,
                )
                continue
            ce = c.ents[i]
            if ce is not None and ce.data != payload:
                ev["committed"] = entry_json(ce)
                self._report(
                    out,
                    ("ack", payload),
                    step,
                    f"payload {payload!r} acknowledged at index {i}, but the entry committed "
                    "there holds other data",
                    ev,
                )
        self.acks_seen = n


def _payload(p: bytes | None) -> str | None:
    if p is None:
        return None
    from kubeproof import codec

    result = codec.encode(p)
    return result if isinstance(result, str) else None
