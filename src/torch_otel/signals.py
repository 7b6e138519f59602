"""Tracer and meter providers for the structured-trace features (``--trace``).

Like the log side, torch-otel never replaces a provider it did not create: if
the application set SDK providers globally and no profile was chosen
explicitly, spans and metrics go there. Otherwise they are built from the
profile's ``tracer_provider`` / ``meter_provider`` sections with the
OpenTelemetry project's exporters (TLS files, headers and the ``REQUESTS_CA_BUNDLE``
fix as for logs), and shut down by the bridge.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from torch_otel.exporters import ExporterSpec, _pinned_ca_session, _read


def application_tracer_provider() -> Any:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    provider = trace.get_tracer_provider()
    return provider if isinstance(provider, TracerProvider) else None


def application_meter_provider() -> Any:
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider

    provider = metrics.get_meter_provider()
    return provider if isinstance(provider, MeterProvider) else None


def build_tracer_provider(specs: list[ExporterSpec], resource: Any) -> Any:
    if not specs:
        return None
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # shutdown_on_exit=False: the bridge flushes spans at exit itself, after the last
    # records; the SDK's own atexit hook would run first and drop the final spans.
    provider = TracerProvider(
        resource=resource, shutdown_on_exit=False, id_generator=PrivateRandomIdGenerator()
    )
    for spec in specs:
        provider.add_span_processor(BatchSpanProcessor(build_span_exporter(spec)))
    return provider


def PrivateRandomIdGenerator() -> Any:
    """Span and trace ids from a private RNG, not the ``random`` module's global state.

    The SDK's default generator draws from ``random``; dynamo saves and restores
    that global state around tracing (so user code sees the RNG it expects), which
    replays the same "random" ids for spans started in between.
    """
    import random

    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

    class _PrivateRandomIdGenerator(RandomIdGenerator):
        def __init__(self) -> None:
            self._random = random.Random(os.urandom(32))

        def generate_span_id(self) -> int:
            span_id = self._random.getrandbits(64)
            while span_id == 0:
                span_id = self._random.getrandbits(64)
            return span_id

        def generate_trace_id(self) -> int:
            trace_id = self._random.getrandbits(128)
            while trace_id == 0:
                trace_id = self._random.getrandbits(128)
            return trace_id

    return _PrivateRandomIdGenerator()


def build_meter_provider(specs: list[tuple[ExporterSpec, float]], resource: Any) -> Any:
    if not specs:
        return None
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    readers = [
        PeriodicExportingMetricReader(
            build_metric_exporter(spec), export_interval_millis=interval_s * 1000
        )
        for spec, interval_s in specs
    ]
    return MeterProvider(resource=resource, metric_readers=readers, shutdown_on_exit=False)


def build_span_exporter(spec: ExporterSpec) -> Any:
    if spec.kind == "otlp_grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(**_grpc_arguments(spec))
    if spec.kind == "otlp_http":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(**_http_arguments(spec))
    if spec.kind == "file":
        from opentelemetry.exporter.otlp.json.file import FileSpanExporter

        return (
            FileSpanExporter(stream=shared_line_stream(spec.path))
            if spec.path
            else (FileSpanExporter())
        )
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    return ConsoleSpanExporter()


def build_metric_exporter(spec: ExporterSpec) -> Any:
    if spec.kind == "otlp_grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter(**_grpc_arguments(spec))
    if spec.kind == "otlp_http":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter(**_http_arguments(spec))
    if spec.kind == "file":
        from opentelemetry.exporter.otlp.json.file import FileMetricExporter

        return (
            FileMetricExporter(stream=shared_line_stream(spec.path))
            if spec.path
            else (FileMetricExporter())
        )
    from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

    return ConsoleMetricExporter()


def _grpc_arguments(spec: ExporterSpec) -> dict[str, Any]:
    import grpc

    credentials = None
    if not spec.is_plaintext:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=_read(spec.tls.ca_file),
            private_key=_read(spec.tls.key_file),
            certificate_chain=_read(spec.tls.cert_file),
        )
    return {
        "endpoint": spec.endpoint,
        "insecure": spec.is_plaintext,
        "credentials": credentials,
        "headers": tuple(spec.headers.items()),
        "timeout": spec.timeout_s,
        "compression": grpc.Compression.Gzip if spec.compression == "gzip" else None,
    }


def _http_arguments(spec: ExporterSpec) -> dict[str, Any]:
    from opentelemetry.exporter.otlp.proto.http import Compression

    return {
        "endpoint": spec.endpoint,
        "certificate_file": spec.tls.ca_file,
        "client_key_file": spec.tls.key_file,
        "client_certificate_file": spec.tls.cert_file,
        "headers": spec.headers,
        "timeout": spec.timeout_s,
        "compression": Compression.Gzip
        if spec.compression == "gzip"
        else Compression.NoCompression,
        "session": _pinned_ca_session() if spec.tls.ca_file else None,
    }


class LineAppendStream:
    """A text stream that appends each ``write`` to a file with one ``os.write``.

    The logs, spans and metrics exporters of the ``file`` profile share one file;
    each writes whole lines. One unbuffered ``O_APPEND`` write per line keeps
    lines whole across threads here and across processes (ranks) writing the
    same file.
    """

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._lock = threading.Lock()
        self.closed = False

    def write(self, text: str) -> int:
        data = text.encode("utf-8")
        with self._lock:
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        return len(text)

    def flush(self) -> None:
        return None

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self._fd)


_streams: dict[str, LineAppendStream] = {}
_streams_lock = threading.Lock()


def shared_line_stream(path: str) -> LineAppendStream:
    """One stream per output file and process (reopened after ``fork``)."""
    key = f"{os.getpid()}:{Path(path).resolve()}"
    with _streams_lock:
        stream = _streams.get(key)
        if stream is None or stream.closed:
            stream = _streams[key] = LineAppendStream(path)
        return stream
