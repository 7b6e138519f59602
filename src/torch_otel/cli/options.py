"""What ``demo``, ``run`` and ``doctor`` share: the bridge options and their validation.

Validation here resolves settings and loads the profile exactly as
``install()`` will, for a given environment and without touching this
process's, so a mistake is reported (exit 2) before anything starts.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from typing import Any

from torch_otel import environment_variables as env


def add_bridge_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("bridge options")
    group.add_argument(
        "--exporter",
        metavar="PROFILE",
        help="exporter profile: console, otlp-grpc, otlp-http, file, none, or a path to a "
        "declarative-config YAML file (default: $TORCH_OTEL_EXPORTER, else otlp-grpc; "
        "console for demo)",
    )
    group.add_argument(
        "--output",
        metavar="PATH",
        help="output file of the 'file' profile (OTLP/JSON lines); {rank} and {pid} are "
        "replaced by each process's rank and pid",
    )
    group.add_argument(
        "--no-console",
        action="store_true",
        help="remove torch's own stderr handlers (export through OpenTelemetry only)",
    )
    group.add_argument(
        "--trace",
        action="store_true",
        help="also bridge torch's structured trace (TORCH_TRACE events, spans, metrics)",
    )
    group.add_argument(
        "--spill-dir",
        metavar="DIR",
        help="keep export requests on disk in DIR until the collector takes them "
        "(outages, crashes, exit; torch-otel replay DIR sends what is left)",
    )
    group.add_argument(
        "--no-compile-metrics",
        action="store_true",
        help="no compile-health metrics or slow-compile events (TORCH_OTEL_COMPILE_METRICS=0)",
    )
    group.add_argument(
        "--dedup",
        action="store_true",
        help="send large bodies identical across the job's ranks once (the others send a "
        "reference), coordinated through the job's torch.distributed store",
    )


def bridge_options(args: argparse.Namespace) -> dict[str, object]:
    """The ``install()`` arguments the command line gave."""
    options: dict[str, object] = {}
    if args.exporter:
        options["exporter"] = args.exporter
    if args.output:
        options["output"] = args.output
    if args.no_console:
        options["console"] = False
    if args.trace:
        options["trace"] = True
    if getattr(args, "spill_dir", None):
        options["spill_dir"] = args.spill_dir
    if getattr(args, "no_compile_metrics", False):
        options["compile_metrics"] = False
    if args.dedup:
        options["dedup"] = True
    return options


def validate_bridge_settings(arguments: dict[str, object], environ: Mapping[str, str]) -> Any:
    """Resolve settings and load the profile as ``install()`` will (never from a cache)."""
    from torch_otel.config.profiles import default_profile_name, load_profile
    from torch_otel.config.settings import BridgeSettings

    settings = BridgeSettings.resolve(arguments, environ)
    return load_profile(
        settings.exporter or default_profile_name(environ),
        environ=environ,
        output=settings.output,
        use_cache=False,
    )


def validate_torch_logs_early() -> None:
    """Check ``TORCH_LOGS`` before starting anything.

    torch parses ``TORCH_LOGS`` during ``import torch`` and raises a long
    ``ValueError`` there. A value made of names torch registers is accepted without
    importing torch (``torch-otel run`` then costs the job no second ``import torch``);
    anything else is checked with torch's own parser, torch imported without it.
    """
    value = os.environ.get(env.TORCH_LOGS)
    if not value:
        return
    from torch_otel.capture import _torch

    if _torch.surely_accepted_log_settings(value):
        return  # torch's own names only: no second of CPU to import torch here
    import_torch_without_torch_logs()
    from torch_otel.capture.sync import validate_torch_logs

    validate_torch_logs(value)
    # Valid: let torch apply it now, as its import would have.
    _torch.reinit_logs()


def import_torch_without_torch_logs() -> None:
    """``import torch`` with ``TORCH_LOGS`` out of the environment meanwhile (a bad or
    empty value makes the import itself fail with a traceback)."""
    value = os.environ.pop(env.TORCH_LOGS, None)
    try:
        import torch  # noqa: F401
    finally:
        if value is not None:
            os.environ[env.TORCH_LOGS] = value
