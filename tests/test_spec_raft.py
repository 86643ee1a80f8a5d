"""The Raft invariants of kubeproof.spec.raft: each holds on a legal history and
catches the broken one.

The checkers are driven by a hand-built `World`: fake members (the
`NodeView` protocol) over real `MemoryStorage`s, with fake live nodes that
expose only the read-only face the checkers use.  A test edits the nodes'
state and logs the way a correct (or a buggy) Raft would, then emits an
event; every checker runs after it, as in the harness.  At the end, a few
seeds of the real harness check that a correct RaftNode raises nothing and
that the mutants of tests/mutants are caught, by the expected invariant.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubeproof.raft import (
    ConfState,
    Entry,
    HardState,
    MemoryStorage,
    Snapshot,
    SnapshotMetadata,
    StateType,
)
from kubeproof.sim.observe import Checker, ClusterView, Event, Violation
from kubeproof.spec.raft import (
    APPLY_DIGEST,
    CHECKER_CLASSES,
    COMMIT_CURRENT_TERM,
    COMMIT_MONOTONIC,
    COMMITTED_DURABLE,
    CONFIG_SAFETY,
    ELECTION_SAFETY,
    LEADER_APPEND_ONLY,
    LEADER_COMPLETENESS,
    LOG_MATCHING,
    PLANNED,
    PREVOTE_TERM,
    RAFT_INVARIANTS,
    READ_LINEARIZABLE,
    STATE_MACHINE_SAFETY,
    TERM_MONOTONIC,
    TRUNCATE_ON_CONFLICT,
    VOTE_ONCE,
    ApplyDigest,
    CommitCurrentTerm,
    CommitMonotonic,
    CommittedDurable,
    ConfigSafety,
    ElectionSafety,
    LeaderAppendOnly,
    LeaderCompleteness,
    LogMatching,
    PreVoteTerm,
    ReadLinearizable,
    StateMachineSafety,
    TermMonotonic,
    TruncateOnConflict,
    VoteOnce,
    raft_checkers,
)
from kubeproof.spec.raft.mirror import LogMirror
from kubeproof.spec.raft.quorums import blocked_up_to, quorums_intersect
from tests.mutants import raft_mutants

LEADER, FOLLOWER, CANDIDATE = StateType.Leader, StateType.Follower, StateType.Candidate


# --------------------------------------------------------------------- fakes


def ents(terms: Iterable[int], start: int = 1, tag: bytes = b"") -> list[Entry]:
    """Entries with the given terms from index `start`; data names (index, term)."""
    return [
        Entry(term=t, index=i, data=b"%d.%d%s" % (i, t, tag))
        for i, t in enumerate(terms, start=start)
    ]


class FakeNode:
    """The read-only face of a live Raft node, with writable state for tests."""

    def __init__(self, nid: int, storage: MemoryStorage | None = None) -> None:
        self.id = nid
        self.state = FOLLOWER
        self.term = self.vote = self.lead = self.commit = self.applied = 0
        self.base = 0
        self.base_term = 0
        self.log: list[Entry] = []
        if storage is not None:  # resume from disk, as a restart does
            hs, _ = storage.initial_state()
            self.term, self.vote, self.commit = hs.term, hs.vote, hs.commit
            self.base = storage.first_index() - 1
            self.base_term = storage.term(self.base)
            self.log = list(storage.all_entries())
            self.applied = self.base

    def first_index(self) -> int:
        return self.base + 1

    def last_index(self) -> int:
        return self.base + len(self.log)

    def term_at(self, i: int) -> int | None:
        if i == self.base:
            return self.base_term
        if self.base < i <= self.last_index():
            return self.log[i - self.base - 1].term
        return None

    def entries(self, lo: int, hi: int) -> list[Entry]:
        return self.log[lo - self.base - 1 : hi - self.base - 1]

    # test helpers
    def append(self, es: Sequence[Entry]) -> None:
        """Truncate at the first appended index, then append (a leader's or a conflict)."""
        if es:
            del self.log[es[0].index - self.base - 1 :]
            self.log.extend(es)


class FakeMember:
    def __init__(self, nid: int) -> None:
        self.id = nid
        self.storage = MemoryStorage()
        self.node: FakeNode | None = FakeNode(nid)
        self.incarnation = 0
        self.applied: dict[int, Entry] = {}

    @property
    def alive(self) -> bool:
        return self.node is not None


class World:
    """A ClusterView over fake members; `emit` runs every checker, as the harness does."""

    def __init__(self, n: int = 3, checkers: Sequence[Checker] | None = None) -> None:
        self.members = {i: FakeMember(i) for i in range(1, n + 1)}
        self._step = 0
        self.acks: dict[bytes, int] = {}
        self.checkers = list(checkers) if checkers is not None else raft_checkers()
        self.found: list[Violation] = []

    @property
    def step(self) -> int:
        return self._step

    @property
    def time(self) -> int:
        return self._step

    @property
    def nodes(self) -> Mapping[int, FakeMember]:
        return self.members

    @property
    def acknowledged(self) -> Mapping[bytes, int]:
        return self.acks

    def n(self, i: int) -> FakeNode:
        node = self.members[i].node
        assert node is not None
        return node

    def emit(self, kind: str = "test", node: int | None = None, **payload: Any) -> list[Violation]:
        self._step += 1
        event = Event(self._step, self._step, kind, node, payload)
        out: list[Violation] = []
        for c in self.checkers:
            out.extend(c.check(cast(ClusterView, self), event))
        for v in out:  # every violation: a known ID, this step, JSON evidence
            assert v.invariant in RAFT_INVARIANTS and v.step == self._step and v.message
            json.dumps(v.evidence)
        self.found.extend(out)
        return out

    # ------------------------------------------------ actions, as Raft does them

    def persist(self, i: int, **payload: Any) -> list[Violation]:
        """Write node i's log and hard state to its disk (a Ready), then apply."""
        m = self.members[i]
        node = self.n(i)
        st = m.storage
        # Write from the first index where disk and log differ.
        k = node.first_index()
        while k <= min(node.last_index(), st.last_index()) and st.term(k) == node.term_at(k):
            k += 1
        if k <= node.last_index():
            st.append(node.entries(k, node.last_index() + 1))
        st.set_hard_state(HardState(term=node.term, vote=node.vote, commit=node.commit))
        for j in range(node.applied + 1, node.commit + 1):
            m.applied[j] = node.log[j - node.base - 1]
        node.applied = max(node.applied, node.commit)
        return self.emit("process_ready", i, **payload)

    def crash(self, i: int) -> list[Violation]:
        self.members[i].node = None
        return self.emit("crash", i)

    def restart(self, i: int) -> list[Violation]:
        m = self.members[i]
        m.incarnation += 1
        m.node = FakeNode(i, m.storage)
        return self.emit("restart", i)

    def elect(self, leader: int, term: int, voters: Iterable[int]) -> list[Violation]:
        """A correct election: votes persisted, then the leader appends its empty entry."""
        out: list[Violation] = []
        cand = self.n(leader)
        cand.term, cand.vote, cand.state = term, leader, CANDIDATE
        out += self.emit("tick", leader)
        out += self.persist(leader)
        for v in voters:
            node = self.n(v)
            if node.term < term:
                node.term, node.vote, node.state = term, 0, FOLLOWER
            node.vote = leader
            out += self.emit("deliver", v, type="MsgVote")
            out += self.persist(
                v, sent=[{"msg": {"type": "MsgVoteResp", "to": leader, "from": v, "term": term}}]
            )
        cand.state = LEADER
        cand.append([Entry(term=term, index=cand.last_index() + 1)])
        out += self.emit("deliver", leader, type="MsgVoteResp")
        return out

    def propose(self, leader: int, *data: bytes) -> list[Violation]:
        node = self.n(leader)
        node.append(
            [
                Entry(term=node.term, index=node.last_index() + 1 + k, data=d)
                for k, d in enumerate(data)
            ]
        )
        return self.emit("propose", leader)

    def replicate(self, leader: int, to: Iterable[int], commit: bool = True) -> list[Violation]:
        """The leader's whole log to `to` (each persists), then the leader commits it."""
        out: list[Violation] = []
        lead = self.n(leader)
        out += self.persist(leader)
        for f in to:
            node = self.n(f)
            if node.term != lead.term:  # a new term: no vote in it yet
                node.term, node.vote = lead.term, 0
            node.state, node.lead = FOLLOWER, leader
            # Append from the first conflict (or past the end), as maybe_append does.
            k = node.first_index()
            while k <= node.last_index() and node.term_at(k) == lead.term_at(k):
                k += 1
            if k <= lead.last_index():
                node.append(lead.entries(k, lead.last_index() + 1))
            out += self.emit("deliver", f, type="MsgApp")
            out += self.persist(f)
        if commit:
            lead.commit = lead.last_index()
            out += self.emit("deliver", leader, type="MsgAppResp")
            out += self.persist(leader)
            for f in to:
                self.n(f).commit = lead.commit
                out += self.emit("deliver", f, type="MsgHeartbeat")
                out += self.persist(f)
        return out


def ids_of(vs: Iterable[Violation]) -> set[str]:
    return {v.invariant for v in vs}


# ------------------------------------------------------------ the catalogue


def test_raft_checkers_are_fresh_one_per_id_and_documented() -> None:
    a, b = raft_checkers(), raft_checkers()
    assert [type(c).ID for c in a] == list(RAFT_INVARIANTS)  # type: ignore[attr-defined]
    assert len(set(RAFT_INVARIANTS)) == len(RAFT_INVARIANTS)
    assert all(x is not y for x, y in zip(a, b, strict=True))
    # One tracker shared inside a set, never between two sets.
    assert len({id(c.tracker) for c in a}) == 1  # type: ignore[attr-defined]
    assert a[0].tracker is not b[0].tracker  # type: ignore[attr-defined]
    for cls in CHECKER_CLASSES:
        assert cls.__doc__ is not None and cls.__doc__.startswith(cls.ID)
        assert "History kept" in cls.__doc__ or "history" in cls.__doc__.lower()
    assert not set(PLANNED) & set(RAFT_INVARIANTS)


def test_docs_catalogue_names_every_id() -> None:
    doc = Path(__file__).resolve().parent.parent / "docs" / "invariants.md"
    text = doc.read_text()
    for name in (*RAFT_INVARIANTS, *PLANNED):
        assert name in text, name


def test_a_correct_history_raises_nothing() -> None:
    w = World(3)
    w.emit()
    w.elect(1, 1, [2])
    w.propose(1, b"a", b"b")
    w.replicate(1, [2, 3])
    w.acks[b"a"] = 2
    w.crash(1)
    w.elect(2, 2, [3])
    w.propose(2, b"c")
    w.replicate(2, [3])
    w.restart(1)
    w.replicate(2, [1])
    w.acks[b"c"] = 5
    w.emit()
    assert w.found == []
    assert w.members[1].applied[5].data == b"c"


# ------------------------------------------------------------ election safety


def test_election_safety_holds_across_terms() -> None:
    w = World(3)
    w.elect(1, 1, [2])
    w.n(1).state = FOLLOWER
    w.elect(2, 2, [3])
    assert w.found == []


def test_election_safety_two_leaders_in_a_term_even_after_a_crash() -> None:
    w = World(3, [ElectionSafety()])
    w.elect(1, 2, [3])
    w.crash(1)
    # Node 2 becomes leader of the same term 2 later (a forgotten vote, say).
    n2 = w.n(2)
    n2.term, n2.state = 2, LEADER
    out = w.emit("deliver", 2)
    assert ids_of(out) == {ELECTION_SAFETY}
    ev = out[0].evidence
    assert (ev["term"], ev["first_leader"], ev["second_leader"]) == (2, 1, 2)
    assert out[0].step == w.step


def test_election_safety_same_node_second_life_same_term() -> None:
    w = World(3, [ElectionSafety()])
    w.elect(1, 3, [2])  # term 3 is on node 1's disk
    w.crash(1)
    w.restart(1)
    n1 = w.n(1)
    n1.state = LEADER  # leader of term 3 again without a new election
    assert ids_of(w.emit("deliver", 1)) == {ELECTION_SAFETY}


def test_election_safety_allows_relead_of_a_never_persisted_term() -> None:
    # A single voter can elect itself before its Ready is written; after a
    # crash it may legitimately lead that term again.
    w = World(1, [ElectionSafety()])
    n1 = w.n(1)
    n1.term, n1.vote, n1.state = 1, 1, LEADER
    w.emit("tick", 1)
    w.crash(1)
    w.restart(1)
    n1 = w.n(1)
    n1.term, n1.vote, n1.state = 1, 1, LEADER
    assert w.emit("tick", 1) == []


# ------------------------------------------------------------------ votes


def test_vote_once_holds_for_new_terms_and_restarts() -> None:
    w = World(3, [VoteOnce()])
    n2 = w.n(2)
    n2.term, n2.vote = 1, 1
    w.persist(2, sent=[{"msg": {"type": "MsgVoteResp", "to": 1, "from": 2, "term": 1}}])
    n2.term, n2.vote = 2, 0
    w.emit("deliver", 2)
    n2.vote = 3
    w.persist(2)
    w.crash(2)
    w.restart(2)  # resumes term 2, vote 3 from disk
    assert w.found == []


def test_vote_once_second_vote_in_a_term() -> None:
    w = World(3, [VoteOnce()])
    n2 = w.n(2)
    n2.term, n2.vote = 1, 1
    w.emit("deliver", 2)
    n2.vote = 3
    out = w.emit("deliver", 2)
    assert ids_of(out) == {VOTE_ONCE}
    assert out[0].evidence["first_vote"] == 1 and out[0].evidence["vote"] == 3


def test_vote_once_forgotten_on_restart_is_seen_at_the_restart() -> None:
    w = World(3, [VoteOnce()])
    n2 = w.n(2)
    n2.term, n2.vote = 4, 1
    w.persist(2)
    w.crash(2)
    w.members[2].incarnation += 1
    node = FakeNode(2, w.members[2].storage)
    node.vote = 0  # the bug: the durable vote is not loaded
    w.members[2].node = node
    out = w.emit("restart", 2)
    assert ids_of(out) == {VOTE_ONCE}
    assert out[0].evidence["durable_vote"] == 1 and out[0].evidence["restarted_here"]


def test_vote_once_vote_sent_before_it_is_durable() -> None:
    w = World(3, [VoteOnce()])
    n2 = w.n(2)
    n2.term, n2.vote = 1, 1
    w.members[2].storage.set_hard_state(HardState(term=1, vote=0))  # vote held back
    out = w.emit(
        "process_ready", 2, sent=[{"msg": {"type": "MsgVoteResp", "to": 1, "from": 2, "term": 1}}]
    )
    assert ids_of(out) == {VOTE_ONCE}
    # A rejection, or a pre-vote, needs no durable vote.
    assert (
        w.emit(
            "process_ready",
            2,
            sent=[
                {"msg": {"type": "MsgVoteResp", "to": 3, "term": 1, "reject": True}},
                {"msg": {"type": "MsgPreVoteResp", "to": 3, "term": 2}},
            ],
        )
        == []
    )


def test_vote_once_durable_vote_rewritten() -> None:
    w = World(3, [VoteOnce()])
    st = w.members[3].storage
    w.crash(3)
    st.set_hard_state(HardState(term=2, vote=1))
    w.emit()
    st.set_hard_state(HardState(term=2, vote=2))
    assert ids_of(w.emit()) == {VOTE_ONCE}


# ------------------------------------------------------- leader append-only


def test_leader_append_only_holds_while_appending_and_compacting() -> None:
    w = World(3)
    w.elect(1, 1, [2])
    w.propose(1, b"a", b"b", b"c")
    w.replicate(1, [2, 3])
    n1 = w.n(1)
    # Compaction (snapshot of the applied prefix) is not a deletion.
    st = w.members[1].storage
    st.create_snapshot(2, None, b"")
    st.compact(2)
    n1.base, n1.base_term, n1.log = 2, st.term(2), n1.log[2:]
    w.emit("process_ready", 1)
    w.propose(1, b"d")
    assert w.found == []


def test_leader_append_only_overwrite() -> None:
    w = World(3)
    w.elect(1, 2, [2])
    w.propose(1, b"a", b"b")
    n1 = w.n(1)
    # The bug: a proposal written over index 2 instead of after the last entry.
    n1.append([Entry(term=2, index=2, data=b"c")])
    out = w.emit("propose", 1)
    assert LEADER_APPEND_ONLY in ids_of(out)
    v = next(v for v in out if v.invariant == LEADER_APPEND_ONLY)
    assert v.evidence["index"] == 2 and v.evidence["last_index_after"] == 2
    assert [e["data"] for e in v.evidence["removed"]] == ["YQ==", "Yg=="]


def test_leader_append_only_in_place_rewrite_found_by_the_scrub() -> None:
    # Same length, same last entry, one middle entry rewritten: only the
    # scrub can see it, within a bounded number of events.
    w = World(1, [LeaderAppendOnly()])
    n1 = w.n(1)
    n1.term, n1.state = 1, LEADER
    n1.log = ents([1] * 20)
    w.emit("tick", 1)
    n1.log[4] = Entry(term=1, index=5, data=b"forged")
    out: list[Violation] = []
    for _ in range(8 * 20 // 8 + 16):
        out += w.emit("tick", 1)
    assert ids_of(out) == {LEADER_APPEND_ONLY}
    assert out[0].evidence["index"] == 5


def test_follower_conflict_is_not_a_leader_violation() -> None:
    w = World(3, [LeaderAppendOnly(), TruncateOnConflict()])
    n2 = w.n(2)
    n2.term, n2.log = 2, ents([1, 2, 2])
    w.emit("deliver", 2)
    n2.term = 3
    n2.append(ents([3], start=2))  # conflict at 2: replaced by a newer term
    assert w.emit("deliver", 2) == []


# ------------------------------------------------------ truncate on conflict


def test_truncate_on_conflict_stale_append_cuts_the_tail() -> None:
    w = World(3, [TruncateOnConflict()])
    n2 = w.n(2)
    n2.term, n2.log = 1, ents([1, 1, 1, 1])
    w.emit("deliver", 2)
    # A stale MsgApp(index=1, entries=[2]) that matches: the bug truncates after it.
    n2.append(n2.log[1:2])
    out = w.emit("deliver", 2, type="MsgApp")
    assert ids_of(out) == {TRUNCATE_ON_CONFLICT}
    assert out[0].evidence["index"] == 3 and out[0].evidence["now"] is None


def test_truncate_on_conflict_same_term_replacement() -> None:
    w = World(3, [TruncateOnConflict()])
    n2 = w.n(2)
    n2.term, n2.log = 1, ents([1, 1, 1])
    w.emit("deliver", 2)
    n2.append([Entry(term=1, index=2, data=b"other")])
    assert ids_of(w.emit("deliver", 2, type="MsgApp")) == {TRUNCATE_ON_CONFLICT}


def test_truncate_on_conflict_allows_a_snapshot_reset() -> None:
    w = World(3, [TruncateOnConflict()])
    n2 = w.n(2)
    n2.term, n2.log = 2, ents([1, 1, 2, 2])
    w.emit("deliver", 2)
    n2.term = 3
    n2.base, n2.base_term, n2.log = 3, 3, []  # a snapshot at (3, 3) replaced the log
    assert w.emit("deliver", 2, type="MsgSnap") == []


# ------------------------------------------------------------- log matching


def test_log_matching_holds_for_prefixes_of_one_history() -> None:
    w = World(3, [LogMatching()])
    w.n(1).log = ents([1, 1, 2, 3])
    w.n(2).log = ents([1, 1, 2])
    w.n(3).log = [*ents([1, 1]), Entry(term=4, index=3, data=b"x")]
    w.members[3].storage.append(ents([1, 1]))
    w.emit()
    assert w.found == []


def test_log_matching_same_index_and_term_different_prefix() -> None:
    w = World(3, [LogMatching()])
    w.n(1).log = ents([1, 1, 2])
    w.emit()
    w.n(2).log = ents([1, 2, 2])  # (3, 2) on both, but index 2 differs
    out = w.emit("deliver", 2)
    assert ids_of(out) == {LOG_MATCHING}
    ev = out[0].evidence
    assert ev["index"] == 3 and ev["term"] == 2
    assert ev["first"]["prev_term"] == 1 and ev["second"]["prev_term"] == 2


def test_log_matching_same_index_and_term_different_data() -> None:
    w = World(3, [LogMatching()])
    w.n(1).log = ents([1, 1])
    w.emit()
    w.n(2).log = [*ents([1]), Entry(term=1, index=2, data=b"other")]
    assert ids_of(w.emit("deliver", 2)) == {LOG_MATCHING}


def test_log_matching_sees_durable_logs_and_history() -> None:
    # Node 1 held (2, 1, a) in memory only and lost it in a crash; later a
    # disk holds a different (2, 1): the pair named two entries in one run.
    w = World(3, [LogMatching()])
    w.n(1).log = [*ents([1]), Entry(term=1, index=2, data=b"a")]
    w.emit("propose", 1)
    w.crash(1)
    w.members[3].storage.append([*ents([1]), Entry(term=1, index=2, data=b"b")])
    out = w.emit("process_ready", 3)
    assert ids_of(out) == {LOG_MATCHING}
    assert out[0].evidence["second"]["in"] == "storage"


def test_log_matching_malformed_logs() -> None:
    w = World(2, [LogMatching()])
    w.n(1).log = ents([2, 1])  # terms decrease along the log
    assert ids_of(w.emit()) == {LOG_MATCHING}
    w.n(2).log = [Entry(term=1, index=1), Entry(term=1, index=7)]  # wrong index
    assert ids_of(w.emit("deliver", 2)) == {LOG_MATCHING}


_terms = st.lists(st.integers(1, 3), min_size=0, max_size=8).map(sorted)
_datas = st.lists(st.sampled_from([b"", b"x"]), min_size=8, max_size=8)


@given(_terms, _datas, _terms, _datas)
def test_log_matching_agrees_with_the_pairwise_definition(
    t1: list[int], d1: list[bytes], t2: list[int], d2: list[bytes]
) -> None:
    """On two logs seen at once, the ghost-map check equals the textbook property."""
    log1 = [Entry(term=t, index=i + 1, data=d1[i]) for i, t in enumerate(t1)]
    log2 = [Entry(term=t, index=i + 1, data=d2[i]) for i, t in enumerate(t2)]
    broken = any(
        log1[i].term == log2[i].term and log1[: i + 1] != log2[: i + 1]
        for i in range(min(len(log1), len(log2)))
    )
    w = World(2, [LogMatching()])
    w.n(1).log, w.n(2).log = log1, log2
    assert bool(w.emit()) == broken


# ------------------------------------------------------ leader completeness


def figure8(checkers: Sequence[Checker]) -> World:
    """The paper's Figure 8 up to (c): S1, leader of term 4, has (2, term 2) on S1-S3."""
    w = World(5, checkers)
    for i in range(1, 6):
        w.n(i).log = ents([1])
        w.n(i).term = 1
    w.emit()
    s1, s2, s3, s5 = w.n(1), w.n(2), w.n(3), w.n(5)
    s1.term, s1.state = 2, LEADER
    s1.append(ents([2], start=2))
    s2.term, s2.log = 2, ents([1, 2])
    w.emit("deliver", 2)
    s1.state = FOLLOWER
    s5.term, s5.state = 3, LEADER
    s5.append(ents([3], start=2))
    w.emit("propose", 5)
    s5.state = FOLLOWER
    s1.term, s1.state = 4, LEADER
    s1.append(ents([4], start=3))
    w.emit("tick", 1)
    s3.term, s3.log = 4, ents([1, 2])
    w.emit("deliver", 3)
    for i in (1, 2, 3):
        w.persist(i)
    return w


def test_figure8_previous_term_commit_is_caught_at_the_commit() -> None:
    w = figure8([CommitCurrentTerm()])
    w.n(1).commit = 2  # the bug: index 2 (term 2) committed by counting
    out = w.emit("deliver", 1, type="MsgAppResp")
    assert ids_of(out) == {COMMIT_CURRENT_TERM}
    assert out[0].evidence["entry_term"] == 2 and out[0].evidence["term"] == 4


def test_figure8_overwriting_leader_breaks_completeness() -> None:
    w = figure8([LeaderCompleteness()])
    w.n(1).commit = 2
    w.emit("deliver", 1, type="MsgAppResp")
    w.crash(1)
    s5 = w.n(5)
    s5.term, s5.state = 5, LEADER  # elected by S2, S3, S4 (last term 2 <= 3)
    out = w.emit("deliver", 5, type="MsgVoteResp")
    assert ids_of(out) == {LEADER_COMPLETENESS}
    ev = out[0].evidence
    assert (ev["leader"], ev["index"], ev["committed_term"], ev["leader_term_at_index"]) == (
        5,
        2,
        2,
        3,
    )


def test_leader_completeness_holds_when_commit_waits_for_the_current_term() -> None:
    w = figure8(raft_checkers())
    s1 = w.n(1)
    w.replicate(1, [2, 3])  # (3, 4) on a majority: now 1..3 commit
    assert s1.commit == 3
    w.crash(1)
    # S5 cannot win now; S2 (with the committed log) does.
    w.elect(2, 5, [3, 4])
    assert w.found == []


def test_leader_completeness_new_commit_missing_from_a_later_leader() -> None:
    # A stale leader of term 2 commits index 2 while a leader of term 3 lacks it.
    w = World(3, [LeaderCompleteness()])
    n1, n2 = w.n(1), w.n(2)
    n1.term, n1.state, n1.log = 2, LEADER, ents([1, 2])
    n2.term, n2.state, n2.log = 3, LEADER, ents([1, 3])
    w.emit()
    n1.commit = 2
    out = w.emit("deliver", 1)
    assert ids_of(out) == {LEADER_COMPLETENESS}
    assert out[0].evidence["leader"] == 2


def test_leader_completeness_exempts_older_leaders_and_snapshots() -> None:
    w = World(3, [LeaderCompleteness()])
    n1, n2, n3 = w.n(1), w.n(2), w.n(3)
    n1.term, n1.state, n1.log = 3, LEADER, ents([1, 3])
    n1.commit = 2
    w.emit()
    # A leader of an older term (2) may lack an entry first known committed at term 3.
    n2.term, n2.state, n2.log = 2, LEADER, ents([1, 2])
    w.emit("deliver", 2)
    # A later leader whose snapshot covers the committed prefix holds it.
    n2.state = FOLLOWER
    n3.term, n3.state, n3.base, n3.base_term, n3.log = 4, LEADER, 2, 3, ents([4], start=3)
    w.emit("deliver", 3)
    assert w.found == []
    # ... but not if the snapshot's term at its point is not the committed one.
    n3.state = FOLLOWER
    n2.term, n2.state, n2.base, n2.base_term, n2.log = 5, LEADER, 2, 2, []
    assert ids_of(w.emit("deliver", 2)) == {LEADER_COMPLETENESS}


# ------------------------------------------------------ state machine safety


def test_state_machine_safety_different_entries_applied_at_one_index() -> None:
    w = World(3, [StateMachineSafety()])
    n1, n2 = w.n(1), w.n(2)
    n1.log, n1.commit, n1.applied = ents([1, 1]), 2, 2
    w.members[1].applied.update({1: n1.log[0], 2: n1.log[1]})
    w.emit("process_ready", 1)
    n2.log, n2.commit, n2.applied = ents([1, 1], tag=b"!"), 2, 2
    w.members[2].applied.update({1: n2.log[0], 2: n2.log[1]})
    out = w.emit("process_ready", 2)
    assert ids_of(out) == {STATE_MACHINE_SAFETY}
    assert out[0].evidence["index"] == 1


def test_state_machine_safety_reapplication_after_restart() -> None:
    w = World(3, [StateMachineSafety()])
    w.n(1).log = ents([1, 1])
    w.persist(1)
    w.n(1).commit = 2
    w.persist(1)
    assert w.found == []
    w.crash(1)
    w.members[1].storage.append([Entry(term=1, index=2, data=b"changed on disk")])
    w.restart(1)
    w.n(1).applied = 0
    w.persist(1)  # re-applies 1..2 from the (corrupted) disk
    assert ids_of(w.found) == {STATE_MACHINE_SAFETY}
    assert w.found[0].evidence["index"] == 2 and w.found[0].evidence["node"] == 1


def test_state_machine_safety_applied_beyond_commit_and_not_the_committed_entry() -> None:
    w = World(3, [StateMachineSafety()])
    n1 = w.n(1)
    n1.log, n1.commit = ents([1, 1, 1]), 1
    w.emit()
    n1.applied = 3
    assert ids_of(w.emit("process_ready", 1)) == {STATE_MACHINE_SAFETY}
    w2 = World(3, [StateMachineSafety()])
    a, b = w2.n(1), w2.n(2)
    a.log, a.commit = ents([1]), 1
    w2.emit()
    b.log, b.commit = ents([1], tag=b"?"), 0
    w2.emit()
    b.applied = 1  # applies its own entry 1, not the committed one
    w2.members[2].applied[1] = b.log[0]
    b.commit = 1
    assert STATE_MACHINE_SAFETY in ids_of(w2.emit("process_ready", 2))


# ---------------------------------------------------------- committed durable


def test_committed_durable_holds_with_a_majority_on_disk() -> None:
    w = World(3, [CommittedDurable()])
    w.elect(1, 1, [2])
    w.propose(1, b"x")
    w.replicate(1, [2])  # on 1 and 2's disks: 2 of 3
    w.crash(2)
    w.restart(2)
    assert w.found == []


def test_committed_durable_commit_without_a_durable_majority() -> None:
    w = World(3, [CommittedDurable()])
    n1, n2 = w.n(1), w.n(2)
    n1.term, n1.state, n1.log = 1, LEADER, ents([1, 1])
    w.persist(1)
    n2.term, n2.log = 1, ents([1, 1])  # acknowledged but never written (the bug)
    w.emit("deliver", 2)
    n1.commit = 2
    out = w.emit("deliver", 1, type="MsgAppResp")
    assert ids_of(out) == {COMMITTED_DURABLE}
    ev = out[0].evidence
    assert ev["index"] == 1 and ev["holders"] == [1]


def test_committed_durable_disk_loses_a_committed_entry() -> None:
    w = World(3, [CommittedDurable()])
    w.elect(1, 1, [2])
    w.propose(1, b"x")
    w.replicate(1, [2])
    assert w.found == []
    # Node 2's disk is overwritten below the commit (a stale append persisted).
    w.crash(2)
    w.members[2].storage.append([Entry(term=2, index=2, data=b"other")])
    out = w.emit("process_ready", 2)
    assert COMMITTED_DURABLE in ids_of(out)
    assert next(v for v in out if "durable on" in v.message).evidence["index"] == 2


def test_committed_durable_node_cuts_below_its_commit() -> None:
    w = World(3, [CommittedDurable()])
    n2 = w.n(2)
    n2.term, n2.log, n2.commit = 2, ents([1, 1, 2]), 2
    w.emit()
    n2.term = 3
    n2.append(ents([3], start=2))  # a "conflict" below its own commit
    out = w.emit("deliver", 2)
    assert "removed or replaced entry 2" in " ".join(v.message for v in out)


def test_committed_durable_two_entries_committed_at_one_index() -> None:
    w = World(3, [CommittedDurable()])
    n1, n2 = w.n(1), w.n(2)
    n1.log, n1.commit = ents([1, 1]), 2
    w.emit()
    n2.log, n2.commit = ents([1, 2]), 2
    out = w.emit("deliver", 2)
    conflict = [v for v in out if "already committed" in v.message]
    assert conflict and conflict[0].evidence["index"] == 2
    n3 = w.n(3)
    n3.log, n3.commit = ents([1]), 4
    assert any("beyond its last index" in v.message for v in w.emit("deliver", 3))


def test_committed_durable_acknowledgements() -> None:
    w = World(3, [CommittedDurable()])
    w.elect(1, 1, [2])
    w.propose(1, b"x")
    w.replicate(1, [2])
    w.acks[b"x"] = 2
    assert w.emit() == []
    w.acks[b"y"] = 2  # acknowledged at an index that holds other data
    w.acks[b"z"] = 9  # acknowledged before it is committed
    out = w.emit()
    assert {v.evidence["payload"] for v in out} == {"eQ==", "eg=="}
    assert ids_of(out) == {COMMITTED_DURABLE}


# ----------------------------------------------------- term / commit monotonic


def test_monotonic_holds_through_a_crash_that_loses_unpersisted_state() -> None:
    w = World(3, [TermMonotonic(), CommitMonotonic()])
    n1 = w.n(1)
    n1.term, n1.log, n1.commit = 2, ents([1, 2]), 1
    w.persist(1)
    n1.term, n1.commit = 5, 2  # never persisted
    w.emit("deliver", 1)
    w.crash(1)
    w.restart(1)  # back at term 2, commit 1: what the disk had
    assert w.found == []


def test_term_monotonic_live_and_restart() -> None:
    w = World(3, [TermMonotonic()])
    n1 = w.n(1)
    n1.term = 3
    w.persist(1)
    n1.term = 2
    out = w.emit("deliver", 1)
    assert ids_of(out) == {TERM_MONOTONIC}
    w.crash(1)
    w.members[1].incarnation += 1
    node = FakeNode(1, w.members[1].storage)
    node.term = 1  # the bug: the durable term is not loaded
    w.members[1].node = node
    out = w.emit("restart", 1)
    assert ids_of(out) == {TERM_MONOTONIC}
    assert out[0].evidence["durable_term"] == 3


def test_term_and_commit_monotonic_durable() -> None:
    w = World(3, [TermMonotonic(), CommitMonotonic()])
    st = w.members[3].storage
    w.crash(3)
    st.set_hard_state(HardState(term=4, vote=0, commit=7))
    w.emit()
    st.set_hard_state(HardState(term=3, vote=0, commit=6))
    assert ids_of(w.emit()) == {TERM_MONOTONIC, COMMIT_MONOTONIC}


def test_commit_monotonic_live() -> None:
    w = World(3, [CommitMonotonic()])
    n1 = w.n(1)
    n1.log, n1.commit = ents([1, 1]), 2
    w.emit()
    n1.commit = 1
    assert ids_of(w.emit("deliver", 1)) == {COMMIT_MONOTONIC}


# ------------------------------------------------------------ commit rule


def test_commit_current_term_allows_indirect_commit() -> None:
    w = World(3, [CommitCurrentTerm()])
    n1 = w.n(1)
    n1.term, n1.state, n1.log = 3, LEADER, ents([1, 2, 3])
    w.emit()
    n1.commit = 3  # lands on its own term; 1 and 2 commit indirectly
    assert w.emit("deliver", 1) == []


_disk_ops = st.lists(
    st.tuples(
        st.sampled_from(["sync", "diverge", "snap", "commit"]),
        st.integers(2, 4),
        st.integers(0, 12),
    ),
    max_size=30,
)


@given(st.lists(st.integers(1, 3), min_size=12, max_size=12).map(sorted), _disk_ops)
def test_committed_durable_held_prefix_matches_brute_force(
    terms: list[int], ops: list[tuple[str, int, int]]
) -> None:
    """The incremental `held` of every disk equals the committed prefix it really holds."""
    full = ents(terms)
    checker = CommittedDurable()
    w = World(4, [checker])
    leader = w.n(1)
    leader.term, leader.log = terms[-1], list(full)
    w.members[1].storage.append(full)
    w.emit()
    for op, nid, k in ops:
        disk = w.members[nid].storage
        first, last = disk.first_index(), disk.last_index()
        if op == "sync" and k >= first:
            disk.append(full[first - 1 : k])
        elif op == "diverge" and first <= k <= last + 1 and k >= 1:
            disk.append([Entry(term=9, index=j, data=b"stale") for j in range(k, k + 3)])
        elif op == "snap" and first <= k <= last and disk.term(k) == full[k - 1].term:
            disk.apply_snapshot(Snapshot(metadata=SnapshotMetadata(index=k, term=terms[k - 1])))
        elif op == "commit":
            leader.commit = max(leader.commit, k)
        w.emit("deliver" if op == "commit" else "process_ready", 1 if op == "commit" else nid)
        top = leader.commit
        for m in w.members.values():
            d = m.storage
            snap = d.first_index() - 1
            h = 0
            for i in range(1, top + 1):
                held = i <= snap or (i <= d.last_index() and d.entries(i, i + 1)[0] == full[i - 1])
                if not held:
                    break
                h = i
            assert checker.held[m.id] == h, (m.id, op, nid, k)


# -------------------------------------------------------------- the mirror


class ListLog:
    """A plain list as a LogSource, with a snapshot point."""

    def __init__(self) -> None:
        self.base, self.base_term = 0, 0
        self.log: list[Entry] = []

    def first_index(self) -> int:
        return self.base + 1

    def last_index(self) -> int:
        return self.base + len(self.log)

    def term(self, i: int) -> int | None:
        if i == self.base:
            return self.base_term
        if self.base < i <= self.last_index():
            return self.log[i - self.base - 1].term
        return None

    def entries(self, lo: int, hi: int) -> list[Entry]:
        return self.log[lo - self.base - 1 : hi - self.base - 1]


_ops = st.lists(
    st.tuples(st.sampled_from(["append", "conflict", "compact", "snapshot"]), st.integers(0, 6)),
    max_size=25,
)


@given(_ops)
def test_mirror_tracks_any_sequence_of_raft_log_operations(ops: list[tuple[str, int]]) -> None:
    src = ListLog()
    mirror = LogMirror()
    mirror.build(src)
    term = 1
    for op, n in ops:
        before = [*range(src.base + 1), *[(e.index, e.term) for e in src.log]]
        if op == "append":
            src.log += ents([term] * n, start=src.last_index() + 1)
        elif op == "conflict" and src.log:
            term += 1
            at = max(src.base + 1, src.last_index() - n)
            del src.log[at - src.base - 1 :]
            src.log += ents([term] * (n % 3 + 1), start=at)
        elif op == "compact" and src.log:
            k = min(n, len(src.log))
            if k:
                src.base_term = src.log[k - 1].term
                src.base += k
                del src.log[:k]
        elif op == "snapshot":
            term += 1
            src.base, src.base_term, src.log = src.last_index() + n, term, []
        d = mirror.refresh(src)
        assert mirror.base == src.base and mirror.ents == src.log
        assert mirror.base_term == src.base_term
        after = [*range(src.base + 1), *[(e.index, e.term) for e in src.log]]
        if d is None:
            assert before == after or op == "compact"
        else:
            # What the delta says was removed was there, what it says was added is there.
            assert [e.index for e in d.added] == list(range(d.cut, d.cut + len(d.added)))
            assert all(e.index >= d.cut for e in d.removed)
            assert d.new_top == src.last_index()


def test_mirror_scrub_finds_an_in_place_rewrite() -> None:
    src = ListLog()
    src.log = ents([1] * 30)
    mirror = LogMirror()
    mirror.build(src)
    src.log[17] = Entry(term=1, index=18, data=b"forged")
    assert mirror.refresh(src) is None  # the ends did not move
    deltas = [mirror.scrub(src, 8) for _ in range(4)]
    found = [d for d in deltas if d is not None]
    assert len(found) == 1 and found[0].cut == 18 and found[0].scrubbed
    assert mirror.ents == src.log


# ---------------------------------------------------- against the real harness


def _run(
    factory: Any, seed: int, nodes: int = 5, steps: int = 6000, **cfg: Any
) -> Violation | None:
    from kubeproof.sim.config import ALL_FAULTS, SimConfig
    from kubeproof.sim.harness import run_simulation

    config = SimConfig(nodes=nodes, steps=steps, faults=ALL_FAULTS, **cfg)
    return run_simulation(config, seed, checkers=raft_checkers(), node_factory=factory).violation


@pytest.mark.parametrize(("nodes", "seed"), [(3, 1), (5, 2), (5, 3)])
def test_correct_raft_under_all_faults_raises_nothing(nodes: int, seed: int) -> None:
    from kubeproof.raft import RaftNode

    assert _run(RaftNode, seed, nodes=nodes, steps=8000) is None


@pytest.mark.parametrize(
    ("name", "expected", "cfg"),
    [
        ("DoubleVoteNode", VOTE_ONCE, {}),
        ("NoUpToDateCheckNode", LEADER_COMPLETENESS, {}),
        ("VoteBeforePersistNode", VOTE_ONCE, {}),
        ("TruncateOnStaleNode", TRUNCATE_ON_CONFLICT, {}),
        ("ForgetVoteOnRestartNode", VOTE_ONCE, {}),
        ("CommitPrevTermNode", COMMIT_CURRENT_TERM, {"max_size_per_msg": 0}),
    ],
)
def test_mutants_are_caught_by_the_invariant_they_break(
    name: str, expected: str, cfg: dict[str, Any]
) -> None:
    factory = getattr(raft_mutants, name)
    seen = []
    for seed in range(6):
        v = _run(factory, seed, steps=12000, **cfg)
        if v is not None:
            seen.append(v.invariant)
            if v.invariant == expected:
                break
    assert expected in seen, (name, seen)


def test_committed_durable_counts_a_snapshot_as_holding() -> None:
    # A disk that installs a snapshot is covered up to its point (durable quorum).
    w = World(3, [CommittedDurable()])
    w.elect(1, 1, [2])
    w.propose(1, b"x", b"y")
    w.replicate(1, [2])
    w.members[3].storage.apply_snapshot(Snapshot(metadata=SnapshotMetadata(index=3, term=1)))
    w.emit("process_ready", 3)
    w.crash(2)
    first = w.members[2].storage.entries(1, 2)
    w.members[2].storage.append(first)  # node 2's disk loses 2..3 ...
    out = w.emit("process_ready", 2)
    assert out == []  # ... but node 3's snapshot still covers them: 2 of 3


# ------------------------------------ membership, reads, pre-vote, snapshots, digests


def _b64(data: bytes) -> str:
    from kubeproof import codec

    out = codec.encode(data)
    assert isinstance(out, str)
    return out


def conf_item(index: int, prev: ConfState, new: ConfState) -> dict[str, Any]:
    from kubeproof import codec

    return {"index": index, "cc": {}, "prev": codec.encode(prev), "conf_state": codec.encode(new)}


def test_quorum_helpers() -> None:
    three, four = ConfState(voters=(1, 2, 3)), ConfState(voters=(1, 2, 3, 4))
    joint = ConfState(voters=(1, 4, 5), voters_outgoing=(1, 2, 3))
    assert quorums_intersect(three, four) and quorums_intersect(three, joint)
    assert quorums_intersect(joint, ConfState(voters=(1, 4, 5)))
    assert not quorums_intersect(three, ConfState(voters=(1, 4, 5)))
    # Holders block a configuration when the others cannot form a quorum.
    assert blocked_up_to(four, {1: 7, 2: 7, 3: 2, 4: 0}) == 7  # 2 of 4
    assert blocked_up_to(three, {1: 7, 2: 2, 3: 0}) == 2  # 1 of 3 is not enough
    assert blocked_up_to(joint, {2: 9, 3: 9}) == 9  # the outgoing half is blocked


def test_config_safety_accepts_single_and_joint_steps() -> None:
    w = World(3, [ConfigSafety()])
    a, b = ConfState(voters=(1, 2, 3)), ConfState(voters=(1, 2, 3), learners=(4,))
    c = ConfState(voters=(1, 2, 3, 4))
    j = ConfState(voters=(1, 4, 5), voters_outgoing=(1, 2, 3, 4), auto_leave=True)
    d = ConfState(voters=(1, 4, 5))
    steps = [(a, b), (b, c), (c, j), (j, d)]
    for i, (before, after) in enumerate(steps, start=2):
        assert w.emit("process_ready", 1, conf=[conf_item(i, before, after)]) == []
        assert w.emit("process_ready", 2, conf=[conf_item(i, before, after)]) == []


def test_config_safety_two_voters_changed_without_joint() -> None:
    w = World(3, [ConfigSafety()])
    out = w.emit(
        "process_ready",
        1,
        conf=[conf_item(2, ConfState(voters=(1, 2, 3)), ConfState(voters=(1, 4, 5)))],
    )
    assert ids_of(out) == {CONFIG_SAFETY}
    q1, q2 = out[0].evidence["disjoint_quorums"]
    assert not set(q1) & set(q2)


def test_config_safety_two_configurations_at_one_index() -> None:
    w = World(3, [ConfigSafety()])
    a = ConfState(voters=(1, 2, 3))
    assert w.emit("process_ready", 1, conf=[conf_item(4, a, ConfState(voters=(1, 2)))]) == []
    out = w.emit("process_ready", 2, conf=[conf_item(4, a, ConfState(voters=(1, 3)))])
    assert ids_of(out) == {CONFIG_SAFETY} and out[0].evidence["index"] == 4


def _conf_entry(term: int, index: int) -> Entry:
    from kubeproof.raft import EntryType

    return Entry(term=term, index=index, type=EntryType.EntryConfChangeV2, data=b"{}")


def test_config_safety_change_before_the_leader_committed_its_term() -> None:
    """Ongaro's single-server bug, as the harness sees it: the change appears in a
    new leader's log before it has applied (committed) an entry of its term."""
    w = World(3, [ConfigSafety()])
    w.elect(1, 1, [2])
    lead = w.n(1)
    lead.append([_conf_entry(1, lead.last_index() + 1)])
    out = w.emit("propose", 1)
    assert ids_of(out) == {CONFIG_SAFETY} and "before it applied" in out[0].message


def test_config_safety_one_change_at_a_time() -> None:
    w = World(3, [ConfigSafety()])
    w.elect(1, 1, [2])
    w.replicate(1, [2, 3])  # the empty entry is committed and applied
    lead = w.n(1)
    lead.append([_conf_entry(1, lead.last_index() + 1)])
    assert w.emit("propose", 1) == []
    lead.append([_conf_entry(1, lead.last_index() + 1)])  # the first is not applied yet
    out = w.emit("propose", 1)
    assert ids_of(out) == {CONFIG_SAFETY} and "not applied yet" in out[0].message


def test_config_safety_leaders_are_voters_of_their_configuration() -> None:
    w = World(3, [ConfigSafety()])
    confs = {1: ConfState(voters=(1, 2, 3)), 2: ConfState(voters=(2, 3)), 3: ConfState(voters=(3,))}
    for i, cs in confs.items():
        w.n(i).conf_state = lambda cs=cs: cs  # type: ignore[attr-defined]
    assert w.elect(1, 1, [2]) == []
    # Another leader of term 1, in another configuration: reported with both.
    w.n(3).term, w.n(3).state = 1, LEADER
    out = w.emit("deliver", 3, type="MsgVoteResp")
    assert ids_of(out) == {CONFIG_SAFETY} and out[0].evidence["second_leader"] == 3
    # A leader that applies its own demotion and stays leader.
    out = w.emit(
        "process_ready",
        1,
        conf=[conf_item(5, confs[1], ConfState(voters=(2, 3), learners=(1,)))],
    )
    assert ids_of(out) == {CONFIG_SAFETY} and "still leader" in out[0].message


def test_committed_durable_counts_the_voters_of_the_configuration_in_force() -> None:
    w = World(4, [CommittedDurable()])
    learner = ConfState(voters=(1, 2, 3), learners=(4,))
    assert w.emit("process_ready", 1, conf=[conf_item(1, ConfState(), learner)]) == []
    w.elect(1, 1, [2])
    w.propose(1, b"x")
    out = w.replicate(1, [4])  # on the leader and the learner only: 1 of 3 voters
    assert ids_of(out) == {COMMITTED_DURABLE}
    assert out[0].evidence["configuration"] == {"voters": [1, 2, 3], "learners": [4]}
    # With four voters, two disks block every quorum of three: durable.
    w2 = World(4, [CommittedDurable()])
    four = ConfState(voters=(1, 2, 3, 4))
    assert w2.emit("process_ready", 1, conf=[conf_item(1, ConfState(), four)]) == []
    w2.elect(1, 1, [2])
    w2.propose(1, b"x")
    assert w2.replicate(1, [4]) == []


def test_truncate_on_conflict_snapshot_rules() -> None:
    w = World(3, [TruncateOnConflict()])
    w.elect(1, 1, [2])
    w.propose(1, b"a", b"b", b"c")
    w.replicate(1, [2], commit=False)
    n = w.n(2)
    # A snapshot whose entry the log already holds must not discard the log.
    n.base, n.base_term, n.log = 2, 1, []
    out = w.emit("deliver", 2, type="MsgSnap")
    assert ids_of(out) == {TRUNCATE_ON_CONFLICT} and "already held" in out[0].message
    # A snapshot the log conflicts with, above the commit index: a legal restore.
    m = w.n(3)
    m.log = ents([1, 1], tag=b"other")
    m.term = 1
    w.emit("deliver", 3, type="MsgApp")
    m.base, m.base_term, m.log = 5, 2, []
    assert w.emit("deliver", 3, type="MsgSnap") == []


def test_read_linearizable() -> None:
    w = World(3, [ReadLinearizable()])
    w.acks[b"a"] = 5
    r1, r2, r3 = _b64(b"r1"), _b64(b"r2"), _b64(b"r3")
    assert w.emit("read", 2, ctx=r1, result="asked") == []
    ok = w.emit(
        "process_ready",
        2,
        read_states=[{"ctx": r1, "index": 5}],
        served=[{"ctx": r1, "index": 5, "applied": 6}],
    )
    assert ok == []
    w.emit("read", 2, ctx=r2, result="asked")
    out = w.emit("process_ready", 2, read_states=[{"ctx": r2, "index": 4}])
    assert ids_of(out) == {READ_LINEARIZABLE} and out[0].evidence["acknowledged_index"] == 5
    # A write acknowledged after the read was asked need not be seen ...
    w.emit("read", 3, ctx=r3, result="asked")
    w.acks[b"b"] = 9
    assert w.emit("process_ready", 3, read_states=[{"ctx": r3, "index": 6}]) == []
    # ... but a read is never served below its own read index.
    out = w.emit("process_ready", 3, served=[{"ctx": r3, "index": 6, "applied": 5}])
    assert ids_of(out) == {READ_LINEARIZABLE}


def test_prevote_term() -> None:
    w = World(3, [PreVoteTerm()])
    w.emit()
    n1 = w.n(1)
    n1.state = StateType.PreCandidate
    assert w.emit("tick", 1) == []
    n1.vote = 2  # a pre-candidate may grant a real candidate of its term its vote
    assert w.emit("deliver", 1, type="MsgVote") == []
    n2 = w.n(2)
    n2.state, n2.term = StateType.PreCandidate, n2.term + 1
    out = w.emit("tick", 2)
    assert ids_of(out) == {PREVOTE_TERM} and "pre-candidate" in out[0].message
    n3 = w.n(3)
    n3.term = 7
    out = w.emit("deliver", 3, type="MsgPreVote")
    assert ids_of(out) == {PREVOTE_TERM} and "MsgPreVote" in out[0].message


def test_apply_digest() -> None:
    w = World(3, [ApplyDigest()])
    assert w.emit("process_ready", 1, state={"index": 3, "digest": "aa"}) == []
    assert w.emit("snapshot", 2, index=3, digest="aa", compact=3) == []
    out = w.emit("process_ready", 3, state={"index": 3, "digest": "bb"})
    assert ids_of(out) == {APPLY_DIGEST} and out[0].evidence["first_digest"] == "aa"


@pytest.mark.parametrize(
    ("name", "expected", "cfg"),
    [
        ("ConfChangeBeforeOwnCommitNode", {CONFIG_SAFETY}, {}),
        ("PreCandidateBumpsTermNode", {PREVOTE_TERM}, {"pre_vote": True}),
        ("ReadIndexWithoutQuorumNode", {READ_LINEARIZABLE}, {}),
        ("LearnerInQuorumNode", {COMMITTED_DURABLE}, {}),
    ],
)
def test_feature_mutants_are_caught_by_the_rule_they_break(
    name: str, expected: set[str], cfg: dict[str, Any]
) -> None:
    factory = getattr(raft_mutants, name)
    features = {"snapshots": True, "conf_changes": True, "transfers": True, "reads": True}
    seen = []
    for seed in range(8):
        v = _run(factory, seed, nodes=3, steps=4000, **features, **cfg)
        if v is not None:
            seen.append(v.invariant)
            if v.invariant in expected:
                break
    assert set(seen) & expected, (name, seen)
