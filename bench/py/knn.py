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

sys.path.insert(0, __file__.rsplit("/", 3)[0] + "/scripts/fixtures")
from _solo_knn import solo_knn  # noqa: E402

threads, tr, trl, te, tel, k, T, distances = sys.argv[1:9]
torch.set_num_threads(int(threads))
k, T = int(k), float(T)
train_features, test_features = torch.from_numpy(np.load(tr)), torch.from_numpy(np.load(te))
train_targets, test_targets = torch.from_numpy(np.load(trl)).long(), torch.from_numpy(np.load(tel)).long()


out = {}
for d in distances.split(","):
    t0 = time.perf_counter()
    top1, top5 = solo_knn(train_features, train_targets, test_features, test_targets, k, T, d)
    out[d] = {"seconds": time.perf_counter() - t0, "top1": top1, "top5": top5}
print(json.dumps(out))
