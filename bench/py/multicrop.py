"""Python reference for bench/multicrop.mjs: DINO's multi-crop views (2 global crops of 32, 6 local crops of 16,
solo-learn's asymmetric pipeline: RandomResizedCrop bicubic, ColorJitter 0.8 x (0.4, 0.4, 0.2, 0.1), grayscale 0.2,
solarize 0 / 0.2 on the global crops, flip 0.5, ToTensor, Normalize) by torchvision transforms on PIL images in a
DataLoader with one worker, as solo-learn's NCropAugmentation runs them. Also exports the images (Fashion-MNIST
training images padded to 32x32, grey replicated to RGB) for the torch-ssl side. Prints views/s."""
import gzip
import json
import os
import sys
import time

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T

n, batch, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
torch.set_num_threads(1)
with gzip.open("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz") as f:
    raw = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)[:n]
images = np.repeat(np.pad(raw, ((0, 0), (2, 2), (2, 2)))[..., None], 3, axis=3)
np.save(out, np.ascontiguousarray(images))

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def pipeline(size, scale, solarize):
    return T.Compose([
        T.RandomResizedCrop(size, scale=scale, interpolation=T.InterpolationMode.BICUBIC),
        T.RandomApply([T.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
        T.RandomGrayscale(p=0.2),
        T.RandomSolarize(128, p=solarize),
        T.RandomHorizontalFlip(p=0.5),
        T.ToTensor(),
        T.Normalize(MEAN, STD),
    ])


CROPS = [pipeline(32, (0.4, 1), 0.0), pipeline(32, (0.4, 1), 0.2)] + [pipeline(16, (0.05, 0.4), 0.0)] * 6


class Data(torch.utils.data.Dataset):
    def __len__(self):
        return len(images)

    def __getitem__(self, i):
        img = Image.fromarray(images[i])
        return [t(img) for t in CROPS]


def views_per_s():
    loader = torch.utils.data.DataLoader(Data(), batch_size=batch, num_workers=1, drop_last=True)
    t0 = time.perf_counter()
    seen = 0
    for crops in loader:
        seen += crops[0].size(0) * len(crops)
    return seen / (time.perf_counter() - t0)


views_per_s()  # warm-up: worker start, PIL
print(json.dumps({"viewsPerSec": views_per_s(), "torch": torch.__version__}))
