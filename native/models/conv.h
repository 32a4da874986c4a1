// The models' convolutions go through convolve(). One case is computed differently from the layer's own
// forward: training under CPU bf16 autocast on a CPU with AMX, a convolution whose output map is small
// (≤ 6×6: ResNet's layer4 on CIFAR-size inputs) gets its weight gradient from one bf16 GEMM over the unfolded
// input, channels_last order, instead of oneDNN 2.x's backward-weights kernel, which runs such shapes at a
// fifth of the AMX GEMM's rate (bench/profile: 512×5×5 at ~330 GFLOP/s against ~1300 for the GEMM). The
// forward and the input gradient stay oneDNN's; the result is the same sum in another order. And a stride-1
// convolution whose output is 34 wide (≥ 30, ≡ 2 mod 4: the CIFAR stem and layer1) gets its weight gradient from
// oneDNN's own kernel run 2 columns wider, at 36, where it is ~2.4× faster (convWeightGradPaddedWidth).
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/modules/conv.h>

namespace tssl {

/// conv.forward(x), or the small-map path described above where it applies.
at::Tensor convolve(torch::nn::Conv2dImpl& conv, const at::Tensor& x);

/// The weight gradient of a convolution (groups 1, dilation 1) as one GEMM: gradOutput (N, O, Ho, Wo) and input
/// (N, C, H, W) give dW (O, C, kh, kw) in channels_last strides, in their dtype (tests compare it with PyTorch's).
at::Tensor convWeightGradByGemm(const at::Tensor& gradOutput, const at::Tensor& input, int64_t kh, int64_t kw, at::IntArrayRef stride,
                                at::IntArrayRef padding);

/// The same weight gradient (stride 1) from oneDNN's backward with the output map 2 columns wider (zero gradient
/// there), which oneDNN 2.6 runs ~2.4× faster in bf16 when the output is 34 wide (ResNet's CIFAR layer1 and stem).
at::Tensor convWeightGradPaddedWidth(const at::Tensor& gradOutput, const at::Tensor& input, const at::Tensor& weight, at::IntArrayRef padding);

/// Four images of (N, C, H, W) side by side in a 2×2 grid with zero separators, (N/4, C, 2H+1, 2W+1), and back:
/// a 3×3 stride-1 padding-1 convolution of the grid is the four images' convolutions (small-map path, bf16 forward
/// and input gradient; off with TORCH_SSL_GRID_CONV=0).
at::Tensor packGrid(const at::Tensor& x);
at::Tensor unpackGrid(const at::Tensor& grid, int64_t H, int64_t W);
bool gridConvEnabled();

/// Whether the small-map path is on in this process (LibTorch 1.x with oneDNN 2.x, an AMX CPU, and not turned
/// off with TORCH_SSL_SMALL_MAP_CONV=0).
bool smallMapConvEnabled();

}  // namespace tssl
