"""Why an export failed: the answer the pipeline's retry policy needs.

The SDK exporters return ``SUCCESS`` or ``FAILURE``. Whether to retry depends on
*why* (OTLP: a collector that is down, overloaded or timing out may accept the
same request later; one that rejected the data will reject it again), so each
exporter built by torch-otel carries a :class:`FailureProbe` that its transport
fills in with the status it saw.
"""

from __future__ import annotations

import enum
from typing import Any

RETRYABLE_HTTP_STATUSES = frozenset({429, 502, 503, 504})
"""Retryable HTTP statuses per the OTLP/HTTP specification."""


class ExportOutcome(enum.Enum):
    SUCCESS = "success"
    RETRYABLE = "retryable"
    PERMANENT = "permanent"
    UNKNOWN = "unknown"


class FailureProbe:
    """Remembers the last failure status an exporter's transport saw."""

    def __init__(self, retryable_codes: frozenset[Any] = frozenset()) -> None:
        self.retryable_codes = retryable_codes
        self.reset()

    def reset(self) -> None:
        self.grpc_code: Any = None
        self.http_status: int | None = None
        self.connection_error = False
        self.detail: str | None = None

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
