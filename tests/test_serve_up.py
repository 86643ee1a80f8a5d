"""`kubeproof up` as a user runs it: a subprocess, its printed address, SIGTERM, restart from disk."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from kubeproof.serve.certs import issue_client_cert
from kubeproof.serve.wal import MAGIC
from tests.serve_helpers import write_token_file

pytestmark = pytest.mark.timeout(300)


@contextmanager
def kubeproof_up(data_dir: Path, *flags: str) -> Iterator[tuple[str, Path, list[str]]]:
    """Runs `kubeproof up --secure-port 0` until its ready lines; yields
    (url, kubeconfig path, output lines); stops it with SIGTERM."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from kubeproof.cli.main import main; main()",
            "up",
            "--secure-port",
            "0",
            "--data-dir",
            str(data_dir),
            *flags,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("admin kubeconfig:"):
                break
        else:
            raise AssertionError(f"kubeproof up exited early: {''.join(lines)}")
        url = next(x for x in lines if "ready at" in x).split("ready at ")[1].strip()
        kubeconfig = Path(lines[-1].split(":", 1)[1].strip())
        yield url, kubeconfig, lines
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=30)
        lines.append(rest)
    assert proc.returncode == 0, "".join(lines)
    assert "shutting down" in rest


def _request(
    url: str, data_dir: Path, method: str = "GET", body: Any = None, cert: str = "admin"
) -> tuple[int, Any]:
    ctx = ssl.create_default_context(cafile=str(data_dir / "pki" / "ca.crt"))
    ctx.load_cert_chain(data_dir / "pki" / f"{cert}.crt", data_dir / "pki" / f"{cert}.key")
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_up_prints_address_serves_and_survives_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with kubeproof_up(data) as (url, kubeconfig, _lines):
        assert url.startswith("https://127.0.0.1:")
        assert kubeconfig == data / "admin.kubeconfig" and kubeconfig.is_file()
        assert oct(kubeconfig.stat().st_mode & 0o777) == "0o600"
        status, ns = _request(
            f"{url}/api/v1/namespaces",
            data,
            "POST",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kept"}},
        )
        assert status == 201, ns
        uid = ns["metadata"]["uid"]
    # A new process over the same data dir replays the WAL: same object, same uid,
    # and the same certificates (the old kubeconfig still works).
    with kubeproof_up(data) as (url2, _, _):
        status, ns2 = _request(f"{url2}/api/v1/namespaces/kept", data)
        assert status == 200 and ns2["metadata"]["uid"] == uid
        assert int(ns2["metadata"]["resourceVersion"]) == int(ns["metadata"]["resourceVersion"])


def test_client_certificate_groups_are_the_users_groups(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with kubeproof_up(data) as (url, _, _):
        from kubeproof.serve.certs import ensure_pki

        pki = ensure_pki(data / "pki")
        issue_client_cert(pki, "carol", ("devs",), data / "pki/carol.crt", data / "pki/carol.key")
        issue_client_cert(
            pki, "dave", ("system:masters",), data / "pki/dave.crt", data / "pki/dave.key"
        )
        status, review = _request(
            f"{url}/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            data,
            "POST",
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": {"verb": "list", "resource": "pods"}},
            },
            cert="carol",
        )
        assert status == 201 and review["status"]["allowed"] is False
        status, denied = _request(f"{url}/api/v1/namespaces/default/pods", data, cert="carol")
        assert status == 403
        assert denied["message"].startswith('pods is forbidden: User "carol" cannot list')
        status, _ = _request(f"{url}/api/v1/namespaces/default/pods", data, cert="dave")
        assert status == 200  # the O=system:masters group, from the certificate


def test_anonymous_and_token_flags(tmp_path: Path) -> None:
    data = tmp_path / "data"
    tokens = write_token_file(tmp_path / "tokens.csv")
    with kubeproof_up(data, "--token-auth-file", str(tokens), "--anonymous-auth=false") as (
        url,
        _,
        _,
    ):
        ctx = ssl.create_default_context(cafile=str(data / "pki" / "ca.crt"))
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"{url}/healthz", context=ctx, timeout=30)
        assert e.value.code == 401
        req = urllib.request.Request(
            f"{url}/api/v1/namespaces/default/pods",
            headers={"Authorization": "Bearer admin-token"},
        )
        with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
            assert r.status == 200 and json.loads(r.read())["kind"] == "PodList"
    with kubeproof_up(data) as (url, _, _):
        ctx = ssl.create_default_context(cafile=str(data / "pki" / "ca.crt"))
        with urllib.request.urlopen(f"{url}/healthz", context=ctx, timeout=30) as r:
            assert r.read() == b"ok"  # anonymous may read health (public-info-viewer)
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"{url}/api/v1/namespaces", context=ctx, timeout=30)
        assert e.value.code == 403


def _run_up(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from kubeproof.cli.main import main; main()", "up", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_bad_flags_exit_2(tmp_path: Path) -> None:
    out = _run_up("--authorization-mode", "Webhook", "--data-dir", str(tmp_path / "d"))
    assert out.returncode == 2 and "Webhook" in out.stderr
    out = _run_up("--token-auth-file", str(tmp_path / "missing.csv"))
    assert out.returncode == 2 and "missing.csv" in out.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("only-a-token\n")
    out = _run_up("--token-auth-file", str(bad), "--data-dir", str(tmp_path / "d2"))
    assert out.returncode == 2 and "line 1" in out.stderr


def test_corrupt_wal_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with kubeproof_up(data) as (url, _, _):
        for name in ("a", "b"):
            status, _ = _request(
                f"{url}/api/v1/namespaces",
                data,
                "POST",
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
            )
            assert status == 201
    wal = data / "wal" / "store.wal"
    raw = bytearray(wal.read_bytes())
    raw[len(MAGIC) + 20] ^= 0x55  # inside the first record, far from the tail
    wal.write_bytes(bytes(raw))
    out = _run_up("--secure-port", "0", "--data-dir", str(data))
    assert out.returncode == 1
    assert "is corrupt at byte 8" in out.stderr and "fails its CRC check" in out.stderr
    assert os.path.getsize(wal) == len(raw)  # left as it was for the operator
