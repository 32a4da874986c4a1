"""Python PyTorch reference for bench/extract.mjs, as a user would write `torch-ssl extract --pool local`:
load the checkpoint (torch.load), build torchvision's ResNet-18 with solo-learn's CIFAR surgery, normalise
uint8 images with the CIFAR-10 statistics, batched forward in inference mode, layer4 → avg_pool2d(3, 2) →
flatten, save float32 .npy. Prints a JSON line with its in-process loop time (the caller times the process).

usage: extract.py <threads> <checkpoint> <images.npy> <out.npy> <batch> <channels_last 0|1>
"""
import json
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
import torchvision

threads, ckpt, images_path, out_path, batch, channels_last = sys.argv[1:7]
torch.set_num_threads(int(threads))
batch = int(batch)
channels_last = channels_last == "1"

# weights_only=False (the default became True in PyTorch 2.6): a Lightning checkpoint holds more than tensors.
sd = torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]
sd = {k[len("backbone."):]: v for k, v in sd.items() if k.startswith("backbone.")}
net = torchvision.models.resnet18()
net.fc = torch.nn.Identity()
net.conv1 = torch.nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=2, bias=False)
net.maxpool = torch.nn.Identity()
net.load_state_dict(sd, strict=True)
net.eval()
if channels_last:
    net = net.to(memory_format=torch.channels_last)

images = np.load(images_path)
mean = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
std = torch.tensor([0.247, 0.2435, 0.2616]).view(1, 3, 1, 1)


def layer4(x):
    x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    return net.layer4(net.layer3(net.layer2(net.layer1(x))))


t0 = time.perf_counter()
out = []
with torch.inference_mode():
    for i in range(0, len(images), batch):
        x = torch.from_numpy(images[i:i + batch]).permute(0, 3, 1, 2).float().div(255)
        x = (x - mean) / std
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        out.append(F.avg_pool2d(layer4(x), 3, 2).flatten(1))
feats = torch.cat(out).numpy()
np.save(out_path, feats)
loop = time.perf_counter() - t0
print(json.dumps({"loop_s": loop, "count": len(images), "shape": list(feats.shape)}))
