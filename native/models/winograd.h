// 3×3 stride-1 float32 convolutions as oneDNN's Winograd F(4×4, 3×3) on CPUs with AVX-512 (oneDNN 2.x's
// jit_wino_4x3:avx512_core: forward, input gradient and weight gradient). It does ~4× fewer multiplies than the
// direct convolution LibTorch runs (ideep always asks oneDNN for convolution_direct), and oneDNN's direct kernels
// are already at the machine's FMA ceiling, so this is the one way a CPU float32 step gets much faster:
// bench/profile measured 2.3-3.8× per convolution for ResNet-18's CIFAR shapes (docs/throughput.md). Its
// rounding differs from the direct sum's by ~1e-6 relative (test/winograd.test.ts compares it with PyTorch's
// float64 convolution).
//
// Built only against oneDNN 2.x headers (Debian 12's libdnnl-dev, the oneDNN LibTorch 1.13 links); elsewhere, on
// CPUs without AVX-512, for shapes oneDNN's Winograd does not take, or with TORCH_SSL_WINOGRAD=0, convolve()
// (models/conv.h) keeps LibTorch's own convolution.
#pragma once
#include <ATen/ATen.h>

#include <string>

namespace tssl {

// Output positions (batch × map) below which convolve() stays direct: oneDNN's Winograd transforms the weights on
// every call (C·K·36 values), which pays off only over enough positions. Per layer, ResNet-18's inference forward
// (AMD EPYC, AVX-512, 2 threads; Winograd / direct ms): layer4's 512→512 at 5×5 took 21.0 ms with Winograd for one
// image, 16.7 / 5.2 for 4 (on the grid), 25.3 / 21.6 for 16 and 34.2 / 39.1 for 32; layer3's 256→256 at 9×9 4.4 /
// 1.6 for one, 6.2 / 4.4 for 4 and 6.9 / 9.2 for 8; layer1's and layer2's are even at 1156 positions. Training
// batches are far above it.
constexpr int64_t kMinWinogradPositions = 600;

/// Whether this build has the Winograd path and this process may use it (AVX-512, not TORCH_SSL_WINOGRAD=0).
bool winogradEnabled();
/// Why it is on or off, in words (buildInfo().conv).
std::string winogradStatus();

/// conv2d(x, w, stride 1, padding 1) with x (N, C, H, W) and w (O, C, 3, 3) float32 on CPU, differentiable in both,
/// as oneDNN's Winograd; an undefined tensor when the path is off or oneDNN has no Winograd kernel for this shape.
at::Tensor winogradConv3x3(const at::Tensor& x, const at::Tensor& w);

}  // namespace tssl
