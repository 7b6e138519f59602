"""torch's structured trace (``TORCH_TRACE``, the logger ``torch.__trace``) as OTel events.

Each record :class:`~torch_otel.trace.handler.TraceHandler` captures becomes an
OTel log record:

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
import os
import time
from typing import Any

from torch_otel import names
from torch_otel.capture import _torch
from torch_otel.capture.records import CapturedRecord

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


def event_key(metadata: dict[str, Any]) -> str:
    """The event's own key (``dynamo_start``, ``artifact``, ``str``...)."""
    for key in metadata:
        if key not in CONTEXT_KEYS:
            return key
    return "unknown"


def event_name(metadata: dict[str, Any]) -> str:
    return names.TORCH_TRACE_EVENT_PREFIX + event_key(metadata)


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
    metadata = record.metadata or {}
    out: dict[str, Any] = {
        names.TORCH_TRACE_METADATA: json.dumps(metadata, default=repr),
        names.TORCH_TRACE_PREFIX: glog_prefix(record),
    }
    text = trace_id_text(metadata)
    if text is not None:
        out[names.TORCH_COMPILE_TRACE_ID] = text
    for key, name in (
        ("frame_id", names.TORCH_COMPILE_FRAME_ID),
        ("frame_compile_id", names.TORCH_COMPILE_FRAME_COMPILE_ID),
        ("attempt", names.TORCH_COMPILE_ATTEMPT),
        ("compiled_autograd_id", names.TORCH_COMPILED_AUTOGRAD_ID),
        ("rank", names.TORCH_DISTRIBUTED_RANK),
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
    location = f"{_torch.module_path_relative(record.pathname)}:{record.lineno}"
    return f"{level}{asctime}.{msecs * 1000:06d} {os.getpid()} {location}]"
