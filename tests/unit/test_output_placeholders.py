"""``--output`` with ``{rank}`` and ``{pid}``: checked once, replaced in each process.

``torch-otel run`` validates the profile in the parent and hands it to every child
(``TORCH_OTEL_RESOLVED_PROFILE``) with the *template* in ``TORCH_OTEL_OUTPUT``; each
child replaces the placeholders with its own rank and pid, also when it reuses the
parent's validated profile.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from torch_otel.cli.run import run_environment
from torch_otel.config.output import expand_output, output_template
from torch_otel.config.profiles import load_profile
from torch_otel.errors import ConfigError


def file_paths(profile) -> set[str]:  # type: ignore[no-untyped-def]
    specs = [*profile.exporters, *profile.span_exporters]
    specs += [spec for spec, _ in profile.metric_exporters]
    return {spec.path for spec in specs}


def test_rank_and_pid_are_replaced_from_the_launchers_environment(tmp_path: Path) -> None:
    template = str(tmp_path / "logs-{rank}-{pid}.jsonl")
    assert expand_output(template, {"RANK": "7"}, pid=42) == str(tmp_path / "logs-7-42.jsonl")
    assert expand_output(template, {"SLURM_PROCID": "3"}, pid=1).endswith("logs-3-1.jsonl")
    assert expand_output(str(tmp_path / "{{rank}}-{pid}"), {}, pid=5).endswith("{rank}-5")


def test_no_rank_known_uses_0_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template = str(tmp_path / "logs-{rank}.jsonl")
    assert expand_output(template, {}, announce=True) == str(tmp_path / "logs-0.jsonl")
    err = capsys.readouterr().err
    assert "has {rank} but this process has no rank" in err and "using 0" in err
    expand_output(template, {})  # validation in a parent process: quiet
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("bad", ["logs-{host}.jsonl", "logs-{}.jsonl", "logs-{rank.jsonl"])
def test_an_unknown_placeholder_is_an_error_naming_the_setting(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"^--output: unknown placeholder"):
        output_template(bad, {}, source="--output")
    with pytest.raises(ConfigError, match=r"^TORCH_OTEL_OUTPUT: unknown placeholder"):
        output_template(None, {"TORCH_OTEL_OUTPUT": bad})
    with pytest.raises(ConfigError, match=r"^output: unknown placeholder"):
        load_profile("file", environ={}, output=bad)


def test_run_hands_children_the_template(tmp_path: Path) -> None:
    child = run_environment({"output": str(tmp_path / "r{rank}.jsonl")}, {})
    assert child["TORCH_OTEL_OUTPUT"] == str(tmp_path / "r{rank}.jsonl")
    with pytest.raises(ConfigError, match=r"^--output: unknown placeholder \{node\}"):
        run_environment({"output": "r{node}.jsonl"}, {})


def test_each_child_reuses_the_parents_profile_with_its_own_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = str(tmp_path / "job-{rank}-{pid}.jsonl")
    parent = load_profile("file", environ={"TORCH_OTEL_OUTPUT": template}, use_cache=False)
    assert file_paths(parent) == {str(tmp_path / f"job-0-{os.getpid()}.jsonl")}

    import torch_otel.config.profile_file as profile_file

    def not_again(*args: object) -> None:
        raise AssertionError("the cached profile should have been used")

    monkeypatch.setattr(profile_file, "read_profile_data", not_again)
    child_env = {
        "TORCH_OTEL_OUTPUT": template,
        "TORCH_OTEL_RESOLVED_PROFILE": parent.to_cache(),
        "RANK": "5",
    }
    child = load_profile("file", environ=child_env)
    assert file_paths(child) == {str(tmp_path / f"job-5-{os.getpid()}.jsonl")}


def test_a_rank_directory_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "0").mkdir()
    template = str(tmp_path / "{rank}" / "out.jsonl")
    parent = load_profile("file", environ={"TORCH_OTEL_OUTPUT": template}, use_cache=False)
    child_env = {
        "TORCH_OTEL_OUTPUT": template,
        "TORCH_OTEL_RESOLVED_PROFILE": parent.to_cache(),
        "RANK": "1",
    }
    with pytest.raises(ConfigError, match="does not exist"):
        load_profile("file", environ=child_env)
