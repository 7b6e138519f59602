"""torch's structured trace (``TORCH_TRACE``, the logger ``torch.__trace``) as OTel events.

``torch._logging.trace_structured`` builds a record only when ``torch.__trace``
has a handler, so nothing here costs anything unless ``--trace`` /
``TORCH_OTEL_TRACE=1`` / ``install(trace=True)`` attaches :class:`TraceHandler`.
It sits beside torch's own ``TORCH_TRACE`` file handler when there is one:
both see every event.

Each record becomes an OTel log record:

* event name ``torch.trace.<key>`` (``torch.trace.compilation_metrics``,
  ``torch.trace.artifact``, ``torch.trace.chromium_event``, ``torch.trace.str``, ...);
* body: the payload (graphs, guards, code; chunked like any large body), or "";
* ``torch.trace.metadata``: the metadata dict exactly as torch writes it to its
  trace file (``json.dumps(metadata, default=repr)``), so nothing is lost,
  string-interning ``str`` records included;
* ``torch.trace.prefix``: the glog prefix torch writes before it (level, time,
  pid, file:line), so ``torch-otel to-tlparse`` can rebuild the file;
* the contract's compile-id attributes and ``torch.distributed.rank``, from the
  metadata torch recorded.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from torch_otel.buffer import RecordBuffer
from torch_otel.handler import CapturedRecord

TRACE_EVENT_PREFIX = "torch.trace."
METADATA_ATTRIBUTE = "torch.trace.metadata"
PREFIX_ATTRIBUTE = "torch.trace.prefix"

# Keys torch adds around the event's own key (trace_structured's reserved names,
# plus what it appends itself).
CONTEXT_KEYS = frozenset(
    {
        "rank",
        "compiled_autograd_id",
        "frame_id",
        "frame_compile_id",
        "attempt",
        "severity",
        "timestamp",
        "pathname",
        "thread",
        "subgraph_name",
        "has_payload",
        "stack",
    }
)

# Charged per trace record on top of its payload: the metadata dict (small, except
# compilation_metrics, which carries torch's configs).
TRACE_METADATA_BYTES = 2048


class TraceHandler(logging.Handler):
    """Captures ``torch.__trace`` records (metadata + payload) into the bridge's buffer.

    The same buffer as the log handler, so trace events and log lines reach the
    export thread in the order they happened (which is what links a ``guards``
    record to the compile span open at that moment).
    """

    def __init__(self, buffer: RecordBuffer[CapturedRecord]) -> None:
        super().__init__(level=logging.DEBUG)
        self._buffer = buffer
        self.ignored_thread_ids: frozenset[int] = frozenset()

    def handle(self, record: logging.LogRecord) -> bool:  # type: ignore[override]
        if record.thread in self.ignored_thread_ids:
            return False
        metadata = getattr(record, "metadata", None)
        if not isinstance(metadata, dict):
            return False
        payload = getattr(record, "payload", None)
        message = payload if isinstance(payload, str) else ""
        # Compile ids and rank come from the metadata torch recorded (trace_attributes),
        # not from the thread-local, so they are exactly what the trace file says.
        self._buffer.offer(
            CapturedRecord(
                record.name,
                record.levelno,
                record.created,
                message,
                record.pathname,
                record.lineno,
                record.funcName,
                record.thread,
                record.threadName,
                None,
                None,
                None,
                None,
                None,
                None,
                metadata,
            ),
            len(message) + TRACE_METADATA_BYTES,
        )
        return True

    def emit(self, record: logging.LogRecord) -> None:
        self.handle(record)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} (torch-otel)>"


def event_key(metadata: dict[str, Any]) -> str:
    """The event's own key (``dynamo_start``, ``artifact``, ``str``...)."""
    for key in metadata:
        if key not in CONTEXT_KEYS:
            return key
    return "unknown"


def event_name(metadata: dict[str, Any]) -> str:
    return TRACE_EVENT_PREFIX + event_key(metadata)


def trace_id_text(metadata: dict[str, Any]) -> str | None:
    """The bracketed compile id torch prints (``0/1``, ``0/1_2``, ``!3/0/1``), if any."""
    frame_id = metadata.get("frame_id")
    frame_compile_id = metadata.get("frame_compile_id")
    autograd_id = metadata.get("compiled_autograd_id")
    if frame_id is None and autograd_id is None:
        return None
    if autograd_id is not None:
        text = f"!{autograd_id}"
        if frame_id is not None:
            text += f"/{frame_id}/{frame_compile_id}"
    else:
        text = f"{frame_id}/{frame_compile_id}"
    attempt = metadata.get("attempt")
    return f"{text}_{attempt}" if attempt else text


def trace_attributes(record: CapturedRecord) -> dict[str, Any]:
    """Attributes of a trace record (see the module docstring)."""
    from torch_otel import attributes as attr

    metadata = record.metadata or {}
    out: dict[str, Any] = {
        METADATA_ATTRIBUTE: json.dumps(metadata, default=repr),
        PREFIX_ATTRIBUTE: glog_prefix(record),
    }
    text = trace_id_text(metadata)
    if text is not None:
        out[attr.TORCH_COMPILE_TRACE_ID] = text
    for key, name in (
        ("frame_id", attr.TORCH_COMPILE_FRAME_ID),
        ("frame_compile_id", attr.TORCH_COMPILE_FRAME_COMPILE_ID),
        ("attempt", attr.TORCH_COMPILE_ATTEMPT),
        ("compiled_autograd_id", attr.TORCH_COMPILED_AUTOGRAD_ID),
        ("rank", attr.TORCH_DISTRIBUTED_RANK),
    ):
        value = metadata.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            out[name] = value
    return out


_GLOG_LEVELS = {
    logging.DEBUG: "V",
    logging.INFO: "I",
    logging.WARNING: "W",
    logging.ERROR: "E",
    logging.CRITICAL: "C",
}


def glog_prefix(record: CapturedRecord) -> str:
    """What ``TorchLogsFormatter(trace=True)`` writes before the metadata JSON."""
    created = record.created
    msecs = int((created - int(created)) * 1000)  # as logging.LogRecord computes it
    asctime = time.strftime("%m%d %H:%M:%S", time.localtime(created))
    level = _GLOG_LEVELS.get(record.levelno, logging.getLevelName(record.levelno))
    location = f"{_relative(record.pathname)}:{record.lineno}"
    return f"{level}{asctime}.{msecs * 1000:06d} {_pid()} {location}]"


def _pid() -> int:
    import os

    return os.getpid()


def _relative(pathname: str) -> str:
    try:
        from torch._logging._internal import make_module_path_relative

        return make_module_path_relative(pathname)
    except Exception:  # pragma: no cover - older torch
        return pathname
