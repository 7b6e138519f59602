"""Compile telemetry from structured-trace records: spans nest as torch's phases do, metrics
count what ``compilation_metrics`` says, and log records find the span open when they were
logged. Synthetic records in the shapes torch emits; the real SDK with in-memory exporters."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from torch_otel.capture.records import CapturedRecord
from torch_otel.trace.telemetry import CompileTelemetry

THREAD = 7
METRIC_CACHE_HITS = "torch.compile.cache.hits"
METRIC_CACHE_MISSES = "torch.compile.cache.misses"
BASE_US = 1_700_000_000_000_000


def trace_record(metadata: dict[str, Any], payload: str = "") -> CapturedRecord:
    return CapturedRecord(
        "torch.__trace", 20, time.time(), payload, "x.py", 1, "f", THREAD, "MainThread",
        None, None, None, None, None, None, metadata,
    )  # fmt: skip


def chromium(phase: str, name: str, offset_us: int, **args: Any) -> CapturedRecord:
    event = {"name": name, "ph": phase, "ts": BASE_US + offset_us, "args": args}
    metadata = {"chromium_event": {}, "frame_id": 0, "frame_compile_id": 0, "rank": 3}
    return trace_record(metadata, json.dumps(event))


def log_record(compile_id: Any) -> CapturedRecord:
    return CapturedRecord(
        "torch._dynamo.guards.__guards", 10, time.time(), "guard", "g.py", 2, "f", THREAD,
        "MainThread", compile_id, 0, None, None, None, None, None,
    )  # fmt: skip


class FakeCompileId:
    frame_id = 0
    frame_compile_id = 0

    def __str__(self) -> str:
        return "0/0"


@pytest.fixture
def telemetry() -> tuple[CompileTelemetry, InMemorySpanExporter, InMemoryMetricReader]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    return (
        CompileTelemetry(tracer_provider.get_tracer("t"), meter_provider.get_meter("t")),
        spans,
        reader,
    )


def metric_points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    out: dict[str, list[Any]] = {}
    for resource_metrics in data.resource_metrics if data else ():
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                out[metric.name] = list(metric.data.data_points)
    return out


def test_phases_become_nested_spans_with_torch_times(telemetry: Any) -> None:
    observer, spans, reader = telemetry
    guard = log_record(FakeCompileId())
    batch = [
        chromium("B", "dynamo", 0, compile_id="0/0"),
        chromium("B", "entire_frame_compile", 10, compile_id="0/0"),
        guard,
        chromium("E", "entire_frame_compile", 2_000, compile_id="0/0"),
        chromium("E", "dynamo", 3_000, compile_id="0/0", fail_type=None),
    ]
    observer.observe(batch)
    finished = {span.name: span for span in spans.get_finished_spans()}
    assert set(finished) == {"dynamo", "entire_frame_compile"}
    outer, inner = finished["dynamo"], finished["entire_frame_compile"]
    assert inner.parent is not None and inner.parent.span_id == outer.context.span_id
    assert inner.start_time == (BASE_US + 10) * 1000
    assert inner.end_time == (BASE_US + 2_000) * 1000
    assert outer.attributes["torch.compile.trace_id"] == "0/0"
    assert outer.attributes["torch.distributed.rank"] == 3
    # The guard record was logged inside entire_frame_compile: that is its span.
    assert observer.span_context_for(guard).span_id == inner.context.span_id
    durations = metric_points(reader)["torch.compile.duration"]
    phases = {point.attributes["torch.compile.phase"]: point.sum for point in durations}
    assert phases == pytest.approx({"dynamo": 0.003, "entire_frame_compile": 0.00199})


def test_failed_phase_has_an_error_status(telemetry: Any) -> None:
    observer, spans, _reader = telemetry
    observer.observe(
        [
            chromium("B", "backend_compile", 0),
            chromium(
                "E", "backend_compile", 5, fail_type="BackendCompilerFailed", fail_reason="boom"
            ),
        ]
    )
    (span,) = spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "boom"


def test_spans_never_ended_are_closed_and_marked_incomplete(telemetry: Any) -> None:
    observer, spans, _reader = telemetry
    observer.observe([chromium("B", "dynamo", 0), chromium("B", "inductor_compile", 5)])
    assert spans.get_finished_spans() == ()
    observer.close()
    finished = spans.get_finished_spans()
    assert {span.name for span in finished} == {"dynamo", "inductor_compile"}
    assert all(span.attributes["torch_otel.incomplete"] for span in finished)


def test_compilation_metrics_become_counters(telemetry: Any) -> None:
    observer, _spans, reader = telemetry

    def metrics(**fields: Any) -> CapturedRecord:
        return trace_record({"compilation_metrics": fields, "frame_id": 0, "rank": 1})

    observer.observe(
        [
            metrics(
                fail_type=None,
                num_graph_breaks=None,
                restart_reasons=["a", "b"],
                inductor_fx_local_cache_miss_count=2,
            ),
            metrics(
                fail_type="Unsupported",
                recompile_reason="size changed",
                num_graph_breaks=1,
                aotautograd_local_cache_hit_count=1,
            ),
            metrics(is_runtime=True, fail_type=None),
        ]
    )
    points = metric_points(reader)
    outcomes = {
        p.attributes["torch.compile.outcome"]: p.value for p in points["torch.compile.compiles"]
    }
    assert outcomes == {"success": 1, "Unsupported": 1}
    assert [p.value for p in points["torch.compile.recompiles"]] == [1]
    assert sum(p.value for p in points["torch.compile.graph_breaks"]) == 3
    hits = {
        p.attributes["torch.compile.cache"]: p.value for p in points["torch.compile.cache.hits"]
    }
    misses = {
        p.attributes["torch.compile.cache"]: p.value for p in points["torch.compile.cache.misses"]
    }
    assert (hits, misses) == ({"aotautograd_local": 1}, {"inductor_fx_local": 2})
    assert all(
        p.attributes["torch.distributed.rank"] == 1 for p in points["torch.compile.compiles"]
    )


def test_beside_compile_health_only_the_cache_counters_come_from_the_trace() -> None:
    """Compile health owns compiles, recompiles, graph breaks and durations: --trace must not
    count them a second time."""
    tracer_provider = TracerProvider()
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("t")
    observer = CompileTelemetry(tracer_provider.get_tracer("t"), meter, compile_metrics=False)
    observer.observe(
        [
            chromium("B", "dynamo", 0, compile_id="0/0"),
            trace_record(
                {
                    "compilation_metrics": {
                        "fail_type": None,
                        "recompile_reason": "x",
                        "restart_reasons": ["a"],
                        "inductor_fx_local_cache_miss_count": 2,
                    },
                    "frame_id": 0,
                }
            ),
            chromium("E", "dynamo", 3_000, compile_id="0/0"),
        ]
    )
    assert set(metric_points(reader)) == {METRIC_CACHE_MISSES}
