"""Running real workloads in fresh interpreters, and reading what they exported.

``TORCH_LOGS`` is read by torch at import time, so every end-to-end test runs
its workload in a new Python process, exactly as a user's job would start.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from torch_otel.cli.otlp_json import FlatLogRecord, read_log_records

REPO = Path(__file__).resolve().parents[2]
WORKLOAD = REPO / "tests" / "workloads" / "compile_workload.py"
TORCH_OTEL = [sys.executable, "-m", "torch_otel.cli"]

ENVIRONMENT_LOGGERS = frozenset({"torch.utils.cpp_extension"})
"""torch loggers whose records describe the machine, not the compile."""
ENVIRONMENT_FILES = frozenset({"cpp_extension.py"})
"""The files those loggers print from (for torch's stderr lines)."""

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

    @property
    def compile_records(self) -> list[FlatLogRecord]:
        """The records, less torch's notes about the machine itself (a CUDA build on a
        machine without a GPU says "No CUDA runtime is found" through
        ``torch.utils.cpp_extension`` when inductor loads it)."""
        return [r for r in self.records if r.scope not in ENVIRONMENT_LOGGERS]

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


def run_instrumented(
    script: Path, grpc_endpoint: str, *, service: str, metrics: bool, env: Mapping[str, str]
) -> Run:
    """Run ``script`` under ``opentelemetry-instrument``, configured the distro's usual way
    (``OTEL_*``): logs (and metrics if asked) over OTLP/gRPC to ``grpc_endpoint``."""
    distro_env = {
        "OTEL_SERVICE_NAME": service,
        "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "otlp" if metrics else "none",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_ENDPOINT": grpc_endpoint,
        **env,
    }
    instrument = Path(sys.executable).parent / "opentelemetry-instrument"
    return run_python([str(instrument), sys.executable, str(script)], env=distro_env)


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
