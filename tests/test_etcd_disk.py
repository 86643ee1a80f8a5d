"""A Raft member's disk (kubeproof.serve.etcd_disk): restart, torn tail, corruption, fsync,
log format versions."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from kubeproof.etcd import ClientRequest, Member, MemberConfig, Proposal, encode_proposal_json
from kubeproof.mvcc import PutRequest, RangeRequest
from kubeproof.raft import ConfState, Entry, HardState, RaftConfig, RaftNode, Ready, Snapshot
from kubeproof.raft.types import SnapshotMetadata
from kubeproof.serve.etcd_disk import (
    RaftDisk,
    SnapshotCorruptError,
    _encode_entries,
    _encode_hard_state,
)
from kubeproof.serve.wal import MAGIC, WALCorruptError, WriteAheadLog, magic


def _drain(node: RaftNode, disk: RaftDisk) -> None:
    while node.has_ready():
        rd = node.ready()
        disk.save(rd)
        node.advance(rd)


def _write_log(data_dir: Path, n: int) -> tuple[HardState, list[Entry]]:
    """A one-member log with n proposals, closed again."""
    disk = RaftDisk.open(data_dir)
    node = RaftNode(RaftConfig(id=1, voters=(1,)), disk.storage, random.Random(1))
    node.campaign()
    _drain(node, disk)
    for i in range(n):
        node.propose(b"value-%d" % i)
        _drain(node, disk)
    hs = disk.storage.hard_state
    ents = disk.storage.entries(1, disk.storage.last_index() + 1)
    disk.close()
    return hs, ents


def test_restart_recovers_log_and_hard_state(tmp_path: Path) -> None:
    hs, ents = _write_log(tmp_path, 5)
    assert len(ents) == 6  # the leader's empty entry and five proposals
    disk = RaftDisk.open(tmp_path)
    assert disk.storage.hard_state == hs
    assert disk.storage.entries(1, disk.storage.last_index() + 1) == ents
    # A node over the reopened disk resumes where it was.
    node = RaftNode(RaftConfig(id=1, voters=(1,)), disk.storage, random.Random(2))
    assert node.term == hs.term
    assert node.commit == hs.commit
    disk.close()


def test_overwrite_survives_restart(tmp_path: Path) -> None:
    """A follower's log is overwritten from a conflicting index; the disk must replay that."""
    disk = RaftDisk.open(tmp_path)
    disk.save(Ready(entries=tuple(Entry(term=1, index=i) for i in (1, 2, 3)), must_sync=True))
    disk.save(Ready(entries=(Entry(term=2, index=2, data=b"new"),), must_sync=True))
    disk.close()
    disk = RaftDisk.open(tmp_path)
    assert disk.storage.entries(1, 3) == [Entry(1, 1), Entry(2, 2, data=b"new")]
    assert disk.storage.last_index() == 2
    disk.close()


def test_torn_tail_is_cut(tmp_path: Path) -> None:
    _hs, ents = _write_log(tmp_path, 5)
    wal = tmp_path / "member" / "raft.wal"
    size = wal.stat().st_size
    # A crash in the middle of the last append: half a frame on disk.
    with open(wal, "r+b") as f:
        f.truncate(size - 5)
    disk = RaftDisk.open(tmp_path)
    assert disk.torn_bytes_cut > 0
    # The last record (the last Ready) is gone, everything before it is intact.
    got = disk.storage.entries(1, disk.storage.last_index() + 1)
    assert got == ents[: len(got)]
    assert len(got) >= len(ents) - 1
    cut_size = wal.stat().st_size
    assert cut_size < size - 5
    disk.close()
    # The cut was made on disk: a second open finds a clean log.
    again = RaftDisk.open(tmp_path)
    assert again.torn_bytes_cut == 0
    assert again.storage.entries(1, again.storage.last_index() + 1) == got
    again.close()


def test_garbage_appended_after_last_record_is_a_torn_tail(tmp_path: Path) -> None:
    _write_log(tmp_path, 3)
    wal = tmp_path / "member" / "raft.wal"
    with open(wal, "ab") as f:
        f.write(b"\x00\x00\x01\x00\xde\xad")  # a frame header promising more than is there
    disk = RaftDisk.open(tmp_path)
    assert disk.torn_bytes_cut == 6
    disk.close()


def test_corruption_before_the_tail_is_refused(tmp_path: Path) -> None:
    _write_log(tmp_path, 5)
    wal = tmp_path / "member" / "raft.wal"
    data = bytearray(wal.read_bytes())
    # Flip one byte inside the first record's payload (after magic and frame header).
    data[8 + 8 + 3] ^= 0xFF
    wal.write_bytes(bytes(data))
    before = wal.read_bytes()
    with pytest.raises(WALCorruptError) as info:
        RaftDisk.open(tmp_path)
    assert "raft.wal" in str(info.value)
    assert "CRC" in str(info.value)
    # Refusing must not "repair" the file: the operator decides.
    assert wal.read_bytes() == before


def test_corrupt_snapshot_is_refused(tmp_path: Path) -> None:
    disk = RaftDisk.open(tmp_path)
    node = RaftNode(RaftConfig(id=1, voters=(1,)), disk.storage, random.Random(1))
    node.campaign()
    _drain(node, disk)
    for i in range(4):
        node.propose(b"v%d" % i)
        _drain(node, disk)
    snap = disk.compact(3, ConfState(voters=(1,)), b"state-at-3")
    disk.close()
    reopened = RaftDisk.open(tmp_path)
    assert reopened.storage.snapshot() == snap
    assert reopened.storage.first_index() == 4
    reopened.close()
    (snap_file,) = (tmp_path / "member" / "snap").glob("*.snap")
    data = bytearray(snap_file.read_bytes())
    data[-1] ^= 0x01
    snap_file.write_bytes(bytes(data))
    with pytest.raises(SnapshotCorruptError, match="CRC"):
        RaftDisk.open(tmp_path)
    snap_file.unlink()
    with pytest.raises(SnapshotCorruptError, match="missing"):
        RaftDisk.open(tmp_path)


def test_snapshot_from_leader_replaces_log(tmp_path: Path) -> None:
    disk = RaftDisk.open(tmp_path)
    disk.save(Ready(entries=(Entry(1, 1), Entry(1, 2)), must_sync=True))
    snap = Snapshot(
        data=b"leader-state", metadata=SnapshotMetadata(ConfState(voters=(1, 2, 3)), 10, 3)
    )
    disk.save(Ready(snapshot=snap, hard_state=HardState(3, 0, 10)))
    disk.close()
    disk = RaftDisk.open(tmp_path)
    assert disk.storage.snapshot() == snap
    assert disk.storage.first_index() == 11
    assert disk.storage.initial_state() == (HardState(3, 0, 10), ConfState(voters=(1, 2, 3)))
    disk.close()


def test_save_fsyncs_when_ready_must_sync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    disk = RaftDisk.open(tmp_path)
    calls: list[int] = []
    real = os.fsync

    def spy(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    disk.save(Ready(entries=(Entry(1, 1),), hard_state=HardState(1, 1, 0), must_sync=True))
    assert len(calls) == 1
    # A commit-only hard state change need not be synced (etcd's MustSync rule).
    disk.save(Ready(hard_state=HardState(1, 1, 1), must_sync=False))
    assert len(calls) == 1
    disk.close()


def test_a_version_1_log_replays_and_is_marked_version_2(tmp_path: Path) -> None:
    """A log written before binary proposals (WAL format 1, JSON proposals) is read
    as it is; opening it marks it format 2, so a JSON-only program refuses it."""
    member_dir = tmp_path / "member"
    (member_dir / "snap").mkdir(parents=True)
    old, _ = WriteAheadLog.open(member_dir / "raft.wal", version=1)
    ents = [Entry(1, 1)] + [
        Entry(
            1,
            i,
            data=encode_proposal_json(
                Proposal.of(
                    ClientRequest(PutRequest(key=b"k%d" % i, value=b"v"), client_id=9, seq=i)
                )
            ),
        )
        for i in range(2, 5)
    ]
    old.append(_encode_entries(ents) + _encode_hard_state(HardState(1, 1, 4)))
    old.close()
    assert (member_dir / "raft.wal").read_bytes()[: len(MAGIC)] == MAGIC

    disk = RaftDisk.open(tmp_path)
    assert (member_dir / "raft.wal").read_bytes()[: len(MAGIC)] == magic(2)
    m = Member(MemberConfig(raft=RaftConfig(id=1, voters=(1,))), disk.storage, random.Random(1))
    m.node.campaign()
    while m.has_ready():
        rd = m.ready()
        disk.save(rd)
        m.advance(rd, 0.0)
    assert [kv.key for kv in m.store.apply_range(RangeRequest(key=b"k", range_end=b"l")).kvs] == [
        b"k2",
        b"k3",
        b"k4",
    ]
    m.submit(ClientRequest(PutRequest(key=b"k5", value=b"v"), client_id=9, seq=5), 0.0)
    while m.has_ready():
        rd = m.ready()
        disk.save(rd)
        m.advance(rd, 0.0)
    disk.close()
    # The new entry is in format 1, and the whole log replays.
    disk = RaftDisk.open(tmp_path)
    data = [e.data for e in disk.storage.entries(1, disk.storage.last_index() + 1) if e.data]
    assert len(data) == 4
    assert data[0][:1] == b"{" and data[-1][:1] == b"\x01"
    disk.close()


def test_a_log_of_an_unknown_format_is_refused(tmp_path: Path) -> None:
    member_dir = tmp_path / "member"
    member_dir.mkdir()
    (member_dir / "raft.wal").write_bytes(magic(3))
    with pytest.raises(WALCorruptError, match="format version 3, which this program does not"):
        RaftDisk.open(tmp_path)
    assert (member_dir / "raft.wal").read_bytes() == magic(3), "left untouched"


def test_prepare_write_encodes_now_and_writes_later(tmp_path: Path) -> None:
    disk = RaftDisk.open(tmp_path)
    size = disk.log.written
    write, syncs = disk.prepare_write(
        Ready(entries=(Entry(1, 1, data=b"x"),), hard_state=HardState(1, 1, 0), must_sync=True)
    )
    assert syncs and disk.log.written == size, "nothing written yet"
    write()
    assert disk.log.synced == disk.log.written > size
    write, syncs = disk.prepare_write(Ready(hard_state=HardState(1, 1, 1)))
    assert not syncs
    write()
    disk.close()
