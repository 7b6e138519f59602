"""Compile health from compile events: counters with code locations, bounded recompile
reasons, durations per phase, compiles in flight, slow-compile events while a compile is
stuck. Events in the shapes torch's hooks produce; the real SDK with an in-memory reader."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from torch_otel.capture.compile_events import (
    CodeLocation,
    CompileEnded,
    CompileFinished,
    CompileStarted,
    GraphBreak,
    parse_compile_id,
)
from torch_otel.capture.records import CapturedRecord
from torch_otel.trace import health_metrics
from torch_otel.trace.health import CompileHealth
from torch_otel.trace.recompile_reasons import (
    MAX_DISTINCT_VALUES,
    BoundedValues,
    normalise_recompile_reason,
)

TRAIN = CodeLocation("train_step", "/job/train.py", 12)
RANK = 3


@pytest.fixture(autouse=True)
def registered_break_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch's registry, as far as these tests need it (without importing torch._dynamo)."""
    registry = {"Data-dependent branching": "GB0170", "Failed to trace builtin operator": "GB0059"}
    monkeypatch.setattr(health_metrics, "graph_break_id", registry.get)


class Harness:
    def __init__(self, slow_compile_s: float = 300.0) -> None:
        self.reader = InMemoryMetricReader()
        provider = MeterProvider(metric_readers=[self.reader])
        self.records: list[CapturedRecord] = []
        self.emitted = threading.Event()
        self.now = 1000.0
        self.health = CompileHealth(
            meter=lambda: provider.get_meter("t"),
            emit_record=self.emit,
            slow_compile_s=slow_compile_s,
            clock=lambda: self.now,
        )

    def emit(self, record: CapturedRecord, size: int) -> bool:
        self.records.append(record)
        self.emitted.set()
        return True

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        for resource_metrics in data.resource_metrics if data else ():
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name == name:
                        return list(metric.data.data_points)
        return []

    def total(self, name: str, **attributes: Any) -> float:
        return sum(
            point.value if hasattr(point, "value") else point.count
            for point in self.points(name)
            if all(point.attributes.get(k) == v for k, v in attributes.items())
        )


def started(compile_id: str = "0/0", at: float = 1000.0, **fields: Any) -> CompileStarted:
    values = {"trigger": "dynamo", "thread_id": 7, "code": TRAIN, "rank": RANK, "phases": None}
    values.update(fields)
    return CompileStarted(compile_id, monotonic=at, **values)


def finished(compile_id: str = "0/0", **fields: Any) -> CompileFinished:
    values: dict[str, Any] = {
        "code": TRAIN,
        "fail_type": None,
        "recompile_reason": None,
        "is_forward": True,
        "is_runtime": False,
        "restart_reasons": (),
        "phase_seconds": (("total", 1.5), ("dynamo", 1.5), ("backend", 1.2)),
        "rank": RANK,
    }
    values.update(fields)
    return CompileFinished(compile_id, **values)


def compile_once(health: CompileHealth, compile_id: str, **fields: Any) -> None:
    health.offer(started(compile_id, code=fields.get("code", TRAIN)))
    health.offer(CompileEnded(compile_id, "dynamo", 1001.0))
    health.offer(finished(compile_id, **fields))


def test_counters_carry_location_outcome_reason_and_rank() -> None:
    harness = Harness()
    compile_once(harness.health, "0/0")
    compile_once(harness.health, "0/1", recompile_reason="0/0: n == 1  # y = x * n  # t.py:3")
    size_reason = "0/1: tensor 'x' size mismatch at index 0. expected 4, actual 6"
    compile_once(harness.health, "0/2", recompile_reason=size_reason)
    compile_once(harness.health, "1/0", fail_type="BackendCompilerFailed", code=None)
    harness.health.process_pending()

    location = {"code.function.name": "train_step", "code.file.path": "/job/train.py"}
    assert harness.total("torch.compile.compiles", **location, **{"code.line.number": 12}) == 3
    assert harness.total("torch.compile.compiles", **{"torch.compile.outcome": "success"}) == 3
    failed = [
        p
        for p in harness.points("torch.compile.compiles")
        if p.attributes["torch.compile.outcome"] == "BackendCompilerFailed"
    ]
    assert len(failed) == 1 and "code.function.name" not in failed[0].attributes
    reasons = {
        p.attributes["torch.compile.recompile.reason"]: p.value
        for p in harness.points("torch.compile.recompiles")
    }
    assert reasons == {"n == N": 1, "tensor 'x' size mismatch at index 0. expected N, actual N": 1}
    for name in ("torch.compile.compiles", "torch.compile.recompiles", "torch.compile.duration"):
        for point in harness.points(name):
            assert point.attributes["torch.component"] == "dynamo"
            assert point.attributes["torch.distributed.rank"] == RANK


def test_a_backward_compile_takes_the_location_of_its_frame() -> None:
    harness = Harness()
    compile_once(harness.health, "4/0")
    harness.health.offer(
        finished("4/0", code=None, is_forward=False, phase_seconds=(("backward", 0.5),))
    )
    harness.health.offer(finished("4/0", code=None, is_runtime=True))  # runtime: ignored
    harness.health.process_pending()
    assert harness.total("torch.compile.compiles") == 1  # frame compiles only
    backward = [
        p
        for p in harness.points("torch.compile.duration")
        if p.attributes["torch.compile.phase"] == "backward"
    ]
    assert len(backward) == 1 and backward[0].attributes["code.function.name"] == "train_step"
    durations = harness.points("torch.compile.duration")
    phases = {p.attributes["torch.compile.phase"]: p.sum for p in durations}
    assert phases == pytest.approx({"total": 1.5, "dynamo": 1.5, "backend": 1.2, "backward": 0.5})


def test_graph_breaks_carry_type_registry_id_and_the_line_that_broke() -> None:
    harness = Harness()
    at_branch = CodeLocation("train_step", "/job/train.py", 15)
    for _ in range(2):
        harness.health.offer(GraphBreak("0/0", "Data-dependent branching", at_branch, RANK))
    harness.health.offer(GraphBreak("1/0", "Some unregistered break", None, None))
    harness.health.process_pending()
    (branch, other) = sorted(harness.points("torch.compile.graph_breaks"), key=lambda p: -p.value)
    assert branch.value == 2
    assert branch.attributes["torch.compile.graph_break.type"] == "Data-dependent branching"
    assert branch.attributes["torch.compile.graph_break.id"] == "GB0170"
    assert branch.attributes["code.line.number"] == 15
    assert "torch.compile.graph_break.id" not in other.attributes


def test_in_flight_goes_up_and_back_down_even_when_the_compile_raises() -> None:
    harness = Harness()
    harness.health.offer(started("2/0"))
    harness.health.process_pending()
    assert harness.total("torch.compile.in_flight") == 1
    assert harness.health.in_flight == 1
    harness.health.offer(CompileEnded("2/0", "dynamo", 1002.0))  # torch runs it in a finally
    harness.health.offer(finished("2/0", fail_type="BackendCompilerFailed"))
    harness.health.process_pending()
    assert harness.total("torch.compile.in_flight") == 0
    assert harness.health.in_flight == 0
    failed = {"torch.compile.outcome": "BackendCompilerFailed"}
    assert harness.total("torch.compile.compiles", **failed) == 1


def test_an_end_for_another_compile_id_ends_what_is_in_flight() -> None:
    """torch's callbacks are process-wide: start for the first compile, end for the last."""
    harness = Harness()
    harness.health.offer(started("0/0"))
    harness.health.offer(CompileEnded("5/0", "dynamo", 1001.0))
    harness.health.offer(CompileEnded("6/0", "dynamo", 1001.0))  # nothing in flight: ignored
    harness.health.process_pending()
    assert harness.total("torch.compile.in_flight") == 0


def test_slow_compile_event_while_running_and_finished_event_at_the_end() -> None:
    harness = Harness(slow_compile_s=300)
    phases = ["dynamo", "entire_frame_compile", "backend_compile", "inductor_compile"]
    harness.health.offer(started("3/1", at=1000.0, phases=phases))
    harness.now = 1299.0
    harness.health.process_pending()
    assert harness.records == []
    harness.now = 1301.0
    harness.health.process_pending()
    harness.health.process_pending()  # reported once
    (slow,) = harness.records
    assert slow.event.name == "torch.compile.slow"
    assert slow.levelno == logging.WARNING
    assert slow.logger_name == "torch_otel"
    assert (slow.func_name, slow.pathname, slow.lineno) == ("train_step", "/job/train.py", 12)
    assert slow.compile_id == parse_compile_id("3/1") and str(slow.compile_id) == "3/1"
    assert slow.rank == RANK
    assert slow.event.attributes == {
        "torch.compile.elapsed": 301.0,
        "torch.compile.slow.threshold": 300.0,
        "torch.compile.trigger": "dynamo",
        "torch.compile.phase": "inductor_compile",
    }
    assert "3/1" in slow.message and "train_step" in slow.message and "301" in slow.message
    phases.append("code_gen")
    harness.health.offer(CompileEnded("3/1", "dynamo", 1400.0))
    harness.health.process_pending()
    finished_event = harness.records[-1]
    assert finished_event.event.name == "torch.compile.slow.finished"
    assert finished_event.levelno == logging.INFO
    assert finished_event.event.attributes["torch.compile.elapsed"] == 400.0
    # A compile under the threshold reports nothing.
    harness.health.offer(started("4/0", at=1400.0))
    harness.health.offer(CompileEnded("4/0", "dynamo", 1401.0))
    harness.health.process_pending()
    assert len(harness.records) == 2


def test_first_compile_of_an_unknown_frame_still_reports() -> None:
    harness = Harness(slow_compile_s=1)
    harness.health.offer(started("9/0", at=1000.0, code=None, trigger="lazy_backward"))
    harness.now = 1005.0
    harness.health.process_pending()
    (slow,) = harness.records
    assert slow.pathname == "" and slow.func_name is None
    assert slow.event.attributes["torch.compile.trigger"] == "lazy_backward"
    assert "unknown frame" in slow.message


def test_the_check_runs_on_its_own_thread_while_the_compile_thread_is_stuck() -> None:
    records: list[CapturedRecord] = []
    arrived = threading.Event()

    def emit(record: CapturedRecord, size: int) -> bool:
        records.append(record)
        arrived.set()
        return True

    health = CompileHealth(meter=lambda: None, emit_record=emit, slow_compile_s=0.05)
    health.start()
    try:
        # What the compile thread did before getting stuck: one start, no end.
        health.offer(started("0/0", at=time.monotonic()))
        assert arrived.wait(30), "no slow-compile event while the compile was stuck"
        assert records[0].event.name == "torch.compile.slow"
    finally:
        health.stop()


SIZE = "tensor 'x' size mismatch at index 0. expected"
TYPE_ID = "___check_type_id(n, 140415030623456), type=<class 'int'>"
TYPE_ID_N = "___check_type_id(n, N), type=<class 'int'>"


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("0/0: n == 1       # y = x * n  # train.py:35 in f\nUser stack trace:", "n == N"),
        (f"0/1: {SIZE} 4, actual 6", f"{SIZE} N, actual N"),
        (f"0/2: {TYPE_ID}  # y = x * n  # t.py:35 in f (HINT: type int)", TYPE_ID_N),
        ("[3/1]: L['x'].size()[1] == 8", "L['x'].size()[1] == N"),
        ("Ne(s77, 1)", "Ne(s77, N)"),
        ("___check_obj_id(L['self'], 0x7ffd2a10)", "___check_obj_id(L['self'], N)"),
        ("L['lr'] == 0.001", "L['lr'] == N"),
        ("Unable to find recompilation reasons", "Unable to find recompilation reasons"),
        ("", "unknown"),
    ],
)  # fmt: skip
def test_recompile_reason_normalisation(raw: str, normalised: str) -> None:
    assert normalise_recompile_reason(raw) == normalised


def test_a_thousand_recompiles_with_distinct_sizes_give_a_bounded_set_of_reasons() -> None:
    harness = Harness()
    for size in range(1000):
        reason = f"0/{size}: {SIZE} {size + 1}, actual {size + 2}"
        compile_once(harness.health, f"0/{size + 1}", recompile_reason=reason)
        if size % 100 == 0:
            harness.health.process_pending()
    harness.health.process_pending()
    points = harness.points("torch.compile.recompiles")
    assert len(points) == 1
    assert points[0].value == 1000


def test_distinct_causes_beyond_the_bound_are_counted_as_other() -> None:
    harness = Harness()
    for index in range(MAX_DISTINCT_VALUES + 30):
        compile_once(harness.health, f"0/{index + 1}", recompile_reason=f"L['v{index}'] == 1")
    harness.health.process_pending()
    reasons = {
        p.attributes["torch.compile.recompile.reason"]: p.value
        for p in harness.points("torch.compile.recompiles")
    }
    assert len(reasons) == MAX_DISTINCT_VALUES + 1
    assert reasons["other"] == 30
    assert sum(reasons.values()) == MAX_DISTINCT_VALUES + 30


def test_bounded_values_keeps_values_it_already_passed() -> None:
    bounded = BoundedValues(limit=2)
    passed = [bounded(v) for v in ("a", "b", "c", "a", "b", "d")]
    assert passed == ["a", "b", "other", "a", "b", "other"]
    assert bounded.overflowed == 2 and len(bounded) == 2


def test_settings_from_arguments_and_environment() -> None:
    from torch_otel.config.settings import BridgeSettings
    from torch_otel.errors import ConfigError

    default = BridgeSettings.resolve({}, {})
    assert (default.compile_metrics, default.slow_compile_s) == (True, 300.0)
    off = BridgeSettings.resolve(
        {}, {"TORCH_OTEL_COMPILE_METRICS": "0", "TORCH_OTEL_SLOW_COMPILE_S": "0.5"}
    )
    assert (off.compile_metrics, off.slow_compile_s) == (False, 0.5)
    given = BridgeSettings.resolve(
        {"compile_metrics": True, "slow_compile_s": 60}, {"TORCH_OTEL_COMPILE_METRICS": "0"}
    )
    assert (given.compile_metrics, given.slow_compile_s) == (True, 60.0)
    for value in ("0", "-1", "nan", "soon", "1e9"):
        with pytest.raises(ConfigError, match="TORCH_OTEL_SLOW_COMPILE_S"):
            BridgeSettings.resolve({}, {"TORCH_OTEL_SLOW_COMPILE_S": value})
    with pytest.raises(ConfigError, match="TORCH_OTEL_COMPILE_METRICS"):
        BridgeSettings.resolve({}, {"TORCH_OTEL_COMPILE_METRICS": "maybe"})


def test_run_passes_no_compile_metrics_to_the_job() -> None:
    from torch_otel.cli import build_parser
    from torch_otel.cli.options import bridge_options
    from torch_otel.cli.run import run_environment

    args = build_parser().parse_args(["run", "--no-compile-metrics", "--", "python", "x.py"])
    assert run_environment(bridge_options(args), {})["TORCH_OTEL_COMPILE_METRICS"] == "0"
    args = build_parser().parse_args(["run", "--", "python", "x.py"])
    assert "TORCH_OTEL_COMPILE_METRICS" not in run_environment(bridge_options(args), {})


def test_hooks_wait_for_the_import_and_two_bridges_both_get_it(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """torch._dynamo costs a second to import: the hooks attach right after someone else
    imports it (here a stand-in package), never by importing it themselves."""
    import importlib
    import sys

    from torch_otel.import_watch import ImportWatcher

    package = tmp_path / "standin_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "dynamo.py").write_text("LOADED = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ran: list[str] = []
    watchers = [ImportWatcher("standin_pkg.dynamo", lambda n=n: ran.append(n)) for n in "ab"]
    for watcher in watchers:
        sys.meta_path.insert(0, watcher)
    try:
        assert ran == []
        module = importlib.import_module("standin_pkg.dynamo")
        assert module.LOADED and sorted(ran) == ["a", "b"]
        assert not any(w in sys.meta_path for w in watchers)
    finally:
        for watcher in watchers:
            if watcher in sys.meta_path:
                sys.meta_path.remove(watcher)
        sys.modules.pop("standin_pkg.dynamo", None)
        sys.modules.pop("standin_pkg", None)


def test_a_stalled_health_thread_costs_a_bounded_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    from torch_otel.trace import health as health_module

    monkeypatch.setattr(health_module, "MAX_QUEUED_EVENTS", 2)
    harness = Harness()
    for index in range(5):
        harness.health.offer(started(f"{index}/0"))
    assert harness.health.events_dropped == 3
    harness.health.process_pending()
    assert harness.health.in_flight == 2
