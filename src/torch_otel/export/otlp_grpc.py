"""The OTLP/gRPC log exporter the bridge sends through.

It is the OpenTelemetry project's own ``OTLPLogExporter`` (channel, TLS,
headers, compression, reconnects), changed in two ways: it sends requests the
bridge already encoded (:class:`~torch_otel.export.otlp_encoder.EncodedLogsRequest`,
see ``otlp_encoder.py`` for why), and it records the status code of a failed
call, or the partial success of a successful one, in a
:class:`~torch_otel.export.outcome.ResponseProbe`, so the pipeline can tell
"collector down, retry" from "data rejected, drop and count".
"""

from __future__ import annotations

from typing import Any

import grpc
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse

from torch_otel.export.outcome import ResponseProbe
from torch_otel.export.sink import EncodedLogsRequest

LOGS_EXPORT_METHOD = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"


class RawLogsStub:
    """``LogsService.Export`` taking an already serialized request."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.Export = channel.unary_unary(
            LOGS_EXPORT_METHOD,
            request_serializer=None,
            response_deserializer=ExportLogsServiceResponse.FromString,
        )


class ProbedStub:
    """Records what the collector answered: a failed call's status code, or the
    ``partial_success`` of a successful one (which the exporter itself ignores)."""

    def __init__(self, inner: Any, probe: ResponseProbe) -> None:
        self._inner = inner
        self._probe = probe

    def Export(self, *args: Any, **kwargs: Any) -> Any:
        try:
            response = self._inner.Export(*args, **kwargs)
        except grpc.RpcError as error:
            self._probe.grpc_code = error.code()
            self._probe.detail = error.details()
            raise
        partial = response.partial_success
        self._probe.saw_partial_success(partial.rejected_log_records, partial.error_message)
        return response


class EncodedGrpcLogExporter(OTLPLogExporter):
    """The OTel gRPC log exporter, sending pre-encoded requests, reporting status codes."""

    def __init__(self, *, probe: ResponseProbe, **arguments: Any) -> None:
        self.probe = probe  # read by _initialize_channel_and_stub, which __init__ calls
        super().__init__(**arguments)
        probe.retryable_codes = frozenset(self._retryable_error_codes)

    def _initialize_channel_and_stub(self) -> None:
        super()._initialize_channel_and_stub()
        self._client = ProbedStub(RawLogsStub(self._channel), self.probe)

    def _translate_data(self, data: Any) -> Any:
        if isinstance(data, EncodedLogsRequest):
            return data.payload
        return super()._translate_data(data).SerializeToString()
