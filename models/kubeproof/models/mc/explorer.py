"""Breadth-first exploration of every interleaving, and the shortest counterexample.

Theory of operation
-------------------
The explored state space is a directed graph: a node per state fingerprint
(`state.StateKeyer`), an edge per transition labelled with its `Action`.
It is built breadth first from the initial cluster (every member a fresh
follower at term 0, nothing in flight):

    frontier <- [initial]
    while frontier:
        s <- pop front
        for a in enabled(s):                      (actions.enabled)
            s' <- fork(s); apply a to s'          (fork.fork, actions.apply)
            if a checker reported a violation:    -> counterexample, stop
            if s' is out of the bounds:           -> pruned (checked, not kept)
            add edge s -> s' (a)
            if s' is new: parent[s'] = (s, a); push s'

A state is identified by its fingerprint *and* the budgets it has spent
(crashes, drops, ...).  One reached again having spent no less of any
budget than a copy already explored is covered by that copy (budgets only
forbid actions, so the copy can do everything it can) and its edge points
there; one that spent less of some budget is explored again.

The checkers are the spec's, passed in by the composition root as a
factory (`kubeproof.spec.raft.raft_checkers`); they live inside the
harness cluster and are forked with it, so every transition runs every
checker with exactly the history of the path that reached its source.

Breadth first means levels: every state at distance d from the initial
state is expanded before any at d + 1.  The first violating transition
found therefore ends a shortest path (in actions) from the initial state,
and the parent pointers give it.  `write_counterexample` re-executes that
path on a fresh `Cluster` with a `TraceWriter` as its sink: the file is an
ordinary harness trace (driver `schedule`, the node factory named in the
header), which `kubeproof replay` re-runs by its recorded schedule.  The
event time of each event is the number of the action it belongs to.

A fork shares the members the action does not touch (their nodes and disks
are not copied) and copies the rest, including the checkers.  The graph is
a `networkx.DiGraph` whose nodes are bare integers (a hash of fingerprint
and budget) and whose edges carry only the action; parents and depths are
kept in dicts beside it.  Frontier states are live clusters, dropped as
soon as they are expanded.
"""

from __future__ import annotations

import gc
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

import networkx as nx
from attrs import define, field, frozen

from kubeproof.raft import RaftNode
from kubeproof.sim.cluster import Cluster
from kubeproof.sim.harness import factory_name
from kubeproof.sim.member import NodeFactory
from kubeproof.sim.observe import Checker, Violation
from kubeproof.sim.trace import TraceHeader, TraceWriter

from .actions import Action, apply, enabled, out_of_bounds
from .config import McConfig
from .fork import fork
from .ghost import Ghost
from .state import StateKeyer

CheckersFactory = Callable[[], Sequence[Checker]]
PROGRESS_EVERY = 0.25
"""Seconds between progress reports."""
GC_EVERY = 20_000
"""Expanded states between full garbage collections."""


class McError(RuntimeError):
    """The model checker itself went wrong (e.g. a counterexample did not reproduce)."""


@frozen
class McProgress:
    states: int
    transitions: int
    frontier: int
    depth: int
    elapsed: float


@define
class McResult:
    """What an exploration found, with the figures (see `report`)."""

    config: McConfig
    node: str
    """The node factory, as "module:attribute"."""
    states: int = 0
    """States expanded: (fingerprint, budget spent) pairs."""
    fingerprints: int = 0
    """Distinct fingerprints among them (the same state reached again having spent
    less of a budget is expanded again)."""
    transitions: int = 0
    pruned: int = 0
    pruned_by: dict[str, int] = field(factory=dict)
    levels: list[int] = field(factory=list)
    """States first reached at each depth (levels[0] is the initial state)."""
    elapsed: float = 0.0
    complete: bool = False
    """Every state within the bounds was expanded (not cut short by max_states or a violation)."""
    violation: Violation | None = None
    counterexample: tuple[Action, ...] = ()
    graph: nx.DiGraph | None = None

    @property
    def depth(self) -> int:
        return len(self.levels) - 1

    @property
    def ok(self) -> bool:
        return self.violation is None

    @property
    def states_per_second(self) -> float:
        return self.states / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def transitions_per_second(self) -> float:
        return self.transitions / self.elapsed if self.elapsed > 0 else 0.0


def _no_checkers() -> Sequence[Checker]:
    return ()


class Explorer:
    """One exploration; `run()` does it.  See the module docstring."""

    def __init__(
        self,
        config: McConfig,
        *,
        checkers: CheckersFactory = _no_checkers,
        node_factory: NodeFactory = RaftNode,
        progress: Callable[[McProgress], None] | None = None,
        keep_graph: bool = True,
        share_members: bool = True,
    ) -> None:
        self.config = config
        self.checkers = checkers
        self.node_factory = node_factory
        self.progress = progress
        self.keep_graph = keep_graph
        self.share_members = share_members
        self.keyer = StateKeyer(config.sim_config().voters, symmetry=config.symmetry)
        self.counted = config.counted()

    def initial(self) -> tuple[Cluster, Ghost]:
        ghost = Ghost()
        cluster = Cluster(
            self.config.sim_config(),
            self.config.seed,
            checkers=self.checkers(),
            node_factory=self.node_factory,
            sink=ghost,
        )
        ghost.attach(cluster)
        return cluster, ghost

    def successor(self, c: Cluster, ghost: Ghost, a: Action) -> tuple[Cluster, Ghost]:
        """A copy of (c, ghost) with `a` applied; (c, ghost) is left as it was."""
        shared: list[object] = []
        if self.share_members:
            touched = a.touches()
            for i, m in c.members.items():
                if i not in touched:
                    shared += (m, m.node, m.storage)
        child, child_ghost = fork((c, ghost), shared)
        apply(child, a, self.config, child_ghost)
        return child, child_ghost

    def run(self) -> McResult:
        # The cyclic garbage collector would walk the whole frontier (hundreds of
        # thousands of objects) again and again while the search allocates: it
        # halves the speed.  States are freed by reference counting instead (the
        # one cycle, cluster <-> ghost, is broken when a state is dropped), with
        # an occasional full collection as a safety net.
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return self._run()
        finally:
            if was_enabled:
                gc.enable()

    def _run(self) -> McResult:
        cfg = self.config
        result = McResult(cfg, factory_name(self.node_factory))
        graph = nx.DiGraph() if self.keep_graph else None
        start = time.perf_counter()
        root, root_ghost = self.initial()
        if root.violation is not None:
            result.violation = root.violation
            result.elapsed = time.perf_counter() - start
            return result
        fingerprint = self.keyer.fingerprint
        counted = self.counted
        # fingerprint -> (budget spent, graph node) it was explored with, none below another
        spent_at: dict[int, list[tuple[tuple[int, ...], int]]] = {}

        def node_id(c: Cluster, g: Ghost) -> tuple[int, bool]:
            """The state's graph node, and whether it is new (see `_cover`).  A state
            covered by one explored having spent less maps to that one's node."""
            fp = fingerprint(c, g)
            spent = tuple(getattr(g, name) for name in counted)
            known = spent_at.setdefault(fp, [])
            cover = _cover(known, spent)
            if cover is not None:
                return cover, False
            node = hash((fp, spent))
            known[:] = [(k, n) for k, n in known if not _at_most(spent, k)]
            known.append((spent, node))
            return node, True

        h0, _ = node_id(root, root_ghost)
        parent: dict[int, tuple[int, Action] | None] = {h0: None}
        depth_of: dict[int, int] = {h0: 0}
        if graph is not None:
            graph.add_node(h0)
        levels = [1]
        frontier: deque[tuple[int, Cluster, Ghost]] = deque([(h0, root, root_ghost)])
        transitions = pruned = 0
        pruned_by: dict[str, int] = {}
        next_report = start + PROGRESS_EVERY
        expanded = 0
        max_states = cfg.max_states
        max_depth = cfg.max_depth
        complete = True
        found: tuple[int, Action, Violation] | None = None
        while frontier and found is None:
            h, c, g = frontier.popleft()
            d = depth_of[h]
            if max_depth is not None and d >= max_depth:
                g.detach()
                continue
            for a in enabled(c, g, cfg):
                child, child_ghost = self.successor(c, g, a)
                transitions += 1
                if child.violation is not None:
                    found = (h, a, child.violation)
                    break
                why = out_of_bounds(child, cfg)
                if why is not None:
                    pruned += 1
                    pruned_by[why] = pruned_by.get(why, 0) + 1
                    child_ghost.detach()
                    continue
                hc, fresh = node_id(child, child_ghost)
                if graph is not None:
                    graph.add_edge(h, hc, action=a)
                if not fresh:
                    child_ghost.detach()
                    continue
                depth_of[hc] = d + 1
                parent[hc] = (h, a)
                if d + 1 == len(levels):
                    levels.append(0)
                levels[d + 1] += 1
                frontier.append((hc, child, child_ghost))
            g.detach()
            expanded += 1
            if expanded % GC_EVERY == 0:
                gc.collect()
            if max_states is not None and len(depth_of) >= max_states and frontier:
                complete = False
                break
            if self.progress is not None and expanded % 32 == 0:
                now = time.perf_counter()
                if now >= next_report:
                    next_report = now + PROGRESS_EVERY
                    self.progress(
                        McProgress(len(depth_of), transitions, len(frontier), d, now - start)
                    )
        result.elapsed = time.perf_counter() - start
        result.states = len(depth_of)
        result.fingerprints = len(spent_at)
        result.transitions = transitions
        result.pruned = pruned
        result.pruned_by = pruned_by
        result.levels = levels
        result.graph = graph
        if found is not None:
            h, a, v = found
            result.violation = v
            result.counterexample = (*path_to(parent, h), a)
            complete = False
        result.complete = complete
        if self.progress is not None:
            self.progress(
                McProgress(result.states, transitions, len(frontier), result.depth, result.elapsed)
            )
        return result


def _at_most(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return all(x <= y for x, y in zip(a, b, strict=True))


def _cover(known: list[tuple[tuple[int, ...], int]], spent: tuple[int, ...]) -> int | None:
    """The node of an explored copy of this state that spent at most as much of every
    budget, if any: whatever this one can still do, that one could too (budgets only
    forbid), so this one need not be explored."""
    for k, node in known:
        if _at_most(k, spent):
            return node
    return None


def path_to(parent: dict[int, tuple[int, Action] | None], h: int) -> tuple[Action, ...]:
    """The actions from the initial state to state h, along the parent pointers."""
    out: list[Action] = []
    step = parent[h]
    while step is not None:
        h, a = step
        out.append(a)
        step = parent[h]
    out.reverse()
    return tuple(out)


def explore(
    config: McConfig | None = None,
    *,
    checkers: CheckersFactory = _no_checkers,
    node_factory: NodeFactory = RaftNode,
    progress: Callable[[McProgress], None] | None = None,
    keep_graph: bool = True,
) -> McResult:
    """Explore `config` (default bounds if None); see `Explorer`."""
    return Explorer(
        config if config is not None else McConfig(),
        checkers=checkers,
        node_factory=node_factory,
        progress=progress,
        keep_graph=keep_graph,
    ).run()


@frozen
class Reexecution:
    """A path re-executed on a fresh cluster (what the trace file holds)."""

    violation: Violation | None
    events: int
    steps: tuple[str, ...]
    """One line per action: what it did, for people."""


def write_counterexample(
    config: McConfig,
    actions: Sequence[Action],
    path: str | Path,
    *,
    checkers: CheckersFactory = _no_checkers,
    node_factory: NodeFactory = RaftNode,
    expect: Violation | None = None,
) -> Reexecution:
    """Re-execute `actions` on a fresh cluster, writing its trace to `path`.

    With `expect`, raises `McError` unless the re-execution ends in a
    violation of the same invariant (the exploration is deterministic, so
    anything else is a bug in the model checker).
    """
    sim = config.sim_config()
    with TraceWriter.open(path) as writer:
        writer.header(
            TraceHeader(
                seed=config.seed, config=sim, driver="schedule", node=factory_name(node_factory)
            )
        )
        cluster = Cluster(
            sim, config.seed, checkers=checkers(), node_factory=node_factory, sink=writer
        )
        steps: list[str] = []
        for i, a in enumerate(actions, start=1):
            if cluster.violation is not None:
                break
            cluster.advance_to(i)
            steps.append(_describe(cluster, a))
            apply(cluster, a, config)
        writer.outcome(cluster.violation)
    v = cluster.violation
    if expect is not None and (v is None or v.invariant != expect.invariant):
        got = "no violation" if v is None else v.invariant
        raise McError(
            f"the counterexample did not reproduce: exploring found {expect.invariant}, "
            f"re-executing its {len(actions)} actions found {got}"
        )
    return Reexecution(v, cluster.step, tuple(steps))


def _describe(c: Cluster, a: Action) -> str:
    if a.kind in ("deliver", "drop", "duplicate"):
        msg = c.network.in_flight.get(a.msg)
        if msg is not None:
            what = f"{msg.type.value} {msg.from_}->{msg.to} term {msg.term}"
            if msg.entries:
                what += " entries " + ",".join(f"{e.index}@{e.term}" for e in msg.entries)
            if msg.reject:
                what += " reject"
            return f"{a.kind} {what}"
    return a.describe()
