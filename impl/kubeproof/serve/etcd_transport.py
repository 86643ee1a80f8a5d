"""Carrying Raft messages between the members of a kubeproof etcd cluster.

Theory of operation
-------------------
A member hands its outgoing `kubeproof.raft.Message`s to a transport and
gets incoming ones through the ``deliver`` callback it registered.  Raft
tolerates loss, duplication and reordering, so a transport promises
nothing but best effort; what it must do is report a peer it cannot reach
(``on_unreachable``), so the leader's progress for that peer drops back to
probing, as etcd's rafthttp does.

Two transports:

    LocalNetwork    members in one process (``kubeproof etcd --cluster-size
                    N``): a send schedules the receiver's callback on the
                    event loop (``call_soon``), never calling it inline, so a
                    member is never re-entered while it handles a Ready.
    TcpTransport    members in separate processes (``--initial-cluster``):
                    one TCP connection per peer, opened on demand, frames of
                    ``length:u32 BE`` + the message as kubeproof.codec JSON.
                    The peer URLs use etcd's ``http://HOST:PORT`` form but the
                    bytes are kubeproof's own framing, not etcd's rafthttp:
                    kubeproof members talk to kubeproof members only.

A send queue per peer is bounded (`MAX_QUEUE` messages); when it is full the
oldest are dropped, as a congested network would, and Raft's retries make up
for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections import deque
from collections.abc import Callable, Sequence

from kubeproof import codec
from kubeproof.raft import Message

from .etcd_grpc import parse_listen_url

__all__ = ["MAX_QUEUE", "LocalNetwork", "TcpTransport", "Transport"]

log = logging.getLogger("kubeproof.etcd.transport")

MAX_QUEUE = 4096
_LEN = struct.Struct(">I")
MAX_FRAME = 256 * 1024 * 1024

Deliver = Callable[[Message], None]
Unreachable = Callable[[int], None]


class Transport:
    """What a member needs: ``send``; and ``start``/``stop`` around its life."""

    def send(self, msgs: Sequence[Message]) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class LocalNetwork:
    """An in-process network between the members of one `kubeproof etcd` process."""

    def __init__(self) -> None:
        self._members: dict[int, Deliver] = {}
        self._down: set[int] = set()

    def attach(self, member_id: int, deliver: Deliver, unreachable: Unreachable) -> Transport:
        self._members[member_id] = deliver
        return _LocalEndpoint(self, member_id, unreachable)

    def set_down(self, member_id: int, down: bool) -> None:
        """Cut a member off (tests): its messages in and out are dropped."""
        if down:
            self._down.add(member_id)
        else:
            self._down.discard(member_id)

    def _send(self, src: int, msgs: Sequence[Message], unreachable: Unreachable) -> None:
        loop = asyncio.get_running_loop()
        for m in msgs:
            deliver = self._members.get(m.to)
            if deliver is None or m.to in self._down or src in self._down:
                unreachable(m.to)
                continue
            loop.call_soon(deliver, m)


class _LocalEndpoint(Transport):
    def __init__(self, net: LocalNetwork, member_id: int, unreachable: Unreachable) -> None:
        self.net = net
        self.member_id = member_id
        self.unreachable = unreachable

    def send(self, msgs: Sequence[Message]) -> None:
        self.net._send(self.member_id, msgs, self.unreachable)


class _Peer:
    def __init__(self, peer_id: int, url: str) -> None:
        self.id = peer_id
        self.host, self.port = parse_listen_url(url)
        self.queue: deque[bytes] = deque()
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None


class TcpTransport(Transport):
    """Raft messages over TCP between processes (see the module docstring)."""

    def __init__(
        self,
        member_id: int,
        listen_url: str,
        peers: dict[int, str],
        deliver: Deliver,
        unreachable: Unreachable,
        *,
        retry_delay: float = 0.1,
    ) -> None:
        self.member_id = member_id
        self.listen_url = listen_url
        self.deliver = deliver
        self.unreachable = unreachable
        self.retry_delay = retry_delay
        self.peers = {pid: _Peer(pid, url) for pid, url in peers.items() if pid != member_id}
        self._server: asyncio.Server | None = None
        self._readers: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        host, port = parse_listen_url(self.listen_url)
        self._server = await asyncio.start_server(self._accept, host, port)
        loop = asyncio.get_running_loop()
        for peer in self.peers.values():
            peer.task = loop.create_task(self._sender(peer))

    async def stop(self) -> None:
        for peer in self.peers.values():
            if peer.task is not None:
                peer.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await peer.task
        if self._server is not None:
            self._server.close()
        for t in list(self._readers):
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    def send(self, msgs: Sequence[Message]) -> None:
        for m in msgs:
            peer = self.peers.get(m.to)
            if peer is None:
                continue
            data = codec.dumps(m).encode()
            if len(peer.queue) >= MAX_QUEUE:
                peer.queue.popleft()
            peer.queue.append(_LEN.pack(len(data)) + data)
            peer.wake.set()

    async def _sender(self, peer: _Peer) -> None:
        while True:
            await peer.wake.wait()
            try:
                _, writer = await asyncio.open_connection(peer.host, peer.port)
            except OSError:
                peer.queue.clear()
                peer.wake.clear()
                self.unreachable(peer.id)
                # Retry when there is something new to send (Raft resends).
                await asyncio.sleep(self.retry_delay)
                continue
            try:
                while True:
                    await peer.wake.wait()
                    peer.wake.clear()
                    while peer.queue:
                        writer.write(peer.queue.popleft())
                    await writer.drain()
            except (OSError, ConnectionError):
                self.unreachable(peer.id)
            finally:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._readers.add(task)
        try:
            while True:
                head = await reader.readexactly(_LEN.size)
                (n,) = _LEN.unpack(head)
                if n > MAX_FRAME:
                    log.warning("peer frame of %d bytes refused; closing the connection", n)
                    return
                body = await reader.readexactly(n)
                try:
                    msg = codec.loads(body.decode(), Message)
                except (ValueError, UnicodeDecodeError) as e:
                    log.warning("undecodable peer message dropped: %s", e)
                    continue
                self.deliver(msg)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            return
        finally:
            writer.close()
            if task is not None:
                self._readers.discard(task)
