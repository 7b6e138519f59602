"""The bounded hand-off between the compile thread and the export thread.

This is the only place the two sides meet. The compile thread calls
:meth:`RecordBuffer.offer`, which never waits: it appends, or, when the
buffer already holds its limit of records or bytes, counts the record as
dropped (reason ``queue_full``) and returns. The export thread calls
:meth:`RecordBuffer.take` to pull batches.

Sizes are the length of the rendered text plus a fixed per-record overhead
(the measured cost of the captured tuple and its queue slot): cheap to compute
on the compile thread, and a good proxy for both memory held and bytes on the
wire (torch's logs are overwhelmingly ASCII).

The byte bound covers what the export thread holds too. A batch taken for
export stays charged until :meth:`RecordBuffer.release` says it was delivered
or dropped, and while it is in flight it exists about :data:`IN_FLIGHT_FACTOR`
times (the text, its encoded request, the transport's copy); the buffer keeps
that much headroom free for the largest batch it hands out. So a stalled
collector holds at most the bound, not the bound plus what is stuck in a retry.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from torch_otel import names
from torch_otel.stats import BridgeStats

T = TypeVar("T")

RECORD_OVERHEAD_BYTES = 400
"""Bytes charged per record on top of its text (tuple, float, ints, queue slot: ~380 measured)."""

IN_FLIGHT_FACTOR = 3
"""A batch being exported exists about three times: the captured text, its encoded
request, and the transport's copy of that request while it is sent."""


class RecordBuffer(Generic[T]):
    """A FIFO bounded both in record count and in bytes; drops newest on overflow.

    Dropping the newest (rather than the oldest) keeps what is already queued
    intact, so a record counted as accepted is never silently discarded later.
    """

    def __init__(
        self,
        *,
        max_records: int,
        max_bytes: int,
        wake_records: int,
        wake_bytes: int,
        stats: BridgeStats,
        max_batch_bytes: int | None = None,
    ) -> None:
        self.max_records = max_records
        self.max_bytes = max_bytes
        # Batches are capped so that their in-flight copies fit the headroom.
        self.max_batch_bytes = min(max_batch_bytes or max_bytes, max(max_bytes // 4, 1))
        self._headroom = (IN_FLIGHT_FACTOR - 1) * self.max_batch_bytes
        self._wake_records = wake_records
        self._wake_bytes = wake_bytes
        self._stats = stats
        self._items: deque[tuple[T, int]] = deque()
        self._bytes = 0
        self._in_flight_bytes = 0
        self._lock = threading.Lock()
        self._wake_pending = False
        self._closed_reason: str | None = None
        self.full_reason = names.DROP_QUEUE_FULL
        """The drop reason when full (``spill_full`` while a spill directory is full too)."""
        self._on_wake: Callable[[], None] = _noop

    @classmethod
    def with_high_water(
        cls, *, max_records: int, max_bytes: int, max_batch_bytes: int, stats: BridgeStats,
        fraction: int,
    ) -> RecordBuffer[T]:  # fmt: skip
        """A buffer whose high-water mark is ``1/fraction`` of its bounds."""
        return cls(
            max_records=max_records,
            max_bytes=max_bytes,
            wake_records=max(max_records // fraction, 1),
            wake_bytes=max_bytes // fraction,
            stats=stats,
            max_batch_bytes=max_batch_bytes,
        )

    def set_waker(self, on_wake: Callable[[], None]) -> None:
        """Called (outside the lock) when the buffer passes its high-water mark."""
        self._on_wake = on_wake

    def above_high_water(self) -> bool:
        """Queued enough that the export thread should not wait for a pause any longer."""
        return (
            len(self._items) >= self._wake_records
            or self._bytes + self._in_flight_bytes >= self._wake_bytes
        )

    def would_overflow(self, added_records: int, added_bytes: int) -> bool:
        """Whether growing once more by this much would fill the buffer: a burst the
        export thread must start on now, not after a pause (the high-water mark covers
        the slower ones)."""
        return (
            len(self._items) + added_records >= self.max_records
            or self._bytes + self._in_flight_bytes + added_bytes >= self.max_bytes - self._headroom
        )

    def offer(self, item: T, text_length: int) -> bool:
        """Queue ``item``; ``False`` (and a counted drop) when the buffer is full or closed."""
        size = text_length + RECORD_OVERHEAD_BYTES
        with self._lock:
            if self._closed_reason is not None:
                self._stats.count_drop(self._closed_reason)
                return False
            if (
                len(self._items) >= self.max_records
                or self._bytes + self._in_flight_bytes + size > self.max_bytes - self._headroom
            ):
                self._stats.count_drop(self.full_reason)
                return False
            self._items.append((item, size))
            self._bytes += size
            self._stats.count_accepted()
            wake = not self._wake_pending and (
                len(self._items) >= self._wake_records or self._bytes >= self._wake_bytes
            )
            if wake:
                self._wake_pending = True
        if wake:
            self._on_wake()
        return True

    def take(self, max_records: int, max_bytes: int) -> tuple[list[T], int]:
        """Remove the oldest items, up to ``max_records`` and ``max_bytes``.

        Always returns at least one item when any is queued, so a single item
        larger than ``max_bytes`` still moves (it is chunked downstream). Returns
        the items and the bytes still charged for them, to :meth:`release` once
        the batch is delivered or dropped.
        """
        max_bytes = min(max_bytes, self.max_batch_bytes)
        taken: list[T] = []
        with self._lock:
            total = 0
            while self._items and len(taken) < max_records:
                item, size = self._items[0]
                if taken and total + size > max_bytes:
                    break
                self._items.popleft()
                self._bytes -= size
                total += size
                taken.append(item)
            self._in_flight_bytes += total
            self._wake_pending = False
        return taken, total

    def release(self, charged: int) -> None:
        """A taken batch is done (delivered or dropped): stop charging it."""
        with self._lock:
            self._in_flight_bytes = max(self._in_flight_bytes - charged, 0)

    def close(self, reason: str) -> None:
        """Accept nothing more: each later offer is a drop counted under ``reason``."""
        with self._lock:
            self._closed_reason = reason

    def clear(self) -> int:
        """Discard everything queued (after ``fork``: the parent sends those)."""
        with self._lock:
            count = len(self._items)
            self._items.clear()
            self._bytes = 0
            self._in_flight_bytes = 0
            self._wake_pending = False
        return count

    def reinit_after_fork(self) -> None:
        """Fresh lock and empty queue in a forked child (the parent's lock may be held)."""
        self._lock = threading.Lock()
        self._closed_reason = None
        self._items = deque()
        self._bytes = 0
        self._in_flight_bytes = 0
        self._wake_pending = False

    def __len__(self) -> int:
        return len(self._items)

    @property
    def charged_bytes(self) -> int:
        """Bytes charged now (queued records plus the batch taken for export)."""
        return self._bytes + self._in_flight_bytes

    @property
    def queued_bytes(self) -> int:
        """Bytes held now: queued records, plus the batch being exported with its copies."""
        return self._bytes + self._in_flight_bytes * IN_FLIGHT_FACTOR


def _noop() -> None:
    return None
