"""Canonical state hashing: when two explored clusters are the same state.

Theory of operation
-------------------
A model-checker state is a harness `Cluster` plus its `ghost.Ghost`.  Its
*fingerprint* is the 64-bit hash of a canonical tuple holding exactly what
the future and the invariant verdicts depend on:

| part                | included                                                        |
| ------------------- | --------------------------------------------------------------- |
| each member         | alive/stopped; its disk (hard state, every entry, snapshot      |
|                     | point); the highest index its state machine ever applied; the   |
|                     | application's index; pending reads; the conf index on disk      |
| each live node      | role, term, vote, leader, the unstable log (offset, entries,   |
|                     | snapshot), commit and applied indexes, per-peer progress        |
|                     | (match, next, probe/replicate/snapshot, paused, pending         |
|                     | snapshot, learner), votes received, queued messages and read    |
|                     | states, pending conf index, uncommitted size, transferee, the   |
|                     | configuration, pending reads, and the last soft and hard state  |
|                     | handed out in a Ready (they decide what the next Ready holds)   |
| the network         | the *multiset* of messages in flight (ids are names, not state) |
| the client          | proposals made, pending and acknowledged                        |
| the ghost           | per term its first leader, and whether that leader is still in |
|                     | the same life, or else whether its current life began below     |
|                     | the term; the known-committed entries (with the term of the     |
|                     | first node that knew); every entry ever seen in a log           |

Left out, and why that is sound:

* `election_elapsed`, `heartbeat_elapsed`, `randomized_election_timeout`
  and the node's RNG: the model checker abstracts time (see `actions`):
  a follower or candidate may time out at *any* moment and a leader may
  heartbeat at any moment, whatever those counters say, and with
  CheckQuorum off (the model checker's configuration) nothing else reads
  them.  So they change no successor and no verdict.
* `Progress.recent_active` and `Progress.inflights`: the first is read
  only by CheckQuorum (off) and before sending a snapshot (the model
  checker never compacts a log, so none is ever sent); the second only
  decides "paused" once `max_inflight_msgs` (256) appends are unacknowledged,
  which the bounded log cannot reach.  "Paused" itself is hashed.
* Incarnation numbers: the checkers only ask whether two observations are
  of the same life, which the ghost's leader flag answers (see `ghost`).
* The entries a member applied (only the highest index is kept) and the
  application's digest: a state is only expanded if no checker has fired,
  and then every application is the known-committed entry at its index
  (RAFT-STATE-MACHINE-SAFETY, RAFT-APPLY-DIGEST), which the ghost holds,
  and the digest is a function of those entries.
* The budget counters (crashes, drops, ...): the explorer keeps them beside
  the fingerprint, so that a state reached again having spent less of a
  budget is explored again (see `explorer`).
* `dropped`, `elections_won`, the harness's counters and step numbers,
  message ids: statistics and names.

With those, two states with the same fingerprint (and budget) have the
same enabled actions, the same successors (up to message ids and the
abstracted counters), and, because the ghost holds the history the spec's
checkers keep (see `ghost`), the same verdicts on every future event.  A
node core with attributes this module does not know (a mutant that adds
state) is not a problem: unknown attributes are hashed through `freeze`,
conservatively, and symmetry reduction is turned off for it (their node
ids cannot be renamed).

Symmetry: Raft treats node ids as names (no tie is broken by id, the
checkers compare nothing by id), so renaming the members maps executions to
executions and verdicts to verdicts.  With `symmetry` on, a state is hashed
under the renaming that puts the members in a canonical order: members are
sorted by an id-free signature, and among members with equal signatures
every order is tried and the smallest hash kept, so every renaming of a
state gets the same fingerprint.

Fingerprints are Python `hash` values of tuples (64 bits).  As in TLC, two
distinct states collide with probability about n^2 / 2^65 for n states
(3e-8 for a million states); a collision could only hide states, never
invent a violation.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from kubeproof.raft import RaftNode, StateType
from kubeproof.raft.progress import ProgressState
from kubeproof.sim.cluster import Cluster
from kubeproof.sim.member import Member

from .ghost import Ghost

_ROLE = {StateType.Follower: 0, StateType.Candidate: 1, StateType.Leader: 2}
_ROLE[StateType.PreCandidate] = 3
_PROGRESS = {ProgressState.Probe: 0, ProgressState.Replicate: 1, ProgressState.Snapshot: 2}

KNOWN_CORE_ATTRIBUTES = frozenset(
    {
        # hashed
        "state",
        "term",
        "vote",
        "lead",
        "log",
        "msgs",
        "read_states",
        "prs",
        "votes",
        "pending_conf_index",
        "uncommitted_size",
        "lead_transferee",
        "read_only",
        "pending_read_index_messages",
        "conf",
        "learners",
        "learners_next",
        "auto_leave",
        # not hashed: configuration, the disk (hashed through the member), time
        # (abstracted), statistics -- see the module docstring
        "cfg",
        "id",
        "storage",
        "rng",
        "election_elapsed",
        "heartbeat_elapsed",
        "randomized_election_timeout",
        "dropped",
        "elections_won",
    }
)
KNOWN_NODE_ATTRIBUTES = frozenset({"raft", "_prev_soft", "_prev_hard"})

Perm = Mapping[int, int]


def freeze(value: Any) -> Hashable:
    """A hashable, content-based stand-in for an unknown attribute's value."""
    if isinstance(value, Hashable) and not hasattr(value, "__dict__"):
        return value
    if isinstance(value, Mapping):
        return ("map", frozenset((freeze(k), freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return ("seq", tuple(freeze(v) for v in value))
    if isinstance(value, (set, frozenset)):
        return ("set", frozenset(freeze(v) for v in value))
    slots = getattr(type(value), "__slots__", ())
    fields: dict[str, Any] = dict(getattr(value, "__dict__", {}))
    for name in (slots,) if isinstance(slots, str) else slots:
        if hasattr(value, name):
            fields[name] = getattr(value, name)
    return (type(value).__qualname__, frozenset((k, freeze(v)) for k, v in fields.items()))


def _messages(msgs: Any, p: Perm) -> tuple[int, ...]:
    """A multiset of messages, ids renamed, as sorted hashes (order is not state)."""
    return tuple(
        sorted(
            hash(
                (
                    m.type,
                    p[m.to],
                    p[m.from_],
                    m.term,
                    m.log_term,
                    m.index,
                    m.entries,
                    m.commit,
                    m.snapshot,
                    m.reject,
                    m.reject_hint,
                    m.context,
                )
            )
            for m in msgs
        )
    )


def _ids(ids: Any, p: Perm) -> frozenset[int]:
    return frozenset(p[i] for i in ids)


class StateKeyer:
    """Fingerprints of model-checker states; see the module docstring."""

    def __init__(self, member_ids: Sequence[int], *, symmetry: bool):
        self.member_ids = tuple(sorted(member_ids))
        self.symmetry = symmetry
        self._identity: dict[int, int] = {0: 0, **{i: i for i in self.member_ids}}
        self._extras: dict[tuple[type, type], tuple[tuple[str, ...], tuple[str, ...]]] = {}

    # ----------------------------------------------------------- fingerprint

    def fingerprint(self, cluster: Cluster, ghost: Ghost) -> int:
        members = [cluster.members[i] for i in self.member_ids]
        extras = self._extra_attributes(members)
        if not self.symmetry or extras:
            return hash(self.key(cluster, ghost, members, self._identity))
        best: int | None = None
        for p in self._renamings(members):
            h = hash(self.key(cluster, ghost, members, p))
            if best is None or h < best:
                best = h
        assert best is not None
        return best

    def _renamings(self, members: list[Member]) -> list[dict[int, int]]:
        """The renamings that sort the members by signature (every order among ties)."""
        sigs = sorted(((self._signature(m), m.id) for m in members), key=lambda s: s[0])
        groups = [[mid for _, mid in g] for _, g in itertools.groupby(sigs, key=lambda s: s[0])]
        names = self.member_ids
        out: list[dict[int, int]] = []
        for orders in itertools.product(*(itertools.permutations(g) for g in groups)):
            p = {0: 0}
            k = 0
            for order in orders:
                for mid in order:
                    p[mid] = names[k]
                    k += 1
            out.append(p)
        return out

    @staticmethod
    def _signature(m: Member) -> tuple[int, ...]:
        """Everything cheap about a member that does not mention a node id."""
        st = m.storage
        hs = st.hard_state
        head = (int(m.stopped), hs.term, hs.commit, st.last_index(), len(m.applied))
        node = m.node
        if node is None:
            return (*head, -1, 0, 0, 0, 0, 0, 0, 0)
        r = node.raft
        me = m.id
        return (
            *head,
            _ROLE[r.state],
            r.term,
            r.log.committed,
            r.log.last_index(),
            0 if r.vote == 0 else 1 if r.vote == me else 2,
            0 if r.lead == 0 else 1 if r.lead == me else 2,
            len(r.votes),
            sum(r.votes.values()),
        )

    # ------------------------------------------------------------------ key

    def key(self, cluster: Cluster, ghost: Ghost, members: list[Member], p: Perm) -> Hashable:
        """The canonical tuple under renaming p (old id -> new id)."""
        ordered = sorted(members, key=lambda m: p[m.id])
        return (
            tuple(self._member(m, p) for m in ordered),
            _messages(cluster.network.in_flight.values(), p),
            cluster.counters.proposals,
            tuple(sorted((d, p[n]) for d, n in cluster.pending_proposals.items())),
            tuple(sorted(cluster.acknowledged.items())),
            tuple(sorted(self._leaders(ghost, p))),
            tuple(ghost.committed),
            ghost.entries,
        )

    @staticmethod
    def _leaders(ghost: Ghost, p: Perm) -> list[tuple[int, int, int]]:
        """term -> its first leader, and which of three cases a new leader of that term
        by the same member would be in: the same life (0), a later life that began
        below the term (1: allowed), a later life that began at or above it (2)."""
        out = []
        life_hs = ghost.life_hs
        for t, (lead, same) in ghost.leaders.items():
            case = 0 if same else 1 if life_hs[lead].term < t else 2
            out.append((t, p[lead], case))
        return out

    def _member(self, m: Member, p: Perm) -> Hashable:
        st = m.storage
        hs = st.hard_state
        snap = st.snapshot().metadata
        applied = m.applied
        app = m.app
        head = (
            m.stopped,
            hs.term,
            p[hs.vote],
            hs.commit,
            st.all_entries(),
            snap.index,
            snap.term,
            max(applied, default=0),
            None if app is None else app.index,
            m.conf_index,
            tuple(sorted(m.reads.items())),
        )
        node = m.node
        if node is None:
            return head
        return (*head, *self._node(node, p))

    def _node(self, node: RaftNode, p: Perm) -> tuple[Hashable, ...]:
        r = node.raft
        log = r.log
        u = log.unstable
        prs = tuple(
            sorted(
                (
                    p[pid],
                    pr.match,
                    pr.next,
                    _PROGRESS[pr.state],
                    pr.msg_app_flow_paused,
                    pr.pending_snapshot,
                    pr.is_learner,
                )
                for pid, pr in r.prs.items()
            )
        )
        soft = node._prev_soft
        hard = node._prev_hard
        out: tuple[Hashable, ...] = (
            _ROLE[r.state],
            r.term,
            p[r.vote],
            p[r.lead],
            u.offset,
            tuple(u.entries),
            u.snapshot,
            log.committed,
            log.applied,
            prs,
            tuple(sorted((p[k], v) for k, v in r.votes.items())),
            _messages(r.msgs, p),
            tuple(r.read_states),
            r.pending_conf_index,
            r.uncommitted_size,
            p.get(r.lead_transferee, r.lead_transferee),
            _ids(r.conf.incoming, p),
            _ids(r.conf.outgoing, p),
            _ids(r.learners, p),
            _ids(r.learners_next, p),
            r.auto_leave,
            tuple(r.read_only.queue),
            _messages(r.pending_read_index_messages, p),
            p[soft.lead],
            soft.raft_state,
            hard.term,
            p[hard.vote],
            hard.commit,
        )
        core_extra, node_extra = self._extras[(type(node), type(r))]
        if core_extra or node_extra:
            out += tuple(freeze(getattr(r, a, None)) for a in core_extra)
            out += tuple(freeze(getattr(node, a, None)) for a in node_extra)
        return out

    def _extra_attributes(self, members: list[Member]) -> bool:
        """Learn each node class's unknown attributes once; True if any member has some."""
        found = False
        for m in members:
            node = m.node
            if node is None:
                continue
            k = (type(node), type(node.raft))
            ex = self._extras.get(k)
            if ex is None:
                core = tuple(sorted(set(_attributes(node.raft)) - KNOWN_CORE_ATTRIBUTES))
                outer = tuple(sorted(set(_attributes(node)) - KNOWN_NODE_ATTRIBUTES))
                ex = self._extras[k] = (core, outer)
            if ex[0] or ex[1]:
                found = True
        return found


def _attributes(obj: object) -> list[str]:
    names = list(getattr(obj, "__dict__", {}))
    for k in type(obj).__mro__:
        slots = k.__dict__.get("__slots__", ())
        names.extend((slots,) if isinstance(slots, str) else slots)
    return [n for n in names if n not in ("__dict__", "__weakref__")]
