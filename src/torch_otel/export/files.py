"""The ``file`` profile's output: one append-only stream per path, shared by its signals.

The logs, spans and metrics exporters of the ``file`` profile write to one file; one
unbuffered ``O_APPEND`` write per line keeps lines whole across threads here and across
processes (ranks) appending to the same local file.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path


class LineAppendStream:
    """A text stream that appends each ``write`` to a file with one ``os.write``.

    The logs, spans and metrics exporters of the ``file`` profile share one file;
    each writes whole lines. One unbuffered ``O_APPEND`` write per line keeps
    lines whole across threads here and across processes (ranks) writing the
    same local file.
    """

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._lock = threading.Lock()
        self.closed = False

    def write(self, text: str) -> int:
        self.write_bytes(text.encode("utf-8"))
        return len(text)

    def write_bytes(self, data: bytes) -> None:
        with self._lock:
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]

    def flush(self) -> None:
        return None

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self._fd)


class OutputFiles:
    """The open output files of one bridge: one stream per path, shared by its signals."""

    def __init__(self) -> None:
        self._streams: dict[str, LineAppendStream] = {}
        self._lock = threading.Lock()

    def stream(self, path: str) -> LineAppendStream:
        key = str(Path(path).resolve())
        with self._lock:
            stream = self._streams.get(key)
            if stream is None or stream.closed:
                stream = self._streams[key] = LineAppendStream(path)
            return stream

    def forget_after_fork(self) -> None:
        """A forked child opens its own descriptors (the parent's stay the parent's)."""
        self._lock = threading.Lock()
        self._streams = {}
