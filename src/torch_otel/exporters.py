"""Building OTel log exporters from a profile, and telling retryable failures apart.

The exporters themselves are the OpenTelemetry project's (OTLP/gRPC,
OTLP/HTTP, OTLP/JSON file, console). Two things are added here:

* the profile's ``tls`` block is honoured (``opentelemetry-configuration``
  0.66 ignores it), so OTLP over TLS and mutual TLS work from a profile, and a
  CA file with a plaintext ``http://`` endpoint is an error instead of a
  silent plaintext connection;
* each exporter reports *why* an export failed (retryable: collector down,
  overloaded, timed out; permanent: the collector rejected the data), which
  the SDK's ``SUCCESS``/``FAILURE`` result does not say. The pipeline retries
  the first kind for as long as its buffer allows and drops (counted) the
  second.
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

from torch_otel.errors import ConfigError

_log = logging.getLogger("torch_otel")

# Retryable HTTP statuses per the OTLP/HTTP spec.
RETRYABLE_HTTP_STATUSES = frozenset({429, 502, 503, 504})


class ExportOutcome(enum.Enum):
    SUCCESS = "success"
    RETRYABLE = "retryable"
    PERMANENT = "permanent"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class TlsFiles:
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure: bool | None = None


@dataclass(frozen=True)
class ExporterSpec:
    """One exporter as a profile describes it, validated, not yet built.

    Building is deferred to the export thread so that a process that never
    logs anything (e.g. a compile worker) never pays for importing gRPC.
    ``headers`` may hold secrets: they are excluded from ``repr``.
    """

    kind: str  # "otlp_grpc" | "otlp_http" | "console" | "file"
    endpoint: str | None = None
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    compression: str | None = None
    timeout_s: float = 10.0
    tls: TlsFiles = field(default_factory=TlsFiles)
    path: str | None = None

    def describe(self) -> str:
        """Human-readable, secret-free description (for doctor, debug output)."""
        if self.kind in ("otlp_grpc", "otlp_http"):
            protocol = "grpc" if self.kind == "otlp_grpc" else "http/protobuf"
            security = "plaintext" if self.is_plaintext else "TLS"
            if self.tls.cert_file:
                security = "mutual TLS"
            header_names = ", ".join(sorted(self.headers)) or "none"
            return (
                f"OTLP {protocol} to {self.endpoint} ({security}; headers: {header_names}; "
                f"timeout {self.timeout_s:g}s)"
            )
        if self.kind == "file":
            return f"OTLP/JSON lines to {self.path}"
        return "console (JSON on stdout)"

    @property
    def is_plaintext(self) -> bool:
        if self.kind == "otlp_grpc":
            if self.tls.insecure is not None:
                return bool(self.tls.insecure)
            return urlparse(self.endpoint or "").scheme == "http"
        if self.kind == "otlp_http":
            return urlparse(self.endpoint or "").scheme == "http"
        return False


class ClassifiedExporter:
    """An SDK log exporter plus a way to learn why its last export failed.

    ``spec`` is None for an exporter handed in by the application or a test
    (``install(exporters=...)``): it gets the SDK record path, and its failures
    are "unknown" (retried a few times, then counted).
    """

    def __init__(self, exporter: Any, spec: ExporterSpec | None = None) -> None:
        self.exporter = exporter
        self.spec = spec
        self.last_error: str | None = None

    @property
    def accepts_encoded(self) -> bool:
        """OTLP exporters take pre-encoded requests (see ``otlp_wire``)."""
        return self.spec is not None and self.spec.kind in ("otlp_grpc", "otlp_http")

    def export(self, batch: Sequence[Any]) -> ExportOutcome:
        probe = getattr(self.exporter, "_torch_otel_probe", None)
        if probe is not None:
            probe.reset()
        try:
            result = self.exporter.export(batch)
        except Exception as error:  # an exporter should not raise; count it, don't crash
            self.last_error = f"{type(error).__name__}: {error}"
            return ExportOutcome.UNKNOWN
        if getattr(result, "name", str(result)) == "SUCCESS" or result is True:
            self.last_error = None
            return ExportOutcome.SUCCESS
        if probe is None:
            self.last_error = "export failed"
            return ExportOutcome.UNKNOWN
        self.last_error = probe.description()
        return probe.outcome()

    def shutdown(self) -> None:
        try:
            self.exporter.shutdown()
        except Exception:  # pragma: no cover - shutting down must not raise
            pass

    def __repr__(self) -> str:
        target = self.spec.describe() if self.spec is not None else type(self.exporter).__name__
        return f"<ClassifiedExporter {target}>"


# --------------------------------------------------------------------------------------
# Validation (runs in install(), on the caller's thread)


def parse_headers(headers_list: str | None, pairs: Sequence[Any] | None, setting: str) -> dict:
    """Headers from ``headers_list`` (``k=v,k=v``) and ``headers`` (name/value pairs).

    Error messages name the header, never its value (values are tokens).
    """
    from urllib.parse import unquote

    result: dict[str, str] = {}
    if headers_list:
        for index, item in enumerate(headers_list.split(",")):
            item = item.strip()
            if not item:
                continue
            if "=" not in item:
                raise ConfigError(
                    setting,
                    f"header #{index + 1} is not of the form name=value "
                    "(value not shown: headers often carry credentials)",
                )
            name, value = item.split("=", 1)
            name = unquote(name.strip())
            if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name):
                raise ConfigError(setting, f"header name {name!r} is not a valid HTTP header name")
            result[name.lower()] = unquote(value.strip())
    for pair in pairs or ():
        name = pair.name if hasattr(pair, "name") else pair["name"]
        value = pair.value if hasattr(pair, "value") else pair.get("value")
        if value is not None:
            result[str(name).lower()] = str(value)
    return result


def validate_endpoint(endpoint: str | None, setting: str, default: str) -> str:
    endpoint = endpoint or default
    try:
        parsed = urlparse(endpoint)
        port = parsed.port
    except ValueError as error:
        raise ConfigError(setting, f"endpoint {endpoint!r} is malformed: {error}") from None
    if parsed.scheme not in ("http", "https"):
        raise ConfigError(
            setting,
            f"endpoint {endpoint!r} must start with http:// or https:// "
            "(e.g. http://localhost:4317)",
        )
    if not parsed.hostname:
        raise ConfigError(setting, f"endpoint {endpoint!r} has no host name")
    if port is None and parsed.netloc.endswith(":"):
        raise ConfigError(setting, f"endpoint {endpoint!r} has an empty port")
    return endpoint


def normalize_http_endpoint(endpoint: str) -> str:
    """Collapse the ``//v1/logs`` a base URL with a trailing slash produces."""
    parsed = urlparse(endpoint)
    path = re.sub(r"/{2,}", "/", parsed.path)
    return urlunparse(parsed._replace(path=path))


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_tls(tls: Any, endpoint: str, setting: str, *, grpc: bool) -> TlsFiles:
    if tls is None:
        return TlsFiles()
    files = TlsFiles(
        ca_file=tls.ca_file or None,
        cert_file=tls.cert_file or None,
        key_file=tls.key_file or None,
        insecure=getattr(tls, "insecure", None) if grpc else None,
    )
    for label, path in (
        ("ca_file", files.ca_file),
        ("cert_file", files.cert_file),
        ("key_file", files.key_file),
    ):
        if path is None:
            continue
        candidate = Path(path)
        if not candidate.is_file():
            raise ConfigError(f"{setting}.tls.{label}", f"file {path!r} does not exist")
        try:
            candidate.read_bytes()
        except OSError as error:
            raise ConfigError(
                f"{setting}.tls.{label}", f"file {path!r} is not readable: {error.strerror}"
            ) from None
    if bool(files.cert_file) != bool(files.key_file):
        raise ConfigError(
            f"{setting}.tls",
            "mutual TLS needs both cert_file and key_file "
            "(OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY)",
        )
    plaintext = urlparse(endpoint).scheme == "http" if files.insecure is None else files.insecure
    if plaintext and (files.ca_file or files.cert_file):
        raise ConfigError(
            setting,
            f"TLS files are configured but endpoint {endpoint!r} is plaintext (http://); "
            "use https:// so the certificates are used (torch-otel never falls back "
            "to plaintext)",
        )
    return files


def validate_compression(value: str | None, setting: str) -> str | None:
    if value is None or value.lower() == "none":
        return None
    if value.lower() in ("gzip",):
        return "gzip"
    raise ConfigError(setting, f"compression {value!r} is not supported (use gzip or none)")


def spec_from_config(exporter_config: Any, setting: str) -> ExporterSpec:
    """Validate one ``LogRecordExporter`` block of a profile into an :class:`ExporterSpec`."""
    if exporter_config.otlp_grpc is not None:
        cfg = exporter_config.otlp_grpc
        endpoint = validate_endpoint(cfg.endpoint, f"{setting}.otlp_grpc.endpoint", _GRPC_DEFAULT)
        return ExporterSpec(
            kind="otlp_grpc",
            endpoint=endpoint,
            headers=parse_headers(cfg.headers_list, cfg.headers, f"{setting}.otlp_grpc.headers"),
            compression=validate_compression(cfg.compression, f"{setting}.otlp_grpc.compression"),
            timeout_s=_timeout_s(cfg.timeout),
            tls=validate_tls(cfg.tls, endpoint, f"{setting}.otlp_grpc", grpc=True),
        )
    if exporter_config.otlp_http is not None:
        cfg = exporter_config.otlp_http
        endpoint = validate_endpoint(cfg.endpoint, f"{setting}.otlp_http.endpoint", _HTTP_DEFAULT)
        encoding = getattr(cfg.encoding, "value", cfg.encoding)
        if encoding not in (None, "protobuf"):
            raise ConfigError(
                f"{setting}.otlp_http.encoding",
                f"encoding {encoding!r} is not supported by the OTLP/HTTP exporter (use protobuf)",
            )
        return ExporterSpec(
            kind="otlp_http",
            endpoint=normalize_http_endpoint(endpoint),
            headers=parse_headers(cfg.headers_list, cfg.headers, f"{setting}.otlp_http.headers"),
            compression=validate_compression(cfg.compression, f"{setting}.otlp_http.compression"),
            timeout_s=_timeout_s(cfg.timeout),
            tls=validate_tls(cfg.tls, endpoint, f"{setting}.otlp_http", grpc=False),
        )
    if exporter_config.otlp_file_development is not None:
        stream = exporter_config.otlp_file_development.output_stream
        return ExporterSpec(
            kind="file", path=_file_path(stream, f"{setting}.otlp_file/development")
        )
    if exporter_config.console is not None:
        return ExporterSpec(kind="console")
    extra = getattr(exporter_config, "additional_properties", None) or {}
    names = ", ".join(sorted(extra)) or "none given"
    raise ConfigError(
        setting,
        f"unsupported log exporter ({names}); torch-otel supports otlp_grpc, otlp_http, "
        "otlp_file/development and console",
    )


_GRPC_DEFAULT = "http://localhost:4317"
_HTTP_DEFAULT = "http://localhost:4318/v1/logs"


def _timeout_s(timeout_ms: int | None) -> float:
    if timeout_ms is None or timeout_ms <= 0:
        return 10.0
    return timeout_ms / 1000.0


def _file_path(stream: str | None, setting: str) -> str | None:
    if stream is None or stream == "stdout":
        return None
    parsed = urlparse(stream)
    if parsed.scheme != "file" or not parsed.path or parsed.path == "/":
        raise ConfigError(
            setting,
            f"output_stream {stream!r} must be 'stdout' or file:///absolute/path "
            "(set --output / TORCH_OTEL_OUTPUT)",
        )
    path = Path(parsed.path)
    if path.is_dir():
        raise ConfigError(setting, f"output {str(path)!r} is a directory, not a file")
    parent = path.parent
    if not parent.is_dir():
        raise ConfigError(setting, f"directory {str(parent)!r} of output file does not exist")
    return str(path)


def warn_if_unencrypted(spec: ExporterSpec) -> None:
    """One warning for plaintext OTLP to a host other than this machine."""
    if spec.kind not in ("otlp_grpc", "otlp_http") or not spec.is_plaintext:
        return
    host = urlparse(spec.endpoint or "").hostname
    if not is_loopback_host(host):
        _log.warning(
            "torch-otel: OTLP endpoint %s uses http:// to a non-loopback host; "
            "compile logs will travel unencrypted (use https:// for TLS)",
            spec.endpoint,
        )


# --------------------------------------------------------------------------------------
# Building (runs on the export thread, first time it is needed)


def build_exporter(spec: ExporterSpec) -> ClassifiedExporter:
    if spec.kind == "otlp_grpc":
        return ClassifiedExporter(_build_grpc(spec), spec)
    if spec.kind == "otlp_http":
        return ClassifiedExporter(_build_http(spec), spec)
    if spec.kind == "file":
        from opentelemetry.exporter.otlp.json.file._log_exporter import FileLogExporter

        from torch_otel.signals import shared_line_stream

        exporter = (
            FileLogExporter(stream=shared_line_stream(spec.path))
            if spec.path
            else FileLogExporter()
        )
        return ClassifiedExporter(exporter, spec)
    from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter

    return ClassifiedExporter(ConsoleLogRecordExporter(), spec)


class _FailureProbe:
    """Remembers the last failure status an exporter's transport saw."""

    def __init__(self, retryable_codes: frozenset[Any] = frozenset()) -> None:
        self.retryable_codes = retryable_codes
        self.grpc_code: Any = None
        self.http_status: int | None = None
        self.connection_error: bool = False
        self.detail: str | None = None

    def reset(self) -> None:
        self.grpc_code = None
        self.http_status = None
        self.connection_error = False
        self.detail = None

    def outcome(self) -> ExportOutcome:
        if self.grpc_code is not None:
            if self.grpc_code in self.retryable_codes:
                return ExportOutcome.RETRYABLE
            return ExportOutcome.PERMANENT
        if self.http_status is not None:
            if self.http_status in RETRYABLE_HTTP_STATUSES:
                return ExportOutcome.RETRYABLE
            return ExportOutcome.PERMANENT
        if self.connection_error:
            return ExportOutcome.RETRYABLE
        return ExportOutcome.UNKNOWN

    def description(self) -> str:
        if self.grpc_code is not None:
            return f"gRPC {getattr(self.grpc_code, 'name', self.grpc_code)}: {self.detail or ''}"
        if self.http_status is not None:
            return f"HTTP {self.http_status}: {self.detail or ''}"
        return self.detail or "export failed"


def _build_grpc(spec: ExporterSpec) -> Any:
    import grpc
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

    from torch_otel.otlp_wire import EncodedLogsRequest

    class _RecordingStub:
        def __init__(self, inner: Any, probe: _FailureProbe) -> None:
            self._inner = inner
            self._probe = probe

        def Export(self, *args: Any, **kwargs: Any) -> Any:
            try:
                return self._inner.Export(*args, **kwargs)
            except grpc.RpcError as error:
                self._probe.grpc_code = error.code()
                self._probe.detail = error.details()
                raise

    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
        ExportLogsServiceResponse,
    )

    class _RawLogsStub:
        """``LogsService.Export`` taking an already serialized request."""

        def __init__(self, channel: Any) -> None:
            self.Export = channel.unary_unary(
                "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
                request_serializer=None,
                response_deserializer=ExportLogsServiceResponse.FromString,
            )

    class _ProbedGrpcLogExporter(OTLPLogExporter):
        """The OTel gRPC log exporter, sending pre-encoded requests, reporting status codes."""

        def _initialize_channel_and_stub(self) -> None:
            super()._initialize_channel_and_stub()
            probe = getattr(self, "_torch_otel_probe", None)
            raw = _RawLogsStub(self._channel)
            self._client = _RecordingStub(raw, probe) if probe is not None else raw

        def _translate_data(self, data: Any) -> Any:
            if isinstance(data, EncodedLogsRequest):
                return data.payload
            return super()._translate_data(data).SerializeToString()

    credentials = None
    insecure = spec.is_plaintext
    if not insecure:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=_read(spec.tls.ca_file),
            private_key=_read(spec.tls.key_file),
            certificate_chain=_read(spec.tls.cert_file),
        )
    compression = grpc.Compression.Gzip if spec.compression == "gzip" else None
    exporter = _ProbedGrpcLogExporter.__new__(_ProbedGrpcLogExporter)
    probe = _FailureProbe()
    exporter._torch_otel_probe = probe
    _ProbedGrpcLogExporter.__init__(
        exporter,
        endpoint=spec.endpoint,
        insecure=insecure,
        credentials=credentials,
        headers=tuple(spec.headers.items()),
        timeout=spec.timeout_s,
        compression=compression,
    )
    probe.retryable_codes = frozenset(exporter._retryable_error_codes)
    return exporter


def _build_http(spec: ExporterSpec) -> Any:
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

    from torch_otel.otlp_wire import EncodedLogsRequest

    class _EncodedHttpLogExporter(OTLPLogExporter):
        """The OTel HTTP log exporter, also sending pre-encoded requests."""

        def export(self, batch: Any) -> Any:
            if not isinstance(batch, EncodedLogsRequest):
                return super().export(batch)
            from opentelemetry.sdk._logs.export import LogRecordExportResult

            if self._shutdown:
                return LogRecordExportResult.FAILURE
            result = self._client.export(batch.payload)
            return (
                LogRecordExportResult.SUCCESS if result.success else LogRecordExportResult.FAILURE
            )

    exporter = _EncodedHttpLogExporter(
        endpoint=spec.endpoint,
        session=_pinned_ca_session() if spec.tls.ca_file else None,
        certificate_file=spec.tls.ca_file,
        client_key_file=spec.tls.key_file,
        client_certificate_file=spec.tls.cert_file,
        headers=spec.headers,
        timeout=spec.timeout_s,
        compression=Compression.Gzip if spec.compression == "gzip" else Compression.NoCompression,
    )
    probe = _FailureProbe()
    exporter._torch_otel_probe = probe
    client = getattr(exporter, "_client", None)
    if client is not None and hasattr(client, "export"):
        original_export = client.export

        def recording_export(data: bytes) -> Any:
            result = original_export(data)
            if not getattr(result, "success", True):
                probe.http_status = getattr(result, "status_code", None)
                error = getattr(result, "error", None)
                probe.connection_error = probe.http_status is None and error is not None
                probe.detail = str(getattr(result, "reason", None) or error or "")
            return result

        client.export = recording_export
    return exporter


def _pinned_ca_session() -> Any:
    """A requests session whose configured CA file wins over ``REQUESTS_CA_BUNDLE``.

    requests lets ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` replace a session's
    ``verify`` path on every request, which would silently swap the CA the
    profile named for the machine's bundle (and fail, or trust the wrong CAs).
    """
    import requests

    class PinnedCaSession(requests.Session):
        def merge_environment_settings(  # type: ignore[override]
            self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
        ) -> Any:
            settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
            if isinstance(self.verify, str) and verify in (None, True):
                settings["verify"] = self.verify
            return settings

    return PinnedCaSession()


def _read(path: str | None) -> bytes | None:
    return Path(path).read_bytes() if path else None
