"""gRPC over cleartext HTTP/2 (h2c, prior knowledge), served from one asyncio loop.

Theory of operation
-------------------
`GrpcH2Server` is the transport under `etcd_grpc`'s servicers when the
``h2`` engine is chosen (the default): it speaks HTTP/2 (RFC 9113) and the
gRPC wire protocol (length-prefixed messages in DATA frames, the status in
trailers), as an `asyncio.Protocol`, so a call costs a few dict look-ups
and one task instead of a trip through grpcio's completion queue, its
poller thread and its Cython callbacks; grpcio's asyncio server spent more
of the CPU per call than the whole store behind it.

The wire formats are python-hyper's libraries: ``hyperframe`` parses and
serializes every frame (and checks its length, padding and stream
association), ``hpack`` decodes the client's header blocks and encodes
ours.  What is ours is what a connection does with them: stream states,
SETTINGS, flow control, GOAWAY, and gRPC on top.  (python-hyper's ``h2``
state machine does all of that too, and was tried: it added about 100 µs
of CPU to every call, and Puts fell below half of etcd's throughput;
docs/etcd-server.md has the figures.)

Per connection (`_Connection`):

    read     the client preface, then frames (`hyperframe.frame.Frame`).
             HEADERS (+ CONTINUATION) open a stream; the header block is
             decoded with `hpack.Decoder`; ``:path`` names the method.  DATA
             carries gRPC messages (1 byte compressed flag, 4 bytes length,
             the protobuf); END_STREAM closes the client's side.  SETTINGS
             are applied and acknowledged, PING answered, WINDOW_UPDATE
             widens the send windows, RST_STREAM cancels the call,
             PRIORITY and unknown frame types are ignored, GOAWAY noted.
    call     unary methods run once their one message has arrived, as a
             task; streaming methods start at once and read their messages
             from a queue.  The handler gets a `ServicerContext` with
             grpcio's ``abort`` and ``write``, so one servicer serves both
             engines.
    answer   response HEADERS (``:status 200``, ``content-type``), DATA,
             then trailers (``grpc-status``, ``grpc-message``) with
             END_STREAM; an error before any message is a trailers-only
             response.  Everything written during one turn of the event
             loop leaves in one ``transport.write``.
    flow     DATA leaves only within the peer's connection and stream
             windows (and its max frame size); what does not fit waits
             for WINDOW_UPDATE.  Received DATA is given back to the peer
             with WINDOW_UPDATE once half a window is consumed; a peer
             that overruns a window it was given is a FLOW_CONTROL_ERROR.

HPACK: the header blocks we send are literals that are never indexed
(computed once), so the client's dynamic table never depends on us.  A
gRPC client sends the very same block for every call of a method once its
headers are in the dynamic table; a block made only of one-byte indexed
fields cannot change that table, so its decoding is kept and reused until
a block that can change the table arrives.

Errors: a malformed frame (hyperframe refuses it), a header block that
does not decode (hpack refuses it: COMPRESSION_ERROR, the dynamic table is
lost), a stream id going backwards, CONTINUATION out of place and the like
are connection errors (GOAWAY with the code, then close); a message over
the size limit answers RESOURCE_EXHAUSTED, an unknown method
UNIMPLEMENTED, a ``grpc-timeout`` that passes cancels the handler and
answers DEADLINE_EXCEEDED, an exception the handler does not turn into a
status answers UNKNOWN (and is logged), as grpcio does.

Stopping: listening stops, every connection gets GOAWAY, calls still
running after ``grace`` seconds are cancelled and the connections closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import struct
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NoReturn, cast

import grpc
from hpack import Decoder, Encoder, HPACKError, NeverIndexedHeaderTuple
from hyperframe.exceptions import HyperframeError, InvalidFrameError
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    PushPromiseFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

__all__ = [
    "GrpcH2Server",
    "Method",
    "ServicerContext",
    "percent_encode",
]

log = logging.getLogger("kubeproof.etcd.h2")

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Error codes (RFC 9113 7).
NO_ERROR = 0x0
PROTOCOL_ERROR = 0x1
FLOW_CONTROL_ERROR = 0x3
STREAM_CLOSED = 0x5
FRAME_SIZE_ERROR = 0x6
REFUSED_STREAM = 0x7
COMPRESSION_ERROR = 0x9

MAX_WINDOW = 2**31 - 1
DEFAULT_WINDOW = 65535
DEFAULT_MAX_FRAME = 16384

# What this server announces.
RECV_STREAM_WINDOW = 4 * 1024 * 1024
RECV_CONN_WINDOW = 16 * 1024 * 1024
MAX_FRAME = 1 << 20
MAX_HEADER_LIST = 64 * 1024
"""The largest header list a request may have (RFC 7541's size: names, values
and 32 bytes per field), enforced by the HPACK decoder: well above any gRPC
client's own metadata limit (grpc-core: 8 KiB by default)."""
HEADER_TABLE_SIZE = 4096
"""The HPACK dynamic table a client may use for its requests: RFC 7541's
default (so SETTINGS need not mention it), enough for a gRPC client to send
every call's headers as indexed fields."""
MAX_CONCURRENT_STREAMS = 4096

_SETTINGS = {
    SettingsFrame.MAX_CONCURRENT_STREAMS: MAX_CONCURRENT_STREAMS,
    SettingsFrame.INITIAL_WINDOW_SIZE: RECV_STREAM_WINDOW,
    SettingsFrame.MAX_FRAME_SIZE: MAX_FRAME,
    SettingsFrame.MAX_HEADER_LIST_SIZE: MAX_HEADER_LIST,
}

# gRPC status codes used here.
OK = 0
CANCELLED = 1
UNKNOWN = 2
DEADLINE_EXCEEDED = 4
RESOURCE_EXHAUSTED = 8
UNIMPLEMENTED = 12
INTERNAL = 13

_MSG_HEAD = struct.Struct(">BI")
_END_HEADERS = ("END_HEADERS",)
_END_HEADERS_STREAM = ("END_HEADERS", "END_STREAM")
_ACK = ("ACK",)

Headers = list[tuple[bytes, bytes]]


def _encode(fields: Headers) -> bytes:
    """A header block of literals never indexed: it leaves the client's
    dynamic table alone, so it can be computed once and sent on any
    connection."""
    return Encoder().encode([NeverIndexedHeaderTuple(n, v) for n, v in fields])


def _only_indexed(block: bytes) -> bool:
    """True if ``block`` is nothing but one-byte indexed fields (indices 1 to
    126), so decoding it cannot change the dynamic table."""
    return bool(block) and min(block) >= 0x81 and max(block) <= 0xFE


def _error_code(e: Exception) -> int:
    """The GOAWAY code for a connection error."""
    if isinstance(e, H2Error):
        return e.code
    if isinstance(e, HPACKError):
        # A block that does not decode leaves the dynamic table unknown.
        return COMPRESSION_ERROR
    if isinstance(e, InvalidFrameError):
        return FRAME_SIZE_ERROR  # a frame too short or long for its type
    return PROTOCOL_ERROR  # invalid values, padding, stream ids


def percent_encode(text: str) -> bytes:
    """gRPC's encoding of grpc-message: UTF-8, with '%' and bytes outside
    0x20..0x7E as %XX."""
    raw = text.encode("utf-8")
    if all(0x20 <= b <= 0x7E and b != 0x25 for b in raw):
        return raw
    return b"".join(bytes((b,)) if 0x20 <= b <= 0x7E and b != 0x25 else b"%%%02X" % b for b in raw)


_RESPONSE_HEADERS = _encode([(b":status", b"200"), (b"content-type", b"application/grpc")])
_TRAILERS_OK = _encode([(b"grpc-status", b"0")])


def _trailers(code: int, details: str) -> bytes:
    if code == OK and not details:
        return _TRAILERS_OK
    fields = [(b"grpc-status", str(code).encode())]
    if details:
        fields.append((b"grpc-message", percent_encode(details)))
    return _encode(fields)


def _trailers_only(code: int, details: str, status: bytes = b"200") -> bytes:
    fields = [(b":status", status), (b"content-type", b"application/grpc")]
    fields.append((b"grpc-status", str(code).encode()))
    if details:
        fields.append((b"grpc-message", percent_encode(details)))
    return _encode(fields)


_TIMEOUT_UNITS = {
    ord("H"): 3600.0,
    ord("M"): 60.0,
    ord("S"): 1.0,
    ord("m"): 1e-3,
    ord("u"): 1e-6,
    ord("n"): 1e-9,
}


def _parse_timeout(value: bytes) -> float | None:
    """``grpc-timeout``: up to 8 digits and a unit; None if malformed."""
    if not 2 <= len(value) <= 9 or not value[:-1].isdigit():
        return None
    unit = _TIMEOUT_UNITS.get(value[-1])
    if unit is None:
        return None
    return int(value[:-1]) * unit


class H2Error(Exception):
    """A connection error (RFC 9113 5.4.1): GOAWAY with ``code``, then close."""

    def __init__(self, code: int, message: str) -> None:
        self.code = code
        super().__init__(message)


class Abort(Exception):
    """Raised by `ServicerContext.abort`: the call ends with this status."""

    def __init__(self, code: int, details: str) -> None:
        self.code = code
        self.details = details
        super().__init__(f"{code}: {details}")


class Method:
    """One gRPC method: how to run it and how its messages are (de)serialized."""

    __slots__ = ("client_streaming", "deserialize", "handler", "serialize", "server_streaming")

    def __init__(
        self,
        handler: Callable[..., Any],
        deserialize: Callable[[bytes], Any],
        serialize: Callable[[Any], bytes],
        *,
        client_streaming: bool = False,
        server_streaming: bool = False,
    ) -> None:
        self.handler = handler
        self.deserialize = deserialize
        self.serialize = serialize
        self.client_streaming = client_streaming
        self.server_streaming = server_streaming


class _Stream:
    __slots__ = (
        "buf",
        "context",
        "done",
        "headers_sent",
        "id",
        "method",
        "pending",
        "queue",
        "recv_closed",
        "recv_consumed",
        "recv_window",
        "send_window",
        "task",
        "timer",
        "trailers",
        "writable",
    )

    def __init__(self, stream_id: int, send_window: int) -> None:
        self.id = stream_id
        self.method: Method | None = None
        self.buf = bytearray()
        self.recv_closed = False
        self.recv_window = RECV_STREAM_WINDOW
        self.recv_consumed = 0
        self.send_window = send_window
        self.pending: deque[bytes] = deque()
        self.trailers: bytes | None = None
        self.headers_sent = False
        self.done = False
        self.task: asyncio.Task[None] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.queue: asyncio.Queue[Any] | None = None
        self.context: ServicerContext | None = None
        self.writable: asyncio.Event | None = None

    def pending_bytes(self) -> int:
        return sum(len(p) for p in self.pending)


_END = object()  # end of a client stream in its queue


class ServicerContext:
    """What a handler may do with its call: grpcio's ``abort`` and ``write``."""

    __slots__ = ("_conn", "_stream")

    def __init__(self, conn: _Connection, stream: _Stream) -> None:
        self._conn = conn
        self._stream = stream

    async def abort(
        self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = ()
    ) -> NoReturn:
        raise Abort(code.value[0], details)

    async def write(self, message: Any) -> None:
        s = self._stream
        if s.done:
            return  # the call ended (reset by the client): nobody reads this
        assert s.method is not None
        self._conn.send_message(s, s.method.serialize(message))
        await self._conn.writable(s)

    def cancelled(self) -> bool:
        return self._stream.done

    def peer(self) -> str:
        return self._conn.peer


async def _requests(queue: asyncio.Queue[Any]) -> AsyncIterator[Any]:
    while True:
        item = await queue.get()
        if item is _END:
            return
        yield item


class _Connection(asyncio.Protocol):
    def __init__(self, server: GrpcH2Server) -> None:
        self.server = server
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        self.buf = bytearray()
        self.preface = False
        self.decoder = Decoder(max_header_list_size=MAX_HEADER_LIST)
        self.decoder.max_allowed_table_size = HEADER_TABLE_SIZE
        # Blocks of indexed fields only, decoded while the dynamic table holds.
        self.decoded: dict[bytes, Headers] = {}
        self.streams: dict[int, _Stream] = {}
        self.last_stream_id = 0
        self.header_block: bytearray | None = None
        self.header_stream = 0
        self.header_end_stream = False
        self.send_window = DEFAULT_WINDOW
        self.peer_initial_window = DEFAULT_WINDOW
        self.peer_max_frame = DEFAULT_MAX_FRAME
        self.recv_window = RECV_CONN_WINDOW
        self.recv_consumed = 0
        self.blocked: dict[int, _Stream] = {}
        self.out: list[bytes] = []
        self.flush_scheduled = False
        self.paused = False
        self.resumed: asyncio.Event | None = None
        self.closing = False
        self.goaway_sent = False
        self.idle = asyncio.Event()
        self.idle.set()

    # ------------------------------------------------------------ transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"ipv4:{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.server.connections.add(self)
        self.write(SettingsFrame(0, settings=dict(_SETTINGS)).serialize())
        self.write(
            WindowUpdateFrame(0, window_increment=RECV_CONN_WINDOW - DEFAULT_WINDOW).serialize()
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.server.connections.discard(self)
        for s in list(self.streams.values()):
            self._cancel(s)
        self.streams.clear()
        self.blocked.clear()
        self.idle.set()
        if self.resumed is not None:
            self.resumed.set()

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.resumed is not None:
            self.resumed.set()
            self.resumed = None

    def write(self, data: bytes) -> None:
        self.out.append(data)
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self.flush_scheduled = False
        if not self.out:
            return
        data = b"".join(self.out)
        self.out.clear()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def close(self, code: int = NO_ERROR, message: str = "") -> None:
        """GOAWAY and close: a connection error, or the server stopping."""
        if self.transport is None or self.transport.is_closing():
            return
        self.goaway(code, message)
        self.flush()
        self.transport.close()

    def goaway(self, code: int = NO_ERROR, message: str = "") -> None:
        if self.goaway_sent:
            return
        self.goaway_sent = True
        self.write(
            GoAwayFrame(
                0,
                last_stream_id=self.last_stream_id,
                error_code=code,
                additional_data=message.encode()[:256],
            ).serialize()
        )

    # -------------------------------------------------------------- reading

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        buf = self.buf
        buf += data
        try:
            pos = 0
            if not self.preface:
                if len(buf) < len(PREFACE):
                    if not PREFACE.startswith(bytes(buf)):
                        raise H2Error(PROTOCOL_ERROR, "not an HTTP/2 client preface")
                    return
                if buf[: len(PREFACE)] != PREFACE:
                    raise H2Error(PROTOCOL_ERROR, "not an HTTP/2 client preface")
                self.preface = True
                pos = len(PREFACE)
            end = len(buf)
            with memoryview(buf) as view:
                while end - pos >= 9:
                    frame, length = Frame.parse_frame_header(view[pos : pos + 9])
                    if length > MAX_FRAME:
                        raise H2Error(FRAME_SIZE_ERROR, f"frame of {length} bytes")
                    if end - pos - 9 < length:
                        break
                    frame.parse_body(view[pos + 9 : pos + 9 + length])
                    pos += 9 + length
                    self._frame(frame)
            del buf[:pos]
            self._give_back()
        except (H2Error, HyperframeError, HPACKError) as e:
            log.debug("closing connection from %s: %s", self.peer, e)
            self.closing = True
            self.close(_error_code(e), str(e))
            for s in list(self.streams.values()):
                self._cancel(s)
            self.streams.clear()

    def _frame(self, frame: Frame) -> None:
        if self.header_block is not None and not isinstance(frame, ContinuationFrame):
            raise H2Error(PROTOCOL_ERROR, "expected CONTINUATION")
        sid = frame.stream_id
        if isinstance(frame, DataFrame):
            self._data(sid, frame.data, frame.flow_controlled_length, "END_STREAM" in frame.flags)
        elif isinstance(frame, HeadersFrame):
            end_stream = "END_STREAM" in frame.flags
            if "END_HEADERS" in frame.flags:
                self._end_headers(sid, end_stream, frame.data)
            else:
                self.header_block = bytearray(frame.data)
                self.header_stream = sid
                self.header_end_stream = end_stream
        elif isinstance(frame, ContinuationFrame):
            if self.header_block is None or sid != self.header_stream:
                raise H2Error(PROTOCOL_ERROR, "CONTINUATION out of place")
            self.header_block += frame.data
            if len(self.header_block) > MAX_HEADER_LIST:
                raise H2Error(PROTOCOL_ERROR, "header block too large")
            if "END_HEADERS" in frame.flags:
                block = bytes(self.header_block)
                self.header_block = None
                self._end_headers(sid, self.header_end_stream, block)
        elif isinstance(frame, WindowUpdateFrame):
            self._window_update(sid, frame.window_increment)
        elif isinstance(frame, SettingsFrame):
            if "ACK" not in frame.flags:
                self._settings(frame.settings)
        elif isinstance(frame, PingFrame):
            if "ACK" not in frame.flags:
                self.write(PingFrame(0, opaque_data=frame.opaque_data, flags=_ACK).serialize())
        elif isinstance(frame, RstStreamFrame):
            if sid > self.last_stream_id:
                raise H2Error(PROTOCOL_ERROR, "RST_STREAM on an idle stream")
            s = self.streams.pop(sid, None)
            if s is not None:
                self.blocked.pop(sid, None)
                self._cancel(s)
                self._check_idle()
        elif isinstance(frame, PushPromiseFrame):
            raise H2Error(PROTOCOL_ERROR, "a client may not push")
        # GOAWAY: the client is leaving; it opens no new streams, the ones open
        # finish.  PRIORITY, ALTSVC and unknown frame types are ignored.

    def _decode(self, block: bytes) -> Headers:
        """The header block's fields; hpack raises on anything malformed."""
        cached = self.decoded.get(block)
        if cached is not None:
            return cached
        # raw: names and values stay bytes (a list of hpack's HeaderTuple).
        headers = cast(Headers, self.decoder.decode(block, raw=True))
        if _only_indexed(block):
            if len(self.decoded) < 64:
                self.decoded[block] = headers
        elif self.decoded:
            self.decoded.clear()  # the dynamic table may have changed
        return headers

    def _end_headers(self, sid: int, end_stream: bool, block: bytes) -> None:
        headers = self._decode(block)  # always: it may change the dynamic table
        s = self.streams.get(sid)
        if s is not None:
            # Trailers from the client: they must end its side of the stream.
            if not end_stream:
                raise H2Error(PROTOCOL_ERROR, "trailers without END_STREAM")
            self._end_of_requests(s)
            return
        if sid <= self.last_stream_id:
            # A closed stream: late trailers after this side's RST_STREAM, or a
            # client reusing an id.  Resetting a closed stream again is harmless.
            self._reset(sid, STREAM_CLOSED)
            return
        if not sid & 1:
            raise H2Error(PROTOCOL_ERROR, f"even stream id {sid} from a client")
        self.last_stream_id = sid
        if self.goaway_sent:
            self._reset(sid, REFUSED_STREAM)
            return
        if len(self.streams) >= MAX_CONCURRENT_STREAMS:
            self._reset(sid, REFUSED_STREAM)
            return
        s = _Stream(sid, self.peer_initial_window)
        self.streams[sid] = s
        self.idle.clear()
        path = b""
        method_ok = False
        content_type = b""
        timeout: float | None = None
        for name, value in headers:
            if name == b":path":
                path = value
            elif name == b":method":
                method_ok = value == b"POST"
            elif name == b"content-type":
                content_type = value
            elif name == b"grpc-timeout":
                timeout = _parse_timeout(value)
        if end_stream:
            s.recv_closed = True
        if not method_ok:
            self._finish(s, _trailers_only(INTERNAL, "gRPC requires POST", b"405"))
            return
        if not content_type.startswith(b"application/grpc"):
            self._finish(s, _trailers_only(UNKNOWN, "invalid gRPC request content-type", b"415"))
            return
        method = self.server.methods.get(path)
        if method is None:
            self._finish(
                s, _trailers_only(UNIMPLEMENTED, f"Method not found: {path.decode('latin-1')}")
            )
            return
        s.method = method
        if timeout is not None:
            s.timer = self.loop.call_later(timeout, self._deadline, s)
        if method.client_streaming:
            s.queue = asyncio.Queue()
            s.context = ServicerContext(self, s)
            s.task = self.loop.create_task(self._run_streaming(s, method))
            if s.recv_closed:
                s.queue.put_nowait(_END)
        elif s.recv_closed:
            self._finish(s, _trailers_only(INTERNAL, "the request message is missing"))

    def _data(self, sid: int, data: bytes, n: int, end_stream: bool) -> None:
        """``data``: the frame's payload without padding; ``n``: its length
        with padding, what flow control counts."""
        self.recv_window -= n
        if self.recv_window < 0:
            raise H2Error(FLOW_CONTROL_ERROR, "connection window overrun")
        self.recv_consumed += n
        s = self.streams.get(sid)
        if s is None:
            if sid > self.last_stream_id:
                raise H2Error(PROTOCOL_ERROR, "DATA on an idle stream")
            return  # closed on this side already: counted, ignored
        if s.recv_closed:
            self._reset(sid, STREAM_CLOSED)
            self._drop(s)
            return
        s.recv_window -= n
        if s.recv_window < 0:
            raise H2Error(FLOW_CONTROL_ERROR, f"stream {sid} window overrun")
        s.recv_consumed += n
        method = s.method
        if method is None or s.done:
            # Already answered (an error): the rest of the request is dropped.
            if end_stream:
                s.recv_closed = True
            return
        s.buf += data
        if method.client_streaming:
            self._deliver_messages(s, method)
            if end_stream:
                self._end_of_requests(s)
            return
        limit = self.server.max_receive_message_length
        if len(s.buf) >= 5:
            _, size = _MSG_HEAD.unpack_from(s.buf, 0)
            if size > limit or len(s.buf) > limit + 5:
                # One message too large, or more than one piling up.
                s.recv_closed = end_stream
                self._finish(s, self._too_large(max(size, len(s.buf) - 5), limit))
                return
        if end_stream:
            s.recv_closed = True
            self._start_unary(s, method)

    def _too_large(self, size: int, limit: int) -> bytes:
        return _trailers_only(
            RESOURCE_EXHAUSTED, f"Received message larger than max ({size} vs. {limit})"
        )

    def _one_message(self, s: _Stream) -> bytes | None:
        """Splits the next complete message off ``s.buf``; None if it has none yet."""
        buf = s.buf
        if len(buf) < 5:
            return None
        compressed, size = _MSG_HEAD.unpack_from(buf, 0)
        if len(buf) < 5 + size:
            return None
        if compressed:
            raise _CallError(UNIMPLEMENTED, "compressed messages are not supported")
        msg = bytes(buf[5 : 5 + size])
        del buf[: 5 + size]
        return msg

    def _start_unary(self, s: _Stream, method: Method) -> None:
        try:
            raw = self._one_message(s)
            if raw is None or s.buf:
                raise _CallError(INTERNAL, "a unary call needs exactly one request message")
            request = method.deserialize(raw)
        except _CallError as e:
            self._finish(s, _trailers_only(e.code, e.details))
            return
        except Exception as e:
            self._finish(s, _trailers_only(INTERNAL, f"cannot parse the request: {e}"))
            return
        s.context = ServicerContext(self, s)
        if method.server_streaming:
            s.task = self.loop.create_task(self._run_streaming(s, method, request))
        else:
            s.task = self.loop.create_task(self._run_unary(s, method, request))

    def _deliver_messages(self, s: _Stream, method: Method) -> None:
        assert s.queue is not None
        limit = self.server.max_receive_message_length
        try:
            while True:
                if len(s.buf) >= 5:
                    _, size = _MSG_HEAD.unpack_from(s.buf, 0)
                    if size > limit:
                        self._fail_stream(s, self._too_large(size, limit))
                        return
                raw = self._one_message(s)
                if raw is None:
                    return
                s.queue.put_nowait(method.deserialize(raw))
        except _CallError as e:
            self._fail_stream(s, _trailers_only(e.code, e.details))
        except Exception as e:
            self._fail_stream(s, _trailers_only(INTERNAL, f"cannot parse a request: {e}"))

    def _end_of_requests(self, s: _Stream) -> None:
        s.recv_closed = True
        if s.queue is not None:
            s.queue.put_nowait(_END)
        elif s.method is not None and not s.done and s.task is None:
            self._start_unary(s, s.method)

    def _give_back(self) -> None:
        """WINDOW_UPDATE for what was consumed, once half a window is."""
        if self.recv_consumed >= RECV_CONN_WINDOW // 2:
            self.write(WindowUpdateFrame(0, window_increment=self.recv_consumed).serialize())
            self.recv_window += self.recv_consumed
            self.recv_consumed = 0
        for s in self.streams.values():
            if s.recv_consumed >= RECV_STREAM_WINDOW // 2 and not s.recv_closed:
                self.write(WindowUpdateFrame(s.id, window_increment=s.recv_consumed).serialize())
                s.recv_window += s.recv_consumed
                s.recv_consumed = 0

    def _settings(self, settings: dict[int, int]) -> None:
        for key, value in settings.items():
            if key == SettingsFrame.INITIAL_WINDOW_SIZE:
                if value > MAX_WINDOW:
                    raise H2Error(FLOW_CONTROL_ERROR, "initial window too large")
                delta = value - self.peer_initial_window
                self.peer_initial_window = value
                for s in self.streams.values():
                    s.send_window += delta
                    if s.send_window > MAX_WINDOW:
                        raise H2Error(FLOW_CONTROL_ERROR, "stream window too large")
            elif key == SettingsFrame.MAX_FRAME_SIZE:
                if not DEFAULT_MAX_FRAME <= value <= 2**24 - 1:
                    raise H2Error(PROTOCOL_ERROR, f"max frame size {value}")
                self.peer_max_frame = value
            elif key == SettingsFrame.ENABLE_PUSH and value > 1:
                raise H2Error(PROTOCOL_ERROR, "ENABLE_PUSH above 1")
            # HEADER_TABLE_SIZE: this side never indexes, so any size suits it.
        self.write(SettingsFrame(0, flags=_ACK).serialize())
        self._pump_blocked()

    def _window_update(self, sid: int, inc: int) -> None:
        """``inc``: 1 to 2^31-1 (hyperframe refuses anything else)."""
        if sid == 0:
            self.send_window += inc
            if self.send_window > MAX_WINDOW:
                raise H2Error(FLOW_CONTROL_ERROR, "connection window too large")
            self._pump_blocked()
            return
        s = self.streams.get(sid)
        if s is None:
            if sid > self.last_stream_id:
                raise H2Error(PROTOCOL_ERROR, "WINDOW_UPDATE on an idle stream")
            return
        s.send_window += inc
        if s.send_window > MAX_WINDOW:
            self._reset(sid, FLOW_CONTROL_ERROR)
            self._drop(s)
            return
        if sid in self.blocked:
            self._pump(s)

    # -------------------------------------------------------------- calling

    async def _run_unary(self, s: _Stream, method: Method, request: Any) -> None:
        try:
            response = await method.handler(request, s.context)
            payload = method.serialize(response)
        except asyncio.CancelledError:
            return
        except Abort as e:
            self._fail_stream(s, _trailers_only(e.code, e.details))
            return
        except Exception as e:
            log.exception("unexpected error in %s", method.handler)
            self._fail_stream(s, _trailers_only(UNKNOWN, f"Unexpected {type(e)}: {e}"))
            return
        if s.done:
            return
        if (
            len(payload) + 5 <= min(self.send_window, s.send_window, self.peer_max_frame)
            and not self.blocked
        ):
            # The common case, in one go: headers, the message, trailers.
            n = len(payload) + 5
            self.send_window -= n
            s.send_window -= n
            self.write(
                HeadersFrame(s.id, data=_RESPONSE_HEADERS, flags=_END_HEADERS).serialize()
                + DataFrame(s.id, data=_MSG_HEAD.pack(0, len(payload)) + payload).serialize()
                + HeadersFrame(s.id, data=_TRAILERS_OK, flags=_END_HEADERS_STREAM).serialize()
            )
            self._done(s)
            return
        self.send_message(s, payload)
        s.trailers = _TRAILERS_OK
        self._pump(s)

    async def _run_streaming(self, s: _Stream, method: Method, request: Any = None) -> None:
        try:
            arg = _requests(s.queue) if s.queue is not None else request
            result = method.handler(arg, s.context)
            if inspect.isasyncgen(result):
                async for response in result:
                    if s.done:
                        return
                    self.send_message(s, method.serialize(response))
                    await self.writable(s)
            else:
                await result
        except asyncio.CancelledError:
            return
        except Abort as e:
            self._fail_stream(s, _trailers_only(e.code, e.details), e.code, e.details)
            return
        except Exception as e:
            log.exception("unexpected error in %s", method.handler)
            detail = f"Unexpected {type(e)}: {e}"
            self._fail_stream(s, _trailers_only(UNKNOWN, detail), UNKNOWN, detail)
            return
        if s.done:
            return
        if not s.headers_sent:
            self._finish(s, _trailers_only(OK, ""))
            return
        s.trailers = _TRAILERS_OK
        self._pump(s)

    # -------------------------------------------------------------- sending

    def send_message(self, s: _Stream, payload: bytes) -> None:
        if not s.headers_sent:
            s.headers_sent = True
            self.write(HeadersFrame(s.id, data=_RESPONSE_HEADERS, flags=_END_HEADERS).serialize())
        s.pending.append(_MSG_HEAD.pack(0, len(payload)) + payload)
        self._pump(s)

    async def writable(self, s: _Stream) -> None:
        """Waits while the socket is backed up or the stream holds over 1 MiB
        that its flow-control window does not let out yet."""
        while not s.done and (self.paused or s.pending_bytes() > (1 << 20)):
            if s.writable is None:
                s.writable = asyncio.Event()
            if self.paused and self.resumed is None:
                self.resumed = asyncio.Event()
            waits = [asyncio.ensure_future(s.writable.wait())]
            if self.resumed is not None:
                waits.append(asyncio.ensure_future(self.resumed.wait()))
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()
            s.writable.clear()

    def _pump(self, s: _Stream) -> None:
        """Sends what ``s`` has pending, within the windows; then its trailers."""
        if s.done:
            return
        pending = s.pending
        while pending:
            allowed = min(self.send_window, s.send_window, self.peer_max_frame)
            if allowed <= 0:
                self.blocked[s.id] = s
                return
            chunk = pending[0]
            if len(chunk) <= allowed:
                pending.popleft()
            else:
                pending[0] = chunk[allowed:]
                chunk = chunk[:allowed]
            n = len(chunk)
            self.send_window -= n
            s.send_window -= n
            self.write(DataFrame(s.id, data=chunk).serialize())
        self.blocked.pop(s.id, None)
        if s.writable is not None:
            s.writable.set()
        if s.trailers is not None:
            self.write(HeadersFrame(s.id, data=s.trailers, flags=_END_HEADERS_STREAM).serialize())
            s.trailers = None
            self._done(s)

    def _pump_blocked(self) -> None:
        for s in list(self.blocked.values()):
            if self.send_window <= 0:
                return
            self._pump(s)

    def _finish(self, s: _Stream, trailers_only: bytes) -> None:
        """Answers ``s`` with one HEADERS frame (a trailers-only response)."""
        if s.done:
            return
        self.write(HeadersFrame(s.id, data=trailers_only, flags=_END_HEADERS_STREAM).serialize())
        self._done(s)

    def _fail_stream(
        self, s: _Stream, trailers_only: bytes, code: int = UNKNOWN, details: str = ""
    ) -> None:
        """Ends ``s`` with an error status, whether or not it answered anything yet."""
        if s.done:
            return
        if not s.headers_sent:
            self._finish(s, trailers_only)
            return
        # Messages were sent: the status goes in trailers after them.
        if code == UNKNOWN and not details:
            details = "call failed"
        s.trailers = _trailers(code, details)
        self._pump(s)

    def _done(self, s: _Stream) -> None:
        """``s`` answered completely (END_STREAM sent)."""
        s.done = True
        s.pending.clear()
        self.blocked.pop(s.id, None)
        if s.timer is not None:
            s.timer.cancel()
            s.timer = None
        if s.writable is not None:
            s.writable.set()
        if not s.recv_closed:
            # The client may still be sending: tell it to stop (gRPC's way).
            self._reset(s.id, NO_ERROR)
        self.streams.pop(s.id, None)
        task = s.task
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()
        self._check_idle()

    def _drop(self, s: _Stream) -> None:
        s.done = True
        self.streams.pop(s.id, None)
        self._cancel(s)
        self._check_idle()

    def _cancel(self, s: _Stream) -> None:
        s.done = True
        s.pending.clear()
        if s.timer is not None:
            s.timer.cancel()
            s.timer = None
        if s.writable is not None:
            s.writable.set()
        if s.task is not None and not s.task.done():
            s.task.cancel()

    def _deadline(self, s: _Stream) -> None:
        s.timer = None
        if s.done:
            return
        if s.task is not None and not s.task.done():
            s.task.cancel()
        self._fail_stream(
            s,
            _trailers_only(DEADLINE_EXCEEDED, "Deadline Exceeded"),
            DEADLINE_EXCEEDED,
            "Deadline Exceeded",
        )

    def _reset(self, sid: int, code: int) -> None:
        self.write(RstStreamFrame(sid, error_code=code).serialize())

    def _check_idle(self) -> None:
        if not self.streams:
            self.idle.set()
            if self.goaway_sent and self.transport is not None:
                self.flush()
                self.transport.close()


class _CallError(Exception):
    def __init__(self, code: int, details: str) -> None:
        self.code = code
        self.details = details
        super().__init__(details)


class GrpcH2Server:
    """Serves ``methods`` (by path, ``/package.Service/Method``) on TCP ports."""

    def __init__(
        self,
        methods: dict[str, Method],
        *,
        max_receive_message_length: int = 4 * 1024 * 1024,
    ) -> None:
        self.methods: dict[bytes, Method] = {k.encode(): v for k, v in methods.items()}
        self.max_receive_message_length = max_receive_message_length
        self.connections: set[_Connection] = set()
        self._servers: list[asyncio.Server] = []

    async def start(self, addresses: list[tuple[str, int]]) -> list[int]:
        """Listens on every (host, port) (port 0: a free one); returns the ports."""
        loop = asyncio.get_running_loop()
        ports = []
        try:
            for host, port in addresses:
                server = await loop.create_server(
                    lambda: _Connection(self), host, port, reuse_address=True
                )
                self._servers.append(server)
                ports.append(server.sockets[0].getsockname()[1])
        except BaseException:
            for server in self._servers:
                server.close()
            self._servers.clear()
            raise
        return ports

    async def stop(self, grace: float | None = None) -> None:
        for server in self._servers:
            server.close()
        conns = list(self.connections)
        for c in conns:
            c.goaway()
            c._check_idle()
            c.flush()
        if grace:
            waits: list[Awaitable[Any]] = [c.idle.wait() for c in conns]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*waits), grace)
        for c in list(self.connections):
            c.close()
            c.connection_lost(None)
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self._servers.clear()
