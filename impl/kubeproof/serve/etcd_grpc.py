"""etcd's v3 gRPC API (KV, Watch, Lease, Cluster, Maintenance) over an `EtcdBackend`.

Theory of operation
-------------------
A gRPC server on the asyncio loop that also runs the backend, so no
request ever races another: each handler converts the protobuf request
(`etcd_convert`), awaits the backend, converts the answer back.  Method
paths are etcd's (``/etcdserverpb.KV/Range`` ...), registered by hand from
the table `_unary` below with the message classes generated from our own
``etcd_pb/rpc.proto``, so no gRPC service stubs are generated at all.

Two engines carry the calls (`ENGINES`): ``h2``, kubeproof's own HTTP/2
server (`etcd_h2`, on python-hyper's hyperframe and hpack; the default: a
call costs it a small fraction of what it costs grpcio), and ``grpcio``,
grpcio's asyncio server.  The handlers see
the same `Context` (``abort``, ``write``) from both.

Errors are etcd's: an `MVCCError` or `EtcdServerError` becomes a gRPC status
with its code and etcd's exact message ("etcdserver: mvcc: required revision
has been compacted", OUT_OF_RANGE), which is what etcdctl and clientv3 match
on.  Lease calls keep etcd's quirks: KeepAlive on an unknown lease answers
TTL 0 (not an error), TimeToLive answers TTL -1.

Watch streams follow etcd 3.4's ``serverWatchStream``:

    create    watch ids are per stream, counting from 0 (a client may
              choose one); the answer is ``created`` with the current
              revision in its header, or ``created`` + ``canceled`` with
              the reason (bad range, duplicate id) and watch id -1
    cancel    ``canceled`` with the current revision; unknown ids: nothing
    progress  every watcher is drained first, then one response with no
              events, the current revision and watch id -1; so a client
              that sees it has seen every event up to that revision
    events    after each applied batch the backend wakes the stream, which
              polls its watchers and sends their responses in order (a
              compacted start answers ``canceled`` + ``compact_revision``)

``progress_notify`` watchers also get an empty response every
``progress_interval`` seconds when nothing else was sent to them (etcd: 10
minutes).  All responses of a stream go through one ordered outbox, so a
``created`` always precedes the watcher's first events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NoReturn, Protocol
from urllib.parse import urlsplit

import grpc
from google.protobuf.message import Message as PbMessage

from kubeproof.mvcc import DeleteRangeResponse as MvccDeleteRangeResponse
from kubeproof.mvcc import (
    ErrLeaseNotFound,
    LeaseGrantRequest,
    LeaseGrantResponse,
    LeaseLeasesRequest,
    LeaseLeasesResponse,
    LeaseRevokeRequest,
    LeaseRevokeResponse,
    LeaseTimeToLiveRequest,
    LeaseTimeToLiveResponse,
    MVCCError,
    RangeResponse,
    ResponseHeader,
    TxnResponse,
    WatchResponse,
)
from kubeproof.mvcc import PutResponse as MvccPutResponse

from . import etcd_convert as cv
from .etcd_backend import CODE_UNIMPLEMENTED, EtcdBackend, EtcdServerError, WatchHandle
from .etcd_h2 import GrpcH2Server, Method
from .etcd_pb import rpc_pb2 as pb

__all__ = [
    "ENGINES",
    "SERVER_VERSION",
    "Context",
    "EtcdGrpcServer",
    "parse_listen_url",
]

log = logging.getLogger("kubeproof.etcd")

SERVER_VERSION = "3.4.0"
"""The etcd API level reported by Status: the 3.4 wire protocol kubeproof speaks."""

_STATUS_CODES = {code.value[0]: code for code in grpc.StatusCode}

ENGINES = ("h2", "grpcio")
"""Who speaks HTTP/2: ``h2`` is kubeproof's own (`etcd_h2`), ``grpcio`` is
grpcio's asyncio server.  The default is ``h2``, or the environment
variable ``KUBEPROOF_ETCD_GRPC_ENGINE``."""

MAX_RECEIVE_MESSAGE_LENGTH = 2 * 1024 * 1024 + 4096
"""The largest request message either engine accepts (RESOURCE_EXHAUSTED above it)."""


class Context(Protocol):
    """What a servicer uses of its call, as both engines provide it."""

    async def abort(self, code: grpc.StatusCode, details: str = "") -> NoReturn: ...

    async def write(self, message: Any) -> None: ...


def _status(code: int) -> grpc.StatusCode:
    return _STATUS_CODES.get(code, grpc.StatusCode.UNKNOWN)


def parse_listen_url(url: str) -> tuple[str, int]:
    """``http://HOST:PORT`` -> (host, port).  kubeproof serves plain h2c only."""
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise ValueError(f"listen URL {url!r}: only http:// is supported (no TLS)")
    if not parts.hostname or parts.port is None:
        raise ValueError(f"listen URL {url!r}: expected http://HOST:PORT")
    if parts.path not in ("", "/"):
        raise ValueError(f"listen URL {url!r}: a listen URL has no path")
    return parts.hostname, parts.port


async def _abort(context: Context, exc: Exception) -> None:
    """Answers ``exc`` as etcd would; anything unexpected is logged and re-raised
    (grpc then answers UNKNOWN)."""
    if isinstance(exc, MVCCError | EtcdServerError):
        await context.abort(_status(exc.grpc_code), exc.grpc_message)
    if isinstance(exc, cv.WireError):
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"etcdserver: {exc}")
    log.error("unexpected error serving a request", exc_info=exc)
    raise exc


class _WatchStream:
    """One Watch RPC: its watchers (by stream-local id) and its outbox."""

    def __init__(self, server: EtcdGrpcServer) -> None:
        self.server = server
        self.backend = server.backend
        self.watchers: dict[int, WatchHandle] = {}
        self.progress: set[int] = set()
        self.sent_since_tick: set[int] = set()
        self.next_id = 0
        self.outbox: list[pb.WatchResponse] = []
        self.wake = asyncio.Event()
        self.unlisten = self.backend.listen(self.wake.set)

    def header(self, revision: int) -> pb.ResponseHeader:
        return cv.header_pb(ResponseHeader(revision=revision), self.backend.identity())

    def create(self, m: pb.WatchCreateRequest) -> None:
        cur = self.backend.revision()
        wid = m.watch_id
        try:
            if wid == 0:
                while self.next_id in self.watchers:
                    self.next_id += 1
                wid = self.next_id
                self.next_id += 1
            elif wid in self.watchers:
                raise _Refused("mvcc: duplicate watch ID provided on the WatchStream")
            elif wid < 0:
                raise _Refused("mvcc: watch ID must not be negative")
            watcher = self.backend.watch(
                m.key, m.range_end, m.start_revision, m.prev_kv, cv.watch_filters(m)
            )
        except (_Refused, MVCCError, cv.WireError) as e:
            reason = e.grpc_message if isinstance(e, MVCCError) else str(e)
            self.outbox.append(
                pb.WatchResponse(
                    header=self.header(cur),
                    watch_id=-1,
                    created=True,
                    canceled=True,
                    cancel_reason=reason,
                )
            )
            return
        self.watchers[wid] = watcher
        if m.progress_notify:
            self.progress.add(wid)
        self.outbox.append(pb.WatchResponse(header=self.header(cur), watch_id=wid, created=True))
        self.drain_one(wid, watcher)

    def cancel(self, wid: int) -> None:
        watcher = self.watchers.pop(wid, None)
        if watcher is None:
            return
        watcher.cancel()
        self.progress.discard(wid)
        self.outbox.append(
            pb.WatchResponse(
                header=self.header(self.backend.revision()), watch_id=wid, canceled=True
            )
        )

    def progress_request(self) -> None:
        self.drain()
        self.outbox.append(
            pb.WatchResponse(header=self.header(self.backend.revision()), watch_id=-1)
        )

    def drain_one(self, wid: int, watcher: WatchHandle) -> None:
        for resp in watcher.poll():
            self.outbox.append(self.convert(wid, resp))
            self.sent_since_tick.add(wid)
            if resp.canceled:
                self.watchers.pop(wid, None)
                self.progress.discard(wid)

    def drain(self) -> None:
        for wid, watcher in list(self.watchers.items()):
            self.drain_one(wid, watcher)

    def convert(self, wid: int, r: WatchResponse) -> pb.WatchResponse:
        return pb.WatchResponse(
            header=self.header(r.header.revision),
            watch_id=wid,
            canceled=r.canceled,
            compact_revision=r.compact_revision,
            cancel_reason=r.cancel_reason,
            events=[cv.event_pb(ev) for ev in r.events],
        )

    def progress_tick(self) -> None:
        """etcd's periodic progress notification for progress_notify watchers
        that were sent nothing since the last tick."""
        rev = self.backend.revision()
        for wid in sorted(self.progress):
            if wid not in self.sent_since_tick and wid in self.watchers:
                self.outbox.append(pb.WatchResponse(header=self.header(rev), watch_id=wid))
        self.sent_since_tick.clear()
        self.wake.set()

    def close(self) -> None:
        self.unlisten()
        for watcher in self.watchers.values():
            watcher.cancel()
        self.watchers.clear()


class _Refused(Exception):
    pass


class EtcdGrpcServer:
    """The servicers of etcd's API over one backend, and the gRPC server."""

    def __init__(
        self,
        backend: EtcdBackend,
        *,
        progress_interval: float = 600.0,
        engine: str | None = None,
    ) -> None:
        self.backend = backend
        self.progress_interval = progress_interval
        self.engine = engine or os.environ.get("KUBEPROOF_ETCD_GRPC_ENGINE") or "h2"
        if self.engine not in ENGINES:
            raise ValueError(f"unknown gRPC engine {self.engine!r} (one of {', '.join(ENGINES)})")
        self.server: grpc.aio.Server | None = None
        self.h2: GrpcH2Server | None = None
        self.ports: list[int] = []
        self._streams: set[_WatchStream] = set()
        self._ticker: asyncio.Task[None] | None = None

    # ------------------------------------------------------------- lifecycle

    async def start(self, listen_urls: list[str]) -> list[int]:
        """Starts serving on every ``http://HOST:PORT`` (port 0: a free one);
        returns the ports bound, in order."""
        addresses = [parse_listen_url(url) for url in listen_urls]
        if self.engine == "h2":
            h2 = GrpcH2Server(self.methods(), max_receive_message_length=MAX_RECEIVE_MESSAGE_LENGTH)
            ports = await h2.start(addresses)
            self.h2 = h2
        else:
            ports = await self._start_grpcio(listen_urls, addresses)
        self.ports = ports
        self._ticker = asyncio.get_running_loop().create_task(self._progress_loop())
        return ports

    async def _start_grpcio(
        self, listen_urls: list[str], addresses: list[tuple[str, int]]
    ) -> list[int]:
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", MAX_RECEIVE_MESSAGE_LENGTH),
                ("grpc.max_send_message_length", 2**31 - 1),
                ("grpc.so_reuseport", 0),
            ]
        )
        server.add_generic_rpc_handlers(self.handlers())
        ports = []
        for url, (host, port) in zip(listen_urls, addresses, strict=True):
            bound = server.add_insecure_port(f"{host}:{port}")
            if bound == 0:
                raise OSError(f"cannot listen on {url}")
            ports.append(bound)
        await server.start()
        self.server = server
        return ports

    async def stop(self, grace: float | None = 0.5) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        if self.server is not None:
            await self.server.stop(grace)
        if self.h2 is not None:
            await self.h2.stop(grace)

    async def _progress_loop(self) -> None:
        while True:
            await asyncio.sleep(self.progress_interval)
            for stream in list(self._streams):
                stream.progress_tick()

    def methods(self) -> dict[str, Method]:
        """Every method by its path, for the ``h2`` engine."""
        out = {
            f"/{service}/{method}": Method(fn, req_cls.FromString, resp_cls.SerializeToString)
            for (service, method), (req_cls, resp_cls, fn) in self._unary().items()
        }
        out["/etcdserverpb.Watch/Watch"] = Method(
            self.watch,
            pb.WatchRequest.FromString,
            pb.WatchResponse.SerializeToString,
            client_streaming=True,
            server_streaming=True,
        )
        out["/etcdserverpb.Lease/LeaseKeepAlive"] = Method(
            self.lease_keep_alive,
            pb.LeaseKeepAliveRequest.FromString,
            pb.LeaseKeepAliveResponse.SerializeToString,
            client_streaming=True,
            server_streaming=True,
        )
        out["/etcdserverpb.Maintenance/Snapshot"] = Method(
            self.snapshot,
            pb.SnapshotRequest.FromString,
            pb.SnapshotResponse.SerializeToString,
            server_streaming=True,
        )
        return out

    def handlers(self) -> list[grpc.GenericRpcHandler[Any, Any]]:
        """Every method as grpcio's handlers, for the ``grpcio`` engine."""
        services: dict[str, dict[str, grpc.RpcMethodHandler[Any, Any]]] = {}
        for (service, method), (req_cls, resp_cls, fn) in self._unary().items():
            services.setdefault(service, {})[method] = grpc.unary_unary_rpc_method_handler(
                fn,
                request_deserializer=req_cls.FromString,
                response_serializer=resp_cls.SerializeToString,
            )
        services.setdefault("etcdserverpb.Watch", {})["Watch"] = (
            grpc.stream_stream_rpc_method_handler(
                self.watch,
                request_deserializer=pb.WatchRequest.FromString,
                response_serializer=pb.WatchResponse.SerializeToString,
            )
        )
        services.setdefault("etcdserverpb.Lease", {})["LeaseKeepAlive"] = (
            grpc.stream_stream_rpc_method_handler(
                self.lease_keep_alive,
                request_deserializer=pb.LeaseKeepAliveRequest.FromString,
                response_serializer=pb.LeaseKeepAliveResponse.SerializeToString,
            )
        )
        services.setdefault("etcdserverpb.Maintenance", {})["Snapshot"] = (
            grpc.unary_stream_rpc_method_handler(
                self.snapshot,
                request_deserializer=pb.SnapshotRequest.FromString,
                response_serializer=pb.SnapshotResponse.SerializeToString,
            )
        )
        return [
            grpc.method_handlers_generic_handler(name, methods)
            for name, methods in services.items()
        ]

    def _unary(
        self,
    ) -> dict[
        tuple[str, str], tuple[type[PbMessage], type[PbMessage], Callable[..., Awaitable[Any]]]
    ]:
        kv, lease, cluster, maint = (
            "etcdserverpb.KV",
            "etcdserverpb.Lease",
            "etcdserverpb.Cluster",
            "etcdserverpb.Maintenance",
        )
        unsupported = self._unsupported
        return {
            (kv, "Range"): (pb.RangeRequest, pb.RangeResponse, self.range),
            (kv, "Put"): (pb.PutRequest, pb.PutResponse, self.put),
            (kv, "DeleteRange"): (pb.DeleteRangeRequest, pb.DeleteRangeResponse, self.delete_range),
            (kv, "Txn"): (pb.TxnRequest, pb.TxnResponse, self.txn),
            (kv, "Compact"): (pb.CompactionRequest, pb.CompactionResponse, self.compact),
            (lease, "LeaseGrant"): (pb.LeaseGrantRequest, pb.LeaseGrantResponse, self.lease_grant),
            (lease, "LeaseRevoke"): (
                pb.LeaseRevokeRequest,
                pb.LeaseRevokeResponse,
                self.lease_revoke,
            ),
            (lease, "LeaseTimeToLive"): (
                pb.LeaseTimeToLiveRequest,
                pb.LeaseTimeToLiveResponse,
                self.lease_time_to_live,
            ),
            (lease, "LeaseLeases"): (
                pb.LeaseLeasesRequest,
                pb.LeaseLeasesResponse,
                self.lease_leases,
            ),
            (cluster, "MemberList"): (
                pb.MemberListRequest,
                pb.MemberListResponse,
                self.member_list,
            ),
            (cluster, "MemberAdd"): (pb.MemberAddRequest, pb.MemberAddResponse, unsupported),
            (cluster, "MemberRemove"): (
                pb.MemberRemoveRequest,
                pb.MemberRemoveResponse,
                unsupported,
            ),
            (cluster, "MemberUpdate"): (
                pb.MemberUpdateRequest,
                pb.MemberUpdateResponse,
                unsupported,
            ),
            (cluster, "MemberPromote"): (
                pb.MemberPromoteRequest,
                pb.MemberPromoteResponse,
                unsupported,
            ),
            (maint, "Status"): (pb.StatusRequest, pb.StatusResponse, self.status),
            (maint, "Alarm"): (pb.AlarmRequest, pb.AlarmResponse, self.alarm),
            (maint, "Defragment"): (pb.DefragmentRequest, pb.DefragmentResponse, self.defragment),
            (maint, "Hash"): (pb.HashRequest, pb.HashResponse, self.hash),
            (maint, "HashKV"): (pb.HashKVRequest, pb.HashKVResponse, self.hash_kv),
            (maint, "MoveLeader"): (pb.MoveLeaderRequest, pb.MoveLeaderResponse, unsupported),
        }

    def _header(self, revision: int | None = None) -> pb.ResponseHeader:
        rev = self.backend.revision() if revision is None else revision
        return cv.header_pb(ResponseHeader(revision=rev), self.backend.identity())

    # -------------------------------------------------------------------- KV

    async def range(self, m: pb.RangeRequest, context: Context) -> pb.RangeResponse:
        try:
            resp = await self.backend.request(cv.range_request(m))
        except Exception as e:
            await _abort(context, e)
            raise
        assert isinstance(resp, RangeResponse)
        return cv.range_response(resp, self.backend.identity())

    async def put(self, m: pb.PutRequest, context: Context) -> pb.PutResponse:
        try:
            resp = await self.backend.request(cv.put_request(m))
        except Exception as e:
            await _abort(context, e)
            raise
        assert isinstance(resp, MvccPutResponse)
        return cv.put_response(resp, self.backend.identity())

    async def delete_range(
        self, m: pb.DeleteRangeRequest, context: Context
    ) -> pb.DeleteRangeResponse:
        try:
            resp = await self.backend.request(cv.delete_range_request(m))
        except Exception as e:
            await _abort(context, e)
            raise
        assert isinstance(resp, MvccDeleteRangeResponse)
        return cv.delete_range_response(resp, self.backend.identity())

    async def txn(self, m: pb.TxnRequest, context: Context) -> pb.TxnResponse:
        try:
            resp = await self.backend.request(cv.txn_request(m))
        except Exception as e:
            await _abort(context, e)
            raise
        assert isinstance(resp, TxnResponse)
        return cv.txn_response(resp, self.backend.identity())

    async def compact(self, m: pb.CompactionRequest, context: Context) -> pb.CompactionResponse:
        try:
            resp = await self.backend.request(cv.compaction_request(m))
        except Exception as e:
            await _abort(context, e)
            raise
        header = getattr(resp, "header", None)
        assert isinstance(header, ResponseHeader)
        return pb.CompactionResponse(header=cv.header_pb(header, self.backend.identity()))

    # ----------------------------------------------------------------- Lease

    async def lease_grant(self, m: pb.LeaseGrantRequest, context: Context) -> pb.LeaseGrantResponse:
        try:
            resp = await self.backend.request(LeaseGrantRequest(ttl=m.TTL, id=m.ID))
        except Exception as e:
            await _abort(context, e)
            raise
        assert isinstance(resp, LeaseGrantResponse)
        return pb.LeaseGrantResponse(
            header=cv.header_pb(resp.header, self.backend.identity()), ID=resp.id, TTL=resp.ttl
        )

    async def lease_revoke(
        self, m: pb.LeaseRevokeRequest, context: Context
    ) -> pb.LeaseRevokeResponse:
        try:
            resp = await self.backend.request(LeaseRevokeRequest(id=m.ID))
        except Exception as e:
            await _abort(context, e)
            raise
        assert isinstance(resp, LeaseRevokeResponse)
        return pb.LeaseRevokeResponse(header=cv.header_pb(resp.header, self.backend.identity()))

    async def lease_time_to_live(
        self, m: pb.LeaseTimeToLiveRequest, context: Context
    ) -> pb.LeaseTimeToLiveResponse:
        try:
            resp = await self.backend.request(LeaseTimeToLiveRequest(id=m.ID, keys=m.keys))
        except ErrLeaseNotFound:
            # etcd answers an unknown lease with TTL -1, not an error.
            return pb.LeaseTimeToLiveResponse(header=self._header(), ID=m.ID, TTL=-1)
        except Exception as e:
            await _abort(context, e)
            raise
        assert isinstance(resp, LeaseTimeToLiveResponse)
        return pb.LeaseTimeToLiveResponse(
            header=cv.header_pb(resp.header, self.backend.identity()),
            ID=resp.id,
            TTL=resp.ttl,
            grantedTTL=resp.granted_ttl,
            keys=list(resp.keys),
        )

    async def lease_leases(
        self, m: pb.LeaseLeasesRequest, context: Context
    ) -> pb.LeaseLeasesResponse:
        try:
            resp = await self.backend.request(LeaseLeasesRequest())
        except Exception as e:
            await _abort(context, e)
            raise
        assert isinstance(resp, LeaseLeasesResponse)
        return pb.LeaseLeasesResponse(
            header=cv.header_pb(resp.header, self.backend.identity()),
            leases=[pb.LeaseStatus(ID=i) for i in resp.leases],
        )

    async def lease_keep_alive(
        self,
        requests: AsyncIterator[pb.LeaseKeepAliveRequest],
        context: Context,
    ) -> AsyncIterator[pb.LeaseKeepAliveResponse]:
        async for m in requests:
            try:
                ttl = await self.backend.keep_alive(m.ID)
            except ErrLeaseNotFound:
                ttl = 0  # etcd: an unknown or expired lease is answered with TTL 0
            except Exception as e:
                await _abort(context, e)
                raise
            yield pb.LeaseKeepAliveResponse(header=self._header(), ID=m.ID, TTL=ttl)

    # ----------------------------------------------------------------- Watch

    async def watch(
        self,
        requests: AsyncIterator[pb.WatchRequest],
        context: Context,
    ) -> None:
        stream = _WatchStream(self)
        self._streams.add(stream)

        async def read() -> None:
            try:
                async for m in requests:
                    which = m.WhichOneof("request_union")
                    if which == "create_request":
                        stream.create(m.create_request)
                    elif which == "cancel_request":
                        stream.cancel(m.cancel_request.watch_id)
                    elif which == "progress_request":
                        stream.progress_request()
                    stream.wake.set()
            finally:
                stream.wake.set()

        reader = asyncio.get_running_loop().create_task(read())
        try:
            while True:
                await stream.wake.wait()
                stream.wake.clear()
                stream.drain()
                out, stream.outbox = stream.outbox, []
                for resp in out:
                    await context.write(resp)
                if reader.done() and not stream.outbox:
                    break
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            stream.close()
            self._streams.discard(stream)

    # --------------------------------------------------- Cluster, Maintenance

    async def member_list(self, m: pb.MemberListRequest, context: Context) -> pb.MemberListResponse:
        return pb.MemberListResponse(
            header=self._header(),
            members=[
                pb.Member(
                    ID=mi.id,
                    name=mi.name,
                    peerURLs=list(mi.peer_urls),
                    clientURLs=list(mi.client_urls),
                    isLearner=mi.is_learner,
                )
                for mi in self.backend.members()
            ],
        )

    async def status(self, m: pb.StatusRequest, context: Context) -> pb.StatusResponse:
        st = self.backend.status()
        return pb.StatusResponse(
            header=self._header(),
            version=SERVER_VERSION,
            dbSize=st.db_size,
            dbSizeInUse=st.db_size,
            leader=st.leader,
            raftIndex=st.raft_index,
            raftTerm=st.raft_term,
            raftAppliedIndex=st.raft_applied_index,
            errors=list(st.errors),
            isLearner=st.is_learner,
        )

    async def alarm(self, m: pb.AlarmRequest, context: Context) -> pb.AlarmResponse:
        # kubeproof raises no alarms (no space quota, no corruption checker).
        return pb.AlarmResponse(header=self._header())

    async def defragment(self, m: pb.DefragmentRequest, context: Context) -> pb.DefragmentResponse:
        # Nothing to defragment: the store is in memory, the log is compacted
        # by snapshots.
        return pb.DefragmentResponse(header=self._header())

    async def hash(self, m: pb.HashRequest, context: Context) -> pb.HashResponse:
        h, rev, _ = self.backend.hash_kv(0)
        return pb.HashResponse(header=self._header(rev), hash=h)

    async def hash_kv(self, m: pb.HashKVRequest, context: Context) -> pb.HashKVResponse:
        try:
            h, rev, compact = self.backend.hash_kv(m.revision)
        except Exception as e:
            await _abort(context, e)
            raise
        return pb.HashKVResponse(header=self._header(rev), hash=h, compact_revision=compact)

    async def snapshot(
        self, m: pb.SnapshotRequest, context: Context
    ) -> AsyncIterator[pb.SnapshotResponse]:
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED,
            "etcdserver: kubeproof does not produce bolt database snapshots",
        )
        yield pb.SnapshotResponse()  # pragma: no cover - abort raises

    async def _unsupported(self, m: PbMessage, context: Context) -> PbMessage:
        name = type(m).__name__.removesuffix("Request")
        await context.abort(
            _status(CODE_UNIMPLEMENTED),
            f"etcdserver: {name} is not supported by kubeproof (static membership)",
        )
        raise AssertionError("unreachable")
