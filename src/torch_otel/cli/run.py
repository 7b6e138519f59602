"""``torch-otel run [options] -- COMMAND...``: any program, bridged in each Python process.

Like ``opentelemetry-instrument``: the bootstrap directory goes first on
``PYTHONPATH`` and its ``sitecustomize`` installs the bridge once torch is
imported, in the command and every Python process it starts (torchrun ranks,
``multiprocessing`` children, inductor's compile workers). The profile is
validated once here and handed to every child as
``TORCH_OTEL_RESOLVED_PROFILE``. ``run`` then replaces itself with the command,
so exit codes and signals are the command's own.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

from torch_otel import environment_variables as env
from torch_otel.cli.options import (
    bridge_options,
    validate_bridge_settings,
    validate_torch_logs_early,
)
from torch_otel.errors import ConfigError

BOOTSTRAP_DIRECTORY = Path(__file__).resolve().parent.parent / "auto" / "bootstrap"


def run_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    command = list(args.cmd)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        parser.error("run needs a command after --, e.g. torch-otel run -- python train.py")
    child_env = run_environment(bridge_options(args), os.environ)
    profile = validate_bridge_settings({}, child_env)
    child_env[env.TORCH_OTEL_RESOLVED_PROFILE] = profile.to_cache()
    warn_if_torch_logs_is_empty(child_env)
    validate_torch_logs_early()
    validate_artifact_ranks_early(child_env)
    executable = shutil.which(command[0], path=child_env.get("PATH"))
    if executable is None:
        raise ConfigError("COMMAND", f"{command[0]!r} not found on PATH")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(executable, command, child_env)
    return 0  # pragma: no cover - exec does not return


def warn_if_torch_logs_is_empty(environ: Mapping[str, str]) -> None:
    """A set but empty ``TORCH_LOGS`` makes ``import torch`` itself fail (torch 2.13)."""
    if env.TORCH_LOGS in environ and not environ[env.TORCH_LOGS].strip():
        print(
            "torch-otel: warning: TORCH_LOGS is set but empty, which makes 'import torch' "
            "fail on some torch versions; unset it (unset TORCH_LOGS) to log nothing",
            file=sys.stderr,
        )


def validate_artifact_ranks_early(environ: Mapping[str, str]) -> None:
    """Artifact names in ``TORCH_OTEL_ARTIFACT_RANKS`` must be torch's (imports torch)."""
    from torch_otel.config.settings import BridgeSettings

    settings = BridgeSettings.resolve({}, environ)
    if settings.artifact_ranks:
        from torch_otel.capture.sync import validate_artifact_names
        from torch_otel.cli.options import import_torch_without_torch_logs

        import_torch_without_torch_logs()
        validate_artifact_names(settings.artifact_ranks, settings.artifact_ranks_source)


def run_environment(options: dict[str, object], environ: Mapping[str, str]) -> dict[str, str]:
    """The environment ``run`` gives the command: bridge settings + the bootstrap path."""
    from torch_otel.config.output import output_template

    child = dict(environ)
    if "exporter" in options:
        child[env.TORCH_OTEL_EXPORTER] = str(options["exporter"])
    if "output" in options:
        # The template: each process replaces {rank} and {pid} with its own.
        child[env.TORCH_OTEL_OUTPUT] = output_template(
            str(options["output"]), child, source="--output"
        )
    if options.get("console") is False:
        child[env.TORCH_OTEL_CONSOLE] = "0"
    if options.get("trace"):
        child[env.TORCH_OTEL_TRACE] = "1"
    if options.get("spill_dir"):
        child[env.TORCH_OTEL_SPILL_DIR] = str(Path(str(options["spill_dir"])).resolve())
    if options.get("compile_metrics") is False:
        child[env.TORCH_OTEL_COMPILE_METRICS] = "0"
    if options.get("dedup"):
        child[env.TORCH_OTEL_DEDUP] = "1"
    child[env.TORCH_OTEL_BOOTSTRAP] = "1"
    existing = child.get("PYTHONPATH")
    child["PYTHONPATH"] = str(BOOTSTRAP_DIRECTORY) + (os.pathsep + existing if existing else "")
    return child
