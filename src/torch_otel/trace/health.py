"""Compile health: compile counters and durations, compiles in flight, slow compiles.

Without any ``TORCH_LOGS`` and without ``--trace``: torch's compile hooks
(``capture/_torch_compile.py``) append plain events to a queue on the compile
thread and return. A small daemon thread, ``torch-otel-compile-health``, wakes
every :attr:`CompileHealth.interval_s` and

* records the metrics of the events queued since (``health_metrics.py``), into the
  profile's meter provider or the application's global SDK one;
* checks the compile in flight: once it has run for ``slow_compile_s``
  (``TORCH_OTEL_SLOW_COMPILE_S``, default 300 s) it emits a ``torch.compile.slow``
  event, and a ``torch.compile.slow.finished`` event when it ends. Both are log
  records (event name, compile id, frame, elapsed seconds, threshold, phase when
  known) queued into the bridge's record buffer, so the export thread sends them
  like any record. The check runs on this thread, so it fires while the compile
  thread is stuck in a compile that never returns.

Nothing here changes what torch prints or adds a record torch would not print,
except these two events.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch_otel import names
from torch_otel.capture.compile_events import (
    CodeLocation,
    CompileEnded,
    CompileEvent,
    CompileFinished,
    CompileStarted,
    GraphBreak,
    frame_key,
    parse_compile_id,
)
from torch_otel.capture.records import CapturedEvent, CapturedRecord
from torch_otel.trace.health_metrics import COMPONENT, HealthInstruments

HEALTH_THREAD_NAME = "torch-otel-compile-health"
EVENT_RECORD_BYTES = 512
"""Charged per slow-compile record in the buffer on top of its body."""
MAX_INTERVAL_S = 5.0
MIN_INTERVAL_S = 0.01
MAX_QUEUED_EVENTS = 100_000
"""Events held for the health thread (about four per compile); beyond, new ones are
dropped and counted (``events_dropped``), never waited for."""

EmitRecord = Callable[[CapturedRecord, int], Any]


@dataclass
class _InFlight:
    started: CompileStarted
    rank: int | None
    slow_reported: bool = False
    phase: str | None = None


class CompileHealth:
    """Turns compile events into metrics and slow-compile events; owns its thread.

    Args:
        meter: called once, on this object's thread, for the OTel meter to record
            into (None: no metrics, slow-compile events still work).
        emit_record: queues a record for export (the bridge's buffer), or None.
        slow_compile_s: the slow-compile threshold in seconds.
        fallback_rank: the rank from the launcher's environment, for events torch
            reports before ``torch.distributed`` is initialised.
    """

    def __init__(
        self,
        *,
        meter: Callable[[], Any],
        emit_record: EmitRecord | None,
        slow_compile_s: float,
        fallback_rank: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._meter = meter
        self._emit_record = emit_record
        self.slow_compile_s = slow_compile_s
        self.fallback_rank = fallback_rank
        self._clock = clock
        self._events: deque[CompileEvent] = deque()
        self._locations: dict[str, CodeLocation] = {}
        self.slow_events = 0
        self.events_dropped = 0
        self.last_error: str | None = None
        self._init_state()

    def _init_state(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._in_flight: dict[str, _InFlight] = {}
        self._instruments: HealthInstruments | None = None
        self._meter_tried = False

    @property
    def interval_s(self) -> float:
        """How often the thread wakes: a quarter of the threshold, within 10 ms..5 s."""
        return min(max(self.slow_compile_s / 4, MIN_INTERVAL_S), MAX_INTERVAL_S)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    # -- compile thread ----------------------------------------------------------------
    def offer(self, event: CompileEvent) -> None:
        """Queue one event (a deque append: never waits; counted and dropped when full)."""
        if len(self._events) < MAX_QUEUED_EVENTS:
            self._events.append(event)
        else:
            self.events_dropped += 1

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=HEALTH_THREAD_NAME, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 1.0) -> None:
        """Stop the thread, then record what is still queued (on the caller's thread)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)
        self._thread = None
        self.process_pending()

    def prepare(self) -> None:
        """Build the meter now if anything happened (at exit, while imports still work)."""
        if self._events or self._in_flight:
            self.process_pending()

    def reinit_after_fork(self) -> None:
        """In a forked child: the parent's compiles, thread, lock and meter are not ours."""
        self._events.clear()
        self._init_state()
        self.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.process_pending()

    # -- the thread's work -------------------------------------------------------------
    def process_pending(self, now: float | None = None) -> None:
        """Record every queued event, then check the compile in flight for slowness."""
        with self._lock:
            try:
                while self._events:
                    self._handle(self._events.popleft())
                self._check_slow(self._clock() if now is None else now)
            except Exception as error:  # never let the thread die; say why in debug output
                self.last_error = f"{type(error).__name__}: {error}"

    def _instruments_or_none(self) -> HealthInstruments | None:
        if self._instruments is None and not self._meter_tried:
            self._meter_tried = True
            try:
                meter = self._meter()
                self._instruments = HealthInstruments(meter) if meter is not None else None
            except Exception as error:
                self.last_error = f"no meter: {type(error).__name__}: {error}"
        return self._instruments

    def _handle(self, event: CompileEvent) -> None:
        instruments = self._instruments_or_none()
        if getattr(event, "rank", 0) is None and self.fallback_rank is not None:
            event = event._replace(rank=self.fallback_rank)  # type: ignore[union-attr]
        if isinstance(event, CompileStarted):
            if event.code is not None:
                self._remember(event.compile_id, event.code)
            self._in_flight[event.compile_id] = _InFlight(event, event.rank)
            if instruments is not None:
                instruments.started(event.rank)
        elif isinstance(event, CompileEnded):
            self._ended(event, instruments)
        elif isinstance(event, CompileFinished):
            if event.is_runtime:
                return
            if event.code is not None:
                self._remember(event.compile_id, event.code)
            code = event.code or self._locations.get(frame_key(event.compile_id) or "")
            if instruments is not None:
                instruments.finished(event, code)
        elif isinstance(event, GraphBreak) and instruments is not None:
            instruments.graph_break(event)

    def _ended(self, event: CompileEnded, instruments: HealthInstruments | None) -> None:
        entry = self._in_flight.pop(event.compile_id, None)
        ended = [entry] if entry is not None else []
        if not ended:
            # torch runs the callbacks for the outermost compile of the process only:
            # the end it reports means no compile is running any more.
            ended = list(self._in_flight.values())
            self._in_flight.clear()
        for finished in ended:
            if instruments is not None:
                instruments.started(finished.rank, -1)
            if finished.slow_reported:
                elapsed = event.monotonic - finished.started.monotonic
                self._emit(finished, elapsed, finished=True)

    def _remember(self, compile_id: str | None, code: CodeLocation) -> None:
        key = frame_key(compile_id)
        if key is not None and key not in self._locations and len(self._locations) < 100_000:
            self._locations[key] = code

    def _check_slow(self, now: float) -> None:
        for entry in self._in_flight.values():
            phase = _current_phase(entry.started.phases)
            if phase is not None:
                entry.phase = phase
            elapsed = now - entry.started.monotonic
            if not entry.slow_reported and elapsed >= self.slow_compile_s:
                entry.slow_reported = True
                self._emit(entry, elapsed, finished=False)

    # -- slow-compile events -----------------------------------------------------------
    def _emit(self, entry: _InFlight, elapsed: float, *, finished: bool) -> None:
        if self._emit_record is None:
            return
        record = self.event_record(entry, elapsed, finished=finished)
        self._emit_record(record, len(record.message) + EVENT_RECORD_BYTES)
        self.slow_events += 1

    def event_record(self, entry: _InFlight, elapsed: float, *, finished: bool) -> CapturedRecord:
        """The ``torch.compile.slow`` (or ``.slow.finished``) log record of a compile."""
        started = entry.started
        code = started.code or self._locations.get(frame_key(started.compile_id) or "")
        attributes: dict[str, Any] = {
            names.TORCH_COMPILE_ELAPSED: round(elapsed, 3),
            names.TORCH_COMPILE_SLOW_THRESHOLD: float(self.slow_compile_s),
            names.TORCH_COMPILE_TRIGGER: started.trigger,
        }
        if entry.phase is not None:
            attributes[names.TORCH_COMPILE_PHASE] = entry.phase
        where = f"{code.function} ({code.file}:{code.line})" if code else "an unknown frame"
        phase = f", phase {entry.phase}" if entry.phase else ""
        if finished:
            name = names.EVENT_COMPILE_SLOW_FINISHED
            body = (
                f"slow compile [{started.compile_id}] of {where} finished after "
                f"{elapsed:.1f} s{phase}"
            )
        else:
            name = names.EVENT_COMPILE_SLOW
            body = (
                f"compile [{started.compile_id}] of {where} still running after "
                f"{elapsed:.1f} s (threshold {self.slow_compile_s:g} s{phase})"
            )
        return CapturedRecord(
            names.INSTRUMENTATION_NAME,
            logging.INFO if finished else logging.WARNING,
            time.time(),
            body,
            code.file if code else "",
            code.line if code else 0,
            code.function if code else None,
            started.thread_id,
            _thread_name(started.thread_id),
            parse_compile_id(started.compile_id),
            None,
            None,
            None,
            None,
            entry.rank,
            None,
            CapturedEvent(name, COMPONENT, attributes),
        )


def _current_phase(phases: Any) -> str | None:
    """The innermost phase torch has open on the compile thread (read, never written)."""
    try:
        return str(phases[-1]) if phases else None
    except (IndexError, TypeError):  # emptied while we looked
        return None


def _thread_name(thread_id: int) -> str | None:
    for thread in threading.enumerate():
        if thread.ident == thread_id:
            return thread.name
    return None
