"""Python PyTorch reference for bench/distributed.mjs: the same VICReg step (torchvision ResNet-18 CIFAR stem,
2048-2048-2048 projector, solo-learn's VICReg with its GatherLayer, solo-learn LARS) under
torch.nn.parallel.DistributedDataParallel on `world` processes (gloo on loopback, one intra-op thread each,
per-rank batch), views made in the loop (a crop of the whole image and a random flip, as the torch-ssl side is
configured: this bench measures the data-parallel step, not augmentation). Prints rank 0's mean step time over
steps 2..N+1 as JSON."""
import json
import os
import socket
import sys
import time

import numpy as np

sys.path.insert(0, __file__.rsplit("/", 3)[0] + "/scripts/fixtures")
from _distributed import gather  # noqa: E402  (first: it sets USE_LIBUV before torch.distributed starts a store)
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from optim import LARS  # noqa: E402

world, batch, steps, data_path = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
MEAN = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
STD = torch.tensor([0.247, 0.2435, 0.2616]).view(1, 3, 1, 1)


def vicreg(z1, z2):
    sim = F.mse_loss(z1, z2)
    z1, z2 = gather(z1), gather(z2)
    n, d = z1.shape
    var = torch.mean(F.relu(1 - torch.sqrt(z1.var(0) + 1e-4))) + torch.mean(F.relu(1 - torch.sqrt(z2.var(0) + 1e-4)))
    z1, z2 = z1 - z1.mean(0), z2 - z2.mean(0)
    off = ~torch.eye(d, dtype=torch.bool)
    cov = ((z1.T @ z1) / (n - 1))[off].pow(2).sum() / d + ((z2.T @ z2) / (n - 1))[off].pow(2).sum() / d
    return 25 * sim + 25 * var + cov


class Step(nn.Module):
    def __init__(self):
        super().__init__()
        b = torchvision.models.resnet18()
        b.conv1 = nn.Conv2d(3, 64, 3, 1, 2, bias=False)
        b.maxpool = nn.Identity()
        b.fc = nn.Identity()
        self.backbone = b
        layers, d = [], 512
        for _ in range(2):
            layers += [nn.Linear(d, 2048), nn.BatchNorm1d(2048), nn.ReLU(inplace=True)]
            d = 2048
        self.projector = nn.Sequential(*layers, nn.Linear(d, 2048))

    def forward(self, x1, x2):
        return [self.projector(self.backbone(x)) for x in (x1, x2)]


def worker(rank, port, out):
    torch.set_num_threads(1)
    torch.manual_seed(5)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    images = torch.from_numpy(np.load(data_path)).permute(0, 3, 1, 2).float().div(255)
    images = (images - MEAN) / STD
    step_mod = Step().to(memory_format=torch.channels_last).train()
    ddp = nn.parallel.DistributedDataParallel(step_mod) if world > 1 else step_mod
    opt = LARS([{"params": list(step_mod.backbone.parameters())}, {"params": list(step_mod.projector.parameters())}], lr=0.3, momentum=0.9,
               weight_decay=1e-4, eta=0.02, clip_lr=True, exclude_bias_n_norm=True)
    sampler = torch.utils.data.DistributedSampler(range(len(images)), num_replicas=world, rank=rank, shuffle=True, seed=5, drop_last=True)
    mine = torch.tensor(list(iter(sampler)))
    times = []
    for s in range(steps + 1):
        idx = mine[s * batch:(s + 1) * batch]
        t0 = time.perf_counter()
        x = images[idx]
        x1 = x.contiguous(memory_format=torch.channels_last)
        flip = torch.rand(len(idx)) < 0.5
        x2 = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x).contiguous(memory_format=torch.channels_last)
        opt.zero_grad(set_to_none=True)
        z1, z2 = ddp(x1, x2)
        loss = vicreg(z1, z2)  # with one process the gather returns the input, as solo-learn's
        loss.backward()
        opt.step()
        loss.item()
        times.append(time.perf_counter() - t0)
    if rank == 0:
        with open(out, "w") as f:
            json.dump({"stepMs": 1000 * sum(times[1:]) / steps}, f)
    dist.destroy_process_group()


def main():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = f"/tmp/tssl-bench-ddp-{port}.json"
    mp.spawn(worker, args=(port, out), nprocs=world, join=True)
    with open(out) as f:
        r = json.load(f)
    os.remove(out)
    r["imagesPerSec"] = world * batch / (r["stepMs"] / 1000)
    print(json.dumps(r))


if __name__ == "__main__":
    main()
