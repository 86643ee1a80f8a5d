"""Assembling a running API server: store, WAL, core, TLS, HTTP, background tasks.

Theory of operation
-------------------
`start(options)` builds, in order:

1. the store: with a data directory, `open_durable_store` replays
   ``DATA_DIR/wal/store.wal`` into a fresh `DurableStore` (a corrupt log
   stops the start with `WALCorruptError`); without one, an in-memory
   `MVCCStore`;
2. the PKI in ``DATA_DIR/pki`` (CA, server and admin certificates) and
   ``DATA_DIR/admin.kubeconfig`` for a ``system:masters`` client-cert user;
3. the core `ApiServer` over the store, with the wall clock and uuid4 as
   its time and uid sources, and the `Authenticator` from the token and
   basic-auth files;
4. (the core itself creates the bootstrap objects that are missing: the
   system namespaces, kube's default RBAC policy, the kubernetes service);
5. the aiohttp server on ``bind_address:secure_port`` (port 0 picks a free
   one), TLS 1.2+ with optional client certificates verified against the
   generated CA plus ``--client-ca-file``;
6. background tasks: lease expiry (once a second) and any ``extensions``
   (the hook where the scheduler and controllers join ``kubeproof up``:
   each is an async callable given the `RunningServer`, run until stop).

`RunningServer.stop()` undoes it: stops accepting, ends watches, cancels
the tasks, waits for the last fsync and closes the WAL.
`ServerThread` runs all of it on a private event loop in a thread, for
tests and benchmarks that drive it from synchronous code.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import logging
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web
from attrs import evolve, frozen

from kubeproof.api import AlwaysAllow, ApiRequest, ApiServer, Authenticator, UserInfo
from kubeproof.mvcc import MVCCStore

from .certs import ADMIN_USER, Pki, ensure_pki, write_kubeconfig
from .commit import GroupCommit
from .durable import open_durable_store
from .http import KubeHTTP
from .wal import WriteAheadLog

__all__ = [
    "AUTHORIZATION_MODES",
    "Extension",
    "RunningServer",
    "ServeOptions",
    "ServerThread",
    "start",
]

log = logging.getLogger("kubeproof.serve")

AUTHORIZATION_MODES = ("RBAC", "AlwaysAllow")


@frozen
class ServeOptions:
    """kube-apiserver's flags, where kubeproof shares them, plus ``data_dir``.

    ``data_dir`` None keeps everything in memory (no TLS files can be
    written, so ``tls`` must then be False).  ``secure_port`` 0 picks a
    free port.  ``fixed_user`` (no authentication at all: every request is
    that user) exists for benchmarks only."""

    bind_address: str = "127.0.0.1"
    secure_port: int = 6443
    data_dir: Path | None = None
    token_auth_file: Path | None = None
    basic_auth_file: Path | None = None
    client_ca_file: Path | None = None
    authorization_mode: str = "RBAC"
    anonymous_auth: bool = True
    tls: bool = True
    fixed_user: UserInfo | None = None
    watch_poll_interval: float = 1.0


Extension = Callable[["RunningServer"], Coroutine[Any, Any, None]]


class RunningServer:
    """A started server: its address, files, store, core and HTTP handler."""

    def __init__(
        self,
        *,
        options: ServeOptions,
        url: str,
        port: int,
        store: MVCCStore,
        api: Any,
        http: KubeHTTP,
        runner: web.ServerRunner,
        wal: WriteAheadLog | None,
        commit: GroupCommit | None,
        pki: Pki | None,
        kubeconfig: Path | None,
    ) -> None:
        self.options = options
        self.url = url
        self.port = port
        self.store = store
        self.api = api
        self.http = http
        self.runner = runner
        self.wal = wal
        self.commit = commit
        self.pki = pki
        self.kubeconfig = kubeconfig
        self.tasks: list[asyncio.Task[None]] = []
        self.stopped = asyncio.Event()

    def notify_changed(self) -> None:
        """Extensions that write through `api` call this so watches wake."""
        self.http.signal.notify()

    async def stop(self) -> None:
        if self.stopped.is_set():
            return
        self.stopped.set()
        self.http.ready = False
        self.http.close_watches()
        self.http.signal.notify()
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.runner.cleanup()
        close = getattr(self.api, "close", None)
        if close is not None:
            close()  # the core's own store watchers (its RBAC cache)
        if self.commit is not None:
            await self.commit.close()
        if self.wal is not None:
            self.wal.close()


def _read_text(path: Path | None, flag: str) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text()
    except OSError as e:
        raise ValueError(f"{flag}: cannot read {path}: {e.strerror}") from None


def _ssl_context(pki: Pki, client_ca: Path | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(pki.server_cert, pki.server_key)
    # Client certificates are optional (tokens work too) but verified when sent.
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.load_verify_locations(cafile=str(pki.ca_cert))
    if client_ca is not None:
        try:
            ctx.load_verify_locations(cafile=str(client_ca))
        except (OSError, ssl.SSLError) as e:
            raise ValueError(f"--client-ca-file: cannot load {client_ca}: {e}") from None
    # aiohttp speaks HTTP/1.1 only; say so, or Go clients would try h2.
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def rfc3339_now() -> str:
    """The wall clock as Kubernetes writes timestamps (whole seconds, UTC)."""
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_api(store: MVCCStore, options: ServeOptions) -> ApiServer:
    """The core over ``store``, with real time and uids (allowed here only).
    The core creates the bootstrap objects (system namespaces, default RBAC
    policy, the ``kubernetes`` service) that are missing."""
    return ApiServer(
        store,
        now=rfc3339_now,
        uid_source=lambda: str(uuid.uuid4()),
        authorizer=AlwaysAllow() if options.authorization_mode == "AlwaysAllow" else None,
        anonymous=options.anonymous_auth,
    )


async def _expire_leases(server: RunningServer) -> None:
    while True:
        await asyncio.sleep(1.0)
        now = time.time()
        if server.store.expired_leases(now):
            server.store.expire(now)
            server.notify_changed()


async def start(options: ServeOptions, extensions: Sequence[Extension] = ()) -> RunningServer:
    """Starts a server (see the module docstring); raises ValueError on bad options."""
    if options.authorization_mode not in AUTHORIZATION_MODES:
        raise ValueError(
            f"--authorization-mode: {options.authorization_mode!r} is not supported"
            f" (choose one of {', '.join(AUTHORIZATION_MODES)})"
        )
    if options.tls and options.data_dir is None:
        raise ValueError("TLS needs a data directory for its certificates")
    token_csv = _read_text(options.token_auth_file, "--token-auth-file")
    basic_csv = _read_text(options.basic_auth_file, "--basic-auth-file")
    if options.client_ca_file is not None and not options.client_ca_file.is_file():
        raise ValueError(f"--client-ca-file: {options.client_ca_file} is not a file")

    wal: WriteAheadLog | None = None
    store: MVCCStore
    if options.data_dir is not None:
        options.data_dir.mkdir(parents=True, exist_ok=True)
        (options.data_dir / "wal").mkdir(exist_ok=True)
        store, wal = open_durable_store(options.data_dir / "wal" / "store.wal")
    else:
        store = MVCCStore()
    try:
        running = await _assemble(options, store, wal, token_csv, basic_csv)
    except BaseException:
        if wal is not None:
            wal.close()  # a failed start leaves no open log behind
        raise
    loop = asyncio.get_running_loop()
    running.tasks.append(loop.create_task(_expire_leases(running)))
    for ext in extensions:
        running.tasks.append(loop.create_task(ext(running)))
    return running


async def _assemble(
    options: ServeOptions,
    store: MVCCStore,
    wal: WriteAheadLog | None,
    token_csv: str | None,
    basic_csv: str | None,
) -> RunningServer:
    commit = GroupCommit(wal) if wal is not None else None

    authenticator: Any | None = None
    if options.fixed_user is None:
        authenticator = Authenticator(token_file_csv_text=token_csv, basic_file_csv_text=basic_csv)
    api: Any = make_api(store, options)
    if options.fixed_user is not None:
        api = _FixedUser(api, options.fixed_user)
    if commit is not None:
        await commit.barrier()

    pki: Pki | None = None
    ssl_ctx: ssl.SSLContext | None = None
    if options.tls:
        assert options.data_dir is not None
        pki = ensure_pki(options.data_dir / "pki", options.bind_address)
        ssl_ctx = _ssl_context(pki, options.client_ca_file)

    http = KubeHTTP(
        api,
        authenticator=authenticator,
        revision=lambda: store.revision,
        commit=commit,
        watch_poll_interval=options.watch_poll_interval,
    )
    server = web.Server(http.handle, access_log=None)
    runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    sock = _bind(options.bind_address, options.secure_port)
    site = web.SockSite(runner, sock, ssl_context=ssl_ctx)
    await site.start()
    port = sock.getsockname()[1]
    host = options.bind_address
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    shown = f"[{host}]" if ":" in host else host
    url = f"{'https' if options.tls else 'http'}://{shown}:{port}"
    http.server_address = f"{shown}:{port}"

    kubeconfig: Path | None = None
    if pki is not None and options.data_dir is not None:
        kubeconfig = options.data_dir / "admin.kubeconfig"
        write_kubeconfig(
            kubeconfig,
            url,
            pki.ca_cert,
            user=ADMIN_USER,
            client_cert=pki.admin_cert,
            client_key=pki.admin_key,
        )
    return RunningServer(
        options=options,
        url=url,
        port=port,
        store=store,
        api=api,
        http=http,
        runner=runner,
        wal=wal,
        commit=commit,
        pki=pki,
        kubeconfig=kubeconfig,
    )


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise ValueError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    sock.listen(1024)
    sock.setblocking(False)
    return sock


class _FixedUser:
    """Wraps the core so that every request is made as one user (benchmarks)."""

    def __init__(self, api: Any, user: UserInfo) -> None:
        self._api = api
        self._user = user

    def handle(self, req: ApiRequest) -> Any:
        return self._api.handle(evolve(req, user=self._user))

    def authorize_request(self, req: ApiRequest) -> Any:
        return self._api.authorize_request(evolve(req, user=self._user))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._api, name)


class ServerThread:
    """A server on its own event loop in a daemon thread.

    ``with ServerThread(options) as srv: ...`` starts it (``srv.url``,
    ``srv.kubeconfig``) and stops it on exit.  `call` runs a function on the
    server's loop thread, where the core may be touched safely."""

    def __init__(self, options: ServeOptions, extensions: Sequence[Extension] = ()) -> None:
        self.options = options
        self.extensions = tuple(extensions)
        self.loop = asyncio.new_event_loop()
        self.server: RunningServer | None = None
        self._thread = threading.Thread(target=self._run, name="kubeproof-serve", daemon=True)
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._main())
        finally:
            self.loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        try:
            self.server = await start(self.options, self.extensions)
        except BaseException as e:
            self._error = e
            self._started.set()
            return
        self._started.set()
        await self._stop.wait()
        await self.server.stop()

    def start(self) -> ServerThread:
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._stop is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)

    def call(self, fn: Callable[[], Any]) -> Any:
        """Runs ``fn()`` on the server's loop and returns its result."""

        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=30)

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    @property
    def kubeconfig(self) -> Path:
        assert self.server is not None and self.server.kubeconfig is not None
        return self.server.kubeconfig

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
