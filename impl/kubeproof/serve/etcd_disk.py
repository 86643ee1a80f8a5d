"""A Raft member's disk: its log, hard state and snapshots, durable in its data dir.

Theory of operation
-------------------
The Raft node reads its stable log from a `MemoryStorage`; `RaftDisk` keeps
that storage and a copy of everything written to it on disk, so that a
restart rebuilds the same `MemoryStorage` (DESIGN.md: "a restart is a new
RaftNode over the same storage").  Layout of a member's data dir::

    <data-dir>/member/raft.wal            the log: one record per Ready
    <data-dir>/member/snap/<term>-<index>.snap   snapshots, one file each

The log file is `kubeproof.serve.wal`'s framed format (a CRC-32 per
record, a torn tail cut at open, damage before the tail refused with
`WALCorruptError`), format version 2 (`LOG_VERSION`): its entries may hold
proposals in `kubeproof.etcd.proposal`'s binary format 1.  A version 1 log
(written before that format existed: JSON proposals only) is read as it is
and marked version 2 when opened, so a program that knows only JSON
proposals refuses it instead of applying nothing.  Each record is the
durable part of one `Ready`, as a sequence of tagged items, big-endian:

    b"S" index:u64 term:u64               a snapshot received from the leader
                                          (its file is written and synced first)
    b"E" n:u32 then n times               entries; each overwrites the log from
       term:u64 index:u64 type:u8         its index on, as MemoryStorage.append
       len:u32 data
    b"H" term:u64 vote:u64 commit:u64     the hard state
    b"F" len:u32 json                     the conf state (kubeproof.codec JSON)

Replaying the records in order into a fresh `MemoryStorage` gives back the
storage as it was after the last synced record.  `save(ready)` appends one
record and, when ``ready.must_sync`` (or a snapshot) says so, fsyncs before
returning: the caller sends the Ready's messages only after that, which is
Raft's persist-before-send rule.  `prepare_write(ready)` splits the disk
half of that in two: the record is encoded and framed at once, on the
caller's thread, and what it returns does only the system calls (write,
fsync, and the snapshot file if any), so that a server can run it on a
worker thread without that thread holding Python's GIL for long.

Snapshot files are written to a temporary name, fsynced, renamed and the
directory fsynced, so a snapshot file either exists whole or not at all;
each carries a magic, its length and a CRC-32, and one that fails them is
refused (`SnapshotCorruptError`).  A record naming a snapshot file that is
missing is corruption too.

Compaction: `compact(index, conf_state, data)` makes a snapshot at an
applied index and then rewrites the log as a new file holding only that
snapshot, the hard state and the entries after it (written aside, fsynced,
renamed over the old one), so the log does not grow without bound.  Older
snapshot files are deleted once the new log is in place.
"""

from __future__ import annotations

import contextlib
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

from kubeproof import codec
from kubeproof.raft import (
    ConfState,
    Entry,
    EntryType,
    HardState,
    MemoryStorage,
    Ready,
    Snapshot,
    SnapshotMetadata,
)

from .wal import WALCorruptError, WriteAheadLog, frame

__all__ = [
    "LOG_VERSION",
    "DiskCorruptError",
    "RaftDisk",
    "SnapshotCorruptError",
    "read_snapshot_file",
    "write_snapshot_file",
]

LOG_VERSION = 2
"""The raft.wal format written; versions 1 and 2 are read (see the module docstring)."""
LOG_VERSIONS = (1, 2)

SNAP_MAGIC = b"KPSNAP\x00\x01"
_SNAP_HEAD = struct.Struct(">QI")  # payload length, crc32
_U64x2 = struct.Struct(">QQ")
_U64x3 = struct.Struct(">QQQ")
_ENTRY_HEAD = struct.Struct(">QQBI")
_U32 = struct.Struct(">I")

_ENTRY_TYPES = (EntryType.EntryNormal, EntryType.EntryConfChange, EntryType.EntryConfChangeV2)
_ENTRY_CODES = {t: i for i, t in enumerate(_ENTRY_TYPES)}


class DiskCorruptError(Exception):
    """A member's data dir holds something a crash cannot explain."""


class SnapshotCorruptError(DiskCorruptError):
    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        super().__init__(f"snapshot file {path} is corrupt: {reason}")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


# ----------------------------------------------------------------- snapshots


def _encode_snapshot(snap: Snapshot) -> bytes:
    meta = codec.dumps(snap.metadata).encode()
    return _U32.pack(len(meta)) + meta + snap.data


def write_snapshot_file(directory: Path, snap: Snapshot) -> Path:
    """Writes ``snap`` durably as ``<term>-<index>.snap`` and returns the path."""
    m = snap.metadata
    payload = _encode_snapshot(snap)
    path = directory / f"{m.term:016x}-{m.index:016x}.snap"
    _write_atomically(
        path, SNAP_MAGIC + _SNAP_HEAD.pack(len(payload), zlib.crc32(payload)) + payload
    )
    return path


def read_snapshot_file(path: Path) -> Snapshot:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SnapshotCorruptError(
            path, "the log names this snapshot but the file is missing"
        ) from None
    head = len(SNAP_MAGIC) + _SNAP_HEAD.size
    if len(data) < head or not data.startswith(SNAP_MAGIC):
        raise SnapshotCorruptError(path, "not a kubeproof snapshot (bad magic or too short)")
    length, crc = _SNAP_HEAD.unpack_from(data, len(SNAP_MAGIC))
    payload = data[head:]
    if len(payload) != length:
        raise SnapshotCorruptError(path, f"length {len(payload)} but header says {length}")
    if zlib.crc32(payload) != crc:
        raise SnapshotCorruptError(path, "CRC-32 mismatch")
    (mlen,) = _U32.unpack_from(payload, 0)
    try:
        meta = codec.loads(payload[4 : 4 + mlen].decode(), SnapshotMetadata)
    except (ValueError, UnicodeDecodeError) as e:
        raise SnapshotCorruptError(path, f"bad metadata: {e}") from None
    return Snapshot(data=payload[4 + mlen :], metadata=meta)


def _snap_path(directory: Path, index: int, term: int) -> Path:
    return directory / f"{term:016x}-{index:016x}.snap"


# ------------------------------------------------------------------- records


def _encode_entries(entries: tuple[Entry, ...] | list[Entry]) -> bytes:
    parts = [b"E", _U32.pack(len(entries))]
    for e in entries:
        parts.append(_ENTRY_HEAD.pack(e.term, e.index, _ENTRY_CODES[e.type], len(e.data)))
        parts.append(e.data)
    return b"".join(parts)


def _encode_hard_state(hs: HardState) -> bytes:
    return b"H" + _U64x3.pack(hs.term, hs.vote, hs.commit)


def _encode_conf_state(cs: ConfState) -> bytes:
    body = codec.dumps(cs).encode()
    return b"F" + _U32.pack(len(body)) + body


class _Item:
    __slots__ = ("kind", "value")

    def __init__(self, kind: str, value: object) -> None:
        self.kind = kind
        self.value = value


def _decode_record(rec: bytes) -> Iterator[_Item]:
    pos = 0
    end = len(rec)
    while pos < end:
        tag = rec[pos : pos + 1]
        pos += 1
        if tag == b"E":
            (n,) = _U32.unpack_from(rec, pos)
            pos += 4
            ents = []
            for _ in range(n):
                term, index, code, length = _ENTRY_HEAD.unpack_from(rec, pos)
                pos += _ENTRY_HEAD.size
                if code >= len(_ENTRY_TYPES) or pos + length > end:
                    raise ValueError(f"bad entry at byte {pos}")
                ents.append(Entry(term, index, _ENTRY_TYPES[code], rec[pos : pos + length]))
                pos += length
            yield _Item("E", ents)
        elif tag == b"H":
            term, vote, commit = _U64x3.unpack_from(rec, pos)
            pos += _U64x3.size
            yield _Item("H", HardState(term, vote, commit))
        elif tag == b"S":
            index, term = _U64x2.unpack_from(rec, pos)
            pos += _U64x2.size
            yield _Item(tag.decode(), (index, term))
        elif tag == b"F":
            (n,) = _U32.unpack_from(rec, pos)
            pos += 4
            yield _Item("F", codec.loads(rec[pos : pos + n].decode(), ConfState))
            pos += n
        else:
            raise ValueError(f"unknown item tag {tag!r} at byte {pos - 1}")


class RaftDisk:
    """A member's durable Raft state; ``storage`` is what the node reads."""

    def __init__(self, directory: Path, log: WriteAheadLog, storage: MemoryStorage) -> None:
        self.directory = directory
        self.snap_dir = directory / "snap"
        self.log = log
        self.storage = storage
        self.records = 0
        self.fsyncs = 0

    @classmethod
    def open(cls, data_dir: str | os.PathLike[str]) -> RaftDisk:
        """Opens (creating if needed) ``<data_dir>/member`` and replays it.

        A torn last record is cut; anything else damaged raises
        `WALCorruptError` or `DiskCorruptError` naming the file."""
        directory = Path(data_dir) / "member"
        snap_dir = directory / "snap"
        snap_dir.mkdir(parents=True, exist_ok=True)
        for stale in snap_dir.glob("*.tmp"):
            stale.unlink()  # a snapshot write that never finished
        stale_log = directory / "raft.wal.tmp"
        if stale_log.exists():
            stale_log.unlink()  # a log rewrite that never finished: the old log stands
        wal_path = directory / "raft.wal"
        log, records = WriteAheadLog.open(wal_path, version=LOG_VERSION, accept=LOG_VERSIONS)
        storage = MemoryStorage()
        try:
            for n, rec in enumerate(records, start=1):
                try:
                    items = list(_decode_record(rec))
                except (ValueError, struct.error) as e:
                    raise WALCorruptError(
                        str(wal_path), -1, f"record {n} does not decode: {e}"
                    ) from None
                for item in items:
                    _replay(storage, snap_dir, item)
        except BaseException:
            log.close()
            raise
        disk = cls(directory, log, storage)
        disk.records = len(records)
        return disk

    @property
    def torn_bytes_cut(self) -> int:
        return self.log.torn_bytes_cut

    def save(self, rd: Ready) -> None:
        """Makes the durable part of ``rd`` durable (fsync when it must), then
        writes it into ``storage``: `write` then `apply`."""
        self.write(rd)
        self.apply(rd)

    def write(self, rd: Ready) -> None:
        """The disk half of `save`: append ``rd``'s record and fsync when
        ``rd.must_sync`` or a snapshot says so.  Touches only the files, so a
        driver may run it in a worker thread while its loop goes on."""
        self.prepare_write(rd)[0]()

    def prepare_write(self, rd: Ready) -> tuple[Callable[[], None], bool]:
        """`write` in two halves: encodes ``rd``'s record now and returns a
        function that writes it (and the snapshot file, if any) and fsyncs
        when it must, plus whether it will fsync.  The function does little
        but system calls: a driver runs it in a worker thread.  Nothing else
        may write to the log between the two halves."""
        parts: list[bytes] = []
        synced = rd.must_sync
        snap = rd.snapshot if rd.snapshot is not None and not rd.snapshot.is_empty() else None
        if snap is not None:
            m = snap.metadata
            parts.append(b"S" + _U64x2.pack(m.index, m.term))
            synced = True
        if rd.entries:
            parts.append(_encode_entries(rd.entries))
        if rd.hard_state is not None:
            parts.append(_encode_hard_state(rd.hard_state))
        framed = frame(b"".join(parts)) if parts else b""
        log = self.log

        def run() -> None:
            if snap is not None:
                write_snapshot_file(self.snap_dir, snap)
            if framed:
                log.write_frame(framed)
                self.records += 1
                if synced:
                    log.sync()
                    self.fsyncs += 1

        return run, synced and bool(framed)

    def apply(self, rd: Ready) -> None:
        """The memory half of `save`: ``rd`` into ``storage`` (after `write`)."""
        if rd.snapshot is not None and not rd.snapshot.is_empty():
            self.storage.apply_snapshot(rd.snapshot)
        if rd.entries:
            self.storage.append(rd.entries)
        if rd.hard_state is not None:
            self.storage.set_hard_state(rd.hard_state)

    def set_conf_state(self, cs: ConfState) -> None:
        self.log.append(_encode_conf_state(cs))
        self.log.sync()
        self.storage.set_conf_state(cs)

    def compact(self, index: int, conf_state: ConfState | None, data: bytes) -> Snapshot:
        """Snapshots the state machine at applied ``index``, drops the log before
        it and makes both durable (`sync_snapshot`)."""
        self.storage.create_snapshot(index, conf_state, data)
        self.storage.compact(index)
        return self.sync_snapshot()

    def sync_snapshot(self) -> Snapshot:
        """Makes the storage's snapshot and compacted log durable: writes the
        snapshot file, then rewrites the log as that snapshot, the hard state
        and the entries still held after it (see the module docstring).  For
        a caller that snapshotted ``storage`` itself (as `kubeproof.etcd.Member`
        does).  `prepare_snapshot` + `write_snapshot` in one call."""
        snap, record = self.prepare_snapshot()
        self.write_snapshot(snap, record)
        return snap

    def prepare_snapshot(self) -> tuple[Snapshot, bytes]:
        """The memory half of `sync_snapshot`: what to write (reads ``storage``)."""
        snap = self.storage.snapshot()
        m = snap.metadata
        hs, cs = self.storage.initial_state()
        # Entries the member keeps behind the snapshot for slow followers stay
        # in memory but not on disk: after a restart a follower that far
        # behind gets the snapshot instead, which Raft allows.
        ents = self.storage.entries(m.index + 1, self.storage.last_index() + 1)
        body = [b"S" + _U64x2.pack(m.index, m.term)]
        if ents:
            body.append(_encode_entries(ents))
        body.append(_encode_hard_state(hs))
        if not cs.is_empty() and cs != m.conf_state:
            body.append(_encode_conf_state(cs))
        return snap, b"".join(body)

    def write_snapshot(self, snap: Snapshot, record: bytes) -> None:
        """The disk half of `sync_snapshot` (files only: may run in a worker
        thread while no `write` runs)."""
        write_snapshot_file(self.snap_dir, snap)
        self._rewrite(record)
        m = snap.metadata
        keep = _snap_path(self.snap_dir, m.index, m.term).name
        for old in self.snap_dir.glob("*.snap"):
            if old.name != keep:
                old.unlink()

    def _rewrite(self, record: bytes) -> None:
        wal_path = self.directory / "raft.wal"
        tmp = self.directory / "raft.wal.tmp"
        new, _ = WriteAheadLog.open(tmp, version=LOG_VERSION)
        new.append(record)
        new.close()  # fsyncs
        self.log.close()
        os.replace(tmp, wal_path)
        _fsync_dir(self.directory)
        self.log, _ = WriteAheadLog.open(wal_path, version=LOG_VERSION, accept=LOG_VERSIONS)
        self.records = 1
        self.fsyncs += 1

    def size(self) -> int:
        """Bytes on disk (the log and the snapshots), for Status's dbSize."""
        total = self.log.written
        for p in self.snap_dir.glob("*.snap"):
            with contextlib.suppress(FileNotFoundError):  # removed by a compaction
                total += p.stat().st_size
        return total

    def close(self) -> None:
        self.log.close()


def _replay(storage: MemoryStorage, snap_dir: Path, item: _Item) -> None:
    if item.kind == "E":
        assert isinstance(item.value, list)
        storage.append(item.value)
    elif item.kind == "H":
        assert isinstance(item.value, HardState)
        storage.set_hard_state(item.value)
    elif item.kind == "F":
        assert isinstance(item.value, ConfState)
        storage.set_conf_state(item.value)
    else:
        assert isinstance(item.value, tuple)
        index, term = item.value
        snap = read_snapshot_file(_snap_path(snap_dir, index, term))
        if snap.metadata.index != index or snap.metadata.term != term:
            raise SnapshotCorruptError(
                _snap_path(snap_dir, index, term),
                f"holds index {snap.metadata.index} term {snap.metadata.term}",
            )
        storage.apply_snapshot(snap)
