"""Production jobs: opentelemetry-instrument, torchrun with two ranks, operator commands,
and the wheel installed in a fresh virtual environment."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from helpers.processes import (
    REPO,
    TORCH_OTEL,
    WORKLOAD,
    Run,
    clean_env,
    run_instrumented,
    run_python,
)
from infra.otlp_receiver import OtlpReceiver

pytestmark = pytest.mark.compile
BIN = Path(sys.executable).parent


def test_opentelemetry_instrument_bridges_through_the_users_exporter() -> None:
    """The user configured OTel the usual way (OTEL_* for opentelemetry-distro); the
    torch_logging instrumentor bridges torch's records into that pipeline."""
    with OtlpReceiver() as receiver:

        def instrumented(**extra_env: str) -> Run:
            return run_instrumented(
                WORKLOAD,
                receiver.grpc_endpoint,
                service="instrumented-job",
                metrics=False,
                env={"TORCH_LOGS": "guards,recompiles", **extra_env},
            )

        run = instrumented()
        assert run.returncode == 0, run.stderr[-3000:]
        records = receiver.wait_for_logs(1, timeout=10)
        assert {r.resource["service.name"] for r in records} == {"instrumented-job"}
        artifacts = Counter(r.attributes.get("torch.artifact") for r in records)
        assert artifacts["guards"] > 0 and artifacts["recompiles"] > 0
        # The distro's own resource (not torch-otel's): the provider was the user's.
        assert all("telemetry.auto.version" in r.resource for r in records)

        receiver.clear()
        disabled = instrumented(OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="torch_logging")
        assert disabled.returncode == 0
        assert "__guards]" in disabled.stderr  # torch still printed them...
        assert receiver.log_records() == []  # ...but nothing was bridged


def test_torchrun_two_ranks(tmp_path: Path) -> None:
    script = REPO / "tests" / "workloads" / "ddp_ranks.py"
    with OtlpReceiver() as receiver:
        run = run_python(
            [
                *TORCH_OTEL,
                "run",
                "--exporter",
                "otlp-grpc",
                "--no-console",
                "--",
                str(BIN / "torchrun"),
                "--standalone",
                "--nproc-per-node",
                "2",
                str(script),
            ],
            env={
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.grpc_endpoint,
                "TORCH_OTEL_ARTIFACT_RANKS": "output_code=0",
                "OMP_NUM_THREADS": "1",
            },
            timeout=900,
        )
        assert run.returncode == 0, run.stderr[-4000:]
        records = receiver.log_records()
    by_rank: dict[int, list] = defaultdict(list)
    for record in records:
        if "torch.distributed.rank" in record.resource:
            by_rank[record.resource["torch.distributed.rank"]].append(record)
    assert sorted(by_rank) == [0, 1]
    run_ids = set()
    for rank, rank_records in by_rank.items():
        resources = {json.dumps(r.resource, sort_keys=True, default=str) for r in rank_records}
        assert len(resources) == 1  # one process per rank
        resource = rank_records[0].resource
        assert resource["torch.distributed.local_rank"] == rank
        assert resource["torch.distributed.world_size"] == 2
        run_ids.add(resource["torch.elastic.run_id"])
        artifacts = Counter(r.attributes.get("torch.artifact") for r in rank_records)
        assert artifacts["ddp_graphs"] > 0, (rank, artifacts)
        assert artifacts["aot_joint_graph"] > 0, (rank, artifacts)
        assert (artifacts["output_code"] > 0) == (rank == 0), (rank, artifacts)
        in_group = [r for r in rank_records if "torch.distributed.rank" in r.attributes]
        assert in_group and {r.attributes["torch.distributed.rank"] for r in in_group} == {rank}
    assert len(run_ids) == 1


@pytest.fixture(scope="module")
def exported_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("summary")
    output = tmp / "job.jsonl"
    run = run_python(
        [
            sys.executable,
            str(WORKLOAD),
            "--steps",
            "main",
            "--install",
            "file",
            "--output",
            str(output),
            "--no-console",
        ],
        env={"TORCH_LOGS": "+dynamo,guards,output_code"},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return output


def test_summary_tables(exported_file: Path, tmp_path: Path) -> None:
    from torch_otel.cli.otlp_json import read_log_records

    records = read_log_records(exported_file)
    damaged = tmp_path / "damaged.jsonl"
    lines = exported_file.read_text().splitlines()
    damaged.write_text("\n".join([lines[0], "{not json", *lines[1:], '{"other": 1}']) + "\n")
    result = subprocess.run(
        [*TORCH_OTEL, "summary", str(damaged)],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert f"{damaged}:2: skipped" in result.stderr
    assert f"{damaged}:{len(lines) + 2}: skipped" in result.stderr
    out = result.stdout
    assert out.startswith(f"{len(records)} records")
    guards = sum(1 for r in records if r.attributes.get("torch.artifact") == "guards")
    assert any(line.split() == ["dynamo", "guards", str(guards)] for line in out.splitlines())
    assert "compile id" in out and "largest" in out and "rank" in out
    top = max(records, key=lambda r: len(r.body.encode()))
    assert f"{len(top.body.encode()) / 1024:.1f} KiB" in out


def test_doctor_reports_configuration_and_reachability() -> None:
    with OtlpReceiver() as receiver:
        env = clean_env(
            {
                "TORCH_LOGS": "+dynamo,guards",
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.grpc_endpoint,
                "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer very-secret-token",
            }
        )
        ok = subprocess.run(
            [*TORCH_OTEL, "doctor", "--exporter", "otlp-grpc"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert ok.returncode == 0, ok.stderr
        assert receiver.request_count == 1  # the probe's empty export
    assert f"OTLP grpc to {receiver.grpc_endpoint}" in ok.stdout
    assert "components: dynamo=DEBUG" in ok.stdout
    assert "artifacts: guards" in ok.stdout
    assert "answers" in ok.stdout
    assert "authorization=<redacted>" in ok.stdout
    down = subprocess.run(
        [*TORCH_OTEL, "doctor", "--exporter", "otlp-grpc"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert down.returncode == 1
    assert "does not answer" in down.stdout
    for output in (ok.stdout, ok.stderr, down.stdout, down.stderr):
        assert "very-secret-token" not in output


def test_wheel_installs_and_works_in_a_fresh_venv(tmp_path: Path) -> None:
    """Build the wheel, install it (and nothing else) into a new venv; the dependencies
    come from this environment through a .pth, so no torch is downloaded."""
    dist = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(dist),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = dist.glob("torch_otel-*.whl")
    fresh = tmp_path / "fresh"
    venv.create(fresh, with_pip=True)
    python = fresh / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(site) / "_deps_from_test_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    where = subprocess.run(
        [
            str(python),
            "-c",
            "import torch_otel, torch_otel.config.profiles as p; print(torch_otel.__file__); "
            "print(p.profile_directory())",
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    ).stdout.split()
    assert where[0].startswith(str(fresh))
    profiles = Path(where[1])
    assert profiles.is_relative_to(fresh)
    assert {p.stem for p in profiles.glob("*.yaml")} >= {
        "console",
        "otlp-grpc",
        "otlp-http",
        "file",
        "none",
    }
    output = tmp_path / "from-wheel.jsonl"
    script = tmp_path / "job.py"
    script.write_text(
        "import torch._logging\n"
        "torch._logging.set_logs(guards=True)\n"
        "torch._logging.getArtifactLogger('torch._dynamo.guards', 'guards').debug('from wheel')\n"
    )
    env = clean_env({"PATH": f"{fresh / 'bin'}{os.pathsep}{os.environ['PATH']}"})
    run = subprocess.run(
        [
            str(fresh / "bin" / "torch-otel"),
            "run",
            "--exporter",
            "file",
            "--output",
            str(output),
            "--",
            str(python),
            str(script),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    from torch_otel.cli.otlp_json import read_log_records

    assert [r.body for r in read_log_records(output)] == ["from wheel"]
    assert shutil.which("torch-otel", path=str(fresh / "bin"))
