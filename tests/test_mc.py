"""The bounded model checker: exhausts its default bounds on the real node, finds every
mutant it is given with a shortest counterexample, and that counterexample is an ordinary
trace that `kubeproof replay` reproduces."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest
from click.testing import CliRunner, Result

from kubeproof.cli.main import _register, cli
from kubeproof.models.mc import (
    Action,
    Explorer,
    Ghost,
    McConfig,
    McConfigError,
    McResult,
    apply,
    enabled,
    explore,
    fork,
    out_of_bounds,
    write_counterexample,
)
from kubeproof.raft import RaftNode
from kubeproof.sim.cluster import Cluster
from kubeproof.sim.member import NodeFactory
from kubeproof.sim.replay import replay
from kubeproof.sim.trace import read_trace
from kubeproof.spec.raft import raft_checkers
from tests.mutants.mc_mutants import CASES
from tests.mutants.raft_mutants import MUTANTS

_register()


def attrs_evolve(cfg: McConfig, **changes: Any) -> McConfig:
    return attrs.evolve(cfg, **changes)


def _explore(cfg: McConfig, node: NodeFactory = RaftNode) -> McResult:
    return explore(cfg, checkers=raft_checkers, node_factory=node, keep_graph=False)


# ------------------------------------------------------------------ the real node


def test_default_bounds_are_exhausted() -> None:
    r = explore(McConfig(), checkers=raft_checkers)
    assert r.ok, (r.violation, [a.describe() for a in r.counterexample])
    assert r.complete
    assert r.states > 5_000 and r.transitions > r.states
    assert sum(r.levels) == r.states and r.levels[0] == 1
    assert r.pruned_by.keys() <= {"max_inflight", "max_index", "max_term"}
    # The graph holds every state and a labelled edge per transition that stayed in bounds.
    assert r.graph is not None and r.graph.number_of_nodes() == r.states
    assert r.graph.number_of_edges() >= r.states - 1
    _, _, label = next(iter(r.graph.edges(data="action")))
    assert isinstance(label, Action)


# ---------------------------------------------------------------------- mutants


@pytest.mark.parametrize("name", sorted(CASES))
def test_finds_mutant_with_shortest_replayable_counterexample(name: str, tmp_path: Path) -> None:
    node, cfg, invariants = CASES[name]
    r = _explore(cfg, node)
    assert r.violation is not None, f"{name} survived {r.states} states"
    assert r.violation.invariant in invariants, r.violation
    n = len(r.counterexample)
    assert n >= 1 and not r.complete
    # Shortest: nothing violates within one action less.
    if n > 1:
        shorter = _explore(attrs_evolve(cfg, max_depth=n - 1), node)
        assert shorter.ok and shorter.complete, shorter.violation
    # The control: the correct node, same bounds, as deep.
    control = _explore(attrs_evolve(cfg, max_depth=n))
    assert control.ok and control.complete, control.violation
    # The counterexample is a harness trace that replay reproduces by its schedule.
    trace = tmp_path / f"{name}.jsonl"
    again = write_counterexample(
        cfg, r.counterexample, trace, checkers=raft_checkers, node_factory=node, expect=r.violation
    )
    assert again.violation is not None and len(again.steps) == n
    header, events, outcome = read_trace(trace)
    assert header.driver == "schedule" and header.node.endswith(node.__qualname__)
    assert outcome.violation is not None and outcome.violation.invariant == r.violation.invariant
    assert {e.time for e in events} == set(range(1, n + 1))  # time = action number
    result = replay(trace, checkers=raft_checkers(), node_factory=node)
    assert result.mode == "schedule"
    assert result.matched, result.divergence
    assert result.violation is not None and result.violation.invariant == r.violation.invariant


def test_the_correct_node_does_not_replay_a_mutant_counterexample(tmp_path: Path) -> None:
    node, cfg, _ = CASES["commit-prev-term-by-counting"]
    r = _explore(cfg, node)
    trace = tmp_path / "fig8.jsonl"
    write_counterexample(cfg, r.counterexample, trace, checkers=raft_checkers, node_factory=node)
    result = replay(trace, checkers=raft_checkers(), node_factory=RaftNode)
    assert not result.matched  # the real node does not commit there


# ------------------------------------------------------------ reductions agree

SMALL = McConfig(max_term=1, max_index=2, max_inflight=3, max_crashes=0, max_proposals=0)


def test_symmetry_reduces_states_and_keeps_distances() -> None:
    sym = _explore(SMALL)
    plain = _explore(attrs_evolve(SMALL, symmetry=False))
    assert sym.ok and plain.ok and sym.complete and plain.complete
    assert sym.states * 3 < plain.states
    assert len(sym.levels) == len(plain.levels)  # the same depths are reachable
    node = MUTANTS["skip-up-to-date-check"]
    two = attrs_evolve(SMALL, max_term=2)
    a, b = _explore(two, node), _explore(attrs_evolve(two, symmetry=False), node)
    assert a.violation is not None and b.violation is not None
    assert a.violation.invariant == b.violation.invariant
    assert len(a.counterexample) == len(b.counterexample)


def test_sharing_untouched_members_changes_nothing() -> None:
    cfg = attrs_evolve(SMALL, max_crashes=1)

    def count(share: bool) -> tuple[int, int, list[int]]:
        r = Explorer(cfg, checkers=raft_checkers, share_members=share, keep_graph=False).run()
        assert r.ok and r.complete
        return r.states, r.transitions, r.levels

    assert count(True) == count(False)


def test_interleaved_ready_mode() -> None:
    cfg = attrs_evolve(SMALL, max_index=1, ready="interleaved")
    r = _explore(cfg)
    eager = _explore(attrs_evolve(cfg, ready="eager"))
    assert r.ok and r.complete and eager.ok and eager.complete
    assert r.states > 5 * eager.states  # processing a Ready is now an action of its own
    # A vote sent before it is durable is caught in both modes.
    for c in (cfg, attrs_evolve(cfg, ready="eager")):
        v = _explore(c, MUTANTS["vote-before-persist"])
        assert v.violation is not None and v.violation.invariant == "RAFT-VOTE-ONCE"


def test_crash_stays_down_mode() -> None:
    cfg = attrs_evolve(SMALL, max_crashes=1, restart_at_once=False)
    r = _explore(cfg)
    at_once = _explore(attrs_evolve(cfg, restart_at_once=True))
    assert r.ok and r.complete and at_once.ok and at_once.complete
    assert r.states > at_once.states  # a member may now stay down while others move
    v = _explore(cfg, MUTANTS["forget-vote-on-restart"])
    assert v.violation is not None and [a.kind for a in v.counterexample] == [
        "timeout",
        "crash",
        "restart",
    ]


# ------------------------------------------------------------- states and forks


def _after(ex: Explorer, picks: Sequence[tuple[str, int]]) -> tuple[Cluster, Ghost]:
    """Apply actions chosen by (kind, target member) to a fresh cluster."""
    c, g = ex.initial()
    for kind, node in picks:
        a = next(a for a in enabled(c, g, ex.config) if a.kind == kind and a.node == node)
        c, g = ex.successor(c, g, a)
        assert c.violation is None
    return c, g


def test_message_ids_and_node_names_are_not_state() -> None:
    ex = Explorer(McConfig(), checkers=raft_checkers)
    fp = ex.keyer.fingerprint
    # Node 1 campaigns; its two vote requests are delivered in either order.
    a = _after(ex, [("timeout", 1), ("deliver", 2), ("deliver", 3)])
    b = _after(ex, [("timeout", 1), ("deliver", 3), ("deliver", 2)])
    assert fp(*a) == fp(*b)
    # Node 2 campaigning instead is the same state up to renaming ...
    c = _after(ex, [("timeout", 2)])
    d = _after(ex, [("timeout", 1)])
    assert fp(*c) == fp(*d)
    # ... but not without symmetry reduction, and not the same as a different state.
    plain = Explorer(attrs_evolve(McConfig(), symmetry=False), checkers=raft_checkers)
    assert plain.keyer.fingerprint(*_after(plain, [("timeout", 2)])) != plain.keyer.fingerprint(
        *_after(plain, [("timeout", 1)])
    )
    assert fp(*a) != fp(*d)


def test_a_successor_leaves_its_parent_untouched() -> None:
    ex = Explorer(McConfig(max_crashes=1), checkers=raft_checkers)
    c, g = ex.initial()
    rng = random.Random(7)
    for _ in range(25):
        before = ex.keyer.fingerprint(c, g)
        step_before = c.step
        acts = enabled(c, g, ex.config)
        children = [ex.successor(c, g, a) for a in acts]
        assert ex.keyer.fingerprint(c, g) == before and c.step == step_before
        ok = [(cc, gg) for cc, gg in children if cc.violation is None]
        if not ok:
            break  # a final state: nothing left to do within the bounds
        c, g = ok[rng.randrange(len(ok))]


def _signature(c: Cluster, a: Action) -> tuple[object, ...]:
    """An action by content: message actions by the message, not by its id."""
    if a.kind in ("deliver", "drop", "duplicate"):
        return (a.kind, c.network.in_flight[a.msg])
    return (a.kind, a.node)


def test_states_with_one_fingerprint_have_the_same_futures() -> None:
    """The hash is sound: two clusters reached by different paths with the same
    fingerprint enable the same actions, and the same actions keep their fingerprints
    equal and their verdicts (none, for the correct node) equal."""
    cfg = McConfig(max_term=2, max_crashes=1, max_proposals=1, max_drops=1, symmetry=False)
    ex = Explorer(cfg, checkers=raft_checkers)

    def fp(c: Cluster, g: Ghost) -> tuple[int, tuple[int, ...]]:
        # The explorer's identity of a state: its fingerprint and the budgets spent.
        return ex.keyer.fingerprint(c, g), tuple(getattr(g, n) for n in cfg.counted())

    c0, g0 = ex.initial()
    seen: dict[tuple[int, tuple[int, ...]], tuple[Cluster, Ghost]] = {fp(c0, g0): (c0, g0)}
    frontier = [(c0, g0)]
    pairs: list[tuple[tuple[Cluster, Ghost], tuple[Cluster, Ghost]]] = []
    while frontier and len(pairs) < 40:
        c, g = frontier.pop(0)
        for a in enabled(c, g, cfg):
            child, cg = ex.successor(c, g, a)
            if child.violation is not None or out_of_bounds(child, cfg):
                continue
            h = fp(child, cg)
            if h in seen:
                if child.step != seen[h][0].step or len(pairs) % 4 == 0:
                    pairs.append((seen[h], (child, cg)))
            else:
                seen[h] = (child, cg)
                frontier.append((child, cg))
    assert len(pairs) >= 20
    # Most pairs took different numbers of harness events (other histories, other ticks).
    assert sum(a[0].step != b[0].step for a, b in pairs) >= 10
    rng = random.Random(11)
    for (a_c, a_g), (b_c, b_g) in pairs:
        for _ in range(10):
            acts_a = {_signature(a_c, a): a for a in enabled(a_c, a_g, cfg)}
            acts_b = {_signature(b_c, a): a for a in enabled(b_c, b_g, cfg)}
            assert acts_a.keys() == acts_b.keys()
            if not acts_a:
                break
            pick = rng.choice(sorted(acts_a, key=repr))
            a_c, a_g = ex.successor(a_c, a_g, acts_a[pick])
            b_c, b_g = ex.successor(b_c, b_g, acts_b[pick])
            assert (a_c.violation is None) == (b_c.violation is None)
            assert fp(a_c, a_g) == fp(b_c, b_g)
            if out_of_bounds(a_c, cfg):
                break


def test_fork_shares_values_and_copies_the_rest() -> None:
    from kubeproof.raft import Entry

    e = Entry(term=1, index=1, data=b"x")
    shared_list: list[object] = [e]
    r = random.Random(3)

    class Box:
        def __init__(self) -> None:
            self.a = shared_list
            self.b = shared_list
            self.rng = r
            self.hook = self.ping

        def ping(self) -> Box:
            return self

    box = Box()
    copy = fork(box)
    assert copy is not box and copy.a is copy.b and copy.a is not shared_list
    assert copy.a[0] is e  # a frozen value is shared
    assert copy.rng is not r and copy.rng.random() == r.random()
    assert copy.hook() is copy  # a bound method follows its object
    kept = fork(box, shared=[shared_list])
    assert kept.a is shared_list


def test_a_timeout_is_ticks_until_the_campaign_then_its_ready() -> None:
    ex = Explorer(McConfig(), checkers=raft_checkers)
    c, g = ex.initial()
    seen: list[str] = []
    c._sink = lambda e: seen.append(e.kind)  # watch the harness events the action makes
    timeout = next(a for a in enabled(c, g, ex.config) if a.kind == "timeout")
    apply(c, timeout, ex.config, g)
    assert seen[-1] == "process_ready" and set(seen[:-1]) == {"tick"} and len(seen) in (3, 4)
    node = c.members[timeout.node].node
    assert node is not None and node.term == 1 and len(c.network.in_flight) == 2


def test_config_errors_name_the_field() -> None:
    with pytest.raises(McConfigError, match="max_term"):
        McConfig(max_term=0)
    with pytest.raises(McConfigError, match="max_drops"):
        McConfig(max_drops=-1)
    with pytest.raises(McConfigError, match="ready"):
        McConfig(ready="lazy")  # type: ignore[arg-type]
    with pytest.raises(McConfigError, match="nodes"):
        McConfig(nodes=9)


# ---------------------------------------------------------------------------- CLI


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_cli_exhausts_and_reports_json() -> None:
    r = run("mc", "--max-term", "1", "--max-crashes", "0", "--max-proposals", "0", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["complete"] and doc["violation"] is None and doc["states"] > 10
    assert doc["bounds"]["max_term"] == 1 and doc["transitions_per_s"] > 0


def test_cli_table() -> None:
    r = run("mc", "--max-term", "1", "--max-crashes", "0", "--max-proposals", "0")
    assert r.exit_code == 0, r.output
    assert "kubeproof mc" in r.output and "bounds exhausted" in r.output


def test_cli_writes_a_counterexample_that_replay_runs(tmp_path: Path) -> None:
    trace = tmp_path / "cx.jsonl"
    r = run(
        "mc",
        "--node-factory",
        "tests.mutants.raft_mutants:DoubleVoteNode",
        "--trace-out",
        str(trace),
        "--json",
    )
    assert r.exit_code == 1, r.output
    doc = json.loads(r.output)
    assert doc["violation"]["invariant"] == "RAFT-VOTE-ONCE"
    assert doc["trace"] == str(trace) and len(doc["counterexample_steps"]) == len(
        doc["counterexample"]
    )
    again = run("replay", str(trace))
    assert again.exit_code == 0, again.output
    assert "RAFT-VOTE-ONCE" in again.output and "matched" in again.output


def test_cli_incomplete_run_exits_1() -> None:
    r = run("mc", "--max-states", "5", "--json")
    assert r.exit_code == 1
    assert json.loads(r.output)["complete"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-drops", "lots"], "--max-drops"),
        (["--max-term", "0"], "--max-term"),
        (["--nodes", "9"], "--nodes"),
        (["--node-factory", "no_such_module_x:Node"], "--node-factory"),
        (["--ready", "lazy"], "--ready"),
    ],
)
def test_cli_bad_input_exits_2(args: list[str], message: str) -> None:
    r = run("mc", *args)
    assert r.exit_code == 2
    assert message in r.output
