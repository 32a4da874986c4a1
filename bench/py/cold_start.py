"""Python side of bench/cold-start.mjs.

`make <path>`: writes a solo-learn-sized checkpoint — ResNet-18 (CIFAR stem) + VICReg 2048-2048-2048
projector + classifier, laid out as Lightning's dump_checkpoint does, with the optimizer's momentum
buffers (so about half the file is optimizer state, as in a real 165 MB solo-learn .ckpt).
`run <path> <threads>`: what a PyTorch user does to get one image's features: torch.load, build
torchvision's resnet18 with solo-learn's CIFAR surgery, load_state_dict(strict=True), one eval forward.
The parent measures this whole process's wall time; the JSON line only reports the in-process phases.
"""
import json
import sys
import time

t_start = time.perf_counter()
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torchvision  # noqa: E402


def cifar_resnet18():
    m = torchvision.models.resnet18()
    m.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=2, bias=False)
    m.maxpool = nn.Identity()
    m.fc = nn.Identity()
    return m


def make(path):
    torch.manual_seed(0)

    class VICReg(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = cifar_resnet18()
            self.classifier = nn.Linear(512, 10)
            self.projector = nn.Sequential(nn.Linear(512, 2048), nn.BatchNorm1d(2048), nn.ReLU(), nn.Linear(2048, 2048),
                                           nn.BatchNorm1d(2048), nn.ReLU(), nn.Linear(2048, 2048))

    model = VICReg().to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.9, weight_decay=1e-4)
    for p in model.parameters():
        p.grad = torch.randn_like(p) * 0.01
    opt.step()
    torch.save({
        "epoch": 999, "global_step": 195000, "pytorch-lightning_version": "2.1.2",
        "state_dict": model.state_dict(), "loops": {}, "callbacks": {},
        "optimizer_states": [opt.state_dict()],
        "lr_schedulers": [{"warmup_epochs": 10, "max_epochs": 1000, "last_epoch": 195000}],
        "MixedPrecision": {"scale": 65536.0},
    }, path)


def run(path, threads):
    torch.set_num_threads(threads)
    t_import = time.perf_counter()
    ckpt = torch.load(path, map_location="cpu", weights_only=False)  # as a Lightning user must since PyTorch 2.6
    sd = {k[len("backbone."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("backbone.")}
    t_load = time.perf_counter()
    model = cifar_resnet18()
    model.load_state_dict(sd, strict=True)
    model.eval()
    t_ready = time.perf_counter()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        feats = model(x)
    t_feat = time.perf_counter()
    assert feats.shape == (1, 512)
    print(json.dumps({"import_ms": (t_import - t_start) * 1e3, "load_ms": (t_load - t_import) * 1e3,
                      "ready_ms": (t_ready - t_load) * 1e3, "forward_ms": (t_feat - t_ready) * 1e3}))


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
    else:
        run(sys.argv[2], int(sys.argv[3]))
