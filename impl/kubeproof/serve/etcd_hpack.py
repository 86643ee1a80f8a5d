"""HPACK (RFC 7541), the header compression of HTTP/2, as much as a gRPC server needs.

Theory of operation
-------------------
`Decoder` turns the header blocks a client sends into ``(name, value)``
byte pairs.  It implements the whole decoding side of RFC 7541: integers
with an N-bit prefix (5.1), string literals, plain or Huffman coded (5.2,
Appendix B), the static table (Appendix A), the dynamic table with its
size accounting and eviction (4), and the four representations (6):
indexed, literal with incremental indexing, literal without indexing,
literal never indexed, plus dynamic table size updates (allowed only at
the start of a block, and never above the size this side announced).
Anything malformed raises `HPACKError`, which the connection answers with
a COMPRESSION_ERROR: a decoding failure leaves the dynamic table in an
unknown state, so the connection cannot go on.

The Huffman code is canonical (codes of one length are consecutive, in
symbol order, and shorter codes come first), so the table below holds only
each symbol's code length; `_huffman_codes` rebuilds the codes from them.

Decoding is cached: a block that only reads the tables (every header of it
indexed or literal without indexing) decodes to the same headers as long as
the dynamic table does not change, and a gRPC client sends the very same
block for every call of a method once its headers are in the dynamic
table.  The cache is emptied whenever the dynamic table changes.

The encoding side is `encode`: literals without indexing, the name taken
from the static table where it is there, no Huffman coding.  A server
that never adds to the peer's dynamic table never depends on the peer's
table size, and gRPC responses carry two or three short headers.
"""

from __future__ import annotations

from collections import deque

__all__ = ["STATIC_TABLE", "Decoder", "HPACKError", "encode", "huffman_decode", "huffman_encode"]


class HPACKError(ValueError):
    """A header block that does not decode (a COMPRESSION_ERROR in HTTP/2)."""


STATIC_TABLE: tuple[tuple[bytes, bytes], ...] = (
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
)
"""RFC 7541 Appendix A; index i (1-based) is ``STATIC_TABLE[i - 1]``."""

_STATIC_NAMES: dict[bytes, int] = {}
for _i, (_name, _) in enumerate(STATIC_TABLE, start=1):
    _STATIC_NAMES.setdefault(_name, _i)

# RFC 7541 Appendix B: the code length in bits of symbols 0..255 and EOS (256).
_HUFFMAN_LENGTHS: tuple[int, ...] = (
    # 0-31: control characters
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
    # 32-63: ' ' to '?'
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
    # 64-95: '@' to '_'
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
    # 96-127: '`' to DEL
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
    6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
    # 128-255
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
    # EOS
    30,
)  # fmt: skip

EOS = 256


def _huffman_codes(lengths: tuple[int, ...]) -> list[tuple[int, int]]:
    """The canonical code of every symbol: ``(code, length)``, code aligned to its LSB."""
    order = sorted(range(len(lengths)), key=lambda s: (lengths[s], s))
    codes = [(0, 0)] * len(lengths)
    code = 0
    prev = lengths[order[0]]
    for n, sym in enumerate(order):
        length = lengths[sym]
        if n:
            code = (code + 1) << (length - prev)
        codes[sym] = (code, length)
        prev = length
    return codes


HUFFMAN_CODES: tuple[tuple[int, int], ...] = tuple(_huffman_codes(_HUFFMAN_LENGTHS))
"""``HUFFMAN_CODES[sym] = (code, bits)`` for symbols 0..255 and EOS (256)."""

# A code of n bits, prefixed by a 1 bit, is one int that names both: the key
# of the decoding table.
_DECODE: dict[int, int] = {(1 << n) | c: sym for sym, (c, n) in enumerate(HUFFMAN_CODES)}
_MAX_CODE = max(_HUFFMAN_LENGTHS)


def huffman_decode(data: bytes) -> bytes:
    """RFC 7541 5.2: the padding must be fewer than 8 bits, all ones (a prefix of EOS)."""
    out = bytearray()
    acc = 1
    bits = 0
    decode = _DECODE
    for byte in data:
        for shift in (7, 6, 5, 4, 3, 2, 1, 0):
            acc = (acc << 1) | ((byte >> shift) & 1)
            bits += 1
            sym = decode.get(acc)
            if sym is not None:
                if sym == EOS:
                    raise HPACKError("Huffman string contains EOS")
                out.append(sym)
                acc = 1
                bits = 0
            elif bits >= _MAX_CODE:
                raise HPACKError("invalid Huffman code")
    if bits >= 8:
        raise HPACKError("Huffman padding longer than 7 bits")
    if acc != (1 << (bits + 1)) - 1:
        raise HPACKError("Huffman padding is not a prefix of EOS")
    return bytes(out)


def huffman_encode(data: bytes) -> bytes:
    """The Huffman coding of ``data``, padded with ones (for tests and completeness)."""
    acc = 0
    bits = 0
    for b in data:
        code, n = HUFFMAN_CODES[b]
        acc = (acc << n) | code
        bits += n
    pad = -bits % 8
    acc = (acc << pad) | ((1 << pad) - 1)
    return acc.to_bytes((bits + pad) // 8, "big")


def _integer(data: bytes, pos: int, prefix: int) -> tuple[int, int]:
    """RFC 7541 5.1: an integer whose first octet is ``data[pos]`` with a ``prefix``-bit prefix."""
    mask = (1 << prefix) - 1
    value = data[pos] & mask
    pos += 1
    if value < mask:
        return value, pos
    shift = 0
    end = len(data)
    while True:
        if pos >= end:
            raise HPACKError("integer runs past the end of the block")
        b = data[pos]
        pos += 1
        value += (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos
        if shift > 28:
            raise HPACKError("integer too large")


def encode_integer(value: int, prefix: int, first: int = 0) -> bytes:
    """RFC 7541 5.1; ``first`` holds the bits above the prefix in the first octet."""
    mask = (1 << prefix) - 1
    if value < mask:
        return bytes((first | value,))
    out = bytearray((first | mask,))
    value -= mask
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _string(data: bytes, pos: int, strings: dict[bytes, bytes]) -> tuple[bytes, int]:
    if pos >= len(data):
        raise HPACKError("string literal runs past the end of the block")
    huffman = data[pos] & 0x80
    length, pos = _integer(data, pos, 7)
    end = pos + length
    if end > len(data):
        raise HPACKError("string literal runs past the end of the block")
    raw = data[pos:end]
    if not huffman:
        return raw, end
    text = strings.get(raw)
    if text is None:
        text = huffman_decode(raw)
        if len(strings) >= 512:
            strings.clear()
        strings[raw] = text
    return text, end


def _entry_size(name: bytes, value: bytes) -> int:
    return len(name) + len(value) + 32


class Decoder:
    """One connection's decoding context (RFC 7541 2.2: one per direction)."""

    def __init__(self, max_table_size: int = 4096, max_header_list_size: int = 1 << 20) -> None:
        self.max_allowed = max_table_size
        """The SETTINGS_HEADER_TABLE_SIZE this side announced: the encoder may not exceed it."""
        self.max_size = max_table_size
        self.max_header_list_size = max_header_list_size
        self.size = 0
        self.table: deque[tuple[bytes, bytes]] = deque()
        self._blocks: dict[bytes, list[tuple[bytes, bytes]]] = {}
        self._strings: dict[bytes, bytes] = {}

    def decode(self, block: bytes) -> list[tuple[bytes, bytes]]:
        """The headers of one complete header block, in order."""
        cached = self._blocks.get(block)
        if cached is not None:
            return cached
        headers, changed = self._decode(block)
        if changed:
            self._blocks.clear()
        elif len(block) <= 1024:
            if len(self._blocks) >= 256:
                self._blocks.clear()
            self._blocks[block] = headers
        return headers

    def _get(self, index: int) -> tuple[bytes, bytes]:
        if index <= 0:
            raise HPACKError("index 0 is not a header field")
        if index <= len(STATIC_TABLE):
            return STATIC_TABLE[index - 1]
        i = index - len(STATIC_TABLE) - 1
        if i >= len(self.table):
            raise HPACKError(f"index {index} is past the end of the tables")
        return self.table[i]

    def _evict(self) -> None:
        while self.size > self.max_size:
            name, value = self.table.pop()
            self.size -= _entry_size(name, value)

    def _add(self, name: bytes, value: bytes) -> None:
        size = _entry_size(name, value)
        if size > self.max_size:
            # RFC 7541 4.4: an entry larger than the table empties it.
            self.table.clear()
            self.size = 0
            return
        self.table.appendleft((name, value))
        self.size += size
        self._evict()

    def _decode(self, block: bytes) -> tuple[list[tuple[bytes, bytes]], bool]:
        out: list[tuple[bytes, bytes]] = []
        changed = False
        pos = 0
        end = len(block)
        total = 0
        strings = self._strings
        while pos < end:
            b = block[pos]
            if b & 0x80:  # 6.1 indexed
                index, pos = _integer(block, pos, 7)
                header = self._get(index)
            elif b & 0x40:  # 6.2.1 literal with incremental indexing
                index, pos = _integer(block, pos, 6)
                if index:
                    name = self._get(index)[0]
                else:
                    name, pos = _string(block, pos, strings)
                value, pos = _string(block, pos, strings)
                header = (name, value)
                self._add(name, value)
                changed = True
            elif b & 0x20:  # 6.3 dynamic table size update
                if out:
                    raise HPACKError("a dynamic table size update after a header field")
                size, pos = _integer(block, pos, 5)
                if size > self.max_allowed:
                    raise HPACKError(
                        f"dynamic table size {size} above the {self.max_allowed} allowed"
                    )
                self.max_size = size
                self._evict()
                changed = True
                continue
            else:  # 6.2.2 without indexing (0000), 6.2.3 never indexed (0001)
                index, pos = _integer(block, pos, 4)
                if index:
                    name = self._get(index)[0]
                else:
                    name, pos = _string(block, pos, strings)
                value, pos = _string(block, pos, strings)
                header = (name, value)
            total += _entry_size(*header)
            if total > self.max_header_list_size:
                raise HPACKError("header list too large")
            out.append(header)
        return out, changed


def encode(headers: list[tuple[bytes, bytes]] | tuple[tuple[bytes, bytes], ...]) -> bytes:
    """A header block of literals without indexing (6.2.2), names from the static
    table where they are in it, strings not Huffman coded."""
    out = bytearray()
    for name, value in headers:
        index = _STATIC_NAMES.get(name, 0)
        out += encode_integer(index, 4)
        if not index:
            out += encode_integer(len(name), 7) + name
        out += encode_integer(len(value), 7) + value
    return bytes(out)
