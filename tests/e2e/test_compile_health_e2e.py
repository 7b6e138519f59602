"""Compile health end to end: real compiles, no ``TORCH_LOGS``, what arrived compared with
what torch's own ``CompilationMetrics`` recorded for the same run.

* ``torch-otel run`` + the ``file`` profile: a shape-driven and a dtype-driven recompile,
  a data-dependent and a ``print`` graph break, 60 recompiles with distinct sizes;
* ``install()`` + OTLP/gRPC: a compile stuck in its backend until the test has received
  the ``torch.compile.slow`` event, then a compile whose backend raises;
* ``opentelemetry-instrument``: metrics into the application's own MeterProvider;
* in process: the hooks leave torch as they found it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from helpers.processes import REPO, TORCH_OTEL, clean_env, run_instrumented, run_python
from infra.otlp_receiver import OtlpReceiver
from torch_otel.cli.otlp_json import flatten_metrics, iter_requests
from torch_otel.trace.recompile_reasons import normalise_recompile_reason

pytestmark = pytest.mark.compile

WORKLOAD = REPO / "tests" / "workloads" / "compile_health.py"
RECOMPILES = 60
SOURCE = WORKLOAD.read_text().splitlines()
BRANCH_LINE = next(i for i, line in enumerate(SOURCE, 1) if "# BREAK: data-dependent" in line)
PRINT_LINE = next(i for i, line in enumerate(SOURCE, 1) if "# BREAK: print" in line)


def latest_points(path: Path) -> dict[tuple[str, tuple[Any, ...]], Any]:
    """The last value of every metric series in an OTLP/JSON file (cumulative totals)."""
    latest: dict[tuple[str, tuple[Any, ...]], Any] = {}
    for signal, request in iter_requests(path):
        if signal == "metrics":
            for point in flatten_metrics(request):
                latest[(point.name, tuple(sorted(point.attributes.items())))] = point
    return latest


def points(latest: dict[tuple[str, tuple[Any, ...]], Any], name: str) -> list[Any]:
    return [point for (metric, _), point in latest.items() if metric == name]


def location(attributes: dict[str, Any]) -> tuple[str, str, int]:
    return (
        attributes["code.function.name"],
        attributes["code.file.path"],
        attributes["code.line.number"],
    )


class Run:
    def __init__(self, tmp: Path) -> None:
        self.output = tmp / "health.jsonl"
        torch_json = tmp / "torch-metrics.json"
        self.process = run_python(
            [
                *TORCH_OTEL,
                "run",
                "--exporter",
                "file",
                "--output",
                str(self.output),
                "--",
                sys.executable,
                str(WORKLOAD),
                "--steps",
                "main,cardinality",
                "--recompiles",
                str(RECOMPILES),
                "--torch-metrics",
                str(torch_json),
            ],
            env={"RANK": "0", "WORLD_SIZE": "1"},
            output=self.output,
        )
        assert self.process.returncode == 0, self.process.stderr[-3000:]
        self.latest = latest_points(self.output)
        self.torch = [m for m in json.loads(torch_json.read_text()) if not m["is_runtime"]]

    def torch_location(self, metrics: dict[str, Any]) -> tuple[str, str, int]:
        return (metrics["co_name"], metrics["co_filename"], metrics["co_firstlineno"])


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return Run(tmp_path_factory.mktemp("health"))


def test_compiles_per_location_and_outcome_are_torchs(run: Run) -> None:
    exported = Counter()
    for point in points(run.latest, "torch.compile.compiles"):
        exported[(location(point.attributes), point.attributes["torch.compile.outcome"])] += (
            point.value
        )
    expected = Counter(
        (run.torch_location(m), m["fail_type"] or "success") for m in run.torch if m["is_forward"]
    )
    assert exported == expected
    assert {name for (name, _, _), _ in expected} >= {
        "health_step",
        f"torch_dynamo_resume_in_health_step_at_{BRANCH_LINE}",
        "sized",
    }
    for point in points(run.latest, "torch.compile.compiles"):
        assert point.attributes["torch.component"] == "dynamo"
        assert point.attributes["torch.distributed.rank"] == 0  # from the launcher's RANK


def test_recompile_reasons_are_torchs_first_failed_guard_normalised(run: Run) -> None:
    exported = Counter()
    for point in points(run.latest, "torch.compile.recompiles"):
        reason = point.attributes["torch.compile.recompile.reason"]
        exported[(location(point.attributes), reason)] += point.value
    expected = Counter(
        (run.torch_location(m), normalise_recompile_reason(m["recompile_reason"]))
        for m in run.torch
        if m["is_forward"] and m["recompile_reason"]
    )
    assert exported == expected
    step_reasons = {reason for (loc, reason) in exported if loc[0] == "health_step"}
    assert step_reasons == {
        "tensor 'x' size mismatch at index 0. expected N, actual N",  # shape-driven
        "tensor 'x' dtype mismatch. expected Float, actual Double",  # type-driven
    }


def test_a_thousand_sizes_would_still_be_one_reason(run: Run) -> None:
    sized = [
        point
        for point in points(run.latest, "torch.compile.recompiles")
        if point.attributes["code.function.name"] == "sized"
    ]
    assert len(sized) == 1  # RECOMPILES distinct sizes, one normalised reason
    assert sized[0].value == RECOMPILES
    raw = {m["recompile_reason"] for m in run.torch if m["co_name"] == "sized"} - {None}
    assert len(raw) == RECOMPILES  # what torch said: one distinct text per size


def test_graph_breaks_are_located_typed_and_counted_as_torch_did(run: Run) -> None:
    breaks = {
        point.attributes["code.line.number"]: point
        for point in points(run.latest, "torch.compile.graph_breaks")
    }
    assert set(breaks) == {BRANCH_LINE, PRINT_LINE}
    branch, printed = breaks[BRANCH_LINE], breaks[PRINT_LINE]
    for point in (branch, printed):
        assert point.attributes["code.function.name"] == "health_step"
        assert point.attributes["code.file.path"] == str(WORKLOAD)
        assert re.fullmatch(r"GB\d{4}", point.attributes["torch.compile.graph_break.id"])
    assert branch.attributes["torch.compile.graph_break.type"] == "Data-dependent branching"
    # Every compile of health_step broke at the branch (torch resumes after it in a new
    # frame named after that line), and every compile of that resume frame at the print.
    compiles_of = Counter(m["co_name"] for m in run.torch if m["is_forward"])
    assert branch.value == compiles_of["health_step"]
    resumed = [
        m
        for m in run.torch
        if m["co_name"] == f"torch_dynamo_resume_in_health_step_at_{BRANCH_LINE}"
    ]
    assert printed.value == len(resumed)
    # torch's own record of the print break: the restart reasons of those compiles.
    print_type = printed.attributes["torch.compile.graph_break.type"]
    assert all(print_type in [r.split("\n")[0] for r in m["restart_reasons"]] for m in resumed)


def test_durations_are_torchs_per_compile(run: Run) -> None:
    totals = [
        point
        for point in points(run.latest, "torch.compile.duration")
        if point.attributes["torch.compile.phase"] == "total"
    ]
    assert sum(p.count for p in totals) == len(run.torch)
    seconds = sum(m["duration_us"] for m in run.torch) / 1e6
    assert sum(p.sum for p in totals) == pytest.approx(seconds, rel=1e-6)
    durations = points(run.latest, "torch.compile.duration")
    phases = {p.attributes["torch.compile.phase"] for p in durations}
    assert {"total", "dynamo", "backend"} <= phases
    (in_flight,) = points(run.latest, "torch.compile.in_flight")
    assert in_flight.value == 0


def test_no_record_torch_would_not_print_and_torchs_output_unchanged(run: Run) -> None:
    assert run.process.records == []  # no TORCH_LOGS: torch prints nothing, nothing exported
    assert run.process.stdout.count("compile-health workload") == 3
    assert "[0/" not in run.process.stderr  # no torch log line on stderr


def test_summary_shows_compile_health(run: Run) -> None:
    result = subprocess.run(
        [*TORCH_OTEL, "summary", str(run.output)],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    rows: dict[str, list[str]] = {}
    for line in result.stdout.splitlines():  # the first table: one row per code location
        if line.startswith("workloads/compile_health.py:"):
            rows.setdefault(line.split()[1], line.split())
    assert rows["health_step"][2:4] == ["3", "2"]  # compiles, recompiles
    assert rows["sized"][2:4] == [str(RECOMPILES + 1), str(RECOMPILES)]
    assert "Data-dependent branching" in result.stdout
    assert "tensor 'x' dtype mismatch. expected Float, actual Double" in result.stdout


def test_slow_compile_event_arrives_while_the_compile_is_stuck(tmp_path: Path) -> None:
    release = tmp_path / "release"
    with OtlpReceiver() as receiver:
        env = clean_env(
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.grpc_endpoint,
                "TORCH_OTEL_SLOW_COMPILE_S": "0.2",
            }
        )
        command = [sys.executable, str(WORKLOAD), "--steps", "slow", "--release", str(release)]
        process = subprocess.Popen(
            [*command, "--install", "otlp-grpc"], env=env, stderr=subprocess.PIPE, text=True
        )
        try:
            receiver.wait_until(
                lambda: any(r.event_name == "torch.compile.slow" for r in receiver.log_records()),
                timeout=120,
                what="a torch.compile.slow event",
            )
            release.write_text("go")  # only now may the stuck compile end
            _, stderr = process.communicate(timeout=300)
        finally:
            process.kill()
        assert process.returncode == 0, stderr[-3000:]
        assert (tmp_path / "released").read_text() == "1", "the compile ended on its own"
        records = receiver.log_records()
        metrics = receiver.metrics()
    assert {r.event_name for r in records} == {"torch.compile.slow", "torch.compile.slow.finished"}
    by_function: dict[str, dict[str, Any]] = {}
    for record in records:
        by_function.setdefault(record.attributes["code.function.name"], {})[record.event_name] = (
            record
        )
    hung = by_function["hangs"]["torch.compile.slow"]
    ended = by_function["hangs"]["torch.compile.slow.finished"]
    assert hung.severity_text == "WARN" and ended.severity_text == "INFO"
    assert hung.scope_name == "torch_otel"
    assert hung.attributes["torch.component"] == "dynamo"
    assert hung.attributes["code.file.path"] == str(WORKLOAD)
    assert hung.attributes["torch.compile.trace_id"] == ended.attributes["torch.compile.trace_id"]
    assert hung.attributes["torch.compile.slow.threshold"] == 0.2
    assert hung.attributes["torch.compile.elapsed"] >= 0.2
    assert ended.attributes["torch.compile.elapsed"] > hung.attributes["torch.compile.elapsed"]
    assert hung.attributes["torch.compile.phase"]  # the phase torch had open (its backend)
    assert hung.attributes["torch.compile.trigger"] == "dynamo"
    assert "torch.compile.slow.finished" in by_function["fails"]
    # The failing compile still ended its in-flight count and counts as failed.
    final = {}
    for metric in metrics:
        for point in metric.points:
            final[(metric.name, tuple(sorted(point.attributes.items())))] = point
    outcomes = {
        (dict(attrs)["code.function.name"], dict(attrs)["torch.compile.outcome"]): p.value
        for (name, attrs), p in final.items()
        if name == "torch.compile.compiles"
    }
    assert outcomes == {("hangs", "success"): 1, ("fails", "BackendCompilerFailed"): 1}
    assert [p.value for (name, _), p in final.items() if name == "torch.compile.in_flight"] == [0]


def test_opentelemetry_instrument_records_into_the_applications_meter_provider() -> None:
    with OtlpReceiver() as receiver:
        run = run_instrumented(
            WORKLOAD, receiver.grpc_endpoint, service="instrumented-health", metrics=True, env={}
        )
        assert run.returncode == 0, run.stderr[-3000:]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not receiver.metrics():
            time.sleep(0.1)
        metrics = [m for m in receiver.metrics() if m.scope_name == "torch_otel"]
    assert metrics, "no compile-health metric reached the application's exporter"
    assert all(m.resource["service.name"] == "instrumented-health" for m in metrics)
    assert all("telemetry.auto.version" in m.resource for m in metrics)  # the distro's provider
    last = {}
    for metric in metrics:
        for point in metric.points:
            last[(metric.name, tuple(sorted(point.attributes.items())))] = point
    compiles = {
        dict(attrs)["code.function.name"]: p.value
        for (name, attrs), p in last.items()
        if name == "torch.compile.compiles"
    }
    assert compiles["health_step"] == 3
    assert any(name == "torch.compile.graph_breaks" for name, _ in last)


def test_hooks_leave_torch_as_they_found_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch
    import torch._dynamo.utils as dynamo_utils
    from torch._dynamo.callback import callback_handler
    from torch._dynamo.symbolic_convert import InstructionTranslatorBase

    from torch_otel.capture._torch_compile import CompileHooks

    before = (
        dynamo_utils.log_compilation_event,
        InstructionTranslatorBase.__dict__["log_graph_break"],
        list(callback_handler.start_callbacks),
        list(callback_handler.end_callbacks),
        "clear" in callback_handler.__dict__,
    )
    events: list[Any] = []
    hooks = CompileHooks(events.append)
    hooks.install()
    try:
        assert hooks.attached
        torch._dynamo.reset()  # clears every callback: ours come back
        torch.compile(lambda x: (x + 1).sum(), backend="eager")(torch.ones(2))
        kinds = Counter(type(event).__name__ for event in events)
        assert kinds == {"CompileStarted": 1, "CompileEnded": 1, "CompileFinished": 1}
    finally:
        hooks.uninstall()
    after = (
        dynamo_utils.log_compilation_event,
        InstructionTranslatorBase.__dict__["log_graph_break"],
        list(callback_handler.start_callbacks),
        list(callback_handler.end_callbacks),
        "clear" in callback_handler.__dict__,
    )
    assert after == before
    events.clear()
    torch.compile(lambda x: (x * 3).sum(), backend="eager")(torch.ones(2))
    assert events == []


def test_opting_out_touches_no_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    from helpers.bridges import bridged

    with bridged(monkeypatch, profile="console", compile_metrics=False) as bridge:
        assert bridge.health is None
    with bridged(monkeypatch, profile="console") as bridge:
        assert bridge.health is not None
        assert bridge._compile_hooks.attached
    assert not bridge._compile_hooks.attached
