"""A DDP training step under torchrun: compiled model, gloo, logs chosen with set_logs()."""

import torch
import torch._logging
import torch.distributed as dist

dist.init_process_group("gloo")
# set_logs in the script, as a user would: it must apply on every rank.
torch._logging.set_logs(ddp_graphs=True, aot_joint_graph=True, output_code=True)
torch.manual_seed(0)
model = torch.nn.Sequential(*[torch.nn.Linear(512, 512) for _ in range(4)])
ddp = torch.nn.parallel.DistributedDataParallel(torch.compile(model), bucket_cap_mb=1)
ddp(torch.randn(4, 512)).sum().backward()
dist.destroy_process_group()
