"""The ``h2`` engine's gRPC transport (kubeproof.serve.etcd_h2), frame by frame.

A raw HTTP/2 client on a TCP socket sends exactly the frames a test wants
to `EtcdGrpcServer` (engine ``h2``) over the in-memory `StoreBackend`:
continuation, padding and priority, flow control with small windows, the
gRPC errors (unknown method, oversized or compressed message, missing
message, deadline), stream resets, and the connection errors (malformed
frames and header blocks) that end with GOAWAY.  The server parses frames
with hyperframe and header blocks with hpack; these tests pin what it does
with them (the client encodes and decodes its header blocks with hpack
too).  The well-behaved clients (grpcio, etcdctl, etcd3) are in
test_etcd_grpc.py and test_etcd_server.py.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable, Callable
from typing import NamedTuple

import pytest
from hpack import Decoder, Encoder

from kubeproof.serve.etcd_backend import StoreBackend
from kubeproof.serve.etcd_grpc import EtcdGrpcServer
from kubeproof.serve.etcd_h2 import (
    MAX_HEADER_LIST,
    GrpcH2Server,
    _Connection,
    percent_encode,
)
from kubeproof.serve.etcd_pb import rpc_pb2 as pb

TIMEOUT = 10.0

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS = 0, 1, 2, 3, 4
PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 6, 7, 8, 9
END_STREAM, ACK, END_HEADERS, PADDED, PRIO = 0x1, 0x1, 0x4, 0x8, 0x20
# Error codes (RFC 9113 7).
PROTOCOL_ERROR, FLOW_CONTROL_ERROR, FRAME_SIZE_ERROR, COMPRESSION_ERROR = 0x1, 0x3, 0x6, 0x9


class Frame(NamedTuple):
    kind: int
    flags: int
    sid: int
    payload: bytes
    fields: dict[bytes, bytes] | None  # a HEADERS frame's header block, decoded


def frame(kind: int, flags: int, sid: int, payload: bytes = b"") -> bytes:
    n = len(payload)
    return struct.pack(">BHBBI", n >> 16, n & 0xFFFF, kind, flags, sid) + payload


def grpc_message(msg: bytes, compressed: bool = False) -> bytes:
    return struct.pack(">BI", int(compressed), len(msg)) + msg


def encode(fields: list[tuple[bytes, bytes]]) -> bytes:
    """A header block that uses no dynamic table entry of an earlier block."""
    return Encoder().encode(fields)


def request_headers(path: str, **extra: str) -> bytes:
    fields = [
        (b":method", b"POST"),
        (b":scheme", b"http"),
        (b":path", path.encode()),
        (b":authority", b"localhost"),
        (b"content-type", b"application/grpc"),
        (b"te", b"trailers"),
    ]
    fields += [(k.replace("_", "-").encode(), v.encode()) for k, v in extra.items()]
    return encode(fields)


class Client:
    """A raw HTTP/2 connection: send frames, read frames.  It acknowledges the
    server's SETTINGS, as every client must, and decodes every header block
    it reads (the server's encoder indexes, so the order matters)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.decoder = Decoder()
        self.next_id = 1
        self.window_updates = 0
        self.ack_settings = True

    @classmethod
    async def connect(
        cls, port: int, settings: dict[int, int] | None = None, preface: bytes = PREFACE
    ) -> Client:
        """Connects; with the HTTP/2 preface, also waits for the server's
        settings (they end with its connection WINDOW_UPDATE) and acks them."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        c = cls(reader, writer)
        c.ack_settings = preface == PREFACE
        body = b"".join(struct.pack(">HI", k, v) for k, v in (settings or {}).items())
        writer.write(preface + frame(SETTINGS, 0, 0, body))
        if c.ack_settings:
            while True:
                f = await c.read()
                assert f is not None
                if f.kind == WINDOW_UPDATE and f.sid == 0:
                    break
            c.window_updates = 0
        return c

    def send(self, kind: int, flags: int, sid: int, payload: bytes = b"") -> None:
        self.writer.write(frame(kind, flags, sid, payload))

    def stream(self) -> int:
        sid = self.next_id
        self.next_id += 2
        return sid

    async def read(self) -> Frame | None:
        """The next frame, or None at EOF."""
        try:
            head = await asyncio.wait_for(self.reader.readexactly(9), TIMEOUT)
        except asyncio.IncompleteReadError:
            return None
        hi, lo, kind, flags, sid = struct.unpack(">BHBBI", head)
        payload = await self.reader.readexactly((hi << 16) | lo)
        if kind == WINDOW_UPDATE and sid == 0:
            self.window_updates += 1
        if kind == SETTINGS and not flags & ACK and self.ack_settings:
            self.send(SETTINGS, ACK, 0)
        fields = None
        if kind == HEADERS:
            assert flags & END_HEADERS, "the server's header blocks fit one frame"
            fields = dict(self.decoder.decode(payload, raw=True))
        return Frame(kind, flags, sid & 0x7FFFFFFF, payload, fields)

    async def call(
        self, path: str, *messages: bytes, headers: bytes | None = None
    ) -> tuple[dict[bytes, bytes], list[bytes], dict[bytes, bytes]]:
        sid = self.stream()
        self.send(HEADERS, END_HEADERS, sid, headers or request_headers(path))
        for i, m in enumerate(messages):
            self.send(DATA, END_STREAM if i == len(messages) - 1 else 0, sid, m)
        return await self.response(sid)

    async def response(
        self, sid: int
    ) -> tuple[dict[bytes, bytes], list[bytes], dict[bytes, bytes]]:
        """(headers, messages, trailers) of stream ``sid``; a trailers-only
        response has its fields in both dicts."""
        head: dict[bytes, bytes] | None = None
        data = b""
        while True:
            f = await self.read()
            assert f is not None, "connection closed"
            if f.kind == HEADERS and f.sid == sid:
                assert f.fields is not None
                if head is None:
                    head = f.fields
                    if f.flags & END_STREAM:
                        return head, [], head
                else:
                    assert f.flags & END_STREAM
                    messages = []
                    while data:
                        compressed, n = struct.unpack(">BI", data[:5])
                        assert not compressed
                        messages.append(data[5 : 5 + n])
                        data = data[5 + n :]
                    return head, messages, f.fields
            elif f.kind == DATA and f.sid == sid:
                data += f.payload

    async def goaway(self) -> int:
        """Reads until GOAWAY; returns its error code."""
        while True:
            f = await self.read()
            assert f is not None, "closed without GOAWAY"
            if f.kind == GOAWAY:
                return int(struct.unpack(">II", f.payload[:8])[1])

    async def closed(self) -> None:
        while await self.read() is not None:
            pass

    def close(self) -> None:
        self.writer.close()


def run(scenario: Callable[[int, EtcdGrpcServer], Awaitable[None]]) -> None:
    async def main() -> None:
        server = EtcdGrpcServer(StoreBackend(), engine="h2")
        (port,) = await server.start(["http://127.0.0.1:0"])
        try:
            await asyncio.wait_for(scenario(port, server), TIMEOUT * 2)
        finally:
            await server.stop(0)

    asyncio.run(main())


def put(key: bytes, value: bytes) -> bytes:
    return grpc_message(pb.PutRequest(key=key, value=value).SerializeToString())


def test_unary_calls_with_continuation_padding_and_priority() -> None:
    async def scenario(port: int, _server: EtcdGrpcServer) -> None:
        c = await Client.connect(port)
        head, msgs, trailers = await c.call("/etcdserverpb.KV/Put", put(b"k", b"v"))
        assert head[b":status"] == b"200"
        assert head[b"content-type"] == b"application/grpc"
        assert trailers[b"grpc-status"] == b"0"
        assert pb.PutResponse.FromString(msgs[0]).header.revision == 2

        # HEADERS (padded, with priority) + CONTINUATION; DATA padded, in two frames.
        sid = c.stream()
        block = request_headers("/etcdserverpb.KV/Range")
        pad = 3
        first = bytes((pad,)) + b"\x00\x00\x00\x00\x10" + block[:10] + b"\x00" * pad
        c.send(HEADERS, PADDED | PRIO, sid, first)
        c.send(CONTINUATION, END_HEADERS, sid, block[10:])
        body = grpc_message(pb.RangeRequest(key=b"k").SerializeToString())
        c.send(DATA, PADDED, sid, b"\x02" + body[:4] + b"\x00\x00")
        c.send(DATA, END_STREAM, sid, body[4:])
        _, msgs, trailers = await c.response(sid)
        assert trailers[b"grpc-status"] == b"0"
        (kv,) = pb.RangeResponse.FromString(msgs[0]).kvs
        assert (kv.key, kv.value) == (b"k", b"v")
        c.close()

    run(scenario)


def test_ping_settings_priority_and_unknown_frames() -> None:
    async def scenario(port: int, _server: EtcdGrpcServer) -> None:
        c = await Client.connect(port)
        c.send(PING, 0, 0, b"12345678")
        c.send(0xEE, 0xFF, 3, b"whatever")  # an unknown type: ignored
        c.send(PRIORITY, 0, 5, b"\x00\x00\x00\x00\x10")
        c.send(SETTINGS, 0, 0, struct.pack(">HI", 0x4, 100_000) + struct.pack(">HI", 0x99, 1))
        seen: set[tuple[int, int]] = set()
        ping = b""
        while (PING, ACK) not in seen or len([k for k in seen if k == (SETTINGS, ACK)]) < 1:
            f = await c.read()
            assert f is not None
            seen.add((f.kind, f.flags & ACK))
            if f.kind == PING:
                ping = f.payload
        assert ping == b"12345678"
        _, _, trailers = await c.call("/etcdserverpb.KV/Put", put(b"a", b"1"))
        assert trailers[b"grpc-status"] == b"0"
        c.close()

    run(scenario)


def test_grpc_errors() -> None:
    async def scenario(port: int, _server: EtcdGrpcServer) -> None:
        c = await Client.connect(port)
        _, _, t = await c.call("/etcdserverpb.KV/Nope", put(b"k", b"v"))
        assert t[b"grpc-status"] == b"12"
        big = grpc_message(b"\x00" * (3 * 1024 * 1024))
        _, _, t = await c.call("/etcdserverpb.KV/Put", big[:100_000])
        assert t[b"grpc-status"] == b"8"
        assert b"larger than max" in t[b"grpc-message"]
        msg = pb.PutRequest(key=b"k").SerializeToString()
        _, _, t = await c.call("/etcdserverpb.KV/Put", grpc_message(msg, compressed=True))
        assert t[b"grpc-status"] == b"12"
        sid = c.stream()
        c.send(HEADERS, END_HEADERS | END_STREAM, sid, request_headers("/etcdserverpb.KV/Put"))
        _, _, t = await c.response(sid)
        assert t[b"grpc-status"] == b"13"
        _, _, t = await c.call("/etcdserverpb.KV/Put", b"\x00\x00\x00\x00\x05\xff\xff")
        assert t[b"grpc-status"] == b"13"  # a message cut short: not exactly one message
        h, _, _ = await c.call(
            "/etcdserverpb.KV/Put",
            put(b"k", b"v"),
            headers=encode(
                [
                    (b":method", b"POST"),
                    (b":scheme", b"http"),
                    (b":path", b"/etcdserverpb.KV/Put"),
                    (b":authority", b"localhost"),
                    (b"content-type", b"text/plain"),
                ]
            ),
        )
        assert h[b":status"] == b"415"
        # etcd's own errors, percent-encoded where they need it.
        _, _, t = await c.call("/etcdserverpb.KV/Put", put(b"", b"v"))
        assert t[b"grpc-status"] == b"3"
        assert t[b"grpc-message"] == b"etcdserver: key is not provided"
        # The connection is still fine.
        _, _, t = await c.call("/etcdserverpb.KV/Put", put(b"k", b"v"))
        assert t[b"grpc-status"] == b"0"
        c.close()

    run(scenario)


def test_a_reused_block_of_indexed_fields_follows_the_dynamic_table() -> None:
    """The server keeps the decoding of a block made only of indexed fields
    (a gRPC client sends the same one for every call of a method); a block
    that changes the dynamic table must make it decode such a block anew."""

    def literal(index: int, value: bytes) -> bytes:  # with incremental indexing
        return bytes((0x40 | index, len(value))) + value

    post, http = b"\x83", b"\x86"  # static :method POST, :scheme http
    # :path Put at 62, then content-type at 62 and :path Put at 63.
    first = post + http + literal(4, b"/etcdserverpb.KV/Put") + literal(31, b"application/grpc")
    indexed = post + http + b"\xbf\xbe"  # 63 and 62: the same bytes, call after call
    # :path Range at 62, content-type now at 63, :path Put at 64.
    third = post + http + literal(4, b"/etcdserverpb.KV/Range") + b"\xbf"
    get = grpc_message(pb.RangeRequest(key=b"k").SerializeToString())

    async def scenario(port: int, _server: EtcdGrpcServer) -> None:
        c = await Client.connect(port)
        _, _, t = await c.call("", put(b"k", b"v1"), headers=first)
        assert t[b"grpc-status"] == b"0"
        for value in (b"v2", b"v3"):  # a Put, twice, from the same block
            _, msgs, t = await c.call("", put(b"k", value), headers=indexed)
            assert t[b"grpc-status"] == b"0"
            assert pb.PutResponse.FromString(msgs[0]).header.revision > 2
        _, msgs, _ = await c.call("", get, headers=third)
        assert pb.RangeResponse.FromString(msgs[0]).kvs[0].value == b"v3"
        # The same bytes as before now name Range (62) and content-type (63).
        _, msgs, t = await c.call("", get, headers=indexed)
        assert t[b"grpc-status"] == b"0"
        (kv,) = pb.RangeResponse.FromString(msgs[0]).kvs
        assert kv.value == b"v3"
        c.close()

    run(scenario)


def test_percent_encoding_of_grpc_message() -> None:
    assert percent_encode("plain text: ok") == b"plain text: ok"
    assert percent_encode("100% \u00e9\n") == b"100%25 %C3%A9%0A"


def test_flow_control_holds_data_until_the_windows_open() -> None:
    value = b"x" * 100_000

    async def scenario(port: int, _server: EtcdGrpcServer) -> None:
        c = await Client.connect(port, settings={0x4: 1000})  # stream window: 1000 bytes
        _, _, t = await c.call("/etcdserverpb.KV/Put", put(b"big", value))
        assert t[b"grpc-status"] == b"0"
        sid = c.stream()
        c.send(HEADERS, END_HEADERS, sid, request_headers("/etcdserverpb.KV/Range"))
        c.send(DATA, END_STREAM, sid, grpc_message(pb.RangeRequest(key=b"big").SerializeToString()))

        received = bytearray()

        async def data_until_quiet() -> int:
            got = 0
            while True:
                try:
                    f = await asyncio.wait_for(c.read(), 0.3)
                except TimeoutError:
                    return got
                assert f is not None
                if f.kind == HEADERS:
                    assert not f.flags & END_STREAM, "ended early"
                if f.kind == DATA and f.sid == sid:
                    assert len(f.payload) <= 16384  # the default max frame size
                    got += len(f.payload)
                    received.extend(f.payload)

        # The stream window allows 1000 bytes (the put's response used none of it).
        assert await data_until_quiet() == 1000
        # The stream opens wide; the connection window (65535, minus the put's
        # response and these 1000 bytes) is the limit now.
        c.send(WINDOW_UPDATE, 0, sid, struct.pack(">I", 1_000_000))
        second = await data_until_quiet()
        assert 60_000 < second < 65_535 - 1000
        c.send(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1_000_000))
        trailers: dict[bytes, bytes] | None = None
        while trailers is None:
            f = await c.read()
            assert f is not None
            if f.kind == DATA and f.sid == sid:
                received.extend(f.payload)
            elif f.kind == HEADERS and f.sid == sid and f.flags & END_STREAM:
                trailers = f.fields
        assert trailers[b"grpc-status"] == b"0"
        (n,) = struct.unpack(">I", received[1:5])
        assert len(received) == 5 + n
        (kv,) = pb.RangeResponse.FromString(bytes(received[5:])).kvs
        assert kv.value == value
        c.close()

    run(scenario)


def test_rst_stream_ends_a_watch_and_a_deadline_ends_another() -> None:
    async def scenario(port: int, server: EtcdGrpcServer) -> None:
        c = await Client.connect(port)
        sid = c.stream()
        c.send(HEADERS, END_HEADERS, sid, request_headers("/etcdserverpb.Watch/Watch"))
        create = pb.WatchRequest(create_request=pb.WatchCreateRequest(key=b"w"))
        c.send(DATA, 0, sid, grpc_message(create.SerializeToString()))
        while True:
            f = await c.read()
            assert f is not None
            if f.kind == DATA and f.sid == sid:
                assert pb.WatchResponse.FromString(f.payload[5:]).created
                break
        assert len(server._streams) == 1
        c.send(RST_STREAM, 0, sid, struct.pack(">I", 8))  # CANCEL
        for _ in range(100):
            if not server._streams:
                break
            await asyncio.sleep(0.01)
        assert not server._streams

        sid = c.stream()
        c.send(
            HEADERS,
            END_HEADERS,
            sid,
            request_headers("/etcdserverpb.Watch/Watch", grpc_timeout="50m"),
        )
        c.send(DATA, 0, sid, grpc_message(create.SerializeToString()))
        _, _, t = await c.response(sid)
        assert t[b"grpc-status"] == b"4"
        c.close()

    run(scenario)


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        ([frame(HEADERS, END_HEADERS, 2, request_headers("/x"))], PROTOCOL_ERROR),  # even id
        ([frame(HEADERS, END_HEADERS, 1, b"\xbf\xff\xff")], COMPRESSION_ERROR),  # HPACK garbage
        ([frame(CONTINUATION, END_HEADERS, 1, b"\x82")], PROTOCOL_ERROR),  # CONTINUATION alone
        (  # not CONTINUATION
            [frame(HEADERS, 0, 1, b"\x82"), frame(PING, 0, 0, b"x" * 8)],
            PROTOCOL_ERROR,
        ),
        ([frame(DATA, 0, 1, b"x")], PROTOCOL_ERROR),  # DATA on an idle stream
        ([frame(PING, 0, 0, b"short")], FRAME_SIZE_ERROR),
        ([frame(SETTINGS, 0, 0, b"\x00\x04\xff\xff\xff\xff")], FLOW_CONTROL_ERROR),  # > 2^31-1
        ([frame(WINDOW_UPDATE, 0, 0, b"\x00\x00\x00\x00")], PROTOCOL_ERROR),
        ([frame(0x5, END_HEADERS, 1, b"\x00\x00\x00\x02\x82")], PROTOCOL_ERROR),  # PUSH_PROMISE
        # A frame header announcing more than the max frame size: refused at once.
        ([b"\x7f\xff\xff\x00\x00\x00\x00\x00\x01"], FRAME_SIZE_ERROR),
        ([frame(DATA, 0, 0, b"x")], PROTOCOL_ERROR),  # DATA on stream 0
        ([frame(DATA, PADDED, 1, b"\x05abc")], PROTOCOL_ERROR),  # padding longer than the frame
        ([frame(RST_STREAM, 0, 1, b"\x00\x00")], FRAME_SIZE_ERROR),
        ([frame(SETTINGS, 0, 0, b"\x00\x05\x00\x00\x00\x01")], PROTOCOL_ERROR),  # max frame 1
    ],
)
def test_connection_errors_end_with_goaway(frames: list[bytes], code: int) -> None:
    async def scenario(port: int, _server: EtcdGrpcServer) -> None:
        c = await Client.connect(port)
        for f in frames:
            c.writer.write(f)
        assert await c.goaway() == code
        await c.closed()

    run(scenario)


@pytest.mark.parametrize(
    "block",
    [
        b"\x80",  # index 0
        b"\xbe",  # index 62: the dynamic table is empty
        b"\xbf\xff\xff",  # index 63, then garbage
        b"\xff",  # an integer whose continuation is missing
        b"\xff\xff\xff\xff\xff\xff\x7f",  # an integer too large
        b"\x40\x05ab",  # a string shorter than its length
        b"\x3f\xe2\x1f",  # a table size update to 4097, above what the server allows
        b"\x82\x20",  # a table size update after a header field
        b"\x40\x81\x00\x00",  # a Huffman name of zero bits, then a bad pad
    ],
)
def test_a_header_block_that_does_not_decode_ends_the_connection(block: bytes) -> None:
    async def scenario(port: int, _server: EtcdGrpcServer) -> None:
        c = await Client.connect(port)
        c.send(HEADERS, END_HEADERS, 1, block)
        assert await c.goaway() == COMPRESSION_ERROR
        await c.closed()

    run(scenario)


def test_a_header_list_over_the_limit_ends_the_connection() -> None:
    async def scenario(port: int, _server: EtcdGrpcServer) -> None:
        c = await Client.connect(port)
        _, _, t = await c.call(
            "/etcdserverpb.KV/Put",
            put(b"k", b"v"),
            headers=request_headers("/etcdserverpb.KV/Put", x_big="v" * (MAX_HEADER_LIST // 2)),
        )
        assert t[b"grpc-status"] == b"0"  # custom metadata is ignored
        sid = c.stream()
        block = request_headers("/etcdserverpb.KV/Put", x_big="v" * MAX_HEADER_LIST)
        c.send(HEADERS, 0, sid, block[:16384])
        for i in range(16384, len(block), 16384):
            last = i + 16384 >= len(block)
            c.send(CONTINUATION, END_HEADERS if last else 0, sid, block[i : i + 16384])
        assert await c.goaway() == COMPRESSION_ERROR
        await c.closed()

    run(scenario)


class _Transport(asyncio.Transport):
    """Collects what a connection writes."""

    def __init__(self) -> None:
        super().__init__()
        self.out = bytearray()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.out += data

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.1", 1) if name == "peername" else default


def test_window_overrun_is_a_flow_control_error() -> None:
    async def main() -> None:
        server = EtcdGrpcServer(StoreBackend(), engine="h2")
        assert server.engine == "h2"
        h2 = GrpcH2Server(server.methods())
        conn = _Connection(h2)
        t = _Transport()
        conn.connection_made(t)
        chunk = frame(DATA, 0, 1, b"\x00" * (1 << 20))
        conn.data_received(
            PREFACE
            + frame(SETTINGS, 0, 0)
            + frame(SETTINGS, ACK, 0)  # the server's 1 MiB frames and 4 MiB windows hold now
            + frame(HEADERS, END_HEADERS, 1, request_headers("/etcdserverpb.Watch/Watch"))
        )
        # 5 MiB on one stream, all in one read: over the 4 MiB window it was given.
        conn.data_received(chunk * 5)
        await asyncio.sleep(0)
        conn.flush()
        assert t.closed
        pos = 0
        codes = []
        while pos < len(t.out):
            hi, lo, kind, _, _ = struct.unpack_from(">BHBBI", t.out, pos)
            n = (hi << 16) | lo
            if kind == GOAWAY:
                codes.append(struct.unpack_from(">II", t.out, pos + 9)[1])
            pos += 9 + n
        assert codes == [FLOW_CONTROL_ERROR]
        conn.connection_lost(None)

    asyncio.run(main())


def test_a_long_upload_gets_its_window_back() -> None:
    async def scenario(port: int, _server: EtcdGrpcServer) -> None:
        c = await Client.connect(port)
        value = b"v" * 900_000  # one DATA frame: under the 1 MiB max frame size
        for i in range(23):  # 20 MiB through a 16 MiB connection window
            _, _, t = await c.call("/etcdserverpb.KV/Put", put(b"k%d" % i, value))
            assert t[b"grpc-status"] == b"0", t
        assert c.window_updates > 0
        c.close()

    run(scenario)


def test_a_unary_call_with_more_than_one_message_fails() -> None:
    async def scenario(port: int, _server: EtcdGrpcServer) -> None:
        c = await Client.connect(port)
        _, _, t = await c.call("/etcdserverpb.KV/Put", put(b"a", b"1") + put(b"b", b"2"))
        assert t[b"grpc-status"] == b"13"
        # Many messages, none too large alone, cannot pile up without bound.
        sid = c.stream()
        c.send(HEADERS, END_HEADERS, sid, request_headers("/etcdserverpb.KV/Put"))
        one = put(b"k", b"v" * 60_000)
        for _ in range(60):
            c.send(DATA, 0, sid, one)
        _, _, t = await c.response(sid)
        assert t[b"grpc-status"] in (b"8", b"13")
        c.close()

    run(scenario)


def test_not_http2_is_refused() -> None:
    async def scenario(port: int, _server: EtcdGrpcServer) -> None:
        c = await Client.connect(port, preface=b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert await c.goaway() == PROTOCOL_ERROR
        await c.closed()

    run(scenario)


def test_stop_says_goaway_and_lets_calls_finish() -> None:
    async def main() -> None:
        server = EtcdGrpcServer(StoreBackend(), engine="h2")
        (port,) = await server.start(["http://127.0.0.1:0"])
        c = await Client.connect(port)
        _, _, t = await c.call("/etcdserverpb.KV/Put", put(b"k", b"v"))
        assert t[b"grpc-status"] == b"0"
        await server.stop(1.0)
        assert await c.goaway() == 0
        await c.closed()

    asyncio.run(main())
