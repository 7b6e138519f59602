"""Hostile environments: odd collector answers, signals during the exit flush, secrets,
hostile profiles, records logged during interpreter exit, unreadable inputs.

Real servers on loopback (the in-repo receiver answering redirects, HTML pages and
partial success), real processes, real signals.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

from helpers.bridges import bridged, emit, guards_log
from helpers.processes import TORCH_OTEL, clean_env
from infra.otlp_receiver import OtlpReceiver

PROTOCOLS = {"grpc": "otlp-grpc", "http": "otlp-http"}


def endpoint_of(receiver: OtlpReceiver, protocol: str) -> str:
    return receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint


def bodies(receiver: OtlpReceiver) -> Counter[str]:
    return Counter(record.body for record in receiver.log_records())


# --- 1, 2, 10: answers that are not a clear success ------------------------------------------
@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_partial_success_counts_the_rejected_records(
    monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    with OtlpReceiver() as receiver:
        receiver.answer_next(1, partial_rejected=3, error_message="3 records too old")
        with bridged(
            monkeypatch, endpoint=endpoint_of(receiver, protocol), profile=PROTOCOLS[protocol]
        ) as bridge:
            emit(10, "partial")
            assert bridge.flush(10)
            counters = bridge.counters()
            assert "3 records too old" in (bridge.last_error or "")
        assert sum(bodies(receiver).values()) == 10  # stored all, refused 3 in the answer
    assert counters.dropped == {"partially_rejected": 3}
    assert counters.records_exported == 7
    assert len(receiver.attempts) == 1  # never retried


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ({"redirect_to": "https://elsewhere.example/v1/logs?token=s3cr3t-query"}, "redirected"),
        ({"html": True}, "bad_response"),
    ],
)
def test_http_answers_that_deliver_nothing_are_counted(
    monkeypatch: pytest.MonkeyPatch, answer: dict, reason: str
) -> None:
    with OtlpReceiver() as receiver:
        receiver.answer_next(1, **answer)
        with bridged(monkeypatch, endpoint=receiver.http_endpoint, profile="otlp-http") as bridge:
            emit(10, "lost")
            assert bridge.flush(10)
            lost = bridge.counters()
            last_error = bridge.last_error or ""
            later = emit(5, "later")
            assert bridge.flush(10)
            final = bridge.counters()
        assert set(bodies(receiver)) == set(later)
    assert lost.dropped == {reason: 10} and lost.records_exported == 0
    assert final.records_exported == 5
    assert "s3cr3t-query" not in last_error
    if reason == "redirected":
        assert "redirect" in last_error and "elsewhere.example" in last_error


# --- 3: a signal during the exit flush ----------------------------------------------------------
STALLED_EXIT = textwrap.dedent(
    """
    import sys, torch._logging, torch_otel
    torch_otel.install(console=False)
    torch._logging.set_logs(guards=True)
    log = torch._logging.getArtifactLogger("torch._dynamo.guards", "guards")
    for i in range(50):
        log.debug("stuck-%d", i)
    print("exiting", flush=True)
    """
)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_the_exit_flush_still_reports(tmp_path: Path, signum: int) -> None:
    script = tmp_path / "stalled_exit.py"
    script.write_text(STALLED_EXIT)
    with OtlpReceiver() as receiver:
        receiver.stall()
        env = clean_env(
            {
                "TORCH_OTEL_EXPORTER": "otlp-grpc",
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.grpc_endpoint,
                "TORCH_OTEL_FLUSH_TIMEOUT": "60",  # the flush would wait a minute...
            }
        )
        process = subprocess.Popen(
            [sys.executable, str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert process.stdout is not None
        assert process.stdout.readline() == b"exiting\n"
        time.sleep(1.0)  # ...now inside the exit flush
        started = time.monotonic()
        process.send_signal(signum)  # ...until the pod is terminated
        _, stderr = process.communicate(timeout=30)
        took = time.monotonic() - started
    text = stderr.decode()
    assert process.returncode == -signum, text[-2000:]
    assert "Traceback" not in text, text[-2000:]
    lines = [line for line in text.splitlines() if line.startswith("torch-otel:")]
    name = signal.Signals(signum).name
    assert len(lines) == 1, text[-2000:]
    assert lines[0].startswith(
        f"torch-otel: exit flush interrupted by {name}; 50 of 50 compile log records were not "
        "exported (50 shutdown)"
    )
    assert took < 10


# --- 7: records logged after the exit flush began ------------------------------------------
def test_records_after_the_exit_flush_are_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    with OtlpReceiver() as receiver:
        with bridged(monkeypatch, endpoint=receiver.grpc_endpoint) as bridge:
            emit(20, "before")
            bridge._at_exit()  # what atexit runs; the handler stays on torch's loggers
            for index in range(7):
                guards_log().debug("during interpreter exit %d", index)
            counters = bridge.counters()
        assert len(bodies(receiver)) == 20
    assert counters.dropped == {"after_shutdown": 7}
    assert counters.records_offered == 27


# --- 4: no secret in any output -----------------------------------------------------------------
SECRETS = {
    "userinfo": "pw-in-userinfo-7f3a",
    "query": "token-in-query-9c1d",
    "header": "bearer-in-header-4e2b",
}


def secret_environment(endpoint: str) -> dict[str, str]:
    scheme, rest = endpoint.split("://", 1)
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": (
            f"{scheme}://user:{SECRETS['userinfo']}@{rest}?api_key={SECRETS['query']}"
        ),
        "OTEL_EXPORTER_OTLP_HEADERS": f"authorization=Bearer%20{SECRETS['header']}",
        "TORCH_OTEL_DEBUG": "1",
    }


def assert_no_secret(*outputs: str) -> None:
    for output in outputs:
        for where, secret in SECRETS.items():
            assert secret not in output, f"the {where} secret leaked:\n{output[-3000:]}"


def cli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*TORCH_OTEL, *args], env=clean_env(env), capture_output=True, text=True, timeout=timeout
    )


def test_secrets_never_reach_output(tmp_path: Path) -> None:
    job = tmp_path / "job.py"
    job.write_text(
        "import torch._logging\n"
        "torch._logging.set_logs(guards=True)\n"
        "log = torch._logging.getArtifactLogger('torch._dynamo.guards', 'guards')\n"
        "[log.debug('secret-test %d', i) for i in range(5)]\n"
    )
    outputs: list[str] = []
    with OtlpReceiver() as receiver:
        working = secret_environment(receiver.http_endpoint)
        run = cli("run", "--exporter", "otlp-http", "--", sys.executable, str(job), env=working)
        assert run.returncode == 0, run.stderr[-2000:]
        outputs += [run.stdout, run.stderr]
        records = receiver.wait_for_logs(5, timeout=10)
        outputs += [repr((r.body, r.attributes, r.resource)) for r in records]
        assert len(records) == 5
        doctor = cli("doctor", "--exporter", "otlp-http", env=working)
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr
        assert "<redacted>" in doctor.stdout
        outputs += [doctor.stdout, doctor.stderr]
    # The same secrets, nobody listening: every export fails, then the exit report.
    failing = secret_environment("http://127.0.0.1:9")
    failed = cli(
        "run", "--exporter", "otlp-http", "--", sys.executable, str(job),
        env={**failing, "TORCH_OTEL_FLUSH_TIMEOUT": "2", "OTEL_EXPORTER_OTLP_TIMEOUT": "500"},
    )  # fmt: skip
    assert "were not exported" in failed.stderr, failed.stderr[-2000:]
    outputs += [failed.stdout, failed.stderr]
    grpc_failing = cli(
        "run", "--exporter", "otlp-grpc", "--", sys.executable, str(job),
        env={**secret_environment("http://127.0.0.1:9"), "TORCH_OTEL_FLUSH_TIMEOUT": "2",
             "OTEL_EXPORTER_OTLP_TIMEOUT": "500"},
    )  # fmt: skip
    outputs += [grpc_failing.stdout, grpc_failing.stderr]
    # Bad configuration naming the endpoint or the header.
    bad_port = {**failing, "OTEL_EXPORTER_OTLP_ENDPOINT": failing["OTEL_EXPORTER_OTLP_ENDPOINT"]
                .replace(":9", ":notaport")}  # fmt: skip
    for env in (bad_port, {**failing, "OTEL_EXPORTER_OTLP_HEADERS": "x-key=zero\u200bwidth"}):
        bad = cli("run", "--exporter", "otlp-http", "--", "true", env=env)
        assert bad.returncode == 2, bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1, bad.stderr
        outputs += [bad.stdout, bad.stderr]
    assert_no_secret(*outputs)


def test_invisible_character_in_a_header_is_refused_naming_the_header() -> None:
    result = cli(
        "run", "--", "true",
        env={"OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer abc\u200bdef,x-ok=1"},
    )  # fmt: skip
    assert result.returncode == 2
    assert "'authorization'" in result.stderr and "U+200B" in result.stderr
    assert "abc" not in result.stderr


# --- 6: hostile profiles, bounded in time and memory ---------------------------------------
def bomb(path: Path) -> Path:
    lines = ['file_format: "1.0"', "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    path.write_text("\n".join(lines) + "\n")
    return path


def deep(path: Path) -> Path:
    path.write_text("a: " + "[" * 50_000 + "]" * 50_000 + "\n")
    return path


@pytest.mark.parametrize("make", [bomb, deep], ids=["alias-bomb", "deep-nesting"])
def test_hostile_profile_is_refused_quickly_and_cheaply(tmp_path: Path, make) -> None:
    profile = make(tmp_path / "hostile.yaml")
    measure = (
        "import resource, subprocess, sys, time\n"
        "started = time.monotonic()\n"
        "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "print(r.returncode, round(time.monotonic() - started, 2), rss)\n"
        "sys.stderr.write(r.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", measure, *TORCH_OTEL, "run", "--exporter", str(profile), "--",
         "true"],
        env=clean_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    returncode, seconds, peak_kib = result.stdout.split()
    assert int(returncode) == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "hostile.yaml" in result.stderr
    assert float(seconds) < 30 and int(peak_kib) < 400 * 1024, result.stdout


# --- 8: summary on a file that is not UTF-8 -------------------------------------------------
def test_summary_reports_unreadable_lines_and_fails_only_when_nothing_reads(
    tmp_path: Path,
) -> None:
    good = tmp_path / "mixed.jsonl"
    good.write_bytes(
        b'{"resourceLogs": []}\n'
        b"\xff\xfe not utf-8 at all\n"
        b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"stringValue": "x"}}]}]}]}\n'
    )
    result = cli("summary", str(good), env={})
    assert result.returncode == 0, result.stderr
    assert f"{good}:2: skipped: UnicodeDecodeError" in result.stderr
    assert "Traceback" not in result.stderr
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_bytes(b"\xff\xfe\n\x80\x81\n")
    result = cli("summary", str(garbage), env={})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr


# --- 9, 10: torch versions and small ones ---------------------------------------------------
def test_unknown_artifact_in_artifact_ranks_is_refused() -> None:
    result = cli("run", "--", "true", env={"TORCH_OTEL_ARTIFACT_RANKS": "outptu_code=0"})
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "torch-otel: error: TORCH_OTEL_ARTIFACT_RANKS: unknown artifact name(s): outptu_code "
        "(see TORCH_LOGS=help for the artifacts this torch knows)"
    )


def test_empty_torch_logs_is_named_before_the_job_starts() -> None:
    result = cli(
        "run", "--", sys.executable, "-c", "print('job ran')",
        env={"TORCH_LOGS": "", "TORCH_OTEL_EXPORTER": "none"},
    )  # fmt: skip
    warnings = [
        line for line in result.stderr.splitlines() if "TORCH_LOGS is set but empty" in line
    ]
    assert len(warnings) == 1
    assert result.stdout.strip() == "job ran"


def test_torch_is_not_capped_in_the_package_metadata(repo: Path) -> None:
    import tomllib

    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    (torch_requirement,) = [r for r in project["dependencies"] if r.startswith("torch")]
    assert torch_requirement.replace(" ", "") == "torch>=2.6"
    assert "<" not in "".join(project["optional-dependencies"]["instruments"])
