"""Bad input: one clear message naming the value, exit code 2 from the CLI,
ConfigError from install(), never a traceback (from any thread)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import torch_otel
from helpers.processes import TORCH_OTEL, clean_env
from torch_otel.errors import ConfigError


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TORCH_OTEL, *args], env=clean_env(env), capture_output=True, text=True, timeout=120
    )


def assert_clear_failure(result: subprocess.CompletedProcess[str], *names: str) -> None:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr, result.stderr
    message = result.stderr.strip().splitlines()
    assert len(message) == 1, result.stderr
    for name in names:
        assert name in message[0], (name, message[0])


@pytest.fixture
def broken_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "broken.yaml"
    path.write_text("file_format: '1.0'\nlogger_provider: [unclosed\n")
    return path


@pytest.fixture
def schema_invalid_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "invalid.yaml"
    path.write_text(
        "file_format: '1.0'\nlogger_provider:\n  processors:\n"
        "    - batch:\n        schedule_delay: -5\n        exporter: {console: {}}\n"
    )
    return path


@pytest.fixture
def undecodable_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"file_format: '1.0'\n# caf\xe9\n")
    return path


def test_unknown_profile_name() -> None:
    assert_clear_failure(run_cli("demo", "--exporter", "nope"), "'nope'", "console, otlp-grpc")


def test_missing_profile_file(tmp_path: Path) -> None:
    missing = str(tmp_path / "absent.yaml")
    assert_clear_failure(run_cli("run", "--exporter", missing, "--", "true"), missing)


def test_profile_path_is_a_directory(tmp_path: Path) -> None:
    assert_clear_failure(run_cli("demo", "--exporter", str(tmp_path)), "directory")


def test_invalid_yaml_syntax(broken_yaml: Path) -> None:
    assert_clear_failure(
        run_cli("run", "--exporter", str(broken_yaml), "--", "true"), str(broken_yaml), "YAML"
    )


def test_yaml_that_breaks_the_schema(schema_invalid_yaml: Path) -> None:
    assert_clear_failure(
        run_cli("run", "--exporter", str(schema_invalid_yaml), "--", "true"),
        str(schema_invalid_yaml),
        "schedule_delay",
    )


def test_unreadable_yaml(undecodable_yaml: Path) -> None:
    assert_clear_failure(
        run_cli("run", "--exporter", str(undecodable_yaml), "--", "true"), str(undecodable_yaml)
    )


@pytest.mark.parametrize(
    ("endpoint", "fragment"),
    [
        ("localhost:4317", "http:// or https://"),
        ("http://collector:port", "malformed"),
        ("grpc://collector:4317", "http:// or https://"),
    ],
)
def test_malformed_endpoint(endpoint: str, fragment: str) -> None:
    result = run_cli(
        "run",
        "--exporter",
        "otlp-grpc",
        "--",
        "true",
        env={"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint},
    )
    assert_clear_failure(result, repr(endpoint), fragment)


def test_torch_logs_that_torch_rejects() -> None:
    result = run_cli("run", "--", "true", env={"TORCH_LOGS": "dynamo,guardz"})
    assert_clear_failure(result, "TORCH_LOGS", "guardz")


def test_unknown_protocol() -> None:
    result = run_cli("run", "--", "true", env={"OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon"})
    assert_clear_failure(result, "OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon")


def test_missing_command() -> None:
    result = run_cli("run", "--exporter", "console", "--", "no-such-command-xyz")
    assert_clear_failure(result, "no-such-command-xyz")


def test_bad_environment_setting() -> None:
    result = run_cli("run", "--", "true", env={"TORCH_OTEL_MAX_QUEUE_BYTES": "-3"})
    assert_clear_failure(result, "TORCH_OTEL_MAX_QUEUE_BYTES", "-3")


def test_tls_files_with_plaintext_endpoint(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not really a certificate, but it exists")
    result = run_cli(
        "run",
        "--exporter",
        "otlp-grpc",
        "--",
        "true",
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector.example:4317",
            "OTEL_EXPORTER_OTLP_CERTIFICATE": str(ca),
        },
    )
    assert_clear_failure(result, "plaintext", "never falls back")


def test_secret_header_values_never_appear_in_errors() -> None:
    result = run_cli(
        "run",
        "--exporter",
        "otlp-http",
        "--",
        "true",
        env={"OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer s3cr3t-value,broken-pair"},
    )
    assert_clear_failure(result, "header #2")
    assert "s3cr3t" not in result.stderr


@pytest.mark.parametrize("output", ["x-{host}.jsonl", "x-{rank.jsonl", "{}.jsonl"])
def test_unknown_output_placeholder(tmp_path: Path, output: str) -> None:
    result = run_cli("run", "--exporter", "file", "--output", str(tmp_path / output), "--", "true")
    assert_clear_failure(result, "--output", "unknown placeholder")


@pytest.mark.parametrize(
    "make_kwargs",
    [
        lambda tmp: {"exporter": "nope"},
        lambda tmp: {"exporter": str(tmp / "absent.yaml")},
        lambda tmp: {"exporter": "file", "output": str(tmp / "no" / "such" / "dir" / "x.jsonl")},
        lambda tmp: {"exporter": "console", "max_batch_bytes": 10},
        lambda tmp: {"exporter": "file", "output": str(tmp / "x-{host}.jsonl")},
        lambda tmp: {"exporter": "console", "dedup_min_bytes": 1},
    ],
)
def test_install_raises_config_error(tmp_path: Path, make_kwargs) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError):
        torch_otel.install(**make_kwargs(tmp_path))
    assert torch_otel.get_bridge() is None


def test_install_rejects_a_torch_logs_value_torch_rejects(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch  # noqa: F401

    monkeypatch.setenv("TORCH_LOGS", "+dynamo,not_a_thing")
    with pytest.raises(ConfigError) as raised:
        torch_otel.install(exporter="console")
    assert raised.value.setting == "TORCH_LOGS"
    assert "not_a_thing" in str(raised.value)
    assert torch_otel.get_bridge() is None


def test_run_passes_the_exit_code_through() -> None:
    result = run_cli("run", "--exporter", "none", "--", sys.executable, "-c", "raise SystemExit(7)")
    assert result.returncode == 7


def test_cli_module_is_the_console_script() -> None:
    # The console script and `python -m torch_otel.cli` are the same entry point.
    from importlib.metadata import entry_points

    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts")}
    assert scripts.get("torch-otel") == "torch_otel.cli:main"
