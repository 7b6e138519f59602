"""The export pipeline against fake sinks: retry, backoff, give-up and shutdown accounting.

No torch, no network: records go into a real :class:`RecordBuffer`, the
"encoding" wraps each batch as one request, and the sinks answer what each test
needs. Every test ends by checking the invariant the pipeline exists for:
every accepted record is exported or counted as dropped, once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from torch_otel.capture.buffer import RecordBuffer
from torch_otel.capture.records import CapturedRecord
from torch_otel.export.outcome import ExportOutcome, ExportResult
from torch_otel.export.pipeline import ExportPipeline, PipelineSettings
from torch_otel.stats import BridgeStats


def record(text: str) -> CapturedRecord:
    return CapturedRecord(
        "torch._dynamo.guards.__guards", 10, time.time(), text, "guards.py", 1, "f",
        1, "MainThread", None, None, None, None, None, None,
    )  # fmt: skip


class FakeSink:
    """Answers from a script (then SUCCESS); remembers what it accepted and when it was asked."""

    representation = "sdk"

    def __init__(
        self, *answers: ExportOutcome | ExportResult, block: threading.Event | None = None
    ) -> None:
        self.answers = list(answers)
        self.block = block
        self.calls: list[float] = []
        self.delivered: list[str] = []
        self.last_error: str | None = None
        self.shut_down = False

    def export(self, request: list[CapturedRecord]) -> ExportResult:
        self.calls.append(time.monotonic())
        if self.block is not None:
            self.block.wait()
        answer = self.answers.pop(0) if self.answers else ExportOutcome.SUCCESS
        result = answer if isinstance(answer, ExportResult) else ExportResult(answer)
        if result.delivered:
            self.delivered.extend(r.message for r in request)
        else:
            self.last_error = f"fake {result.outcome.value}"
        return result

    def shutdown(self) -> None:
        self.shut_down = True
        if self.block is not None:
            self.block.set()  # a real exporter's shutdown aborts its request

    def force_flush(self, timeout_s: float) -> None:
        return None


def one_request(representation: str, captured: list[CapturedRecord]) -> list[Any]:
    return [list(captured)]


@contextmanager
def pipeline(
    *sinks: FakeSink, encode: Any = one_request, **settings: Any
) -> Iterator[tuple[ExportPipeline, RecordBuffer[CapturedRecord], BridgeStats]]:
    stats = BridgeStats()
    buffer: RecordBuffer[CapturedRecord] = RecordBuffer(
        max_records=1000, max_bytes=1 << 24, wake_records=500, wake_bytes=1 << 23, stats=stats
    )
    defaults: dict[str, Any] = {
        "schedule_delay_s": 0.01,
        "max_batch_records": 100,
        "max_batch_bytes": 1 << 20,
        "retry_initial_s": 0.01,
        "retry_max_s": 0.04,
        "pause_s": 0.01,
        "max_defer_s": 0.05,
    }
    export = ExportPipeline(
        buffer, encode, lambda: list(sinks), stats, PipelineSettings(**{**defaults, **settings})
    )
    export.start()
    try:
        yield export, buffer, stats
    finally:
        export.shutdown(1.0)


def offer(buffer: RecordBuffer[CapturedRecord], count: int, prefix: str = "r") -> list[str]:
    texts = [f"{prefix}{i}" for i in range(count)]
    for text in texts:
        assert buffer.offer(record(text), len(text))
    return texts


def test_delivers_every_record_once() -> None:
    sink = FakeSink()
    with pipeline(sink) as (export, buffer, stats):
        sent = offer(buffer, 250)
        assert export.flush(5)
    assert sink.delivered == sent
    snapshot = stats.snapshot()
    assert (snapshot.records_exported, snapshot.dropped) == (250, {})


def test_retryable_failures_are_retried_with_growing_backoff() -> None:
    sink = FakeSink(*[ExportOutcome.RETRYABLE] * 4)
    with pipeline(sink) as (export, buffer, stats):
        sent = offer(buffer, 10)
        assert export.flush(5)
    assert sink.delivered == sent
    gaps = [later - earlier for earlier, later in zip(sink.calls, sink.calls[1:], strict=False)]
    # 0.01 s doubling, capped at 0.04 s: each wait is at least its step.
    for gap, least in zip(gaps, (0.01, 0.02, 0.04, 0.04), strict=True):
        assert gap >= least * 0.9
    assert stats.snapshot().dropped == {}


def test_permanent_failure_is_dropped_counted_and_the_next_batch_goes_through() -> None:
    sink = FakeSink(ExportOutcome.PERMANENT)
    with pipeline(sink) as (export, buffer, stats):
        offer(buffer, 5, "rejected")
        assert export.flush(5)
        later = offer(buffer, 5, "accepted")
        assert export.flush(5)
    assert sink.delivered == later
    snapshot = stats.snapshot()
    assert snapshot.dropped == {"rejected": 5}
    assert snapshot.records_exported == 5
    assert len(sink.calls) == 2  # never retried


def test_partial_success_counts_the_rejected_records_and_is_not_retried() -> None:
    sink = FakeSink(ExportResult(ExportOutcome.SUCCESS, rejected=3))
    with pipeline(sink) as (export, buffer, stats):
        offer(buffer, 10)
        assert export.flush(5)
    snapshot = stats.snapshot()
    assert (snapshot.records_exported, snapshot.dropped) == (7, {"partially_rejected": 3})
    assert len(sink.calls) == 1


@pytest.mark.parametrize("reason", ["redirected", "bad_response"])
def test_a_permanent_failure_is_counted_under_its_own_reason(reason: str) -> None:
    sink = FakeSink(ExportResult(ExportOutcome.PERMANENT, reason=reason))
    with pipeline(sink) as (export, buffer, stats):
        offer(buffer, 4)
        assert export.flush(5)
    assert stats.snapshot().dropped == {reason: 4}
    assert len(sink.calls) == 1


def test_unknown_failures_are_retried_a_few_times_then_counted() -> None:
    sink = FakeSink(*[ExportOutcome.UNKNOWN] * 10)
    with pipeline(sink, unknown_failure_attempts=3) as (export, buffer, stats):
        offer(buffer, 7)
        assert export.flush(5)
    assert len(sink.calls) == 3
    assert stats.snapshot().dropped == {"export_failed": 7}
    assert export.last_error == "fake unknown"


def test_each_sink_is_counted_separately() -> None:
    good, bad = FakeSink(), FakeSink(ExportOutcome.PERMANENT)
    with pipeline(good, bad) as (export, buffer, stats):
        offer(buffer, 4)
        assert export.flush(5)
    snapshot = stats.snapshot()
    assert (snapshot.records_emitted, snapshot.records_exported) == (8, 4)
    assert snapshot.dropped == {"rejected": 4}


def test_encoding_failure_is_counted_not_raised() -> None:
    def broken(representation: str, captured: list[CapturedRecord]) -> list[Any]:
        raise RuntimeError("cannot encode")

    sink = FakeSink()
    with pipeline(sink, encode=broken) as (export, buffer, stats):
        offer(buffer, 3)
        assert export.flush(5)
    assert stats.snapshot().dropped == {"render_error": 3}
    assert "cannot encode" in (export.last_error or "")


def test_shutdown_with_a_stalled_sink_keeps_its_deadline_and_counts_the_rest() -> None:
    stall = threading.Event()
    sink = FakeSink(block=stall)
    with pipeline(sink) as (export, buffer, stats):
        offer(buffer, 50, "stuck")
        time.sleep(0.1)  # the first batch is now in flight, blocked in the sink
        offer(buffer, 30, "queued")
        started = time.monotonic()
        export.shutdown(0.3)
        took = time.monotonic() - started
    assert took < 0.3 + 0.5  # the deadline, plus the time to shut the sink down
    assert sink.shut_down
    snapshot = stats.snapshot()
    assert snapshot.records_exported == 0
    assert snapshot.dropped == {"shutdown": 80}


def test_flush_reports_a_missed_deadline() -> None:
    stall = threading.Event()
    sink = FakeSink(block=stall)
    with pipeline(sink) as (export, buffer, _stats):
        offer(buffer, 3)
        assert export.flush(0.2) is False
        stall.set()
        assert export.flush(5) is True
    assert len(sink.delivered) == 3


@pytest.mark.parametrize("count", [1, 99, 100, 101, 350])
def test_batches_respect_the_record_bound(count: int) -> None:
    sizes: list[int] = []

    def measure(representation: str, captured: list[CapturedRecord]) -> list[Any]:
        sizes.append(len(captured))
        return [list(captured)]

    sink = FakeSink()
    with pipeline(sink, encode=measure, max_defer_s=0.0) as (export, buffer, _stats):
        offer(buffer, count)
        assert export.flush(5)
    assert sum(sizes) == count
    assert max(sizes) <= 100
