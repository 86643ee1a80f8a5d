"""The simulated network: messages in flight, delays, and who reaches whom.

Theory of operation
-------------------
A message handed to the network gets a unique id (1, 2, 3 ... in send
order) and stays *in flight* until exactly one of three things happens to
it: it is delivered (`take`), dropped (`drop`), or the run ends.
Duplicating a message puts a second copy in flight under a new id.  The
network itself decides nothing at random: the harness's scheduler (or a
Hypothesis rule) chooses which message moves when, and the `DelayModel`
turns the scheduler's RNG into delivery times.

Reachability is a `networkx.DiGraph` over the members: an edge u -> v means
u's messages reach v.  A fully connected cluster is the complete digraph; a
partition removes edges, in one direction only if it is asymmetric.  The
check is made at delivery time, so a message sent before a partition is
lost if the partition is still there when it arrives, and one sent during a
partition gets through if the partition healed meanwhile.  The graph is the
source of truth; a set of cut edges is cached beside it because the
delivery check runs once per message.

Delivery times (`DelayModel.delivery_time`):

| link mode              | delivery time                                         |
| ---------------------- | ----------------------------------------------------- |
| FIFO (no `reorder`)    | max(now + delay, previous delivery time on the link)  |
| reordering             | now + delay (+ a hold-back for some messages)         |

so without the `reorder` fault every directed link delivers in send order.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence

import networkx as nx

from kubeproof.raft import Message

from .config import DelayKind, SimConfig
from .seeds import uniform_int


class NetworkError(LookupError):
    """An action on a message that is not in flight, or on an unknown member."""


class Network:
    """Messages in flight by id, and the reachability graph."""

    __slots__ = ("_blocked", "_in_flight", "_members", "_next_id", "graph")

    def __init__(self, members: Sequence[int]) -> None:
        self._members = tuple(members)
        self._in_flight: dict[int, Message] = {}
        self._next_id = 1
        self.graph = nx.DiGraph()
        self._blocked: frozenset[tuple[int, int]] = frozenset()
        self.heal()

    # ------------------------------------------------------------ messages

    def send(self, msg: Message) -> int:
        mid = self._next_id
        self._next_id = mid + 1
        self._in_flight[mid] = msg
        return mid

    def peek(self, mid: int) -> Message:
        try:
            return self._in_flight[mid]
        except KeyError:
            raise NetworkError(f"message {mid} is not in flight") from None

    def take(self, mid: int) -> Message:
        """Remove a message for delivery (whether it then arrives is `reachable`'s call)."""
        try:
            return self._in_flight.pop(mid)
        except KeyError:
            raise NetworkError(f"message {mid} is not in flight") from None

    def drop(self, mid: int) -> Message:
        return self.take(mid)

    def duplicate(self, mid: int) -> int:
        return self.send(self.peek(mid))

    @property
    def in_flight(self) -> Mapping[int, Message]:
        """id -> message, in send order."""
        return self._in_flight

    @property
    def next_id(self) -> int:
        return self._next_id

    # -------------------------------------------------------- reachability

    def reachable(self, src: int, dst: int) -> bool:
        return (src, dst) not in self._blocked

    @property
    def cut(self) -> frozenset[tuple[int, int]]:
        """The directed links currently cut."""
        return self._blocked

    @property
    def partitioned(self) -> bool:
        return bool(self._blocked)

    def heal(self) -> None:
        g = nx.complete_graph(self._members, create_using=nx.DiGraph)
        self._set_graph(g)

    def add_member(self, member: int) -> None:
        """A member joins, linked both ways to everyone (an existing partition stays cut)."""
        if member in self._members:
            raise NetworkError(f"member {member} is already in the network")
        self._members = (*self._members, member)
        g = self.graph
        g.add_node(member)
        for other in self._members:
            if other != member:
                g.add_edge(member, other)
                g.add_edge(other, member)
        self._set_graph(g)

    @property
    def members(self) -> tuple[int, ...]:
        return self._members

    def cut_links(self, edges: Iterable[tuple[int, int]]) -> frozenset[tuple[int, int]]:
        """Replace the partition: exactly `edges` (directed) are cut.  Returns the cut."""
        g = nx.complete_graph(self._members, create_using=nx.DiGraph)
        for u, v in edges:
            if u not in g or v not in g or u == v:
                raise NetworkError(f"no link {u}->{v} among members {list(self._members)}")
            if g.has_edge(u, v):
                g.remove_edge(u, v)
        self._set_graph(g)
        return self._blocked

    def split(self, groups: Sequence[Iterable[int]]) -> frozenset[tuple[int, int]]:
        """Replace the partition: members reach only their own group (both ways).

        A member named in no group is isolated; one named twice is an error."""
        where: dict[int, int] = {}
        for gi, group in enumerate(groups):
            for m in group:
                if m not in self._members:
                    raise NetworkError(f"no member {m} (members: {list(self._members)})")
                if m in where:
                    raise NetworkError(f"member {m} is in two groups")
                where[m] = gi
        edges = [
            (u, v)
            for u in self._members
            for v in self._members
            if u != v and (u not in where or where.get(u) != where.get(v))
        ]
        return self.cut_links(edges)

    def majority_connected(self) -> bool:
        """Is there a strongly connected set of more than half the members?"""
        best = max((len(c) for c in nx.strongly_connected_components(self.graph)), default=0)
        return 2 * best > len(self._members)

    def _set_graph(self, g: nx.DiGraph) -> None:
        self.graph = g
        self._blocked = frozenset(
            (u, v) for u in self._members for v in self._members if u != v and not g.has_edge(u, v)
        )


class DelayModel:
    """Turns the scheduler's RNG into message delivery times (see the module table)."""

    __slots__ = ("_cfg", "_link_clock")

    def __init__(self, cfg: SimConfig) -> None:
        self._cfg = cfg
        self._link_clock: dict[tuple[int, int], int] = {}

    def delay(self, rng: random.Random) -> int:
        c = self._cfg
        if c.delay_kind is DelayKind.uniform:
            return uniform_int(rng, c.delay_min, c.delay_max)
        # Exponential tail above the minimum, capped; int() so no float reaches the schedule.
        tail = int(rng.expovariate(1.0 / c.delay_mean))
        return min(c.delay_min + tail, c.delay_max)

    def delivery_time(
        self, rng: random.Random, now: int, msg: Message, *, fifo: bool, hold_back: int = 0
    ) -> int:
        t = now + self.delay(rng) + hold_back
        if fifo:
            link = (msg.from_, msg.to)
            prev = self._link_clock.get(link, 0)
            if t < prev:
                t = prev
            self._link_clock[link] = t
        return t
