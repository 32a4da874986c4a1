"""Composed-op PyTorch autograd reference for bench/losses.mjs: one loss case, forward+backward time and
peak RSS growth (fresh process per case)."""
import json
import resource
import sys
import time

import torch

sys.path.insert(0, __file__.rsplit("/", 3)[0] + "/scripts/fixtures")
from _ssl_losses import barlow, simclr, tcr, vicreg  # noqa: E402

name, shape, iters, threads = sys.argv[1], [int(v) for v in sys.argv[2].split(",")], int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
g = torch.Generator().manual_seed(0)
n_inputs = 2 if name in ("vicreg", "barlow") else 1
xs = [torch.randn(*shape, generator=g).requires_grad_(True) for _ in range(n_inputs)]
fn = {"vicreg": vicreg, "barlow": barlow, "simclr": lambda z: simclr(z, 0.1), "tcr": tcr}[name]


def run():
    for x in xs:
        x.grad = None
    loss, _ = fn(*xs)
    loss.backward()


base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
run()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base
t0 = time.perf_counter()
for _ in range(iters):
    run()
ms = 1000 * (time.perf_counter() - t0) / iters
print(json.dumps({"ms": ms, "peakMB": peak / 1024}))
