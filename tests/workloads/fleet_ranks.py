"""Every rank compiles the same model; rank 1 also compiles a function of its own.

Run under torchrun (gloo, CPU). ``aot_eager`` keeps it cheap on 2 cores while still
logging dynamo's and AOTAutograd's large artifacts (``graph_code``, ``aot_graphs``,
``bytecode``, ...); ``TORCH_LOGS`` (or ``--trace``) chooses what is logged.
"""

import torch
import torch.distributed as dist

dist.init_process_group("gloo")
torch.manual_seed(0)
model = torch.nn.Sequential(
    torch.nn.Linear(64, 64), torch.nn.GELU(), torch.nn.Linear(64, 64), torch.nn.LayerNorm(64)
)
compiled = torch.compile(model, backend="aot_eager")
compiled(torch.randn(8, 64)).sum().backward()

if dist.get_rank() == 1:

    @torch.compile(backend="aot_eager")
    def divergent(x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x) * torch.cos(x) + x.pow(3).mean()

    divergent(torch.randn(8, 64))

dist.barrier()
dist.destroy_process_group()
