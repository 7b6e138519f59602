"""Exporter specs: one exporter of a profile, validated, not yet built.

A profile's ``logger_provider`` / ``tracer_provider`` / ``meter_provider`` blocks
are validated here, on the caller's thread (``install()``, the CLI), into
:class:`ExporterSpec` values; building the exporters is deferred to the export
thread (``torch_otel.export.exporters``) so that a process that never logs
anything never pays for importing gRPC.

Added to what ``opentelemetry-configuration`` checks: the ``tls`` block is
honoured (0.66 ignores it) and a CA file with a plaintext ``http://`` endpoint is
an error instead of a silent plaintext connection; endpoints, headers and
compression are checked with messages that name the setting and never a secret.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

from torch_otel.config.values import Bounds, bounded_number
from torch_otel.errors import ConfigError
from torch_otel.redaction import Redactor, redact_url, url_secrets

_log = logging.getLogger("torch_otel")

OTLP_KINDS = ("otlp_grpc", "otlp_http")


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
    ``headers`` and the endpoint's userinfo and query may hold secrets: ``repr``
    and :meth:`describe` never show them, and :meth:`redactor` removes them from
    text torch-otel did not write (transport errors, the SDK's log lines).
    """

    kind: str  # "otlp_grpc" | "otlp_http" | "console" | "file"
    endpoint: str | None = field(default=None, repr=False)
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
                f"OTLP {protocol} to {redact_url(self.endpoint or '')} ({security}; "
                f"headers: {header_names}; "
                f"timeout {self.timeout_s:g}s)"
            )
        if self.kind == "file":
            return f"OTLP/JSON lines to {self.path}"
        return "console (JSON on stdout)"

    def redactor(self) -> Redactor:
        """Removes this exporter's header values and URL secrets from free text."""
        return Redactor([*self.headers.values(), *url_secrets(self.endpoint)])

    @property
    def is_plaintext(self) -> bool:
        if self.kind == "otlp_grpc":
            if self.tls.insecure is not None:
                return bool(self.tls.insecure)
            return urlparse(self.endpoint or "").scheme == "http"
        if self.kind == "otlp_http":
            return urlparse(self.endpoint or "").scheme == "http"
        return False


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
            result[name.lower()] = checked_header_value(name, unquote(value.strip()), setting)
    for pair in pairs or ():
        name = pair.name if hasattr(pair, "name") else pair["name"]
        value = pair.value if hasattr(pair, "value") else pair.get("value")
        if value is not None:
            result[str(name).lower()] = checked_header_value(str(name), str(value), setting)
    return result


def checked_header_value(name: str, value: str, setting: str) -> str:
    """``value`` if every character is visible ASCII or a space; else a ConfigError.

    A pasted zero-width space or a newline would make every export fail, and the
    SDK's warning would then print the value: refused here, naming the header and the
    offending character's position, never the value.
    """
    for position, character in enumerate(value, start=1):
        if not (" " <= character <= "~"):
            raise ConfigError(
                setting,
                f"header {name!r} has an invisible, control or non-ASCII character "
                f"(U+{ord(character):04X}) at position {position} of its value "
                "(value not shown: headers often carry credentials)",
            )
    return value


def validate_endpoint(endpoint: str | None, setting: str, default: str) -> str:
    endpoint = endpoint or default
    try:
        parsed = urlparse(endpoint)
        port = parsed.port
    except ValueError as error:
        problem = "is malformed (bad port)" if "port" in str(error).lower() else "is malformed"
        raise ConfigError(setting, f"endpoint {redact_url(endpoint)!r} {problem}") from None
    if parsed.scheme not in ("http", "https"):
        raise ConfigError(
            setting,
            f"endpoint {redact_url(endpoint)!r} must start with http:// or https:// "
            "(e.g. http://localhost:4317)",
        )
    if not parsed.hostname:
        raise ConfigError(setting, f"endpoint {redact_url(endpoint)!r} has no host name")
    if port is None and parsed.netloc.endswith(":"):
        raise ConfigError(setting, f"endpoint {redact_url(endpoint)!r} has an empty port")
    return endpoint


def normalize_http_endpoint(endpoint: str) -> str:
    """The URL the profile meant: ``${BASE}/v1/logs`` with any query after the path.

    Collapses the ``//v1/logs`` a base URL with a trailing slash produces, and moves a
    signal path the profile appended after a query string (``?token=x/v1/logs``) back
    in front of it (``/v1/logs?token=x``).
    """
    parsed = urlparse(endpoint)
    path, query = parsed.path, parsed.query
    appended = re.search(r"/v1/[a-z]+/?$", query)
    if appended:
        query = query[: appended.start()]
        path = path.rstrip("/") + appended.group(0)
    path = re.sub(r"/{2,}", "/", path)
    return urlunparse(parsed._replace(path=path, query=query))


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
            f"TLS files are configured but endpoint {redact_url(endpoint)!r} is plaintext "
            "(http://); "
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
            timeout_s=_timeout_s(cfg.timeout, f"{setting}.otlp_grpc.timeout"),
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
            timeout_s=_timeout_s(cfg.timeout, f"{setting}.otlp_http.timeout"),
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


TIMEOUT_BOUNDS = Bounds(0, 3_600_000, unit="ms")
"""An exporter's ``timeout`` (0 or unset: the 10 s default)."""


def _timeout_s(timeout_ms: Any, setting: str) -> float:
    checked = bounded_number(timeout_ms, setting, TIMEOUT_BOUNDS)
    return checked / 1000.0 if checked else 10.0


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
            redact_url(spec.endpoint or ""),
        )
