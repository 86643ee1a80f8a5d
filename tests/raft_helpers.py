"""A tiny synchronous network of RaftNodes for unit tests (after etcd's raft_test network).

Not the harness: no time, no faults beyond dropping and cutting links. Each
`Ready` is persisted into the node's MemoryStorage before its messages are
queued, as the sans-IO contract requires.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence

from kubeproof.raft import (
    Entry,
    HardState,
    MemoryStorage,
    Message,
    MessageType,
    RaftConfig,
    RaftNode,
    ReadState,
    StateType,
)


def new_node(
    nid: int,
    voters: Sequence[int],
    *,
    storage: MemoryStorage | None = None,
    election: int = 10,
    heartbeat: int = 1,
    seed: int = 0,
    **kw: object,
) -> RaftNode:
    cfg = RaftConfig(
        id=nid,
        voters=tuple(voters),
        election_tick=election,
        heartbeat_tick=heartbeat,
        **kw,  # type: ignore[arg-type]
    )
    return RaftNode(cfg, storage or MemoryStorage(), random.Random(seed * 100 + nid))


def storage_with(ents: Iterable[tuple[int, int]], term: int = 0, vote: int = 0) -> MemoryStorage:
    """A storage holding entries given as (term, index) and a hard state."""
    st = MemoryStorage()
    st.append([Entry(term=t, index=i) for t, i in ents])
    st.set_hard_state(HardState(term=term, vote=vote, commit=0))
    return st


def persist(node: RaftNode) -> list[Message]:
    """Process one Ready: persist, return messages, advance."""
    if not node.has_ready():
        return []
    rd = node.ready()
    st = node.storage
    if rd.snapshot is not None:
        st.apply_snapshot(rd.snapshot)
    st.append(rd.entries)
    if rd.hard_state is not None:
        st.set_hard_state(rd.hard_state)
    node.advance(rd)
    return list(rd.messages)


def read_messages(node: RaftNode) -> list[Message]:
    return persist(node)


class Network:
    def __init__(self, nodes: dict[int, RaftNode]) -> None:
        self.nodes = nodes
        self.cut_links: set[tuple[int, int]] = set()
        self.dropped_types: set[MessageType] = set()
        self.applied: dict[int, list[Entry]] = {i: [] for i in nodes}
        self.read_states: dict[int, list[ReadState]] = {i: [] for i in nodes}
        self.hook: Callable[[Message], bool] | None = None

    @classmethod
    def of(cls, n: int, **kw: object) -> Network:
        ids = list(range(1, n + 1))
        return cls({i: new_node(i, ids, **kw) for i in ids})  # type: ignore[arg-type]

    def cut(self, a: int, b: int) -> None:
        self.cut_links |= {(a, b), (b, a)}

    def isolate(self, a: int) -> None:
        for b in self.nodes:
            if b != a:
                self.cut(a, b)

    def recover(self) -> None:
        self.cut_links.clear()
        self.dropped_types.clear()

    def _flush(self, nid: int) -> list[Message]:
        node = self.nodes[nid]
        if not node.has_ready():
            return []
        rd = node.ready()
        st = node.storage
        if rd.snapshot is not None:
            st.apply_snapshot(rd.snapshot)
        st.append(rd.entries)
        if rd.hard_state is not None:
            st.set_hard_state(rd.hard_state)
        self.applied[nid].extend(rd.committed_entries)
        self.read_states[nid].extend(rd.read_states)
        node.advance(rd)
        return list(rd.messages)

    def stabilize(self, limit: int = 10_000) -> None:
        """Deliver until quiet."""
        queue: list[Message] = []
        for _ in range(limit):
            for nid in sorted(self.nodes):
                queue.extend(self._flush(nid))
            if not queue:
                if any(n.has_ready() for n in self.nodes.values()):
                    continue
                return
            m = queue.pop(0)
            if (m.from_, m.to) in self.cut_links or m.type in self.dropped_types:
                continue
            if self.hook is not None and not self.hook(m):
                continue
            if m.to in self.nodes:
                self.nodes[m.to].step(m)
        raise AssertionError("network did not stabilize")

    def campaign(self, nid: int) -> None:
        self.nodes[nid].campaign()
        self.stabilize()

    def leader(self) -> RaftNode | None:
        leaders = [n for n in self.nodes.values() if n.state is StateType.Leader]
        return leaders[0] if len(leaders) == 1 else None
