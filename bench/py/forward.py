"""Python torchvision reference for bench/forward.mjs: ResNet-18 CIFAR-stem images/s at a batch size."""
import json
import sys
import time

import torch
import torchvision

threads, batch, iters, channels_last = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
torch.set_num_threads(threads)
torch.manual_seed(0)
net = torchvision.models.resnet18()
net.fc = torch.nn.Identity()
net.conv1 = torch.nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=2, bias=False)
net.maxpool = torch.nn.Identity()
x = torch.randn(batch, 3, 32, 32)
if channels_last:
    net = net.to(memory_format=torch.channels_last)
    x = x.contiguous(memory_format=torch.channels_last)


def timed(fn):
    fn()  # warm-up
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    return batch * iters / (time.perf_counter() - t0)


def fwd():
    with torch.inference_mode():
        net(x)


def fwd_bwd():
    net.zero_grad(set_to_none=True)
    net(x).sum().backward()


net.eval()
inference = timed(fwd)
net.train()
training = timed(fwd_bwd)
print(json.dumps({"forward": inference, "forwardBackward": training}))
