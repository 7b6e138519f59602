"""torch's stderr format, parsed: what the bridge exports must equal what torch prints.

Each line torch's own handler prints looks like
``<[rankN]:>L<MMDD HH:MM:SS.micros> <pid> <path>:<line>]< [trace id]>< [__artifact]> <text>``.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass

from torch_otel.cli.otlp_json import FlatLogRecord

# <[rankN]:>L<MMDD HH:MM:SS.micros> <pid> <path>:<line>]< [trace id]>< [__artifact]> <text>
_TORCH_LINE = re.compile(
    r"^(?:\[rank(?P<rank>\d+)\]:)?(?P<level>[VIWEC])"
    r"(?P<stamp>\d{4} \d\d:\d\d:\d\d\.\d{6}) (?P<pid>\d+) "
    r"(?P<path>[^\s:]+):(?P<line>\d+)\]"
    r"(?: \[(?P<trace>!?\d+(?:/\d+)*(?:_\d+)?)\])?"
    r"(?: \[__(?P<artifact>[a-z0-9_]+)\])? (?P<text>.*)$"
)


@dataclass(frozen=True)
class TorchLine:
    """One line torch printed; ``stamp`` is its time as torch prints it (local, ms)."""

    pid: int
    stamp: str
    level: str
    file: str
    line: int
    trace_id: str | None
    artifact: str | None
    text: str


def parse_torch_stderr(stderr: str) -> list[TorchLine]:
    """Every line torch's own handler printed (other stderr lines are skipped)."""
    lines = []
    for raw in stderr.split("\n"):
        match = _TORCH_LINE.match(raw)
        if match:
            lines.append(
                TorchLine(
                    pid=int(match["pid"]),
                    stamp=match["stamp"],
                    level=match["level"],
                    file=os.path.basename(match["path"]),
                    line=int(match["line"]),
                    trace_id=match["trace"],
                    artifact=match["artifact"],
                    text=match["text"],
                )
            )
    return lines


_LEVEL_LETTER = {"DEBUG": "V", "INFO": "I", "WARN": "W", "ERROR": "E", "FATAL": "C"}


def expected_torch_lines(record: FlatLogRecord) -> list[TorchLine]:
    """The stderr lines torch prints for an exported record (one per body line)."""
    attributes = record.attributes
    text = record.body if isinstance(record.body, str) else str(record.body)
    stamp = torch_time_stamp(record.time_unix_nano)
    return [
        TorchLine(
            pid=int(record.resource["process.pid"]),
            stamp=stamp,
            level=_LEVEL_LETTER.get(record.severity_text, "?"),
            file=os.path.basename(attributes["code.file.path"]),
            line=int(attributes["code.line.number"]),
            trace_id=attributes.get("torch.compile.trace_id"),
            artifact=attributes.get("torch.artifact"),
            text=piece,
        )
        for piece in text.split("\n")
    ]


def torch_time_stamp(time_unix_nano: int) -> str:
    """The time as torch's formatter prints it: local time, whole milliseconds."""
    created = time_unix_nano / 1e9
    milliseconds = int((created - int(created)) * 1000)  # as logging.LogRecord.msecs
    return f"{time.strftime('%m%d %H:%M:%S', time.localtime(created))}.{milliseconds * 1000:06d}"
