"""``torch-otel replay DIR [--exporter PROFILE] [--timeout S]``: send what a spill directory holds.

Every segment no running process holds is claimed and sent, oldest first, frame by
frame, to the OTLP exporters of the profile (default: as ``install()`` would choose,
from ``TORCH_OTEL_EXPORTER`` / ``OTEL_EXPORTER_OTLP_*``). Records keep their original
timestamps, resource and attributes: a frame is the export request as first built.

Exit status: 0 once the directory holds no segment; 1 with one line saying why when
the collector refuses records, cannot be reached within ``--timeout``, or segments are
held by running processes; 2 for bad input.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch_otel.errors import ConfigError

if TYPE_CHECKING:  # the command's own imports wait until it runs (CLI start-up)
    from torch_otel.stats import StatsSnapshot

EXIT_NOT_EMPTY = 1


def add_replay_command(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    replay = commands.add_parser(
        "replay", help="send the export requests a spill directory holds, then exit"
    )
    replay.add_argument("directory", metavar="DIR", help="the spill directory")
    replay.add_argument(
        "--exporter", metavar="PROFILE", help="profile to send with (its OTLP exporters)"
    )
    replay.add_argument(
        "--timeout", type=float, default=60.0, metavar="S", help="give up after S seconds (60)"
    )


def replay_command(args: argparse.Namespace) -> int:
    from torch_otel.cli.options import validate_bridge_settings
    from torch_otel.config.specs import OTLP_KINDS
    from torch_otel.export.exporters import build_log_sink
    from torch_otel.export.files import OutputFiles
    from torch_otel.export.outcome import ExportOutcome
    from torch_otel.export.spill_queue import SpillQueue
    from torch_otel.stats import BridgeStats

    directory = Path(args.directory)
    if not directory.is_dir():
        raise ConfigError("DIR", f"{str(directory)!r} is not a directory")
    if not (0 < args.timeout <= 86400):
        raise ConfigError("--timeout", f"expected 0 < seconds <= 86400, got {args.timeout!r}")
    options = {"exporter": args.exporter} if args.exporter else {}
    profile = validate_bridge_settings(options, os.environ)
    specs = [spec for spec in profile.exporters if spec.kind in OTLP_KINDS]
    if not specs:
        raise ConfigError("--exporter", f"profile {profile.name!r} has no OTLP exporter")
    files = OutputFiles()
    sinks = [build_log_sink(spec, files) for spec in specs]
    stats = BridgeStats()
    queue = SpillQueue(directory.resolve(), max_bytes=1 << 62, stats=stats)
    deadline = time.monotonic() + args.timeout
    delay = 0.5
    try:
        while time.monotonic() < deadline:
            queue.claim_now()
            outcome = queue.send(sinks, keep_going=lambda: time.monotonic() < deadline)
            if outcome is ExportOutcome.SUCCESS and not queue.has_pending():
                break
            if outcome is not ExportOutcome.SUCCESS:
                time.sleep(min(delay, max(deadline - time.monotonic(), 0)))
                delay = min(delay * 2, 10.0)
    finally:
        left = queue.pending_records()
        queue.close()
        for sink in sinks:
            sink.shutdown()
    return _report(directory, stats.snapshot(), left, _leftover_segments(directory), sinks)


def _leftover_segments(directory: Path) -> list[str]:
    """Why each segment still in the directory is there (held, or unreadable here)."""
    from torch_otel.export.spill import claim_segment, segment_paths

    reasons = []
    for path in segment_paths(directory)[0]:
        claimed = claim_segment(path)
        if claimed is None:
            reasons.append(f"{path.name}: held by a running process")
        elif isinstance(claimed, str):
            reasons.append(claimed)
        else:
            claimed.close()
            reasons.append(f"{path.name}: not delivered")
    return reasons


def _report(
    directory: Path, snapshot: StatsSnapshot, left: int, remaining: list[str], sinks: list[Any]
) -> int:
    """One line on stderr; exit 0 only when the directory holds no segment."""
    summary = f"torch-otel: replay {directory}: {snapshot.records_exported} records delivered"
    if snapshot.records_dropped:
        summary += f", {snapshot.records_dropped} refused ({snapshot.describe_drops()})"
    if snapshot.spill_torn:
        summary += f", {snapshot.spill_torn} torn segment tail(s) skipped"
    last_error = next((sink.last_error for sink in sinks if sink.last_error), None)
    if left:
        reason = f"{left} records still on disk (collector unreachable?)"
    elif remaining:
        reason = f"{len(remaining)} segment(s) left: " + "; ".join(remaining[:3])
    elif snapshot.records_dropped:
        reason = "the collector refused records"
    else:
        print(f"{summary}; {directory} is empty", file=sys.stderr)
        return 0
    tail = f"; last error: {last_error}" if last_error else ""
    print(f"{summary}; not done: {reason}{tail}", file=sys.stderr)
    return EXIT_NOT_EMPTY
