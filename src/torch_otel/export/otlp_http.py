"""The OTLP/HTTP log exporter the bridge sends through.

The OpenTelemetry project's own ``OTLPLogExporter`` (session, TLS files,
headers, compression, its retry of transient errors within the timeout),
changed in two ways: it sends requests the bridge already encoded, and it
records the HTTP status of a failed request in a
:class:`~torch_otel.export.outcome.FailureProbe` for the pipeline's retry policy.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs.export import LogRecordExportResult

from torch_otel.export.otlp_encoder import EncodedLogsRequest
from torch_otel.export.outcome import FailureProbe


class ProbedHttpClient:
    """Wraps the exporter's HTTP client; a failed result's status goes to the probe."""

    def __init__(self, client: Any, probe: FailureProbe) -> None:
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

    def __init__(self, *, probe: FailureProbe, **arguments: Any) -> None:
        super().__init__(**arguments)
        self.probe = probe
        self._client = ProbedHttpClient(self._client, probe)

    def export(self, batch: Any) -> LogRecordExportResult:
        if not isinstance(batch, EncodedLogsRequest):
            return super().export(batch)
        if self._shutdown:
            return LogRecordExportResult.FAILURE
        result = self._client.export(batch.payload)
        return LogRecordExportResult.SUCCESS if result.success else LogRecordExportResult.FAILURE
