"""Python PyTorch side of bench/learning.mjs: the same SSL recipe trained the way solo-learn trains it —
torchvision transforms on PIL images in a DataLoader with a worker, a torchvision ResNet with the CIFAR stem,
the projector as an nn.Sequential, the loss composed of PyTorch ops (scripts/fixtures/_ssl_losses.py),
solo-learn's LARS and per-step warm-up + cosine schedule (scripts/fixtures/optim.py), an online linear
classifier on detached features — and solo-learn's weighted kNN on the held-out set after every epoch.

Usage: python3 learning.py <recipe.json>. The recipe is what torch-ssl's resolveTrainConfig produced (views,
projector, loss, optimizer, schedule), so both sides run the same numbers. Prints one JSON line per epoch
({"epoch", "top1", "top5", "seconds", "loss"}) as it goes and a final {"done": true, ...} line.
"""
import copy
import json
import math
import random
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
import torchvision.transforms as T
from PIL import Image, ImageFilter, ImageOps

sys.path.insert(0, __file__.rsplit("/", 3)[0] + "/scripts/fixtures")
from _solo_knn import solo_knn  # noqa: E402
from _ssl_losses import barlow, simclr, tcr, vicreg  # noqa: E402
import warnings  # noqa: E402
from optim import LARS, LinearWarmupCosineAnnealingLR  # noqa: E402

warnings.filterwarnings("ignore", message=".*lr_scheduler.*")

r = json.load(open(sys.argv[1]))
torch.set_num_threads(r["threads"])
torch.manual_seed(r["seed"])
random.seed(r["seed"])
np.random.seed(r["seed"])
mem = torch.channels_last


class GaussianBlur:
    """solo-learn's GaussianBlur: PIL's filter with a sigma drawn uniformly per image."""

    def __init__(self, sigma):
        self.sigma = sigma

    def __call__(self, img):
        return img.filter(ImageFilter.GaussianBlur(radius=random.uniform(*self.sigma)))


class Solarization:
    def __call__(self, img):
        return ImageOps.solarize(img)


def pipeline(v, mean, std):
    interp = T.InterpolationMode.BICUBIC if v["interpolation"] == "bicubic" else T.InterpolationMode.BILINEAR
    j = v["jitter"]
    return T.Compose([
        T.RandomResizedCrop(v["size"], scale=tuple(v["scale"]), ratio=tuple(v["ratio"]), interpolation=interp),
        T.RandomApply([T.ColorJitter(j["brightness"], j["contrast"], j["saturation"], j["hue"])], p=j["p"]),
        T.RandomGrayscale(p=v["grayscale"]),
        T.RandomApply([GaussianBlur(v["blur"]["sigma"])], p=v["blur"]["p"]),
        T.RandomApply([Solarization()], p=v["solarize"]),
        T.RandomHorizontalFlip(p=v["flip"]),
        T.ToTensor(),
        T.Normalize(mean, std),
    ])


train_x = np.load(r["train"])[: r["trainCount"]]
train_y = np.load(r["trainLabels"])[: r["trainCount"]].astype(np.int64)
test_x = np.load(r["test"])[: r["testCount"]]
test_y = np.load(r["testLabels"])[: r["testCount"]].astype(np.int64)
mean, std = r["mean"], r["std"]
views = [pipeline(r["views"][i % len(r["views"])], mean, std) for i in range(r["numViews"])]


class Views(torch.utils.data.Dataset):
    def __len__(self):
        return len(train_x)

    def __getitem__(self, i):
        img = Image.fromarray(train_x[i])
        return [t(img) for t in views], int(train_y[i])


def init_worker(_):
    torch.set_num_threads(1)


loader = torch.utils.data.DataLoader(Views(), batch_size=r["batchSize"], shuffle=True, drop_last=True, num_workers=r["workers"],
                                     persistent_workers=r["workers"] > 0, worker_init_fn=init_worker if r["workers"] > 0 else None)
depth = r["depth"]
backbone = {18: torchvision.models.resnet18, 34: torchvision.models.resnet34, 50: torchvision.models.resnet50}[depth]()
feat_dim = backbone.fc.in_features
backbone.fc = nn.Identity()
backbone.conv1 = nn.Conv2d(3, 64, 3, 1, 2, bias=False)  # solo-learn's CIFAR stem
backbone.maxpool = nn.Identity()


def head(h, inp):
    """A head as solo-learn builds it: Linear [BN] ReLU (GELU) blocks, a Linear [and a final BatchNorm1d]."""
    layers, prev = [], inp
    act = nn.GELU if h.get("activation") == "gelu" else nn.ReLU
    for d in h["hiddenDims"]:
        layers += [nn.Linear(prev, d, bias=h.get("hiddenBias", True))] + ([nn.BatchNorm1d(d)] if h["batchNorm"] else []) + [act()]
        prev = d
    out = nn.Linear(prev, h["outputDim"], bias=h.get("outputBias", "on") != "off")
    if h.get("outputBias") == "frozen":
        out.bias.requires_grad = False  # SimSiam
    layers.append(out)
    if h.get("outputBatchNorm"):
        layers.append(nn.BatchNorm1d(h["outputDim"], affine=h.get("outputBatchNormAffine", False)))
    return nn.Sequential(*layers)


M, L = r["method"], r["loss"]
projector = head(r["projector"], feat_dim)
prototypes = None
if M in ("dino", "swav", "nnclr"):
    # solo-learn's DINOHead / DINOLoss, SinkhornKnopp / swav_loss_func, nnclr_loss_func, and the multi-crop
    # forward by resolution, as the fixture writes them (scripts/fixtures/prototypes.py).
    from prototypes import DINOHead, DINOLoss, SinkhornKnopp, by_resolution, nnclr_loss_func, swav_loss_func  # noqa: E402


def dino_head():
    hd = r["projector"]["hiddenDims"]
    assert len(set(hd)) == 1, "DINOHead has one hidden width"
    return DINOHead(feat_dim, int(L["numPrototypes"]), hd[0], r["projector"]["outputDim"], bool(L["normLastLayer"]), len(hd) + 1)


if M == "dino":
    projector = dino_head()  # the student's head; the teacher's is another, initialised as a copy below
    dino_loss = DINOLoss(int(L["numPrototypes"]), L["warmupTeacherTemperature"], L["teacherTemperature"], int(L["warmupTeacherTemperatureEpochs"]),
                         r["epochs"], L["studentTemperature"], L["centerMomentum"])
if M == "swav":
    prototypes = nn.utils.weight_norm(nn.Linear(r["projector"]["outputDim"], int(L["numPrototypes"]), bias=False))
    prototypes.weight_g.data.fill_(1)
    prototypes.weight_g.requires_grad = False
    sk = SinkhornKnopp(int(L["sinkhornIterations"]), L["sinkhornEpsilon"], 1)
    swav_queue = torch.zeros(2, int(L["queueSize"]), r["projector"]["outputDim"]) if L["queueSize"] > 0 else None
if M == "nnclr":
    nn_queue = F.normalize(torch.randn(int(L["queueSize"]), r["projector"]["outputDim"]), dim=1)
    nn_ptr = 0
predictor = head(r["predictor"], r["projector"]["outputDim"]) if r.get("predictor") else None
num_classes = int(train_y.max()) + 1
classifier = nn.Linear(feat_dim, num_classes)
backbone = backbone.to(memory_format=mem)
# BYOL / MoCo v3: a teacher (solo-learn's BaseMomentumMethod: copies with requires_grad False, EMA after each step).
momentum = r.get("momentum")
if momentum:
    momentum_backbone = copy.deepcopy(backbone)
    momentum_projector = dino_head() if M == "dino" else copy.deepcopy(projector)  # weight_norm modules do not deepcopy
    with torch.no_grad():
        for t_, s_ in zip(momentum_projector.parameters(), projector.parameters()):
            t_.copy_(s_)
    for p_ in list(momentum_backbone.parameters()) + list(momentum_projector.parameters()):
        p_.requires_grad = False

o = r["optimizer"]
steps_per_epoch = len(train_x) // r["batchSize"]
total_steps = r["epochs"] * steps_per_epoch
warmup_steps = round(r["warmupEpochs"] * steps_per_epoch)
trainable = lambda m: [p_ for p_ in m.parameters() if p_.requires_grad]  # noqa: E731
groups = [{"params": trainable(backbone)}, {"params": trainable(projector)}]
if predictor is not None:
    groups.append({"params": trainable(predictor)})
if prototypes is not None:
    groups.append({"params": trainable(prototypes)})
static_group = len(groups) - 1 if r["method"] == "simsiam" else None  # solo-learn: SimSiam's predictor at a fixed lr
groups.append({"params": classifier.parameters(), "lr": o["classifierLr"], "weight_decay": 0})
if o.get("name") == "sgd":
    opt = torch.optim.SGD(groups, lr=o["lr"], momentum=o["momentum"], weight_decay=o["weightDecay"])
else:
    opt = LARS(groups, lr=o["lr"], momentum=o["momentum"], weight_decay=o["weightDecay"], eta=o["eta"], clip_lr=o["clipLr"],
               exclude_bias_n_norm=o["excludeBiasAndNorm"])


# solo-learn's LinearWarmupCosineAnnealingLR (its chainable form), stepped once per optimizer step.
sched = LinearWarmupCosineAnnealingLR(opt, warmup_steps, total_steps, r["warmupStartLr"] if warmup_steps > 0 else o["lr"], r["minLr"])
if static_group is not None:
    opt.param_groups[static_group]["lr"] = o["lr"]


L = r["loss"]


def byol_loss(p, z):
    return 2 - 2 * F.cosine_similarity(p, z.detach(), dim=-1).mean()


def mocov3_loss(q, k, t):
    q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
    return F.cross_entropy(torch.einsum("nc,mc->nm", [q, k]) / t, torch.arange(q.size(0))) * (2 * t)


def ssl_loss(zs, ps=None, ks=None):
    m = r["method"]
    if m == "byol":
        return byol_loss(ps[1], ks[0]) + byol_loss(ps[0], ks[1])
    if m == "mocov3":
        return mocov3_loss(ps[0], ks[1], L["temperature"]) + mocov3_loss(ps[1], ks[0], L["temperature"])
    if m == "simsiam":
        return -F.cosine_similarity(ps[0], zs[1].detach(), dim=-1).mean() / 2 - F.cosine_similarity(ps[1], zs[0].detach(), dim=-1).mean() / 2
    if m == "vicreg":
        return vicreg(zs[0], zs[1], L["simWeight"], L["varWeight"], L["covWeight"])[0]
    if m == "barlow":
        return barlow(zs[0], zs[1], L["lambda"], L["scale"])[0]
    if m == "simclr":
        return simclr(torch.stack(zs), L["temperature"])[0]
    return tcr(torch.stack(zs), L["eps"], L["lambda"])[0]


def as_tensor(x):
    t = torch.from_numpy(x).permute(0, 3, 1, 2).float().div(255)
    return ((t - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)).contiguous(memory_format=mem)


@torch.no_grad()
def features(x):
    backbone.eval()
    out = torch.cat([backbone(as_tensor(x[i: i + 256])) for i in range(0, len(x), 256)])
    backbone.train()
    return out


def evaluate():
    a, b = features(train_x), features(test_x)
    return solo_knn(a, torch.from_numpy(train_y), b, torch.from_numpy(test_y), r["knnK"], r["knnTemperature"], "cosine")


def emit(**kw):
    print(json.dumps(kw), flush=True)


t0 = time.perf_counter()
eval_seconds = 0.0
e0 = time.perf_counter()
top1, top5 = evaluate()
eval_seconds += time.perf_counter() - e0
emit(epoch=0, top1=top1, top5=top5, seconds=time.perf_counter() - t0, trainSeconds=0.0, loss=None)
step = 0
for epoch in range(1, r["epochs"] + 1):
    losses = []
    for xs, y in loader:
        xs = [x.contiguous(memory_format=mem) for x in xs]
        n = xs[0].size(0)
        if M in ("dino", "swav"):
            # Multi-crop: the backbone once per resolution, the head once over all crops; the classifier on the large crops.
            f_all = by_resolution(backbone, xs)
            feats = list(f_all.split(n))[:2]
            if M == "dino":
                with torch.no_grad():
                    pm = momentum_projector(by_resolution(momentum_backbone, xs[:2]))
                dino_loss.epoch = epoch - 1
                loss = dino_loss(projector(f_all), pm, len(xs), 2)
            else:
                z = F.normalize(projector(f_all))
                zs, ps = list(z.split(n)), list(prototypes(z).split(n))
                with torch.no_grad():
                    use_queue = swav_queue is not None and epoch - 1 >= L["queueStartEpoch"]
                    assignments = [sk(torch.cat((ps[i], prototypes(swav_queue[i]))) if use_queue else ps[i])[:n] for i in range(2)]
                loss = swav_loss_func(ps, assignments, L["temperature"])
                if swav_queue is not None:
                    zq = torch.stack(zs[:2]).detach()
                    swav_queue[:, n:] = swav_queue[:, :-n].clone()
                    swav_queue[:, :n] = zq
        elif M == "nnclr":
            feats = [backbone(x) for x in xs]
            z1, z2 = [projector(f) for f in feats]
            p1, p2 = predictor(z1), predictor(z2)
            z1, z2 = F.normalize(z1, dim=-1), F.normalize(z2, dim=-1)
            with torch.no_grad():
                nn1, nn2 = nn_queue[(z1 @ nn_queue.T).max(dim=1)[1]], nn_queue[(z2 @ nn_queue.T).max(dim=1)[1]]
            loss = nnclr_loss_func(nn1, p2, L["temperature"]) / 2 + nnclr_loss_func(nn2, p1, L["temperature"]) / 2
            with torch.no_grad():
                nn_queue[nn_ptr:nn_ptr + n] = z1
                nn_ptr = (nn_ptr + n) % len(nn_queue)
        elif r["concatViews"]:
            f = backbone(torch.cat(xs))
            feats = [f]
            zs = list(projector(f).chunk(len(xs)))
        else:
            feats = [backbone(x) for x in xs]
            zs = [projector(f) for f in feats]
        if M not in ("dino", "swav", "nnclr"):
            ps = [predictor(z) for z in zs] if predictor is not None else None
            ks = None
            if momentum:
                with torch.no_grad():
                    ks = [momentum_projector(momentum_backbone(x)) for x in xs]
            loss = ssl_loss(zs, ps, ks)
        logits = classifier(torch.cat(feats).detach())
        total = loss + F.cross_entropy(logits, y.repeat(logits.size(0) // y.size(0)))
        opt.zero_grad(set_to_none=True)
        total.backward()
        if M == "dino":  # solo-learn's on_after_backward: clipping, the last layer frozen early on
            if L["clipGrad"]:
                for p_ in backbone.parameters():
                    if p_.grad is not None:
                        c_ = L["clipGrad"] / (p_.grad.data.norm(2) + 1e-6)
                        if c_ < 1:
                            p_.grad.data.mul_(c_)
            if epoch - 1 < L["freezeLastLayerEpochs"]:
                for p_ in projector.last_layer.parameters():
                    p_.grad = None
        if M == "swav" and epoch - 1 < L["freezePrototypesEpochs"]:
            for p_ in prototypes.parameters():
                p_.grad = None
        opt.step()
        if momentum:  # solo-learn's MomentumUpdater with tau(step)
            tau = momentum["finalTau"] - (momentum["finalTau"] - momentum["baseTau"]) * (math.cos(math.pi * step / total_steps) + 1) / 2
            with torch.no_grad():
                for t_, s_ in zip(list(momentum_backbone.parameters()) + list(momentum_projector.parameters()),
                                  list(backbone.parameters()) + list(projector.parameters())):
                    t_.data = tau * t_.data + (1 - tau) * s_.data
        sched.step()
        if static_group is not None:
            opt.param_groups[static_group]["lr"] = o["lr"]
        losses.append(loss.item())
        if not math.isfinite(losses[-1]):
            emit(diverged=True, step=step, epoch=epoch, loss=losses[-1], seconds=time.perf_counter() - t0)
            sys.exit(3)
        step += 1
    e0 = time.perf_counter()
    top1, top5 = evaluate()
    eval_seconds += time.perf_counter() - e0
    now = time.perf_counter() - t0
    emit(epoch=epoch, top1=top1, top5=top5, seconds=now, trainSeconds=now - eval_seconds, loss=sum(losses) / max(1, len(losses)))
emit(done=True, seconds=time.perf_counter() - t0, evalSeconds=eval_seconds)
