"""The OTLP/HTTP log exporter the bridge sends through.

The OpenTelemetry project's own ``OTLPLogExporter`` (session, TLS files, headers,
compression, its retry of transient errors within the timeout), changed in two ways:
it sends requests the bridge already encoded, and a
:class:`~torch_otel.export.outcome.ResponseProbe` learns what the collector really
answered. The OTel HTTP client counts every status below 400 as success and never
reads the body; the probe sees the raw answer at the transport, so a redirect, a 2xx
that is not an OTLP response (an HTML page) and a partial success are told apart.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.sdk._logs.export import LogRecordExportResult

from torch_otel.export.outcome import ResponseProbe
from torch_otel.export.sink import EncodedLogsRequest

PROTOBUF_TYPES = ("application/x-protobuf", "application/protobuf", "application/octet-stream")


class ProbedTransport:
    """Wraps the exporter's HTTP transport; each answer is classified into the probe."""

    def __init__(self, transport: Any, probe: ResponseProbe) -> None:
        self._transport = transport
        self._probe = probe

    def request(self, method: str, url: str, **options: Any) -> Any:
        result = self._transport.request(method, url, **options)
        status = result.status_code
        if status is not None and 300 <= status < 400:
            self._probe.saw_redirect(status, _header(result, "location"))
        elif status is not None and 200 <= status < 300:
            self._classify_body(status, result)
        return result

    def _classify_body(self, status: int, result: Any) -> None:
        content_type = (_header(result, "content-type") or "").split(";")[0].strip().lower()
        try:
            body = result.content()
        except Exception:
            body = b""
        if content_type and content_type not in PROTOBUF_TYPES:
            self._probe.saw_bad_response(status, f"answer is {content_type}, not OTLP protobuf")
            return
        try:
            response = ExportLogsServiceResponse.FromString(body)
        except DecodeError:
            self._probe.saw_bad_response(status, "answer body is not an OTLP response")
            return
        partial = response.partial_success
        self._probe.saw_partial_success(partial.rejected_log_records, partial.error_message)

    def __getattr__(self, name: str) -> Any:  # close(), is_connection_error(), ...
        return getattr(self._transport, name)


class ProbedHttpClient:
    """Wraps the exporter's HTTP client; a failed result's status goes to the probe."""

    def __init__(self, client: Any, probe: ResponseProbe) -> None:
        self._client = client
        self._probe = probe

    def export(self, data: bytes) -> Any:
        result = self._client.export(data)
        if not getattr(result, "success", True):
            probe = self._probe
            probe.http_status = getattr(result, "status_code", None)
            error = getattr(result, "error", None)
            probe.connection_error = probe.http_status is None and error is not None
            probe.detail = str(getattr(result, "reason", None) or error or "")
        return result

    def shutdown(self) -> None:
        self._client.shutdown()


class EncodedHttpLogExporter(OTLPLogExporter):
    """The OTel HTTP log exporter, also sending pre-encoded requests."""

    def __init__(self, *, probe: ResponseProbe, **arguments: Any) -> None:
        super().__init__(**arguments)
        self.probe = probe
        client = self._client
        client._transport = ProbedTransport(client._transport, probe)
        self._client = ProbedHttpClient(client, probe)

    def export(self, batch: Any) -> LogRecordExportResult:
        if not isinstance(batch, EncodedLogsRequest):
            return super().export(batch)
        if self._shutdown:
            return LogRecordExportResult.FAILURE
        result = self._client.export(batch.payload)
        return LogRecordExportResult.SUCCESS if result.success else LogRecordExportResult.FAILURE


def _header(result: Any, name: str) -> str | None:
    try:
        return result.headers().get(name)
    except Exception:
        return None
