"""What an export's answer means: delivered, partly delivered, retry, or give up (and why).

The SDK exporters return ``SUCCESS`` or ``FAILURE``, and the OTLP/HTTP client counts
any status below 400 as success. That is not enough to never lose a record silently:

* a **redirect** (3xx) delivered nothing (an ingress moving the path, http->https);
* a **2xx that is not an OTLP response** (an HTML sign-in page from a proxy) delivered
  nothing either;
* a **partial success** (``partial_success.rejected_log_records`` > 0) delivered only
  some records; OTLP says the rest must not be retried, and must be surfaced;
* a failure is **retryable** only where OTLP says a retry may succeed (gRPC
  ``UNAVAILABLE``, ``RESOURCE_EXHAUSTED``..., HTTP 429/502/503/504, no connection).

Each exporter torch-otel builds carries a :class:`ResponseProbe` its transport fills in
with what it saw; :meth:`ResponseProbe.result` turns that into an :class:`ExportResult`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from torch_otel import names

RETRYABLE_HTTP_STATUSES = frozenset({429, 502, 503, 504})
"""Retryable HTTP statuses per the OTLP/HTTP specification."""


class ExportOutcome(enum.Enum):
    SUCCESS = "success"
    RETRYABLE = "retryable"
    PERMANENT = "permanent"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ExportResult:
    """One export's verdict.

    ``rejected``: records a successful answer said it refused (partial success).
    ``reason``: the drop reason when the whole request is given up (``PERMANENT``).
    """

    outcome: ExportOutcome
    rejected: int = 0
    reason: str = names.DROP_REJECTED

    @property
    def delivered(self) -> bool:
        return self.outcome is ExportOutcome.SUCCESS


DELIVERED = ExportResult(ExportOutcome.SUCCESS)


class ResponseProbe:
    """Remembers what an exporter's transport saw on its last export."""

    def __init__(self, retryable_codes: frozenset[Any] = frozenset()) -> None:
        self.retryable_codes = retryable_codes
        self.reset()

    def reset(self) -> None:
        self.grpc_code: Any = None
        self.http_status: int | None = None
        self.connection_error = False
        self.detail: str | None = None
        self.redirect_to: str | None = None
        self.bad_response: str | None = None
        self.rejected = 0

    # -- filled in by transports ------------------------------------------------------
    def saw_partial_success(self, rejected: int, message: str) -> None:
        if rejected > 0:
            self.rejected = rejected
            self.detail = f"partial success: {rejected} rejected: {message}".rstrip(": ")

    def saw_redirect(self, status: int, location: str | None) -> None:
        self.http_status = status
        self.redirect_to = location or ""
        self.detail = f"redirect to {location or '(no Location)'}"

    def saw_bad_response(self, status: int, problem: str) -> None:
        self.http_status = status
        self.bad_response = problem
        self.detail = problem

    # -- the verdict ----------------------------------------------------------------------
    def result(self, exporter_succeeded: bool) -> ExportResult:
        if self.redirect_to is not None:
            return ExportResult(ExportOutcome.PERMANENT, reason=names.DROP_REDIRECTED)
        if self.bad_response is not None:
            return ExportResult(ExportOutcome.PERMANENT, reason=names.DROP_BAD_RESPONSE)
        if exporter_succeeded:
            return ExportResult(ExportOutcome.SUCCESS, rejected=self.rejected)
        return ExportResult(self._failure())

    def _failure(self) -> ExportOutcome:
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
