"""PreVote: a pre-candidate disturbs nobody's term.

Theory of operation
-------------------
PreVote (Ongaro's thesis, section 9.6) lets a node that lost touch with the
leader ask whether it *could* win before it bumps its term: the pre-vote
round runs at term + 1 in the messages only.  Its whole point is that a
partitioned node rejoining with a stale log cannot depose a working leader
by raising terms; so the rule is visible from outside, in two places:

* a node that becomes a pre-candidate keeps its term and its vote, and a
  pre-candidate's term never moves while it stays one (it may still grant a
  real candidate of its own term its vote, as etcd's does: that changes its
  vote, not its term);
* stepping a `MsgPreVote` (a `deliver` event of that type) changes neither
  the receiver's term nor its vote, whatever term the message carries.
"""

from __future__ import annotations

from kubeproof.raft.types import StateType
from kubeproof.sim.observe import ClusterView, Event, Violation

from . import ids
from .checker import RaftChecker
from .tracker import Observation

_PRE = StateType.PreCandidate


class PreVoteTerm(RaftChecker):
    """RAFT-PREVOTE-TERM: pre-candidacy never changes a term or a vote.

    Property: (1) whenever a member is a pre-candidate after an event in
    which it was alive before and after (same life), its term is what it
    was before the event, and if it was not a pre-candidate before, so is
    its vote (becoming a pre-candidate changes neither; a pre-candidate may
    vote for a candidate of its own term); (2) a member that steps a
    MsgPreVote keeps its term and its vote.

    History kept: none beyond the tracker's previous sample.  Reported at
    the tick (the pre-campaign) or the delivery that changed the term.
    """

    ID = ids.PREVOTE_TERM

    def inspect(
        self, view: ClusterView, event: Event, obs: Observation, out: list[Violation]
    ) -> None:
        prevote_delivered = event.kind == "deliver" and event.payload.get("type") == "MsgPreVote"
        for tr in obs.touched:
            if not tr.alive or tr.life_start:
                continue
            if tr.term == tr.p_term and tr.vote == tr.p_vote:
                continue
            if tr.state is _PRE and (tr.term != tr.p_term or tr.p_state is not _PRE):
                why = "as a pre-candidate"
            elif prevote_delivered and tr.id == event.node:
                why = "on a MsgPreVote"
            else:
                continue
            self._report(
                out,
                (tr.id, tr.incarnation, tr.term, tr.vote),
                obs.step,
                f"member {tr.id} changed its term {tr.p_term} -> {tr.term} and vote "
                f"{tr.p_vote} -> {tr.vote} {why}",
                {
                    "node": tr.id,
                    "state": tr.state.value,
                    "previous_state": tr.p_state.value,
                    "term_before": tr.p_term,
                    "term": tr.term,
                    "vote_before": tr.p_vote,
                    "vote": tr.vote,
                    "event": event.kind,
                },
            )
