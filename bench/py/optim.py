"""Python reference for bench/optim.mjs: one solo-learn LARS step over ResNet-50's parameters (a Python loop
over parameters), ms per step."""
import json
import sys
import time

import torch
import torchvision

sys.path.insert(0, __file__.rsplit("/", 3)[0] + "/scripts/fixtures")
from optim import LARS  # noqa: E402

threads, iters = int(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(threads)
net = torchvision.models.resnet50()
params = list(net.parameters())
for p in params:
    p.grad = torch.randn_like(p) * 1e-3
opt = LARS(params, lr=0.3, momentum=0.9, weight_decay=1e-4, eta=0.02, clip_lr=True, exclude_bias_n_norm=True)
opt.step()  # creates the momentum buffers
t0 = time.perf_counter()
for _ in range(iters):
    opt.step()
print(json.dumps({"ms": 1000 * (time.perf_counter() - t0) / iters, "params": len(params)}))
