"""The ``torch-otel`` command: one module per subcommand, dispatched from here.

Exit codes: 0 success; 2 bad input (unknown profile, invalid YAML, malformed
endpoint, a ``TORCH_LOGS`` torch rejects, unknown command), always with one
message naming the value at fault; ``run`` otherwise exits with the command's
own status (it replaces itself with the command, as ``opentelemetry-instrument``
does); ``doctor`` exits 1 when an endpoint does not answer.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from torch_otel.cli.options import add_bridge_options
from torch_otel.cli.replay import add_replay_command
from torch_otel.errors import ConfigError

EXIT_BAD_INPUT = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="torch-otel",
        description="Export PyTorch compile logs (TORCH_LOGS, set_logs) through OpenTelemetry.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = commands.add_parser(
        "demo", help="run a small torch.compile workload with the bridge (console exporter)"
    )
    add_bridge_options(demo)

    run = commands.add_parser(
        "run",
        help="run a Python program with the bridge installed in it",
        usage="torch-otel run [options] -- COMMAND [ARGS...]",
    )
    add_bridge_options(run)
    run.add_argument("cmd", nargs=argparse.REMAINDER, help="the command to run, after --")

    doctor = commands.add_parser(
        "doctor",
        help="print the effective configuration (secrets redacted) and check the endpoint",
    )
    add_bridge_options(doctor)
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
    add_replay_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _dispatch(args, parser)
    except ConfigError as error:
        print(f"torch-otel: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _dispatch(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.command == "demo":
        from torch_otel.cli.demo import demo_command

        return demo_command(args)
    if args.command == "run":
        from torch_otel.cli.run import run_command

        return run_command(args, parser)
    if args.command == "doctor":
        from torch_otel.cli.doctor import doctor_command

        return doctor_command(args)
    if args.command == "summary":
        from torch_otel.cli.summary import summarize_files

        return summarize_files(args.files, sys.stdout, sys.stderr, top=args.top)
    if args.command == "replay":
        from torch_otel.cli.replay import replay_command

        return replay_command(args)
    if args.command == "to-tlparse":
        from torch_otel.cli.to_tlparse import run_to_tlparse

        return run_to_tlparse(args.inputs, args.output_dir, sys.stdout, sys.stderr)
    parser.error(f"unknown command {args.command!r}")
    return EXIT_BAD_INPUT  # pragma: no cover
