"""HPACK (kubeproof.serve.etcd_hpack): RFC 7541's examples, Huffman coding, malformed blocks."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubeproof.serve.etcd_hpack import (
    HUFFMAN_CODES,
    STATIC_TABLE,
    Decoder,
    HPACKError,
    encode,
    encode_integer,
    huffman_decode,
    huffman_encode,
)


def test_huffman_code_is_rfc_7541_appendix_b() -> None:
    # A few codes as the RFC lists them (code aligned to the LSB, length in bits).
    listed = {
        0: (0x1FF8, 13),
        1: (0x7FFFD8, 23),
        9: (0xFFFFEA, 24),
        10: (0x3FFFFFFC, 30),
        32: (0x14, 6),
        48: (0x0, 5),
        97: (0x3, 5),
        126: (0x1FFD, 13),
        127: (0xFFFFFFC, 28),
        153: (0x1FFFDC, 21),
        203: (0x7FFFFDE, 27),
        220: (0xFFFFFFD, 28),
        255: (0x3FFFFEE, 26),
        256: (0x3FFFFFFF, 30),
    }
    for sym, code in listed.items():
        assert HUFFMAN_CODES[sym] == code, sym
    # A complete prefix code: Kraft's sum is exactly 1.
    assert sum(Fraction(1, 2**n) for _, n in HUFFMAN_CODES) == 1
    assert len(STATIC_TABLE) == 61


@pytest.mark.parametrize(
    ("text", "coded"),
    [  # RFC 7541 C.4 and C.6
        (b"www.example.com", "f1e3c2e5f23a6ba0ab90f4ff"),
        (b"no-cache", "a8eb10649cbf"),
        (b"custom-key", "25a849e95ba97d7f"),
        (b"custom-value", "25a849e95bb8e8b4bf"),
        (b"302", "6402"),
        (b"private", "aec3771a4b"),
    ],
)
def test_huffman_examples(text: bytes, coded: str) -> None:
    assert huffman_encode(text).hex() == coded
    assert huffman_decode(bytes.fromhex(coded)) == text


@given(st.binary(max_size=64))
def test_huffman_round_trip(data: bytes) -> None:
    assert huffman_decode(huffman_encode(data)) == data


def test_huffman_rejects_bad_padding_and_eos() -> None:
    with pytest.raises(HPACKError, match="padding"):
        huffman_decode(b"\x00")  # '0' then padding of zeros, not ones
    with pytest.raises(HPACKError, match="padding"):
        huffman_decode(huffman_encode(b"a") + b"\xff")  # 8+ bits of padding
    eos = (0x3FFFFFFF << 2) | 0b11  # EOS (30 bits) padded to 32
    with pytest.raises(HPACKError, match="EOS"):
        huffman_decode(eos.to_bytes(4, "big"))


def test_rfc_7541_c3_requests_without_huffman() -> None:
    d = Decoder()
    h1 = d.decode(bytes.fromhex("828684410f7777772e6578616d706c652e636f6d"))
    assert h1 == [
        (b":method", b"GET"),
        (b":scheme", b"http"),
        (b":path", b"/"),
        (b":authority", b"www.example.com"),
    ]
    assert d.size == 57
    h2 = d.decode(bytes.fromhex("828684be58086e6f2d6361636865"))
    assert h2 == [*h1, (b"cache-control", b"no-cache")]
    assert d.size == 110
    h3 = d.decode(bytes.fromhex("828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565"))
    assert h3 == [
        (b":method", b"GET"),
        (b":scheme", b"https"),
        (b":path", b"/index.html"),
        (b":authority", b"www.example.com"),
        (b"custom-key", b"custom-value"),
    ]
    assert d.size == 164
    assert list(d.table) == [
        (b"custom-key", b"custom-value"),
        (b"cache-control", b"no-cache"),
        (b":authority", b"www.example.com"),
    ]


def test_rfc_7541_c4_requests_with_huffman() -> None:
    d = Decoder()
    assert d.decode(bytes.fromhex("828684418cf1e3c2e5f23a6ba0ab90f4ff"))[-1] == (
        b":authority",
        b"www.example.com",
    )
    assert d.decode(bytes.fromhex("828684be5886a8eb10649cbf"))[-1] == (
        b"cache-control",
        b"no-cache",
    )
    h3 = d.decode(bytes.fromhex("828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf"))
    assert h3[-1] == (b"custom-key", b"custom-value")
    assert d.size == 164


def test_eviction_with_a_small_table() -> None:
    d = Decoder(max_table_size=100)
    d.decode(b"\x40" + bytes((3,)) + b"aaa" + bytes((10,)) + b"x" * 10)  # 45 bytes
    d.decode(b"\x40" + bytes((3,)) + b"bbb" + bytes((10,)) + b"y" * 10)  # 90 in all
    d.decode(b"\x40" + bytes((3,)) + b"ccc" + bytes((10,)) + b"z" * 10)  # evicts aaa
    assert [n for n, _ in d.table] == [b"ccc", b"bbb"]
    assert d.size == 90
    # An entry larger than the whole table empties it.
    d.decode(b"\x40" + bytes((3,)) + b"ddd" + encode_integer(100, 7) + b"w" * 100)
    assert not d.table and d.size == 0
    # A size update shrinks the table, evicting what no longer fits.
    d.decode(b"\x40\x03eee\x0a" + b"v" * 10)
    d.decode(b"\x20")
    assert not d.table and d.max_size == 0


def test_a_cached_block_follows_the_dynamic_table() -> None:
    d = Decoder()
    d.decode(b"\x40\x01a\x011")  # a: 1 at index 62
    read62 = b"\xbe"
    assert d.decode(read62) == [(b"a", b"1")]
    assert d.decode(read62) == [(b"a", b"1")]  # the cached answer
    d.decode(b"\x40\x01b\x012")  # now b: 2 is at 62
    assert d.decode(read62) == [(b"b", b"2")]


@pytest.mark.parametrize(
    ("block", "reason"),
    [
        (b"\x80", "index 0"),
        (b"\xbe", "past the end"),  # 62: the dynamic table is empty
        (b"\xff", "past the end of the block"),  # integer continuation missing
        (b"\xff\xff\xff\xff\xff\xff\x7f", "too large"),
        (b"\x40\x05ab", "past the end of the block"),  # string shorter than its length
        (b"\x3f\xe2\x1f", "above the"),  # a size update to 4097
        (b"\x82\x20", "after a header field"),
        (b"\x40\x81\x00\x00", "padding"),  # Huffman name of zero bits + bad pad
    ],
)
def test_malformed_blocks(block: bytes, reason: str) -> None:
    with pytest.raises(HPACKError, match=reason):
        Decoder().decode(block)


def test_header_list_size_limit() -> None:
    d = Decoder(max_header_list_size=100)
    with pytest.raises(HPACKError, match="too large"):
        d.decode(encode([(b"x-big", b"v" * 200)]))


@given(
    st.lists(
        st.tuples(
            st.sampled_from([b":status", b"content-type", b"grpc-status", b"x-custom"]),
            st.binary(max_size=300),
        ),
        max_size=8,
    )
)
def test_encode_round_trips(headers: list[tuple[bytes, bytes]]) -> None:
    assert Decoder().decode(encode(headers)) == headers
