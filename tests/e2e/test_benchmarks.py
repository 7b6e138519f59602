"""The overhead benchmark runs and reports every goal (on tiny sizes; ratios are not
asserted here: they live in the benchmark's output, see the README)."""

from __future__ import annotations

import re
import subprocess
import sys

from helpers.processes import REPO, clean_env


def test_benchmark_prints_one_line_per_goal() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "overhead.py"),
            "--quick",
            "--goals",
            "1,2,4",
            "--repeats",
            "1",
        ],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = re.findall(
        r"^(goal-\d+b?): ratio=(-?\d+\.\d+) target<=(\d+(?:\.\d+)?) (PASS|FAIL)$",
        result.stdout,
        re.MULTILINE,
    )
    goals = {goal for goal, *_ in lines}
    assert goals == {"goal-1", "goal-2", "goal-4"}, result.stdout
    assert "emitting-thread CPU per record" in result.stdout
    assert "whole-process CPU per exported record" in result.stdout
    assert "peak RSS growth" in result.stdout


def test_lossless_benchmark_prints_its_goals() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "lossless.py"), "--quick", "--goals", "7,8"],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    goals = re.findall(r"^(goal-\d+): ratio=(-?\d+\.\d+) target<=", result.stdout, re.MULTILINE)
    assert {goal for goal, _ in goals} == {"goal-7", "goal-8"}, result.stdout
    assert "burst of 2000 guards records" in result.stdout
    assert "emitting-thread CPU per 2 KB guards record" in result.stdout


def test_compile_health_benchmark_prints_its_goals() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "compile_health.py"),
            "--rounds",
            "1",
            "--recompiles",
            "2",
        ],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    goals = re.findall(r"^(goal-H\d): ratio=(\d+\.\d+) target<=", result.stdout, re.MULTILINE)
    assert {goal for goal, _ in goals} == {"goal-H1", "goal-H2"}, result.stdout
    assert "compile-thread time in torch-otel's hooks per compile" in result.stdout


def test_fleet_benchmark_prints_one_line_per_goal() -> None:
    """Three ranks through Rotel with and without dedup, a synthetic mix (tiny sizes:
    the ratios are printed, not asserted; the goals are in docs/benchmarks.md)."""
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "fleet.py"), "--quick", "--ranks", "3"],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = re.findall(
        r"^(fleet-(?:loss|bytes|cpu)-K3): ratio=(-?\d+\.\d+) target<=(\d+(?:\.\d+)?) (PASS|FAIL)$",
        result.stdout,
        re.MULTILINE,
    )
    assert {goal for goal, *_ in lines} == {"fleet-loss-K3", "fleet-bytes-K3", "fleet-cpu-K3"}
    assert "K=3 without dedup: delivered" in result.stdout
    assert re.search(r"K=3 with dedup: .*\d+ published, \d+ referenced", result.stdout)
    loss = next(ratio for goal, ratio, *_ in lines if goal == "fleet-loss-K3")
    assert float(loss) == 0.0  # zero loss is not a ratio that depends on the machine
