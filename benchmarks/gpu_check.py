"""The Triton path end to end, on any CUDA machine with torch and Triton (CI never needs it).

    python benchmarks/gpu_check.py              # about 5 minutes on one GPU
    python benchmarks/gpu_check.py --runs 7     # more alternating runs for the wall time

Checks, each printed as ``check-N: PASS|FAIL <figures>``:

check-1  parity on the GPU: a transformer block compiled by inductor (Triton kernels,
         ``schedule`` records, compile workers) under ``torch-otel run --exporter file``;
         the records exported equal the lines torch printed on stderr, line for line, and
         ``schedule`` records are among them
check-2  compile workers: records logged by inductor's compile-worker processes arrive
         from the workers' own pids (their resource says so)
check-3  tlparse round trip: the same job with ``--trace`` and ``TORCH_TRACE``; the files
         ``torch-otel to-tlparse`` rebuilds give tlparse the same report as torch's own
check-4  compile wall time with and without the bridge, broad TORCH_LOGS, caches disabled,
         in alternating fresh processes: medians, spread, and the ratio of medians
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from helpers.processes import clean_env  # noqa: E402
from helpers.torch_stderr import expected_torch_lines, parse_torch_stderr  # noqa: E402

TORCH_OTEL = [sys.executable, "-m", "torch_otel.cli"]
BROAD_LOGS = "+dynamo,+aot,+inductor,guards,recompiles,graph_code,output_code,schedule"

JOB = textwrap.dedent(
    """
    import time, torch
    block = torch.nn.TransformerEncoderLayer(256, 8, 1024, batch_first=True).cuda()
    step = torch.compile(lambda x: block(x).sum())
    start = time.perf_counter()
    for length in (64, 96):
        step(torch.randn(8, length, 256, device="cuda")).backward()
    torch.cuda.synchronize()
    print(f"compile-seconds {time.perf_counter() - start:.3f}")
    """
)


def run(command: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=1800)


def check(number: int, ok: bool, figures: str) -> bool:
    print(f"check-{number}: {'PASS' if ok else 'FAIL'} {figures}", flush=True)
    return ok


def parity(tmp: Path) -> bool:
    from torch_otel.cli.otlp_json import read_log_records

    output = tmp / "gpu.jsonl"
    env = clean_env({"TORCH_LOGS": BROAD_LOGS, "TORCHINDUCTOR_FORCE_DISABLE_CACHES": "1"})
    env.pop("TORCHINDUCTOR_COMPILE_THREADS", None)  # inductor's own default: workers on
    result = run([*TORCH_OTEL, "run", "--exporter", "file", "--output", str(output), "--",
                  sys.executable, "job.py"], env, tmp)  # fmt: skip
    if result.returncode != 0:
        return check(1, False, result.stderr[-2000:])
    records = read_log_records(output)
    printed = Counter(parse_torch_stderr(result.stderr))
    job_pids = {line.pid for line in printed}  # workers' records never reach this stderr
    lines = [line for record in records for line in expected_torch_lines(record)]
    exported = Counter(line for line in lines if line.pid in job_pids)
    worker_pids = {line.pid for line in lines} - job_pids
    schedule = sum(r.attributes.get("torch.artifact") == "schedule" for r in records)
    missing, extra = sum((printed - exported).values()), sum((exported - printed).values())
    ok = check(1, printed == exported and schedule > 0, (
        f"{len(records)} records, {sum(printed.values())} stderr lines of the job, "
        f"missing {missing}, extra {extra}, schedule records {schedule}"))  # fmt: skip
    return check(2, bool(worker_pids), f"records from {len(worker_pids)} worker pid(s)") and ok


def tlparse_round_trip(tmp: Path) -> bool:
    native, output, rebuilt = tmp / "native", tmp / "traced.jsonl", tmp / "rebuilt"
    env = clean_env({"TORCH_TRACE": str(native), "TORCHINDUCTOR_FORCE_DISABLE_CACHES": "1"})
    result = run([*TORCH_OTEL, "run", "--trace", "--exporter", "file", "--output", str(output),
                  "--no-console", "--", sys.executable, "job.py"], env, tmp)  # fmt: skip
    if result.returncode != 0:
        return check(3, False, result.stderr[-2000:])
    run([*TORCH_OTEL, "to-tlparse", str(output), "-o", str(rebuilt)], clean_env(), tmp)
    tlparse = shutil.which("tlparse") or str(Path(sys.executable).parent / "tlparse")
    reports = []
    for source in (native, rebuilt):
        logs = sorted(source.glob("*.log"))
        parent = max(logs, key=lambda path: path.stat().st_size)
        out = tmp / f"report-{source.name}"
        run([tlparse, str(parent), "-o", str(out), "--overwrite", "--no-browser"], clean_env(), tmp)
        reports.append(out)
    compared = filecmp.dircmp(reports[0], reports[1])
    same = not compared.diff_files and not compared.left_only and not compared.right_only
    count = sum(1 for _ in reports[0].rglob("*") if _.is_file())
    return check(3, same, f"{count} report files, differing: {compared.diff_files[:5]}")


def wall_time(tmp: Path, runs: int) -> bool:
    env = clean_env({"TORCH_LOGS": BROAD_LOGS, "TORCHINDUCTOR_FORCE_DISABLE_CACHES": "1"})
    env.pop("TORCHINDUCTOR_COMPILE_THREADS", None)
    commands = {
        "plain": [sys.executable, "job.py"],
        "bridge": [*TORCH_OTEL, "run", "--no-console", "--exporter", "file", "--output",
                   str(tmp / "timed.jsonl"), "--", sys.executable, "job.py"],
    }  # fmt: skip
    seconds: dict[str, list[float]] = {name: [] for name in commands}
    for index in range(runs):
        for name in ("plain", "bridge") if index % 2 == 0 else ("bridge", "plain"):
            started = time.perf_counter()
            result = run(commands[name], env, tmp)
            seconds[name].append(time.perf_counter() - started)
            if result.returncode != 0:
                return check(4, False, result.stderr[-2000:])
    plain, bridged = (statistics.median(seconds[n]) for n in ("plain", "bridge"))
    spread = {n: f"{min(v):.2f}-{max(v):.2f}" for n, v in seconds.items()}
    return check(4, bridged / plain <= 1.02, (
        f"{runs} alternating runs: with the bridge {bridged:.2f} s ({spread['bridge']}), "
        f"without {plain:.2f} s ({spread['plain']}), ratio {bridged / plain:.3f}"))  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="alternating runs per variant")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; run it on a machine with a GPU and Triton")
        return 2
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name()}", flush=True)
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        (tmp / "job.py").write_text(JOB)
        results = [parity(tmp), tlparse_round_trip(tmp), wall_time(tmp, args.runs)]
    return 0 if all(results) else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
