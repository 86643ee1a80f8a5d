"""Elections: one leader per term, one vote per term.

Theory of operation
-------------------
`ElectionSafety` remembers, for every term in which it ever saw a leader,
which member (and which life of it) that was, for the whole run: a second
leader of a term is a violation even if the first has long crashed.
`VoteOnce` checks the rule that makes election safety hold: a member's
vote in a term, once cast, never changes, neither in its live state nor on
its disk, is on its disk before the vote is sent, and survives a restart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubeproof.raft.types import StateType
from kubeproof.sim.observe import ClusterView, Event, Violation

from . import ids
from .checker import RaftChecker
from .tracker import ClusterTracker, Observation

_LEADER = StateType.Leader


class ElectionSafety(RaftChecker):
    """RAFT-ELECTION-SAFETY: at most one leader per term, over the whole history.

    Property: for every term t, all observations of a live node in state
    Leader with term t, at any step of the run, are of the same member and
    the same life of it.  The one exception to "same life" is a leader whose
    term never reached its disk (a single-voter cluster can elect itself
    before any Ready is persisted): a member may lead term t again in a later
    life only if its durable term at that restart was below t.

    History kept: term -> (leader id, incarnation, step first seen), for
    every term that had a leader.  Checked when a member becomes leader (a
    role, term or life change), so the violation is reported at the very
    event that made the second leader.
    """

    ID = ids.ELECTION_SAFETY

    def __init__(self, tracker: ClusterTracker | None = None) -> None:
        super().__init__(tracker)
        self.leaders: dict[int, tuple[int, int, int]] = {}

    def inspect(
        self, view: ClusterView, event: Event, obs: Observation, out: list[Violation]
    ) -> None:
        for tr in obs.touched:
            if not tr.alive or tr.state is not _LEADER:
                continue
            if not tr.life_start and tr.p_state is _LEADER and tr.p_term == tr.term:
                continue  # still the same leadership
            term = tr.term
            rec = self.leaders.get(term)
            if rec is None:
                self.leaders[term] = (tr.id, tr.incarnation, obs.step)
                continue
            lid, linc, lstep = rec
            if lid == tr.id and (linc == tr.incarnation or tr.life_hs.term < term):
                continue
            ev: dict[str, Any] = {
                "term": term,
                "first_leader": lid,
                "first_incarnation": linc,
                "first_step": lstep,
                "second_leader": tr.id,
                "second_incarnation": tr.incarnation,
            }
            if lid == tr.id:
                ev["durable_term_at_restart"] = tr.life_hs.term
                msg = (
                    f"node {tr.id} is leader of term {term} again in life {tr.incarnation}; "
                    f"it already led term {term} in life {linc} (step {lstep})"
                )
            else:
                msg = (
                    f"two leaders in term {term}: node {lid} (since step {lstep}) and node {tr.id}"
                )
            self._report(out, ("leader", term, tr.id, tr.incarnation), obs.step, msg, ev)


class VoteOnce(RaftChecker):
    """RAFT-VOTE-ONCE: a member votes for at most one candidate per term, across lives.

    Property, per member m:

    1. live: within one life, if m voted for c in term t (vote == c != 0),
       its vote stays c for as long as its term is t;
    2. live vs disk: whenever m's live term equals its durable term t and
       the durable vote is c != 0, m's live vote is c (a restart must not
       forget the vote);
    3. disk: the durable hard state never changes a non-zero vote within
       one term;
    4. persist before send: when the event carries the messages a member
       sent (the harness's `process_ready` payload, `sent[*].msg` in codec
       form), every granted MsgVoteResp for term t to candidate c leaves
       while m's durable hard state has term > t, or term t and vote c.

    History kept: none beyond the tracker's previous sample and durable
    hard state of each member.  (1) and (3) catch a node granting a second
    vote at the delivery that made it; (2) catches a forgotten vote at the
    restart itself; (4) catches a vote sent before it is durable at the
    Ready that sent it.
    """

    ID = ids.VOTE_ONCE
    always = True

    def inspect(
        self, view: ClusterView, event: Event, obs: Observation, out: list[Violation]
    ) -> None:
        step = obs.step
        for tr in obs.touched:
            if tr.alive:
                if (
                    not tr.life_start
                    and tr.p_term == tr.term
                    and tr.p_vote
                    and tr.vote != tr.p_vote
                ):
                    self._report(
                        out,
                        ("live", tr.id, tr.term, tr.vote),
                        step,
                        f"node {tr.id} changed its vote in term {tr.term} "
                        f"from {tr.p_vote} to {tr.vote}",
                        {"node": tr.id, "term": tr.term, "first_vote": tr.p_vote, "vote": tr.vote},
                    )
                hs = tr.hs
                if hs.term == tr.term and hs.vote and tr.vote != hs.vote:
                    self._report(
                        out,
                        ("disk", tr.id, tr.term, tr.vote),
                        step,
                        f"node {tr.id} (life {tr.incarnation}) has vote {tr.vote} in term "
                        f"{tr.term} but its disk records a vote for {hs.vote} in that term",
                        {
                            "node": tr.id,
                            "term": tr.term,
                            "vote": tr.vote,
                            "durable_vote": hs.vote,
                            "incarnation": tr.incarnation,
                            "restarted_here": tr.life_start,
                        },
                    )
            if tr.hs_changed:
                p, hs = tr.p_hs, tr.hs
                if p.term == hs.term and p.vote and hs.vote != p.vote:
                    self._report(
                        out,
                        ("durable", tr.id, hs.term, hs.vote),
                        step,
                        f"node {tr.id}'s durable vote in term {hs.term} changed "
                        f"from {p.vote} to {hs.vote}",
                        {"node": tr.id, "term": hs.term, "first_vote": p.vote, "vote": hs.vote},
                    )
        if event.node is not None:
            self._check_sent_votes(view, event, step, out)

    def _check_sent_votes(
        self, view: ClusterView, event: Event, step: int, out: list[Violation]
    ) -> None:
        sent = event.payload.get("sent")
        if not isinstance(sent, list) or not sent:
            return
        nv = view.nodes.get(event.node) if event.node is not None else None
        if nv is None:
            return
        hs = nv.storage.hard_state
        for item in sent:
            msg = item.get("msg") if isinstance(item, Mapping) else None
            if not isinstance(msg, Mapping) or msg.get("type") != "MsgVoteResp":
                continue
            if msg.get("reject", False):
                continue
            term, cand = msg.get("term", 0), msg.get("to", 0)
            if not isinstance(term, int) or not isinstance(cand, int):
                continue
            if hs.term > term or (hs.term == term and hs.vote == cand):
                continue
            self._report(
                out,
                ("sent", event.node, term, cand),
                step,
                f"node {event.node} sent a vote for {cand} in term {term} that is not on its "
                f"disk (durable term {hs.term}, vote {hs.vote})",
                {
                    "node": event.node,
                    "term": term,
                    "candidate": cand,
                    "durable_term": hs.term,
                    "durable_vote": hs.vote,
                },
            )
