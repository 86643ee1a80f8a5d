"""Greedy scheduler throughput in kube-scheduler's scheduler_perf shapes.

SchedulingBasic: nodes with 4 CPU / 32Gi / 110 pods and no labels; `init`
pods (100m / 500Mi each) scheduled first and not timed, then `measure` pods
timed.  Node selection uses the adaptive percentageOfNodesToScore, as the
default profile does.  SchedulingPodAntiAffinity: nodes labelled with a
unique hostname; every pod has a required anti-affinity to the others on
kubernetes.io/hostname, in two namespaces.

Targets (DESIGN section 7, from scheduler_perf thresholds): 680 pods/s at
5000 nodes for SchedulingBasic, 60 pods/s for the anti-affinity case.

Both wall-clock and process CPU time are printed: on a shared machine the
CPU-time rate is the steadier figure.

Run:  python bench/bench_sched.py [--quick]
"""

from __future__ import annotations

import argparse
import random
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
)
from kubeproof.sched.scheduler import Scheduler

GI = 1024**3
MI = 1024**2


def perf_node(i: int, hostname: bool) -> Node:
    alloc = Resources(milli_cpu=4000, memory=32 * GI, pods=110)
    labels = {"kubernetes.io/hostname": f"node-{i}"} if hostname else {}
    return Node(f"node-{i}", labels=labels, allocatable=alloc, capacity=alloc)


_REQ = Resources(milli_cpu=100, memory=500 * MI)
_CONTAINER = Container(
    "pause",
    image="registry.k8s.io/pause:3.10",
    requests=_REQ,
    limits=_REQ,
    requested_names=frozenset({"cpu", "memory"}),
)


def basic_pod(i: int) -> Pod:
    return Pod(f"pod-{i}", containers=(_CONTAINER,))


_ANTI = Affinity(
    pod_anti_affinity=PodAntiAffinity(
        required=(
            PodAffinityTerm(
                "kubernetes.io/hostname",
                LabelSelector({"color": "green"}),
                namespaces=("sched-0", "sched-1"),
            ),
        )
    )
)


def anti_pod(i: int, ns: str) -> Pod:
    return Pod(
        f"anti-{i}",
        namespace=ns,
        labels={"color": "green", "name": "test"},
        containers=(_CONTAINER,),
        affinity=_ANTI,
    )


def run(name: str, nodes: list[Node], init: list[Pod], measure: list[Pod]) -> float:
    s = Scheduler(nodes, rng=random.Random(1))
    for p in init:
        s.add_pod(p)
    s.run()
    for p in measure:
        s.add_pod(p)
    t0 = time.perf_counter()
    c0 = time.process_time()
    s.run()
    dt = time.perf_counter() - t0
    dc = time.process_time() - c0
    placed = sum(1 for p in measure if s.placements[p.key] is not None)
    rate = len(measure) / dt
    print(
        f"{name:<38} nodes={len(nodes):>5} init={len(init):>5} measured={len(measure):>5}"
        f" placed={placed:>5}  wall {dt:6.2f} s {rate:7.1f} pods/s"
        f"  cpu {dc:6.2f} s {len(measure) / dc:7.1f} pods/s"
    )
    return rate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller measured batches")
    args = ap.parse_args()
    scale = 5 if args.quick else 1
    for n, init, measure in ((500, 500, 1000), (1000, 1000, 2000), (5000, 1000, 10000)):
        run(
            "SchedulingBasic",
            [perf_node(i, False) for i in range(n)],
            [basic_pod(i) for i in range(init)],
            [basic_pod(init + i) for i in range(measure // scale)],
        )
    for n, init, measure in ((500, 100, 200), (5000, 1000, 2000)):
        run(
            "SchedulingPodAntiAffinity (required)",
            [perf_node(i, True) for i in range(n)],
            [anti_pod(i, "sched-0") for i in range(init)],
            [anti_pod(init + i, "sched-1") for i in range(measure // scale)],
        )


if __name__ == "__main__":
    main()
