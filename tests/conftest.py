"""Shared helpers: running real workloads in fresh interpreters, reading what they exported.

``TORCH_LOGS`` is read by torch at import time, so every end-to-end test runs
its workload in a new Python process, exactly as a user's job would start.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from torch_otel.otlp_json import FlatLogRecord, read_log_records

REPO = Path(__file__).resolve().parents[1]
WORKLOAD = REPO / "tests" / "workloads" / "compile_workload.py"
TORCH_OTEL = [sys.executable, "-m", "torch_otel.cli"]

# Variables a developer's shell may have that would change what a test sees.
_SCRUBBED_PREFIXES = ("TORCH_LOGS", "TORCH_OTEL_", "OTEL_", "TORCH_TRACE", "TORCH_COMPILE_DEBUG")


def clean_env(overrides: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """The environment of a fresh job: no inherited torch/OTel logging settings.

    Inductor's compile-worker pool is off (one compile thread) unless a test
    asks for it, which keeps runs fast and deterministic on 2 cores.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    env["TORCHINDUCTOR_COMPILE_THREADS"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    for key, value in (overrides or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    output: Path | None = None
    records: list[FlatLogRecord] = field(default_factory=list)

    def by_artifact(self, artifact: str) -> list[FlatLogRecord]:
        return [r for r in self.records if r.attributes.get("torch.artifact") == artifact]

    def artifacts(self) -> set[str]:
        return {
            r.attributes["torch.artifact"] for r in self.records if "torch.artifact" in r.attributes
        }


def run_python(
    args: list[str],
    *,
    env: Mapping[str, str | None] | None = None,
    output: Path | None = None,
    timeout: float = 600,
    cwd: Path | None = None,
) -> Run:
    """Run a command (already including the interpreter) and read the OTLP/JSON it wrote."""
    completed = subprocess.run(
        args, env=clean_env(env), capture_output=True, timeout=timeout, cwd=cwd
    )
    # Decoded by hand: text mode would turn a "\r" inside a torch message into a newline.
    run = Run(
        completed.returncode,
        completed.stdout.decode("utf-8", "replace"),
        completed.stderr.decode("utf-8", "replace"),
        output,
    )
    if output is not None and output.exists():
        run.records = read_log_records(output)
    return run


def run_workload(
    tmp_path: Path,
    *workload_args: str,
    env: Mapping[str, str | None] | None = None,
    via_cli: list[str] | None = None,
    name: str = "out",
) -> Run:
    """Run ``compile_workload.py``, bridged to the ``file`` profile, and read the records.

    ``via_cli``: run it under ``torch-otel run [via_cli options] --`` instead of
    installing the bridge inside the script.
    """
    output = tmp_path / f"{name}.jsonl"
    script = [sys.executable, str(WORKLOAD), *workload_args]
    if via_cli is not None:
        args = [
            *TORCH_OTEL,
            "run",
            "--exporter",
            "file",
            "--output",
            str(output),
            *via_cli,
            "--",
            *script,
        ]
    else:
        args = [*script, "--install", "file", "--output", str(output)]
    run = run_python(args, env=env, output=output)
    assert run.returncode == 0, f"workload failed ({run.returncode}):\n{run.stderr[-4000:]}"
    return run


# --- torch's stderr format -------------------------------------------------------------
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


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO
