"""Faults never block the job and never lose a record without counting it.

Against a real OTLP peer on loopback (``otlp_receiver.OtlpReceiver``): absent
at start, stopped mid-run, answering retryable and permanent errors, stalled.
Plus exit paths (normal, sys.exit, uncaught exception, SIGTERM), 20 MB
artifacts through the 4 MiB gRPC limit, fork, and many threads.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from helpers.bridges import bridged, emit, output_code_log
from helpers.processes import clean_env
from infra.otlp_receiver import Fault, OtlpReceiver

PROTOCOLS = {"grpc": "otlp-grpc", "http": "otlp-http"}


def endpoint_of(receiver: OtlpReceiver, protocol: str) -> str:
    return receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint


def bodies(receiver: OtlpReceiver) -> Counter[str]:
    return Counter(record.body for record in receiver.log_records())


# --- 1. bounded buffering ---------------------------------------------------------------
def test_full_buffer_drops_newest_and_counts_them(monkeypatch: pytest.MonkeyPatch) -> None:
    with OtlpReceiver() as receiver:
        receiver.stall()
        with bridged(
            monkeypatch,
            endpoint=receiver.grpc_endpoint,
            timeout_ms=1000,
            max_queue_records=100,
        ) as bridge:
            sent = emit(1000, "stalled")
            counters = bridge.counters()
            assert counters.records_accepted + counters.dropped["queue_full"] == 1000
            assert 100 <= counters.records_accepted <= 100 + 512  # bound + one batch in flight
            receiver.unstall()
            assert bridge.flush(30)
            counters = bridge.counters()
        arrived = bodies(receiver)
        assert max(arrived.values()) == 1  # none twice
        assert set(arrived) <= set(sent)
        assert len(arrived) == counters.records_exported == counters.records_accepted
        print(f"bounded: sent 1000, received {len(arrived)}, dropped {counters.dropped}")


def test_byte_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    with OtlpReceiver() as receiver:
        receiver.stall()
        with bridged(
            monkeypatch,
            endpoint=receiver.grpc_endpoint,
            timeout_ms=1000,
            max_queue_bytes=256 * 1024,
        ) as bridge:
            emit(500, "big", payload="x" * 4096)
            assert bridge.buffer.queued_bytes <= 256 * 1024
            counters = bridge.counters()
            assert counters.dropped["queue_full"] > 0
            assert counters.records_accepted + counters.dropped["queue_full"] == 500
            receiver.unstall()
            assert bridge.flush(30)
        assert len(bodies(receiver)) == bridge.counters().records_accepted


# --- 2. outage and recovery ---------------------------------------------------------------
@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_collector_absent_at_start_then_started(
    monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    receiver = OtlpReceiver().start()
    receiver.stop()  # ports known, nobody listening
    try:
        with bridged(
            monkeypatch, endpoint=endpoint_of(receiver, protocol), profile=PROTOCOLS[protocol]
        ) as bridge:
            sent = emit(200, "early")
            time.sleep(1.5)  # at least one failed attempt
            assert bridge.counters().records_exported == 0
            receiver.start()
            assert bridge.flush(30), bridge.last_error
            counters = bridge.counters()
        assert bodies(receiver) == Counter(sent)
        assert counters.records_dropped == 0
    finally:
        receiver.stop()


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_collector_stopped_mid_run_and_restarted(
    monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    with OtlpReceiver() as receiver:
        with bridged(
            monkeypatch, endpoint=endpoint_of(receiver, protocol), profile=PROTOCOLS[protocol]
        ) as bridge:
            before = emit(100, "before")
            assert bridge.flush(20)
            receiver.stop()
            during = emit(100, "during")
            time.sleep(1.5)
            receiver.start()
            after = emit(100, "after")
            assert bridge.flush(30), bridge.last_error
            counters = bridge.counters()
        assert bodies(receiver) == Counter(before + during + after)
        assert counters.records_dropped == 0


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_retryable_errors_are_retried_then_delivered(
    monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    with OtlpReceiver() as receiver:
        receiver.fail_next(4, Fault.UNAVAILABLE)
        with bridged(
            monkeypatch, endpoint=endpoint_of(receiver, protocol), profile=PROTOCOLS[protocol]
        ) as bridge:
            sent = emit(50, "retry")
            assert bridge.flush(30), bridge.last_error
        outcomes = Counter(attempt.outcome for attempt in receiver.attempts)
        assert outcomes["accepted"] >= 1
        assert sum(n for outcome, n in outcomes.items() if outcome.startswith("injected")) == 4
        assert bodies(receiver) == Counter(sent)


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_permanent_rejection_is_dropped_and_counted(
    monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    with OtlpReceiver() as receiver:
        receiver.fail_next(1, Fault.INVALID_ARGUMENT)
        with bridged(
            monkeypatch, endpoint=endpoint_of(receiver, protocol), profile=PROTOCOLS[protocol]
        ) as bridge:
            emit(10, "rejected")
            assert bridge.flush(20)
            assert bridge.counters().dropped == {"rejected": 10}
            accepted_later = emit(10, "accepted")
            assert bridge.flush(20)
            counters = bridge.counters()
        assert bodies(receiver) == Counter(accepted_later)
        assert counters.records_exported == 10


# --- 3 & 4. stall and exit paths (separate processes: exit is what is tested) -------------
EXIT_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, time
    import torch, torch._logging, torch_otel
    torch_otel.install(console=False)
    torch._logging.set_logs(guards=True)
    log = torch._logging.getArtifactLogger("torch._dynamo.guards", "guards")
    for i in range(int(sys.argv[2])):
        log.debug("exit-%d", i)
    print(f"done {time.time_ns()}", flush=True)
    how = sys.argv[1]
    if how == "sys_exit":
        sys.exit(3)
    if how == "exception":
        raise RuntimeError("training crashed")
    if how == "sigterm":
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)
    """
)


def run_exit_script(
    tmp_path: Path, how: str, count: int, receiver: OtlpReceiver, **env: str
) -> tuple[subprocess.CompletedProcess[str], float]:
    script = tmp_path / "exit_script.py"
    script.write_text(EXIT_SCRIPT)
    environment = clean_env(
        {
            "TORCH_OTEL_EXPORTER": "otlp-grpc",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.grpc_endpoint,
            **env,
        }
    )
    result = subprocess.run(
        [sys.executable, str(script), how, str(count)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    finished = time.time_ns()
    done_lines = [line for line in result.stdout.splitlines() if line.startswith("done ")]
    assert done_lines, result.stderr[-2000:]
    exit_cost = (finished - int(done_lines[0].split()[1])) / 1e9
    return result, exit_cost


@pytest.mark.parametrize(
    ("how", "returncode"),
    [("normal", 0), ("sys_exit", 3), ("exception", 1), ("sigterm", -signal.SIGTERM)],
)
def test_exit_flushes_everything_queued(tmp_path: Path, how: str, returncode: int) -> None:
    with OtlpReceiver() as receiver:
        result, exit_cost = run_exit_script(tmp_path, how, 300, receiver)
        assert result.returncode == returncode, result.stderr[-2000:]
        arrived = bodies(receiver)
        assert arrived == Counter(f"exit-{i}" for i in range(300))
        assert "torch-otel:" not in result.stderr  # nothing dropped, nothing to say
        print(f"exit via {how}: 300 sent, {sum(arrived.values())} received, {exit_cost:.2f}s")


def test_stalled_collector_costs_at_most_the_flush_deadline(tmp_path: Path) -> None:
    with OtlpReceiver() as receiver:
        receiver.stall()
        result, exit_cost = run_exit_script(
            tmp_path,
            "normal",
            50,
            receiver,
            OTEL_EXPORTER_OTLP_TIMEOUT="30000",  # a long export timeout...
            TORCH_OTEL_FLUSH_TIMEOUT="2",  # ...does not stretch the exit deadline
        )
        assert result.returncode == 0
        lines = [line for line in result.stderr.splitlines() if line.startswith("torch-otel:")]
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(
            "torch-otel: 50 of 50 compile log records were not exported (50 shutdown)"
        )
        assert "Traceback" not in result.stderr
        # Process start-up is excluded: exit_cost runs from the script's last line.
        assert exit_cost < 2 + 3, exit_cost
        print(f"stall: exit took {exit_cost:.2f}s with a 2s flush deadline")


def test_stalled_collector_costs_the_export_timeout_per_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with OtlpReceiver() as receiver:
        receiver.stall()
        with bridged(
            monkeypatch, endpoint=receiver.grpc_endpoint, timeout_ms=1000, stop_timeout_s=1
        ) as bridge:
            emit(20, "blackhole")
            time.sleep(3.5)
            assert bridge.counters().records_exported == 0
            attempts = [a for a in receiver.attempts if a.outcome == "stalled"]
            # one attempt per export timeout (1 s) plus backoff, not one per record
            assert 1 <= len(attempts) <= 4, len(attempts)
        assert bridge.counters().dropped == {"shutdown": 20}


# --- 5. large artifacts -----------------------------------------------------------------
def test_20mb_output_code_is_chunked_under_the_grpc_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    line = "buf0 = empty_strided_cpu((16, 16), (16, 1), torch.float32)  # é 漢 🙂\n"
    big = (line * (20 * 1024 * 1024 // len(line.encode()) + 1))[: 20 * 1024 * 1024]
    with OtlpReceiver() as receiver:
        with bridged(monkeypatch, endpoint=receiver.grpc_endpoint, timeout_ms=10000) as bridge:
            emit(30, "small-before")
            output_code_log().debug("%s", big)
            emit(30, "small-after")
            assert bridge.flush(60), bridge.last_error
        records = receiver.log_records()
        chunks = [r for r in records if "torch.artifact.chunk.index" in r.attributes]
        assert len({c.attributes["torch.artifact.chunk.group"] for c in chunks}) == 1
        count = chunks[0].attributes["torch.artifact.chunk.count"]
        assert count == len(chunks) >= 20
        ordered = sorted(chunks, key=lambda c: c.attributes["torch.artifact.chunk.index"])
        assert [c.attributes["torch.artifact.chunk.index"] for c in ordered] == list(range(count))
        assert "".join(c.body for c in ordered).encode() == big.encode()
        assert all(c.attributes["torch.artifact"] == "output_code" for c in chunks)
        assert max(receiver.request_sizes) < 4 * 1024 * 1024
        assert len([r for r in records if r.body.startswith("small-")]) == 60
        assert bridge.counters().records_dropped == 0


def test_batches_are_sized_by_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    with OtlpReceiver() as receiver:
        with bridged(monkeypatch, endpoint=receiver.grpc_endpoint, timeout_ms=10000) as bridge:
            emit(60, "fat", payload="y" * 200_000)  # 12 MB in 60 records
            assert bridge.flush(60)
        assert len(receiver.log_records()) == 60
        assert len(receiver.request_sizes) >= 4
        assert max(receiver.request_sizes) < 4 * 1024 * 1024


# --- 6. processes and threads -------------------------------------------------------------
FORK_SCRIPT = textwrap.dedent(
    """
    import multiprocessing, os, sys
    import torch, torch._logging, torch_otel
    torch_otel.install(console=False, exporter=sys.argv[1])
    torch._logging.set_logs(guards=True)
    log = torch._logging.getArtifactLogger("torch._dynamo.guards", "guards")

    def child(tag):
        for i in range(25):
            log.debug("%s-%d", tag, i)

    for i in range(40):
        log.debug("parent-%d", i)   # still queued when we fork (5 s schedule delay)
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=child, args=(f"child{n}",)) for n in range(2)]
    for w in workers: w.start()
    for w in workers: w.join(60)
    assert all(w.exitcode == 0 for w in workers), [w.exitcode for w in workers]
    pid = os.fork()
    if pid == 0:
        child("forked")
        sys.exit(0)
    _, status = os.waitpid(pid, 0)
    assert status == 0, status
    for i in range(40, 50):
        log.debug("parent-%d", i)
    """
)

SLOW_PROFILE = textwrap.dedent(
    """
    file_format: "1.0"
    logger_provider:
      processors:
        - batch:
            schedule_delay: 5000
            exporter:
              otlp_grpc:
                endpoint: ${OTEL_EXPORTER_OTLP_ENDPOINT}
                timeout: 5000
    """
)


def test_fork_children_send_their_own_records_not_the_parents(tmp_path: Path) -> None:
    script = tmp_path / "fork_script.py"
    script.write_text(FORK_SCRIPT)
    profile = tmp_path / "slow.yaml"
    profile.write_text(SLOW_PROFILE)
    with OtlpReceiver() as receiver:
        result = subprocess.run(
            [sys.executable, str(script), str(profile)],
            env=clean_env({"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.grpc_endpoint}),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        records = receiver.log_records()
    counts = Counter(r.body for r in records)
    expected = [f"parent-{i}" for i in range(50)]
    expected += [f"{tag}-{i}" for tag in ("child0", "child1", "forked") for i in range(25)]
    assert counts == Counter(expected)
    pids = {
        prefix: {r.resource["process.pid"] for r in records if r.body.startswith(prefix)}
        for prefix in ("parent", "child0", "child1", "forked")
    }
    assert all(len(p) == 1 for p in pids.values())
    assert len(set.union(*pids.values())) == 4
    assert "Traceback" not in result.stderr


def test_many_threads_logging_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    with OtlpReceiver() as receiver:
        with bridged(monkeypatch, endpoint=receiver.grpc_endpoint) as bridge:
            barrier = threading.Barrier(8)

            def worker(n: int) -> None:
                barrier.wait()
                emit(500, f"thread{n}")

            threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert bridge.flush(30)
            counters = bridge.counters()
        arrived = bodies(receiver)
        assert len(arrived) == 4000 and max(arrived.values()) == 1
        assert counters.records_accepted == counters.records_exported == 4000
        thread_names = {r.attributes["thread.name"] for r in receiver.log_records()}
        assert len(thread_names) == 8


def test_first_export_at_exit_still_works(tmp_path: Path) -> None:
    """A short job whose only export is the exit flush: by then concurrent.futures
    refuses work and the OTel SDK cannot be imported any more, so the bridge gets its
    exporters ready at threading's exit hook (before atexit) and flushes at atexit."""
    script = tmp_path / "short.py"
    script.write_text(
        "import concurrent.futures  # a thread pool exists, as in most real jobs\n"
        "import torch._logging\n"
        "torch._logging.set_logs(guards=True)\n"
        "torch._logging.getArtifactLogger('torch._dynamo.guards', 'guards').debug('only one')\n"
    )
    output = tmp_path / "short.jsonl"
    from helpers.processes import TORCH_OTEL, run_python

    run = run_python(
        [
            *TORCH_OTEL,
            "run",
            "--exporter",
            "file",
            "--output",
            str(output),
            "--",
            sys.executable,
            str(script),
        ],
        output=output,
    )
    assert run.returncode == 0, run.stderr
    assert [r.body for r in run.records] == ["only one"]
    assert "torch-otel:" not in run.stderr
