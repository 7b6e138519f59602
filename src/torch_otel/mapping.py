"""From captured torch records to OpenTelemetry log records (export thread only).

Implements the attribute contract (see ``attributes.py`` and the README):
component and artifact from the registry, compile ids from the ``CompileId``
captured on the compile thread, rank, code/thread/exception semantic
conventions, severity, scope = logger name, body = rendered message. Bodies
larger than the configured limit are split into chunks that reassemble
byte-for-byte (``torch.artifact.chunk.*``).
"""

from __future__ import annotations

import logging
import os
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

from torch_otel import attributes as attr
from torch_otel.handler import CapturedRecord
from torch_otel.registry import ComponentResolver

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


def split_utf8(text: str, max_bytes: int) -> list[str]:
    """Split ``text`` into pieces whose UTF-8 encoding is at most ``max_bytes``.

    Cuts only between code points, so ``"".join(pieces) == text`` and every
    piece is valid UTF-8 on its own.
    """
    if max_bytes < 4:
        raise ValueError("max_bytes must be at least 4 (one UTF-8 code point)")
    if len(text) * 4 <= max_bytes:
        return [text]
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return [text]
    pieces: list[str] = []
    start = 0
    while start < len(data):
        end = min(start + max_bytes, len(data))
        # Back off continuation bytes (0b10xxxxxx) so we cut on a boundary.
        while end < len(data) and (data[end] & 0xC0) == 0x80:
            end -= 1
        pieces.append(data[start:end].decode("utf-8"))
        start = end
    return pieces


def valid_utf8(text: str) -> tuple[str, bool]:
    """``text`` made encodable (lone surrogates escaped), and whether it had to be."""
    if text.isascii():
        return text, False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8"), True
    return text, False


class RecordMapper:
    """Turns :class:`CapturedRecord` tuples into SDK ``ReadableLogRecord`` objects."""

    def __init__(
        self,
        resolver: ComponentResolver,
        resource: Resource,
        *,
        max_body_bytes: int,
        span_lookup: SpanLookup | None = None,
    ) -> None:
        self.resolver = resolver
        self.resource = resource
        self.max_body_bytes = max_body_bytes
        self.span_lookup = span_lookup
        self._scopes: dict[str, InstrumentationScope] = {}
        self._chunk_prefix = os.urandom(6).hex()
        self._chunk_seq = 0

    def map_batch(self, captured: list[CapturedRecord]) -> list[ReadableLogRecord]:
        out: list[ReadableLogRecord] = []
        for record in captured:
            out.extend(self.map_record(record))
        return out

    def map_record(self, record: CapturedRecord) -> Iterator[ReadableLogRecord]:
        attributes = self.attributes_for(record)
        severity_number, severity_text = severity_for(record.levelno)
        timestamp = int(record.created * 1e9)
        observed = time.time_ns()
        scope = self._scope(record.logger_name)
        context = self._context_for(record)
        event_name = None
        if record.metadata is not None:
            from torch_otel.trace_events import event_name as trace_event_name

            event_name = trace_event_name(record.metadata)
        body, escaped = valid_utf8(record.message)
        if escaped:
            attributes[attr.TORCH_OTEL_RENDER_ERROR] = "body had invalid UTF-8 (escaped)"
        pieces = split_utf8(body, self.max_body_bytes)
        if len(pieces) > 1:
            group = self.next_chunk_group()
            count = len(pieces)
        for index, piece in enumerate(pieces):
            record_attributes = attributes
            if len(pieces) > 1:
                record_attributes = dict(attributes)
                record_attributes[attr.TORCH_ARTIFACT_CHUNK_INDEX] = index
                record_attributes[attr.TORCH_ARTIFACT_CHUNK_COUNT] = count
                record_attributes[attr.TORCH_ARTIFACT_CHUNK_GROUP] = group
            yield ReadableLogRecord(
                log_record=LogRecord(
                    timestamp=timestamp,
                    observed_timestamp=observed,
                    context=context,
                    severity_number=severity_number,
                    severity_text=severity_text,
                    body=piece,
                    attributes=record_attributes,
                    event_name=event_name,
                ),
                resource=self.resource,
                instrumentation_scope=scope,
            )

    def attributes_for(self, record: CapturedRecord) -> dict[str, Any]:
        attributes = self.static_attributes(record)
        if record.compile_id is not None:
            attributes.update(compile_id_attributes(record.compile_id, record.attempt))
        if record.rank is not None:
            attributes[attr.TORCH_DISTRIBUTED_RANK] = record.rank
        attributes.update(self.dynamic_attributes(record))
        return attributes

    def static_attributes(self, record: CapturedRecord) -> dict[str, Any]:
        """Attributes fixed by the call site: the same for every record logged there."""
        origin = self.resolver.resolve(record.logger_name)
        attributes: dict[str, Any] = {attr.TORCH_COMPONENT: origin.component}
        if origin.artifact is not None:
            attributes[attr.TORCH_ARTIFACT] = origin.artifact
        attributes[attr.CODE_FILE_PATH] = record.pathname
        attributes[attr.CODE_LINE_NUMBER] = record.lineno
        if record.func_name:
            attributes[attr.CODE_FUNCTION_NAME] = record.func_name
        if record.thread_id is not None:
            attributes[attr.THREAD_ID] = record.thread_id
        if record.thread_name:
            attributes[attr.THREAD_NAME] = record.thread_name
        return attributes

    @staticmethod
    def dynamic_attributes(record: CapturedRecord) -> dict[str, Any]:
        """Attributes only some records have: exception, stack, render errors, trace metadata."""
        attributes: dict[str, Any] = {}
        exception = record.exception
        if exception is not None:
            if exception.type_name:
                attributes[attr.EXCEPTION_TYPE] = exception.type_name
            attributes[attr.EXCEPTION_MESSAGE] = exception.message
            if exception.stacktrace:
                attributes[attr.EXCEPTION_STACKTRACE] = exception.stacktrace
        if record.stack_info:
            attributes[attr.CODE_STACKTRACE] = record.stack_info
        if record.render_error:
            attributes[attr.TORCH_OTEL_RENDER_ERROR] = record.render_error
        if record.metadata is not None:
            from torch_otel.trace_events import trace_attributes

            attributes.update(trace_attributes(record))
        return attributes

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

    def next_chunk_group(self) -> str:
        """A new id shared by the chunks of one record (unique across processes)."""
        self._chunk_seq += 1
        return f"{self._chunk_prefix}-{os.getpid()}-{self._chunk_seq}"


def compile_id_attributes(compile_id: Any, attempt: int | None) -> dict[str, Any]:
    """Contract attributes for a torch ``CompileId`` (+ attempt)."""
    out: dict[str, Any] = {}
    text = str(compile_id)
    out[attr.TORCH_COMPILE_TRACE_ID] = f"{text}_{attempt}" if attempt else text
    frame_id = getattr(compile_id, "frame_id", None)
    if frame_id is not None:
        out[attr.TORCH_COMPILE_FRAME_ID] = frame_id
    frame_compile_id = getattr(compile_id, "frame_compile_id", None)
    if frame_compile_id is not None:
        out[attr.TORCH_COMPILE_FRAME_COMPILE_ID] = frame_compile_id
    if attempt is not None:
        out[attr.TORCH_COMPILE_ATTEMPT] = attempt
    autograd_id = getattr(compile_id, "compiled_autograd_id", None)
    if autograd_id is not None:
        out[attr.TORCH_COMPILED_AUTOGRAD_ID] = autograd_id
    return out
