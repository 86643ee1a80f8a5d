"""Harness throughput: events per second for a 5-node Raft cluster under all faults,
against a bare heapq push+pop loop doing the same number of heap operations, in one run.

    python bench/bench_harness.py [--steps N] [--seed S] [--repeat R]

Times are CPU seconds of this process (`time.process_time`), best of R runs, so that
other load on the machine does not skew either side of the ratio.  Prints:
  - the harness alone (no checkers, no trace), events/s;
  - the same with the trace streamed to a file, and with the spec's checkers;
  - the share of the harness run spent inside the Raft node (a timing subclass with
    `perf_counter` around each node call), so that the harness's own cost per event can
    be compared with the bare loop;
  - the bare loop: as many heappush + heappop pairs as the harness made;
  - the ratios (DESIGN.md target: harness cost per event <= 10x a bare push+pop);
  - trace memory: memory held at the end of a run with and without the trace, at two
    lengths (the trace is streamed to disk, so the difference must not grow).
"""

from __future__ import annotations

import argparse
import gc
import heapq
import random
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from kubeproof.raft import Message, RaftNode, Ready
from kubeproof.sim.config import ALL_FAULTS, SimConfig
from kubeproof.sim.harness import Simulation, run_simulation
from kubeproof.sim.trace import TraceHeader, TraceWriter


def best(repeat: int, fn: Callable[[], float]) -> float:
    return min(fn() for _ in range(repeat))


class TimedNode(RaftNode):
    """RaftNode with a stopwatch around every entry point the harness calls."""

    spent = 0.0

    def tick(self) -> None:
        t = time.perf_counter()
        super().tick()
        TimedNode.spent += time.perf_counter() - t

    def step(self, m: Message) -> None:
        t = time.perf_counter()
        try:
            super().step(m)
        finally:
            TimedNode.spent += time.perf_counter() - t

    def propose(self, data: bytes) -> None:
        t = time.perf_counter()
        try:
            super().propose(data)
        finally:
            TimedNode.spent += time.perf_counter() - t

    def has_ready(self) -> bool:
        t = time.perf_counter()
        r = super().has_ready()
        TimedNode.spent += time.perf_counter() - t
        return r

    def ready(self) -> Ready:
        t = time.perf_counter()
        r = super().ready()
        TimedNode.spent += time.perf_counter() - t
        return r

    def advance(self, rd: Ready) -> None:
        t = time.perf_counter()
        super().advance(rd)
        TimedNode.spent += time.perf_counter() - t


def bare_heap(pairs: int, depth: int) -> float:
    """Seconds for `pairs` heappush+heappop pairs on a heap kept `depth` deep, with the
    harness's entry shape (time, seq, kind, a, b)."""
    rng = random.Random(0)
    gaps = [rng.randint(1, 30) for _ in range(1024)]
    heap = [(i, i, 0, 0, 0) for i in range(depth)]
    heapq.heapify(heap)
    push, pop = heapq.heappush, heapq.heappop
    seq = depth
    gc.disable()
    t0 = time.process_time()
    for i in range(pairs):
        t, _, kind, a, b = pop(heap)
        push(heap, (t + gaps[i & 1023], seq, kind, a, b))
        seq += 1
    elapsed = time.process_time() - t0
    gc.enable()
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    cfg = SimConfig(nodes=5, steps=args.steps, faults=ALL_FAULTS)
    n = args.steps

    # 1. The harness alone.
    heap_ops: dict[str, int] = {}

    def plain() -> float:
        sim = Simulation(cfg, args.seed)
        t = time.process_time()
        result = sim.run()
        elapsed = time.process_time() - t
        assert result.counters.events == n
        heap_ops["pushes"] = sim._seq  # every intention ever pushed
        heap_ops["depth"] = len(sim._heap)
        return elapsed

    t_plain = best(args.repeat, plain)

    # 2. With the trace streamed to a file.
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "bench.jsonl"

        def traced() -> float:
            t = time.process_time()
            run_simulation(cfg, args.seed, trace=path)
            return time.process_time() - t

        t_traced = best(args.repeat, traced)
        trace_bytes = path.stat().st_size

    # 3. With the spec's checkers.
    t_checked: float | None
    try:
        from kubeproof.spec.raft import raft_checkers

        def checked() -> float:
            t = time.process_time()
            r = run_simulation(cfg, args.seed, checkers=raft_checkers())
            assert r.ok, r.violation
            return time.process_time() - t

        t_checked = best(1, checked)
    except ImportError:
        t_checked = None

    # 4. Inside the node vs the harness's own share: the node's time is measured in an
    # instrumented run (same seed, same events) and subtracted from the plain run, so the
    # stopwatch's own cost is not charged to the harness.
    def node_time() -> float:
        TimedNode.spent = 0.0
        Simulation(cfg, args.seed, node_factory=TimedNode).run()
        return TimedNode.spent

    t_harness_only = t_plain - best(args.repeat, node_time)

    # 5. The bare loop, same number of push+pop pairs (the harness pops what it pushes).
    pairs = heap_ops["pushes"]
    t_bare = best(args.repeat, lambda: bare_heap(pairs, max(heap_ops["depth"], 1)))

    per_event = t_plain / n
    per_pair = t_bare / pairs

    def line(label: str, seconds: float, extra: str = "") -> None:
        rate = n / seconds
        print(f"{label:<34}{rate:>10,.0f} events/s {seconds / n * 1e6:7.2f} us/event{extra}")

    print(f"5-node Raft, all faults, seed {args.seed}, {n} events, {pairs} heap push+pop pairs")
    line("harness (no checkers, no trace):", t_plain)
    line("harness + trace to file:", t_traced, f"  ({trace_bytes / n:.0f} B/event)")
    if t_checked is not None:
        line("harness + spec checkers:", t_checked)
    print(f"{'  of which outside the Raft node:':<54}{t_harness_only / n * 1e6:7.2f} us/event")
    print(
        f"{'bare heapq push+pop loop:':<34}{pairs / t_bare:>10,.0f} pairs/s  "
        f"{per_pair * 1e6:7.2f} us/pair"
    )
    print(f"{'ratio, harness per event / bare push+pop:':<54}{per_event / per_pair:7.1f}x")
    print(
        f"{'ratio, harness own share per event / bare:':<54}{t_harness_only / n / per_pair:7.1f}x"
    )
    print(f"{'ratio, harness+trace per event / bare:':<54}{t_traced / n / per_pair:7.1f}x")

    # 6. Trace memory is flat in the number of steps: the writer keeps nothing between
    # lines.  Measured as memory still held at the end of a run (the simulation alive),
    # with and without the trace; the cluster's own state (the Raft logs) grows with the
    # run either way.  The *peak* with a trace also includes the encoding of the largest
    # single line (a restarted member re-applies its whole committed log in one Ready).
    with tempfile.TemporaryDirectory() as d:
        for steps in (n // 4, n):
            c = SimConfig(nodes=5, steps=steps, faults=ALL_FAULTS)
            held = []
            for with_trace in (False, True):
                gc.collect()
                tracemalloc.start()
                writer = TraceWriter.open(Path(d) / "m.jsonl") if with_trace else None
                if writer is not None:
                    writer.header(TraceHeader(seed=args.seed, config=c))
                sim = Simulation(c, args.seed, sink=writer.event if writer else None)
                sim.run()
                gc.collect()
                held.append(tracemalloc.get_traced_memory()[0])
                tracemalloc.stop()
                if writer is not None:
                    writer.close()
                del sim
            print(
                f"memory held after {steps:>7} events: {held[0] / 2**10:7.0f} KiB untraced, "
                f"{held[1] / 2**10:7.0f} KiB traced (the trace holds "
                f"{(held[1] - held[0]) / 2**10:+.0f} KiB)"
            )


if __name__ == "__main__":
    main()
