"""Transport settings shared by the log, span and metric exporters.

One place turns an :class:`~torch_otel.config.specs.ExporterSpec` into the
arguments the OpenTelemetry OTLP exporters take (as opentelemetry-python's
``grpc/exporter.py`` does for its three signals): gRPC credentials and
compression, and HTTP TLS files with a session whose CA cannot be swapped by
``REQUESTS_CA_BUNDLE``. (The ``file`` profile's shared output stream is in
``files.py``.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch_otel.config.specs import ExporterSpec


def read_file(path: str | None) -> bytes | None:
    return Path(path).read_bytes() if path else None


def grpc_arguments(spec: ExporterSpec) -> dict[str, Any]:
    """Keyword arguments for any OTel OTLP/gRPC exporter (logs, spans, metrics)."""
    import grpc

    credentials = None
    if not spec.is_plaintext:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=read_file(spec.tls.ca_file),
            private_key=read_file(spec.tls.key_file),
            certificate_chain=read_file(spec.tls.cert_file),
        )
    return {
        "endpoint": spec.endpoint,
        "insecure": spec.is_plaintext,
        "credentials": credentials,
        "headers": tuple(spec.headers.items()),
        "timeout": spec.timeout_s,
        "compression": grpc.Compression.Gzip if spec.compression == "gzip" else None,
    }


def http_arguments(spec: ExporterSpec) -> dict[str, Any]:
    """Keyword arguments for any OTel OTLP/HTTP exporter (logs, spans, metrics)."""
    from opentelemetry.exporter.otlp.proto.http import Compression

    return {
        "endpoint": spec.endpoint,
        "certificate_file": spec.tls.ca_file,
        "client_key_file": spec.tls.key_file,
        "client_certificate_file": spec.tls.cert_file,
        "headers": spec.headers,
        "timeout": spec.timeout_s,
        "compression": (
            Compression.Gzip if spec.compression == "gzip" else Compression.NoCompression
        ),
        "session": pinned_ca_session() if spec.tls.ca_file else None,
    }


def pinned_ca_session() -> Any:
    """A requests session whose CA file wins over ``REQUESTS_CA_BUNDLE`` (see
    ``http_session.py``); requests is imported only when OTLP/HTTP with a CA needs it."""
    from torch_otel.export.http_session import PinnedCaSession

    return PinnedCaSession()
