"""From captured torch records to the attribute contract (export thread only).

:class:`RecordMapper` knows what each record's attributes, severity, scope, span
context and body are (see ``names.py`` and ``docs/reference.md``): component
and artifact from the registry, compile ids from the ``CompileId`` captured on
the compile thread, rank, code/thread/exception semantic conventions, severity,
scope = logger name, body = rendered message, chunked by ``body.py``.

It builds SDK ``ReadableLogRecord`` objects itself (:meth:`RecordMapper.map_batch`,
for any OTel exporter) and gives the OTLP encoder the same parts, split by how
often they change, so that encoder can cache them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.context import Context
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import NonRecordingSpan, SpanContext, set_span_in_context
from opentelemetry.trace.span import INVALID_SPAN

from torch_otel import names
from torch_otel.capture.components import ComponentResolver
from torch_otel.capture.records import CapturedRecord
from torch_otel.export.body import BodyPiece, BodySplitter, Claims
from torch_otel.trace.events import event_name, trace_attributes

SpanLookup = Callable[[CapturedRecord], SpanContext | None]

_NO_SPAN_CONTEXT: Context = set_span_in_context(INVALID_SPAN)

# Python level -> (OTel severity number base, OTel severity text).
_LEVEL_BANDS: tuple[tuple[int, SeverityNumber, str], ...] = (
    (logging.CRITICAL, SeverityNumber.FATAL, "FATAL"),
    (logging.ERROR, SeverityNumber.ERROR, "ERROR"),
    (logging.WARNING, SeverityNumber.WARN, "WARN"),
    (logging.INFO, SeverityNumber.INFO, "INFO"),
    (logging.DEBUG, SeverityNumber.DEBUG, "DEBUG"),
    (0, SeverityNumber.TRACE, "TRACE"),
)


def severity_for(levelno: int) -> tuple[SeverityNumber, str]:
    """OTel severity for a Python level: WARNING -> WARN, CRITICAL -> FATAL.

    A level between the standard ones takes the finer OTel number of its band
    (``DEBUG + 1`` -> ``DEBUG2``, capped at the band's fourth step) and the
    band's name as text.
    """
    for floor, base, text in _LEVEL_BANDS:
        if levelno >= floor:
            return SeverityNumber(base.value + min(levelno - floor, 3)), text
    return SeverityNumber.TRACE, "TRACE"


class RecordMapper:
    """Turns :class:`CapturedRecord` tuples into the contract's parts and SDK records."""

    def __init__(
        self,
        resolver: ComponentResolver,
        resource: Resource,
        *,
        max_body_bytes: int,
        span_lookup: SpanLookup | None = None,
        claims: Claims | None = None,
        dedup_min_bytes: int = 0,
        job_attributes: dict[str, Any] | None = None,
    ) -> None:
        self.resolver = resolver
        self.resource = resource
        self.bodies = BodySplitter(max_body_bytes, claims=claims, dedup_min_bytes=dedup_min_bytes)
        self.span_lookup = span_lookup
        self.job_attributes = dict(job_attributes or {})
        """Added to every SDK record (before its own rank): the launcher's rank, local
        rank, world size and job ids, for an application's provider whose resource
        does not carry them."""
        self._scopes: dict[str, InstrumentationScope] = {}

    # -- the parts, shared by both representations --------------------------------------
    def static_attributes(self, record: CapturedRecord) -> dict[str, Any]:
        """Attributes fixed by the call site: the same for every record logged there."""
        event = record.event
        if event is None:
            origin = self.resolver.resolve(record.logger_name)
            attributes: dict[str, Any] = {names.TORCH_COMPONENT: origin.component}
            if origin.artifact is not None:
                attributes[names.TORCH_ARTIFACT] = origin.artifact
        else:  # torch-otel's own event: about a component, emitted by torch-otel
            attributes = {names.TORCH_COMPONENT: event.component}
        if record.pathname or event is None:
            attributes[names.CODE_FILE_PATH] = record.pathname
            attributes[names.CODE_LINE_NUMBER] = record.lineno
        if record.func_name:
            attributes[names.CODE_FUNCTION_NAME] = record.func_name
        if record.thread_id is not None:
            attributes[names.THREAD_ID] = record.thread_id
        if record.thread_name:
            attributes[names.THREAD_NAME] = record.thread_name
        return attributes

    def body_and_extra(self, record: CapturedRecord) -> tuple[list[BodyPiece], dict[str, Any]]:
        """The body pieces (with chunk attributes) and the attributes only some records have:
        exception, stack, render errors, structured-trace metadata."""
        extra: dict[str, Any] = {}
        exception = record.exception
        if exception is not None:
            if exception.type_name:
                extra[names.EXCEPTION_TYPE] = exception.type_name
            extra[names.EXCEPTION_MESSAGE] = exception.message
            if exception.stacktrace:
                extra[names.EXCEPTION_STACKTRACE] = exception.stacktrace
        if record.stack_info:
            extra[names.CODE_STACKTRACE] = record.stack_info
        if record.render_error:
            extra[names.TORCH_OTEL_RENDER_ERROR] = record.render_error
        if record.metadata is not None:
            extra.update(trace_attributes(record))
        if record.event is not None:
            extra.update(record.event.attributes)
        pieces, problem = self.bodies.split(record.message, id(record))
        if problem:
            extra[names.TORCH_OTEL_RENDER_ERROR] = problem
        return pieces, extra

    @staticmethod
    def event_name(record: CapturedRecord) -> str | None:
        if record.event is not None:
            return record.event.name
        return event_name(record.metadata) if record.metadata is not None else None

    # -- SDK records -----------------------------------------------------------------------
    def map_batch(self, captured: list[CapturedRecord]) -> list[ReadableLogRecord]:
        out: list[ReadableLogRecord] = []
        for record in captured:
            out.extend(self.map_record(record))
        return out

    def map_record(self, record: CapturedRecord) -> Iterator[ReadableLogRecord]:
        attributes = self.static_attributes(record)
        if self.job_attributes:
            attributes.update(self.job_attributes)
        if record.compile_id is not None:
            attributes.update(compile_id_attributes(record.compile_id, record.attempt))
        if record.rank is not None:
            attributes[names.TORCH_DISTRIBUTED_RANK] = record.rank
        pieces, extra = self.body_and_extra(record)
        attributes.update(extra)
        severity_number, severity_text = severity_for(record.levelno)
        timestamp = int(record.created * 1e9)
        observed = time.time_ns()
        scope = self._scope(record.logger_name)
        context = self._context_for(record)
        event = self.event_name(record)
        for piece, chunk_attributes in pieces:
            yield ReadableLogRecord(
                log_record=LogRecord(
                    timestamp=timestamp,
                    observed_timestamp=observed,
                    context=context,
                    severity_number=severity_number,
                    severity_text=severity_text,
                    body=piece,
                    attributes={**attributes, **chunk_attributes},
                    event_name=event,
                ),
                resource=self.resource,
                instrumentation_scope=scope,
            )

    def _scope(self, logger_name: str) -> InstrumentationScope:
        scope = self._scopes.get(logger_name)
        if scope is None:
            scope = self._scopes[logger_name] = InstrumentationScope(logger_name)
        return scope

    def _context_for(self, record: CapturedRecord) -> Context:
        if self.span_lookup is not None:
            span_context = self.span_lookup(record)
            if span_context is not None:
                return set_span_in_context(NonRecordingSpan(span_context))
        return _NO_SPAN_CONTEXT


def compile_id_attributes(compile_id: Any, attempt: int | None) -> dict[str, Any]:
    """Contract attributes for a torch ``CompileId`` (+ attempt)."""
    out: dict[str, Any] = {}
    text = str(compile_id)
    out[names.TORCH_COMPILE_TRACE_ID] = f"{text}_{attempt}" if attempt else text
    frame_id = getattr(compile_id, "frame_id", None)
    if frame_id is not None:
        out[names.TORCH_COMPILE_FRAME_ID] = frame_id
    frame_compile_id = getattr(compile_id, "frame_compile_id", None)
    if frame_compile_id is not None:
        out[names.TORCH_COMPILE_FRAME_COMPILE_ID] = frame_compile_id
    if attempt is not None:
        out[names.TORCH_COMPILE_ATTEMPT] = attempt
    autograd_id = getattr(compile_id, "compiled_autograd_id", None)
    if autograd_id is not None:
        out[names.TORCH_COMPILED_AUTOGRAD_ID] = autograd_id
    return out
