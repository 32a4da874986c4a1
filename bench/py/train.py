"""Python PyTorch reference for bench/train.mjs: the same VICReg step (torchvision ResNet-18 CIFAR stem,
2048-2048-2048 projector, online classifier, composed VICReg loss, solo-learn LARS, per-step
warmup-cosine) fed by torchvision transforms (solo-learn's VICReg CIFAR pipeline) in a DataLoader with
workers. Prints images/s and the time split as JSON."""
import json
import math
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
import torchvision.transforms as T
from PIL import Image

sys.path.insert(0, __file__.rsplit("/", 3)[0] + "/scripts/fixtures")
from _ssl_losses import vicreg  # noqa: E402
from optim import LARS  # noqa: E402

threads, workers, batch, steps, data_path, labels_path = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
# Optional: memory format (contiguous | channels_last) and precision (32 | bf16-mixed: torch.autocast('cpu', bf16)).
memory_format = torch.channels_last if (sys.argv[7] if len(sys.argv) > 7 else "contiguous") == "channels_last" else torch.contiguous_format
bf16 = (sys.argv[8] if len(sys.argv) > 8 else "32") == "bf16-mixed"
torch.set_num_threads(threads)
torch.manual_seed(5)
images = np.load(data_path)
labels = np.load(labels_path)
mean, std = (0.4914, 0.4822, 0.4465), (0.247, 0.2435, 0.2616)
view = T.Compose([
    T.RandomResizedCrop(32, scale=(0.2, 1.0), interpolation=T.InterpolationMode.BICUBIC),
    T.RandomApply([T.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
    T.RandomGrayscale(p=0.2),
    T.RandomSolarize(128, p=0.1),
    T.RandomHorizontalFlip(),
    T.ToTensor(),
    T.Normalize(mean, std),
])


class TwoViews(torch.utils.data.Dataset):
    def __len__(self):
        return len(images)

    def __getitem__(self, i):
        img = Image.fromarray(images[i])
        return view(img), view(img), int(labels[i])


def init_worker(_):
    torch.set_num_threads(1)


loader = torch.utils.data.DataLoader(TwoViews(), batch_size=batch, shuffle=True, drop_last=True, num_workers=workers,
                                     persistent_workers=workers > 0, worker_init_fn=init_worker if workers > 0 else None)
backbone = torchvision.models.resnet18()
backbone.fc = nn.Identity()
backbone.conv1 = nn.Conv2d(3, 64, 3, 1, 2, bias=False)
backbone.maxpool = nn.Identity()
projector = nn.Sequential(nn.Linear(512, 2048), nn.BatchNorm1d(2048), nn.ReLU(), nn.Linear(2048, 2048), nn.BatchNorm1d(2048), nn.ReLU(), nn.Linear(2048, 2048))
classifier = nn.Linear(512, int(labels.max()) + 1)
backbone = backbone.to(memory_format=memory_format)
opt = LARS([{"params": backbone.parameters()}, {"params": projector.parameters()}, {"params": classifier.parameters(), "lr": 0.1, "weight_decay": 0}],
           lr=0.3, momentum=0.9, weight_decay=1e-4, eta=0.02, clip_lr=True, exclude_bias_n_norm=True)
total = 1000
done, data_time, step_time = 0, 0.0, 0.0
it = iter(loader)
t_start = None
while done < steps + 1:
    t0 = time.perf_counter()
    try:
        x1, x2, y = next(it)
    except StopIteration:
        it = iter(loader)
        x1, x2, y = next(it)
    t1 = time.perf_counter()
    for g, base in zip(opt.param_groups, [0.3, 0.3, 0.1]):
        g["lr"] = base * 0.5 * (1 + math.cos(math.pi * done / total))
    x1, x2 = x1.contiguous(memory_format=memory_format), x2.contiguous(memory_format=memory_format)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        f1, f2 = backbone(x1), backbone(x2)
        z1, z2 = projector(f1), projector(f2)
        logits = classifier(torch.cat([f1, f2]).detach())
    loss, _ = vicreg(z1.float(), z2.float())
    loss = loss + F.cross_entropy(logits.float(), torch.cat([y, y]))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    t2 = time.perf_counter()
    if done == 0:
        t_start = time.perf_counter()  # first step is warm-up
    else:
        data_time += t1 - t0
        step_time += t2 - t1
    done += 1
elapsed = time.perf_counter() - t_start
print(json.dumps({"imagesPerSec": steps * batch / elapsed, "waitMsPerStep": 1000 * data_time / steps, "stepMsPerStep": 1000 * step_time / steps}))
