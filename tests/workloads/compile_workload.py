"""Real torch.compile workloads driven by the end-to-end tests.

Run as a script in a fresh interpreter (TORCH_LOGS is read at ``import torch``).
Every step is something a user's training script does; the bridge is either
installed here (``--install PROFILE``) or from outside (``torch-otel run``).

    python compile_workload.py --steps main,ddp,torch_own --install file --output out.jsonl
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
import time


def step_main() -> None:
    """A training step: graph break, recompile (constant guard), dynamic shape, backward."""
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))

    def train_step(inputs: torch.Tensor, scale: int) -> torch.Tensor:
        hidden = model(inputs)
        torch._dynamo.graph_break()
        return (hidden * scale).relu().sum()

    compiled = torch.compile(train_step)
    compiled(torch.randn(4, 8), 1).backward()
    compiled(torch.randn(4, 8), 2).backward()  # recompile: guard on `scale`
    compiled(torch.randn(6, 8), 2).backward()  # recompile: new shape -> dynamic


def step_ddp() -> None:
    """A DDP-wrapped compiled model (gloo, one rank): DDPOptimizer splits it -> ddp_graphs."""
    import torch
    import torch.distributed as dist

    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    if "MASTER_PORT" not in os.environ:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            os.environ["MASTER_PORT"] = str(probe.getsockname()[1])
    dist.init_process_group("gloo", rank=0, world_size=1)
    try:
        layers = [torch.nn.Linear(512, 512) for _ in range(4)]
        model = torch.nn.Sequential(*layers)
        # 1 MiB buckets and 1 MiB layers: several buckets, so the graph is split.
        ddp = torch.nn.parallel.DistributedDataParallel(torch.compile(model), bucket_cap_mb=1)
        ddp(torch.randn(4, 512)).sum().backward()
    finally:
        dist.destroy_process_group()


def step_torch_own() -> None:
    """`graph` and `schedule` have no emitter on CPU in torch 2.13: log through torch's own
    artifact loggers, the ones dynamo and inductor would use."""
    import torch._logging

    graph_log = torch._logging.getArtifactLogger("torch._dynamo.output_graph", "graph")
    graph_log.debug("TABULAR GRAPH (proof through torch's own 'graph' artifact logger)")
    schedule_log = torch._logging.getArtifactLogger("torch._inductor.scheduler", "schedule")
    schedule_log.debug("SCHEDULE (proof through torch's own 'schedule' artifact logger)")


def step_compile_workers() -> None:
    """Start inductor's compile-worker pool (a sidecar subprocess and its workers).

    On CPU inductor only warms the pool for Triton, so start it the way inductor
    does on GPU machines, then compile."""
    from torch._inductor.async_compile import AsyncCompile

    AsyncCompile.warm_pool()
    AsyncCompile.wakeup()
    AsyncCompile.wait_pool_ready(timeout=120)
    step_main()


def step_phases(marks_path: str) -> None:
    """set_logs mid-run: guards on, then everything off, then recompiles on."""
    import torch

    marks: list[dict[str, object]] = []

    def mark(name: str) -> None:
        marks.append({"phase": name, "time_ns": time.time_ns()})

    def f_a(x: torch.Tensor, n: int) -> torch.Tensor:
        return (x * n).cos()

    def f_b(x: torch.Tensor) -> torch.Tensor:
        return x.tanh() + 1

    compiled_a = torch.compile(f_a)
    compiled_b = torch.compile(f_b)
    mark("guards_on")
    torch._logging.set_logs(guards=True)
    compiled_a(torch.randn(3), 1)
    mark("all_off")
    torch._logging.set_logs()
    compiled_b(torch.randn(3))
    mark("recompiles_on")
    torch._logging.set_logs(recompiles=True)
    compiled_a(torch.randn(3), 5)  # guard on n fails -> recompile
    mark("end")
    with open(marks_path, "w") as out:
        json.dump(marks, out)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", default="main")
    parser.add_argument("--set-logs", help="JSON kwargs for torch._logging.set_logs()")
    parser.add_argument("--install", help="install the bridge here with this profile")
    parser.add_argument("--output", help="output of the file profile")
    parser.add_argument("--no-console", action="store_true")
    parser.add_argument("--marks", help="where step 'phases' writes its phase times")
    parser.add_argument("--counters", help="write the bridge's counters here at the end")
    parser.add_argument("--timing", help="write the seconds the steps took here (benchmarks)")
    parser.add_argument(
        "--rounds", type=int, default=1, help="repeat the steps (dynamo reset between rounds)"
    )
    args = parser.parse_args()

    import torch

    bridge = None
    if args.install:
        import torch_otel

        options: dict[str, object] = {"exporter": args.install}
        if args.output:
            options["output"] = args.output
        if args.no_console:
            options["console"] = False
        bridge = torch_otel.install(**options)
    if args.set_logs:
        import torch._logging

        settings = json.loads(args.set_logs)
        settings = {
            k: getattr(logging, v) if isinstance(v, str) else v for k, v in settings.items()
        }
        torch._logging.set_logs(**settings)

    round_times = []
    for round_index in range(args.rounds):
        if round_index:
            torch._dynamo.reset()
        started = time.perf_counter()
        status = run_steps(args)
        round_times.append(time.perf_counter() - started)
        if status:
            return status
    if args.timing:
        with open(args.timing, "w") as out:
            # After the first round (cold: lazy imports), rounds are comparable.
            steady = sorted(round_times[1:] or round_times)
            json.dump({"compile_s": steady[len(steady) // 2], "rounds_s": round_times}, out)
    if args.counters:
        import torch_otel

        active = bridge or torch_otel.get_bridge()
        active.flush()
        snapshot = active.counters()
        with open(args.counters, "w") as out:
            json.dump(snapshot.__dict__, out)
    return 0


def run_steps(args: argparse.Namespace) -> int:
    for step in args.steps.split(","):
        if step == "main":
            step_main()
        elif step == "ddp":
            step_ddp()
        elif step == "compile_workers":
            step_compile_workers()
        elif step == "torch_own":
            step_torch_own()
        elif step == "phases":
            step_phases(args.marks)
        elif step:
            print(f"unknown step {step}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
