"""The export thread's side of the spill directory: append, claim, send in order, account.

:class:`SpillQueue` owns this process's segments (``spill.py`` is the file format) and
turns the directory into a queue: :meth:`SpillQueue.append` writes an encoded request
(or says the disk bound is reached), :meth:`SpillQueue.send` delivers spilled
requests, oldest first, to the OTLP sinks until one asks to retry later, and
:meth:`SpillQueue.pending_records` says what is still on disk.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from torch_otel import names
from torch_otel.export.outcome import ExportOutcome
from torch_otel.export.sink import EncodedLogsRequest, Sink
from torch_otel.export.spill import (
    SEGMENT_MAX_BYTES,
    Frame,
    Segment,
    SpillError,
    claim_segment,
    create_segment,
    directory_bytes,
    segment_paths,
)
from torch_otel.stats import BridgeStats

_log = logging.getLogger("torch_otel")

CLAIM_INTERVAL_S = 5.0
"""How often the directory is looked at for segments other processes left."""

FRAME_OVERHEAD = 16


class SpillQueue:
    """Encoded export requests on disk, in order, until the collector takes them."""

    def __init__(self, directory: Path, max_bytes: int, stats: BridgeStats) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._stats = stats
        self._lock = threading.Lock()
        self._segments: list[Segment] = []
        self._current: Segment | None = None
        self._sequence = 0
        self._bytes = 0
        self._last_claim = float("-inf")
        self._reported: set[str] = set()
        self._torn_counted: set[Path] = set()
        self._done_sinks: dict[tuple[Path, int], set[int]] = {}
        self.disabled: str | None = None
        self.full = False

    # -- lifecycle --------------------------------------------------------------------------
    def open(self) -> bool:
        """Create the directory and a first segment; on failure warn once, stay memory-only."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._bytes = directory_bytes(self.directory)
            self._rotate()
        except (OSError, SpillError) as error:
            self._disable(str(error) if isinstance(error, SpillError) else error.strerror)
            return False
        return True

    def close(self) -> None:
        """Release this process's segments (left on disk if not delivered)."""
        with self._lock:
            for segment in self._segments:
                if next(segment.frames(), None) is None:
                    segment.remove()  # delivered (a torn tail was counted when reached)
                else:
                    segment.close()
            self._segments = []
            self._current = None

    def reset_after_fork(self) -> None:
        """A forked child writes its own segments; the parent keeps (and sends) its own.

        The child's copies of the parent's descriptors are closed: the parent's locks
        stay (they belong to the parent's descriptors), and end with the parent.
        """
        self._lock = threading.Lock()
        for segment in self._segments:
            segment.close()
        self._segments = []
        self._current = None
        self._done_sinks = {}
        if self.disabled is None:
            self.open()

    # -- writing ----------------------------------------------------------------------------
    def append(self, request: EncodedLogsRequest) -> bool:
        """Spill one request; False when the disk bound is reached or the disk fails."""
        size = len(request.payload) + FRAME_OVERHEAD
        with self._lock:
            if self.disabled is not None:
                return False
            if self._bytes + size > self.max_bytes:
                self._bytes = directory_bytes(self.directory)  # others may have sent theirs
                if self._bytes + size > self.max_bytes:
                    self.full = True
                    return False
            self.full = False
            try:
                if self._current is None or self._current.size + size > SEGMENT_MAX_BYTES:
                    self._rotate()
                assert self._current is not None
                self._current.append(request.record_count, request.payload)
            except (OSError, SpillError) as error:
                self._disable(str(error) if isinstance(error, SpillError) else error.strerror)
                return False
            self._bytes += size
        self._stats.count_spilled(request.record_count)
        return True

    def _rotate(self) -> None:
        self._sequence += 1
        self._current = create_segment(self.directory, self._sequence)
        self._segments.append(self._current)

    def _disable(self, reason: str | None) -> None:
        self.disabled = reason or "unknown error"
        _log.warning(
            "torch-otel: spill directory %s unusable (%s); keeping records in memory only",
            self.directory,
            self.disabled,
        )

    # -- sending ------------------------------------------------------------------------------
    def send(self, sinks: Sequence[Sink], keep_going: Callable[[], bool]) -> ExportOutcome:
        """Deliver spilled requests in order; stop at a failure that may pass (returned)."""
        self._claim_orphans()
        while keep_going():
            item = self._next_frame()
            if item is None:
                return ExportOutcome.SUCCESS
            segment, frame = item
            outcome = self._deliver(segment, frame, sinks)
            if outcome is not ExportOutcome.SUCCESS:
                return outcome
        return ExportOutcome.SUCCESS

    def _deliver(self, segment: Segment, frame: Frame, sinks: Sequence[Sink]) -> ExportOutcome:
        request = EncodedLogsRequest(frame.payload, frame.records)
        done = self._done_sinks.setdefault((segment.path, frame.offset), set())
        for index, sink in enumerate(sinks):
            if index in done:
                continue
            result = sink.export(request)
            if result.outcome in (ExportOutcome.RETRYABLE, ExportOutcome.UNKNOWN):
                return result.outcome
            done.add(index)
            if result.delivered:
                rejected = min(result.rejected, frame.records)
                self._stats.count_exported(frame.records - rejected)
                if rejected:
                    self._stats.count_drop(names.DROP_PARTIALLY_REJECTED, rejected)
            else:
                self._stats.count_drop(result.reason, frame.records)
        with self._lock:
            segment.acknowledge(frame)
        del self._done_sinks[(segment.path, frame.offset)]
        return ExportOutcome.SUCCESS

    def _next_frame(self) -> tuple[Segment, Frame] | None:
        with self._lock:
            for segment in list(self._segments):
                frame = next(segment.frames(), None)
                if frame is not None:
                    return segment, frame
                if segment.torn and segment.path not in self._torn_counted:
                    self._torn_counted.add(segment.path)
                    self._stats.count_spill_torn()
                if segment is not self._current:
                    segment.remove()
                    self._segments.remove(segment)
        return None

    def _claim_orphans(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_claim < CLAIM_INTERVAL_S:
            return
        self._last_claim = now
        held = {segment.path for segment in self._segments}
        paths, others = segment_paths(self.directory)
        for name in others:
            self._report_once(f"{name}: not a torch-otel spill file (left in place)")
        for path in paths:
            if path in held:
                continue
            claimed = claim_segment(path)
            if isinstance(claimed, str):
                self._report_once(claimed)
            elif claimed is not None:
                with self._lock:
                    self._segments.append(claimed)
                    self._segments.sort(key=lambda segment: segment.path.name)

    def _report_once(self, message: str) -> None:
        if message not in self._reported:
            self._reported.add(message)
            _log.warning("torch-otel: spill directory %s: %s", self.directory, message)

    # -- accounting -------------------------------------------------------------------------
    def pending_records(self) -> int:
        """Records in this process's (own and claimed) segments not yet delivered."""
        with self._lock:
            return sum(segment.pending_records() for segment in self._segments if segment.fd >= 0)

    def has_pending(self) -> bool:
        with self._lock:
            return any(
                next(segment.frames(), None) is not None
                for segment in self._segments
                if segment.fd >= 0
            )

    def claim_now(self) -> None:
        """Look for segments other processes left, now (replay, start-up)."""
        self._claim_orphans(force=True)
