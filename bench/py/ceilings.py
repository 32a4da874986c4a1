"""The machine's ceilings for bench/profile.mjs, measured with Debian's PyTorch on the same LibTorch, oneDNN and
OpenBLAS the addon links: a 3x3 64->64 convolution on 128x64x32x32 channels_last (forward, backward data,
backward weights) in float32 and bfloat16, 2048^2 GEMMs (float32: OpenBLAS; bfloat16: oneDNN) and the memory
bandwidth of a 256 MiB copy. Prints one JSON line: GFLOP/s and GB/s."""
import json
import sys
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(int(sys.argv[1]))


def best(f, n=4):
    f()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return min(times)


out = {}
for name, dt in [("fp32", torch.float32), ("bf16", torch.bfloat16)]:
    x = torch.randn(128, 64, 32, 32).to(dt).contiguous(memory_format=torch.channels_last)
    w = torch.randn(64, 64, 3, 3).to(dt).contiguous(memory_format=torch.channels_last)
    g = F.conv2d(x, w, padding=1).contiguous(memory_format=torch.channels_last)
    flops = 2 * g.numel() * 64 * 9
    bwd = lambda mask: torch.ops.aten.convolution_backward(g, x, w, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1, mask)
    out[f"conv_fwd_{name}"] = flops / best(lambda: F.conv2d(x, w, padding=1)) / 1e9
    out[f"conv_bwd_data_{name}"] = flops / best(lambda: bwd([True, False, False])) / 1e9
    out[f"conv_bwd_weight_{name}"] = flops / best(lambda: bwd([False, True, False])) / 1e9
    a = torch.randn(2048, 2048).to(dt)
    out[f"gemm_{name}"] = 2 * 2048**3 / best(lambda: a @ a) / 1e9
src = torch.empty(64 * 1024 * 1024)
dst = torch.empty_like(src)
out["copy_GBps"] = 2 * src.numel() * 4 / best(lambda: dst.copy_(src)) / 1e9
print(json.dumps(out))
