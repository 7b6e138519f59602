"""Real torch.compile workloads for the compile-health tests (run in a fresh interpreter).

    python compile_health.py --steps main,cardinality --torch-metrics torch.json
    python compile_health.py --steps slow --release release.flag --install otlp-grpc

``--torch-metrics`` writes what torch's own ``CompilationMetrics`` recorded for the
run (``torch._dynamo.utils.get_compilation_metrics()``), for the tests to compare
with what was exported. No ``TORCH_LOGS`` is needed by any step.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def health_step(x, n):  # type: ignore[no-untyped-def]
    y = x * n
    if y.sum() > 0:  # BREAK: data-dependent branch
        y = y + 1
    print("compile-health workload")  # BREAK: print
    return y.relu()


def step_main() -> None:
    """A shape-driven recompile, a type-driven recompile, two kinds of graph break."""
    import torch

    compiled = torch.compile(health_step, backend="eager")
    compiled(torch.ones(4, 8), 2)
    compiled(torch.ones(6, 8), 2)  # recompile: a new size (then dynamic)
    compiled(torch.ones(6, 8, dtype=torch.float64), 2)  # recompile: another dtype


def sized(x):  # type: ignore[no-untyped-def]
    return (x * 2).sum()


def step_cardinality(count: int) -> None:
    """``count`` recompiles of one function, each for a new tensor size."""
    import torch

    torch._dynamo.config.recompile_limit = count + 8
    torch._dynamo.config.accumulated_recompile_limit = count + 64
    compiled = torch.compile(sized, backend="eager", dynamic=False)
    for size in range(1, count + 2):
        compiled(torch.ones(size))


def step_slow(release: Path) -> None:
    """A compile that hangs until the test releases it, then one that fails slowly."""
    import torch

    def stuck_backend(gm, example_inputs):  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + 120
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        (release.parent / "released").write_text("1" if release.exists() else "0")
        return gm.forward

    def failing_backend(gm, example_inputs):  # type: ignore[no-untyped-def]
        time.sleep(0.6)
        raise RuntimeError("this backend always fails")

    def hangs(x):  # type: ignore[no-untyped-def]
        return x.cos() + 1

    def fails(x):  # type: ignore[no-untyped-def]
        return x.sin() - 1

    torch.compile(hangs, backend=stuck_backend)(torch.ones(3))
    try:
        torch.compile(fails, backend=failing_backend)(torch.ones(3))
    except Exception as error:  # BackendCompilerFailed
        print(f"failed as expected: {type(error).__name__}", file=sys.stderr)


def torch_metrics() -> list[dict[str, object]]:
    import torch._dynamo.utils

    fields = (
        "compile_id",
        "co_name",
        "co_filename",
        "co_firstlineno",
        "fail_type",
        "recompile_reason",
        "is_forward",
        "is_runtime",
        "duration_us",
    )
    out = []
    for metrics in torch._dynamo.utils.get_compilation_metrics():
        item = {name: getattr(metrics, name) for name in fields}
        item["restart_reasons"] = sorted(metrics.restart_reasons or ())
        out.append(item)
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", default="main")
    parser.add_argument("--install", help="install the bridge here with this profile")
    parser.add_argument("--output", help="output of the file profile")
    parser.add_argument("--recompiles", type=int, default=100)
    parser.add_argument("--release", type=Path, help="step slow: the file that releases it")
    parser.add_argument("--torch-metrics", type=Path, help="write torch's CompilationMetrics")
    args = parser.parse_args()

    import torch

    if args.install:
        import torch_otel

        options: dict[str, object] = {"exporter": args.install}
        if args.output:
            options["output"] = args.output
        torch_otel.install(**options)
    import torch._dynamo.utils

    torch._dynamo.utils.set_compilation_metrics_limit(100_000)
    for step in args.steps.split(","):
        if step == "main":
            step_main()
        elif step == "cardinality":
            step_cardinality(args.recompiles)
        elif step == "slow":
            step_slow(args.release)
        elif step:
            print(f"unknown step {step}", file=sys.stderr)
            return 2
    if args.torch_metrics:
        args.torch_metrics.write_text(json.dumps(torch_metrics()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
