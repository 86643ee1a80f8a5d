"""MVCC store throughput (put, range, txn, watch catch-up) and history memory.

Throughput: operations per second on one store, single thread, wall clock
and process CPU time (on a shared machine the CPU figure is steadier).

    put            put of a 16-byte value to one of 10,000 keys
    range 1 key    range of one existing key at the current revision
    range 100      range of 100 keys (a prefix list, as the API server does)
    range @rev     range of one key at a random past revision
    txn            kube-apiserver's update shape: If(mod == rev) Then(put) Else(get)
    watch          events per second delivered to a watcher catching up on history

Memory (DESIGN section 7: 1,000,000 revisions of small values under 1 GiB):
resident set size growth after 1,000,000 puts of 16-byte values, once over
10,000 keys (a store that updates objects) and once over 1,000,000 distinct
keys (the worst case: every revision also adds a key to the index).  RSS is
read from /proc/self/statm; the figure includes the Python objects, the lists
and the sorted key index, everything the history costs.

Run:  python bench/bench_mvcc.py [--quick]
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import time
from collections.abc import Callable

from kubeproof.mvcc import (
    Compare,
    CompareResult,
    CompareTarget,
    MVCCStore,
    PutRequest,
    RangeRequest,
)

VALUE = b"v" * 16


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def rate(name: str, n: int, fn: Callable[[int], object]) -> None:
    gc.collect()
    w0, c0 = time.perf_counter(), time.process_time()
    for i in range(n):
        fn(i)
    w, c = time.perf_counter() - w0, time.process_time() - c0
    print(f"  {name:<14} {n / w:>10,.0f} ops/s wall   {n / c:>10,.0f} ops/s cpu   ({n:,} ops)")


def throughput(n: int) -> None:
    print(f"throughput (10,000 keys, {n:,} ops each)")
    rng = random.Random(1)
    keys = [f"/registry/pods/default/pod-{i:05d}".encode() for i in range(10_000)]
    s = MVCCStore()
    for k in keys:
        s.put(k, VALUE)
    rate("put", n, lambda i: s.put(keys[i % len(keys)], VALUE))
    picks = [rng.choice(keys) for _ in range(n)]
    rate("range 1 key", n, lambda i: s.range(picks[i]))
    starts = [keys[rng.randrange(len(keys) - 100)] for _ in range(n // 10)]
    ends = {k: keys[keys.index(k) + 100] for k in set(starts)}
    rate("range 100", n // 10, lambda i: s.range(starts[i], ends[starts[i]]))
    revs = [rng.randrange(2, s.revision) for _ in range(n)]
    rate("range @rev", n, lambda i: s.range(picks[i], revision=revs[i]))

    def update(i: int) -> None:
        k = picks[i]
        mod = s.range(k).kvs[0].mod_revision
        s.txn(
            [
                Compare(
                    key=k, target=CompareTarget.MOD, result=CompareResult.EQUAL, mod_revision=mod
                )
            ],
            [PutRequest(key=k, value=VALUE)],
            [RangeRequest(key=k)],
        )

    rate("txn (+get)", n, update)

    w = s.watch(b"/registry/", b"/registry0", start_revision=s.revision - n)
    w0, c0 = time.perf_counter(), time.process_time()
    events = sum(len(r.events) for r in w.poll())
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    print(
        f"  {'watch':<14} {events / wall:>10,.0f} ev/s  wall   {events / cpu:>10,.0f} ev/s  cpu   ({events:,} events)"
    )


def memory(n: int, distinct_keys: int) -> None:
    gc.collect()
    before = rss_bytes()
    s = MVCCStore()
    t0 = time.perf_counter()
    for i in range(n):
        s.put(b"/registry/configmaps/default/cm-%07d" % (i % distinct_keys), VALUE)
    secs = time.perf_counter() - t0
    gc.collect()
    grown = rss_bytes() - before
    print(
        f"  {n:,} revisions over {distinct_keys:,} keys: RSS +{grown / 2**20:,.0f} MiB "
        f"({grown / n:,.0f} bytes/revision; {n / secs:,.0f} puts/s while filling)"
    )
    del s
    gc.collect()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="smaller runs (a smoke test)")
    args = p.parse_args()
    n = 20_000 if args.quick else 100_000
    revisions = 100_000 if args.quick else 1_000_000
    throughput(n)
    print("memory (target: 1,000,000 revisions of small values under 1 GiB)")
    memory(revisions, 10_000)
    memory(revisions, revisions)


if __name__ == "__main__":
    main()
