"""An append-only write-ahead log on disk: framed records, a CRC each, fsync.

Theory of operation
-------------------
One file.  It starts with an 8-byte magic (``KPWAL``, a NUL, the format
version, a newline) so a foreign or future file is refused, not misread.
The framing is the same in every version; the version says what the
payloads may hold, which is the caller's business: a caller opens a log
with the version it writes and the versions it can read (``version``,
``accept``), and a log of an older accepted version is marked with the
newer one (its magic rewritten in place and fsynced) before anything is
appended, so that a program that only knows the older version refuses the
file rather than misreading what is appended now.  Version 1 is the
default.  Then records, each framed as

    +----------------+----------------+----------------------+
    | length (u32 BE)| crc32 (u32 BE) | payload (length B)   |
    +----------------+----------------+----------------------+

``crc32`` is zlib's CRC-32 of the payload.  Payloads are opaque bytes
(callers put JSON in them) and never empty, so an all-zero header is never
a valid record.

Writing: `append` writes one whole frame with one ``write`` and returns the
file offset its end reached; `sync` fsyncs and moves `synced` to the offset
written before the fsync began.  A record is durable once ``synced`` has
reached its end offset; callers answer their clients only after that.  The
fsync may run in another thread (the server batches many appends into one
fsync: group commit) while the event loop keeps appending.

Reading back, at open, decides between a torn tail and corruption:

| what the scan finds at offset p                           | verdict            |
| --------------------------------------------------------- | ------------------ |
| end of file                                               | clean end          |
| fewer than 8 bytes left, or a length running past the end | torn tail: cut at p|
| the last record's CRC wrong (it ends exactly at the end)  | torn tail: cut at p|
| only zero bytes from p to the end (preallocated, unwritten)| torn tail: cut at p|
| a CRC wrong on a record that is followed by more data     | corruption: refuse |
| a zero length or one over MAX_RECORD, not at the tail     | corruption: refuse |

A crash mid-append can only damage the last frame (appends are
sequential), so anything damaged before the last frame is not a crash:
it is the disk or a person, and replaying past it would silently lose or
invent history.  `WALCorruptError` names the file, the offset and the
reason; the operator decides.  A torn tail is cut (and the cut fsynced)
when the log is opened for writing.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

from attrs import frozen

HEADER = struct.Struct(">II")
MAX_RECORD = 64 * 1024 * 1024


def magic(version: int) -> bytes:
    """The 8 bytes a log of format ``version`` starts with."""
    return b"KPWAL\x00" + bytes((version,)) + b"\n"


MAGIC = magic(1)

__all__ = [
    "MAGIC",
    "MAX_RECORD",
    "WALCorruptError",
    "WALScan",
    "WriteAheadLog",
    "frame",
    "magic",
    "scan",
]


class WALCorruptError(Exception):
    """The log holds damage that a crash cannot explain; it is not replayed."""

    def __init__(self, path: str, offset: int, reason: str) -> None:
        self.path = path
        self.offset = offset
        self.reason = reason
        super().__init__(f"write-ahead log {path} is corrupt at byte {offset}: {reason}")


@frozen
class WALScan:
    """What a log's bytes hold: the intact records, where they end, and how
    many bytes after them are a torn tail (0 for a clean log)."""

    records: tuple[bytes, ...]
    valid_end: int
    torn_bytes: int
    version: int = 1


def scan(data: bytes, path: str = "<bytes>", accept: tuple[int, ...] = (1,)) -> WALScan:
    """Reads the records out of a whole log file's bytes (see the table above);
    the file must be of one of the ``accept``ed versions."""
    magics = {magic(v): v for v in accept}
    if len(data) < len(MAGIC):
        if any(m.startswith(data) for m in magics):
            # A crash while the file was being created: nothing was ever logged.
            return WALScan((), 0, len(data), max(accept))
        raise WALCorruptError(path, 0, "not a kubeproof write-ahead log (bad magic)")
    version = magics.get(bytes(data[: len(MAGIC)]))
    if version is None:
        if data[:6] == b"KPWAL\x00" and data[7:8] == b"\n":
            raise WALCorruptError(
                path,
                0,
                f"a kubeproof write-ahead log of format version {data[6]}, which this"
                f" program does not read (it reads {', '.join(map(str, accept))})",
            )
        raise WALCorruptError(path, 0, "not a kubeproof write-ahead log (bad magic or version)")
    records: list[bytes] = []
    pos = len(MAGIC)
    end = len(data)
    while pos < end:
        left = end - pos
        if left < HEADER.size:
            return WALScan(tuple(records), pos, left)
        length, crc = HEADER.unpack_from(data, pos)
        if pos + HEADER.size + length > end:
            return WALScan(tuple(records), pos, left)
        if length == 0 or length > MAX_RECORD:
            if not any(data[pos:]):
                return WALScan(tuple(records), pos, left)
            raise WALCorruptError(path, pos, f"impossible record length {length}")
        payload = data[pos + HEADER.size : pos + HEADER.size + length]
        if zlib.crc32(payload) != crc:
            if pos + HEADER.size + length == end:
                return WALScan(tuple(records), pos, left)
            raise WALCorruptError(
                path, pos, f"record {len(records) + 1} fails its CRC check and is not the last"
            )
        records.append(payload)
        pos += HEADER.size + length
    return WALScan(tuple(records), pos, 0, version)


def frame(payload: bytes) -> bytes:
    """One record as it goes into the file: length, CRC-32, payload."""
    if not payload:
        raise ValueError("a write-ahead log record must not be empty")
    if len(payload) > MAX_RECORD:
        raise ValueError(f"record of {len(payload)} bytes exceeds the {MAX_RECORD} limit")
    return HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def _fsync_dir(path: Path) -> None:
    # A new file's directory entry is durable only once the directory is synced.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class WriteAheadLog:
    """An open log: `append` frames, `sync` makes them durable.

    Use `WriteAheadLog.open(path)`, which replays and repairs first."""

    def __init__(self, path: Path, fd: int, offset: int) -> None:
        self.path = path
        self._fd = fd
        self.written = offset
        self.synced = offset
        self.torn_bytes_cut = 0

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        version: int = 1,
        accept: tuple[int, ...] | None = None,
    ) -> tuple[WriteAheadLog, tuple[bytes, ...]]:
        """Opens (creating if absent) the log at ``path`` for appending and
        returns it with the records it already held.  A torn tail is cut;
        corruption raises `WALCorruptError` and leaves the file untouched.

        ``version`` is the format written; ``accept`` (default: just
        ``version``) the formats read.  A log of an older accepted format is
        marked ``version`` before this returns."""
        readable = accept if accept is not None else (version,)
        if version not in readable:
            raise ValueError(f"version {version} must be one of the accepted {readable}")
        p = Path(path)
        created = not p.exists()
        data = b"" if created else p.read_bytes()
        result = scan(data, str(p), readable) if data else WALScan((), 0, 0, version)
        fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if result.valid_end == 0:
                # Empty or a torn magic: start the file afresh.
                os.ftruncate(fd, 0)
                os.pwrite(fd, magic(version), 0)
                os.fsync(fd)
                offset = len(MAGIC)
            else:
                offset = result.valid_end
                if result.torn_bytes:
                    os.ftruncate(fd, offset)
                    os.fsync(fd)
                if result.version != version:
                    # Same length, one sector: the old mark or the new, never half.
                    os.pwrite(fd, magic(version), 0)
                    os.fsync(fd)
            if created:
                _fsync_dir(p.parent)
            os.lseek(fd, offset, os.SEEK_SET)
        except BaseException:
            os.close(fd)
            raise
        log = cls(p, fd, offset)
        log.torn_bytes_cut = result.torn_bytes if result.valid_end else 0
        return log, result.records

    def append(self, payload: bytes) -> int:
        """Writes one record (not yet durable); returns the offset its end reached."""
        return self.write_frame(frame(payload))

    def write_frame(self, framed: bytes) -> int:
        """Writes one record already `frame`d (so that the framing can be done
        on one thread and the write on another); returns the offset its end
        reached."""
        view = memoryview(framed)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        self.written += len(framed)
        return self.written

    def sync(self) -> int:
        """fsyncs; everything appended before the call is durable on return.
        Safe to call from a worker thread while appends go on."""
        target = self.written
        if self.synced < target:
            os.fsync(self._fd)
            self.synced = max(self.synced, target)
        return self.synced

    def close(self) -> None:
        if self._fd >= 0:
            try:
                self.sync()
            finally:
                os.close(self._fd)
                self._fd = -1
