"""Where export requests go: the :class:`Sink` protocol and its two kinds.

The export pipeline talks to sinks only. A sink says which representation of a
batch it takes (``"otlp"``: requests already encoded by
:class:`~torch_otel.export.otlp_encoder.OtlpLogEncoder`; ``"sdk"``: lists of SDK
``ReadableLogRecord``) and answers each export with an
:class:`~torch_otel.export.outcome.ExportOutcome`, so the pipeline can decide to
retry, drop and count, or move on.

* :class:`ExporterSink`: an OpenTelemetry log exporter (the OTLP ones built by
  ``exporters.py``, or one the application or a test handed in).
* :class:`ProviderSink`: an application's own SDK ``LoggerProvider`` (its
  processors export).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from torch_otel.export.outcome import DELIVERED, ExportOutcome, ExportResult, ResponseProbe
from torch_otel.redaction import Redactor

Representation = Literal["otlp", "sdk"]


@dataclass(frozen=True)
class EncodedLogsRequest:
    """A serialized ``ExportLogsServiceRequest`` and how many log records it holds."""

    payload: bytes
    record_count: int

    def __len__(self) -> int:  # exporters' metrics count "items" with len()
        return self.record_count


class Sink(Protocol):
    """One destination of the export thread."""

    representation: Representation
    last_error: str | None

    def export(self, request: Any) -> ExportResult: ...

    def shutdown(self) -> None: ...

    def force_flush(self, timeout_s: float) -> None: ...


class ExporterSink:
    """An SDK log exporter as a sink, with the reason of its last failure.

    ``probe`` is filled in by the exporter's transport (the OTLP exporters
    torch-otel builds). An exporter without one (``install(exporters=...)``)
    fails as "unknown": retried a few times, then counted.
    """

    def __init__(
        self,
        exporter: Any,
        *,
        representation: Representation = "sdk",
        probe: ResponseProbe | None = None,
        description: str | None = None,
        redact: Callable[[str], str] | None = None,
    ) -> None:
        self.exporter = exporter
        self.representation = representation
        self.last_error: str | None = None
        self._probe = probe
        self._description = description or type(exporter).__name__
        self._redact = redact or Redactor()

    def export(self, request: Any) -> ExportResult:
        if self._probe is not None:
            self._probe.reset()
        try:
            answer = self.exporter.export(request)
        except Exception as error:  # an exporter should not raise; count it, don't crash
            self.last_error = self._redact(f"{type(error).__name__}: {error}")
            return ExportResult(ExportOutcome.UNKNOWN)
        succeeded = getattr(answer, "name", str(answer)) == "SUCCESS" or answer is True
        if self._probe is None:
            self.last_error = None if succeeded else "export failed"
            return DELIVERED if succeeded else ExportResult(ExportOutcome.UNKNOWN)
        result = self._probe.result(succeeded)
        clean = result.delivered and not result.rejected
        self.last_error = None if clean else self._redact(self._probe.description())
        return result

    def shutdown(self) -> None:
        try:
            self.exporter.shutdown()
        except Exception:  # pragma: no cover - shutting down must not raise
            pass

    def force_flush(self, timeout_s: float) -> None:
        flush_quietly(self.exporter, timeout_s)

    def __repr__(self) -> str:
        return f"<ExporterSink {self._description}>"


class ProviderSink:
    """Emits into an application's own SDK ``LoggerProvider`` (its processors export).

    Used when the application configured OpenTelemetry itself: the bridge must
    not build a second pipeline next to it. The provider's resource applies, as
    for any other log the application emits; the record attributes (component,
    artifact, compile id, rank) travel unchanged.
    """

    representation: Representation = "sdk"

    def __init__(self, provider: Any) -> None:
        self._provider = provider
        self._loggers: dict[str, Any] = {}
        self.last_error: str | None = None

    def export(self, request: Sequence[Any]) -> ExportResult:
        try:
            for readable in request:
                scope = readable.instrumentation_scope
                name = scope.name if scope is not None else "torch"
                logger = self._loggers.get(name)
                if logger is None:
                    logger = self._loggers[name] = self._provider.get_logger(name)
                logger.emit(readable.log_record)
        except Exception as error:
            self.last_error = f"{type(error).__name__}: {error}"
            return ExportResult(ExportOutcome.UNKNOWN)
        return DELIVERED

    def shutdown(self) -> None:
        # Not ours to shut down: the application owns the provider. Flush only.
        self.force_flush(1.0)

    def force_flush(self, timeout_s: float) -> None:
        flush_quietly(self._provider, timeout_s)

    def __repr__(self) -> str:
        return f"<ProviderSink {type(self._provider).__name__}>"


def flush_quietly(target: Any, timeout_s: float) -> None:
    """``target.force_flush(ms)`` if it has one; a failing flush is not the caller's problem."""
    flush = getattr(target, "force_flush", None)
    if flush is not None:
        try:
            flush(int(timeout_s * 1000))
        except Exception:  # pragma: no cover
            pass
