"""A tiny synchronous driver for `kubeproof.etcd.Member`s, for unit tests.

`Group` holds members over in-memory disks and a list of Raft messages in
flight.  `pump()` runs Ready cycles and delivers messages until nothing
moves; a `hold` predicate keeps chosen messages back (they stay in
`held`), which is how a test makes a member lag or cuts a link.  Outputs
are collected per member in `outputs`.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from kubeproof.etcd import ClientRequest, ClientResponse, Member, MemberConfig, Output
from kubeproof.mvcc import WatchResponse
from kubeproof.raft import MemoryStorage, Message, RaftConfig


class Group:
    def __init__(
        self,
        n: int = 3,
        *,
        member: type[Member] = Member,
        snapshot_count: int = 10_000,
        catchup: int = 5_000,
        seed: int = 0,
    ) -> None:
        self.ids = tuple(range(1, n + 1))
        self.member_class = member
        self.snapshot_count = snapshot_count
        self.catchup = catchup
        self.seed = seed
        self.now = 0.0
        self.disks = {i: MemoryStorage() for i in self.ids}
        self.members: dict[int, Member | None] = {}
        self.in_flight: list[Message] = []
        self.held: list[Message] = []
        self.outputs: dict[int, list[Output]] = {i: [] for i in self.ids}
        for i in self.ids:
            self.start(i)

    def config(self, i: int) -> MemberConfig:
        return MemberConfig(
            raft=RaftConfig(id=i, voters=self.ids, election_tick=10, heartbeat_tick=1),
            snapshot_count=self.snapshot_count,
            snapshot_catchup_entries=self.catchup,
        )

    def start(self, i: int) -> Member:
        m = self.member_class(
            self.config(i), self.disks[i], random.Random(self.seed * 100 + i), now=self.now
        )
        self.members[i] = m
        return m

    def m(self, i: int) -> Member:
        m = self.members[i]
        assert m is not None, f"member {i} is down"
        return m

    def crash(self, i: int) -> None:
        self.members[i] = None

    def alive(self) -> list[Member]:
        return [m for m in self.members.values() if m is not None]

    def record(self, i: int, out: Output) -> Output:
        if out:
            self.outputs[i].append(out)
        return out

    def pump(self, hold: Callable[[Message], bool] = lambda _: False, rounds: int = 200) -> None:
        for _ in range(rounds):
            moved = False
            for m in self.alive():
                while m.has_ready():
                    msgs, out = m.process_ready(self.now)
                    self.record(m.id, out)
                    self.in_flight.extend(msgs)
                    moved = True
            batch, self.in_flight = self.in_flight, []
            for msg in batch:
                target = self.members.get(msg.to)
                if target is None:
                    continue
                if hold(msg):
                    self.held.append(msg)
                    continue
                target.step(msg)
                moved = True
            if not moved:
                return

    def release(self) -> None:
        self.in_flight.extend(self.held)
        self.held = []

    def tick(
        self, dt: float = 0.1, n: int = 1, hold: Callable[[Message], bool] = lambda _: False
    ) -> None:
        for _ in range(n):
            self.now += dt
            for m in self.alive():
                self.record(m.id, m.tick(self.now))
            self.pump(hold)

    def elect(self, leader: int = 1) -> Member:
        self.m(leader).node.campaign()
        self.pump()
        assert self.m(leader).is_leader
        return self.m(leader)

    def submit(self, i: int, req: ClientRequest) -> Output:
        return self.record(i, self.m(i).submit(req, self.now))

    def responses(self, i: int | None = None) -> list[ClientResponse]:
        ids = self.ids if i is None else (i,)
        return [r for j in ids for out in self.outputs[j] for r in out.responses]

    def answer(self, client_id: int, seq: int) -> list[ClientResponse]:
        return [r for r in self.responses() if (r.client_id, r.seq) == (client_id, seq)]

    def watch_responses(self, i: int) -> list[WatchResponse]:
        return [w for out in self.outputs[i] for w in out.watch_responses]
