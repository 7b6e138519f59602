"""The export thread: from the bounded buffer to the exporters, with no silent loss.

One daemon thread per bridge pulls batches from the
:class:`~torch_otel.capture.buffer.RecordBuffer`, has them turned into export
requests bounded by bytes as well as count (so a request always fits a
collector's 4 MiB gRPC limit; see ``requests.py``), in the representation each
:class:`~torch_otel.export.sink.Sink` takes, and sends each request to every sink.

Failure handling, by what the exporter reports:

* retryable (collector down, overloaded, timing out): keep the request and try
  again with capped exponential backoff, for as long as it takes. Meanwhile new
  records keep queueing up to the buffer's bound and are counted as
  ``queue_full`` beyond it, so an outage costs at most the bound in memory and
  every record is either delivered or counted;
* permanent (the collector rejected the data): drop the request, count
  ``rejected``;
* unknown (an exporter without a status, e.g. a full disk): retry a few times,
  then count ``export_failed``.

Shutdown flushes within a deadline; what cannot be sent by then is counted as
``shutdown`` and the exporters are shut down, which aborts a request stuck on
a stalled collector.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from torch_otel import names
from torch_otel.capture.buffer import RecordBuffer
from torch_otel.capture.records import CapturedRecord
from torch_otel.export.outcome import ExportOutcome
from torch_otel.export.sink import Representation, Sink
from torch_otel.stats import BridgeStats

if TYPE_CHECKING:
    from torch_otel.export.spill_queue import SpillQueue

EXPORT_THREAD_NAME = "torch-otel-export"

Encode = Callable[[Representation, list[CapturedRecord]], list[Any]]
"""Turns a batch into export requests in a sink's representation."""


@dataclass(frozen=True)
class PipelineSettings:
    """How the export thread paces itself.

    ``pause_s`` / ``max_defer_s``: after each ``schedule_delay_s``, the thread waits
    for torch to stop logging for ``pause_s`` before it exports, so that it does
    not compete with a running compile for the GIL; it waits at most
    ``max_defer_s``, and not at all once the buffer is past its high-water mark
    (half its bounds), a flush is asked for, or the process is exiting.
    """

    schedule_delay_s: float
    max_batch_records: int
    max_batch_bytes: int
    retry_initial_s: float = 0.5
    retry_max_s: float = 30.0
    unknown_failure_attempts: int = 3
    pause_s: float = 0.2
    max_defer_s: float = 30.0
    spill_interval_s: float = 1.0
    """With a spill directory: the longest records wait in memory before reaching disk."""


class ExportPipeline:
    """Owns the export thread. ``start`` once; ``flush``/``shutdown`` from any thread.

    ``encode`` turns a batch of captured records into export requests in a
    representation: ``"sdk"`` (lists of SDK ``ReadableLogRecord``, for any OTel
    exporter) or ``"otlp"`` (pre-encoded OTLP requests, for the OTLP exporters,
    much cheaper). Each sink gets the representation it takes; each is built at
    most once per batch. ``make_sinks`` is called on first use, on the export
    thread, so a process that never logs never imports an exporter.
    """

    def __init__(
        self,
        buffer: RecordBuffer[CapturedRecord],
        encode: Encode,
        make_sinks: Callable[[], list[Sink]],
        stats: BridgeStats,
        settings: PipelineSettings,
        on_thread_start: Callable[[int], None] | None = None,
        observe: Callable[[list[CapturedRecord]], None] | None = None,
        spill: SpillQueue | None = None,
    ) -> None:
        self._buffer, self._stats, self.settings = buffer, stats, settings
        self._encode, self._make_sinks = encode, make_sinks
        self._on_thread_start, self._observe = on_thread_start, observe
        self.spill = spill
        self._sinks: list[Sink] | None = None
        self._init_state()

    def _init_state(self) -> None:
        self._wake = threading.Event()
        self._idle = threading.Condition(threading.Lock())
        self._busy = False
        self._stop = False
        self._abandon = False
        self._flush_requested = False
        self._in_flight = 0
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None
        self._buffer.set_waker(self._wake.set)
        self._send_after = 0.0  # spill mode: back off until then after a failed send
        self._retry_delay = self.settings.retry_initial_s
        self._quiet_since = (time.monotonic(), -1)  # (when, records accepted then)

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(target=self._run, name=EXPORT_THREAD_NAME, daemon=True)
        self._thread.start()

    @property
    def sinks(self) -> list[Sink]:
        if self._sinks is None:
            self._sinks = self._make_sinks()
        return self._sinks

    def flush(self, timeout_s: float) -> bool:
        """Export everything queued now; ``True`` if done before ``timeout_s``."""
        if self._thread is None or not self._thread.is_alive():
            return len(self._buffer) == 0
        deadline = time.monotonic() + timeout_s
        with self._idle:
            self._flush_requested = True
        self._wake.set()
        with self._idle:
            while len(self._buffer) or self._busy or self._flush_requested or self._spill_pending():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(min(remaining, 0.05))
                if len(self._buffer) and not self._busy:
                    self._wake.set()
        for sink in self._sinks or ():
            remaining = max(deadline - time.monotonic(), 0.0)
            sink.force_flush(remaining)
        return True

    def shutdown(self, timeout_s: float) -> None:
        """Flush within ``timeout_s``, count what is left as dropped, stop the thread.

        Never waits longer than ``timeout_s`` (plus a few milliseconds): a request
        stuck on a stalled collector is abandoned by shutting its exporter down,
        and the daemon thread is not waited for.
        """
        flushed = self.flush(timeout_s)
        self.abandon()
        for sink in self._sinks or ():
            sink.shutdown()
        thread = self._thread
        if flushed and thread is not None and thread is not threading.current_thread():
            thread.join(timeout=0.5)

    def abandon(self) -> int:
        """Stop now, without waiting: close the buffer (later records are counted
        ``after_shutdown``) and count whatever is still queued or in flight as
        ``shutdown``. Returns that count. Safe to call from a signal handler's path."""
        self._buffer.close(names.DROP_AFTER_SHUTDOWN)
        if self._spill_only():
            self._spill_leftovers()
        with self._idle:
            self._stop = True
            leftover = self._buffer.clear() * max(1, len(self._sinks or ())) + self._in_flight
            if leftover or self._busy:
                self._abandon = True  # the thread's later counts would double these
            self._in_flight = 0
        if leftover:
            self._stats.count_drop(names.DROP_SHUTDOWN, leftover)
        self._wake.set()
        return leftover

    def _spill_only(self) -> bool:
        """Every sink takes OTLP requests through the spill directory."""
        return self.spill is not None and all(s.representation == "otlp" for s in self.sinks)

    def reinit_after_fork(self) -> None:
        """In a forked child: no thread, no parent's exporters, fresh locks; restart."""
        self._sinks = None
        self._init_state()
        self.start()

    # -- the thread ------------------------------------------------------------------
    def _run(self) -> None:
        if self._on_thread_start is not None:
            self._on_thread_start(threading.get_ident())
        spill_interval = self.settings.spill_interval_s if self.spill else float("inf")
        while True:
            self._wake.wait(min(self.settings.schedule_delay_s, spill_interval))
            self._wake.clear()
            if self.spill is None:
                self._wait_for_a_pause()
            with self._idle:
                if self._stop:
                    return
                self._busy = True
            try:
                self._drain()
                if self.spill is not None:
                    self._send_spilled()
            except Exception as error:  # never let the export thread die silently
                self.last_error = f"{type(error).__name__}: {error}"
                with self._idle:
                    lost, self._in_flight = self._in_flight, 0
                self._count_unless_abandoned(dropped=lost, reason=names.DROP_EXPORT_FAILED)
            finally:
                with self._idle:
                    self._busy = False
                    if not len(self._buffer) and not self._spill_pending():
                        self._flush_requested = False
                    self._idle.notify_all()

    def _wait_for_a_pause(self) -> None:
        """Let a burst of logging (a compile) finish before exporting, within limits."""
        if not len(self._buffer):
            return
        deadline = time.monotonic() + self.settings.max_defer_s
        while not (self._flush_requested or self._stop or self._buffer.above_high_water()):
            # A full buffer stops accepting, but then it is past high water anyway.
            before, before_bytes = self._stats.records_accepted, self._buffer.charged_bytes
            if self._wake.wait(self.settings.pause_s):
                self._wake.clear()
            added = self._stats.records_accepted - before
            if not added or time.monotonic() >= deadline:
                return
            if self._buffer.would_overflow(added, self._buffer.charged_bytes - before_bytes):
                return  # a burst: waiting for its end would let it overflow the buffer

    def _drain(self) -> None:
        settings = self.settings
        while len(self._buffer):
            with self._idle:  # taken and counted in flight at once: abandon() sees either
                if self._abandon:
                    return
                captured, charged = self._buffer.take(
                    settings.max_batch_records, settings.max_batch_bytes
                )
                self._in_flight = len(captured)  # counted as lost if planning fails
            if not captured:
                return
            try:
                plan = self._plan(captured)
                del captured  # the encoded requests are all that is needed now
                with self._idle:
                    self._in_flight = sum(len(r) for _, requests in plan for r in requests)
                spilled: set[int] = set()
                for sink, requests in plan:
                    for request in requests:
                        if self._spilled(sink, request, spilled):
                            with self._idle:
                                self._in_flight = max(self._in_flight - len(request), 0)
                            continue
                        self._deliver(sink, request)
                        with self._idle:
                            self._in_flight = max(self._in_flight - len(request), 0)
                        if self._abandon:
                            return
            finally:
                self._buffer.release(charged)

    def _plan(self, captured: list[CapturedRecord]) -> list[tuple[Sink, list[Any]]]:
        """Each sink with the requests (in the representation it accepts) for this batch."""
        if self._observe is not None:
            try:
                self._observe(captured)  # compile spans and metrics, before mapping
            except Exception as error:
                self.last_error = f"compile telemetry failed: {type(error).__name__}: {error}"
        built: dict[Representation, list[Any]] = {}
        plan: list[tuple[Sink, list[Any]]] = []
        for sink in self.sinks:
            kind = sink.representation
            if kind not in built:
                try:
                    built[kind] = self._encode(kind, captured)
                except Exception as error:
                    self.last_error = f"encoding failed: {type(error).__name__}: {error}"
                    self._count_unless_abandoned(
                        dropped=len(captured), reason=names.DROP_RENDER_ERROR
                    )
                    built[kind] = []
                    continue
            requests = built[kind]
            self._stats.count_emitted(sum(len(request) for request in requests))
            plan.append((sink, requests))
        return plan

    def _deliver(self, sink: Sink, request: Any) -> None:
        """Send one request to one sink until it succeeds or is given up (and counted)."""
        attempt = 0
        delay = self.settings.retry_initial_s
        dropped_reason: str | None = None
        while not self._abandon:
            result = sink.export(request)
            if result.delivered:
                self._count_delivery(len(request), result.rejected, sink)
                return
            self.last_error = sink.last_error
            if result.outcome is ExportOutcome.PERMANENT:
                dropped_reason = result.reason
                break
            attempt += 1
            if (
                result.outcome is ExportOutcome.UNKNOWN
                and attempt >= self.settings.unknown_failure_attempts
            ):
                dropped_reason = names.DROP_EXPORT_FAILED
                break
            with self._idle:
                if self._stop:
                    dropped_reason = names.DROP_SHUTDOWN
                    break
            # Wait before retrying; shutdown() wakes us and its deadline decides.
            self._wake.wait(delay)
            self._wake.clear()
            delay = min(delay * 2, self.settings.retry_max_s)
        self._count_unless_abandoned(
            dropped=len(request), reason=dropped_reason or names.DROP_SHUTDOWN
        )

    # -- the spill directory ------------------------------------------------------------
    def _spilled(self, sink: Sink, request: Any, spilled: set[int]) -> bool:
        """Whether ``request`` for ``sink`` is (now) on disk, to be sent from there.

        An OTLP request is written once for all OTLP sinks; when the disk bound is
        reached it is delivered from memory, as without a spill directory.
        """
        if self.spill is None or sink.representation != "otlp":
            return False
        if id(request) in spilled:
            return True
        if self.spill.append(request):
            spilled.add(id(request))
            self._buffer.full_reason = names.DROP_QUEUE_FULL
            return True
        if self.spill.full:
            self._buffer.full_reason = names.DROP_SPILL_FULL
        return False

    def _send_spilled(self) -> None:
        """Send from disk, oldest first, when the pacing allows; back off on failure."""
        assert self.spill is not None
        if not self._may_send_now():
            return
        otlp = [sink for sink in self.sinks if sink.representation == "otlp"]
        started = time.monotonic()

        def keep_going() -> bool:
            # New records reach disk at least every spill interval, sending or not.
            overdue = time.monotonic() - started > self.settings.spill_interval_s
            return not self._abandon and not (overdue and len(self._buffer))

        outcome = self.spill.send(otlp, keep_going)
        if outcome is ExportOutcome.SUCCESS:
            self._retry_delay = self.settings.retry_initial_s
            return
        self.last_error = next((s.last_error for s in otlp if s.last_error), self.last_error)
        self._send_after = time.monotonic() + self._retry_delay
        self._retry_delay = min(self._retry_delay * 2, self.settings.retry_max_s)

    def _may_send_now(self) -> bool:
        """The pacing of sending from disk: after a pause in torch's logging, within limits."""
        now = time.monotonic()
        if now < self._send_after and not self._stop:
            return False
        if self._flush_requested or self._stop:
            return True
        accepted = self._stats.records_accepted
        since, seen = self._quiet_since
        if accepted != seen:
            self._quiet_since = (now, accepted)
            return now - since >= self.settings.max_defer_s
        return now - since >= self.settings.pause_s

    def _spill_pending(self) -> bool:
        return self.spill is not None and self.spill.has_pending()

    def _spill_leftovers(self) -> None:
        """At shutdown: what is still in memory goes to disk (OTLP) instead of being lost."""
        if self.spill is None or self.spill.disabled is not None:
            return
        while len(self._buffer):
            captured, charged = self._buffer.take(1 << 30, 1 << 62)
            try:
                for request in self._encode("otlp", captured) if captured else ():
                    if not self.spill.append(request):
                        self._stats.count_drop(names.DROP_SPILL_FULL, len(request))
            finally:
                self._buffer.release(charged)

    def _count_delivery(self, size: int, rejected: int, sink: Sink) -> None:
        """A delivered request; a partial success's rejected records are counted as lost."""
        rejected = min(max(rejected, 0), size)
        if rejected:
            self.last_error = sink.last_error
            self._count_unless_abandoned(dropped=rejected, reason=names.DROP_PARTIALLY_REJECTED)
        self._count_unless_abandoned(exported=size - rejected)

    def _count_unless_abandoned(
        self, *, exported: int = 0, dropped: int = 0, reason: str = ""
    ) -> None:
        with self._idle:
            if self._abandon:
                return  # shutdown() already counted these as dropped
        if exported:
            self._stats.count_exported(exported)
        if dropped:
            self._stats.count_drop(reason, dropped)
