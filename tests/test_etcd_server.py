"""etcdctl 3.4 and the etcd3 Python client against `kubeproof etcd` (one member and three).

Each test talks to a real `kubeproof etcd` process through the real client
binaries/libraries, over gRPC on loopback; keys are namespaced per test so
the module-scoped servers can be shared.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from hyperframe.frame import Frame, SettingsFrame

from .etcd_server_helpers import (
    COMMAND_TIMEOUT,
    ETCDCTL,
    EtcdProcess,
    kubeproof_cmd,
    running_etcd,
)

pytestmark = pytest.mark.skipif(ETCDCTL is None, reason="etcdctl (Debian etcd-client) missing")


@pytest.fixture(scope="module", params=["single", "cluster3"])
def etcd(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EtcdProcess]:
    data = tmp_path_factory.mktemp(f"etcd-{request.param}")
    extra = ("--cluster-size", "3") if request.param == "cluster3" else ()
    with running_etcd(data, *extra) as proc:
        yield proc


def _b64(s: bytes) -> str:
    return base64.b64encode(s).decode()


def test_put_get(etcd: EtcdProcess) -> None:
    assert etcd.ctl("put", "/pg/foo", "bar").stdout.strip() == "OK"
    assert etcd.ctl("get", "/pg/foo").stdout.split() == ["/pg/foo", "bar"]
    prev = etcd.ctl("put", "/pg/foo", "baz", "--prev-kv").stdout.split()
    assert prev == ["OK", "/pg/foo", "bar"]
    doc = etcd.json("get", "/pg/foo")
    assert doc["count"] == 1
    (kv,) = doc["kvs"]
    assert kv["value"] == _b64(b"baz")
    assert kv["version"] == 2
    assert kv["mod_revision"] == doc["header"]["revision"]
    assert kv["create_revision"] == kv["mod_revision"] - 1
    assert etcd.ctl("get", "/pg/missing").stdout == ""


def test_every_member_serves_the_same_data(etcd: EtcdProcess) -> None:
    etcd.ctl("put", "/all/k", "v")
    for ep in etcd.endpoints:
        # Linearizable reads (the default) on each member see the write.
        assert etcd.ctl("get", "/all/k", endpoints=[ep]).stdout.split() == ["/all/k", "v"]


def test_prefix_keys_only_limit_and_count(etcd: EtcdProcess) -> None:
    for k, v in (("a", "1"), ("b", "2"), ("c", "3")):
        etcd.ctl("put", f"/pfx/{k}", v)
    etcd.ctl("put", "/pfy", "outside")
    keys = etcd.ctl("get", "/pfx/", "--prefix", "--keys-only").stdout.split()
    assert keys == ["/pfx/a", "/pfx/b", "/pfx/c"]
    doc = etcd.json("get", "/pfx/", "--prefix", "--limit=2")
    assert [base64.b64decode(kv["key"]) for kv in doc["kvs"]] == [b"/pfx/a", b"/pfx/b"]
    assert doc["more"] is True
    assert doc["count"] == 3  # the count is the whole range, not the page
    desc = etcd.ctl("get", "/pfx/", "--prefix", "--keys-only", "--order=DESCEND").stdout.split()
    assert desc == ["/pfx/c", "/pfx/b", "/pfx/a"]
    from_key = etcd.ctl("get", "/pfx/b", "--from-key", "--keys-only").stdout.split()
    assert from_key[:3] == ["/pfx/b", "/pfx/c", "/pfy"]


def test_get_at_revision(etcd: EtcdProcess) -> None:
    first = etcd.json("put", "/rev/k", "old")["header"]["revision"]
    etcd.ctl("put", "/rev/k", "new")
    assert etcd.ctl("get", "/rev/k", f"--rev={first}").stdout.split() == ["/rev/k", "old"]
    assert etcd.ctl("get", "/rev/k").stdout.split() == ["/rev/k", "new"]
    future = etcd.ctl("get", "/rev/k", "--rev=999999999", check=False)
    assert future.returncode != 0
    assert "required revision is a future revision" in future.stderr


def test_delete(etcd: EtcdProcess) -> None:
    for k in ("x", "y", "z"):
        etcd.ctl("put", f"/del/{k}", k)
    assert etcd.ctl("del", "/del/x").stdout.strip() == "1"
    assert etcd.ctl("del", "/del/x").stdout.strip() == "0"
    out = etcd.ctl("del", "/del/", "--prefix", "--prev-kv").stdout.split()
    assert out == ["2", "/del/y", "y", "/del/z", "z"]
    assert etcd.ctl("get", "/del/", "--prefix").stdout == ""


def test_watch_history_then_live_events(etcd: EtcdProcess) -> None:
    start = etcd.json("put", "/w/a", "1")["header"]["revision"]
    etcd.ctl("put", "/w/a", "2")
    etcd.ctl("del", "/w/a")
    proc, lines = etcd.watch("/w/", "--prefix", "--prev-kv", f"--rev={start}")
    try:
        # History from `start` first: etcdctl prints the type, then (with
        # --prev-kv) the previous key and value, then the key and value.
        assert lines.take(3) == ["PUT", "/w/a", "1"]
        assert lines.take(5) == ["PUT", "/w/a", "1", "/w/a", "2"]
        assert lines.take(5) == ["DELETE", "/w/a", "2", "/w/a", ""]
        # A live event after the history.
        etcd.ctl("put", "/w/b", "live")
        assert lines.take(3) == ["PUT", "/w/b", "live"]
    finally:
        proc.terminate()
        proc.wait(timeout=COMMAND_TIMEOUT)


def test_txn_interactive(etcd: EtcdProcess) -> None:
    etcd.ctl("put", "/txn/k", "1")
    script = 'value("/txn/k") = "1"\n\nput /txn/k 2\nput /txn/other yes\n\nput /txn/k never\n\n'
    out = etcd.ctl("txn", stdin=script).stdout.split()
    assert out == ["SUCCESS", "OK", "OK"]
    assert etcd.ctl("get", "/txn/k").stdout.split() == ["/txn/k", "2"]
    # The guard now fails: the failure branch (a get) runs.
    script = 'mod("/txn/k") < "2"\n\nput /txn/k never\n\nget /txn/k\n\n'
    out = etcd.ctl("txn", stdin=script).stdout.split()
    assert out == ["FAILURE", "/txn/k", "2"]


def test_lease_grant_keepalive_timetolive_revoke(etcd: EtcdProcess) -> None:
    out = etcd.ctl("lease", "grant", "60").stdout.split()
    assert out[0] == "lease" and out[2:5] == ["granted", "with", "TTL(60s)"]
    lease = out[1]
    etcd.ctl("put", "/lease/k", "v", f"--lease={lease}")
    kept = etcd.ctl("lease", "keep-alive", "--once", lease).stdout
    assert f"lease {lease} keepalived with TTL(60)" in kept
    ttl = etcd.ctl("lease", "timetolive", lease, "--keys").stdout
    assert f"lease {lease} granted with TTL(60s)" in ttl
    assert "attached keys([/lease/k])" in ttl
    assert lease in etcd.ctl("lease", "list").stdout
    assert f"lease {lease} revoked" in etcd.ctl("lease", "revoke", lease).stdout
    assert etcd.ctl("get", "/lease/k").stdout == ""  # revoking deleted the attached key
    gone = etcd.ctl("lease", "timetolive", lease).stdout
    assert "already expired" in gone
    again = etcd.ctl("lease", "revoke", lease, check=False)
    assert again.returncode != 0
    assert "requested lease not found" in again.stderr
    unknown = etcd.ctl("put", "/lease/x", "v", "--lease=7b", check=False)
    assert "requested lease not found" in unknown.stderr


def test_compaction(etcd: EtcdProcess) -> None:
    old = etcd.json("put", "/cmp/k", "v1")["header"]["revision"]
    rev = etcd.json("put", "/cmp/k", "v2")["header"]["revision"]
    assert etcd.ctl("compaction", str(rev)).stdout.strip() == f"compacted revision {rev}"
    res = etcd.ctl("get", "/cmp/k", f"--rev={old}", check=False)
    assert res.returncode != 0
    assert "etcdserver: mvcc: required revision has been compacted" in res.stderr
    again = etcd.ctl("compaction", str(rev), check=False)
    assert "required revision has been compacted" in again.stderr
    proc, lines = etcd.watch("/cmp/k", f"--rev={old}")
    try:
        assert "watch was canceled (etcdserver: mvcc: required revision has been compacted)" in (
            lines.next()
        )
    finally:
        proc.terminate()
        proc.wait(timeout=COMMAND_TIMEOUT)
    assert etcd.ctl("get", "/cmp/k").stdout.split() == ["/cmp/k", "v2"]


def test_endpoint_status_and_member_list(etcd: EtcdProcess) -> None:
    members = etcd.ctl("member", "list").stdout.strip().splitlines()
    assert sorted(line.split(", ")[2] for line in members) == sorted(etcd.names)
    status = etcd.ctl("endpoint", "status").stdout.strip().splitlines()
    assert len(status) == len(etcd.endpoints)
    leaders = [line for line in status if ", true, false," in line]
    assert len(leaders) == 1, status
    health = etcd.ctl("endpoint", "health").stderr + etcd.ctl("endpoint", "health").stdout
    assert "is healthy" in health


def test_etcd3_python_client(etcd: EtcdProcess) -> None:
    host, port = etcd.endpoints[-1].rsplit(":", 1)
    script = Path(__file__).with_name("etcd3_client_script.py")
    # etcd3 0.12's generated code needs the pure-Python protobuf runtime with
    # protobuf >= 4 (see the script's docstring).
    env = {**os.environ, "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"}
    res = subprocess.run(
        [sys.executable, str(script), host, port],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert '"txn_success": true' in res.stdout
    assert '"lease_revoked_key": [null, null]' in res.stdout


# ---------------------------------------------------------------- restarts


def test_restart_recovers_state(tmp_path: Path) -> None:
    with running_etcd(tmp_path) as etcd:
        for i in range(20):
            etcd.ctl("put", f"/r/{i:02d}", f"v{i}")
        etcd.ctl("del", "/r/05")
        lease = etcd.ctl("lease", "grant", "300").stdout.split()[1]
        etcd.ctl("put", "/r/leased", "x", f"--lease={lease}")
        before = etcd.json("get", "/r/", "--prefix")
    with running_etcd(tmp_path) as etcd:
        after = etcd.json("get", "/r/", "--prefix")
        assert after["kvs"] == before["kvs"]
        assert after["header"]["revision"] == before["header"]["revision"]
        ttl = etcd.ctl("lease", "timetolive", lease, "--keys").stdout
        assert "attached keys([/r/leased])" in ttl
        # Writes go on from the recovered revision.
        rev = etcd.json("put", "/r/new", "n")["header"]["revision"]
        assert rev == before["header"]["revision"] + 1


def test_cluster_restart_recovers_state(tmp_path: Path) -> None:
    with running_etcd(tmp_path, "--cluster-size", "3") as etcd:
        etcd.ctl("put", "/c/k", "v")
        rev = etcd.json("get", "/c/k")["header"]["revision"]
    with running_etcd(tmp_path, "--cluster-size", "3") as etcd:
        for ep in etcd.endpoints:
            doc = etcd.json("get", "/c/k", endpoints=[ep])
            assert doc["kvs"][0]["value"] == _b64(b"v")
            assert doc["header"]["revision"] >= rev


def test_snapshots_bound_the_log_and_survive_restart(tmp_path: Path) -> None:
    with running_etcd(tmp_path, "--snapshot-count", "10") as etcd:
        for i in range(35):
            etcd.ctl("put", f"/s/{i:02d}", str(i))
    snaps = list((tmp_path / "member" / "snap").glob("*.snap"))
    assert len(snaps) == 1  # older snapshot files are removed
    with running_etcd(tmp_path, "--snapshot-count", "10") as etcd:
        keys = etcd.ctl("get", "/s/", "--prefix", "--keys-only").stdout.split()
        assert keys == [f"/s/{i:02d}" for i in range(35)]


def test_corrupt_log_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    with running_etcd(tmp_path) as etcd:
        for i in range(5):
            etcd.ctl("put", f"/k{i}", "v")
    wal = tmp_path / "member" / "raft.wal"
    data = bytearray(wal.read_bytes())
    data[20] ^= 0xFF  # inside the first record, which is not the last
    wal.write_bytes(bytes(data))
    res = subprocess.run(
        kubeproof_cmd(
            "etcd", "--data-dir", str(tmp_path), "--listen-client-urls", "http://127.0.0.1:0"
        ),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
    )
    assert res.returncode == 1
    assert "raft.wal is corrupt" in res.stderr
    assert "CRC" in res.stderr


def test_torn_tail_is_cut_on_restart(tmp_path: Path) -> None:
    with running_etcd(tmp_path) as etcd:
        for i in range(5):
            etcd.ctl("put", f"/t/{i}", "v")
    wal = tmp_path / "member" / "raft.wal"
    with open(wal, "ab") as f:
        f.write(b"\x00\x00\x10\x00\x12\x34")  # half a frame: a crash mid-append
    with running_etcd(tmp_path) as etcd:
        assert len(etcd.ctl("get", "/t/", "--prefix", "--keys-only").stdout.split()) == 5


def test_data_dir_of_another_member_is_refused(tmp_path: Path) -> None:
    with running_etcd(tmp_path, "--name", "alpha"):
        pass
    res = subprocess.run(
        kubeproof_cmd(
            "etcd",
            "--name",
            "beta",
            "--data-dir",
            str(tmp_path),
            "--listen-client-urls",
            "http://127.0.0.1:0",
        ),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
    )
    assert res.returncode == 1
    assert "belongs to another member or cluster" in res.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--listen-client-urls", "https://127.0.0.1:2379"], "only http://"),
        (["--initial-cluster", "a=http://127.0.0.1:1,bogus"], "is not NAME=URL"),
        (["--name", "c", "--initial-cluster", "a=http://127.0.0.1:1"], "is not in it"),
        (["--cluster-size", "0"], "--cluster-size"),
        (["--cluster-size", "3", "--initial-cluster", "a=http://127.0.0.1:1"], "exclude"),
        (["--grpc-engine", "quic"], "--grpc-engine"),
    ],
)
def test_bad_flags_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    res = subprocess.run(
        kubeproof_cmd("etcd", "--data-dir", str(tmp_path), *args),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
    )
    assert res.returncode == 2
    assert message in res.stderr


# ------------------------------------------------------------- gRPC engines


def _server_settings(endpoint: str) -> dict[int, int]:
    """The SETTINGS a server sends first on a new HTTP/2 connection."""
    import socket

    host, port = endpoint.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=COMMAND_TIMEOUT) as sock:
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + SettingsFrame(0).serialize())
        data = b""
        while True:
            chunk = sock.recv(65536)
            assert chunk, "closed before SETTINGS"
            data += chunk
            if len(data) < 9:
                continue
            frame, length = Frame.parse_frame_header(memoryview(data[:9]))
            if len(data) >= 9 + length:
                break
    assert isinstance(frame, SettingsFrame)
    frame.parse_body(memoryview(data[9 : 9 + length]))
    return frame.settings


def test_grpc_engine_choices_are_the_engines() -> None:
    from kubeproof.cli.etcd import command
    from kubeproof.serve.etcd_grpc import ENGINES

    (option,) = [p for p in command.params if p.name == "grpc_engine"]
    assert isinstance(option.type, click.Choice)
    assert tuple(option.type.choices) == ENGINES
    assert option.default == ENGINES[0]


@pytest.mark.parametrize(
    ("flag", "env", "engine"),
    [
        (None, "grpcio", "grpcio"),  # the environment chooses when the flag is absent
        ("grpcio", None, "grpcio"),
        ("h2", "grpcio", "h2"),  # the flag wins
    ],
)
def test_grpc_engine_flag_and_environment(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    flag: str | None,
    env: str | None,
    engine: str,
) -> None:
    if env is None:
        monkeypatch.delenv("KUBEPROOF_ETCD_GRPC_ENGINE", raising=False)
    else:
        monkeypatch.setenv("KUBEPROOF_ETCD_GRPC_ENGINE", env)
    extra = ("--grpc-engine", flag) if flag else ()
    with running_etcd(tmp_path, *extra) as etcd:
        assert etcd.ctl("put", "/engine/k", engine).stdout.strip() == "OK"
        assert etcd.ctl("get", "/engine/k").stdout.split() == ["/engine/k", engine]
        # kubeproof's h2 engine announces 1 MiB frames; grpcio does not.
        max_frame = _server_settings(etcd.endpoints[0]).get(SettingsFrame.MAX_FRAME_SIZE)
        assert (max_frame == 1 << 20) == (engine == "h2")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_three_processes_over_tcp_survive_the_leader_stopping(tmp_path: Path) -> None:
    """``--initial-cluster``: one member per process, Raft over TCP; the
    leader's process stops and the other two go on (a new leader, the
    pending write resubmitted to it)."""
    from contextlib import ExitStack

    peers = {f"n{i}": f"http://127.0.0.1:{_free_port()}" for i in (1, 2, 3)}
    initial = ",".join(f"{n}={u}" for n, u in peers.items())
    with ExitStack() as stack:
        procs = {
            n: stack.enter_context(
                running_etcd(
                    tmp_path / n,
                    "--name",
                    n,
                    "--initial-cluster",
                    initial,
                    "--listen-peer-urls",
                    u,
                )
            )
            for n, u in peers.items()
        }
        endpoints = [p.endpoints[0] for p in procs.values()]
        first = procs["n1"]
        first.ctl("put", "/tcp/k", "1", endpoints=endpoints)
        assert procs["n3"].ctl("get", "/tcp/k").stdout.split() == ["/tcp/k", "1"]
        status = first.ctl("endpoint", "status", endpoints=endpoints).stdout.splitlines()
        (leader_line,) = [line for line in status if ", true, false," in line]
        leader_ep = leader_line.split(",")[0]
        (leader,) = [n for n, p in procs.items() if p.endpoints[0] == leader_ep]
        stopping = procs[leader].proc
        stopping.terminate()
        stopping.wait(timeout=COMMAND_TIMEOUT)
        rest = [p for n, p in procs.items() if n != leader]
        rest[0].ctl("put", "/tcp/k", "2")
        assert rest[1].ctl("get", "/tcp/k").stdout.split() == ["/tcp/k", "2"]
        members = rest[0].ctl("member", "list").stdout
        assert sorted(line.split(", ")[2] for line in members.strip().splitlines()) == [
            "n1",
            "n2",
            "n3",
        ]
