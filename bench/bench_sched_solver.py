"""Z3 batch solver: solve time by batch size and node count, and greedy's shortfall.

Run:  python bench/bench_sched_solver.py [--quick] [--timeout 10]

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
   instances at high load: pods placed, and the score proxy of both
   placements.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

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
from kubeproof.sched.solver_score import static_scores

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
    r = solve(nodes, pods, objective=objective, timeout_s=timeout, explain=False)
    return r, time.perf_counter() - t


def solve_time_table(sizes: list[tuple[int, int]], seeds: int, timeout: float, load: float) -> None:
    print(f"\n1. Z3 solve time (load {load:.0%} of free cpu, timeout {timeout:g} s, {seeds} seeds)")
    head = (
        f"{'pods':>5} {'nodes':>5} | {'objective':>9} | {'optimal':>7} | {'median s':>8} "
        f"{'max s':>6} | {'placed':>9} | {'gap to bound':>12}"
    )
    print(head)
    print("-" * len(head))
    for n_pods, n_nodes in sizes:
        for objective in ("placed", "score"):
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


def proxy_score(nodes: list[Node], pods: list[Pod], placements: dict[str, str | None]) -> int:
    prob = Problem(nodes, pods)
    scores = static_scores(prob)
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
            r = solve(nodes, pods, timeout_s=timeout, explain=False)
            opt += r.optimal
            g_total += gp
            z_total += r.placed
            if r.placed > gp:
                short_n += 1
                short_max = max(short_max, r.placed - gp)
            gs = proxy_score(nodes, pods, g_placed)
            if r.objective_value:
                ratios.append(gs / r.objective_value)
        print(
            f"{n_pods:>5} {n_nodes:>5} | {g_total / seeds:>13.1f} {z_total / seeds:>9.1f} "
            f"{opt:>6}/{seeds:<3} | {short_n:>18}/{seeds:<3} {short_max:>9} | "
            f"{statistics.mean(ratios):>16.3f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer seeds and sizes")
    ap.add_argument("--timeout", type=float, default=10.0)
    args = ap.parse_args()
    if args.quick:
        sizes = [(10, 10), (25, 10), (50, 25), (100, 50)]
        seeds, gseeds = 2, 5
    else:
        sizes = [(b, n) for b in (10, 25, 50, 100) for n in (10, 25, 50)]
        seeds, gseeds = 3, 20
    solve_time_table(sizes, seeds, args.timeout, 0.6)
    solve_time_table([(100, 50)], seeds, args.timeout, 0.9)
    greedy_table([(25, 10), (50, 25)], gseeds, args.timeout, 0.9)


if __name__ == "__main__":
    main()
