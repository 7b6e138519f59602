"""Building exporters from specs, for logs, spans and metrics alike (export thread).

Every exporter is the OpenTelemetry project's own; the transport arguments
(credentials, compression, TLS files, pinned CA session, shared output files)
come from ``transports.py`` for all three signals. Only the log exporters are
wrapped: they take pre-encoded requests and report why a failure happened.
"""

from __future__ import annotations

import importlib
from typing import Any

from torch_otel.config.specs import ExporterSpec
from torch_otel.export.files import OutputFiles
from torch_otel.export.outcome import ResponseProbe
from torch_otel.export.sink import ExporterSink
from torch_otel.export.transports import grpc_arguments, http_arguments
from torch_otel.redaction import attach_redaction

EXPORTER_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.exporter.otlp.proto.grpc._log_exporter",
    "opentelemetry.exporter.otlp.proto.http._log_exporter",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.common.http",
    "opentelemetry.exporter.http.transport._requests",
)
"""Loggers the OTLP exporters warn through (endpoints, transport errors, header values)."""


def build_log_sink(spec: ExporterSpec, files: OutputFiles) -> ExporterSink:
    """The sink for one log exporter of a profile."""
    description = spec.describe()
    redactor = spec.redactor()
    attach_redaction(EXPORTER_LOGGERS, redactor)  # before the SDK can log a secret
    if spec.kind in ("otlp_grpc", "otlp_http"):
        probe = ResponseProbe()
        exporter: Any = _otlp_log_exporter(spec, probe)
        return ExporterSink(
            exporter,
            representation="otlp",
            probe=probe,
            description=description,
            redact=redactor,
        )
    if spec.kind == "file":
        from opentelemetry.exporter.otlp.json.file._log_exporter import FileLogExporter

        exporter = _with_stream(FileLogExporter, spec, files)
        return ExporterSink(exporter, description=description)
    from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter

    return ExporterSink(ConsoleLogRecordExporter(), description=description)


SIGNAL_EXPORTERS: dict[str, dict[str, tuple[str, str]]] = {
    "spans": {
        "otlp_grpc": ("opentelemetry.exporter.otlp.proto.grpc.trace_exporter", "OTLPSpanExporter"),
        "otlp_http": ("opentelemetry.exporter.otlp.proto.http.trace_exporter", "OTLPSpanExporter"),
        "file": ("opentelemetry.exporter.otlp.json.file", "FileSpanExporter"),
        "console": ("opentelemetry.sdk.trace.export", "ConsoleSpanExporter"),
    },
    "metrics": {
        "otlp_grpc": (
            "opentelemetry.exporter.otlp.proto.grpc.metric_exporter",
            "OTLPMetricExporter",
        ),
        "otlp_http": (
            "opentelemetry.exporter.otlp.proto.http.metric_exporter",
            "OTLPMetricExporter",
        ),
        "file": ("opentelemetry.exporter.otlp.json.file", "FileMetricExporter"),
        "console": ("opentelemetry.sdk.metrics.export", "ConsoleMetricExporter"),
    },
}
"""The OpenTelemetry exporter class for each signal and spec kind (imported on use)."""


def _otlp_log_exporter(spec: ExporterSpec, probe: ResponseProbe) -> Any:
    if spec.kind == "otlp_grpc":
        from torch_otel.export.otlp_grpc import EncodedGrpcLogExporter

        return EncodedGrpcLogExporter(probe=probe, **grpc_arguments(spec))
    from torch_otel.export.otlp_http import EncodedHttpLogExporter

    return EncodedHttpLogExporter(probe=probe, **http_arguments(spec))


def build_signal_exporter(signal: str, spec: ExporterSpec, files: OutputFiles) -> Any:
    """The span (``signal="spans"``) or metric (``"metrics"``) exporter for a spec."""
    attach_redaction(EXPORTER_LOGGERS, spec.redactor())
    module, name = SIGNAL_EXPORTERS[signal][spec.kind]
    exporter_class = getattr(importlib.import_module(module), name)
    if spec.kind == "otlp_grpc":
        return exporter_class(**grpc_arguments(spec))
    if spec.kind == "otlp_http":
        return exporter_class(**http_arguments(spec))
    if spec.kind == "file":
        return _with_stream(exporter_class, spec, files)
    return exporter_class()


def _with_stream(exporter_class: Any, spec: ExporterSpec, files: OutputFiles) -> Any:
    """A file exporter writing to the profile's path (shared per bridge), or stdout."""
    if spec.path:
        return exporter_class(stream=files.stream(spec.path))
    return exporter_class()
