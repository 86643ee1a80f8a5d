"""The write-ahead log and the durable store: torn tails cut, corruption refused, replay exact."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubeproof.mvcc import (
    Compare,
    CompareResult,
    CompareTarget,
    MVCCStore,
    PutRequest,
    RangeRequest,
)
from kubeproof.serve.durable import DurableStore, open_durable_store
from kubeproof.serve.wal import MAGIC, WALCorruptError, WriteAheadLog, scan


def _frame(payload: bytes) -> bytes:
    return struct.pack(">II", len(payload), zlib.crc32(payload)) + payload


def _write(path: Path, records: list[bytes]) -> None:
    log, got = WriteAheadLog.open(path)
    assert got == ()
    for r in records:
        log.append(r)
    log.close()


def test_records_survive_reopen(tmp_path: Path) -> None:
    p = tmp_path / "a.wal"
    _write(p, [b"one", b"two", b"three"])
    log, records = WriteAheadLog.open(p)
    assert records == (b"one", b"two", b"three")
    log.append(b"four")
    log.close()
    assert WriteAheadLog.open(p)[1] == (b"one", b"two", b"three", b"four")


def test_sync_moves_synced_to_written(tmp_path: Path) -> None:
    log, _ = WriteAheadLog.open(tmp_path / "s.wal")
    end = log.append(b"x")
    assert log.synced < end == log.written
    assert log.sync() == end
    assert log.synced == end
    log.close()


@given(
    records=st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=8),
    cut=st.integers(min_value=1, max_value=10_000),
)
def test_any_truncation_is_a_torn_tail_keeping_a_prefix(records: list[bytes], cut: int) -> None:
    # A crash can stop the file at any byte: what survives is a prefix of the
    # records, never an error, never a changed record.
    data = MAGIC + b"".join(_frame(r) for r in records)
    cut_at = max(0, len(data) - cut)
    result = scan(data[:cut_at])
    assert list(result.records) == records[: len(result.records)]
    complete = 0
    pos = len(MAGIC)
    for r in records:
        pos += 8 + len(r)
        if pos <= cut_at:
            complete += 1
    assert len(result.records) == complete


def test_torn_tail_is_cut_on_open(tmp_path: Path) -> None:
    p = tmp_path / "t.wal"
    _write(p, [b"alpha", b"beta"])
    size = p.stat().st_size
    with p.open("ab") as f:
        f.write(_frame(b"gamma")[:7])  # a crash mid-append
    log, records = WriteAheadLog.open(p)
    assert records == (b"alpha", b"beta")
    assert log.torn_bytes_cut == 7
    log.close()
    assert p.stat().st_size == size


def test_bad_crc_on_the_last_record_is_torn(tmp_path: Path) -> None:
    p = tmp_path / "c.wal"
    _write(p, [b"alpha", b"beta"])
    data = bytearray(p.read_bytes())
    data[-1] ^= 0xFF
    p.write_bytes(bytes(data))
    _, records = WriteAheadLog.open(p)
    assert records == (b"alpha",)


def test_zero_filled_tail_is_torn(tmp_path: Path) -> None:
    p = tmp_path / "z.wal"
    _write(p, [b"alpha"])
    with p.open("ab") as f:
        f.write(b"\0" * 100)
    _, records = WriteAheadLog.open(p)
    assert records == (b"alpha",)


def test_damage_before_the_last_record_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "d.wal"
    _write(p, [b"alpha", b"beta", b"gamma"])
    data = bytearray(p.read_bytes())
    data[len(MAGIC) + 8] ^= 0x01  # first byte of "alpha"
    p.write_bytes(bytes(data))
    before = p.read_bytes()
    with pytest.raises(WALCorruptError, match=r"at byte 8: record 1 fails its CRC"):
        WriteAheadLog.open(p)
    assert p.read_bytes() == before  # nothing cut, nothing rewritten


def test_foreign_file_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "f.wal"
    p.write_bytes(b"hello world, not a log")
    with pytest.raises(WALCorruptError, match="bad magic"):
        WriteAheadLog.open(p)


def test_empty_records_are_refused(tmp_path: Path) -> None:
    log, _ = WriteAheadLog.open(tmp_path / "e.wal")
    with pytest.raises(ValueError, match="must not be empty"):
        log.append(b"")
    log.close()


# ---------------------------------------------------------------------------
# The durable store


def _workload(store: MVCCStore) -> None:
    store.put(b"/registry/pods/default/a", b"v1")
    store.put(b"/registry/pods/default/b", b"v1")
    store.txn(
        compare=[
            Compare(
                b"/registry/pods/default/a", CompareTarget.MOD, CompareResult.EQUAL, mod_revision=2
            )
        ],
        success=[PutRequest(b"/registry/pods/default/a", b"v2")],
        failure=[RangeRequest(b"/registry/pods/default/a")],
    )
    # A failing guard and a read-only txn change nothing and are not logged.
    store.txn(
        compare=[
            Compare(
                b"/registry/pods/default/a", CompareTarget.MOD, CompareResult.EQUAL, mod_revision=2
            )
        ],
        success=[PutRequest(b"/registry/pods/default/a", b"lost")],
        failure=[RangeRequest(b"/registry/pods/default/a")],
    )
    lease = store.lease_grant(60, now=1000.0).id
    store.put(b"/registry/events/default/e", b"ev", lease=lease)
    store.delete_range(b"/registry/pods/default/b")
    store.delete_range(b"/registry/pods/default/none")
    store.compact(3)
    store.lease_keep_alive(lease, now=1010.0)


def _state(store: MVCCStore) -> tuple[object, ...]:
    r = store.range(b"\0", b"\0")
    return (store.revision, store.compact_revision, r.kvs, store.lease_leases().leases)


def test_durable_store_replays_to_the_same_state(tmp_path: Path) -> None:
    p = tmp_path / "store.wal"
    store, log = open_durable_store(p)
    _workload(store)
    log.close()
    reference = MVCCStore()
    _workload(reference)
    again, log2 = open_durable_store(p)
    assert _state(again) == _state(reference) == _state(store)
    # The failed-guard txn and the delete of nothing were not logged.
    assert len(WriteAheadLog.open(p)[1]) == 8
    # New writes continue at the right revision.
    assert again.put(b"k", b"v").header.revision == reference.put(b"k", b"v").header.revision
    log2.close()


def test_a_crash_mid_append_loses_only_the_unsynced_last_write(tmp_path: Path) -> None:
    p = tmp_path / "store.wal"
    store, log = open_durable_store(p)
    store.put(b"a", b"1")
    store.put(b"b", b"2")
    log.close()
    size = p.stat().st_size
    with p.open("r+b") as f:  # simulate the last write torn halfway
        f.truncate(size - 3)
    again, log2 = open_durable_store(p)
    assert [kv.key for kv in again.range(b"\0", b"\0").kvs] == [b"a"]
    log2.close()


def test_corrupt_store_log_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "store.wal"
    store, log = open_durable_store(p)
    store.put(b"a", b"1")
    store.put(b"b", b"2")
    log.close()
    data = bytearray(p.read_bytes())
    data[len(MAGIC) + 12] ^= 0x20
    p.write_bytes(bytes(data))
    with pytest.raises(WALCorruptError):
        open_durable_store(p)


def test_sink_failure_stops_the_store() -> None:
    def broken(_: bytes) -> None:
        raise OSError(28, "No space left on device")

    store = DurableStore(broken)
    with pytest.raises(RuntimeError, match="No space left"):
        store.put(b"a", b"1")
    with pytest.raises(RuntimeError, match="restart to recover"):
        store.put(b"b", b"2")


def test_wal_file_has_owner_only_permissions(tmp_path: Path) -> None:
    p = tmp_path / "perm.wal"
    WriteAheadLog.open(p)[0].close()
    assert os.stat(p).st_mode & 0o077 == 0
