"""``torch-otel run`` accepts ``TORCH_LOGS`` made of torch's own names without importing
torch; the names it reads from torch's registrations source are the ones torch's parser
accepts, and anything it cannot decide goes to torch's parser."""

from __future__ import annotations

import subprocess
import sys

import pytest
from torch._logging import _internal

from torch_otel.capture import _torch


def test_registered_names_read_from_source_are_torchs_registry() -> None:
    names = _torch.registered_log_names()
    registry = _internal.log_registry
    torch_names = set(registry.log_alias_to_log_qnames) | set(registry.artifact_names)
    assert {"dynamo", "inductor", "aot", "guards", "recompiles", "output_code"} <= names
    assert names <= torch_names  # never a name torch does not know
    assert len(names) >= 0.9 * len(torch_names)  # and nearly all of them


@pytest.mark.parametrize(
    "value",
    ["dynamo", "+dynamo,+aot,+inductor,guards,recompiles,graph_code,output_code",
     "-dynamo, +inductor", "all", "+all,guards"],
)  # fmt: skip
def test_values_of_torchs_own_names_are_accepted_without_torch(value: str) -> None:
    assert _torch.surely_accepted_log_settings(value) is True
    assert _torch.rejected_log_settings(value) is None  # torch agrees


@pytest.mark.parametrize(
    "value",
    ["help", "+help", "dynamo,", ",dynamo", "dynamo,,guards", "++dynamo", "dynamo guards",
     "dynamo,gaurds", "+torch._dynamo", "torch_otel", "dynamo;guards"],
)  # fmt: skip
def test_anything_else_is_left_to_torchs_parser(value: str) -> None:
    assert _torch.surely_accepted_log_settings(value) is False


def test_run_with_torchs_own_names_does_not_import_torch_before_the_job() -> None:
    env = {"TORCH_LOGS": "+dynamo,guards", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "torch_otel.cli", "run", "--exporter",
         "none", "--", "true"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines()}
    assert "torch_otel.cli.run" in imported  # the check ran in this process
    assert "torch" not in imported
    out = subprocess.run(
        [sys.executable, "-m", "torch_otel.cli", "run", "--exporter", "none", "--", "true"],
        env={**env, "TORCH_LOGS": "+dynamo,gaurds"}, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert out.returncode == 2  # a typo still gets torch's own verdict, before the job
    assert "TORCH_LOGS" in out.stderr and "gaurds" in out.stderr
