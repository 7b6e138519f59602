"""The structured-trace handler on ``torch.__trace`` (compile thread).

``torch._logging.trace_structured`` builds a record only when ``torch.__trace``
has a handler, so nothing costs anything unless ``--trace`` /
``TORCH_OTEL_TRACE=1`` / ``install(trace=True)`` attaches :class:`TraceHandler`.
It sits beside torch's own ``TORCH_TRACE`` file handler when there is one: both
see every event. How a trace record becomes an OTel record is in ``events.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from torch_otel.capture.buffer import RecordBuffer
from torch_otel.capture.records import CapturedRecord

TRACE_METADATA_BYTES = 2048
"""Charged per trace record on top of its payload: the metadata dict (small, except
``compilation_metrics``, which carries torch's configs)."""


class TraceHandler(logging.Handler):
    """Captures ``torch.__trace`` records (metadata + payload) into the bridge's buffer.

    The same buffer as the log handler, so trace events and log lines reach the
    export thread in the order they happened (which is what links a ``guards``
    record to the compile span open at that moment).
    """

    def __init__(
        self,
        buffer: RecordBuffer[CapturedRecord],
        *,
        rank_reader: Callable[[], Any] | None = None,
    ) -> None:
        super().__init__(level=logging.DEBUG)
        self._buffer = buffer
        self._rank_reader = rank_reader
        """Called per record only to notice a new process group (and keep its store for
        ``dedup``); the rank itself comes from the metadata."""
        self.ignored_thread_ids: frozenset[int] = frozenset()

    def handle(self, record: logging.LogRecord) -> bool:  # type: ignore[override]
        if record.thread in self.ignored_thread_ids:
            return False
        metadata = getattr(record, "metadata", None)
        if not isinstance(metadata, dict):
            return False
        payload = getattr(record, "payload", None)
        message = payload if isinstance(payload, str) else ""
        if self._rank_reader is not None:
            self._rank_reader()
        # Compile ids and rank come from the metadata torch recorded (trace_attributes),
        # not from the thread-local, so they are exactly what the trace file says.
        captured = CapturedRecord(
            *(record.name, record.levelno, record.created, message, record.pathname),
            *(record.lineno, record.funcName, record.thread, record.threadName),
            metadata=metadata,
        )
        self._buffer.offer(captured, len(message) + TRACE_METADATA_BYTES)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        self.handle(record)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} (torch-otel)>"
