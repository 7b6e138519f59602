"""torch's logging settings reach the bridge in a fresh process: modules named in
``TORCH_LOGS="+a.module"`` are bridged as their own component, and the export stack's own
loggers are never bridged even when ``TORCH_LOGS`` names them (no feedback loop)."""

from __future__ import annotations

import sys
from collections import Counter

import pytest

from helpers.processes import TORCH_OTEL, WORKLOAD, run_python
from infra.otlp_receiver import Fault, OtlpReceiver


@pytest.mark.compile
def test_module_enabled_through_torch_logs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    output = tmp_path / "out.jsonl"
    script = tmp_path / "job.py"
    script.write_text(
        "import logging, torch, torch_otel\n"
        f"torch_otel.install('file', output={str(output)!r})\n"
        "logging.getLogger('json.decoder').debug('json module via TORCH_LOGS')\n"
    )
    run = run_python([sys.executable, str(script)], env={"TORCH_LOGS": "+json"}, output=output)
    assert run.returncode == 0, run.stderr
    assert [(r.body, r.attributes["torch.component"]) for r in run.records] == [
        ("json module via TORCH_LOGS", "json")
    ]
    assert "json module via TORCH_LOGS" in run.stderr  # torch printed it too


EXPORT_STACK_LOGS = "+opentelemetry.exporter.otlp.proto.grpc,+urllib3,+grpc"


@pytest.mark.compile
def test_export_stack_loggers_named_in_torch_logs_are_not_bridged() -> None:
    """TORCH_LOGS names the exporter's own modules; with the collector failing, they log
    (torch prints it) but the bridge never exports them: no feedback loop."""
    with OtlpReceiver() as receiver:
        receiver.fail_next(3, Fault.UNAVAILABLE, retry_after=0.05)
        run = run_python(
            [
                *TORCH_OTEL,
                "run",
                "--exporter",
                "otlp-grpc",
                "--",
                sys.executable,
                str(WORKLOAD),
                "--steps",
                "torch_own",
            ],
            env={
                "TORCH_LOGS": EXPORT_STACK_LOGS + ",graph,schedule",
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.grpc_endpoint,
            },
        )
        assert run.returncode == 0, run.stderr[-3000:]
        records = receiver.log_records()
    assert "Transient error" in run.stderr  # the exporter did log, and torch printed it
    scopes = Counter(r.scope_name.split(".")[0] for r in records)
    assert set(scopes) == {"torch"}, scopes
    assert {r.attributes.get("torch.artifact") for r in records} == {"graph", "schedule"}
