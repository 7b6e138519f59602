"""Reading OTLP/JSON files (the ``file`` profile's output, or a collector's file exporter).

Each line is one export request (``{"resourceLogs": [...]}``, and for
traces/metrics ``resourceSpans`` / ``resourceMetrics``) in the OTLP/JSON
encoding. Lines are parsed with the official ``opentelemetry-proto``
messages (``google.protobuf.json_format``), so anything the collector writes
is read exactly as the collector meant it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch_otel.errors import ConfigError


@dataclass
class FlatLogRecord:
    """One log record with its resource and scope, values as plain Python types."""

    body: Any
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope: str
    severity_text: str
    severity_number: int
    time_unix_nano: int
    trace_id: str = ""
    span_id: str = ""
    event_name: str = ""


@dataclass
class FlatMetricPoint:
    """One data point of a metric with its resource, values as plain Python types.

    ``value`` for sums and gauges; ``count`` and ``sum`` for histograms.
    ``cumulative`` is False for delta temporality (points then add up).
    """

    name: str
    kind: str  # "sum", "gauge", "histogram", ...
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope: str
    time_unix_nano: int
    value: float | int | None = None
    count: int | None = None
    sum: float | None = None
    cumulative: bool = True


@dataclass
class BadLine:
    path: str
    line_number: int
    error: str


def any_value(value: Any) -> Any:
    """An OTLP ``AnyValue`` message as a Python value."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind)


def key_values(items: Any) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in items}


def flatten_logs(request: Any) -> list[FlatLogRecord]:
    """All log records of an ``ExportLogsServiceRequest``."""
    out: list[FlatLogRecord] = []
    for resource_logs in request.resource_logs:
        resource = key_values(resource_logs.resource.attributes)
        for scope_logs in resource_logs.scope_logs:
            scope = scope_logs.scope.name
            for record in scope_logs.log_records:
                out.append(
                    FlatLogRecord(
                        body=any_value(record.body),
                        attributes=key_values(record.attributes),
                        resource=resource,
                        scope=scope,
                        severity_text=record.severity_text,
                        severity_number=int(record.severity_number),
                        time_unix_nano=int(record.time_unix_nano),
                        trace_id=record.trace_id.hex(),
                        span_id=record.span_id.hex(),
                        event_name=record.event_name,
                    )
                )
    return out


def flatten_metrics(request: Any) -> list[FlatMetricPoint]:
    """All data points of an ``ExportMetricsServiceRequest``."""
    out: list[FlatMetricPoint] = []
    for resource_metrics in request.resource_metrics:
        resource = key_values(resource_metrics.resource.attributes)
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                if kind is None:
                    continue
                data = getattr(metric, kind)
                temporality = getattr(data, "aggregation_temporality", 2)
                for point in data.data_points:
                    flat = FlatMetricPoint(
                        name=metric.name,
                        kind=kind,
                        attributes=key_values(point.attributes),
                        resource=resource,
                        scope=scope_metrics.scope.name,
                        time_unix_nano=int(point.time_unix_nano),
                        cumulative=temporality != 1,  # 1: AGGREGATION_TEMPORALITY_DELTA
                    )
                    if kind in ("sum", "gauge"):
                        value_kind = point.WhichOneof("value")
                        flat.value = getattr(point, value_kind) if value_kind else None
                    else:
                        flat.count = int(point.count)
                        flat.sum = float(point.sum)
                    out.append(flat)
    return out


def parse_line(line: str) -> tuple[str, Any]:
    """Parse one OTLP/JSON line into ``(signal, request message)``."""
    from google.protobuf.json_format import Parse

    data = json.loads(line)
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    if "resourceLogs" in data or "resource_logs" in data:
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
            ExportLogsServiceRequest,
        )

        return "logs", Parse(line, ExportLogsServiceRequest())
    if "resourceSpans" in data or "resource_spans" in data:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        return "traces", Parse(line, ExportTraceServiceRequest())
    if "resourceMetrics" in data or "resource_metrics" in data:
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
            ExportMetricsServiceRequest,
        )

        return "metrics", Parse(line, ExportMetricsServiceRequest())
    raise ValueError("not an OTLP export request (no resourceLogs/resourceSpans/resourceMetrics)")


def iter_requests(
    path: str | Path, bad_lines: list[BadLine] | None = None
) -> Iterator[tuple[str, Any]]:
    """Yield ``(signal, request)`` per line; bad lines are collected (with line numbers).

    ``bad_lines`` None means a bad line raises :class:`ConfigError` naming the
    file and line.
    """
    path = Path(path)
    try:
        handle = path.open("rb")
    except OSError as error:
        raise ConfigError(str(path), f"cannot read: {error.strerror}") from None
    with handle:
        # Binary, decoded line by line: one bad line (not UTF-8) is reported, not fatal.
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                yield parse_line(raw.decode("utf-8"))
            except Exception as error:
                problem = BadLine(str(path), number, f"{type(error).__name__}: {error}")
                if bad_lines is None:
                    raise ConfigError(f"{path}:{number}", problem.error) from None
                bad_lines.append(problem)


def read_log_records(path: str | Path) -> list[FlatLogRecord]:
    """Every log record in an OTLP/JSON lines file (raises on a bad line)."""
    records: list[FlatLogRecord] = []
    for signal, request in iter_requests(path):
        if signal == "logs":
            records.extend(flatten_logs(request))
    return records
