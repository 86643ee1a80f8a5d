"""The etcd gRPC layer in process: watch streams, lease quirks, errors, cluster members.

A `grpc.aio` client with kubeproof's own stubs talks to `EtcdGrpcServer`
over loopback, both on one event loop, against the in-memory
`StoreBackend` and against a real three-member cluster (`MemberServer`s
over a `LocalNetwork`, each with its disk in a temp dir).  Every test runs
with both gRPC engines: kubeproof's own HTTP/2 (``h2``) and grpcio's.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from kubeproof.serve.etcd_backend import StoreBackend
from kubeproof.serve.etcd_grpc import ENGINES, EtcdGrpcServer
from kubeproof.serve.etcd_member import ClusterSpec, MemberServer, MemberSpec
from kubeproof.serve.etcd_pb import rpc_pb2 as pb
from kubeproof.serve.etcd_transport import LocalNetwork

TIMEOUT = 30.0


@pytest.fixture(autouse=True, params=ENGINES)
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every `EtcdGrpcServer` of the test uses this engine (its default comes from
    the environment)."""
    name: str = request.param
    monkeypatch.setenv("KUBEPROOF_ETCD_GRPC_ENGINE", name)
    return name


class Stub:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        def unary(path: str, req: Any, resp: Any) -> Any:
            return channel.unary_unary(
                path,
                request_serializer=req.SerializeToString,
                response_deserializer=resp.FromString,
            )

        self.put = unary("/etcdserverpb.KV/Put", pb.PutRequest, pb.PutResponse)
        self.range = unary("/etcdserverpb.KV/Range", pb.RangeRequest, pb.RangeResponse)
        self.compact = unary(
            "/etcdserverpb.KV/Compact", pb.CompactionRequest, pb.CompactionResponse
        )
        self.grant = unary(
            "/etcdserverpb.Lease/LeaseGrant", pb.LeaseGrantRequest, pb.LeaseGrantResponse
        )
        self.ttl = unary(
            "/etcdserverpb.Lease/LeaseTimeToLive",
            pb.LeaseTimeToLiveRequest,
            pb.LeaseTimeToLiveResponse,
        )
        self.member_add = unary(
            "/etcdserverpb.Cluster/MemberAdd", pb.MemberAddRequest, pb.MemberAddResponse
        )
        self.member_list = unary(
            "/etcdserverpb.Cluster/MemberList", pb.MemberListRequest, pb.MemberListResponse
        )
        self.status = unary("/etcdserverpb.Maintenance/Status", pb.StatusRequest, pb.StatusResponse)
        self.hash_kv = unary(
            "/etcdserverpb.Maintenance/HashKV", pb.HashKVRequest, pb.HashKVResponse
        )
        self.watch = channel.stream_stream(
            "/etcdserverpb.Watch/Watch",
            request_serializer=pb.WatchRequest.SerializeToString,
            response_deserializer=pb.WatchResponse.FromString,
        )
        self.keep_alive = channel.stream_stream(
            "/etcdserverpb.Lease/LeaseKeepAlive",
            request_serializer=pb.LeaseKeepAliveRequest.SerializeToString,
            response_deserializer=pb.LeaseKeepAliveResponse.FromString,
        )


def _run(scenario: Callable[[Stub], Awaitable[None]]) -> None:
    async def main() -> None:
        server = EtcdGrpcServer(StoreBackend())
        (port,) = await server.start(["http://127.0.0.1:0"])
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
                await asyncio.wait_for(scenario(Stub(ch)), TIMEOUT)
        finally:
            await server.stop(0)

    asyncio.run(main())


class WatchStream:
    """A Watch RPC: send requests, read responses."""

    def __init__(self, stub: Stub) -> None:
        self.queue: asyncio.Queue[pb.WatchRequest] = asyncio.Queue()

        async def requests() -> AsyncIterator[pb.WatchRequest]:
            while True:
                yield await self.queue.get()

        self.call = stub.watch(requests())

    async def send(self, **kw: Any) -> None:
        await self.queue.put(pb.WatchRequest(**kw))

    async def recv(self) -> pb.WatchResponse:
        resp = await self.call.read()
        assert isinstance(resp, pb.WatchResponse), resp  # not EOF
        return resp


def test_watch_ids_created_events_cancel_and_progress() -> None:
    async def scenario(s: Stub) -> None:
        w = WatchStream(s)
        await w.send(create_request=pb.WatchCreateRequest(key=b"a"))
        created = await w.recv()
        assert created.created and created.watch_id == 0 and created.header.revision == 1
        await w.send(create_request=pb.WatchCreateRequest(key=b"b", prev_kv=True))
        assert (await w.recv()).watch_id == 1
        await s.put(pb.PutRequest(key=b"b", value=b"1"))
        await s.put(pb.PutRequest(key=b"b", value=b"2"))
        first, second = await w.recv(), await w.recv()
        assert first.watch_id == second.watch_id == 1
        assert [ev.kv.value for ev in (*first.events, *second.events)] == [b"1", b"2"]
        assert second.events[0].prev_kv.value == b"1"
        assert second.header.revision == 3
        # A client-chosen id, then the same id again: refused with etcd's reason.
        await w.send(create_request=pb.WatchCreateRequest(key=b"c", watch_id=7))
        assert (await w.recv()).watch_id == 7
        await w.send(create_request=pb.WatchCreateRequest(key=b"c", watch_id=7))
        dup = await w.recv()
        assert dup.created and dup.canceled and dup.watch_id == -1
        assert dup.cancel_reason == "mvcc: duplicate watch ID provided on the WatchStream"
        # An empty range is refused the same way.
        await w.send(create_request=pb.WatchCreateRequest(key=b"z", range_end=b"a"))
        bad = await w.recv()
        assert bad.canceled and bad.cancel_reason == "mvcc: watcher range is empty"
        # Cancel: acknowledged once; an unknown id gets no answer.
        await w.send(cancel_request=pb.WatchCancelRequest(watch_id=1))
        gone = await w.recv()
        assert gone.canceled and gone.watch_id == 1
        await w.send(cancel_request=pb.WatchCancelRequest(watch_id=99))
        # Progress: everything up to the current revision first, then watch id -1.
        await s.put(pb.PutRequest(key=b"a", value=b"x"))
        await w.send(progress_request=pb.WatchProgressRequest())
        ev = await w.recv()
        assert ev.watch_id == 0 and ev.events[0].kv.key == b"a"
        progress = await w.recv()
        assert progress.watch_id == -1 and not progress.events
        assert progress.header.revision == 4
        w.call.cancel()

    _run(scenario)


def test_watch_from_compacted_revision_is_canceled_with_compact_revision() -> None:
    async def scenario(s: Stub) -> None:
        for v in (b"1", b"2", b"3"):
            await s.put(pb.PutRequest(key=b"k", value=v))
        await s.compact(pb.CompactionRequest(revision=3))
        w = WatchStream(s)
        await w.send(create_request=pb.WatchCreateRequest(key=b"k", start_revision=2))
        assert (await w.recv()).created
        canceled = await w.recv()
        assert canceled.canceled and canceled.compact_revision == 3
        assert canceled.header.revision == 0  # as etcd sends it
        # From the compaction revision on, history replays.
        await w.send(create_request=pb.WatchCreateRequest(key=b"k", start_revision=3))
        assert (await w.recv()).created
        replay = await w.recv()
        assert [(e.kv.mod_revision, e.kv.value) for e in replay.events] == [(3, b"2"), (4, b"3")]
        w.call.cancel()

    _run(scenario)


def test_lease_quirks() -> None:
    async def scenario(s: Stub) -> None:
        # TimeToLive of an unknown lease: TTL -1, not an error.
        unknown = await s.ttl(pb.LeaseTimeToLiveRequest(ID=12345))
        assert unknown.TTL == -1 and unknown.ID == 12345
        lease = await s.grant(pb.LeaseGrantRequest(TTL=30))
        queue: asyncio.Queue[pb.LeaseKeepAliveRequest] = asyncio.Queue()

        async def requests() -> AsyncIterator[pb.LeaseKeepAliveRequest]:
            while True:
                yield await queue.get()

        call = s.keep_alive(requests())
        await queue.put(pb.LeaseKeepAliveRequest(ID=lease.ID))
        ok = await call.read()
        assert isinstance(ok, pb.LeaseKeepAliveResponse)
        assert (ok.ID, ok.TTL) == (lease.ID, 30)
        # KeepAlive of an unknown lease: TTL 0 on the same stream, which stays open.
        await queue.put(pb.LeaseKeepAliveRequest(ID=999))
        missing = await call.read()
        assert isinstance(missing, pb.LeaseKeepAliveResponse)
        assert (missing.ID, missing.TTL) == (999, 0)
        call.cancel()
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await s.grant(pb.LeaseGrantRequest(TTL=10, ID=lease.ID))
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert info.value.details() == "etcdserver: lease already exists"

    _run(scenario)


def test_errors_carry_etcds_codes_and_messages() -> None:
    async def scenario(s: Stub) -> None:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await s.put(pb.PutRequest(key=b"", value=b"v"))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert info.value.details() == "etcdserver: key is not provided"
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await s.range(pb.RangeRequest(key=b"k", revision=50))
        assert info.value.code() == grpc.StatusCode.OUT_OF_RANGE
        assert info.value.details() == "etcdserver: mvcc: required revision is a future revision"
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await s.put(pb.PutRequest(key=b"k", lease=77))
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        assert info.value.details() == "etcdserver: requested lease not found"
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await s.member_add(pb.MemberAddRequest(peerURLs=["http://x:1"]))
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
        bad = pb.RangeRequest(key=b"k")
        bad.sort_target = 42  # type: ignore[assignment]
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await s.range(bad)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    _run(scenario)


def test_three_members_agree(tmp_path: Path) -> None:
    """A real Raft group in one process: writes through any member, the same
    data and hash on every member, one leader, and a follower's watch."""

    async def main() -> None:
        spec = ClusterSpec(
            tuple(
                MemberSpec(f"m{i}", f"local://m{i}", (f"http://127.0.0.1:{i}",)) for i in (1, 2, 3)
            )
        )
        net = LocalNetwork()
        members = [
            MemberServer(spec, f"m{i}", tmp_path / f"m{i}", heartbeat_interval=0.02)
            for i in (1, 2, 3)
        ]
        servers = [EtcdGrpcServer(m) for m in members]
        ports = []
        for m, srv in zip(members, servers, strict=True):
            (port,) = await srv.start(["http://127.0.0.1:0"])
            ports.append(port)
            await m.start(net.attach(m.id, m.deliver, m.unreachable))
        channels = [grpc.aio.insecure_channel(f"127.0.0.1:{p}") for p in ports]
        stubs = [Stub(ch) for ch in channels]
        try:
            w = WatchStream(stubs[2])
            await w.send(create_request=pb.WatchCreateRequest(key=b"/k/", range_end=b"/k0"))
            assert (await w.recv()).created
            for i in range(9):
                await stubs[i % 3].put(pb.PutRequest(key=b"/k/%d" % i, value=b"%d" % i))
            seen: list[bytes] = []
            while len(seen) < 9:
                seen.extend(ev.kv.key for ev in (await w.recv()).events)
            assert seen == [b"/k/%d" % i for i in range(9)]
            ranges = [await st.range(pb.RangeRequest(key=b"/k/", range_end=b"/k0")) for st in stubs]
            assert {r.header.revision for r in ranges} == {10}
            assert all(len(r.kvs) == 9 for r in ranges)
            hashes = {(await st.hash_kv(pb.HashKVRequest(revision=10))).hash for st in stubs}
            assert len(hashes) == 1
            statuses = [await st.status(pb.StatusRequest()) for st in stubs]
            assert len({s.leader for s in statuses}) == 1
            assert statuses[0].leader in {m.id for m in members}
            listed = await stubs[0].member_list(pb.MemberListRequest())
            assert sorted(m.name for m in listed.members) == ["m1", "m2", "m3"]
            w.call.cancel()
        finally:
            for ch in channels:
                await ch.close(None)
            for srv in servers:
                await srv.stop(0)
            for m in members:
                await m.stop()

    asyncio.run(asyncio.wait_for(main(), 60))


def test_lease_expiry_is_decided_by_the_leader_clock(tmp_path: Path) -> None:
    """A lease runs out when the leader's clock passes its deadline: the keys are
    deleted through the log (a DELETE event on a watch), not by a sleep here."""

    async def main() -> None:
        now = [1000.0]
        spec = ClusterSpec((MemberSpec("solo", "local://solo"),))
        member = MemberServer(spec, "solo", tmp_path, heartbeat_interval=0.01, clock=lambda: now[0])
        server = EtcdGrpcServer(member)
        (port,) = await server.start(["http://127.0.0.1:0"])
        await member.start(LocalNetwork().attach(member.id, member.deliver, member.unreachable))
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
                s = Stub(ch)
                lease = await s.grant(pb.LeaseGrantRequest(TTL=5))
                await s.put(pb.PutRequest(key=b"leased", value=b"v", lease=lease.ID))
                w = WatchStream(s)
                await w.send(create_request=pb.WatchCreateRequest(key=b"leased"))
                assert (await w.recv()).created
                left = await s.ttl(pb.LeaseTimeToLiveRequest(ID=lease.ID))
                assert left.TTL == 5
                now[0] += 4.0  # not yet due: the key stays, one second is left
                assert (await s.range(pb.RangeRequest(key=b"leased"))).count == 1
                assert (await s.ttl(pb.LeaseTimeToLiveRequest(ID=lease.ID))).TTL == 1
                now[0] += 2.0  # past the deadline: the next tick proposes the expiry
                deleted = await w.recv()
                assert [ev.type for ev in deleted.events] == [1]  # DELETE
                assert (await s.range(pb.RangeRequest(key=b"leased"))).count == 0
                gone = await s.ttl(pb.LeaseTimeToLiveRequest(ID=lease.ID))
                assert gone.TTL == -1
                w.call.cancel()
        finally:
            await server.stop(0)
            await member.stop()

    asyncio.run(asyncio.wait_for(main(), 60))


def test_a_put_is_answered_only_once_its_log_record_is_fsynced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Group commit batches many puts into one record and one fsync, but no put is
    answered before the fsync that covers its record has returned: at the moment
    each answer arrives, its key is in the synced prefix of raft.wal."""
    real_fsync = os.fsync
    synced: dict[int, int] = {}  # fd -> file size made durable by its last fsync

    def slow_fsync(fd: int) -> None:
        size = os.fstat(fd).st_size  # the disk thread is the only writer
        real_fsync(fd)
        time.sleep(0.01)  # a slow disk: lets requests pile up behind each fsync
        synced[fd] = size

    monkeypatch.setattr(os, "fsync", slow_fsync)

    async def main() -> None:
        spec = ClusterSpec((MemberSpec("solo", "local://solo"),))
        member = MemberServer(spec, "solo", tmp_path)
        server = EtcdGrpcServer(member)
        (port,) = await server.start(["http://127.0.0.1:0"])
        await member.start(LocalNetwork().attach(member.id, member.deliver, member.unreachable))
        wal = tmp_path / "member" / "raft.wal"
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
                s = Stub(ch)
                await s.put(pb.PutRequest(key=b"warm-up", value=b"v"))

                async def put(i: int) -> None:
                    key = b"durable-%04d" % i
                    await s.put(pb.PutRequest(key=key, value=b"v"))
                    fd = member.disk.log._fd
                    assert key in wal.read_bytes()[: synced.get(fd, 0)], key

                await asyncio.gather(*(put(i) for i in range(64)))
            assert member.disk.fsyncs < 60, "batched: fewer fsyncs than puts"
        finally:
            await server.stop(0)
            await member.stop()

    asyncio.run(asyncio.wait_for(main(), 60))
