"""Building exporters from specs, for logs, spans and metrics alike (export thread).

Every exporter is the OpenTelemetry project's own; the transport arguments
(credentials, compression, TLS files, pinned CA session, shared output files)
come from ``transports.py`` for all three signals. Only the log exporters are
wrapped: they take pre-encoded requests and report why a failure happened.
"""

from __future__ import annotations

from typing import Any

from torch_otel.config.specs import ExporterSpec
from torch_otel.export.outcome import FailureProbe
from torch_otel.export.sink import ExporterSink
from torch_otel.export.transports import OutputFiles, grpc_arguments, http_arguments


def build_log_sink(spec: ExporterSpec, files: OutputFiles) -> ExporterSink:
    """The sink for one log exporter of a profile."""
    description = spec.describe()
    if spec.kind == "otlp_grpc":
        from torch_otel.export.otlp_grpc import EncodedGrpcLogExporter

        probe = FailureProbe()
        exporter: Any = EncodedGrpcLogExporter(probe=probe, **grpc_arguments(spec))
        return ExporterSink(exporter, representation="otlp", probe=probe, description=description)
    if spec.kind == "otlp_http":
        from torch_otel.export.otlp_http import EncodedHttpLogExporter

        probe = FailureProbe()
        exporter = EncodedHttpLogExporter(probe=probe, **http_arguments(spec))
        return ExporterSink(exporter, representation="otlp", probe=probe, description=description)
    if spec.kind == "file":
        from opentelemetry.exporter.otlp.json.file._log_exporter import FileLogExporter

        exporter = _with_stream(FileLogExporter, spec, files)
        return ExporterSink(exporter, description=description)
    from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter

    return ExporterSink(ConsoleLogRecordExporter(), description=description)


def build_span_exporter(spec: ExporterSpec, files: OutputFiles) -> Any:
    if spec.kind == "otlp_grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(**grpc_arguments(spec))
    if spec.kind == "otlp_http":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpSpanExporter,
        )

        return HttpSpanExporter(**http_arguments(spec))
    if spec.kind == "file":
        from opentelemetry.exporter.otlp.json.file import FileSpanExporter

        return _with_stream(FileSpanExporter, spec, files)
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    return ConsoleSpanExporter()


def build_metric_exporter(spec: ExporterSpec, files: OutputFiles) -> Any:
    if spec.kind == "otlp_grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter(**grpc_arguments(spec))
    if spec.kind == "otlp_http":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
            OTLPMetricExporter as HttpMetricExporter,
        )

        return HttpMetricExporter(**http_arguments(spec))
    if spec.kind == "file":
        from opentelemetry.exporter.otlp.json.file import FileMetricExporter

        return _with_stream(FileMetricExporter, spec, files)
    from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

    return ConsoleMetricExporter()


def _with_stream(exporter_class: Any, spec: ExporterSpec, files: OutputFiles) -> Any:
    """A file exporter writing to the profile's path (shared per bridge), or stdout."""
    if spec.path:
        return exporter_class(stream=files.stream(spec.path))
    return exporter_class()
