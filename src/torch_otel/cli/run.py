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
    validate_torch_logs_early()
    executable = shutil.which(command[0], path=child_env.get("PATH"))
    if executable is None:
        raise ConfigError("COMMAND", f"{command[0]!r} not found on PATH")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(executable, command, child_env)
    return 0  # pragma: no cover - exec does not return


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
    if options.get("dedup"):
        child[env.TORCH_OTEL_DEDUP] = "1"
    child[env.TORCH_OTEL_BOOTSTRAP] = "1"
    existing = child.get("PYTHONPATH")
    child["PYTHONPATH"] = str(BOOTSTRAP_DIRECTORY) + (os.pathsep + existing if existing else "")
    return child
