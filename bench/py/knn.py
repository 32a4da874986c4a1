"""Python PyTorch reference for bench/knn.mjs: solo-learn's WeightedKNNClassifier.compute (solo/utils/knn.py,
transcribed; default max_distance_matrix_size = 5e6) on the same .npy features. Prints a JSON line of
{distance: {seconds, top1, top5}} (compute only; loading the files is not timed on either side).

usage: knn.py <threads> <train.npy> <train_labels.npy> <test.npy> <test_labels.npy> <k> <T> <distances,…>
"""
import json
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

threads, tr, trl, te, tel, k, T, distances = sys.argv[1:9]
torch.set_num_threads(int(threads))
k, T = int(k), float(T)
train_features, test_features = torch.from_numpy(np.load(tr)), torch.from_numpy(np.load(te))
train_targets, test_targets = torch.from_numpy(np.load(trl)).long(), torch.from_numpy(np.load(tel)).long()


@torch.no_grad()
def compute(train_features, train_targets, test_features, test_targets, k, T, distance_fx, max_distance_matrix_size=int(5e6), epsilon=1e-5):
    if distance_fx == "cosine":
        train_features = F.normalize(train_features)
        test_features = F.normalize(test_features)
    num_classes = torch.unique(test_targets).numel()
    num_train_images = train_targets.size(0)
    num_test_images = test_targets.size(0)
    chunk_size = min(max(1, max_distance_matrix_size // num_train_images), num_test_images)
    k = min(k, num_train_images)
    top1, top5, total = 0.0, 0.0, 0
    retrieval_one_hot = torch.zeros(k, num_classes)
    for idx in range(0, num_test_images, chunk_size):
        features = test_features[idx: min((idx + chunk_size), num_test_images), :]
        targets = test_targets[idx: min((idx + chunk_size), num_test_images)]
        batch_size = targets.size(0)
        if distance_fx == "cosine":
            similarities = torch.mm(features, train_features.t())
        else:
            similarities = 1 / (torch.cdist(features, train_features) + epsilon)
        similarities, indices = similarities.topk(k, largest=True, sorted=True)
        candidates = train_targets.view(1, -1).expand(batch_size, -1)
        retrieved_neighbors = torch.gather(candidates, 1, indices)
        retrieval_one_hot.resize_(batch_size * k, num_classes).zero_()
        retrieval_one_hot.scatter_(1, retrieved_neighbors.view(-1, 1), 1)
        if distance_fx == "cosine":
            similarities = similarities.clone().div_(T).exp_()
        probs = torch.sum(torch.mul(retrieval_one_hot.view(batch_size, -1, num_classes), similarities.view(batch_size, -1, 1)), 1)
        _, predictions = probs.sort(1, True)
        correct = predictions.eq(targets.data.view(-1, 1))
        top1 = top1 + correct.narrow(1, 0, 1).sum().item()
        top5 = top5 + correct.narrow(1, 0, min(5, k, correct.size(-1))).sum().item()
        total += targets.size(0)
    return top1 * 100.0 / total, top5 * 100.0 / total


out = {}
for d in distances.split(","):
    t0 = time.perf_counter()
    top1, top5 = compute(train_features, train_targets, test_features, test_targets, k, T, d)
    out[d] = {"seconds": time.perf_counter() - t0, "top1": top1, "top5": top5}
print(json.dumps(out))
