"""The benchmarks run and report every goal (on tiny sizes; ratios are not asserted here:
they live in the benchmark's output, see docs/benchmarks.md)."""

from __future__ import annotations

import re
import subprocess
import sys

from helpers.processes import REPO, clean_env

GOAL_LINE = re.compile(
    r"^([\w-]+): ratio=(-?\d+\.\d+) target<=(\d+(?:\.\d+)?) (PASS|FAIL)$", re.MULTILINE
)


def run_benchmark(script: str, *arguments: str, timeout: int) -> tuple[dict[str, float], str]:
    """Run ``benchmarks/<script>``; its goal lines (goal -> ratio) and its whole stdout."""
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), *arguments],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return {goal: float(ratio) for goal, ratio, *_ in GOAL_LINE.findall(result.stdout)}, (
        result.stdout
    )


def test_benchmark_prints_one_line_per_goal() -> None:
    goals, out = run_benchmark(
        "overhead.py", "--quick", "--goals", "1,2,4", "--repeats", "1", timeout=900
    )
    assert set(goals) == {"goal-1", "goal-2", "goal-4"}, out
    assert "emitting-thread CPU per record" in out
    assert "whole-process CPU per exported record" in out
    assert "peak RSS growth" in out


def test_lossless_benchmark_prints_its_goals() -> None:
    goals, out = run_benchmark("lossless.py", "--quick", "--goals", "7,8", timeout=900)
    assert set(goals) == {"goal-7", "goal-8"}, out
    assert "burst of 2000 guards records" in out
    assert goals["goal-7"] == 0.0  # records lost in the burst: none, whatever the machine
    assert "emitting-thread CPU per 2 KB guards record" in out


def test_compile_health_benchmark_prints_its_goals() -> None:
    goals, out = run_benchmark(
        "compile_health.py", "--rounds", "1", "--recompiles", "2", timeout=600
    )
    assert set(goals) == {"goal-H1", "goal-H2"}, out
    assert "compile-thread time in torch-otel's hooks per compile" in out


def test_fleet_benchmark_prints_one_line_per_goal() -> None:
    """Three ranks through Rotel with and without dedup, a synthetic mix (tiny sizes:
    the ratios are printed, not asserted; the goals are in docs/benchmarks.md)."""
    goals, out = run_benchmark("fleet.py", "--quick", "--ranks", "3", timeout=600)
    assert set(goals) == {"fleet-loss-K3", "fleet-bytes-K3", "fleet-cpu-K3"}, out
    assert "K=3 without dedup: delivered" in out
    assert re.search(r"K=3 with dedup: .*\d+ published, \d+ referenced", out)
    assert goals["fleet-loss-K3"] == 0.0  # zero loss is not a ratio that depends on the machine
