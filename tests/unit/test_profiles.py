"""Loading profiles: resolved against the environment given, never the process's; hostile
files refused quickly with one clear error."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from torch_otel.config.profiles import BUILTIN_PROFILES, default_profile_name, load_profile
from torch_otel.errors import ConfigError

ENDPOINT = "http://collector.example:4317"


def write_profile(path: Path, exporter_block: str, batch: str = "") -> Path:
    path.write_text(
        'file_format: "1.0"\n'
        "logger_provider:\n"
        "  processors:\n"
        "    - batch:\n" + batch + "        exporter:\n" + exporter_block
    )
    return path


@pytest.mark.parametrize("name", BUILTIN_PROFILES)
def test_every_builtin_profile_loads(name: str, tmp_path: Path) -> None:
    profile = load_profile(name, environ={}, output=str(tmp_path / "out.jsonl"))
    assert profile.name == name
    expected_kinds = {
        "console": ["console"],
        "otlp-grpc": ["otlp_grpc"],
        "otlp-http": ["otlp_http"],
        "file": ["file"],
        "none": [],
    }[name]
    assert [spec.kind for spec in profile.exporters] == expected_kinds


def test_endpoint_comes_from_the_given_environment_not_the_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://wrong:1")
    profile = load_profile("otlp-grpc", environ={"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT})
    assert profile.exporters[0].endpoint == ENDPOINT
    assert load_profile("otlp-grpc", environ={}).exporters[0].endpoint == "http://localhost:4317"


def test_loading_never_writes_the_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "relative").mkdir()
    before = dict(os.environ)
    profile = load_profile("file", environ={}, output="relative/out.jsonl")
    assert dict(os.environ) == before
    assert profile.exporters[0].path == str(tmp_path / "relative" / "out.jsonl")


def test_output_defaults_to_the_environment_then_the_working_directory(tmp_path: Path) -> None:
    chosen = tmp_path / "from-env.jsonl"
    profile = load_profile("file", environ={"TORCH_OTEL_OUTPUT": str(chosen)})
    assert profile.exporters[0].path == str(chosen)
    default = load_profile("file", environ={})
    assert default.exporters[0].path == str(Path("torch-otel-logs.jsonl").resolve())


def test_substitution_rules(tmp_path: Path) -> None:
    path = write_profile(
        tmp_path / "p.yaml",
        "          otlp_http:\n"
        "            endpoint: ${BASE:-http://h:4318}/v1/logs\n"
        "            timeout: ${TIMEOUT}\n"
        '            headers_list: "k=$${NOT_A_VAR}"\n',
        batch="        schedule_delay: ${DELAY:-250}\n",
    )
    profile = load_profile(str(path), environ={"TIMEOUT": "2500"})
    spec = profile.exporters[0]
    assert spec.endpoint == "http://h:4318/v1/logs"
    assert spec.timeout_s == 2.5  # a standalone reference takes its value's type
    assert spec.headers == {"k": "${NOT_A_VAR}"}  # $$ is a literal $
    assert profile.batch.schedule_delay_s == 0.25


def test_resolved_profile_is_reused_only_for_the_same_environment(tmp_path: Path) -> None:
    environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT}
    cache = load_profile("otlp-grpc", environ=environ).to_cache()
    reused = load_profile(
        "otlp-grpc", environ={**environ, "TORCH_OTEL_RESOLVED_PROFILE": cache.replace(
            ENDPOINT, "http://from-cache:4317")}
    )  # fmt: skip
    assert reused.exporters[0].endpoint == "http://from-cache:4317"
    changed = load_profile(
        "otlp-grpc",
        environ={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://other:4317",
                 "TORCH_OTEL_RESOLVED_PROFILE": cache},
    )  # fmt: skip
    assert changed.exporters[0].endpoint == "http://other:4317"
    fresh = load_profile(
        "otlp-grpc", environ={**environ, "TORCH_OTEL_RESOLVED_PROFILE": "not json"}
    )
    assert fresh.exporters[0].endpoint == ENDPOINT


def test_default_profile_name() -> None:
    assert default_profile_name({}) == "otlp-grpc"
    assert default_profile_name({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}) == "otlp-http"
    assert default_profile_name({"TORCH_OTEL_EXPORTER": "console"}) == "console"
    with pytest.raises(ConfigError, match="OTEL_EXPORTER_OTLP_PROTOCOL"):
        default_profile_name({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})


# --- hostile and broken files ---------------------------------------------------------------
def expect_refused(path: Path, match: str) -> None:
    started = time.monotonic()
    with pytest.raises(ConfigError, match=match) as caught:
        load_profile(str(path), environ={})
    assert time.monotonic() - started < 5
    assert "\n" not in str(caught.value)


def test_alias_bomb_is_refused(tmp_path: Path) -> None:
    lines = ['file_format: "1.0"', "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 10):
        previous = f"*a{level - 1}"
        lines.append(f"a{level}: &a{level} [{', '.join([previous] * 10)}]")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    expect_refused(path, "aliases expand")


def test_deep_nesting_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("a: " + "[" * 50_000 + "]" * 50_000 + "\n")
    expect_refused(path, "nested deeper")
    json_path = tmp_path / "deep.json"
    json_path.write_text("[" * 50_000 + "]" * 50_000)
    expect_refused(json_path, "nested deeper")


def test_self_referencing_alias_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cycle.yaml"
    path.write_text('file_format: "1.0"\na: &x {self: *x}\n')
    expect_refused(path, "alias")


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text("# " + "x" * (2 * 1024 * 1024) + "\n")
    expect_refused(path, "larger than")


def test_fifo_and_directory_are_named_as_such(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    expect_refused(fifo, "FIFO")
    directory = tmp_path / "dir.yaml"
    directory.mkdir()
    expect_refused(directory, "is a directory")
    expect_refused(tmp_path / "missing.yaml", "does not exist")


def test_invalid_yaml_and_schema_errors_name_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("logger_provider: [unclosed\n")
    expect_refused(broken, "broken.yaml")
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text('file_format: "1.0"\nlogger_provider: 7\n')
    expect_refused(wrong, "wrong.yaml")


def test_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"file_format: \xff\xfe\n")
    expect_refused(path, "not UTF-8")


@pytest.mark.parametrize(
    ("batch", "match"),
    [
        ("        schedule_delay: 1000000000000\n", "schedule_delay"),
        ("        max_queue_size: 0\n", "max_queue_size"),
        ("        export_timeout: -5\n", "export_timeout"),
    ],
)
def test_batch_numbers_out_of_range_are_refused(tmp_path: Path, batch: str, match: str) -> None:
    path = write_profile(tmp_path / "p.yaml", "          console: {}\n", batch=batch)
    with pytest.raises(ConfigError, match=match):
        load_profile(str(path), environ={})


ENVIRONMENTS = [
    {},
    {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector.example:4317",
        "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20token,x-tenant=7",
        "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "2500",
    },
    {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318/", "TORCH_OTEL_OUTPUT": "/tmp/o.jsonl"},
]
BAD_ENVIRONMENTS = [
    {"OTEL_EXPORTER_OTLP_TIMEOUT": "soon"},
    {"OTEL_EXPORTER_OTLP_COMPRESSION": "brotli"},
    {"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4317"},
]


@pytest.mark.parametrize("name", BUILTIN_PROFILES)
def test_builtin_profiles_read_the_same_as_opentelemetry_configuration_reads_them(
    name: str,
) -> None:
    """Built-in profiles are read as plain data at run time; upstream validation agrees."""
    for environ in ENVIRONMENTS:
        fast = load_profile(name, environ=environ, output="/tmp/out.jsonl")
        strict = load_profile(name, environ=environ, output="/tmp/out.jsonl", strict=True)
        assert fast == strict, environ
    for environ in BAD_ENVIRONMENTS:
        if name in ("otlp-grpc", "otlp-http"):
            for strict_mode in (False, True):
                with pytest.raises(ConfigError):
                    load_profile(name, environ=environ, strict=strict_mode)
