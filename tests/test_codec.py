"""The shared JSON codec: every Raft value type round-trips, text is canonical, bad data is named."""

from __future__ import annotations

import json

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubeproof import codec
from kubeproof.raft import (
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    ReadState,
    Snapshot,
    SnapshotMetadata,
    SoftState,
    StateType,
)
from kubeproof.sim.config import ALL_FAULTS, DelayKind, SimConfig, config_from_json, config_to_json

ints = st.integers(min_value=0, max_value=2**63)
ids = st.integers(min_value=0, max_value=10)
blobs = st.binary(max_size=40)

entries = st.builds(Entry, term=ints, index=ints, type=st.sampled_from(EntryType), data=blobs)
hard_states = st.builds(HardState, term=ints, vote=ids, commit=ints)
id_tuples = st.lists(ids, max_size=5).map(tuple)
conf_states = st.builds(
    ConfState,
    voters=id_tuples,
    learners=id_tuples,
    voters_outgoing=id_tuples,
    learners_next=id_tuples,
    auto_leave=st.booleans(),
)
snapshots = st.builds(
    Snapshot,
    data=blobs,
    metadata=st.builds(SnapshotMetadata, conf_state=conf_states, index=ints, term=ints),
)
messages = st.builds(
    Message,
    type=st.sampled_from(MessageType),
    to=ids,
    from_=ids,
    term=ints,
    log_term=ints,
    index=ints,
    entries=st.lists(entries, max_size=4).map(tuple),
    commit=ints,
    snapshot=st.none() | snapshots,
    reject=st.booleans(),
    reject_hint=ints,
    context=blobs,
)
values = st.one_of(
    entries,
    hard_states,
    conf_states,
    snapshots,
    messages,
    st.builds(ReadState, index=ints, request_ctx=blobs),
    st.builds(SoftState, lead=ids, raft_state=st.sampled_from(StateType)),
)


@given(values)
def test_round_trip_through_json_text(value: object) -> None:
    data = codec.encode(value)
    text = json.dumps(data)  # plain JSON, nothing exotic left
    assert codec.decode(json.loads(text), type(value)) == value
    assert codec.loads(codec.dumps(value), type(value)) == value


@given(values)
def test_canonical_text_is_stable(value: object) -> None:
    text = codec.dumps(value)
    assert codec.dumps(codec.loads(text, type(value))) == text
    assert text.isascii() and " " not in text.replace('" "', "")


def test_json_shape_follows_etcd_names() -> None:
    m = Message(
        type=MessageType.MsgApp,
        to=2,
        from_=1,
        term=3,
        entries=(Entry(term=3, index=7, data=b"\x00hi"),),
    )
    assert codec.encode(m) == {
        "type": "MsgApp",
        "to": 2,
        "from": 1,
        "term": 3,
        "entries": [{"term": 3, "index": 7, "data": "AGhp"}],
    }
    # Defaults are omitted, and restored on decode.
    assert codec.encode(Message(type=MessageType.MsgHeartbeat)) == {"type": "MsgHeartbeat"}
    assert codec.decode({"type": "MsgHeartbeat"}, Message) == Message(type=MessageType.MsgHeartbeat)
    assert codec.encode(StateType.Leader) == "StateLeader"


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"type": "MsgApp", "term": "3"}, "Message.term"),
        ({"type": "MsgApp", "term": True}, "Message.term"),
        ({"type": "MsgNope"}, "Message.type"),
        ({"type": "MsgApp", "context": "not base64!"}, "Message.context"),
        ({"type": "MsgApp", "bogus": 1}, "extra fields found (bogus)"),
        ({"term": 1}, "Message.type"),
        ([1, 2], "expected an object"),
        ({"type": "MsgApp", "entries": [{"term": 1}]}, "Message.entries[0].index"),
    ],
)
def test_bad_data_is_named(data: object, fragment: str) -> None:
    with pytest.raises(codec.CodecError) as err:
        codec.decode(data, Message)
    assert fragment in str(err.value)


def test_sim_config_round_trips_with_every_field() -> None:
    cfg = SimConfig(nodes=5, steps=77, faults=ALL_FAULTS, delay_kind=DelayKind.exponential)
    data = config_to_json(cfg)
    assert set(data) == {a.name for a in attrs.fields(SimConfig)}
    assert data["faults"] == ["crash", "dup", "loss", "partition", "reorder"]
    assert config_from_json(json.loads(json.dumps(data))) == cfg
    with pytest.raises(codec.CodecError, match="delay_min 50 > delay_max 20"):
        config_from_json({**data, "delay_min": 50, "delay_max": 20})
    with pytest.raises(codec.CodecError, match="Fault"):
        config_from_json({**data, "faults": ["meteor"]})
