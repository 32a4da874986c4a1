"""Plots bench/learning.mjs's results: kNN top-1 against epoch and against wall-clock time, torch-ssl (solid)
and PyTorch (dashed), one colour per method. Usage: python3 learning_plot.py <learning-bench.json> <outDir>."""
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

res = json.load(open(sys.argv[1]))
out = sys.argv[2]
colors = {"vicreg": "tab:blue", "simclr": "tab:orange", "tcr": "tab:green", "barlow": "tab:red"}
title = f"Fashion-MNIST {res['trainCount']}/{res['testCount']} at {res['size']}×{res['size']}, ResNet-18, {res['threads']} threads, {res['cpu']}"
for x_key, name, xlabel in (("epoch", "learning-knn-epoch.png", "epoch"), ("seconds", "learning-knn-time.png", "wall-clock seconds (training + kNN evaluation)")):
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    for r in res["results"]:
        c = colors.get(r["method"], "black")
        for side, style in (("ours", "-"), ("py", "--")):
            if side not in r:
                continue
            rows = r[side]["rows"]
            label = f"{r['method']} seed {r['seed']} — {'torch-ssl' if side == 'ours' else 'PyTorch'}"
            ax.plot([x[x_key] for x in rows], [x["top1"] for x in rows], style, color=c, marker="o", ms=3, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("kNN top-1 (%) on the held-out subset")
    ax.set_title(title, fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    tmp = os.path.join(out, name + ".tmp.png")
    fig.savefig(tmp)
    os.replace(tmp, os.path.join(out, name))
    print(f"wrote {os.path.join(out, name)}")
