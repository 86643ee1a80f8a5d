"""`kubeproof up`: a real API server on this machine that kubectl can use.

Flag names follow kube-apiserver where they mean the same thing
(``--secure-port``, ``--bind-address``, ``--token-auth-file``,
``--basic-auth-file``, ``--client-ca-file``, ``--authorization-mode``,
``--anonymous-auth``); ``--data-dir`` holds the certificates, the
write-ahead log and ``admin.kubeconfig``.

The scheduler runs in the same process unless ``--no-scheduler``
(`kubeproof.serve.scheduler`: kube-scheduler's loop over the pure
`kubeproof.sched`, binding pods through the API core as
``system:kube-scheduler``), with kube-scheduler's default profile or the
profiles of ``--scheduler-config`` (a KubeSchedulerConfiguration file, read
before the server starts: a bad one is a usage error naming the file).
So does the hollow kubelet unless ``--no-kubelet``
(`kubeproof.serve.kubelet`: kubemark's node agent that runs no containers,
standing in for the kubelet of every Node: it starts the pods bound to a
Node, marks Nodes without a Ready condition ready, and finishes graceful
deletions, writing as ``system:node:NODE``).  So does the ReplicaSet
controller unless ``--no-controllers`` (`kubeproof.serve.replicaset`:
kube-controller-manager's ReplicaSet controller, adopting, creating and
deleting pods and writing ReplicaSet status as
``system:serviceaccount:kube-system:replicaset-controller``).  They join
through `kubeproof.serve.app.start`'s ``extensions``, after the entries of
`EXTENSIONS` below.

What runs is printed between the address and the kubeconfig line: the
kubeconfig line comes last because it is the one that says the server is
ready (scripts and tests read up to it).
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from kubeproof.serve.app import Extension, ServeOptions

# Kept here (not imported) so that `kubeproof --help` does not load the server.
AUTHORIZATION_MODES = ("RBAC", "AlwaysAllow")

# The hook for the rest of the control plane: each entry is an async
# callable taking the RunningServer (its `api`, `store` and
# `notify_changed()`), started once the server is ready and cancelled at
# shutdown.  The scheduler, the hollow kubelet and the ReplicaSet
# controller are added by `command` (``--scheduler``, ``--kubelet``,
# ``--controllers``, the defaults).
EXTENSIONS: list[Extension] = []


def _existing_file() -> click.Path:
    return click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command("up")
@click.option(
    "--secure-port",
    type=click.IntRange(0, 65535),
    default=6443,
    show_default=True,
    help="The port to serve HTTPS on (0 picks a free one).",
)
@click.option(
    "--bind-address", default="127.0.0.1", show_default=True, help="The IP address to listen on."
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("kubeproof-data"),
    show_default=True,
    help="Where the certificates, the write-ahead log and admin.kubeconfig live.",
)
@click.option(
    "--token-auth-file",
    type=_existing_file(),
    default=None,
    help='Static bearer tokens, kube-apiserver\'s CSV: token,user,uid,"group1,group2".',
)
@click.option(
    "--basic-auth-file",
    type=_existing_file(),
    default=None,
    help='HTTP basic users, CSV: password,user,uid,"group1,group2".',
)
@click.option(
    "--client-ca-file",
    type=_existing_file(),
    default=None,
    help="Also accept client certificates signed by this CA (CN = user, O = groups).",
)
@click.option(
    "--authorization-mode",
    type=click.Choice(AUTHORIZATION_MODES),
    default="RBAC",
    show_default=True,
    help="RBAC, or AlwaysAllow (every authenticated request).",
)
@click.option(
    "--anonymous-auth",
    type=click.BOOL,
    default=True,
    show_default=True,
    help="Treat requests without credentials as system:anonymous (else 401).",
)
@click.option(
    "--scheduler/--no-scheduler",
    default=True,
    show_default=True,
    help="Run the scheduler, which binds pending pods to nodes (kube-scheduler v1.32).",
)
@click.option(
    "--scheduler-config",
    type=_existing_file(),
    default=None,
    help="The scheduler's KubeSchedulerConfiguration (kubescheduler.config.k8s.io/v1) file.",
)
@click.option(
    "--kubelet/--no-kubelet",
    default=True,
    show_default=True,
    help="Run a hollow kubelet for every Node: bound pods start (no containers run),"
    " deleted pods go at once.",
)
@click.option(
    "--controllers/--no-controllers",
    default=True,
    show_default=True,
    help="Run the ReplicaSet controller, which creates and deletes pods to match"
    " each ReplicaSet's replicas (kube-controller-manager v1.32).",
)
def command(
    secure_port: int,
    bind_address: str,
    data_dir: Path,
    token_auth_file: Path | None,
    basic_auth_file: Path | None,
    client_ca_file: Path | None,
    authorization_mode: str,
    anonymous_auth: bool,
    scheduler: bool,
    scheduler_config: Path | None,
    kubelet: bool,
    controllers: bool,
) -> None:
    """Run a Kubernetes API server (kubectl works), the scheduler, a hollow kubelet
    and the ReplicaSet controller.

    The data is kept in --data-dir.  Prints the server address, whether the
    scheduler, the kubelet and the controllers run and the path of an admin
    kubeconfig once ready; stops cleanly on Ctrl-C or SIGTERM."""
    from kubeproof.serve.app import ServeOptions
    from kubeproof.serve.kubelet import kubelet_extension
    from kubeproof.serve.replicaset import replicaset_extension
    from kubeproof.serve.scheduler import load_scheduler_config, scheduler_extension
    from kubeproof.serve.wal import WALCorruptError

    extensions = list(EXTENSIONS)
    if scheduler_config is not None and not scheduler:
        raise click.UsageError("--scheduler-config needs the scheduler (drop --no-scheduler)")
    if scheduler:
        config = None
        if scheduler_config is not None:
            try:
                config = load_scheduler_config(scheduler_config)
            except ValueError as e:
                raise click.BadParameter(str(e), param_hint="--scheduler-config") from None
        extensions.append(scheduler_extension(config))
        names = "default-scheduler"
        if config is not None:
            names = ", ".join(profile.scheduler_name for profile in config.profiles)
        notes = [f"scheduler: running (profiles: {names})"]
    else:
        notes = ["scheduler: off (--no-scheduler): pods stay Pending"]
    if kubelet:
        extensions.append(kubelet_extension())
        notes.append("kubelet: running (hollow: stands in for every Node, runs no containers)")
    else:
        notes.append(
            "kubelet: off (--no-kubelet): bound pods stay Pending and never finish deleting"
        )
    if controllers:
        extensions.append(replicaset_extension())
        notes.append("controllers: running (replicaset)")
    else:
        notes.append("controllers: off (--no-controllers): ReplicaSets create no pods")

    options = ServeOptions(
        bind_address=bind_address,
        secure_port=secure_port,
        data_dir=data_dir.absolute(),
        token_auth_file=token_auth_file,
        basic_auth_file=basic_auth_file,
        client_ca_file=client_ca_file,
        authorization_mode=authorization_mode,
        anonymous_auth=anonymous_auth,
    )
    try:
        asyncio.run(_serve(options, extensions, notes))
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    except WALCorruptError as e:
        click.echo(f"error: {e}", err=True)
        click.echo(
            "The log is damaged before its last record, which a crash cannot cause;"
            " kubeproof will not guess. Restore it from a backup or move it away to start empty.",
            err=True,
        )
        sys.exit(1)


async def _serve(
    options: ServeOptions, extensions: Sequence[Extension], notes: Sequence[str]
) -> None:
    from kubeproof.serve.app import start

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server = await start(options, extensions)
    click.echo(f"kubeproof API server ready at {server.url}")
    for note in notes:
        click.echo(note)
    click.echo(f"admin kubeconfig: {server.kubeconfig}")
    click.echo(f"  export KUBECONFIG={server.kubeconfig}; kubectl get namespaces")
    sys.stdout.flush()
    await stop.wait()
    click.echo("shutting down")
    await server.stop()
