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

import requests

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
        "session": PinnedCaSession() if spec.tls.ca_file else None,
    }


class PinnedCaSession(requests.Session):
    """A requests session whose configured CA file wins over ``REQUESTS_CA_BUNDLE``.

    requests lets ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` replace a session's
    ``verify`` path on every request, which would silently swap the CA the
    profile named for the machine's bundle (and fail, or trust the wrong CAs).
    """

    def merge_environment_settings(  # type: ignore[override]
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> Any:
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if isinstance(self.verify, str) and verify in (None, True):
            settings["verify"] = self.verify
        return settings
