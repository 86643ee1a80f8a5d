"""The encodings of a log entry's proposal (kubeproof.etcd.proposal): binary format 1,
JSON format 0 (what older logs hold), and what each refuses."""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubeproof.etcd import (
    ClientRequest,
    ClientResponse,
    KVStateMachine,
    LeaseExpire,
    Member,
    MemberConfig,
    Proposal,
    ProposalError,
    decode_proposal,
    encode_proposal,
    encode_proposal_json,
)
from kubeproof.etcd.proposal import _HEAD, _PUT
from kubeproof.mvcc import (
    CompactionRequest,
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    LeaseGrantRequest,
    LeaseKeepAliveRequest,
    LeaseRevokeRequest,
    PutRequest,
    RangeRequest,
    SortOrder,
    SortTarget,
    TxnRequest,
)
from kubeproof.raft import Entry, MemoryStorage, RaftConfig

I64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
KEYS = st.binary(max_size=12)


def _ranges() -> st.SearchStrategy[RangeRequest]:
    return st.builds(
        RangeRequest,
        key=KEYS,
        range_end=KEYS,
        limit=I64,
        revision=I64,
        sort_order=st.sampled_from(SortOrder),
        sort_target=st.sampled_from(SortTarget),
        serializable=st.booleans(),
        keys_only=st.booleans(),
        count_only=st.booleans(),
        min_mod_revision=I64,
        max_mod_revision=I64,
        min_create_revision=I64,
        max_create_revision=I64,
    )


def _puts() -> st.SearchStrategy[PutRequest]:
    return st.builds(
        PutRequest,
        key=KEYS,
        value=st.binary(max_size=40),
        lease=I64,
        prev_kv=st.booleans(),
        ignore_value=st.booleans(),
        ignore_lease=st.booleans(),
    )


def _deletes() -> st.SearchStrategy[DeleteRangeRequest]:
    return st.builds(DeleteRangeRequest, key=KEYS, range_end=KEYS, prev_kv=st.booleans())


def _compares() -> st.SearchStrategy[Compare]:
    return st.builds(
        Compare,
        key=KEYS,
        target=st.sampled_from(CompareTarget),
        result=st.sampled_from(CompareResult),
        version=I64,
        create_revision=I64,
        mod_revision=I64,
        value=KEYS,
        lease=I64,
        range_end=KEYS,
    )


def _txns() -> st.SearchStrategy[TxnRequest]:
    ops = st.one_of(_ranges(), _puts(), _deletes())
    flat = st.builds(
        TxnRequest,
        compare=st.lists(_compares(), max_size=3),
        success=st.lists(ops, max_size=3),
        failure=st.lists(ops, max_size=3),
    )
    return st.recursive(
        flat,
        lambda inner: st.builds(
            TxnRequest,
            compare=st.lists(_compares(), max_size=2),
            success=st.lists(st.one_of(ops, inner), max_size=3),
            failure=st.lists(st.one_of(ops, inner), max_size=3),
        ),
        max_leaves=4,
    )


@st.composite
def proposals(draw: st.DrawFn) -> Proposal:
    ids = st.integers(min_value=1, max_value=2**63 - 1)
    c, q, a = draw(ids), draw(ids), draw(st.integers(min_value=0, max_value=2**63 - 1))
    kind = draw(st.sampled_from(range(8)))
    if kind == 0:
        return Proposal(c, q, a, put=draw(_puts()))
    if kind == 1:
        return Proposal(c, q, a, delete_range=draw(_deletes()))
    if kind == 2:
        return Proposal(c, q, a, txn=draw(_txns()))
    if kind == 3:
        return Proposal(
            c, q, a, compaction=CompactionRequest(revision=draw(I64), physical=draw(st.booleans()))
        )
    if kind == 4:
        return Proposal(c, q, a, lease_grant=LeaseGrantRequest(ttl=draw(I64), id=draw(I64)))
    if kind == 5:
        return Proposal(c, q, a, lease_revoke=LeaseRevokeRequest(id=draw(I64)))
    if kind == 6:
        return Proposal(c, q, a, lease_keep_alive=LeaseKeepAliveRequest(id=draw(I64)))
    return Proposal(expire=LeaseExpire(draw(I64), draw(I64), draw(st.text(max_size=20))))


@settings(max_examples=300)
@given(proposals())
def test_both_formats_round_trip(p: Proposal) -> None:
    data = encode_proposal(p)
    text_ok = all(not 0xD800 <= ord(ch) <= 0xDFFF for ch in (p.expire.token if p.expire else ""))
    assert data[0] == (0x01 if text_ok else 0x7B)  # format 1 whenever it can
    assert decode_proposal(data) == p
    old = encode_proposal_json(p)
    assert old[:1] == b"{"
    assert decode_proposal(old) == p


# Bytes the JSON-only versions wrote (format 0): logs holding them must replay as they did.
FORMAT_0 = [
    (
        b'{"ack":1,"client_id":1,"put":{"key":"aw=="},"seq":1}',
        Proposal(1, 1, 1, put=PutRequest(key=b"k")),
    ),
    (
        b'{"ack":8,"client_id":4,"seq":9,"txn":{"compare":[{"key":"aw==","mod_revision":5,'
        b'"result":"EQUAL","target":"MOD"}],"failure":[{"request_range":{"key":"aw==","limit":2,'
        b'"range_end":"bA=="}}],"success":[{"request_put":{"key":"aw==","lease":7,"value":"eA=="}}]}}',
        Proposal(
            4,
            9,
            8,
            txn=TxnRequest(
                compare=[
                    Compare(
                        key=b"k",
                        target=CompareTarget.MOD,
                        result=CompareResult.EQUAL,
                        mod_revision=5,
                    )
                ],
                success=[PutRequest(key=b"k", value=b"x", lease=7)],
                failure=[RangeRequest(key=b"k", range_end=b"l", limit=2)],
            ),
        ),
    ),
    (
        b'{"expire":{"id":5,"token":"1:2:3","version":17}}',
        Proposal(expire=LeaseExpire(5, 17, "1:2:3")),
    ),
    (
        b'{"ack":3,"client_id":2,"lease_grant":{"id":11,"ttl":60},"seq":3}',
        Proposal(2, 3, 3, lease_grant=LeaseGrantRequest(ttl=60, id=11)),
    ),
]


@pytest.mark.parametrize(("data", "proposal"), FORMAT_0)
def test_format_0_from_older_logs_is_read(data: bytes, proposal: Proposal) -> None:
    assert decode_proposal(data) == proposal
    assert encode_proposal_json(proposal) == data


def test_format_1_bytes_are_pinned() -> None:
    p = Proposal(3, 9, 8, put=PutRequest(key=b"k", value=b"v", prev_kv=True))
    assert encode_proposal(p).hex() == (
        "01"  # format 1
        "01"  # put
        "0000000000000003" "0000000000000009" "0000000000000008"  # client, seq, ack
        "0000000000000000"  # lease
        "01"  # flags: prev_kv
        "00000001" "00000001" "6b" "76"  # key, value
    )  # fmt: skip


def test_what_format_1_cannot_hold_goes_as_format_0() -> None:
    huge = Proposal(1, 1, 1, put=PutRequest(key=b"k", lease=2**64))
    assert encode_proposal(huge)[:1] == b"{"
    assert decode_proposal(encode_proposal(huge)) == huge
    surrogate = Proposal(expire=LeaseExpire(1, 1, "\udc80"))
    assert encode_proposal(surrogate)[:1] == b"{"
    # Not exactly one request: only tests build these, and decoding refuses them.
    with pytest.raises(ProposalError, match="exactly one"):
        decode_proposal(encode_proposal(Proposal(client_id=1, seq=1)))
    two = Proposal(1, 1, 1, put=PutRequest(key=b"k"), lease_revoke=LeaseRevokeRequest(id=1))
    with pytest.raises(ProposalError, match="exactly one"):
        decode_proposal(encode_proposal(two))


def _good() -> bytes:
    txn = TxnRequest(
        compare=[Compare(key=b"k", target=CompareTarget.VALUE, result=CompareResult.LESS)],
        success=[RangeRequest(key=b"k", sort_order=SortOrder.DESCEND)],
    )
    return encode_proposal(Proposal(1, 2, 2, txn=txn))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (_good() + b"\x00", "bytes after the proposal"),
        (_good()[:-1], "not a proposal"),
        (_good()[:20], "not a proposal"),
        (b"\x01\x09" + b"\x00" * 24, "unknown kind 9"),
        (b"\x01", "not a proposal"),
        (b"\x02\x01" + b"\x00" * 24, "not a proposal"),  # an unknown format
        # a put whose flags hold an unknown bit
        (_HEAD.pack(1, 1, 1, 1, 1) + _PUT.pack(0, 8, 0, 0), "unknown flags"),
        # a put with client_id 0
        (_HEAD.pack(1, 1, 0, 1, 1) + _PUT.pack(0, 0, 0, 0), "client_id >= 1"),
        # a key longer than the data
        (_HEAD.pack(1, 1, 1, 1, 1) + _PUT.pack(0, 0, 9, 0), "past the end"),
        # a txn operation of an unknown kind
        (_HEAD.pack(1, 3, 1, 1, 1) + struct.pack(">III", 0, 1, 0) + b"\x07", "operation 7"),
    ],
)
def test_format_1_refuses_what_does_not_add_up(data: bytes, reason: str) -> None:
    with pytest.raises(ProposalError, match=reason):
        decode_proposal(data)


def test_bad_enum_index_is_refused() -> None:
    data = bytearray(_good())
    # The compare's target byte follows the 3 counts after the 26-byte head.
    data[26 + 12] = 9
    with pytest.raises(ProposalError, match="unknown compare target 9"):
        decode_proposal(bytes(data))


@settings(max_examples=100)
@given(proposals())
def test_applying_with_the_proposal_in_hand_is_applying_the_entry(p: Proposal) -> None:
    """What the proposing member does (skip decoding) changes nothing."""
    entry = Entry(term=1, index=1, data=encode_proposal(p))
    a, b = KVStateMachine(), KVStateMachine()
    assert a.apply(entry) == b.apply(entry, p)
    assert a.image() == b.image()


def test_a_member_applies_its_own_proposals_without_decoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    m = Member(MemberConfig(raft=RaftConfig(id=1, voters=(1,))), MemoryStorage(), random.Random(1))
    m.node.campaign()
    while m.has_ready():
        rd = m.ready()
        m.persist(rd)
        m.advance(rd, 0.0)
    decoded: list[bytes] = []
    real = decode_proposal

    def spy(data: bytes) -> Proposal:
        decoded.append(data)
        return real(data)

    monkeypatch.setattr("kubeproof.etcd.state_machine.decode_proposal", spy)
    m.submit(ClientRequest(PutRequest(key=b"k", value=b"v"), client_id=5, seq=1), 0.0)
    answers: list[ClientResponse] = []
    while m.has_ready():
        rd = m.ready()
        m.persist(rd)
        answers += m.advance(rd, 0.0).responses
    assert [a.seq for a in answers] == [1] and answers[0].ok
    assert decoded == []
    # A restarted member (nothing in hand) decodes the same entry to the same state.
    again = Member(MemberConfig(raft=RaftConfig(id=1, voters=(1,))), m.storage, random.Random(2))
    again.node.campaign()
    while again.has_ready():
        rd = again.ready()
        again.persist(rd)
        again.advance(rd, 0.0)
    assert len(decoded) == 1
    assert again.sm.image().store == m.sm.image().store
