"""The spill directory end to end: outages, kill -9, shared directories, bounds, bad input.

Real jobs in fresh interpreters log through torch's own artifact logger; the collector
is a real OTLP peer on loopback (down, then up); ``torch-otel replay`` sends what the
jobs left on disk. Every record body is unique, so "delivered exactly once" is checked
by comparing the bodies that arrived with the bodies logged.
"""

from __future__ import annotations

import hashlib
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

from helpers.processes import TORCH_OTEL, clean_env
from infra.otlp_receiver import OtlpReceiver

CLOSED_PORT = "http://127.0.0.1:9"

JOB = textwrap.dedent(
    """
    import sys, time, torch._logging, torch_otel
    torch_otel.install(console=False)
    torch._logging.set_logs(guards=True)
    log = torch._logging.getArtifactLogger("torch._dynamo.guards", "guards")
    name, count, size, per_ms = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    pad = "p" * size
    print("started", flush=True)
    for i in range(count):
        log.debug("%s-%d-%.6f %s", name, i, time.time(), pad)
        if per_ms and i % per_ms == 0:
            time.sleep(0.001)
    print("done", flush=True)
    """
)


def job(
    tmp_path: Path, name: str, count: int, size: int, per_ms: int, spill: Path, endpoint: str,
    **env: str,
) -> subprocess.Popen:  # fmt: skip
    script = tmp_path / "job.py"
    script.write_text(JOB)
    environment = clean_env(
        {
            "TORCH_OTEL_EXPORTER": "otlp-grpc",
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_TIMEOUT": "500",
            "TORCH_OTEL_SPILL_DIR": str(spill),
            "TORCH_OTEL_FLUSH_TIMEOUT": "2",
            **env,
        }
    )
    return subprocess.Popen(
        [sys.executable, str(script), name, str(count), str(size), str(per_ms)],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def replay(spill: Path, receiver: OtlpReceiver, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*TORCH_OTEL, "replay", str(spill), "--exporter", "otlp-grpc", *args],
        env=clean_env({"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.grpc_endpoint}),
        capture_output=True,
        text=True,
        timeout=300,
    )


def report_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("torch-otel:")]
    assert len(lines) == 1, stderr[-3000:]
    return lines[0]


def left_on_disk(line: str) -> int:
    match = re.search(r"(\d+) left on disk", line)
    assert match, line
    return int(match.group(1))


def digest(bodies: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(bodies)).encode()).hexdigest()


def logged_bodies(name: str, arrived: list[str]) -> list[str]:
    return [body for body in arrived if body.startswith(f"{name}-")]


def test_collector_down_for_the_whole_job_then_replay_delivers_everything_once(
    tmp_path: Path,
) -> None:
    spill = tmp_path / "spill"
    count = 25_000  # 4 KiB each: 100 MB of records, over a 64 MiB memory bound
    started = time.monotonic()
    process = job(tmp_path, "outage", count, 4000, 12, spill, CLOSED_PORT)
    _, stderr = process.communicate(timeout=300)
    took = time.monotonic() - started
    assert process.returncode == 0, stderr[-3000:]
    line = report_line(stderr)
    assert left_on_disk(line) == count and "0 dropped" in line, line
    assert f"torch-otel replay {spill}" in line
    print(f"outage: {count} records, {took:.1f}s wall, {line}")
    with OtlpReceiver() as receiver:
        result = replay(spill, receiver)
        assert result.returncode == 0, result.stderr
        arrived = [record.body for record in receiver.log_records()]
    assert len(arrived) == count and len(set(arrived)) == count  # each once
    assert all(body.startswith("outage-") and len(body) > 4000 for body in arrived)
    assert {int(body.split("-")[1]) for body in arrived} == set(range(count))
    assert list(spill.iterdir()) == []
    print(f"replay: {result.stderr.strip()} (sha256 {digest(arrived)[:12]})")


def test_kill_9_loses_at_most_the_last_two_seconds(tmp_path: Path) -> None:
    spill = tmp_path / "spill"
    process = job(tmp_path, "steady", 10_000_000, 200, 3, spill, CLOSED_PORT)
    assert process.stdout is not None and process.stdout.readline() == "started\n"
    time.sleep(4)
    killed_at = time.time()
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL
    # A kill -9 mid-write leaves a torn frame; make sure the newest segment ends in one.
    newest = sorted(spill.glob("*.tospill"))[-1]
    with newest.open("ab") as handle:
        handle.write(b"TOF1\x05\x00\x00\x00\xff\xff\x00\x00torn")
    with OtlpReceiver() as receiver:
        result = replay(spill, receiver)
        assert result.returncode == 0, result.stderr
        arrived = [record.body for record in receiver.log_records()]
    assert "1 torn segment tail(s) skipped" in result.stderr
    stamps = {int(body.split("-")[1]): float(body.split("-")[2].split()[0]) for body in arrived}
    assert len(stamps) == len(arrived)  # nothing twice
    old_enough = max(index for index, stamp in stamps.items() if stamp < killed_at - 2)
    missing = [index for index in range(old_enough + 1) if index not in stamps]
    assert missing == [], f"{len(missing)} records logged >2 s before the kill were lost"
    print(f"kill -9: {len(arrived)} records replayed, all {old_enough + 1} older than 2 s")


def test_two_processes_sharing_a_directory(tmp_path: Path) -> None:
    spill = tmp_path / "spill"
    jobs = [job(tmp_path, name, 3000, 500, 30, spill, CLOSED_PORT) for name in ("rank0", "rank1")]
    lines = []
    for process in jobs:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr[-2000:]
        lines.append(report_line(stderr))
    assert [left_on_disk(line) for line in lines] == [3000, 3000]
    with OtlpReceiver() as receiver:
        result = replay(spill, receiver)
        assert result.returncode == 0, result.stderr
        arrived = [record.body for record in receiver.log_records()]
    names = Counter(body.split("-")[0] for body in arrived)
    assert names == {"rank0": 3000, "rank1": 3000} and len(set(arrived)) == 6000


def test_a_restarted_job_sends_what_the_last_one_left(tmp_path: Path) -> None:
    spill = tmp_path / "spill"
    first = job(tmp_path, "first", 2000, 300, 50, spill, CLOSED_PORT)
    first.communicate(timeout=120)
    with OtlpReceiver() as receiver:
        second = job(tmp_path, "second", 100, 300, 50, spill, receiver.grpc_endpoint,
                     TORCH_OTEL_FLUSH_TIMEOUT="20")  # fmt: skip
        _, stderr = second.communicate(timeout=120)
        assert second.returncode == 0, stderr[-2000:]
        arrived = [record.body for record in receiver.log_records()]
    names = Counter(body.split("-")[0] for body in arrived)
    assert names == {"first": 2000, "second": 100}
    assert "torch-otel:" not in stderr  # everything delivered: nothing to report


def test_the_disk_bound_is_counted_as_spill_full(tmp_path: Path) -> None:
    spill = tmp_path / "spill"
    process = job(
        tmp_path, "bounded", 6000, 2000, 20, spill, CLOSED_PORT,
        TORCH_OTEL_SPILL_MAX_BYTES=str(1024 * 1024), TORCH_OTEL_MAX_QUEUE_BYTES=str(1024 * 1024),
    )  # fmt: skip
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0
    line = report_line(stderr)
    full = re.search(r"(\d+) spill_full", line)
    assert full is not None and int(full.group(1)) > 0, line
    assert left_on_disk(line) > 0
    assert sum(path.stat().st_size for path in spill.iterdir()) <= 1024 * 1024 + 4096


def test_unusable_spill_directory_warns_once_and_the_job_goes_on(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with OtlpReceiver() as receiver:
        process = job(tmp_path, "memory", 500, 100, 50, blocker / "spill", receiver.grpc_endpoint)
        _, stderr = process.communicate(timeout=120)
        arrived = receiver.log_records()
    assert process.returncode == 0
    warnings = [line for line in stderr.splitlines() if "spill directory" in line]
    assert len(warnings) == 1 and "memory only" in warnings[0], stderr
    assert len(arrived) == 500


def test_full_disk_mid_run_warns_once_and_the_job_goes_on(tmp_path: Path) -> None:
    spill = tmp_path / "spill"
    limit = "import resource, signal; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
    limit += "resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))\n"
    (tmp_path / "job.py").write_text(limit + JOB)
    with OtlpReceiver() as receiver:
        receiver.stall()  # nothing leaves the disk while it fills
        environment = clean_env({
            "TORCH_OTEL_EXPORTER": "otlp-grpc", "OTEL_EXPORTER_OTLP_ENDPOINT":
            receiver.grpc_endpoint, "TORCH_OTEL_SPILL_DIR": str(spill),
            "OTEL_EXPORTER_OTLP_TIMEOUT": "1000", "TORCH_OTEL_FLUSH_TIMEOUT": "20"})  # fmt: skip
        process = subprocess.Popen(
            [sys.executable, str(tmp_path / "job.py"), "fill", "2000", "1000", "20"],
            env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(8)
        receiver.unstall()
        _, stderr = process.communicate(timeout=120)
        arrived = {record.body for record in receiver.log_records()}
    assert process.returncode == 0, stderr[-2000:]
    warnings = [line for line in stderr.splitlines() if "spill directory" in line]
    assert len(warnings) == 1 and "File too large" in warnings[0], stderr[-2000:]
    assert len(arrived) == 2000  # what reached the disk, and what stayed in memory


def test_bad_spill_input_is_named_and_nothing_else_is_lost(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    bad = subprocess.run(
        [*TORCH_OTEL, "run", "--spill-dir", str(a_file), "--", "true"],
        env=clean_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "is a file, not a directory" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    spill = tmp_path / "spill"
    spill.mkdir()
    (spill / "README").write_text("an operator's note")
    newer = spill / "seg-00000000000000000001-host-1-000001.tospill"
    newer.write_bytes(b"TORCH-OTEL-SPILL\n\x09later format")
    process = job(tmp_path, "kept", 300, 100, 50, spill, CLOSED_PORT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0 and "Traceback" not in stderr
    with OtlpReceiver() as receiver:
        result = replay(spill, receiver)
        arrived = receiver.log_records()
    assert len(arrived) == 300
    assert result.returncode == 1  # the newer segment stays, and replay says so
    assert "newer torch-otel" in result.stderr and len(result.stderr.strip().splitlines()) <= 3
    assert newer.exists() and (spill / "README").exists()


def test_exit_deadline_moves_what_is_in_memory_to_disk(tmp_path: Path) -> None:
    """The export thread is stuck on a stalled collector while records pile up in memory;
    at the exit deadline they go to disk instead of being dropped."""
    spill = tmp_path / "spill"
    script = tmp_path / "stuck.py"
    script.write_text(
        JOB.replace(
            'print("done", flush=True)',
            "time.sleep(2.5)\nfor i in range(1900):\n    log.debug('late-%d', i)",
        )
    )
    with OtlpReceiver() as receiver:
        receiver.stall()
        environment = clean_env({
            "TORCH_OTEL_EXPORTER": "otlp-grpc", "OTEL_EXPORTER_OTLP_ENDPOINT":
            receiver.grpc_endpoint, "TORCH_OTEL_SPILL_DIR": str(spill),
            "OTEL_EXPORTER_OTLP_TIMEOUT": "30000", "TORCH_OTEL_FLUSH_TIMEOUT": "2"})  # fmt: skip
        result = subprocess.run(
            [sys.executable, str(script), "early", "100", "50", "0"],
            env=environment, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    line = report_line(result.stderr)
    assert left_on_disk(line) == 2000 and "0 dropped" in line, line
    with OtlpReceiver() as receiver:
        assert replay(spill, receiver).returncode == 0
        bodies = Counter(record.body.split("-")[0] for record in receiver.log_records())
    assert bodies == {"early": 100, "late": 1900}
