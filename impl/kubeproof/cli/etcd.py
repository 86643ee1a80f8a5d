"""`kubeproof etcd`: etcd's v3 gRPC API served by kubeproof's replicated store.

Flag names are etcd's where they mean the same thing.  Three ways to run:

    kubeproof etcd                                   one member on :2379
    kubeproof etcd --cluster-size 3                  three members in this process,
                                                     clients on :2379, :2380+... (see below)
    kubeproof etcd --name n1 --initial-cluster n1=http://127.0.0.1:2380,n2=...,n3=...
        --listen-peer-urls http://127.0.0.1:2380     one member of a multi-process cluster

With ``--cluster-size N`` the members are named ``<name>-1`` ... ``<name>-N``,
live in ``<data-dir>/<member name>``, talk through an in-process network,
and member i serves clients on the port of the first ``--listen-client-urls``
URL plus i-1 (port 0: each picks a free port).  One line per member is
printed once it serves (``member NAME id=HEX serving clients on URL``), then
``ready``.

``--grpc-engine`` chooses who speaks gRPC (`kubeproof.serve.etcd_grpc.ENGINES`):
``h2``, kubeproof's own HTTP/2 connection on python-hyper's hyperframe and
hpack (the default), or ``grpcio``, grpcio's asyncio server.  Without the
flag, the environment variable ``KUBEPROOF_ETCD_GRPC_ENGINE`` chooses.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import click

if TYPE_CHECKING:
    from kubeproof.serve.etcd_member import ClusterSpec


def _urls(value: str, flag: str) -> list[str]:
    from kubeproof.serve.etcd_grpc import parse_listen_url

    urls = [u.strip() for u in value.split(",") if u.strip()]
    if not urls:
        raise click.BadParameter("needs at least one URL", param_hint=flag)
    for u in urls:
        try:
            parse_listen_url(u)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint=flag) from None
    return urls


def _with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    return urlunsplit((parts.scheme, f"{host}:{port}", "", "", ""))


def parse_initial_cluster(value: str) -> list[tuple[str, str]]:
    """``n1=http://h:p,n2=...`` -> [(name, peer URL)]; etcd's --initial-cluster."""
    from kubeproof.serve.etcd_grpc import parse_listen_url

    out: list[tuple[str, str]] = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, url = item.partition("=")
        if not sep or not name or not url:
            raise click.BadParameter(f"{item!r} is not NAME=URL", param_hint="--initial-cluster")
        try:
            parse_listen_url(url)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--initial-cluster") from None
        out.append((name, url))
    if not out:
        raise click.BadParameter("names no member", param_hint="--initial-cluster")
    return out


@click.command("etcd")
@click.option("--name", default="default", show_default=True, help="Human-readable member name.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the Raft log and snapshots live (default: ./NAME.etcd).",
)
@click.option(
    "--listen-client-urls",
    default="http://127.0.0.1:2379",
    show_default=True,
    help="Comma-separated http:// URLs to serve gRPC clients on (port 0: a free port).",
)
@click.option(
    "--advertise-client-urls",
    default=None,
    help="Client URLs announced in MemberList (default: the listen URLs).",
)
@click.option(
    "--listen-peer-urls",
    default="http://127.0.0.1:2380",
    show_default=True,
    help="URL to take Raft traffic from the other members on (with --initial-cluster).",
)
@click.option(
    "--initial-cluster",
    default=None,
    help="Every member as NAME=PEER_URL,... (default: this member alone).",
)
@click.option(
    "--initial-cluster-token",
    default="etcd-cluster",
    show_default=True,
    help="Distinguishes clusters: it goes into the member and cluster ids.",
)
@click.option(
    "--cluster-size",
    type=click.IntRange(1, 9),
    default=None,
    help="Run N members in this process, on loopback (an in-process network).",
)
@click.option(
    "--heartbeat-interval",
    type=click.IntRange(10, 10_000),
    default=100,
    show_default=True,
    help="Milliseconds per Raft tick (heartbeat).",
)
@click.option(
    "--election-timeout",
    type=click.IntRange(50, 60_000),
    default=1000,
    show_default=True,
    help="Milliseconds before a follower without a leader campaigns.",
)
@click.option(
    "--snapshot-count",
    type=click.IntRange(0, None),
    default=10_000,
    show_default=True,
    help="Applied entries between two snapshots (0: never).",
)
@click.option(
    "--grpc-engine",
    # kubeproof.serve.etcd_grpc.ENGINES (not imported here: it would load grpcio
    # for every kubeproof command); a test checks they agree.
    type=click.Choice(["h2", "grpcio"]),
    default="h2",
    show_default=True,
    envvar="KUBEPROOF_ETCD_GRPC_ENGINE",
    show_envvar=True,
    help="Who serves gRPC: kubeproof's own HTTP/2 (h2) or grpcio's asyncio server (grpcio).",
)
def command(
    name: str,
    data_dir: Path | None,
    listen_client_urls: str,
    advertise_client_urls: str | None,
    listen_peer_urls: str,
    initial_cluster: str | None,
    initial_cluster_token: str,
    cluster_size: int | None,
    heartbeat_interval: int,
    election_timeout: int,
    snapshot_count: int,
    grpc_engine: str,
) -> None:
    """Serve etcd's v3 gRPC API (KV, Watch, Lease, Cluster, Maintenance) from kubeproof's
    Raft-replicated MVCC store; etcdctl 3.4 and the etcd3 Python client work against it."""
    from kubeproof.serve.etcd_member import ClusterSpec, MemberSpec

    if election_timeout < 5 * heartbeat_interval:
        raise click.BadParameter(
            f"{election_timeout} ms must be at least 5 heartbeats ({5 * heartbeat_interval} ms)",
            param_hint="--election-timeout",
        )
    client_urls = _urls(listen_client_urls, "--listen-client-urls")
    if data_dir is None:
        data_dir = Path(f"{name}.etcd")
    if cluster_size is not None and initial_cluster is not None:
        raise click.UsageError("--cluster-size and --initial-cluster exclude each other")
    token = initial_cluster_token
    if cluster_size is not None:
        base = urlsplit(client_urls[0]).port or 0
        specs = []
        for i in range(cluster_size):
            port = 0 if base == 0 else base + i
            url = _with_port(client_urls[0], port)
            specs.append(MemberSpec(f"{name}-{i + 1}", f"local://{name}-{i + 1}", (url,)))
        spec = ClusterSpec(tuple(specs), token)
        plan: list[tuple[str, Path, list[str], str | None]] = [
            (m.name, data_dir / m.name, list(m.client_urls), None) for m in spec.members
        ]
    else:
        peer_urls = _urls(listen_peer_urls, "--listen-peer-urls")
        advertised = (
            _urls(advertise_client_urls, "--advertise-client-urls")
            if advertise_client_urls
            else client_urls
        )
        members = (
            parse_initial_cluster(initial_cluster) if initial_cluster else [(name, peer_urls[0])]
        )
        if name not in [n for n, _ in members]:
            raise click.BadParameter(
                f"this member ({name!r}) is not in it", param_hint="--initial-cluster"
            )
        try:
            spec = ClusterSpec(
                tuple(MemberSpec(n, u, tuple(advertised) if n == name else ()) for n, u in members),
                token,
            )
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--initial-cluster") from None
        listen_peer = peer_urls[0] if len(members) > 1 else None
        plan = [(name, data_dir, client_urls, listen_peer)]
    try:
        asyncio.run(
            _serve(
                spec,
                plan,
                heartbeat_interval / 1000,
                election_timeout // heartbeat_interval,
                snapshot_count,
                grpc_engine,
            )
        )
    except _StartError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)


class _StartError(Exception):
    pass


async def _serve(
    spec: ClusterSpec,
    plan: list[tuple[str, Path, list[str], str | None]],
    heartbeat: float,
    election_ticks: int,
    snapshot_count: int,
    grpc_engine: str,
) -> None:
    from kubeproof.serve.etcd_disk import DiskCorruptError
    from kubeproof.serve.etcd_grpc import EtcdGrpcServer
    from kubeproof.serve.etcd_member import MemberServer
    from kubeproof.serve.etcd_transport import LocalNetwork, TcpTransport, Transport
    from kubeproof.serve.wal import WALCorruptError

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    members: list[MemberServer] = []
    servers: list[EtcdGrpcServer] = []
    network = LocalNetwork()
    try:
        for member_name, directory, _, _ in plan:
            try:
                members.append(
                    MemberServer(
                        spec,
                        member_name,
                        directory,
                        heartbeat_interval=heartbeat,
                        election_ticks=election_ticks,
                        snapshot_count=snapshot_count,
                    )
                )
            except (WALCorruptError, DiskCorruptError) as e:
                raise _StartError(
                    f"{e}\nThe damage is not a torn last write, which a crash can cause and"
                    " kubeproof repairs; it will not guess. Restore the data dir from a backup"
                    " or move it away to start the member empty."
                ) from None
            except ValueError as e:
                raise _StartError(str(e)) from None
        for ms, (_n, _d, urls, listen_peer) in zip(members, plan, strict=True):
            transport: Transport
            if listen_peer is None:
                transport = network.attach(ms.id, ms.deliver, ms.unreachable)
            else:
                all_peers = {spec.id_of(m.name): m.peer_url for m in spec.members}
                transport = TcpTransport(ms.id, listen_peer, all_peers, ms.deliver, ms.unreachable)
            server = EtcdGrpcServer(ms, engine=grpc_engine)
            try:
                ports = await server.start(urls)
                await ms.start(transport)
            except OSError as e:
                raise _StartError(f"member {ms.name}: {e}") from None
            servers.append(server)
            shown = ", ".join(_with_port(u, p) for u, p in zip(urls, ports, strict=True))
            click.echo(f"member {ms.name} id={ms.id:x} serving clients on {shown}")
        click.echo("ready")
        sys.stdout.flush()
        await stop.wait()
        click.echo("shutting down")
    finally:
        for server in servers:
            await server.stop(0.2)
        for ms in members:
            await ms.stop()
