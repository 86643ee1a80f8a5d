"""The bounded model checker: states and transitions per second, state counts per bound.

    python bench/bench_mc.py [--quick] [--no-mutants] [--json]

Times are CPU seconds of this process (`time.process_time`), so that other load on the
machine skews them less; wall seconds are printed beside them.  Prints:
  - the default bounds (what `kubeproof mc` and the test suite exhaust): states,
    distinct fingerprints, transitions, pruned successors, depth, time, states/s and
    transitions/s, and where a transition's time goes (fork, apply with the spec's
    checkers, fingerprint);
  - state counts as each bound or budget moves away from a base (the defaults, or with
    --quick a smaller base), one at a time, with time and rates;
  - each mutant the tests give the model checker: time to the first violation, states
    explored, the counterexample's length.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import attrs

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.mutants

from kubeproof.models.mc import Explorer, Ghost, McConfig, StateKeyer, apply, fork
from kubeproof.models.mc.actions import Action
from kubeproof.raft import RaftNode
from kubeproof.sim.cluster import Cluster
from kubeproof.sim.member import NodeFactory
from kubeproof.spec.raft import raft_checkers


class TimedKeyer(StateKeyer):
    spent = 0.0

    def fingerprint(self, cluster: Cluster, ghost: Ghost) -> int:
        t = time.process_time()
        try:
            return super().fingerprint(cluster, ghost)
        finally:
            self.spent += time.process_time() - t


class TimedExplorer(Explorer):
    """An Explorer that also times the three parts of a transition."""

    fork_s = 0.0
    apply_s = 0.0

    def successor(self, c: Cluster, ghost: Ghost, a: Action) -> tuple[Cluster, Ghost]:
        shared: list[object] = []
        for i, m in c.members.items():
            if i not in a.touches():
                shared += (m, m.node, m.storage)
        t0 = time.process_time()
        child, child_ghost = fork((c, ghost), shared)
        t1 = time.process_time()
        apply(child, a, self.config, child_ghost)
        t2 = time.process_time()
        self.fork_s += t1 - t0
        self.apply_s += t2 - t1
        return child, child_ghost


def run(cfg: McConfig, node: NodeFactory = RaftNode, *, timed: bool = False) -> dict[str, Any]:
    ex: Explorer = (TimedExplorer if timed else Explorer)(
        cfg, checkers=raft_checkers, node_factory=node, keep_graph=False
    )
    if isinstance(ex, TimedExplorer):
        ex.keyer = TimedKeyer(ex.keyer.member_ids, symmetry=cfg.symmetry)
    c0, w0 = time.process_time(), time.perf_counter()
    r = ex.run()
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    out: dict[str, Any] = {
        "states": r.states,
        "fingerprints": r.fingerprints,
        "transitions": r.transitions,
        "pruned": r.pruned,
        "depth": r.depth,
        "complete": r.complete,
        "cpu_s": round(cpu, 2),
        "wall_s": round(wall, 2),
        "states_per_s": round(r.states / cpu) if cpu else 0,
        "transitions_per_s": round(r.transitions / cpu) if cpu else 0,
        "violation": None if r.violation is None else r.violation.invariant,
        "counterexample": len(r.counterexample),
    }
    if isinstance(ex, TimedExplorer) and isinstance(ex.keyer, TimedKeyer) and r.transitions:
        n = r.transitions
        out["us_per_transition"] = {
            "fork": round(ex.fork_s / n * 1e6),
            "apply_and_check": round(ex.apply_s / n * 1e6),
            "fingerprint": round(ex.keyer.spent / n * 1e6),
            "total": round(cpu / n * 1e6),
        }
    return out


def variations(base: McConfig) -> list[tuple[str, McConfig]]:
    e = attrs.evolve
    return [
        ("base", base),
        ("max_term 1", e(base, max_term=1)),
        ("max_term 3", e(base, max_term=3)),
        ("max_index 1", e(base, max_index=1)),
        ("max_index 3", e(base, max_index=3)),
        ("max_inflight 2", e(base, max_inflight=2)),
        ("max_inflight 4", e(base, max_inflight=4)),
        ("max_crashes 0", e(base, max_crashes=0)),
        ("max_proposals 0", e(base, max_proposals=0)),
        ("max_drops 1", e(base, max_drops=1)),
        ("max_heartbeats 1", e(base, max_heartbeats=1)),
        ("max_duplicates 1", e(base, max_duplicates=1)),
        ("crash stays down", e(base, restart_at_once=False)),
        ("symmetry off", e(base, symmetry=False)),
        ("ready interleaved", e(base, ready="interleaved")),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a smaller base for the bound table")
    ap.add_argument("--no-mutants", action="store_true")
    ap.add_argument(
        "--cap", type=int, default=150_000, help="max_states for the bound table's rows"
    )
    ap.add_argument("--json", action="store_true", help="one JSON object at the end")
    args = ap.parse_args()
    report: dict[str, Any] = {}

    print("default bounds:", McConfig())
    d = run(McConfig(), timed=True)
    report["default"] = d
    print(
        f"  states {d['states']:,} (fingerprints {d['fingerprints']:,}), transitions "
        f"{d['transitions']:,}, pruned {d['pruned']:,}, depth {d['depth']}, "
        f"exhausted {d['complete']}, violation {d['violation']}"
    )
    print(
        f"  {d['cpu_s']} s CPU ({d['wall_s']} s wall): {d['states_per_s']:,} states/s, "
        f"{d['transitions_per_s']:,} transitions/s"
    )
    print(f"  per transition (us): {d['us_per_transition']}")

    base = (
        McConfig(max_term=2, max_index=2, max_inflight=3, max_crashes=0, max_proposals=1)
        if args.quick
        else McConfig()
    )
    print(
        f"\nstate counts per bound (base: {'quick' if args.quick else 'defaults'}; rows "
        f"capped at {args.cap:,} states)"
    )
    print(
        f"  {'bound':20s} {'states':>9s} {'transitions':>12s} {'cpu s':>7s} "
        f"{'states/s':>9s} {'trans/s':>8s}  exhausted"
    )
    rows = []
    for label, cfg in variations(base):
        r = run(attrs.evolve(cfg, max_states=args.cap))
        rows.append({"bound": label, **r})
        print(
            f"  {label:20s} {r['states']:9,d} {r['transitions']:12,d} {r['cpu_s']:7.1f} "
            f"{r['states_per_s']:9,d} {r['transitions_per_s']:8,d}  {r['complete']}"
        )
    report["bounds"] = rows

    if not args.no_mutants:
        from tests.mutants.mc_mutants import CASES

        print("\nmutants (the bounds tests/test_mc.py gives each)")
        muts = []
        for name, (node, cfg, _) in sorted(CASES.items()):
            r = run(cfg, node)
            muts.append({"mutant": name, **r})
            print(
                f"  {name:32s} {r['violation'] or 'NOT FOUND':28s} after {r['states']:6,d} "
                f"states, {r['cpu_s']:5.1f} s; counterexample {r['counterexample']} actions"
            )
        report["mutants"] = muts

    if args.json:
        print(json.dumps(report, sort_keys=True))


if __name__ == "__main__":
    main()
