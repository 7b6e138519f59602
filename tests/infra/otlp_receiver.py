"""A real OTLP receiver on loopback sockets, for tests of OpenTelemetry exporters.

Why not a mock: the things that break in production are on the wire - message
size limits, TLS handshakes, retries against an unavailable collector, a
collector that accepts the connection and never answers, a restarted collector
on the same address. A mock of the exporter hides all of that. This receiver
speaks OTLP/gRPC and OTLP/HTTP (protobuf and JSON) with the official
``opentelemetry-proto`` messages, stores every accepted request, and can be
switched at run time into the failure modes a real collector shows.

Defaults follow the OpenTelemetry Collector's ``otlp`` receiver: 4 MiB maximum
gRPC message (``RESOURCE_EXHAUSTED`` above it), ``/v1/logs``, ``/v1/traces`` and
``/v1/metrics`` for HTTP, HTTP error bodies as ``google.rpc.Status``.

Quick use::

    with OtlpReceiver() as receiver:
        exporter = OTLPLogExporter(endpoint=receiver.grpc_endpoint, timeout=2)
        exporter.export(records)
        receiver.wait_for_logs(3)
        assert receiver.log_records()[0].body == "hello"

Faults (all thread-safe, switchable while exports are running)::

    receiver.fail_next(2)                      # next 2 requests: UNAVAILABLE / HTTP 503
    receiver.fail_next(1, Fault.INVALID_ARGUMENT)  # non-retryable: INVALID_ARGUMENT / 400
    receiver.stall(); ...; receiver.unstall()  # black hole: never answer, never store
    receiver.require_bearer_token("t0k3n")     # UNAUTHENTICATED / HTTP 401 without it
    receiver.stop(); ...; receiver.start()     # same ports again (also: restart())

TLS: pass ``tls_cert_file``/``tls_key_file`` (and ``client_ca_file`` plus
``require_client_cert=True`` for mutual TLS); ``tls_certs.generate_tls_files``
makes suitable files and ``TlsFiles.receiver_kwargs()`` builds the arguments.

Fixtures: :func:`receiver_fixture` makes a pytest fixture, in a test module
or a conftest (``otlp_receiver = receiver_fixture()``). For per-test settings
such as TLS files from another fixture, use the context manager::

    @pytest.fixture
    def mtls_receiver(tls_files):
        with OtlpReceiver(**tls_files.receiver_kwargs(mutual=True)) as r:
            yield r
"""

from __future__ import annotations

import base64
import contextlib
import enum
import hmac
import http.server
import json
import logging
import re
import socket
import socketserver
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, NoReturn
from urllib.parse import urlsplit

import grpc
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2,
    metrics_service_pb2_grpc,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "Attempt",
    "Fault",
    "LogRecordView",
    "MetricPointView",
    "MetricView",
    "OddAnswer",
    "OtlpReceiver",
    "ReceivedRequest",
    "Signal",
    "SpanView",
    "any_value_to_python",
    "attributes_to_dict",
    "receiver_fixture",
]

_log = logging.getLogger(__name__)

#: The Collector's default gRPC ``max_recv_msg_size_mib`` (4) in bytes.
DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024

Signal = Literal["logs", "traces", "metrics"]
Transport = Literal["grpc", "http"]

_SIGNALS: tuple[Signal, ...] = ("logs", "traces", "metrics")
_REQUEST_TYPES: dict[Signal, type[Message]] = {
    "logs": logs_service_pb2.ExportLogsServiceRequest,
    "traces": trace_service_pb2.ExportTraceServiceRequest,
    "metrics": metrics_service_pb2.ExportMetricsServiceRequest,
}
_RESPONSE_TYPES: dict[Signal, type[Message]] = {
    "logs": logs_service_pb2.ExportLogsServiceResponse,
    "traces": trace_service_pb2.ExportTraceServiceResponse,
    "metrics": metrics_service_pb2.ExportMetricsServiceResponse,
}
_HTTP_PATHS: dict[str, Signal] = {f"/v1/{signal}": signal for signal in _SIGNALS}

_PROTOBUF = "application/x-protobuf"
_JSON = "application/json"

# How long stop() waits for each piece to wind down before giving up on it.
# Everything is a daemon thread, so giving up never blocks interpreter exit.
_STOP_JOIN_SECONDS = 5.0
# Rebinding the same port right after stop() almost always works at once
# (SO_REUSEADDR / SO_REUSEPORT); the retry window only covers slow teardown.
_REBIND_SECONDS = 5.0


class Fault(enum.Enum):
    """Error answers that :meth:`OtlpReceiver.fail_next` can inject.

    Each value is ``(gRPC status, HTTP status)``, chosen as the Collector
    answers in the matching situation. The OTLP exporters retry the first and
    last (with backoff), and give up at once on ``INVALID_ARGUMENT``.
    """

    UNAVAILABLE = (grpc.StatusCode.UNAVAILABLE, 503)
    INVALID_ARGUMENT = (grpc.StatusCode.INVALID_ARGUMENT, 400)
    RESOURCE_EXHAUSTED = (grpc.StatusCode.RESOURCE_EXHAUSTED, 429)

    @property
    def grpc_code(self) -> grpc.StatusCode:
        return self.value[0]

    @property
    def http_status(self) -> int:
        return self.value[1]

    @property
    def retryable(self) -> bool:
        return self is not Fault.INVALID_ARGUMENT


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class ReceivedRequest:
    """One accepted export request, as decoded by the receiver.

    ``size`` is the serialized protobuf size (``ByteSize()``) of ``message`` -
    the number the 4 MiB limits are about, independent of transport and
    compression. ``wire_bytes`` is the HTTP body length as sent (compressed),
    ``None`` for gRPC where the framing is hidden by grpcio.
    """

    signal: Signal
    transport: Transport
    message: Message
    headers: dict[str, str]
    size: int
    wire_bytes: int | None
    content_type: str
    content_encoding: str | None
    peer: str
    received_at: float  # time.monotonic()


@dataclass(frozen=True)
class Attempt:
    """Any request that reached the receiver, whatever happened to it.

    ``outcome`` is one of ``accepted``, ``stalled``, ``unauthenticated``,
    ``injected:<FAULT>``, ``too_large``, ``bad_request``, ``unsupported_media_type``,
    ``not_found``, ``tls_handshake_failed``. gRPC requests over the size limit
    are refused inside grpcio before any handler runs and so never show up.
    """

    transport: Transport
    signal: Signal | None
    outcome: str
    headers: dict[str, str]
    at: float  # time.monotonic()


@dataclass(frozen=True)
class LogRecordView:
    """A log record flattened together with its resource and scope, values as Python types."""

    resource: dict[str, Any]
    scope_name: str
    scope_version: str
    body: Any
    attributes: dict[str, Any]
    severity_text: str
    severity_number: int
    trace_id: str  # lowercase hex, "" when unset
    span_id: str  # lowercase hex, "" when unset
    event_name: str
    time_unix_nano: int
    observed_time_unix_nano: int
    flags: int
    transport: Transport


@dataclass(frozen=True)
class SpanView:
    """A span flattened together with its resource and scope."""

    resource: dict[str, Any]
    scope_name: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    status_code: int
    start_time_unix_nano: int
    end_time_unix_nano: int
    transport: Transport


@dataclass(frozen=True)
class MetricPointView:
    """One data point: ``value`` for gauges/sums, ``count``/``sum`` for histograms."""

    attributes: dict[str, Any]
    value: float | int | None
    count: int | None
    sum: float | None


@dataclass(frozen=True)
class MetricView:
    """A metric flattened together with its resource and scope."""

    resource: dict[str, Any]
    scope_name: str
    name: str
    description: str
    unit: str
    kind: str  # "gauge", "sum", "histogram", "exponential_histogram", "summary", ""
    points: list[MetricPointView] = field(default_factory=list)
    transport: Transport = "grpc"


def any_value_to_python(value: common_pb2.AnyValue) -> Any:
    """Convert an OTLP ``AnyValue`` into the Python value an SDK user passed in."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value_to_python(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attributes_to_dict(value.kvlist_value.values)
    return getattr(value, kind)


def attributes_to_dict(attributes: Sequence[common_pb2.KeyValue]) -> dict[str, Any]:
    """Convert repeated ``KeyValue`` into a plain dict (later duplicates win)."""
    return {kv.key: any_value_to_python(kv.value) for kv in attributes}


# --------------------------------------------------------------------------- decoding


class _Reject(Exception):
    """Raised inside request handling to answer with an error instead of storing."""

    def __init__(
        self,
        outcome: str,
        grpc_code: grpc.StatusCode,
        http_status: int,
        message: str,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.grpc_code = grpc_code
        self.http_status = http_status
        self.message = message
        self.retry_after = retry_after


class _Dropped(Exception):
    """The request was held by a stall; it is dropped without an answer."""


@dataclass(frozen=True)
class OddAnswer:
    """A 2xx/3xx answer that is not a plain success (see :meth:`OtlpReceiver.answer_next`).

    ``partial_rejected`` > 0: the request is stored and the answer carries
    ``partial_success`` (both transports). ``redirect_to``: HTTP 302 with that
    ``Location``, nothing stored. ``html``: HTTP 200 with an HTML page (what a
    captive portal or a misrouted ingress answers), nothing stored.
    """

    partial_rejected: int = 0
    error_message: str = ""
    redirect_to: str | None = None
    html: bool = False


class _OddReply(Exception):
    """Raised inside HTTP request handling to answer a redirect or an HTML page."""

    def __init__(self, answer: OddAnswer) -> None:
        super().__init__("odd answer")
        self.answer = answer


_HEX_ID_FIELDS = {"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"}
_HEX_RE = re.compile(r"^[0-9a-fA-F]*$")


def _hex_ids_to_base64(obj: Any) -> Any:
    """Rewrite OTLP/JSON hex trace/span ids into the base64 that protobuf JSON expects.

    OTLP/JSON encodes ids as hex (16/32 chars), while ``json_format`` (and
    ``MessageToJson``) use base64 for ``bytes`` (12/24 chars). The lengths never
    collide, so both encodings are accepted.
    """
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for key, val in obj.items():
            if (
                key in _HEX_ID_FIELDS
                and isinstance(val, str)
                and len(val) in (16, 32)
                and _HEX_RE.match(val)
            ):
                val = base64.b64encode(bytes.fromhex(val)).decode("ascii")
            out[key] = _hex_ids_to_base64(val)
        return out
    if isinstance(obj, list):
        return [_hex_ids_to_base64(v) for v in obj]
    return obj


def _decode_body(signal: Signal, body: bytes, content_type: str) -> Message:
    message = _REQUEST_TYPES[signal]()
    try:
        if content_type == _PROTOBUF:
            message.ParseFromString(body)
        else:
            parsed = json.loads(body.decode("utf-8")) if body.strip() else {}
            json_format.ParseDict(_hex_ids_to_base64(parsed), message, ignore_unknown_fields=True)
    except (DecodeError, json_format.ParseError, ValueError, UnicodeDecodeError) as exc:
        raise _Reject(
            "bad_request",
            grpc.StatusCode.INVALID_ARGUMENT,
            400,
            f"cannot decode {content_type} body: {exc}",
        ) from exc
    return message


def _decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo ``Content-Encoding`` without ever inflating past ``limit`` bytes."""
    if encoding in (None, "", "identity"):
        return body
    if encoding == "gzip":
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS)
    else:
        raise _Reject(
            "bad_request",
            grpc.StatusCode.INVALID_ARGUMENT,
            400,
            f"unsupported Content-Encoding {encoding!r}",
        )
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise _Reject(
            "bad_request", grpc.StatusCode.INVALID_ARGUMENT, 400, f"bad {encoding} body: {exc}"
        ) from exc
    if len(out) > limit:
        raise _Reject(
            "too_large",
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            413,
            f"decompressed body exceeds {limit} bytes",
        )
    return out


def _lower_headers(pairs: Iterable[tuple[str, Any]]) -> dict[str, str]:
    """Header/metadata pairs as a dict with lowercase keys; repeated keys joined by ', '."""
    out: dict[str, str] = {}
    for key, value in pairs:
        if isinstance(value, bytes):  # binary "-bin" gRPC metadata
            value = base64.b64encode(value).decode("ascii")
        k = key.lower()
        out[k] = f"{out[k]}, {value}" if k in out else str(value)
    return out


# --------------------------------------------------------------------------- gRPC


class _LogsServicer(logs_service_pb2_grpc.LogsServiceServicer):
    def __init__(self, receiver: OtlpReceiver) -> None:
        self._receiver = receiver

    def Export(self, request: Message, context: grpc.ServicerContext) -> Message:
        return self._receiver._grpc_export("logs", request, context)


class _TraceServicer(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, receiver: OtlpReceiver) -> None:
        self._receiver = receiver

    def Export(self, request: Message, context: grpc.ServicerContext) -> Message:
        return self._receiver._grpc_export("traces", request, context)


class _MetricsServicer(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, receiver: OtlpReceiver) -> None:
        self._receiver = receiver

    def Export(self, request: Message, context: grpc.ServicerContext) -> Message:
        return self._receiver._grpc_export("metrics", request, context)


# --------------------------------------------------------------------------- HTTP


class _HttpServer(http.server.ThreadingHTTPServer):
    """ThreadingHTTPServer that can force-close its keep-alive connections.

    The stdlib server only stops *accepting*; an exporter's pooled keep-alive
    connection would keep being served by its handler thread after stop(), so
    a "stopped" collector would still accept data. We track live connections
    and shut their sockets down on stop. ``block_on_close`` is off because we
    join handler threads ourselves, with a timeout.
    """

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(
        self,
        address: tuple[str, int],
        receiver: OtlpReceiver,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        self.receiver = receiver
        self.ssl_context = ssl_context
        self._lock = threading.Lock()
        self._open_connections: set[socket.socket] = set()
        self._handler_threads: set[threading.Thread] = set()
        super().__init__(address, _HttpHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind() calls socket.getfqdn(), a reverse DNS lookup
        # that can take seconds on a sandbox without DNS; we know our name.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._run_request,
            args=(request, client_address),
            name=f"otlp-receiver-http-{client_address[1]}",
            daemon=True,
        )
        with self._lock:
            self._handler_threads.add(thread)
        thread.start()

    def _run_request(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._handler_threads.discard(threading.current_thread())

    def track(self, conn: socket.socket) -> None:
        with self._lock:
            self._open_connections.add(conn)

    def untrack(self, conn: socket.socket) -> None:
        with self._lock:
            self._open_connections.discard(conn)

    def close_connections(self) -> None:
        with self._lock:
            conns = list(self._open_connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def join_handlers(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._handler_threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up, failed handshakes and stop() closing sockets are
        # expected here; the default would print a traceback per connection.
        _log.debug(
            "OTLP/HTTP connection from %s ended with an error", client_address, exc_info=True
        )


class _HttpHandler(http.server.BaseHTTPRequestHandler):
    server: _HttpServer
    protocol_version = "HTTP/1.1"  # keep-alive, as the exporters' sessions expect
    timeout = 60  # idle keep-alive connections do not live forever
    server_version = "otlp-test-receiver"

    def setup(self) -> None:
        ctx = self.server.ssl_context
        if ctx is not None:
            # The handshake runs here, in the connection's own thread, so a
            # client that never completes it cannot block the accept loop.
            self.request.settimeout(10)
            try:
                self.request = ctx.wrap_socket(self.request, server_side=True)
            except (OSError, ssl.SSLError):
                self.server.receiver._record_attempt("http", None, "tls_handshake_failed", {})
                raise
        self.server.track(self.request)
        super().setup()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.request)
            if isinstance(self.request, ssl.SSLSocket):
                with contextlib.suppress(OSError):
                    self.request.close()

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("OTLP/HTTP %s " + format, self.address_string(), *args)

    def _read_body(self, limit: int) -> bytes:
        """Read the request body, raising a 413 ``_Reject`` past ``limit`` bytes.

        An oversized body is still drained (up to a hard cap) so the client sees
        the 413 instead of a connection reset while it is still sending.
        """
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            total = 0
            while True:
                size_line = self.rfile.readline(1024)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                chunk = self.rfile.read(size)
                self.rfile.readline(1024)
                if total <= limit:
                    chunks.append(chunk)
                elif total > 16 * limit:
                    self.close_connection = True
                    break
            if total > limit:
                raise _Reject(
                    "too_large", grpc.StatusCode.RESOURCE_EXHAUSTED, 413, "body too large"
                )
            return b"".join(chunks)
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            self.close_connection = True
            raise _Reject("bad_request", grpc.StatusCode.INVALID_ARGUMENT, 411, "Length Required")
        length = int(length_header)
        if length > limit:
            if length <= 16 * limit:
                remaining = length
                while remaining > 0:
                    got = self.rfile.read(min(remaining, 1 << 20))
                    if not got:
                        break
                    remaining -= len(got)
            else:
                self.close_connection = True
            raise _Reject(
                "too_large",
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                413,
                f"request body of {length} bytes exceeds the {limit}-byte limit",
            )
        return self.rfile.read(length)

    def _send(self, status: int, body: bytes, content_type: str, extra: Mapping[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in extra.items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _send_error(self, reject: _Reject, content_type: str) -> None:
        status = status_pb2.Status(code=reject.grpc_code.value[0], message=reject.message)
        extra: dict[str, str] = {}
        if reject.retry_after is not None:
            # Fractions are sent as given: RFC 9110 wants whole seconds, but the
            # Python OTLP exporters parse a float, and sub-second keeps tests fast.
            extra["Retry-After"] = f"{max(0.0, reject.retry_after):g}"
        if reject.http_status == 401:
            extra["WWW-Authenticate"] = "Bearer"
        if content_type == _JSON:
            body = json_format.MessageToJson(status).encode()
        elif content_type == _PROTOBUF:
            body = status.SerializeToString()
        else:
            content_type, body = "text/plain; charset=utf-8", reject.message.encode()
        self._send(reject.http_status, body, content_type, extra)

    def do_POST(self) -> None:
        receiver = self.server.receiver
        headers = _lower_headers(list(self.headers.items()))
        content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        signal = _HTTP_PATHS.get(urlsplit(self.path).path.rstrip("/") or "/")
        try:
            body = self._read_body(receiver.http_max_body_bytes)
        except _Reject as reject:
            receiver._record_attempt("http", signal, reject.outcome, headers)
            self._send_error(reject, content_type)
            return
        except (OSError, ValueError):
            self.close_connection = True
            return
        if signal is None:
            receiver._record_attempt("http", None, "not_found", headers)
            self._send_error(
                _Reject("not_found", grpc.StatusCode.UNIMPLEMENTED, 404, "unknown path"),
                content_type,
            )
            return

        def decode() -> Message:
            if content_type not in (_PROTOBUF, _JSON):
                raise _Reject(
                    "unsupported_media_type",
                    grpc.StatusCode.INVALID_ARGUMENT,
                    415,
                    f"unsupported Content-Type {content_type!r}",
                )
            encoding = headers.get("content-encoding", "").strip().lower() or None
            raw = _decompress(body, encoding, receiver.http_max_body_bytes)
            return _decode_body(signal, raw, content_type)

        try:
            odd = receiver._handle(
                signal,
                "http",
                headers,
                decode,
                peer=f"{self.client_address[0]}:{self.client_address[1]}",
                wire_bytes=len(body),
                content_type=content_type,
                content_encoding=headers.get("content-encoding"),
            )
        except _Dropped:
            # Black hole released (unstall/stop): hang up without any answer.
            self.close_connection = True
            return
        except _Reject as reject:
            self._send_error(reject, content_type)
            return
        except _OddReply as reply:
            if reply.answer.redirect_to:
                self._send(302, b"", "text/plain", {"Location": reply.answer.redirect_to})
            else:
                page = b"<html><body>Please sign in</body></html>"
                self._send(200, page, "text/html; charset=utf-8", {})
            return
        response = _response(signal, odd)
        if content_type == _JSON:
            self._send(200, json_format.MessageToJson(response).encode(), _JSON, {})
        else:
            self._send(200, response.SerializeToString(), _PROTOBUF, {})

    def _not_allowed(self) -> None:
        self.close_connection = True
        self._send(405, b"only POST is supported", "text/plain", {"Allow": "POST"})

    do_GET = do_PUT = do_DELETE = do_PATCH = _not_allowed


# --------------------------------------------------------------------------- receiver


@dataclass
class _PendingFault:
    fault: Fault
    retry_after: float | None
    signal: Signal | None


class OtlpReceiver:
    """Loopback OTLP/gRPC + OTLP/HTTP receiver that stores what exporters send.

    Both servers bind to ``host`` (127.0.0.1) on ephemeral ports at the first
    :meth:`start`; :meth:`stop` keeps the port numbers so that :meth:`start` /
    :meth:`restart` come back on the same endpoints, as a restarted collector
    would. Stored data and fault settings survive stop/start; use
    :meth:`clear` and :meth:`reset_faults` to reset them.

    All public methods are thread-safe.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        grpc_port: int = 0,
        http_port: int = 0,
        enable_grpc: bool = True,
        enable_http: bool = True,
        grpc_max_receive_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        http_max_body_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        tls_cert_file: str | Path | None = None,
        tls_key_file: str | Path | None = None,
        client_ca_file: str | Path | None = None,
        require_client_cert: bool = False,
        tls_hostname: str = "localhost",
        bearer_token: str | None = None,
        grpc_workers: int = 32,
    ) -> None:
        """Configure (but do not start) the receiver.

        Args:
            host: address to bind; loopback only, by design.
            grpc_port / http_port: 0 picks a free port at the first start().
            enable_grpc / enable_http: run only one transport if wanted.
            grpc_max_receive_bytes: ``grpc.max_receive_message_length``; the
                Collector's default is 4 MiB and larger messages get
                ``RESOURCE_EXHAUSTED``.
            http_max_body_bytes: larger HTTP bodies (raw or decompressed) get 413.
            tls_cert_file / tls_key_file: serve both transports over TLS.
            client_ca_file: CA to verify client certificates with.
            require_client_cert: mutual TLS; needs ``client_ca_file``.
            tls_hostname: host name used in the ``https://`` endpoints; must be
                in the server certificate's SAN.
            bearer_token: same as calling :meth:`require_bearer_token`.
            grpc_workers: size of the gRPC handler pool; stalled requests hold
                a worker each until released.
        """
        if (tls_cert_file is None) != (tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together")
        if require_client_cert and (client_ca_file is None or tls_cert_file is None):
            raise ValueError(
                "require_client_cert needs tls_cert_file, tls_key_file, client_ca_file"
            )
        if not (enable_grpc or enable_http):
            raise ValueError("enable at least one of gRPC and HTTP")
        self.host = host
        self.enable_grpc = enable_grpc
        self.enable_http = enable_http
        self.grpc_max_receive_bytes = grpc_max_receive_bytes
        self.http_max_body_bytes = http_max_body_bytes
        self.tls_cert_file = str(tls_cert_file) if tls_cert_file else None
        self.tls_key_file = str(tls_key_file) if tls_key_file else None
        self.client_ca_file = str(client_ca_file) if client_ca_file else None
        self.require_client_cert = require_client_cert
        self.tls_hostname = tls_hostname
        self._grpc_workers = grpc_workers

        self._cond = threading.Condition(threading.RLock())
        self._requests: list[ReceivedRequest] = []
        self._attempts: list[Attempt] = []
        self._record_counts: dict[Signal, int] = dict.fromkeys(_SIGNALS, 0)
        self._faults: list[_PendingFault] = []
        self._odd_answers: list[OddAnswer] = []
        self._stalled = False
        self._stall_generation = 0
        self._stopping = False
        self._bearer_token = bearer_token

        self._grpc_port = grpc_port
        self._http_port = http_port
        self._grpc_server: grpc.Server | None = None
        self._grpc_executor: ThreadPoolExecutor | None = None
        self._http_server: _HttpServer | None = None
        self._http_thread: threading.Thread | None = None
        self._running = False
        self._lifecycle = threading.Lock()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> OtlpReceiver:
        """Bind and serve; reuses the ports of an earlier start. Returns ``self``."""
        with self._lifecycle:
            if self._running:
                raise RuntimeError("OtlpReceiver is already running")
            with self._cond:
                self._stopping = False
            try:
                if self.enable_grpc:
                    self._start_grpc()
                if self.enable_http:
                    self._start_http()
            except BaseException:
                self._stop_servers()
                raise
            self._running = True
        return self

    def stop(self) -> None:
        """Stop serving and close every connection; releases stalled requests.

        Idempotent. Returns once both listeners are closed, so the ports can be
        reused immediately by :meth:`start`.
        """
        with self._lifecycle:
            if not self._running:
                return
            self._stop_servers()
            self._running = False

    def restart(self) -> None:
        """``stop()`` then ``start()`` on the same ports (a collector restart)."""
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self._running

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _tls(self) -> bool:
        return self.tls_cert_file is not None

    def _start_grpc(self) -> None:
        creds = None
        if self._tls():
            assert self.tls_cert_file is not None and self.tls_key_file is not None
            creds = grpc.ssl_server_credentials(
                [(Path(self.tls_key_file).read_bytes(), Path(self.tls_cert_file).read_bytes())],
                root_certificates=(
                    Path(self.client_ca_file).read_bytes() if self.client_ca_file else None
                ),
                require_client_auth=self.require_client_cert,
            )
        deadline = time.monotonic() + _REBIND_SECONDS
        while True:
            executor = ThreadPoolExecutor(
                max_workers=self._grpc_workers, thread_name_prefix="otlp-receiver-grpc"
            )
            server = grpc.server(
                executor,
                options=[
                    ("grpc.max_receive_message_length", self.grpc_max_receive_bytes),
                    ("grpc.max_send_message_length", self.grpc_max_receive_bytes),
                ],
            )
            logs_service_pb2_grpc.add_LogsServiceServicer_to_server(_LogsServicer(self), server)
            trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceServicer(self), server)
            metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(
                _MetricsServicer(self), server
            )
            address = f"{self.host}:{self._grpc_port}"
            try:
                if creds is not None:
                    port = server.add_secure_port(address, creds)
                else:
                    port = server.add_insecure_port(address)
                if port == 0:  # older grpcio reports bind failure this way
                    raise RuntimeError(f"could not bind {address}")
            except RuntimeError:
                server.stop(None)
                executor.shutdown(wait=False)
                if self._grpc_port == 0 or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
                continue
            break
        server.start()
        self._grpc_port = port
        self._grpc_server = server
        self._grpc_executor = executor

    def _ssl_context(self) -> ssl.SSLContext | None:
        if not self._tls():
            return None
        assert self.tls_cert_file is not None and self.tls_key_file is not None
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.tls_cert_file, self.tls_key_file)
        if self.client_ca_file:
            ctx.load_verify_locations(cafile=self.client_ca_file)
            ctx.verify_mode = ssl.CERT_REQUIRED if self.require_client_cert else ssl.CERT_OPTIONAL
        return ctx

    def _start_http(self) -> None:
        ctx = self._ssl_context()
        deadline = time.monotonic() + _REBIND_SECONDS
        while True:
            try:
                server = _HttpServer((self.host, self._http_port), self, ctx)
            except OSError:
                if self._http_port == 0 or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
                continue
            break
        self._http_port = server.server_address[1]
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"otlp-receiver-http-accept-{self._http_port}",
            daemon=True,
        )
        thread.start()
        self._http_server = server
        self._http_thread = thread

    def _stop_servers(self) -> None:
        with self._cond:
            self._stopping = True  # wakes stalled handlers; they drop their request
            self._cond.notify_all()
        if self._grpc_server is not None:
            self._grpc_server.stop(grace=0.2).wait(_STOP_JOIN_SECONDS)
            self._grpc_server = None
        if self._grpc_executor is not None:
            self._grpc_executor.shutdown(wait=True, cancel_futures=True)
            self._grpc_executor = None
        if self._http_server is not None:
            server = self._http_server
            server.shutdown()  # returns once serve_forever() has left its loop
            server.server_close()  # frees the listening port
            server.close_connections()  # end keep-alive connections and stalls
            server.join_handlers(_STOP_JOIN_SECONDS)
            if self._http_thread is not None:
                self._http_thread.join(_STOP_JOIN_SECONDS)
            self._http_server = None
            self._http_thread = None

    # ------------------------------------------------------------------ endpoints

    @property
    def grpc_port(self) -> int:
        """Bound gRPC port (valid after the first start)."""
        if not self.enable_grpc or self._grpc_port == 0:
            raise RuntimeError("gRPC is not enabled or the receiver was never started")
        return self._grpc_port

    @property
    def http_port(self) -> int:
        """Bound HTTP port (valid after the first start)."""
        if not self.enable_http or self._http_port == 0:
            raise RuntimeError("HTTP is not enabled or the receiver was never started")
        return self._http_port

    @property
    def grpc_endpoint(self) -> str:
        """``http://127.0.0.1:PORT``, or ``https://localhost:PORT`` under TLS.

        The scheme is what makes the OTLP gRPC exporter choose TLS or plaintext.
        """
        if self._tls():
            return f"https://{self.tls_hostname}:{self.grpc_port}"
        return f"http://{self.host}:{self.grpc_port}"

    @property
    def http_endpoint(self) -> str:
        """Base URL (no signal path), e.g. for ``OTEL_EXPORTER_OTLP_ENDPOINT``."""
        if self._tls():
            return f"https://{self.tls_hostname}:{self.http_port}"
        return f"http://{self.host}:{self.http_port}"

    def http_url(self, signal: Signal = "logs") -> str:
        """Full signal URL (``.../v1/logs``), what the OTLP/HTTP exporters' ``endpoint=`` takes."""
        return f"{self.http_endpoint}/v1/{signal}"

    # ------------------------------------------------------------------ faults

    def stall(self) -> None:
        """Become a black hole: accept connections and requests, never answer.

        Handlers block (gRPC inside the servicer, HTTP after reading the body)
        until :meth:`unstall` or :meth:`stop`. A held request is then dropped,
        never stored: gRPC answers ``UNAVAILABLE`` (if the client still waits),
        HTTP closes the connection without a response.
        """
        with self._cond:
            self._stalled = True

    def unstall(self) -> None:
        """Leave the black-hole mode; requests arriving from now on are served."""
        with self._cond:
            self._stalled = False
            self._stall_generation += 1
            self._cond.notify_all()

    @property
    def stalled(self) -> bool:
        return self._stalled

    def fail_next(
        self,
        n: int = 1,
        status: Fault | str = Fault.UNAVAILABLE,
        *,
        retry_after: float | None = None,
        signal: Signal | None = None,
    ) -> None:
        """Answer the next ``n`` requests with an error; they are not stored.

        Args:
            n: how many requests to fail (adds to faults already queued).
            status: a :class:`Fault` or its name (``"unavailable"``,
                ``"invalid_argument"``, ``"resource_exhausted"``).
            retry_after: seconds to put in a gRPC ``RetryInfo`` /
                HTTP ``Retry-After``; the OTLP exporters then wait that long
                instead of their exponential backoff (1 s, 2 s, ...), which
                makes retry tests fast.
            signal: only count requests of this signal.
        """
        fault = status if isinstance(status, Fault) else Fault[status.upper()]
        with self._cond:
            self._faults.extend(_PendingFault(fault, retry_after, signal) for _ in range(n))

    def answer_next(self, n: int = 1, answer: OddAnswer | None = None, **fields: Any) -> None:
        """Answer the next ``n`` otherwise successful requests with an :class:`OddAnswer`.

        ``answer_next(2, partial_rejected=3, error_message="bad records")``,
        ``answer_next(redirect_to="https://elsewhere/v1/logs")``, ``answer_next(html=True)``.
        Redirects and HTML pages apply to OTLP/HTTP only (a gRPC request consumes the
        entry and is answered normally).
        """
        odd = answer or OddAnswer(**fields)
        with self._cond:
            self._odd_answers.extend([odd] * n)

    def _take_odd_answer(self) -> OddAnswer | None:
        with self._cond:
            return self._odd_answers.pop(0) if self._odd_answers else None

    def require_bearer_token(self, token: str | None) -> None:
        """Reject requests lacking ``authorization: Bearer <token>``; ``None`` turns it off.

        gRPC answers ``UNAUTHENTICATED``, HTTP 401; neither is retried by the
        OTLP exporters.
        """
        with self._cond:
            self._bearer_token = token

    def reset_faults(self) -> None:
        """Clear queued failures, stall and token requirement."""
        with self._cond:
            self._faults.clear()
            self._odd_answers.clear()
            self._bearer_token = None
        self.unstall()

    # ------------------------------------------------------------------ stored data

    def clear(self) -> None:
        """Forget everything received and attempted (faults are kept)."""
        with self._cond:
            self._requests.clear()
            self._attempts.clear()
            self._record_counts = dict.fromkeys(_SIGNALS, 0)

    def received(self, signal: Signal | None = None) -> list[ReceivedRequest]:
        """Accepted requests in arrival order, optionally of one signal."""
        with self._cond:
            return [r for r in self._requests if signal is None or r.signal == signal]

    @property
    def attempts(self) -> list[Attempt]:
        """Every request that reached a handler, including rejected and stalled ones."""
        with self._cond:
            return list(self._attempts)

    @property
    def request_count(self) -> int:
        """Number of accepted requests (all signals)."""
        with self._cond:
            return len(self._requests)

    @property
    def request_sizes(self) -> list[int]:
        """Serialized protobuf size of each accepted request (all signals), in order."""
        return [r.size for r in self.received()]

    @property
    def received_headers(self) -> list[dict[str, str]]:
        """Headers / gRPC metadata of each accepted request; keys are lowercase."""
        return [r.headers for r in self.received()]

    @property
    def logs_requests(self) -> list[logs_service_pb2.ExportLogsServiceRequest]:
        return [r.message for r in self.received("logs")]  # type: ignore[misc]

    @property
    def traces_requests(self) -> list[trace_service_pb2.ExportTraceServiceRequest]:
        return [r.message for r in self.received("traces")]  # type: ignore[misc]

    @property
    def metrics_requests(self) -> list[metrics_service_pb2.ExportMetricsServiceRequest]:
        return [r.message for r in self.received("metrics")]  # type: ignore[misc]

    def log_records(self) -> list[LogRecordView]:
        """All received log records, flattened, in arrival order."""
        out: list[LogRecordView] = []
        for req in self.received("logs"):
            for rl in req.message.resource_logs:  # type: ignore[attr-defined]
                resource = attributes_to_dict(rl.resource.attributes)
                for sl in rl.scope_logs:
                    for lr in sl.log_records:
                        out.append(
                            LogRecordView(
                                resource=resource,
                                scope_name=sl.scope.name,
                                scope_version=sl.scope.version,
                                body=any_value_to_python(lr.body),
                                attributes=attributes_to_dict(lr.attributes),
                                severity_text=lr.severity_text,
                                severity_number=int(lr.severity_number),
                                trace_id=lr.trace_id.hex(),
                                span_id=lr.span_id.hex(),
                                event_name=lr.event_name,
                                time_unix_nano=lr.time_unix_nano,
                                observed_time_unix_nano=lr.observed_time_unix_nano,
                                flags=lr.flags,
                                transport=req.transport,
                            )
                        )
        return out

    def spans(self) -> list[SpanView]:
        """All received spans, flattened, in arrival order."""
        out: list[SpanView] = []
        for req in self.received("traces"):
            for rs in req.message.resource_spans:  # type: ignore[attr-defined]
                resource = attributes_to_dict(rs.resource.attributes)
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        out.append(
                            SpanView(
                                resource=resource,
                                scope_name=ss.scope.name,
                                name=span.name,
                                kind=int(span.kind),
                                trace_id=span.trace_id.hex(),
                                span_id=span.span_id.hex(),
                                parent_span_id=span.parent_span_id.hex(),
                                attributes=attributes_to_dict(span.attributes),
                                status_code=int(span.status.code),
                                start_time_unix_nano=span.start_time_unix_nano,
                                end_time_unix_nano=span.end_time_unix_nano,
                                transport=req.transport,
                            )
                        )
        return out

    def metrics(self) -> list[MetricView]:
        """All received metrics, flattened, in arrival order."""
        out: list[MetricView] = []
        for req in self.received("metrics"):
            for rm in req.message.resource_metrics:  # type: ignore[attr-defined]
                resource = attributes_to_dict(rm.resource.attributes)
                for sm in rm.scope_metrics:
                    for metric in sm.metrics:
                        kind = metric.WhichOneof("data") or ""
                        points: list[MetricPointView] = []
                        if kind in ("gauge", "sum"):
                            for p in getattr(metric, kind).data_points:
                                value_kind = p.WhichOneof("value")
                                points.append(
                                    MetricPointView(
                                        attributes=attributes_to_dict(p.attributes),
                                        value=getattr(p, value_kind) if value_kind else None,
                                        count=None,
                                        sum=None,
                                    )
                                )
                        elif kind:
                            for p in getattr(metric, kind).data_points:
                                points.append(
                                    MetricPointView(
                                        attributes=attributes_to_dict(p.attributes),
                                        value=None,
                                        count=p.count,
                                        sum=p.sum,
                                    )
                                )
                        out.append(
                            MetricView(
                                resource=resource,
                                scope_name=sm.scope.name,
                                name=metric.name,
                                description=metric.description,
                                unit=metric.unit,
                                kind=kind,
                                points=points,
                                transport=req.transport,
                            )
                        )
        return out

    def record_count(self, signal: Signal = "logs") -> int:
        """Number of log records / spans / metric data points received so far."""
        with self._cond:
            return self._record_counts[signal]

    # ------------------------------------------------------------------ waiting

    def wait_until(
        self, predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition"
    ) -> None:
        """Block until ``predicate()`` is true (re-checked on every arrival).

        Raises ``TimeoutError`` naming ``what`` and listing the attempts seen,
        which usually tells why (refused, stalled, nothing arrived at all).
        """
        with self._cond:
            if self._cond.wait_for(predicate, timeout):
                return
            self._timeout_error(f"{what} within {timeout:g}s")

    def wait_for_logs(self, count: int, timeout: float = 5.0) -> list[LogRecordView]:
        """Wait for at least ``count`` log records; returns them all (raises TimeoutError)."""
        self.wait_until(
            lambda: self._record_counts["logs"] >= count,
            timeout,
            f"{count} log record(s)",
        )
        return self.log_records()

    def wait_for_spans(self, count: int, timeout: float = 5.0) -> list[SpanView]:
        """Wait for at least ``count`` spans; returns them all (raises TimeoutError)."""
        self.wait_until(
            lambda: self._record_counts["traces"] >= count,
            timeout,
            f"{count} span(s)",
        )
        return self.spans()

    def wait_for_requests(
        self, count: int, signal: Signal | None = None, timeout: float = 5.0
    ) -> list[ReceivedRequest]:
        """Wait for at least ``count`` accepted requests (of ``signal``, if given)."""
        self.wait_until(
            lambda: len(self.received(signal)) >= count,
            timeout,
            f"{count} accepted {signal or 'any'} request(s)",
        )
        return self.received(signal)

    def wait_for_attempts(
        self, count: int, outcome: str | None = None, timeout: float = 5.0
    ) -> list[Attempt]:
        """Wait for ``count`` attempts (with ``outcome``, if given), e.g. ``"stalled"``."""

        def matching() -> list[Attempt]:
            return [a for a in self._attempts if outcome is None or a.outcome == outcome]

        self.wait_until(
            lambda: len(matching()) >= count, timeout, f"{count} {outcome or ''} attempt(s)"
        )
        with self._cond:
            return matching()

    def _timeout_error(self, what: str) -> NoReturn:
        outcomes: dict[str, int] = {}
        for a in self._attempts:
            key = f"{a.transport}/{a.signal}:{a.outcome}"
            outcomes[key] = outcomes.get(key, 0) + 1
        raise TimeoutError(
            f"OtlpReceiver: no {what}; accepted requests: {len(self._requests)}, "
            f"items received: {self._record_counts}, "
            f"attempts by outcome: {outcomes or 'none'}, stalled={self._stalled}, "
            f"running={self._running}"
        )

    # ------------------------------------------------------------------ request path

    def _record_attempt(
        self, transport: Transport, signal: Signal | None, outcome: str, headers: dict[str, str]
    ) -> None:
        with self._cond:
            self._attempts.append(Attempt(transport, signal, outcome, headers, time.monotonic()))
            self._cond.notify_all()

    def _hold_if_stalled(
        self,
        transport: Transport,
        signal: Signal,
        headers: dict[str, str],
        client_gone: Callable[[], bool] | None,
    ) -> None:
        """Block while stalled; raise ``_Dropped`` if this request was held."""
        with self._cond:
            if not self._stalled:
                return
            generation = self._stall_generation
            self._attempts.append(Attempt(transport, signal, "stalled", headers, time.monotonic()))
            self._cond.notify_all()
            self._cond.wait_for(
                lambda: (
                    self._stall_generation != generation
                    or self._stopping
                    or (client_gone is not None and client_gone())
                )
            )
        raise _Dropped()

    def _check_token(self, headers: dict[str, str]) -> None:
        with self._cond:
            token = self._bearer_token
        if token is None:
            return
        scheme, _, value = headers.get("authorization", "").strip().partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(value.strip(), token):
            return
        raise _Reject(
            "unauthenticated",
            grpc.StatusCode.UNAUTHENTICATED,
            401,
            "missing or wrong bearer token",
        )

    def _take_fault(self, signal: Signal) -> None:
        with self._cond:
            for i, pending in enumerate(self._faults):
                if pending.signal is None or pending.signal == signal:
                    del self._faults[i]
                    break
            else:
                return
        raise _Reject(
            f"injected:{pending.fault.name}",
            pending.fault.grpc_code,
            pending.fault.http_status,
            f"injected {pending.fault.name} (fail_next)",
            retry_after=pending.retry_after,
        )

    def _handle(
        self,
        signal: Signal,
        transport: Transport,
        headers: dict[str, str],
        decode: Callable[[], Message],
        *,
        peer: str,
        wire_bytes: int | None,
        content_type: str,
        content_encoding: str | None,
        client_gone: Callable[[], bool] | None = None,
    ) -> OddAnswer | None:
        """Shared gRPC/HTTP path: stall, auth, decode, injected faults, odd answers, store.

        The order mirrors a collector: the connection is accepted first (so a
        stall swallows everything), authentication comes before the payload
        is looked at, and only a request that passes all is stored.
        """
        self._hold_if_stalled(transport, signal, headers, client_gone)
        try:
            self._check_token(headers)
            message = decode()
            self._take_fault(signal)
        except _Reject as reject:
            self._record_attempt(transport, signal, reject.outcome, headers)
            raise
        odd = self._take_odd_answer()
        if odd is not None and transport == "http" and (odd.redirect_to or odd.html):
            self._record_attempt(
                transport, signal, "redirected" if odd.redirect_to else "html", headers
            )
            raise _OddReply(odd)
        request = ReceivedRequest(
            signal=signal,
            transport=transport,
            message=message,
            headers=headers,
            size=message.ByteSize(),
            wire_bytes=wire_bytes,
            content_type=content_type,
            content_encoding=content_encoding,
            peer=peer,
            received_at=time.monotonic(),
        )
        with self._cond:
            self._requests.append(request)
            self._record_counts[signal] += _count_items(signal, message)
            self._attempts.append(Attempt(transport, signal, "accepted", headers, time.monotonic()))
            self._cond.notify_all()
        return odd

    def _grpc_export(
        self, signal: Signal, request: Message, context: grpc.ServicerContext
    ) -> Message:
        headers = _lower_headers(list(context.invocation_metadata()))

        def wake() -> None:
            with self._cond:
                self._cond.notify_all()

        # Free a stalled worker as soon as the client gives up (deadline/cancel).
        context.add_callback(wake)
        odd: OddAnswer | None = None
        try:
            odd = self._handle(
                signal,
                "grpc",
                headers,
                lambda: request,
                peer=context.peer(),
                wire_bytes=None,
                content_type="application/grpc",
                content_encoding=None,
                client_gone=lambda: not context.is_active(),
            )
        except _Dropped:
            context.abort(grpc.StatusCode.UNAVAILABLE, "request dropped by stalled receiver")
        except _Reject as reject:
            if reject.retry_after is not None:
                info = error_details_pb2.RetryInfo()
                info.retry_delay.FromNanoseconds(int(reject.retry_after * 1e9))
                context.set_trailing_metadata(
                    (("google.rpc.retryinfo-bin", info.SerializeToString()),)
                )
            context.abort(reject.grpc_code, reject.message)
        return _response(signal, odd)


def _response(signal: Signal, odd: OddAnswer | None) -> Message:
    """The export response, with ``partial_success`` when an odd answer asks for it."""
    response = _RESPONSE_TYPES[signal]()
    if odd is not None and odd.partial_rejected:
        field = {"logs": "rejected_log_records", "traces": "rejected_spans"}.get(
            signal, "rejected_data_points"
        )
        setattr(response.partial_success, field, odd.partial_rejected)
        response.partial_success.error_message = odd.error_message
    return response


def _count_items(signal: Signal, message: Any) -> int:
    if signal == "logs":
        return sum(len(sl.log_records) for rl in message.resource_logs for sl in rl.scope_logs)
    if signal == "traces":
        return sum(len(ss.spans) for rs in message.resource_spans for ss in rs.scope_spans)
    total = 0
    for rm in message.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                kind = metric.WhichOneof("data")
                if kind:
                    total += len(getattr(metric, kind).data_points)
    return total


def receiver_fixture(*, scope: str = "function", **kwargs: Any) -> Any:
    """Make a pytest fixture that yields a started ``OtlpReceiver(**kwargs)``.

    The receiver is stopped at teardown even if the test failed, so no server
    thread outlives its test. Assign the result to a module-level name, which
    becomes the fixture's name::

        otlp_receiver = receiver_fixture()
        shared_receiver = receiver_fixture(scope="module", http_max_body_bytes=1 << 20)
    """
    import pytest  # imported here so the receiver itself does not depend on pytest

    @pytest.fixture(scope=scope)
    def _receiver() -> Iterator[OtlpReceiver]:
        with OtlpReceiver(**kwargs) as receiver:
            yield receiver

    return _receiver
