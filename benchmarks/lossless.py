"""Bursts, large records and whole processes: figures as ratios against baselines in the same run.

    python benchmarks/lossless.py            # full run (about 10 minutes on 2 cores)
    python benchmarks/lossless.py --quick    # tiny sizes, to check it runs

Prints one line per goal, ``goal-N: ratio=R target<=T PASS|FAIL``, then the figures.

goal-7   a burst of 20,500 ``guards`` records of 2.3 KB (47 MB, logged as fast as
         Python can) into the ``file`` profile at default settings: records lost <= 0
goal-8   emitting-thread CPU per 2 KB multi-line ``guards`` record, in 10,000-record
         bursts with the export thread running (steady state):
         (bridge - floor) / (stock OTel LoggingHandler + batch processor - floor) <= 0.25,
         floor = a handler whose ``emit`` only renders the message (every exporter must)
goal-9   the first torch.compile right after ``install()``: wall time with / without the
         bridge, fresh processes in alternating pairs, median of pair ratios <= 1.05
goal-10  a whole short training job (compile, broad TORCH_LOGS, caches disabled):
         ``torch-otel run --no-console --exporter otlp-grpc`` to a loopback receiver /
         the plain job with torch's stderr to /dev/null, alternating pairs, median of
         pair ratios <= 1.02 (CPU ratio and peak-RSS difference printed too)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "benchmarks"))

from overhead import _clean_env, _replace_handlers, _stock_otel_handler, verdict  # noqa: E402

TRAIN = REPO / "tests" / "workloads" / "train.py"
BROAD_LOGS = "+dynamo,+aot,+inductor,guards,recompiles,graph_code,output_code"
GUARDS = "torch._dynamo.guards"

BURST = textwrap.dedent(
    """
    import sys, torch._logging, torch_otel
    bridge = torch_otel.install("file", console=False)
    torch._logging.set_logs(guards=True)
    log = torch._logging.getArtifactLogger("torch._dynamo.guards", "guards")
    lines = [f"GUARD: L['x'].size()[{i}] == {i * 7}  # " + "g" * 90 for i in range(20)]
    payload = "\\n".join(lines)
    for i in range(int(sys.argv[1])):
        log.debug("%d %s", i, payload)
    counters = torch_otel.uninstall()
    print(json.dumps({"accepted": counters.records_accepted,
                      "exported": counters.records_exported,
                      "dropped": counters.dropped}))
    """
).replace("import sys,", "import json, sys,")

FIRST_COMPILE = textwrap.dedent(
    """
    import sys, time, torch
    if sys.argv[1] == "bridge":
        import torch_otel
        torch_otel.install(console=False)
    f = torch.compile(lambda x: (x.sin() + x.cos()).relu().sum())
    start = time.perf_counter()
    f(torch.randn(64))
    print(time.perf_counter() - start)
    """
)


def worker_emit(args: argparse.Namespace) -> dict[str, Any]:
    """goal-8: emitting-thread CPU per 2 KB record, each variant in steady state."""
    import logging

    import torch
    import torch._logging

    from torch_otel.bridge import TorchOtelBridge
    from torch_otel.config.settings import BridgeSettings

    torch._logging.set_logs(guards=True)
    log = torch._logging.getArtifactLogger(GUARDS, "guards")
    lines = [f"GUARD: L['x'].size()[{i}] == {i * 7}  # " + "g" * 70 for i in range(20)]
    payload = "\n".join(lines)

    class Render(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            record.getMessage()

    stock, provider = _stock_otel_handler(args.endpoint, 1 << 20)
    environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": args.endpoint}
    settings = BridgeSettings.resolve({"exporter": "otlp-grpc", "console": False}, environ)
    results: dict[str, list[float]] = {"floor": [], "otel": [], "bridge": []}
    for attempt in range(args.repeats + 1):  # round 0 warms up
        for name in results:
            bridge = None
            if name == "bridge":
                _replace_handlers(None)
                bridge = TorchOtelBridge(settings, environ=environ).start()
            else:
                _replace_handlers(Render() if name == "floor" else stock)
            log.debug("%d %s", -1, payload)  # the export thread / processor runs from here
            time.sleep(0.05)
            start = time.thread_time()
            for index in range(args.count):
                log.debug("%d %s", index, payload)
            elapsed = time.thread_time() - start
            if bridge is not None:
                bridge.stop(120)
            else:
                provider.force_flush(120_000)
            if attempt:
                results[name].append(elapsed / args.count * 1e6)
    return {"us_per_record": {k: statistics.median(v) for k, v in results.items()}}


def run_worker(kind: str, *args: str) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, __file__, "--worker", kind, *args],
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"worker {kind} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds and peak RSS (KiB) of one process."""
    with open(os.devnull, "w") as devnull:
        start = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=devnull, stderr=devnull)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
    if status != 0:
        raise RuntimeError(f"{command} failed with status {status}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def alternating_pairs(
    commands: dict[str, tuple[list[str], dict[str, str]]], pairs: int
) -> dict[str, Any]:
    """Run A and B alternately (A first on even pairs); ratios are taken pair by pair."""
    samples: dict[str, list[tuple[float, float, int]]] = {"A": [], "B": []}
    for index in range(pairs):
        for variant in ("A", "B") if index % 2 == 0 else ("B", "A"):
            samples[variant].append(timed(*commands[variant]))
    wall = [b[0] / a[0] for a, b in zip(samples["A"], samples["B"], strict=True)]
    cpu = [b[1] / a[1] for a, b in zip(samples["A"], samples["B"], strict=True)]
    return {
        "wall_ratio": statistics.median(wall),
        "wall_range": (min(wall), max(wall)),
        "cpu_ratio": statistics.median(cpu),
        "rss_extra_mib": (
            statistics.median(b[2] for b in samples["B"])
            - statistics.median(a[2] for a in samples["A"])
        )
        / 1024,
        "wall_a": statistics.median(a[0] for a in samples["A"]),
        "wall_b": statistics.median(b[0] for b in samples["B"]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check it runs")
    parser.add_argument("--goals", default="7,8,9,10")
    parser.add_argument("--pairs", type=int, default=None)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=10_000, help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "emit":
        print(json.dumps(worker_emit(args)))
        return 0

    from infra.otlp_receiver import OtlpReceiver

    goals = set(args.goals.split(","))
    pairs = args.pairs or (2 if args.quick else 8)
    with tempfile.TemporaryDirectory() as tmp, OtlpReceiver(grpc_workers=4) as receiver:
        if "7" in goals:
            burst_goal(Path(tmp), 2000 if args.quick else 20_500)
        if "8" in goals:
            result = run_worker(
                "emit", "--endpoint", receiver.grpc_endpoint,
                "--count", "1000" if args.quick else "10000",
                "--repeats", "2" if args.quick else "15",
            )  # fmt: skip
            us = result["us_per_record"]
            ratio = (us["bridge"] - us["floor"]) / (us["otel"] - us["floor"])
            print(verdict("goal-8", ratio, 0.25, (
                f"emitting-thread CPU per 2 KB guards record, steady state: floor (renders) "
                f"{us['floor']:.2f} us, stock OTel {us['otel']:.2f} us, bridge "
                f"{us['bridge']:.2f} us")), flush=True)  # fmt: skip
        if "9" in goals:
            script = Path(tmp) / "first_compile.py"
            script.write_text(FIRST_COMPILE)
            env = _clean_env({"TORCH_LOGS": BROAD_LOGS, "TORCHINDUCTOR_FORCE_DISABLE_CACHES": "1",
                              "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.grpc_endpoint})  # fmt: skip
            first_compile_goal(script, env, pairs)
        if "10" in goals:
            whole_process_goal(receiver.grpc_endpoint, pairs)
    return 0


def burst_goal(tmp: Path, count: int) -> None:
    script = tmp / "burst.py"
    script.write_text(BURST)
    output = tmp / "burst.jsonl"
    completed = subprocess.run(
        [sys.executable, str(script), str(count)],
        env=_clean_env({"TORCH_OTEL_OUTPUT": str(output)}),
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if completed.returncode != 0:
        raise RuntimeError(completed.stderr[-3000:])
    counters = json.loads(completed.stdout.strip().splitlines()[-1])
    lost = sum(counters["dropped"].values())
    print(verdict("goal-7", float(lost), 0.0, (
        f"burst of {count} guards records of 2.3 KB into the file profile at defaults: "
        f"accepted {counters['accepted']}, exported {counters['exported']}, "
        f"lost {lost} {counters['dropped'] or ''}")), flush=True)  # fmt: skip


def first_compile_goal(script: Path, env: dict[str, str], pairs: int) -> None:
    samples: dict[str, list[float]] = {"plain": [], "bridge": []}
    for index in range(pairs):
        for variant in ("plain", "bridge") if index % 2 == 0 else ("bridge", "plain"):
            out = subprocess.run([sys.executable, str(script), variant], env=env,
                                 capture_output=True, text=True, timeout=600)  # fmt: skip
            samples[variant].append(float(out.stdout.strip().splitlines()[-1]))
    ratios = [b / a for a, b in zip(samples["plain"], samples["bridge"], strict=True)]
    print(verdict("goal-9", statistics.median(ratios), 1.05, (
        f"first torch.compile after install(), broad TORCH_LOGS, caches disabled "
        f"({pairs} alternating pairs, pair ratios {min(ratios):.3f}-{max(ratios):.3f}): "
        f"with the bridge {statistics.median(samples['bridge']):.3f} s, without "
        f"{statistics.median(samples['plain']):.3f} s")), flush=True)  # fmt: skip


def whole_process_goal(endpoint: str, pairs: int) -> None:
    base = _clean_env({"TORCH_LOGS": BROAD_LOGS, "TORCHINDUCTOR_FORCE_DISABLE_CACHES": "1",
                       "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint})  # fmt: skip
    bridged = [sys.executable, "-m", "torch_otel.cli", "run", "--no-console", "--exporter",
               "otlp-grpc", "--", sys.executable, str(TRAIN)]  # fmt: skip
    result = alternating_pairs(
        {"A": ([sys.executable, str(TRAIN)], base), "B": (bridged, base)}, pairs
    )
    low, high = result["wall_range"]
    print(verdict("goal-10", result["wall_ratio"], 1.02, (
        f"whole training job ({pairs} alternating pairs, pair ratios {low:.3f}-{high:.3f}): "
        f"torch-otel run {result['wall_b']:.2f} s, plain with stderr to /dev/null "
        f"{result['wall_a']:.2f} s; CPU ratio {result['cpu_ratio']:.3f}; peak RSS "
        f"{result['rss_extra_mib']:+.1f} MiB")), flush=True)  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
