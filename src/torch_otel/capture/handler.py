"""The bridge handler: the only torch-otel code that runs on the compile thread.

It does the minimum that has to happen there and nothing else:

1. render the message (torch passes lazy objects, e.g. ``LazyString`` or
   guard managers, whose state changes after the call returns);
2. read the current compile id (a thread-local torch maintains);
3. copy the handful of plain fields the exporter needs out of the
   ``logging.LogRecord`` (so no reference to torch objects outlives the call);
4. hand the tuple to the bounded :class:`~torch_otel.capture.buffer.RecordBuffer`.

Everything else (component lookup, attributes, OTel record construction,
chunking, encoding) happens on the export thread. ``handle`` is overridden
rather than ``emit`` so that the per-handler lock ``logging.Handler.handle``
takes is skipped: the buffer has its own, much shorter, critical section.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from torch_otel.capture._torch import DistributedRankReader, compile_context_reader
from torch_otel.capture.buffer import RecordBuffer
from torch_otel.capture.records import (
    CapturedRecord,
    capture_exception,
    new_captured,
    render_with_markers,
)


class BridgeHandler(logging.Handler):
    """Captures records torch lets through and queues them for export.

    Attached by :class:`~torch_otel.capture.sync.TorchLoggingSync` to exactly
    the loggers torch attaches its own stderr handler to, at the same level
    (``DEBUG``), so the set of records exported is the set torch prints.
    """

    def __init__(
        self,
        buffer: RecordBuffer[CapturedRecord],
        *,
        trace_id_filter: frozenset[str] = frozenset(),
        rank_reader: DistributedRankReader | None = None,
    ) -> None:
        super().__init__(level=logging.DEBUG)
        self._buffer = buffer
        self._read_compile_context = compile_context_reader()
        self._read_rank = rank_reader or DistributedRankReader()
        self._trace_id_filter = trace_id_filter
        self.ignored_thread_ids: frozenset[int] = frozenset()
        """Threads whose records are never bridged (the export thread: no feedback loops)."""
        self._excluded_artifacts: frozenset[str] = frozenset()
        self._skip_by_logger: dict[str, bool] = {}
        self._artifact_of: Callable[[str], str | None] | None = None

    def exclude_artifacts(self, artifacts: frozenset[str], resolver: Any) -> None:
        """Skip records of these artifacts (per-rank filtering, e.g. output_code on rank 0 only)."""
        self._excluded_artifacts = frozenset(artifacts)
        self._skip_by_logger = {}
        self._artifact_of = lambda name: resolver.resolve(name).artifact

    def _is_excluded(self, logger_name: str) -> bool:
        skip = self._skip_by_logger.get(logger_name)
        if skip is None:
            artifact = self._artifact_of(logger_name) if self._artifact_of else None
            skip = self._skip_by_logger[logger_name] = artifact in self._excluded_artifacts
        return skip

    def handle(self, record: logging.LogRecord) -> bool:  # type: ignore[override]
        if record.thread in self.ignored_thread_ids:
            return False
        if self.filters and not self.filter(record):
            return False
        if self._excluded_artifacts and self._is_excluded(record.name):
            return False
        try:
            message = record.getMessage()
            render_error = None
        except Exception as error:  # torch's lazy arguments may raise in __str__
            message, render_error = render_with_markers(record, error)
        context = self._read_compile_context()
        if context is not None:
            compile_id = context.compile_id
            attempt = context.attempt
        else:
            compile_id = attempt = None
        if self._trace_id_filter and not _passes_trace_id_filter(
            compile_id, attempt, self._trace_id_filter
        ):
            return False
        if record.exc_info or record.exc_text:
            exception = capture_exception(record)
        else:
            exception = None
        self._buffer.offer(
            new_captured(
                record.name,
                record.levelno,
                record.created,
                message,
                record.pathname,
                record.lineno,
                record.funcName,
                record.thread,
                record.threadName,
                compile_id,
                attempt,
                exception,
                record.stack_info,
                render_error,
                self._read_rank(),
                None,
                None,
            ),
            len(message),
        )
        return True

    def emit(self, record: logging.LogRecord) -> None:
        self.handle(record)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} (torch-otel)>"


def _passes_trace_id_filter(compile_id: Any, attempt: int | None, allowed: frozenset[str]) -> bool:
    """Mirror ``TORCH_LOGS_TRACE_ID_FILTER``: torch prints nothing for other compile ids.

    torch compares the bracketed form it prints (``[0/1]``, ``[0/1_2]``), so do we.
    """
    if compile_id is None:
        return False
    trace_id = str(compile_id) if not attempt else f"{compile_id}_{attempt}"
    return f"[{trace_id}]" in allowed


def parse_trace_id_filter(raw: str | None) -> frozenset[str]:
    """``TORCH_LOGS_TRACE_ID_FILTER`` as torch reads it: ``[0/1],[1/0]``."""
    return frozenset(item.strip() for item in (raw or "").split(",") if item.strip())
