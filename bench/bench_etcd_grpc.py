"""Operations per second through etcd's gRPC API: `kubeproof etcd` against real etcd 3.4.

Run: ``python bench/bench_etcd_grpc.py [--ops 3000] [--concurrency 32] [--rounds 3]
[--cluster-size 1]``

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
Printed: ops/s per workload for each server and kubeproof's ratio to etcd.
The machine has 2 cores that the client and the server share; compare
within one run.
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
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


@contextmanager
def real_etcd(tmp: Path) -> Iterator[str]:
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
    with _process(cmd):
        yield f"127.0.0.1:{client}"


@contextmanager
def kubeproof_etcd(tmp: Path, cluster_size: int) -> Iterator[str]:
    port = _free_port()
    cmd = [
        sys.executable,
        "-c",
        "from kubeproof.cli.main import main; main()",
        "etcd",
        f"--data-dir={tmp / 'kubeproof'}",
        f"--listen-client-urls=http://127.0.0.1:{port}",
    ]
    if cluster_size > 1:
        cmd.append(f"--cluster-size={cluster_size}")
    with _process(cmd):
        # With --cluster-size the first member has the given port.
        yield f"127.0.0.1:{port}"


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
    target: str, ops: int, concurrency: int, prefix: bytes = b"/bench/"
) -> dict[str, float]:
    c = Client(target)
    try:
        await c.wait_ready()
        value = b"v" * 64
        out: dict[str, float] = {}
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
        out["put"] = await _drive(ops, concurrency, put)
        out["range"] = await _drive(ops, concurrency, get)
        out["txn"] = await _drive(ops, concurrency, cas)
        return out
    finally:
        await c.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ops", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cluster-size", type=int, default=1, help="kubeproof members (etcd: 1)")
    args = ap.parse_args()
    if not os.path.exists(ETCD):
        sys.exit(f"real etcd not found at {ETCD} (Debian package etcd-server)")
    results: dict[str, dict[str, float]] = {"etcd 3.4": {}, "kubeproof": {}}
    with tempfile.TemporaryDirectory(prefix="bench-etcd-") as d:
        tmp = Path(d)
        with real_etcd(tmp) as etcd_target, kubeproof_etcd(tmp, args.cluster_size) as kp_target:
            for r in range(args.rounds):
                prefix = b"/bench/%d/" % r
                for name, target in (("etcd 3.4", etcd_target), ("kubeproof", kp_target)):
                    got = asyncio.run(workload(target, args.ops, args.concurrency, prefix))
                    best = results[name]
                    for w, v in got.items():
                        best[w] = max(best.get(w, 0.0), v)
    print(
        f"etcd gRPC API, {args.ops} ops per workload, concurrency {args.concurrency}, "
        f"best of {args.rounds} rounds, kubeproof members: {args.cluster_size}"
    )
    print(f"{'workload':<8} {'etcd 3.4 ops/s':>15} {'kubeproof ops/s':>16} {'ratio':>7}")
    for w in ("put", "range", "txn"):
        e, k = results["etcd 3.4"][w], results["kubeproof"][w]
        print(f"{w:<8} {e:>15.0f} {k:>16.0f} {k / e:>7.2f}")


if __name__ == "__main__":
    main()
