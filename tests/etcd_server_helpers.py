"""Running `kubeproof etcd` as a subprocess for the real-client tests (etcdctl, etcd3)."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ETCDCTL = shutil.which("etcdctl")
STARTUP_TIMEOUT = 60.0
COMMAND_TIMEOUT = 60.0

_MEMBER_LINE = re.compile(r"^member (\S+) id=([0-9a-f]+) serving clients on (\S+)$")


class LineReader:
    """Reads a subprocess's stdout lines in a thread, so a test can wait for a
    line with a timeout instead of sleeping."""

    def __init__(self, stream: Any) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self._thread.start()

    def _run(self, stream: Any) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def next(self, timeout: float = COMMAND_TIMEOUT) -> str:
        line = self.lines.get(timeout=timeout)
        if line is None:
            raise EOFError(f"the process ended; it printed {self.seen!r}")
        self.seen.append(line)
        return line

    def take(self, n: int, timeout: float = COMMAND_TIMEOUT) -> list[str]:
        return [self.next(timeout) for _ in range(n)]


class EtcdProcess:
    def __init__(self, proc: subprocess.Popen[str], endpoints: list[str], names: list[str]):
        self.proc = proc
        self.endpoints = endpoints  # host:port, one per member
        self.names = names

    @property
    def endpoint_flag(self) -> str:
        return ",".join(self.endpoints)

    def ctl(
        self,
        *args: str,
        stdin: str | None = None,
        endpoints: Sequence[str] | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        assert ETCDCTL is not None
        eps = ",".join(endpoints) if endpoints is not None else self.endpoint_flag
        cmd = [ETCDCTL, f"--endpoints={eps}", "--command-timeout=30s", "--dial-timeout=10s", *args]
        res = subprocess.run(
            cmd,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            env={**os.environ, "ETCDCTL_API": "3"},
        )
        if check and res.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({res.returncode}): {res.stderr}")
        return res

    def json(self, *args: str, endpoints: Sequence[str] | None = None) -> Any:
        return json.loads(self.ctl(*args, "-w", "json", endpoints=endpoints).stdout)

    def watch(self, *args: str) -> tuple[subprocess.Popen[str], LineReader]:
        assert ETCDCTL is not None
        proc = subprocess.Popen(
            [ETCDCTL, f"--endpoints={self.endpoint_flag}", "watch", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "ETCDCTL_API": "3"},
        )
        return proc, LineReader(proc.stdout)


def kubeproof_cmd(*args: str) -> list[str]:
    return [sys.executable, "-c", "from kubeproof.cli.main import main; main()", *args]


@contextmanager
def running_etcd(data_dir: Path, *extra: str) -> Iterator[EtcdProcess]:
    """``kubeproof etcd`` on free loopback ports (port 0), stopped with SIGTERM."""
    proc = subprocess.Popen(
        kubeproof_cmd(
            "etcd",
            "--data-dir",
            str(data_dir),
            "--listen-client-urls",
            "http://127.0.0.1:0",
            *extra,
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        reader = LineReader(proc.stdout)
        endpoints: list[str] = []
        names: list[str] = []
        while True:
            try:
                line = reader.next(STARTUP_TIMEOUT)
            except (EOFError, queue.Empty):
                proc.kill()
                raise AssertionError(
                    f"kubeproof etcd did not start: {reader.seen!r} {proc.stderr.read() if proc.stderr else ''}"
                ) from None
            if line == "ready":
                break
            m = _MEMBER_LINE.match(line)
            if m:
                names.append(m.group(1))
                endpoints.append(m.group(3).removeprefix("http://"))
        yield EtcdProcess(proc, endpoints, names)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
