"""Export requests in each sink's representation, bounded by records and bytes.

The pipeline asks for a batch in a representation; :class:`RequestBuilder` owns
the two ways to build one, both from the same :class:`~torch_otel.export.mapping.RecordMapper`:

* ``"otlp"``: serialized ``ExportLogsServiceRequest`` bytes from
  :class:`~torch_otel.export.otlp_encoder.OtlpLogEncoder` (the OTLP exporters);
* ``"sdk"``: lists of SDK ``ReadableLogRecord`` packed by estimated wire size
  (any other OTel exporter, an application's provider).

The mapper and encoder are built on first use (on the export thread) and again
in a forked child, whose resource has a new pid.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from torch_otel.capture.records import CapturedRecord
from torch_otel.export.sink import Representation

if TYPE_CHECKING:  # imported on first use: they load the OTel SDK and protobuf
    from torch_otel.export.mapping import RecordMapper
    from torch_otel.export.otlp_encoder import OtlpLogEncoder

RECORD_WIRE_OVERHEAD = 512
"""Estimated protobuf bytes per record besides the body (attributes, scope, framing)."""


class RequestBuilder:
    """Builds export requests from captured records, in either representation."""

    def __init__(
        self,
        make_mapper: Callable[[], RecordMapper],
        *,
        max_batch_records: int,
        max_batch_bytes: int,
    ) -> None:
        self._make_mapper = make_mapper
        self.max_batch_records = max_batch_records
        self.max_batch_bytes = max_batch_bytes
        self._mapper: RecordMapper | None = None
        self._encoder: OtlpLogEncoder | None = None

    @property
    def mapper(self) -> RecordMapper:
        if self._mapper is None:
            self._mapper = self._make_mapper()
        return self._mapper

    @property
    def encoder(self) -> OtlpLogEncoder:
        if self._encoder is None:
            from torch_otel.export.otlp_encoder import OtlpLogEncoder

            self._encoder = OtlpLogEncoder(self.mapper, max_request_bytes=self.max_batch_bytes)
        return self._encoder

    def build(self, representation: Representation, captured: list[CapturedRecord]) -> list[Any]:
        bodies = self.mapper.bodies
        bodies.prepare(record.message for record in captured)  # dedup: one store wait
        try:
            if representation == "otlp":
                return list(self.encoder.encode(captured, time.time_ns()))
            return pack_requests(
                self.mapper.map_batch(captured), self.max_batch_records, self.max_batch_bytes
            )
        finally:
            bodies.forget()

    def reset(self) -> None:
        """Forget the mapper and encoder (a forked child has a new resource)."""
        self._mapper = None
        self._encoder = None


def estimated_wire_bytes(record: Any) -> int:
    body = record.log_record.body
    return (len(body) if isinstance(body, str) else 64) + RECORD_WIRE_OVERHEAD


def pack_requests(records: list[Any], max_records: int, max_bytes: int) -> list[list[Any]]:
    """Split records into requests of at most ``max_records`` and about ``max_bytes``.

    A single record is never split here (chunking already bounded bodies), so a
    request holds at least one record.
    """
    requests: list[list[Any]] = []
    current: list[Any] = []
    current_bytes = 0
    for record in records:
        size = estimated_wire_bytes(record)
        if current and (len(current) >= max_records or current_bytes + size > max_bytes):
            requests.append(current)
            current, current_bytes = [], 0
        current.append(record)
        current_bytes += size
    if current:
        requests.append(current)
    return requests
