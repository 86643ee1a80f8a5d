"""What the Raft checkers share: one incremental look at the cluster per event.

Theory of operation
-------------------
Every checker needs the same facts about the event that just happened:
which members changed, how their logs changed, which log indexes became
known to be committed.  `ClusterTracker.observe(view, event)` works them
out once per event (a second call for the same event returns the same
`Observation`), so that `raft_checkers()` can share one tracker among all
its checkers.  A checker built alone makes its own tracker.

Per member the tracker keeps a `NodeTrack`: the last sample of the live
node (`state, term, vote, commit, applied`, and the previous sample as
`p_*`), a mirror of its live log (reset at every new life), a mirror of its
storage (kept for ever: the disk outlives the node) and its durable hard
state.  Which members an event can change follows from its kind (the
harness's `kubeproof.sim.cluster` actions):

| kind                                        | members sampled              |
| ------------------------------------------- | ---------------------------- |
| tick, deliver, process_ready, propose,      | the one the event names      |
| crash, restart, snapshot, conf_change,      |                              |
| transfer, read, report_snapshot, join, stop |                              |
| drop, duplicate, partition, heal            | none (only the network moved)|
| anything else, or a member not seen before  | every member                 |

A sampled member has its live log diffed (`mirror.LogMirror.refresh`,
O(change)) if its sample or last index changed, or if the event could have
rewritten the log in place (a delivered MsgApp/MsgSnap/MsgProp, a Ready, a
proposal); its storage is diffed at a Ready.  As a safety net against an
event changing more than it says, every `scrub_every`-th event one member
(round robin) is sampled and diffed in full and a window of each of its
logs is compared with the mirror (`LogMirror.scrub`), which also finds
in-place rewrites the cheap checks cannot see.  Commit knowledge then grows
by the indexes that became committed.  An event object is observed once:
the same `Event` object again (the next checker of the set) returns the
same `Observation`, so callers must make a new `Event` per event.

Lives: a member is in a new life when its node object is not the one seen
last time (a restart, or the first look).  `life_start` is set for that
event and the `p_*` fields then mean nothing.

Known-committed entries (`Committed`): index i is known committed once
some live node's commit index covers i; the entry is the one that node has
at i (for an index covered only by a snapshot just the term, when known).
The first node to commit an index fixes its record; a later node that
commits a different entry there is reported in `Observation.conflicts`,
a node whose commit passes its own last index in `Observation.beyond`.
Besides the entry, each record keeps `seen_term`: the term of the node
that first knew it committed, an upper bound on the term in which it was
committed (what Leader Completeness needs).

Configurations (`ConfigHistory`): the configuration in force at index 0 is
the one the live nodes show at the first look (a node without a
`conf_state()` leaves it unknown, and checkers then treat every member as a
voter).  After that the tracker reads the membership changes the harness's
application applied (`process_ready` payload `conf`: index, previous and new
configuration) and the configurations of snapshots members restored
(payload `snapshot`); the configuration *in force* is the one applied at
the highest index anywhere.  Each is listed in `Observation.confs` for the
event that applied it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubeproof import codec
from kubeproof.raft.storage import MemoryStorage
from kubeproof.raft.types import ConfState, Entry, HardState, StateType
from kubeproof.sim.observe import ClusterView, Event, NodeView

from .mirror import DiskLog, LiveNode, LogDelta, LogMirror, NodeLog

UNKNOWN = -1
"""A term not known (an index committed under a snapshot)."""

ONE_MEMBER = frozenset(
    {
        "tick",
        "deliver",
        "process_ready",
        "ready",
        "propose",
        "crash",
        "restart",
        "snapshot",
        "conf_change",
        "transfer",
        "read",
        "report_snapshot",
        "join",
        "stop",
    }
)
"""Event kinds that change only the member the event names (`Event.node`)."""

LOG_CHANGE = frozenset({"deliver", "process_ready", "ready", "propose", "snapshot", "conf_change"})
"""Kinds at which the named member's live log may change with no other sign."""

LOG_MESSAGES = frozenset({"MsgApp", "MsgSnap", "MsgProp"})
"""Message types whose delivery may change a log without changing its length."""

DISK_CHANGE = frozenset({"process_ready", "ready", "snapshot"})
"""Kinds at which the named member's storage may change (the only ones)."""

SKIP_DISK, CHECK_DISK, DIFF_DISK = range(3)

NO_CHANGE = frozenset({"drop", "duplicate", "dup", "partition", "heal"})
"""Event kinds that change no member (only the network)."""


class NodeTrack:
    """Everything the tracker knows about one member."""

    __slots__ = (
        "alive",
        "applied",
        "commit",
        "crashed",
        "disk",
        "disk_delta",
        "disk_src",
        "hs",
        "hs_changed",
        "id",
        "incarnation",
        "life_hs",
        "life_start",
        "log",
        "log_delta",
        "log_src",
        "node",
        "p_applied",
        "p_commit",
        "p_hs",
        "p_state",
        "p_term",
        "p_vote",
        "state",
        "storage",
        "term",
        "view",
        "vote",
    )

    def __init__(self, view: NodeView) -> None:
        self.id = view.id
        self.view = view
        self.storage: MemoryStorage = view.storage
        self.node: LiveNode | None = None
        self.alive = False
        self.incarnation = 0
        self.life_start = False
        self.crashed = False
        self.state = StateType.Follower
        self.term = self.vote = self.commit = self.applied = 0
        self.p_state = StateType.Follower
        self.p_term = self.p_vote = self.p_commit = self.p_applied = 0
        self.log: LogMirror | None = None
        self.log_src: NodeLog | None = None
        self.log_delta: LogDelta | None = None
        self.disk = LogMirror()
        self.disk_src = DiskLog(self.storage)
        self.disk_delta: LogDelta | None = self.disk.build(self.disk_src)
        self.hs: HardState = self.storage.hard_state
        self.p_hs: HardState = self.hs
        self.hs_changed = False
        self.life_hs: HardState = self.hs
        """The durable hard state when the current life began."""

    @property
    def is_leader(self) -> bool:
        return self.alive and self.state is StateType.Leader

    def live_entry(self, i: int) -> Entry | None:
        return self.log.entry(i) if self.log is not None else None


class Committed:
    """The known-committed log: for index i, entry/term/who/when first known."""

    __slots__ = ("by", "ents", "seen_term", "steps", "terms")

    def __init__(self) -> None:
        # Slot 0 is a placeholder so that list position == log index.
        self.ents: list[Entry | None] = [None]
        self.terms: list[int] = [0]
        self.seen_term: list[int] = [0]
        self.by: list[int] = [0]
        self.steps: list[int] = [0]

    @property
    def index(self) -> int:
        """The highest index known committed."""
        return len(self.ents) - 1


class AppliedConf:
    """A configuration a member's application reached at `index` (from the event payload)."""

    __slots__ = ("cc", "conf", "index", "node", "prev", "snapshot")

    def __init__(
        self,
        node: int,
        index: int,
        conf: ConfState,
        prev: ConfState | None,
        cc: Any,
        snapshot: bool,
    ) -> None:
        self.node = node
        self.index = index
        self.conf = conf
        self.prev = prev
        self.cc = cc
        self.snapshot = snapshot


class ConfigHistory:
    """The configurations applied anywhere, by index; see the module docstring."""

    __slots__ = ("by_index", "latest", "latest_index")

    def __init__(self) -> None:
        self.by_index: dict[int, ConfState] = {}
        self.latest: ConfState | None = None
        self.latest_index = -1

    def note(self, index: int, cs: ConfState) -> bool:
        """Record `cs` at `index`; True if it is now the configuration in force."""
        self.by_index.setdefault(index, cs)
        if index > self.latest_index:
            self.latest_index = index
            self.latest = cs
            return True
        return False


class Observation:
    """What one event changed; see the module docstring."""

    __slots__ = (
        "beyond",
        "config_changed",
        "conflicts",
        "confs",
        "new_hi",
        "new_lo",
        "step",
        "touched",
    )

    def __init__(self, step: int) -> None:
        self.step = step
        self.touched: list[NodeTrack] = []
        """Members whose state, logs or storage changed (or that started/ended a life)."""
        self.new_lo = 0
        self.new_hi = -1
        """Indexes new_lo..new_hi became known committed at this event."""
        self.conflicts: list[tuple[int, NodeTrack, Entry | None, int]] = []
        """(index, node, its entry, its term) committed differently than first known."""
        self.beyond: list[tuple[NodeTrack, int, int]] = []
        """(node, commit, last index): commit index beyond the node's own log."""
        self.confs: list[AppliedConf] = []
        """Configurations applied (or restored from a snapshot) at this event."""
        self.config_changed = False
        """The configuration in force changed at this event."""


class ClusterTracker:
    """Shared per-event bookkeeping; see the module docstring."""

    def __init__(self, scrub_width: int = 8, scrub_every: int = 8) -> None:
        self.tracks: dict[int, NodeTrack] = {}
        self.committed = Committed()
        self.scrub_width = scrub_width
        self.scrub_every = scrub_every
        self._scrub_turn = 0
        self._count = 0
        self.last_event: Event | None = None
        self.obs = Observation(-1)
        self.configs = ConfigHistory()
        self._first_look = True

    def observe(self, view: ClusterView, event: Event) -> Observation:
        if event is self.last_event:
            return self.obs
        self.last_event = event
        for tr in self.obs.touched:  # clear what the previous event set
            tr.life_start = tr.crashed = tr.hs_changed = False
            tr.log_delta = tr.disk_delta = None
        obs = Observation(view.step)
        self.obs = obs
        tracks = self.tracks
        nodes = view.nodes
        kind = event.kind
        named = event.node
        if len(nodes) != len(tracks):
            kind = ""  # a member not seen before: look at everyone
        if kind in NO_CHANGE:
            pass
        elif kind in ONE_MEMBER and named is not None and named in tracks:
            nv = nodes.get(named)
            if nv is not None:
                one = tracks[named]
                log_named = kind in LOG_CHANGE
                if log_named and kind == "deliver":
                    # Only these messages can rewrite a log in place (same length,
                    # same state); any other change shows in the sample or length.
                    log_named = event.payload.get("type", "MsgApp") in LOG_MESSAGES
                disk = DIFF_DISK if kind in DISK_CHANGE else SKIP_DISK
                if self._sample(one, nv, log_named, disk):
                    obs.touched.append(one)
        else:
            for nid, nv in nodes.items():
                known = tracks.get(nid)
                if known is None:
                    new = tracks[nid] = NodeTrack(nv)
                    self._sample(new, nv, True, DIFF_DISK)
                    obs.touched.append(new)
                elif self._sample(known, nv, nid == named, CHECK_DISK):
                    obs.touched.append(known)
        self._count += 1
        if self.scrub_every and self._count % self.scrub_every == 0:
            self._scrub(obs, nodes)
        self._learn_commits(obs)
        if self._first_look:
            self._first_look = False
            self._initial_config(nodes)
        if named is not None and ("conf" in event.payload or "snapshot" in event.payload):
            self._learn_configs(obs, named, event.payload)
        return obs

    # ------------------------------------------------------- configurations

    def _initial_config(self, nodes: Mapping[int, NodeView]) -> None:
        for nv in nodes.values():
            node = nv.node
            conf_state = getattr(node, "conf_state", None)
            if callable(conf_state):
                cs = conf_state()
                if isinstance(cs, ConfState):
                    self.configs.note(0, cs)
                    return

    def _learn_configs(self, obs: Observation, node: int, payload: Mapping[str, Any]) -> None:
        configs = self.configs
        snap = payload.get("snapshot")
        if isinstance(snap, Mapping):
            md = snap
            cs = codec.decode(md.get("conf_state", {}), ConfState)
            index = md.get("index", 0)
            if isinstance(index, int):
                obs.confs.append(AppliedConf(node, index, cs, None, None, True))
                obs.config_changed |= configs.note(index, cs)
        items = payload.get("conf")
        if isinstance(items, list):
            for item in items:
                if not isinstance(item, Mapping):
                    continue
                index = item.get("index")
                if not isinstance(index, int):
                    continue
                cs = codec.decode(item.get("conf_state", {}), ConfState)
                prev = (
                    codec.decode(item["prev"], ConfState) if item.get("prev") is not None else None
                )
                obs.confs.append(AppliedConf(node, index, cs, prev, item.get("cc"), False))
                obs.config_changed |= configs.note(index, cs)

    # ------------------------------------------------------------ sampling

    def _sample(self, tr: NodeTrack, nv: NodeView, log_named: bool, disk: int) -> bool:
        """Refresh one member; True if anything about it changed.

        The live log is diffed if the sample or the last index changed, or
        if `log_named`.  The storage is skipped (`disk` = SKIP_DISK: the
        event cannot have written it), checked for a new hard state or size
        (CHECK_DISK), or diffed (DIFF_DISK).
        """
        changed = False
        node: LiveNode | None = nv.node
        if node is not None:
            if node is not tr.node:
                self._start_life(tr, nv, node)
                changed = True
            else:
                tr.p_state, tr.p_term, tr.p_vote = tr.state, tr.term, tr.vote
                tr.p_commit, tr.p_applied = tr.commit, tr.applied
                state, term, vote = node.state, node.term, node.vote
                commit, applied = node.commit, node.applied
                log = tr.log
                assert log is not None and tr.log_src is not None
                if (
                    state is not tr.state
                    or term != tr.term
                    or vote != tr.vote
                    or commit != tr.commit
                    or applied != tr.applied
                ):
                    tr.state, tr.term, tr.vote = state, term, vote
                    tr.commit, tr.applied = commit, applied
                    changed = True
                if changed or log_named or node.last_index() != log.top:
                    d = log.refresh(tr.log_src)
                    if d is not None:
                        tr.log_delta = d
                        changed = True
        elif tr.node is not None:
            tr.node = None
            tr.alive = False
            tr.crashed = True
            tr.log = tr.log_src = None
            changed = True
        if disk == SKIP_DISK:
            return changed
        st = tr.storage
        hs = st.hard_state
        if hs is not tr.hs:
            if hs != tr.hs:
                tr.p_hs = tr.hs
                tr.hs_changed = True
                changed = True
            tr.hs = hs
        mirror = tr.disk
        if (
            disk == DIFF_DISK
            or tr.hs_changed
            or st.last_index() != mirror.top
            or st.first_index() != mirror.base + 1
        ):
            d = mirror.refresh(tr.disk_src)
            if d is not None:
                tr.disk_delta = d
                changed = True
        return changed

    def _start_life(self, tr: NodeTrack, nv: NodeView, node: LiveNode) -> None:
        tr.node = node
        tr.alive = True
        tr.life_start = True
        tr.incarnation = nv.incarnation
        tr.state, tr.term, tr.vote = node.state, node.term, node.vote
        tr.commit, tr.applied = node.commit, node.applied
        tr.p_state, tr.p_term, tr.p_vote = tr.state, tr.term, tr.vote
        tr.p_commit, tr.p_applied = tr.commit, tr.applied
        tr.log = LogMirror()
        tr.log_src = NodeLog(node)
        tr.log_delta = tr.log.build(tr.log_src)
        tr.life_hs = tr.storage.hard_state

    def _scrub(self, obs: Observation, nodes: Mapping[int, NodeView]) -> None:
        """Re-sample one member fully (round robin) and scrub a window of its logs."""
        ids = list(self.tracks)
        if not ids:
            return
        self._scrub_turn = (self._scrub_turn + 1) % len(ids)
        tr = self.tracks[ids[self._scrub_turn]]
        nv = nodes.get(tr.id)
        if nv is None:
            return
        # A member already sampled at this event keeps that sample (its p_* hold
        # the transition the checkers must see).
        sampled = tr not in obs.touched
        changed = sampled and self._sample(tr, nv, True, DIFF_DISK)
        # A full sample just refreshed both mirrors (a new life builds the live one
        # and leaves a delta): a delta still None means that refresh found nothing,
        # so the scrubs skip their own leading refresh.
        w = self.scrub_width
        if tr.log is not None and tr.log_src is not None and tr.log_delta is None:
            tr.log_delta = tr.log.scrub(tr.log_src, w, refreshed=sampled)
            changed = changed or tr.log_delta is not None
        if tr.disk_delta is None:
            tr.disk_delta = tr.disk.scrub(tr.disk_src, w, refreshed=sampled)
            changed = changed or tr.disk_delta is not None
        if changed and tr not in obs.touched:
            obs.touched.append(tr)

    # ------------------------------------------------------- commit knowledge

    def _learn_commits(self, obs: Observation) -> None:
        ents = self.committed.ents
        before = len(ents) - 1  # Committed.index, without the property call per event
        for tr in obs.touched:
            if not tr.alive:
                continue
            lo = 0 if tr.life_start else tr.p_commit
            if tr.commit > lo:
                self._learn(obs, tr, lo, tr.commit)
        after = len(ents) - 1
        if after > before:
            obs.new_lo, obs.new_hi = before + 1, after

    def _learn(self, obs: Observation, tr: NodeTrack, lo: int, hi: int) -> None:
        """Indexes lo+1..hi are committed on `tr`: record or compare them."""
        c = self.committed
        log = tr.log
        assert log is not None
        top = log.top
        if hi > top:
            obs.beyond.append((tr, hi, top))
            hi = top
        known = c.index
        # Compare the part already known; a bulk list comparison first, since
        # in a healthy run the node holds the very entry objects recorded.
        a, b = max(lo + 1, log.base + 1), min(hi, known)
        if a <= b:
            mine = log.ents[a - log.base - 1 : b - log.base]
            if mine != c.ents[a : b + 1]:
                for i in range(a, b + 1):
                    e = mine[i - a]
                    ce = c.ents[i]
                    if ce is None:
                        ct = c.terms[i]
                        if ct != UNKNOWN and ct != e.term:
                            obs.conflicts.append((i, tr, e, e.term))
                        else:
                            c.ents[i] = e
                            c.terms[i] = e.term
                    elif ce is not e and ce != e:
                        obs.conflicts.append((i, tr, e, e.term))
        # Indexes covered by this node's snapshot: only the base term is known.
        if lo < log.base <= known and log.base_term is not None:
            ct = c.terms[log.base]
            if ct == UNKNOWN:
                c.terms[log.base] = log.base_term
            elif ct != log.base_term:
                obs.conflicts.append((log.base, tr, None, log.base_term))
        # New knowledge beyond the known top.
        step = obs.step
        for i in range(max(lo, known) + 1, hi + 1):
            ne = log.entry(i)
            if ne is not None:
                t = ne.term
            elif i == log.base and log.base_term is not None:
                t = log.base_term
            else:
                t = UNKNOWN
            c.ents.append(ne)
            c.terms.append(t)
            c.seen_term.append(tr.term)
            c.by.append(tr.id)
            c.steps.append(step)


def entry_json(e: Entry | None) -> Any:
    """An entry as evidence: the codec's JSON form, decodable back into an Entry."""
    if e is None:
        return None
    from kubeproof import codec  # local: the codec is only needed when reporting

    return codec.encode(e)


def entries_json(es: list[Entry], limit: int = 8) -> list[Any]:
    """Up to `limit` entries as evidence (the first ones, where a change begins)."""
    return [entry_json(e) for e in es[:limit]]
