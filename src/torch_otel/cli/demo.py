"""``torch-otel demo``: a small torch.compile workload, bridged, with a summary.

The workload has what a user wants to see in their backend: a graph break
(two graphs from one function), a recompile (a guard on a Python constant
fails), a dynamic-shape recompile, and inductor output code. Unless
``TORCH_LOGS`` is set, the demo enables the matching logs with
``torch._logging.set_logs()`` exactly as a user would.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any, TextIO

from torch_otel import environment_variables as env
from torch_otel.cli.options import (
    bridge_options,
    validate_bridge_settings,
    validate_torch_logs_early,
)
from torch_otel.cli.summary import SummaryExporter, origin_table

DEMO_LOGS: dict[str, Any] = {
    "dynamo": logging.INFO,
    "graph_breaks": True,
    "guards": True,
    "recompiles": True,
    "graph_code": True,
    "output_code": True,
}


def demo_command(args: argparse.Namespace) -> int:
    """``torch-otel demo``: validate the profile before paying for torch.compile, then run."""
    options = bridge_options(args)
    exporter = options.get("exporter") or os.environ.get(env.TORCH_OTEL_EXPORTER) or "console"
    validate_bridge_settings({**options, "exporter": exporter}, os.environ)
    validate_torch_logs_early()
    return run_demo(options)


def run_workload() -> None:
    """Compile a tiny model step three times: graph break, recompile, dynamic shape."""
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))

    def step(inputs: torch.Tensor, scale: int) -> torch.Tensor:
        hidden = model(inputs)
        torch._dynamo.graph_break()  # a graph break: dynamo compiles two graphs
        return (hidden * scale).softmax(dim=-1).sum()

    compiled = torch.compile(step)
    compiled(torch.randn(8, 16), 1)
    compiled(torch.randn(8, 16), 2)  # recompile: the guard on `scale` fails
    compiled(torch.randn(12, 16), 2)  # recompile: a new batch size (dynamic shapes)


def run_demo(bridge_options: dict[str, Any], out: TextIO | None = None) -> int:
    """Install the bridge (console profile unless told otherwise), run, print the summary."""
    import torch_otel

    out = out or sys.stdout
    summary = SummaryExporter()
    options = dict(bridge_options)
    if not options.get("exporter") and not os.environ.get(env.TORCH_OTEL_EXPORTER):
        options["exporter"] = "console"
    bridge = torch_otel.install(exporters=[summary], **options)
    import torch

    if env.TORCH_LOGS not in os.environ:
        torch._logging.set_logs(**DEMO_LOGS)
    run_workload()
    bridge.flush()
    counters = torch_otel.uninstall()
    print("\ntorch-otel demo: records exported per component and artifact", file=out)
    print(origin_table(summary.tally), file=out)
    if counters is not None:
        dropped = counters.describe_drops() or "none"
        # Counters are per exporter; the demo's own tally is one of them.
        exporters = max(len(bridge.pipeline.sinks), 1)
        print(
            f"\nrecords accepted {counters.records_accepted}, "
            f"exported {counters.records_exported // exporters} (to each of {exporters - 1} "
            f"exporter(s) and the demo's tally), dropped {dropped}; "
            f"{bridge.profile.describe() if bridge.profile else 'application provider'}",
            file=out,
        )
    return 0
