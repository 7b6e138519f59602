"""A rank whose job store goes away mid-run, with ``dedup`` (driven by tests/e2e/test_fleet.py).

    python dedup_store.py HOST PORT

The store's server runs in another process (the test's). This process joins a
one-rank gloo group on that store, installs the bridge with ``dedup`` and logs large
``output_code`` bodies through torch's own artifact logger, in two phases:

1. ``mine``, ``claimed`` (the test claimed its hash beforehand, as another rank
   would have), ``mine`` again; flush; print the counters as one JSON line;
2. after a line on stdin (the test stops the store's server meanwhile):
   ``after-1``, ``after-2``, ``mine``; flush; print the counters again.
"""

import json
import sys
from datetime import timedelta

import torch._logging
import torch.distributed as dist

import torch_otel

host, port = sys.argv[1], int(sys.argv[2])
store = dist.TCPStore(host, port, is_master=False, timeout=timedelta(seconds=30))
dist.init_process_group("gloo", store=store, rank=0, world_size=1)
bridge = torch_otel.install("otlp-grpc", console=False, dedup=True, dedup_min_bytes=1024)
torch._logging.set_logs(output_code=True)
log = torch._logging.getArtifactLogger("torch._inductor.graph", "output_code")


def body(name: str) -> str:
    return f"# {name}\n" + "buf0 = empty_strided_cpu((16, 16), (16, 1), torch.float32)\n" * 40


def phase(number: int, names: tuple[str, ...]) -> None:
    for name in names:
        log.debug("%s", body(name))
    assert bridge.flush(60)
    counters = bridge.counters()
    report = {"phase": number, "bodies": counters.bodies, "dropped": counters.dropped}
    print(json.dumps(report), flush=True)


phase(1, ("mine", "claimed", "mine"))
sys.stdin.readline()
phase(2, ("after-1", "after-2", "mine"))
