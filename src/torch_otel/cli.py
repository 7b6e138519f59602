"""The ``torch-otel`` command.

Exit codes: 0 success; 2 bad input (unknown profile, invalid YAML, malformed
endpoint, a ``TORCH_LOGS`` torch rejects, unknown command), always with one
message naming the value at fault; ``run`` otherwise exits with the command's
own status (it replaces itself with the command, as ``opentelemetry-instrument``
does).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch_otel import environment_variables as env
from torch_otel.errors import ConfigError

EXIT_BAD_INPUT = 2


def _add_bridge_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("bridge options")
    group.add_argument(
        "--exporter",
        metavar="PROFILE",
        help="exporter profile: console, otlp-grpc, otlp-http, file, none, or a path to a "
        "declarative-config YAML file (default: $TORCH_OTEL_EXPORTER, else otlp-grpc; "
        "console for demo)",
    )
    group.add_argument(
        "--output", metavar="PATH", help="output file of the 'file' profile (OTLP/JSON lines)"
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="torch-otel",
        description="Export PyTorch compile logs (TORCH_LOGS, set_logs) through OpenTelemetry.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = commands.add_parser(
        "demo", help="run a small torch.compile workload with the bridge (console exporter)"
    )
    _add_bridge_options(demo)

    run = commands.add_parser(
        "run",
        help="run a Python program with the bridge installed in it",
        usage="torch-otel run [options] -- COMMAND [ARGS...]",
    )
    _add_bridge_options(run)
    run.add_argument("cmd", nargs=argparse.REMAINDER, help="the command to run, after --")

    doctor = commands.add_parser(
        "doctor",
        help="print the effective configuration (secrets redacted) and check the endpoint",
    )
    _add_bridge_options(doctor)
    doctor.add_argument("--no-check", action="store_true", help="do not contact the endpoint")

    summary = commands.add_parser(
        "summary", help="tables of records per component, artifact, compile id and rank"
    )
    summary.add_argument("files", nargs="+", metavar="FILE", help="OTLP/JSON lines files")
    summary.add_argument("--top", type=int, default=10, help="rows of the largest-N tables")

    to_tlparse = commands.add_parser(
        "to-tlparse",
        help="rebuild torch's TORCH_TRACE files (for tlparse) from --trace OTLP/JSON output",
    )
    to_tlparse.add_argument("inputs", nargs="+", metavar="INPUT", help="OTLP/JSON lines files")
    to_tlparse.add_argument(
        "-o", "--output-dir", required=True, metavar="DIR", help="where to write the trace files"
    )
    return parser


def bridge_options(args: argparse.Namespace) -> dict[str, object]:
    options: dict[str, object] = {}
    if args.exporter:
        options["exporter"] = args.exporter
    if args.output:
        options["output"] = args.output
    if args.no_console:
        options["console"] = False
    if args.trace:
        options["trace"] = True
    return options


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            return _demo(args)
        if args.command == "run":
            return _run(args, parser)
        if args.command == "doctor":
            from torch_otel.doctor import run_doctor

            _validate_torch_logs_early()
            return run_doctor(
                sys.stdout, check_endpoint=not args.no_check, arguments=bridge_options(args)
            )
        if args.command == "summary":
            from torch_otel.summary import summarize_files

            return summarize_files(args.files, sys.stdout, sys.stderr, top=args.top)
        if args.command == "to-tlparse":
            from torch_otel.to_tlparse import run_to_tlparse

            return run_to_tlparse(args.inputs, args.output_dir, sys.stdout, sys.stderr)
    except ConfigError as error:
        print(f"torch-otel: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    parser.error(f"unknown command {args.command!r}")
    return EXIT_BAD_INPUT  # pragma: no cover


def _demo(args: argparse.Namespace) -> int:
    from torch_otel.demo import run_demo

    options = bridge_options(args)
    # Validate the profile before paying for torch.compile.
    exporter = options.get("exporter") or os.environ.get(env.TORCH_OTEL_EXPORTER) or "console"
    _validate_bridge_settings({**options, "exporter": exporter})
    _validate_torch_logs_early()
    return run_demo(options)


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    command = list(args.cmd)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        parser.error("run needs a command after --, e.g. torch-otel run -- python train.py")
    options = bridge_options(args)
    child_env = run_environment(options, os.environ)
    profile = _validate_bridge_settings({}, environ=child_env)
    # Every Python process of the job reuses this validation (see RESOLVED_PROFILE_ENV).
    from torch_otel.profiles import RESOLVED_PROFILE_ENV

    child_env[RESOLVED_PROFILE_ENV] = profile.to_cache()
    _validate_torch_logs_early()
    executable = shutil.which(command[0], path=child_env.get("PATH"))
    if executable is None:
        raise ConfigError("COMMAND", f"{command[0]!r} not found on PATH")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(executable, command, child_env)
    return 0  # pragma: no cover - exec does not return


def run_environment(options: dict[str, object], environ: os._Environ | dict) -> dict[str, str]:
    """The environment ``run`` gives the command: bridge settings + the bootstrap path."""
    from torch_otel.autoinstall import BOOTSTRAP_ENV
    from torch_otel.profiles import prepare_output_env

    child = dict(environ)
    if "exporter" in options:
        child[env.TORCH_OTEL_EXPORTER] = str(options["exporter"])
    if "output" in options:
        child[env.TORCH_OTEL_OUTPUT] = prepare_output_env(str(options["output"]), child)
    if options.get("console") is False:
        child[env.TORCH_OTEL_CONSOLE] = "0"
    if options.get("trace"):
        child[env.TORCH_OTEL_TRACE] = "1"
    child[BOOTSTRAP_ENV] = "1"
    bootstrap = str(Path(__file__).resolve().parent / "bootstrap")
    existing = child.get("PYTHONPATH")
    child["PYTHONPATH"] = bootstrap + (os.pathsep + existing if existing else "")
    return child


def _validate_bridge_settings(arguments: dict[str, object], environ: dict | None = None) -> Any:
    """Resolve settings and load the profile exactly as ``install()`` will (no torch import)."""
    from torch_otel.profiles import RESOLVED_PROFILE_ENV, default_profile_name, load_profile
    from torch_otel.settings import BridgeSettings

    saved = dict(os.environ)
    try:
        if environ is not None:
            os.environ.clear()
            os.environ.update(environ)
        settings = BridgeSettings.resolve(arguments)
        os.environ.pop(RESOLVED_PROFILE_ENV, None)  # validate for real, never from a cache
        return load_profile(settings.exporter or default_profile_name(), output=settings.output)
    finally:
        if environ is not None:
            os.environ.clear()
            os.environ.update(saved)


def _validate_torch_logs_early() -> None:
    """Check ``TORCH_LOGS`` before starting anything (importing torch only when it is set).

    torch parses ``TORCH_LOGS`` during ``import torch`` and raises a long
    ``ValueError`` there, so the value is taken out of the environment while
    torch is imported, then checked with torch's own parser.
    """
    value = os.environ.get("TORCH_LOGS")
    if not value:
        return
    del os.environ["TORCH_LOGS"]
    try:
        import torch

        from torch_otel.bridge import validate_torch_logs_env

        validate_torch_logs_env(value)
    finally:
        os.environ["TORCH_LOGS"] = value
    # Valid: let torch apply it now, as its import would have.
    torch._logging._internal._init_logs()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
