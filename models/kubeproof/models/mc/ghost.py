"""The history a state must carry for its invariant verdicts: the ghost.

Theory of operation
-------------------
Raft's safety properties are about histories: "at most one leader per term
*ever*", "a committed entry is in every *later* leader's log", "no index is
ever applied with two different entries".  The spec's checkers keep that
history themselves, so two clusters in the same protocol state can still
have different futures *as judged by the checkers* if their pasts differ.
The model checker therefore adds to each state a ghost: the part of the
past the spec's checkers' verdicts depend on, recorded at every harness
event (the `Ghost` is the cluster's event sink, so it sees every event
before the checkers do).

| ghost field | what                                          | checker whose history it mirrors  |
| ----------- | --------------------------------------------- | --------------------------------- |
| `leaders`   | term -> its first leader, and whether that    | RAFT-ELECTION-SAFETY (which asks  |
|             | leader is still in the life it led in         | "same member, same life?"), and   |
|             |                                               | CONFIG-SAFETY's leaders per term  |
| `committed` | index -> (entry, term of the first node seen  | the tracker's known-committed log |
|             | to know it committed)                         | (LEADER-COMPLETENESS, COMMITTED-  |
|             |                                               | DURABLE, STATE-MACHINE-SAFETY,    |
|             |                                               | APPLY-DIGEST)                     |
| `entries`   | every entry ever held by a live log           | RAFT-LOG-MATCHING's (index, term) |
|             |                                               | -> entry map                      |
| `life_hs`   | member -> durable hard state when its current | RAFT-ELECTION-SAFETY's restart    |
|             | life began (only its comparison with each     | exception (a member may lead a    |
|             | term it led in an earlier life is hashed)     | term again in a later life only   |
|             |                                               | if that life began below it)      |

Everything else the checkers remember is either a function of the state
the model checker already hashes (the members' applied entries over all
lives, the acknowledged proposals, each member's durable hard state, whose
maximum *is* the current one as long as RAFT-TERM-MONOTONIC and
RAFT-COMMIT-MONOTONIC hold), or evidence only (step numbers, who saw a
fact first), which never changes a verdict.

Incarnation numbers themselves are not kept: the checkers only ever ask
whether two observations are of the same life, which the `leaders` flag
answers, so a state reached with a crash and one reached without can be
the same state.

The ghost also counts the model checker's budgeted actions (crashes,
drops, duplicates, heartbeats); the explorer keeps those whose bound is
finite beside the fingerprint (see `explorer`: a state reached again
having spent less is explored again, one that spent as much or more is
not).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kubeproof.raft import Entry, HardState, StateType
from kubeproof.sim.observe import Event

if TYPE_CHECKING:
    from kubeproof.sim.cluster import Cluster

_LEADER = StateType.Leader
_MEMBER_EVENTS = frozenset(
    {"tick", "deliver", "process_ready", "restart", "propose", "crash", "snapshot"}
)
"""Event kinds that can change the member the event names."""


class Ghost:
    """The cluster's event sink: records the ghost history (see the module docstring)."""

    __slots__ = (
        "cluster",
        "committed",
        "crashes",
        "drops",
        "duplicates",
        "entries",
        "heartbeats",
        "leaders",
        "life_hs",
    )

    def __init__(self) -> None:
        self.cluster: Cluster | None = None
        self.leaders: dict[int, tuple[int, bool]] = {}
        """term -> (its first leader, whether that leader is still in the same life)."""
        self.committed: list[tuple[Entry | None, int]] = []
        """Position i - 1 holds index i."""
        self.entries: frozenset[Entry] = frozenset()
        self.life_hs: dict[int, HardState] = {}
        self.crashes = 0
        self.drops = 0
        self.duplicates = 0
        self.heartbeats = 0

    def attach(self, cluster: Cluster) -> None:
        self.cluster = cluster
        for m in cluster.members.values():
            self._look(m.id)

    def detach(self) -> None:
        """Break the cluster <-> ghost cycle, so that a dropped state is freed at once."""
        self.cluster = None

    def __call__(self, event: Event) -> None:
        if event.kind in _MEMBER_EVENTS and event.node is not None:
            if event.kind == "restart":
                c = self.cluster
                assert c is not None
                n = event.node
                self.life_hs[n] = c.members[n].storage.hard_state
                leaders = self.leaders
                for t, (lead, _) in leaders.items():
                    if lead == n:
                        leaders[t] = (lead, False)
            self._look(event.node)

    def _look(self, member_id: int) -> None:
        c = self.cluster
        assert c is not None
        m = c.members.get(member_id)
        if m is None or m.node is None:
            return
        node = m.node
        term = node.term
        if node.state is _LEADER and term not in self.leaders:
            self.leaders[term] = (member_id, True)
        log = node.raft.log
        first, last = log.first_index(), log.last_index()
        ents = log.slice(first, last + 1) if last >= first else []
        known = self.entries
        if any(e not in known for e in ents):
            self.entries = known.union(ents)
        commit = node.commit
        committed = self.committed
        while len(committed) < commit:
            i = len(committed) + 1
            committed.append((ents[i - first] if first <= i <= last else None, term))
