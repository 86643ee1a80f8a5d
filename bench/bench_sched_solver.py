"""Z3 batch solver: solve time by batch size and node count, and greedy's shortfall.

Run:  python bench/bench_sched_solver.py [--quick] [--timeout 10] [--only-preemption | --only-score]

Instances are random but shaped like a cluster: nodes of three sizes in three
zones (a tenth of them tainted dedicated=gpu:NoSchedule, half with disk=ssd),
some running pods already, and a batch made of Deployments (3-12 identical
replicas each) of which about 20% have required pod anti-affinity on the
hostname, 15% a DoNotSchedule zone spread (maxSkew 1), 10% a disk=ssd node
selector and 10% a toleration for the gpu taint.  Node CPU is scaled so that
the batch asks for `load` of what is free.

Tables:
1. solve time by (pods, nodes) for the default objective (score), with the
   status, pods placed, and the objective against its proved bound; and the
   same for objective "placed" (just the count);
2. greedy (kubeproof's kube-scheduler cycle) against the solver on random
   instances at high load: pods placed, and the solver's score objective
   (each pod's framework score, scored first; `solver_score`) of both
   placements;
3. objective "least-preemption": the same instances with every batch pod at
   priority 1000 and about 30% of each node's cpu held by extra running pods
   of priority 0, 100 or 200 (in Deployments of their own, one of them under
   a PodDisruptionBudget allowing one disruption), the batch asking for 80%
   of what was free before them: pods placed, pods evicted against the proved
   lower bound, and the solve time.

The solver's clock is `time.monotonic`, injected here.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import attrs

from kubeproof.sched.load import PodDisruptionBudget
from kubeproof.sched.model import (
    Affinity,
    Container,
    LabelSelector,
    Node,
    Pod,
    PodAffinityTerm,
    PodAntiAffinity,
    Resources,
    Taint,
    Toleration,
    TopologySpreadConstraint,
)
from kubeproof.sched.scheduler import schedule
from kubeproof.sched.solver import SolveResult, solve
from kubeproof.sched.solver_problem import Problem
from kubeproof.sched.solver_score import framework_scores

HOST = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"
MI = 1 << 20
GPU_TAINT = Taint("dedicated", "NoSchedule", "gpu")


def _pod(name: str, cpu: int, mem: int, **kw: object) -> Pod:
    req = Resources(cpu, mem)
    c = Container("c", requests=req, requested_names=frozenset({"cpu", "memory"}))
    return Pod(name, containers=(c,), **kw)  # type: ignore[arg-type]


def instance(n_pods: int, n_nodes: int, seed: int, load: float) -> tuple[list[Node], list[Pod]]:
    rng = random.Random(seed)
    shapes = [(4000, 16384 * MI), (8000, 32768 * MI), (16000, 65536 * MI)]
    raw = []
    for i in range(n_nodes):
        cpu, mem = rng.choice(shapes)
        labels = {HOST: f"node-{i}", ZONE: f"zone-{i % 3}"}
        if rng.random() < 0.5:
            labels["disk"] = "ssd"
        taints = (GPU_TAINT,) if i % 10 == 9 else ()
        raw.append((f"node-{i}", labels, cpu, mem, taints))
    running: list[Pod] = []
    for i in range(n_nodes // 2):
        name, *_ = raw[rng.randrange(n_nodes)]
        running.append(_pod(f"running-{i}", rng.choice([250, 500]), 512 * MI, node_name=name))
    batch: list[Pod] = []
    d = 0
    demand = 0
    while len(batch) < n_pods:
        size = min(rng.randint(3, 12), n_pods - len(batch))
        cpu = rng.choice([100, 250, 500, 1000, 2000])
        mem = rng.choice([128, 256, 512, 1024, 2048]) * MI
        app = f"app-{d}"
        kind = rng.random()
        kw: dict[str, object] = {"labels": {"app": app}}
        if kind < 0.2:
            term = PodAffinityTerm(HOST, LabelSelector({"app": app}))
            kw["affinity"] = Affinity(pod_anti_affinity=PodAntiAffinity((term,)))
        elif kind < 0.35:
            kw["topology_spread_constraints"] = (
                TopologySpreadConstraint(1, ZONE, label_selector=LabelSelector({"app": app})),
            )
        elif kind < 0.45:
            kw["node_selector"] = {"disk": "ssd"}
        elif kind < 0.55:
            kw["tolerations"] = (Toleration("dedicated", "Equal", "gpu", "NoSchedule"),)
        for j in range(size):
            batch.append(_pod(f"{app}-{j}", cpu, mem, **kw))
            demand += cpu
        d += 1
    used = sum(p.requests().milli_cpu for p in running)
    supply = sum(cpu for _, _, cpu, _, _ in raw) - used
    scale = demand / max(supply, 1) / load
    nodes = []
    for name, labels, cpu, mem, taints in raw:
        alloc = Resources(max(1000, int(cpu * scale) // 100 * 100), mem, 0, 110)
        nodes.append(Node(name, labels=labels, allocatable=alloc, capacity=alloc, taints=taints))
    return nodes, running + batch


def timed(
    nodes: list[Node], pods: list[Pod], objective: str, timeout: float
) -> tuple[SolveResult, float]:
    t = time.perf_counter()
    r = solve(
        nodes, pods, objective=objective, timeout_s=timeout, explain=False, clock=time.monotonic
    )
    return r, time.perf_counter() - t


def solve_time_table(
    sizes: list[tuple[int, int]],
    seeds: int,
    timeout: float,
    load: float,
    objectives: tuple[str, ...] = ("placed", "score"),
) -> None:
    print(f"\n1. Z3 solve time (load {load:.0%} of free cpu, timeout {timeout:g} s, {seeds} seeds)")
    head = (
        f"{'pods':>5} {'nodes':>5} | {'objective':>9} | {'optimal':>7} | {'median s':>8} "
        f"{'max s':>6} | {'placed':>9} | {'gap to bound':>12}"
    )
    print(head)
    print("-" * len(head))
    for n_pods, n_nodes in sizes:
        for objective in objectives:
            times, opt, placed, gaps = [], 0, [], []
            for seed in range(seeds):
                nodes, pods = instance(n_pods, n_nodes, seed, load)
                r, dt = timed(nodes, pods, objective, timeout)
                times.append(dt)
                opt += r.optimal
                placed.append(r.placed)
                if r.objective_value is not None and r.objective_bound is not None:
                    gaps.append(
                        abs(r.objective_bound - r.objective_value) / max(r.objective_bound, 1)
                    )
            print(
                f"{n_pods:>5} {n_nodes:>5} | {objective:>9} | {opt:>3}/{seeds:<3} | "
                f"{statistics.median(times):>8.2f} {max(times):>6.2f} | "
                f"{statistics.mean(placed):>5.1f}/{n_pods:<3} | {100 * max(gaps):>11.2f}%"
            )


def batch_score(nodes: list[Node], pods: list[Pod], placements: dict[str, str | None]) -> int:
    """The solver's "score" objective (`solver_score`) of a placement of the batch."""
    prob = Problem(nodes, pods)
    scores = framework_scores(prob)
    total = 0
    for pi, p in enumerate(prob.batch):
        where = placements.get(p.key)
        if where is not None:
            total += scores[pi][prob.node_index[where]]
    return total


def greedy_table(sizes: list[tuple[int, int]], seeds: int, timeout: float, load: float) -> None:
    print(f"\n2. Greedy against Z3 (load {load:.0%}, {seeds} random instances per size)")
    head = (
        f"{'pods':>5} {'nodes':>5} | {'greedy placed':>13} {'z3 placed':>9} {'z3 optimal':>10} | "
        f"{'instances greedy short':>22} {'max short':>9} | {'score: greedy/z3':>16}"
    )
    print(head)
    print("-" * len(head))
    for n_pods, n_nodes in sizes:
        g_total = z_total = short_n = short_max = opt = 0
        ratios = []
        for seed in range(seeds):
            nodes, pods = instance(n_pods, n_nodes, 1000 + seed, load)
            g = schedule(nodes, pods)
            g_placed = {p.key: g.placements[p.key] for p in pods if not p.node_name}
            gp = sum(1 for v in g_placed.values() if v is not None)
            r = solve(nodes, pods, timeout_s=timeout, explain=False, clock=time.monotonic)
            opt += r.optimal
            g_total += gp
            z_total += r.placed
            if r.placed > gp:
                short_n += 1
                short_max = max(short_max, r.placed - gp)
            gs = batch_score(nodes, pods, g_placed)
            if r.objective_value:
                ratios.append(gs / r.objective_value)
        print(
            f"{n_pods:>5} {n_nodes:>5} | {g_total / seeds:>13.1f} {z_total / seeds:>9.1f} "
            f"{opt:>6}/{seeds:<3} | {short_n:>18}/{seeds:<3} {short_max:>9} | "
            f"{statistics.mean(ratios):>16.3f}"
        )


def preemption_instance(
    n_pods: int, n_nodes: int, seed: int, held: float = 0.3, load: float = 0.8
) -> tuple[list[Node], list[Pod], list[PodDisruptionBudget]]:
    """`instance`, a high-priority batch, and low-priority pods holding `held` of each node."""
    nodes, pods = instance(n_pods, n_nodes, seed, load)
    rng = random.Random(seed + 7)
    batch = [attrs.evolve(p, priority=1000) for p in pods if not p.node_name]
    running = [p for p in pods if p.node_name]
    low: list[Pod] = []
    for n in nodes:
        want = int(n.allocatable.milli_cpu * held)
        while want >= 250:
            cpu = min(want, rng.choice([250, 500, 750, 1000]))
            app = f"low-{rng.randrange(6)}"
            low.append(
                _pod(
                    f"{app}-{len(low)}",
                    cpu,
                    256 * MI,
                    labels={"app": app},
                    priority=rng.choice([0, 100, 200]),
                    node_name=n.name,
                )
            )
            want -= cpu
    pdbs = [PodDisruptionBudget("default", "low-0", LabelSelector({"app": "low-0"}), 1)]
    return nodes, running + low + batch, pdbs


def preemption_table(
    sizes: list[tuple[int, int]], seeds: int, timeout: float, held: float, load: float
) -> None:
    print(
        f"\n3. least-preemption ({held:.0%} of cpu held by low-priority pods, batch asks "
        f"{load:.0%} of the cpu free before them, timeout {timeout:g} s, {seeds} seeds)"
    )
    head = (
        f"{'pods':>5} {'nodes':>5} {'low pods':>8} | {'optimal':>7} | {'median s':>8} "
        f"{'max s':>6} | {'placed':>9} {'placed w/o':>10} | {'evicted':>7} {'bound':>5}"
    )
    print(head)
    print("-" * len(head))
    for n_pods, n_nodes in sizes:
        times, opt, placed, plain, evicted, bound, lows = [], 0, [], [], [], [], []
        for seed in range(seeds):
            nodes, pods, pdbs = preemption_instance(n_pods, n_nodes, seed, held, load)
            lows.append(sum(1 for p in pods if p.priority < 1000 and p.node_name))
            t = time.perf_counter()
            r = solve(
                nodes,
                pods,
                objective="least-preemption",
                timeout_s=timeout,
                explain=False,
                clock=time.monotonic,
                pdbs=pdbs,
            )
            times.append(time.perf_counter() - t)
            opt += r.optimal
            placed.append(r.placed)
            evicted.append(len(r.evicted))
            bound.append(r.objective_bound or 0)
            p = solve(
                nodes,
                pods,
                objective="placed",
                timeout_s=timeout,
                explain=False,
                clock=time.monotonic,
            )
            plain.append(p.placed)
        print(
            f"{n_pods:>5} {n_nodes:>5} {statistics.mean(lows):>8.0f} | {opt:>3}/{seeds:<3} | "
            f"{statistics.median(times):>8.2f} {max(times):>6.2f} | "
            f"{statistics.mean(placed):>5.1f}/{n_pods:<3} {statistics.mean(plain):>10.1f} | "
            f"{statistics.mean(evicted):>7.1f} {statistics.mean(bound):>5.1f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer seeds and sizes")
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument(
        "--only-preemption", action="store_true", help="only table 3 (least-preemption)"
    )
    ap.add_argument(
        "--only-score", action="store_true", help="only table 1's rows for objective score"
    )
    args = ap.parse_args()
    psizes = [(b, n) for n in (10, 50) for b in (20, 50, 100)]
    if args.only_preemption:
        preemption_table(psizes, 2 if args.quick else 3, args.timeout, 0.3, 0.8)
        return
    if args.quick:
        sizes = [(10, 10), (25, 10), (50, 25), (100, 50)]
        seeds, gseeds = 2, 5
    else:
        sizes = [(b, n) for b in (10, 25, 50, 100) for n in (10, 25, 50)]
        seeds, gseeds = 3, 20
    if args.only_score:
        solve_time_table(sizes, seeds, args.timeout, 0.6, ("score",))
        solve_time_table([(100, 50)], seeds, args.timeout, 0.9, ("score",))
        return
    solve_time_table(sizes, seeds, args.timeout, 0.6)
    solve_time_table([(100, 50)], seeds, args.timeout, 0.9)
    greedy_table([(25, 10), (50, 25)], gseeds, args.timeout, 0.9)
    preemption_table(psizes, seeds, args.timeout, 0.3, 0.8)


if __name__ == "__main__":
    main()
