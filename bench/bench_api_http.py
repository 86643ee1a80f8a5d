"""Requests per second through the Kubernetes HTTP server, against a bare aiohttp hello-world.

Run: ``python bench/bench_api_http.py [--seconds 3] [--concurrency 16] [--pods 1000]``

Each server runs in its own process (so the client does not share its
interpreter), plain HTTP on 127.0.0.1, on the same stack (aiohttp's
low-level server):

* ``hello``: a handler that returns a fixed small JSON body;
* ``kube``: `kubeproof.serve` over the pure API core, in memory, every
  request made as a ``system:masters`` user (no TLS, no authentication:
  this measures the HTTP layer plus the core);
* ``kube --data-dir``: the same with every write appended to the
  write-ahead log and fsynced (group commit), for creates.

The client keeps one HTTP/1.1 connection per worker and parses responses
by hand: an aiohttp client tops out below what the server can do here, and
the client, not the server, would be measured.  Printed: requests per
second per workload and each one's ratio to hello-world.  Figures depend
on the machine (2 cores: the client and the server share them); compare
within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# ---------------------------------------------------------------------------
# Server processes (this script re-run with --serve)


def _serve_hello(port: int) -> None:
    from aiohttp import web

    body = b'{"kind":"Status","apiVersion":"v1","status":"Success"}'

    async def handle(_: web.BaseRequest) -> web.Response:
        return web.Response(body=body, headers={"Content-Type": "application/json"})

    async def main() -> None:
        runner = web.ServerRunner(web.Server(handle, access_log=None), handle_signals=True)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


def _serve_kube(port: int, data_dir: str | None) -> None:
    from kubeproof.api import UserInfo
    from kubeproof.serve.app import ServeOptions, start

    async def main() -> None:
        await start(
            ServeOptions(
                secure_port=port,
                data_dir=Path(data_dir) if data_dir else None,
                tls=False,
                authorization_mode="AlwaysAllow",
                fixed_user=UserInfo("bench", ("system:masters", "system:authenticated")),
            )
        )
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


def _spawn(kind: str, port: int, data_dir: str | None = None) -> subprocess.Popen[str]:
    args = [sys.executable, __file__, "--serve", kind, "--port", str(port)]
    if data_dir:
        args += ["--data-dir", data_dir]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        raise RuntimeError(f"{kind} server did not start: {line!r}")
    return proc


# ---------------------------------------------------------------------------
# Client


def _pod(name: str) -> bytes:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": "bench"}},
            "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]},
        }
    ).encode()


Request = Callable[[int, int], tuple[str, str, bytes | None]]


class _Conn:
    """One keep-alive HTTP/1.1 connection (responses carry Content-Length)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> _Conn:
        r, w = await asyncio.open_connection("127.0.0.1", port, limit=1 << 24)
        return cls(r, w)

    async def request(self, method: str, path: str, body: bytes | None) -> int:
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + (body or b""))
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = 0
        for line in lines[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


async def _load(
    port: int, make: Request, seconds: float, concurrency: int, expect: int
) -> tuple[float, int]:
    """``concurrency`` workers, one connection each, for ``seconds``;
    returns (requests per second, unexpected statuses)."""
    count = 0
    errors = 0
    conns = [await _Conn.open(port) for _ in range(concurrency)]
    deadline = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        nonlocal count, errors
        i = 0
        while time.perf_counter() < deadline:
            method, path, body = make(w, i)
            if await conns[w].request(method, path, body) != expect:
                errors += 1
            count += 1
            i += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    elapsed = time.perf_counter() - start
    for c in conns:
        c.close()
    return count / elapsed, errors


async def _populate(port: int, n: int) -> None:
    conns = [await _Conn.open(port) for _ in range(8)]

    async def worker(w: int) -> None:
        for i in range(w, n, len(conns)):
            pod = _pod(f"p-{i:05d}")
            status = await conns[w].request("POST", "/api/v1/namespaces/default/pods", pod)
            if status != 201:
                raise RuntimeError(f"populate: HTTP {status}")

    await asyncio.gather(*(worker(w) for w in range(len(conns))))
    for c in conns:
        c.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--pods", type=int, default=1000)
    ap.add_argument("--serve", choices=["hello", "kube"], help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--data-dir", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.serve == "hello":
        _serve_hello(a.port)
        return
    if a.serve == "kube":
        _serve_kube(a.port, a.data_dir)
        return

    n, secs, conc = a.pods, a.seconds, a.concurrency
    pods = "/api/v1/namespaces/default/pods"
    results: dict[str, tuple[float, int]] = {}
    procs: list[subprocess.Popen[str]] = []
    wal_size = 0
    try:
        port = _free_port()
        procs.append(_spawn("hello", port))
        results["hello-world GET"] = asyncio.run(
            _load(port, lambda w, i: ("GET", "/", None), secs, conc, 200)
        )

        port = _free_port()
        procs.append(_spawn("kube", port))
        asyncio.run(_populate(port, n))
        results["get pod"] = asyncio.run(
            _load(port, lambda w, i: ("GET", f"{pods}/p-{i % n:05d}", None), secs, conc, 200)
        )
        results[f"list {n} pods"] = asyncio.run(
            _load(port, lambda w, i: ("GET", pods, None), secs, conc, 200)
        )
        results["create pod (memory)"] = asyncio.run(
            _load(port, lambda w, i: ("POST", pods, _pod(f"c-{w}-{i}")), secs, conc, 201)
        )
        with tempfile.TemporaryDirectory() as tmp:
            port = _free_port()
            procs.append(_spawn("kube", port, tmp))
            results["create pod (WAL+fsync)"] = asyncio.run(
                _load(port, lambda w, i: ("POST", pods, _pod(f"c-{w}-{i}")), secs, conc, 201)
            )
            wal_size = os.path.getsize(Path(tmp) / "wal" / "store.wal")
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=10)

    base = results["hello-world GET"][0]
    print(f"concurrency {conc}, {secs:g} s per workload, {n} pods in the listed namespace")
    print(f"{'workload':<26}{'req/s':>10}{'vs hello':>10}{'errors':>8}")
    for name, (rps, errs) in results.items():
        print(f"{name:<26}{rps:>10.0f}{rps / base:>10.3f}{errs:>8}")
    print(f"WAL size after the durable run: {wal_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
