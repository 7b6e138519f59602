"""torch-otel at fleet scale: K ranks through a real collector, with and without ``dedup``.

    python benchmarks/fleet.py                  # K = 8, 32, 64 (about 6 minutes on 2 cores)
    python benchmarks/fleet.py --quick          # K = 2, 4 and a synthetic mix: checks it runs
    python benchmarks/fleet.py --ranks 8,16 --repeats 3 --compiles 2

Each of K processes is one rank of a job: ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE`` and
``TORCHELASTIC_RUN_ID`` set, a default process group on the job's ``TCPStore`` (hosted
by this driver, as torchrun's agent hosts it; torch's ``fake`` backend, so that no
rendezvous or collective runs), and the bridge installed with the ``otlp-grpc``
profile pointed at Rotel (a real collector), which forwards to the loopback
receiver. Every rank replays the same record mix, captured from a real compile at
the start of the run (``overhead.py``'s), through torch's own loggers, ``--compiles``
times (default 4: a job compiles more than one graph): each time its large bodies
start with a line naming that compile, so they differ from one compile to the next
and are the same on every rank. The last rank replaces its largest body with one of
its own (a rank whose compile differs). The
ranks are forked, all at once, from one process that imported torch, so 64 ranks do
not pay 64 imports of torch on 2 cores; each measures its own CPU (all its threads)
from just before its replay to the end of its flush, after a warm-up record has
brought up its exporter.

Prints, per K and variant: records delivered / expected (what the ranks built), bytes
at the receiver (serialized requests, and bodies of at least ``dedup_min_bytes``), the
median CPU per process; then one line per goal, ``NAME: ratio=R target<=T PASS|FAIL``:

fleet-loss-K     records lost / expected, with and without dedup    <= 0 (zero loss)
fleet-bytes-K    large-body bytes at the receiver with dedup / one rank's large-body
                 bytes                                                  <= 1.2
fleet-cpu-K      CPU per process with dedup / without (median of per-repeat ratios,
                 each the ratio of the medians over the K ranks)       <= 1.1
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "tests"))

from overhead import _clean_env, _enable_for_mix, capture_mix, synthetic_mix  # noqa: E402

DEDUP_MIN_BYTES = 4096


def compile_mix(mix: list[Any], compile_index: int) -> list[Any]:
    """The mix as the ``compile_index``-th compile logs it: large bodies tagged with it."""
    if compile_index == 0:
        return list(mix)
    return [
        (name, level, f"# compile {compile_index}\n{message}" if len(message) >= 1024 else message)
        for name, level, message in mix
    ]


# --------------------------------------------------------------------------------------
# The ranks (forked from one zygote that imported torch)


def run_rank(args: argparse.Namespace, rank: int, mix: list[Any], out: Path) -> None:
    """One rank: join the job's group, install the bridge, replay the mix, report."""
    os.environ.update(
        {
            "RANK": str(rank),
            "LOCAL_RANK": str(rank % 8),
            "WORLD_SIZE": str(args.world),
            "TORCHELASTIC_RUN_ID": args.run_id,
            "OTEL_EXPORTER_OTLP_ENDPOINT": args.endpoint,
        }
    )
    import torch.distributed as dist
    import torch.testing._internal.distributed.fake_pg  # noqa: F401 - the "fake" backend

    from torch_otel.bridge import TorchOtelBridge
    from torch_otel.config.settings import BridgeSettings

    store = dist.TCPStore("127.0.0.1", args.store_port, is_master=False, wait_for_workers=False)
    dist.init_process_group("fake", store=store, rank=rank, world_size=args.world)
    options = {"exporter": "otlp-grpc", "console": False, "max_queue_records": 1 << 20}
    settings = BridgeSettings.resolve({**options, "dedup": args.dedup}, os.environ)
    bridge = TorchOtelBridge(settings).start()
    replays = [_enable_for_mix(compile_mix(mix, n)) for n in range(args.compiles)]
    if rank == args.world - 1:  # the divergent rank: its largest body is its own
        replay = replays[0]
        index = max(range(len(replay)), key=lambda i: len(replay[i][2]))
        logger, level, message = replay[index]
        replay[index] = (logger, level, f"# rank {rank} compiled this differently\n{message}")
    warm_logger, warm_level, _ = replays[0][0]
    warm_logger.log(warm_level, "%s", "warm-up")
    assert bridge.flush(120)
    before = resource.getrusage(resource.RUSAGE_SELF)
    for replay in replays:
        for logger, level, message in replay:
            logger.log(level, "%s", message)
    flushed = bridge.flush(600)
    after = resource.getrusage(resource.RUSAGE_SELF)
    counters = bridge.stop(60)
    dist.destroy_process_group()
    out.write_text(
        json.dumps(
            {
                "rank": rank,
                "flushed": flushed,
                "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
                "accepted": counters.records_accepted,
                "emitted": counters.records_emitted,
                "exported": counters.records_exported,
                "dropped": counters.dropped,
                "bodies": counters.bodies,
            }
        )
    )


def zygote(args: argparse.Namespace) -> None:
    """Import torch once, fork ``args.world`` ranks at once, collect their reports."""
    import importlib

    # Imported once, before the ranks fork (each would otherwise import them itself).
    for module in ("torch", "torch.distributed", "torch_otel.bridge", "torch_otel.config.settings"):
        importlib.import_module(module)

    mix = json.loads(Path(args.mix).read_text())
    out_dir = Path(args.out)
    children = []
    for rank in range(args.world):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                run_rank(args, rank, mix, out_dir / f"rank-{rank}.json")
            except BaseException as error:
                print(f"rank {rank}: {type(error).__name__}: {error}", file=sys.stderr)
                code = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        children.append(pid)
    failed = sum(os.waitpid(pid, 0)[1] != 0 for pid in children)
    reports = [json.loads((out_dir / f"rank-{r}.json").read_text()) for r in range(args.world)]
    print(json.dumps({"failed": failed, "ranks": reports}))


# --------------------------------------------------------------------------------------
# Driver


def one_run(
    args: argparse.Namespace, k: int, dedup: bool, tag: str, mix_path: Path, store_port: int
) -> dict[str, Any]:
    """K ranks through a fresh Rotel to a fresh receiver; what arrived and what it cost."""
    from infra.otlp_receiver import OtlpReceiver
    from infra.rotel import Rotel

    with (
        tempfile.TemporaryDirectory() as out,
        OtlpReceiver(grpc_max_receive_bytes=512 << 20, grpc_workers=8) as receiver,
    ):
        with Rotel(receiver.grpc_endpoint) as rotel:
            command = [
                sys.executable, __file__, "--zygote", "--mix", str(mix_path),
                "--world", str(k), "--store-port", str(store_port), "--endpoint",
                rotel.grpc_endpoint, "--run-id", f"fleet-{tag}", "--out", out,
                "--compiles", str(args.compiles),
            ] + (["--dedup"] if dedup else [])  # fmt: skip
            done = subprocess.run(
                command, env=_clean_env(), capture_output=True, text=True, timeout=3600
            )
            if done.returncode != 0:
                raise RuntimeError(f"ranks failed ({done.returncode}):\n{done.stderr[-3000:]}")
        # Rotel stopped, flushing what it held: everything sent is at the receiver now.
        result = json.loads(done.stdout.strip().splitlines()[-1])
        records = receiver.log_records()
        request_bytes = sum(request.size for request in receiver.received("logs"))
    ranks = result["ranks"]
    expected = sum(r["emitted"] for r in ranks)
    large = [
        len(r.body.encode("utf-8"))
        for r in records
        if isinstance(r.body, str) and len(r.body.encode("utf-8")) >= DEDUP_MIN_BYTES
    ]
    return {
        "failed": result["failed"],
        "expected": expected,
        "delivered": len(records),
        "dropped": sum(sum(r["dropped"].values()) for r in ranks),
        "not_flushed": sum(not r["flushed"] for r in ranks),
        "request_bytes": request_bytes,
        "large_body_bytes": sum(large),
        "cpu_s": statistics.median(r["cpu_s"] for r in ranks),
        "bodies": {
            outcome: sum(r["bodies"].get(outcome, 0) for r in ranks)
            for outcome in ("published", "referenced", "uncoordinated")
        },
    }


def verdict(goal: str, ratio: float, target: float, details: str) -> str:
    status = "PASS" if ratio <= target else "FAIL"
    return f"{goal}: ratio={ratio:.3f} target<={target:g} {status}\n    {details}"


def describe(k: int, variant: str, run: dict[str, Any]) -> str:
    bodies = ", ".join(f"{n} {o}" for o, n in run["bodies"].items() if n)
    return (
        f"K={k} {variant}: delivered {run['delivered']}/{run['expected']} records "
        f"(dropped {run['dropped']}), requests {run['request_bytes'] / 2**20:.2f} MiB, "
        f"large bodies {run['large_body_bytes'] / 2**20:.2f} MiB, "
        f"CPU per process {run['cpu_s'] * 1000:.1f} ms" + (f"; bodies: {bodies}" if bodies else "")
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="K = 2, 4 and a synthetic mix")
    parser.add_argument("--ranks", help="comma-separated K values (default 8,32,64)")
    parser.add_argument("--repeats", type=int, default=None, help="runs per K and variant")
    parser.add_argument(
        "--compiles", type=int, default=None, help="compiles each rank replays (default 4)"
    )
    parser.add_argument("--zygote", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mix", help=argparse.SUPPRESS)
    parser.add_argument("--world", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--store-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--run-id", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--dedup", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.zygote:
        zygote(args)
        return 0

    import torch.distributed as dist

    ks = [int(k) for k in (args.ranks or ("2,4" if args.quick else "8,32,64")).split(",")]
    repeats = args.repeats or (1 if args.quick else 4)
    args.compiles = args.compiles or (1 if args.quick else 4)
    started = time.monotonic()
    store = dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False)
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        mix_path = Path(tmp) / "mix.json"
        if args.quick:
            mix = synthetic_mix()
            mix_path.write_text(json.dumps(mix))
        else:
            mix = capture_mix(mix_path)
        sizes = [
            len(message.encode("utf-8"))
            for n in range(args.compiles)
            for _, _, message in compile_mix(mix, n)
        ]
        one_rank = sum(size for size in sizes if size >= DEDUP_MIN_BYTES)
        print(
            f"record mix: {len(mix)} records from "
            f"{'a synthetic sample' if args.quick else 'a real compile'}, replayed as "
            f"{args.compiles} compile(s) per rank; one rank's bodies of >= {DEDUP_MIN_BYTES} B: "
            f"{one_rank / 2**20:.2f} MiB",
            flush=True,
        )
        for k in ks:
            runs: dict[str, list[dict[str, Any]]] = {"without dedup": [], "with dedup": []}
            for repeat in range(repeats):
                order = [False, True] if repeat % 2 == 0 else [True, False]
                for dedup in order:
                    variant = "with dedup" if dedup else "without dedup"
                    tag = f"{k}-{int(dedup)}-{repeat}"
                    run = one_run(args, k, dedup, tag, mix_path, store.port)
                    runs[variant].append(run)
                    print("  " + describe(k, variant, run), flush=True)
            every = runs["without dedup"] + runs["with dedup"]
            lost = sum(r["expected"] - r["delivered"] + r["dropped"] for r in every)
            expected = sum(r["expected"] for r in every)
            failed = sum(r["failed"] + r["not_flushed"] for r in every)
            lines.append(
                verdict(
                    f"fleet-loss-K{k}",
                    lost / expected if expected else 1.0,
                    0,
                    f"{expected - lost} of {expected} records delivered through Rotel "
                    f"({len(every)} runs of {k} ranks; {failed} ranks failed or did not flush)",
                )
            )
            deduplicated = statistics.median(r["large_body_bytes"] for r in runs["with dedup"])
            full = statistics.median(r["large_body_bytes"] for r in runs["without dedup"])
            lines.append(
                verdict(
                    f"fleet-bytes-K{k}",
                    deduplicated / one_rank,
                    1.2,
                    f"bodies of >= {DEDUP_MIN_BYTES} B at the receiver: with dedup "
                    f"{deduplicated / 2**20:.2f} MiB, without {full / 2**20:.2f} MiB, one rank's "
                    f"{one_rank / 2**20:.2f} MiB",
                )
            )
            ratios = [
                on["cpu_s"] / off["cpu_s"]
                for on, off in zip(runs["with dedup"], runs["without dedup"], strict=True)
            ]
            cpu_on = statistics.median(r["cpu_s"] for r in runs["with dedup"]) * 1000
            cpu_off = statistics.median(r["cpu_s"] for r in runs["without dedup"]) * 1000
            lines.append(
                verdict(
                    f"fleet-cpu-K{k}",
                    statistics.median(ratios),
                    1.1,
                    f"CPU per process (median over {k} ranks, median of {repeats} paired runs): "
                    f"with dedup {cpu_on:.1f} ms, without {cpu_off:.1f} ms",
                )
            )
            for line in lines[-3:]:
                print(line, flush=True)
    print(f"\nsummary ({time.monotonic() - started:.0f} s)")
    for line in lines:
        print(line.splitlines()[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
