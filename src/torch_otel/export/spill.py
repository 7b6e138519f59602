"""The spill directory: export requests kept on disk until the collector takes them.

With a spill directory, every OTLP export request the bridge builds is appended to a
segment file before it is sent (a write-ahead log, as the OpenTelemetry Collector's
persistent queue keeps its sending queue on disk), and is removed once delivered. So:

* an outage costs disk, not records: the export thread keeps moving records from the
  bounded memory buffer to disk, and sends them, in order, when the collector answers;
* a crash (``kill -9``) loses at most what was still in memory: the export thread
  writes what is queued at least once a second, whatever the pacing of sending;
* what a process could not send (exit deadline, collector down) stays on disk; the
  next process with the same directory, or ``torch-otel replay DIR``, sends it.

Layout. Each process writes its own segments, ``seg-<time>-<host>-<pid>-<n>.tospill``,
holding an exclusive ``flock`` on each while it owns it; any process may claim a
segment nobody holds (its writer ended). A segment starts with a header
(:data:`SEGMENT_MAGIC`, format version) and holds frames: ``magic, record count,
payload length, CRC-32, payload`` where the payload is one serialized
``ExportLogsServiceRequest`` (resource, timestamps and attributes as they were). Progress
is kept in ``<segment>.ack`` (the offset of the first frame not yet delivered), so a
crash re-sends at most the frame in flight: delivery is at least once.

A frame torn by a crash mid-write, or failing its checksum, ends its segment: it is
counted (``spill_torn``) and the rest of that segment is skipped. A segment written by
a newer format version, and any other file, is left alone and named once.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import socket
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SEGMENT_MAGIC = b"TORCH-OTEL-SPILL\n"
FORMAT_VERSION = 1
FRAME_MAGIC = b"TOF1"
_HEADER = struct.Struct("<17sB")  # magic, version
_FRAME = struct.Struct("<4sIII")  # magic, record count, payload length, crc32
SEGMENT_SUFFIX = ".tospill"
ACK_SUFFIX = ".ack"
SEGMENT_MAX_BYTES = 16 * 1024 * 1024
_SEGMENT_NAME = re.compile(r"^seg-(\d{20})-([A-Za-z0-9_.-]{1,64})-(\d+)-(\d{6})\.tospill$")


@dataclass(frozen=True)
class Frame:
    """One spilled export request."""

    offset: int
    end: int
    records: int
    payload: bytes


class SpillError(Exception):
    """The spill directory cannot be used (unwritable, full): the bridge goes on in memory."""


class Segment:
    """One segment file this process holds (locked): written to, read from, acknowledged."""

    def __init__(self, path: Path, fd: int, *, own: bool) -> None:
        self.path = path
        self.fd = fd
        self.own = own
        """Written by this process (still growing while it is the current one)."""
        self.size = os.fstat(fd).st_size
        self.acked = _read_ack(path)
        self.torn = False

    def append(self, records: int, payload: bytes) -> None:
        header = _FRAME.pack(FRAME_MAGIC, records, len(payload), zlib.crc32(payload))
        data = header + payload
        written = 0
        while written < len(data):
            written += os.pwrite(self.fd, data[written:], self.size + written)
        self.size += len(data)

    def frames(self) -> Iterator[Frame]:
        """Frames not yet acknowledged, in order; stops (marking ``torn``) at a bad one."""
        offset = max(self.acked, _HEADER.size)
        while offset < self.size:
            header = os.pread(self.fd, _FRAME.size, offset)
            if len(header) < _FRAME.size:
                self.torn = True
                return
            magic, records, length, crc = _FRAME.unpack(header)
            payload = (
                os.pread(self.fd, length, offset + _FRAME.size) if magic == FRAME_MAGIC else b""
            )
            if magic != FRAME_MAGIC or len(payload) < length or zlib.crc32(payload) != crc:
                self.torn = True
                return
            end = offset + _FRAME.size + length
            yield Frame(offset, end, records, payload)
            offset = end

    def pending_records(self) -> int:
        return sum(frame.records for frame in self.frames())

    def acknowledge(self, frame: Frame) -> None:
        self.acked = frame.end
        _write_ack(self.path, frame.end)

    def remove(self) -> None:
        for path in (self.path, self.path.with_name(self.path.name + ACK_SUFFIX)):
            try:
                path.unlink()
            except FileNotFoundError:
                pass
        self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # also releases the flock
            self.fd = -1


def create_segment(directory: Path, sequence: int) -> Segment:
    """A new, locked segment of this process."""
    host = re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname())[:64] or "host"
    name = f"seg-{time.time_ns():020d}-{host}-{os.getpid()}-{sequence:06d}{SEGMENT_SUFFIX}"
    path = directory / name
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.pwrite(fd, _HEADER.pack(SEGMENT_MAGIC, FORMAT_VERSION), 0)
    except OSError as error:
        raise SpillError(
            f"cannot write spill directory {str(directory)!r}: {error.strerror}"
        ) from None
    return Segment(path, fd, own=True)


def claim_segment(path: Path) -> Segment | str | None:
    """Lock a segment nobody holds. None: in use (or gone); a string: why it is skipped."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        os.close(fd)
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return None  # its writer is alive (or another sender has it)
        return f"{path.name}: cannot lock: {error.strerror}"
    header = os.pread(fd, _HEADER.size, 0)
    if len(header) < _HEADER.size or header[: len(SEGMENT_MAGIC)] != SEGMENT_MAGIC:
        os.close(fd)
        return f"{path.name}: not a torch-otel spill segment (left in place)"
    version = header[len(SEGMENT_MAGIC)]
    if version > FORMAT_VERSION:
        os.close(fd)
        return (
            f"{path.name}: written by a newer torch-otel (spill format {version}, this one "
            f"reads {FORMAT_VERSION}); left in place"
        )
    return Segment(path, fd, own=False)


def segment_paths(directory: Path) -> tuple[list[Path], list[str]]:
    """Segments in the directory, oldest first, and the names of files that are not."""
    segments, others = [], []
    try:
        entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
    except OSError:
        return [], []
    for entry in entries:
        if _SEGMENT_NAME.match(entry.name):
            segments.append(Path(entry.path))
        elif not entry.name.endswith(SEGMENT_SUFFIX + ACK_SUFFIX):
            others.append(entry.name)
    return segments, others


def directory_bytes(directory: Path) -> int:
    total = 0
    try:
        for entry in os.scandir(directory):
            if entry.name.endswith(SEGMENT_SUFFIX):
                try:
                    total += entry.stat().st_size
                except OSError:
                    pass
    except OSError:
        return 0
    return total


def _read_ack(path: Path) -> int:
    try:
        data = path.with_name(path.name + ACK_SUFFIX).read_bytes()
        return int(data.decode().strip() or 0)
    except (OSError, ValueError):
        return 0


def _write_ack(path: Path, offset: int) -> None:
    ack = path.with_name(path.name + ACK_SUFFIX)
    fd = os.open(ack, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.pwrite(fd, f"{offset:020d}\n".encode(), 0)
    finally:
        os.close(fd)
