// BatchNorm, the residual add and the ReLU after it, as one pass forward and two backward (CPU, channels_last or
// (N, C) activations, float32 or bfloat16, AVX-512). Unfused, a ResNet block's tail is BatchNorm, add and ReLU,
// each reading and writing the whole activation, forward and backward; LibTorch 1.13's bfloat16 kernels for them
// run at 8-10 GB/s, slower per element than in float32 (bench/profile on an AMX Xeon: 21 % of the bf16 step).
// Here the statistics are summed in float32 per 128 rows and then in double, the normalisation, add and ReLU are
// one pass, and the backward is one pass of sums and one of the input gradient, all in float32 arithmetic; the
// output is rounded to the activation dtype, as LibTorch's BatchNorm output is before the add. The running
// statistics update as torch::nn::BatchNorm's forward does them (momentum, or the cumulative average).
//
// Taken in training mode without a BatchNorm override (SyncBatchNorm keeps its own path) and in evaluation mode
// under no-grad; everywhere else (CUDA, other layouts, channel counts not a multiple of 16, CPUs without AVX-512,
// TORCH_SSL_FUSED_BN=0) the layer's own forward, the add and the ReLU run as before.
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/modules/batchnorm.h>

#include <string>

namespace tssl {

/// relu?(bn(x) + residual), residual optional (undefined), through the fused kernels where they apply.
at::Tensor batchNormAct(torch::nn::BatchNorm2dImpl& bn, const at::Tensor& x, const at::Tensor& residual, bool relu);
at::Tensor batchNormAct(torch::nn::BatchNorm1dImpl& bn, const at::Tensor& x, const at::Tensor& residual, bool relu);

/// Whether the fused kernels are on in this process; and why, in words (buildInfo().batchNorm).
bool fusedBatchNormEnabled();
std::string fusedBatchNormStatus();

/// The fused training-mode op on its own, for tests: batch statistics, updating runningMean / runningVar (if
/// defined) with `factor`. An undefined tensor where the fused kernels do not take these inputs.
at::Tensor fusedBatchNormActTraining(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, const at::Tensor& residual,
                                     const at::Tensor& runningMean, const at::Tensor& runningVar, double factor, double eps, bool relu);

}  // namespace tssl
