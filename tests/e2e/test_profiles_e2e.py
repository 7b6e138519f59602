"""Every exporter profile, end to end, from a real torch.compile.

console -> JSON on stdout; file -> OTLP/JSON lines read back with the OTel
proto classes; otlp-grpc and otlp-http -> a loopback OTLP receiver built on
``opentelemetry-proto`` (see ``otlp_receiver.py``). Also ``torch-otel run``
on an unmodified script, with inductor's compile-worker subprocesses on.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import pytest

from helpers.processes import TORCH_OTEL, WORKLOAD, run_python
from helpers.torch_stderr import parse_torch_stderr
from infra.otlp_receiver import OtlpReceiver
from torch_otel.cli.otlp_json import iter_requests

pytestmark = pytest.mark.compile

LOGS = "guards,recompiles,graph_code,output_code"


@pytest.fixture(scope="module")
def receiver() -> OtlpReceiver:
    with OtlpReceiver() as running:
        yield running


def _workload(profile: str, *extra: str) -> list[str]:
    return [sys.executable, str(WORKLOAD), "--steps", "main", "--install", profile, *extra]


def test_console_profile_prints_parseable_json(tmp_path: Path) -> None:
    run = run_python(_workload("console"), env={"TORCH_LOGS": LOGS})
    assert run.returncode == 0, run.stderr[-3000:]
    decoder = json.JSONDecoder()
    records, position, text = [], 0, run.stdout
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position >= len(text):
            break
        record, position = decoder.raw_decode(text, position)
        records.append(record)
    # Compile-health metrics come through the profile's meter_provider, also as JSON.
    metrics = [r for r in records if "resource_metrics" in r]
    records = [r for r in records if "resource_metrics" not in r]
    assert metrics and all(
        r["resource"]["attributes"]["service.name"] == "torch-job"
        for r in [m["resource_metrics"][0] for m in metrics]
    )
    artifacts = Counter(r["attributes"].get("torch.artifact") for r in records)
    assert artifacts["guards"] > 0 and artifacts["output_code"] > 0
    printed = [line for line in parse_torch_stderr(run.stderr) if line.artifact == "guards"]
    guard_records = [r for r in records if r["attributes"].get("torch.artifact") == "guards"]
    assert sum(r["body"].count("\n") + 1 for r in guard_records) == len(printed)
    assert all(r["resource"]["attributes"]["service.name"] == "torch-job" for r in records)


def test_file_profile_writes_otlp_json_lines(tmp_path: Path) -> None:
    output = tmp_path / "logs.jsonl"
    run = run_python(
        _workload("file", "--output", str(output)), env={"TORCH_LOGS": LOGS}, output=output
    )
    assert run.returncode == 0, run.stderr[-3000:]
    lines = output.read_text().splitlines()
    assert lines
    for line in lines:  # one export request per line: logs, and compile-health metrics
        assert set(json.loads(line)) in ({"resourceLogs"}, {"resourceMetrics"})
    signals = {signal for signal, _ in iter_requests(output)}
    assert signals == {"logs", "metrics"}
    assert {r.attributes.get("torch.artifact") for r in run.records} >= {"guards", "output_code"}


@pytest.mark.parametrize("profile", ["otlp-grpc", "otlp-http"])
def test_otlp_profiles_reach_the_collector(receiver: OtlpReceiver, profile: str) -> None:
    receiver.clear()
    endpoint = receiver.grpc_endpoint if profile == "otlp-grpc" else receiver.http_endpoint
    run = run_python(
        _workload(profile),
        env={
            "TORCH_LOGS": LOGS,
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_SERVICE_NAME": f"profile-{profile}",
        },
    )
    assert run.returncode == 0, run.stderr[-3000:]
    arrived = receiver.log_records()
    printed_records = {
        (line.file, line.line, line.trace_id, line.artifact)
        for line in parse_torch_stderr(run.stderr)
    }
    assert arrived
    assert {r.resource["service.name"] for r in arrived} == {f"profile-{profile}"}
    assert {r.attributes.get("torch.artifact") for r in arrived} >= {"guards", "output_code"}
    exported_lines = sum(r.body.count("\n") + 1 for r in arrived)
    assert exported_lines == len(parse_torch_stderr(run.stderr))
    exported_keys = {
        (
            Path(r.attributes["code.file.path"]).name,
            r.attributes["code.line.number"],
            r.attributes.get("torch.compile.trace_id"),
            r.attributes.get("torch.artifact"),
        )
        for r in arrived
    }
    assert exported_keys == printed_records
    transports = {request.transport for request in receiver.received("logs")}
    assert transports == {"grpc" if profile == "otlp-grpc" else "http"}


def test_run_bridges_an_unmodified_script_with_compile_workers(
    receiver: OtlpReceiver, tmp_path: Path
) -> None:
    """`torch-otel run` on a script that knows nothing about torch-otel, with inductor's
    compile-worker pool on (two subprocess workers): every record once, no hang."""
    receiver.clear()
    script = [sys.executable, str(WORKLOAD), "--steps", "compile_workers"]
    run = run_python(
        [*TORCH_OTEL, "run", "--exporter", "otlp-grpc", "--", *script],
        env={
            "TORCH_LOGS": "+inductor,+async_compile,output_code,guards",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.grpc_endpoint,
            "TORCHINDUCTOR_COMPILE_THREADS": "2",
            # a fresh cache so inductor really compiles (and uses its workers)
            "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor-cache"),
        },
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "torch-otel:" not in run.stderr  # no install failure, nothing dropped
    arrived = receiver.log_records()
    keys = Counter(
        (r.resource["process.pid"], r.attributes["code.line.number"], r.time_unix_nano, r.body)
        for r in arrived
    )
    duplicates = {key: n for key, n in keys.items() if n > 1}
    assert not duplicates
    main_pid = Counter(r.resource["process.pid"] for r in arrived).most_common(1)[0][0]
    printed = [line for line in parse_torch_stderr(run.stderr) if line.pid == main_pid]
    exported = [r for r in arrived if r.resource["process.pid"] == main_pid]
    assert sum(r.body.count("\n") + 1 for r in exported) == len(printed)
    assert any("pool with 2 workers" in r.body for r in exported)
    # The compile-worker sidecar is a fresh interpreter started by inductor: the
    # bootstrap installed the bridge there too, and its own records arrived.
    worker_pids = set(keys_pid for keys_pid, *_ in keys) - {main_pid}
    assert worker_pids, "no record from inductor's compile-worker process"


def test_demo_exports_to_the_console_and_summarizes() -> None:
    run = run_python([*TORCH_OTEL, "demo"])
    assert run.returncode == 0, run.stderr[-3000:]
    report = run.stdout[run.stdout.index("torch-otel demo: records exported") :]
    rows = {
        tuple(line.split()[:2]): int(line.split()[-1])
        for line in report.splitlines()[3:]
        if line and not line.startswith(("total", "records")) and line.split()[-1].isdigit()
    }
    for artifact in ("guards", "recompiles", "graph_breaks", "output_code"):
        assert rows.get(("dynamo" if artifact != "output_code" else "inductor", artifact), 0) > 0
    console = run.stdout[: run.stdout.index("torch-otel demo: records exported")]
    decoder, position, records, metric_names = json.JSONDecoder(), 0, 0, set()
    while console[position:].strip():
        while console[position].isspace():
            position += 1
        record, position = decoder.raw_decode(console, position)
        if "resource_metrics" in record:  # compile health, from the profile's meter_provider
            metric_names |= {
                metric["name"]
                for resource in record["resource_metrics"]
                for scope in resource["scope_metrics"]
                for metric in scope["metrics"]
            }
            continue
        records += 1
        assert record["attributes"]["torch.component"]
    assert {"torch.compile.compiles", "torch.compile.recompiles"} <= metric_names
    total = int(next(line for line in report.splitlines() if line.startswith("total")).split()[-1])
    assert records == total
    assert "dropped none" in report
