"""Terms and commit indexes only grow: in a life, on disk, and across restarts.

Theory of operation
-------------------
A restarted node has lost its volatile state, so its new life is compared
not with what it last showed while alive but with what it had made durable:
the highest durable value ever seen on its storage.  The storage itself is
held to the same rule at every step: a durable term or commit never
decreases (the harness writes a Ready's hard state only after the node
produced it, so a decrease means the node produced one).

Both checkers share the shape (`_Monotonic`): a field of the live node, the
same field of the durable hard state, and per member the highest durable
value seen so far.
"""

from __future__ import annotations

from typing import ClassVar

from kubeproof.raft.types import HardState
from kubeproof.sim.observe import ClusterView, Event, Violation

from . import ids
from .checker import RaftChecker
from .tracker import ClusterTracker, NodeTrack, Observation


class _Monotonic(RaftChecker):
    field: ClassVar[str]

    def __init__(self, tracker: ClusterTracker | None = None) -> None:
        super().__init__(tracker)
        self.max_durable: dict[int, int] = {}

    def live(self, tr: NodeTrack) -> tuple[int, int]:
        raise NotImplementedError

    def durable(self, hs: HardState) -> int:
        return int(getattr(hs, self.field))

    def inspect(
        self, view: ClusterView, event: Event, obs: Observation, out: list[Violation]
    ) -> None:
        name = self.field
        step = obs.step
        for tr in obs.touched:
            nid = tr.id
            best = self.max_durable.get(nid, 0)
            now_durable = self.durable(tr.hs)
            if now_durable < best:
                self._report(
                    out,
                    ("durable", nid, now_durable),
                    step,
                    f"node {nid}'s durable {name} went back from {best} to {now_durable}",
                    {"node": nid, "durable_before": best, "durable": now_durable},
                )
            if tr.alive:
                before, now = self.live(tr)
                if tr.life_start:
                    if now < best:
                        self._report(
                            out,
                            ("restart", nid, tr.incarnation),
                            step,
                            f"node {nid} restarted (life {tr.incarnation}) with {name} {now}, "
                            f"below the {name} {best} it had made durable",
                            {
                                "node": nid,
                                "incarnation": tr.incarnation,
                                name: now,
                                f"durable_{name}": best,
                            },
                        )
                elif now < before:
                    self._report(
                        out,
                        ("live", nid, tr.incarnation, now),
                        step,
                        f"node {nid}'s {name} went back from {before} to {now}",
                        {"node": nid, "incarnation": tr.incarnation, "before": before, name: now},
                    )
                if now < now_durable:
                    self._report(
                        out,
                        ("behind", nid, tr.incarnation, now),
                        step,
                        f"node {nid}'s {name} {now} is below its own durable {name} {now_durable}",
                        {"node": nid, name: now, f"durable_{name}": now_durable},
                    )
            if now_durable > best:
                self.max_durable[nid] = now_durable


class TermMonotonic(_Monotonic):
    """RAFT-TERM-MONOTONIC: a member's term never decreases, across restarts too.

    Property, per member: (1) within one life its live term never
    decreases between events; (2) its durable term (storage hard state)
    never decreases; (3) a new life starts at a term >= the highest term it
    ever made durable; (4) its live term is never below its current durable
    term.  Volatile terms lost in a crash are not compared with (a term not
    yet persisted may be lost), durable ones are.

    History kept: per member, the highest durable term seen.  A decrease is
    reported at the event that made it: the delivery, the Ready that wrote
    it, or the restart.
    """

    ID = ids.TERM_MONOTONIC
    field = "term"

    def live(self, tr: NodeTrack) -> tuple[int, int]:
        return tr.p_term, tr.term


class CommitMonotonic(_Monotonic):
    """RAFT-COMMIT-MONOTONIC: a member's commit index never decreases, across restarts too.

    Property, per member: (1) within one life its live commit index never
    decreases between events; (2) its durable commit (storage hard state)
    never decreases; (3) a new life starts with commit >= the highest commit
    it ever made durable; (4) its live commit is never below its current
    durable commit.

    History kept: per member, the highest durable commit seen.
    """

    ID = ids.COMMIT_MONOTONIC
    field = "commit"

    def live(self, tr: NodeTrack) -> tuple[int, int]:
        return tr.p_commit, tr.commit
