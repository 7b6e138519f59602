"""--trace: structured trace events, compile spans and compile metrics, end to end.

One real compile (a graph break and two recompiles) under ``torch-otel run
--trace`` sends logs, spans and metrics over OTLP/gRPC to a loopback receiver,
beside a native ``TORCH_TRACE`` directory; the tests compare what arrived with
the events torch recorded.
"""

from __future__ import annotations

import json
import logging
import sys
from collections import Counter
from pathlib import Path

import pytest

from helpers.processes import TORCH_OTEL, WORKLOAD, run_python
from infra.otlp_receiver import OtlpReceiver

pytestmark = pytest.mark.compile


class Arrived:
    def __init__(self, receiver: OtlpReceiver, native_dir: Path) -> None:
        self.logs = receiver.log_records()
        self.spans = receiver.spans()
        self.metrics = receiver.metrics()
        self.native_files = sorted(native_dir.glob("*.log"))

    def events(self, key: str) -> list:
        return [r for r in self.logs if r.event_name == f"torch.trace.{key}"]

    def last_points(self, name: str) -> list:
        """Points of the last export of a metric (cumulative temporality)."""
        exports = [m for m in self.metrics if m.name == name]
        assert exports, f"metric {name} not received"
        return exports[-1].points


@pytest.fixture(scope="module")
def arrived(tmp_path_factory: pytest.TempPathFactory) -> Arrived:
    tmp = tmp_path_factory.mktemp("trace")
    with OtlpReceiver() as receiver:
        run = run_python(
            [
                *TORCH_OTEL,
                "run",
                "--exporter",
                "otlp-grpc",
                "--trace",
                "--",
                sys.executable,
                str(WORKLOAD),
                "--steps",
                "main",
            ],
            env={
                "TORCH_LOGS": "guards,recompiles,output_code",
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.grpc_endpoint,
                "TORCH_TRACE": str(tmp / "native"),
            },
        )
        assert run.returncode == 0, run.stderr[-3000:]
        assert "torch-otel:" not in run.stderr
        return Arrived(receiver, tmp / "native")


def chromium_events(arrived: Arrived) -> list[dict]:
    events = [json.loads(r.body) for r in arrived.events("chromium_event")]
    return sorted(events, key=lambda e: e["ts"])


def test_every_trace_event_beside_the_native_trace_file(arrived: Arrived) -> None:
    (native,) = arrived.native_files
    keys = Counter()
    for line in native.read_text().split("\n"):
        if line and not line.startswith("\t"):
            metadata = json.loads(line.split("] ", 1)[1])
            keys[
                next(
                    k
                    for k in metadata
                    if k
                    not in (
                        "frame_id",
                        "frame_compile_id",
                        "attempt",
                        "has_payload",
                        "rank",
                        "compiled_autograd_id",
                        "stack",
                        "subgraph_name",
                    )
                )
            ] += 1
    exported = Counter(
        r.event_name.removeprefix("torch.trace.")
        for r in arrived.logs
        if r.event_name.startswith("torch.trace.")
    )
    assert exported == keys
    assert exported["str"] > 0  # string interning records are kept
    for record in arrived.events("dynamo_start"):
        metadata = json.loads(record.attributes["torch.trace.metadata"])
        assert record.attributes["torch.compile.frame_id"] == metadata["frame_id"]
        assert record.attributes["torch.compile.trace_id"].startswith(
            f"{metadata['frame_id']}/{metadata['frame_compile_id']}"
        )


def test_span_tree_shape(arrived: Arrived) -> None:
    spans = {s.span_id: s for s in arrived.spans}
    parent = {s.span_id: spans.get(s.parent_span_id) for s in arrived.spans}
    roots = [s for s in arrived.spans if parent[s.span_id] is None]
    metrics_events = arrived.events("compilation_metrics")
    assert {s.name for s in roots} == {"dynamo"}
    assert len(roots) == len(metrics_events) == 5  # one trace per frame compile
    for span in arrived.spans:
        up = parent[span.span_id]
        if span.name == "entire_frame_compile":
            assert up.name == "dynamo"
        if span.name.startswith("compile_attempt_"):
            assert up.name == "entire_frame_compile"
        if span.name == "bytecode_tracing":
            assert up.name.startswith("compile_attempt_")
        if up is not None:
            assert span.trace_id == up.trace_id
            assert up.start_time_unix_nano <= span.start_time_unix_nano
            assert span.end_time_unix_nano <= up.end_time_unix_nano
            assert span.attributes.get("torch.compile.trace_id") == up.attributes.get(
                "torch.compile.trace_id"
            )
    assert {"backend_compile", "build_guards"} <= {s.name for s in arrived.spans}


def test_span_times_are_the_event_times(arrived: Arrived) -> None:
    events = chromium_events(arrived)
    begins = [
        (e["name"], e["args"]["compile_id"], round(e["ts"] * 1000))
        for e in events
        if e["ph"] == "B"
    ]
    ends = [
        (e["name"], e["args"]["compile_id"], round(e["ts"] * 1000))
        for e in events
        if e["ph"] == "E"
    ]
    spans = arrived.spans
    assert len(spans) == len(begins) == len(ends)
    span_starts = sorted(
        (s.name, s.attributes["torch.compile.trace_id"], s.start_time_unix_nano) for s in spans
    )
    span_ends = sorted(
        (s.name, s.attributes["torch.compile.trace_id"], s.end_time_unix_nano) for s in spans
    )
    assert [(n, c) for n, c, _ in span_starts] == [(n, c) for n, c, _ in sorted(begins)]
    for (_, _, ours), (_, _, theirs) in zip(span_starts, sorted(begins), strict=True):
        assert abs(ours - theirs) <= 1000  # µs float from torch -> ns int
    for (_, _, ours), (_, _, theirs) in zip(span_ends, sorted(ends), strict=True):
        assert abs(ours - theirs) <= 1000


def test_guards_records_carry_the_span_of_their_compile(arrived: Arrived) -> None:
    spans = {s.span_id: s for s in arrived.spans}
    guards = [r for r in arrived.logs if r.attributes.get("torch.artifact") == "guards"]
    assert guards
    for record in guards:
        span = spans[record.span_id]
        assert record.trace_id == span.trace_id
        compile_id = record.attributes["torch.compile.trace_id"].split("_")[0]
        assert span.attributes["torch.compile.trace_id"] == compile_id
    output_code = [r for r in arrived.logs if r.attributes.get("torch.artifact") == "output_code"]
    assert output_code and all(r.span_id in spans for r in output_code)


def test_metrics_carry_the_values_compilation_metrics_reported(arrived: Arrived) -> None:
    """Beside --trace, compile health owns compiles, recompiles, graph breaks and durations
    (each counted once), --trace adds the cache counters."""
    reported = [
        json.loads(r.attributes["torch.trace.metadata"])["compilation_metrics"]
        for r in arrived.events("compilation_metrics")
    ]
    reported = [m for m in reported if not m.get("is_runtime")]
    backward = [
        json.loads(r.attributes["torch.trace.metadata"])["bwd_compilation_metrics"]
        for r in arrived.events("bwd_compilation_metrics")
    ]

    def total(name: str, **attributes: str) -> int:
        return sum(
            p.value
            for p in arrived.last_points(name)
            if all(p.attributes.get(k) == v for k, v in attributes.items())
        )

    assert total("torch.compile.compiles") == len(reported)
    assert total("torch.compile.recompiles") == sum(1 for m in reported if m["recompile_reason"])
    # One graph-break record in torch's own trace per graph break torch logged.
    graph_break_reasons = [
        r
        for r in arrived.events("artifact")
        if json.loads(r.attributes["torch.trace.metadata"])["artifact"]["name"]
        == "dynamo_graph_break_reason"
    ]
    assert total("torch.compile.graph_breaks") == len(graph_break_reasons) > 0
    for cache in ("inductor_fx_local", "aotautograd_local"):
        hits = sum(m.get(f"{cache}_cache_hit_count") or 0 for m in reported)
        misses = sum(m.get(f"{cache}_cache_miss_count") or 0 for m in reported)
        assert hits + misses > 0
        if hits:
            assert total("torch.compile.cache.hits", **{"torch.compile.cache": cache}) == hits
        if misses:
            assert total("torch.compile.cache.misses", **{"torch.compile.cache": cache}) == misses
    durations = arrived.last_points("torch.compile.duration")
    totals = [p for p in durations if p.attributes["torch.compile.phase"] == "total"]
    assert sum(p.count for p in totals) == len(reported) + len(backward)
    phases = {p.attributes["torch.compile.phase"] for p in durations}
    assert {"total", "dynamo", "backend"} <= phases  # inductor, code_gen: unless cached
    # Only compile health's phases: no span-per-phase durations beside them.
    assert phases <= {"total", "dynamo", "backend", "inductor", "code_gen", "backward"}
    assert all(p.attributes["torch.component"] == "dynamo" for p in durations)


def test_trace_off_adds_no_handler_to_torch_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch  # noqa: F401

    from helpers.bridges import bridged
    from torch_otel.trace.handler import TraceHandler

    trace_logger = logging.getLogger("torch.__trace")
    with bridged(monkeypatch, profile="console"):
        assert not any(isinstance(h, TraceHandler) for h in trace_logger.handlers)
    with bridged(monkeypatch, profile="console", trace=True):
        assert isinstance(trace_logger.handlers[0], TraceHandler)
    assert not any(isinstance(h, TraceHandler) for h in trace_logger.handlers)
