"""Operations per second through etcd's gRPC API: `kubeproof etcd` against real etcd 3.4.

Run: ``python bench/bench_etcd_grpc.py [--ops 3000] [--concurrency 32] [--rounds 3]
[--cluster-size 1] [--grpc-engines h2,grpcio]``

Both servers are started by this script on free loopback ports with a
temporary data dir and driven, in alternating rounds (etcd, kubeproof,
etcd, ...), by the same client with the same workload; each figure is the
best of ``--rounds``, so that a burst of load from elsewhere on the machine
hurts neither side more than the other:

* ``put``:   ``--ops`` puts of distinct keys (64-byte values);
* ``range``: ``--ops`` linearizable gets of those keys;
* ``txn``:   ``--ops`` compare-and-swap txns (mod_revision guard, put on success,
  get on failure), the shape kube-apiserver sends for every update.

The client is a ``grpc.aio`` channel in this process with ``--concurrency``
requests in flight, using kubeproof's own etcdserverpb stubs (the same
bytes on the wire for both servers).  Real etcd is ``/usr/bin/etcd`` (Debian
``etcd-server`` 3.4); both fsync their log before answering a write.
``--grpc-engines`` starts one kubeproof server per gRPC engine (its
``--grpc-engine``: ``h2``, kubeproof's own HTTP/2 on hyperframe and hpack,
the default; ``grpcio``, grpcio's asyncio server; see
`kubeproof.serve.etcd_grpc.ENGINES`), all measured in the same rounds.

Printed: ops/s per workload for each server, kubeproof's ratio to etcd, and
each server process's CPU time per operation (user + system, all threads,
from /proc; the best round's), which is steadier than ops/s when the
machine is busy.  The machine has 2 cores that the client and the servers
share; compare within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import grpc

from kubeproof.serve.etcd_pb import rpc_pb2 as pb

ETCD = shutil.which("etcd") or "/usr/bin/etcd"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def _process(
    cmd: list[str], env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class Server(NamedTuple):
    target: str
    pid: int


@contextmanager
def real_etcd(tmp: Path) -> Iterator[Server]:
    client, peer = _free_port(), _free_port()
    cmd = [
        ETCD,
        "--name=bench",
        f"--data-dir={tmp / 'etcd'}",
        f"--listen-client-urls=http://127.0.0.1:{client}",
        f"--advertise-client-urls=http://127.0.0.1:{client}",
        f"--listen-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-cluster=bench=http://127.0.0.1:{peer}",
    ]
    with _process(cmd) as proc:
        yield Server(f"127.0.0.1:{client}", proc.pid)


@contextmanager
def kubeproof_etcd(tmp: Path, cluster_size: int, engine: str = "h2") -> Iterator[Server]:
    port = _free_port()
    cmd = [
        sys.executable,
        "-c",
        "from kubeproof.cli.main import main; main()",
        "etcd",
        f"--data-dir={tmp / ('kubeproof-' + engine)}",
        f"--listen-client-urls=http://127.0.0.1:{port}",
        f"--grpc-engine={engine}",
    ]
    if cluster_size > 1:
        cmd.append(f"--cluster-size={cluster_size}")
    with _process(cmd) as proc:
        # With --cluster-size the first member has the given port.
        yield Server(f"127.0.0.1:{port}", proc.pid)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Client:
    def __init__(self, target: str) -> None:
        self.channel = grpc.aio.insecure_channel(target)
        ch = self.channel
        self.put = ch.unary_unary(
            "/etcdserverpb.KV/Put",
            request_serializer=pb.PutRequest.SerializeToString,
            response_deserializer=pb.PutResponse.FromString,
        )
        self.range = ch.unary_unary(
            "/etcdserverpb.KV/Range",
            request_serializer=pb.RangeRequest.SerializeToString,
            response_deserializer=pb.RangeResponse.FromString,
        )
        self.txn = ch.unary_unary(
            "/etcdserverpb.KV/Txn",
            request_serializer=pb.TxnRequest.SerializeToString,
            response_deserializer=pb.TxnResponse.FromString,
        )

    async def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                await self.put(pb.PutRequest(key=b"/bench/ready", value=b"1"), timeout=2)
                return
            except grpc.aio.AioRpcError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)

    async def close(self) -> None:
        await self.channel.close(None)


async def _drive(n: int, concurrency: int, op: Callable[[int], Awaitable[Any]]) -> float:
    """Runs op(0..n-1) with `concurrency` in flight; returns ops per second."""
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            await op(i)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - start)


async def workload(
    target: str, ops: int, concurrency: int, prefix: bytes = b"/bench/", pid: int = 0
) -> dict[str, tuple[float, float]]:
    """ops/s and the server's CPU seconds per op (0 without ``pid``), per workload."""
    c = Client(target)
    try:
        await c.wait_ready()
        value = b"v" * 64
        out: dict[str, tuple[float, float]] = {}
        revs: dict[int, int] = {}

        async def put(i: int) -> None:
            r = await c.put(pb.PutRequest(key=prefix + b"k%06d" % i, value=value))
            revs[i] = r.header.revision

        async def get(i: int) -> None:
            r = await c.range(pb.RangeRequest(key=prefix + b"k%06d" % i))
            assert r.count == 1, r

        async def cas(i: int) -> None:
            key = prefix + b"k%06d" % i
            r = await c.txn(
                pb.TxnRequest(
                    compare=[
                        pb.Compare(
                            key=key,
                            target=pb.Compare.MOD,
                            result=pb.Compare.EQUAL,
                            mod_revision=revs[i],
                        )
                    ],
                    success=[pb.RequestOp(request_put=pb.PutRequest(key=key, value=value))],
                    failure=[pb.RequestOp(request_range=pb.RangeRequest(key=key))],
                )
            )
            assert r.succeeded, r

        # Warm up both the server and the client's channel.
        await _drive(200, concurrency, lambda i: c.range(pb.RangeRequest(key=b"/bench/ready")))
        for name, op in (("put", put), ("range", get), ("txn", cas)):
            before = cpu_seconds(pid) if pid else 0.0
            rate = await _drive(ops, concurrency, op)
            used = cpu_seconds(pid) - before if pid else 0.0
            out[name] = (rate, used / ops)
        return out
    finally:
        await c.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ops", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cluster-size", type=int, default=1, help="kubeproof members (etcd: 1)")
    ap.add_argument(
        "--grpc-engines",
        default="h2",
        help="comma-separated kubeproof gRPC engines to measure (h2, grpcio)",
    )
    args = ap.parse_args()
    engines = [e.strip() for e in args.grpc_engines.split(",") if e.strip()]
    if not os.path.exists(ETCD):
        sys.exit(f"real etcd not found at {ETCD} (Debian package etcd-server)")
    names = ["etcd 3.4"] + [f"kubeproof {e}" if len(engines) > 1 else "kubeproof" for e in engines]
    # Per server and workload: the best round's (ops/s, CPU seconds per op).
    results: dict[str, dict[str, tuple[float, float]]] = {n: {} for n in names}
    with tempfile.TemporaryDirectory(prefix="bench-etcd-") as d, ExitStack() as stack:
        tmp = Path(d)
        servers = [stack.enter_context(real_etcd(tmp))] + [
            stack.enter_context(kubeproof_etcd(tmp, args.cluster_size, e)) for e in engines
        ]
        for r in range(args.rounds):
            prefix = b"/bench/%d/" % r
            for name, server in zip(names, servers, strict=True):
                got = asyncio.run(
                    workload(server.target, args.ops, args.concurrency, prefix, server.pid)
                )
                best = results[name]
                for w, v in got.items():
                    if v[0] > best.get(w, (0.0, 0.0))[0]:
                        best[w] = v
    print(
        f"etcd gRPC API, {args.ops} ops per workload, concurrency {args.concurrency}, "
        f"best of {args.rounds} rounds, kubeproof members: {args.cluster_size}"
    )
    head = f"{'workload':<8} {'etcd 3.4 ops/s':>15}"
    for n in names[1:]:
        head += f" {n + ' ops/s':>{max(16, len(n) + 6)}} {'ratio':>6}"
    print(head + "   server CPU us/op: " + ", ".join(names))
    for w in ("put", "range", "txn"):
        e = results[names[0]][w][0]
        line = f"{w:<8} {e:>15.0f}"
        for n in names[1:]:
            k = results[n][w][0]
            line += f" {k:>{max(16, len(n) + 6)}.0f} {k / e:>6.2f}"
        cpu = ", ".join(f"{results[n][w][1] * 1e6:.0f}" for n in names)
        print(f"{line}   {cpu}")


if __name__ == "__main__":
    main()
