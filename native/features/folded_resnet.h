// An inference-only copy of a ResNet for feature extraction on CPU: every eval-mode BatchNorm folded into
// the convolution before it (w' = w·γ/√(σ²+ε), b' = β − μ·γ/√(σ²+ε)) and the weights pre-packed once in
// oneDNN's blocked layout, activations kept in that layout between layers (what torch.utils.mkldnn and
// torch.jit.freeze do in Python). Same layer4 map as ResNetImpl::featureMap in eval mode, up to rounding.
#pragma once
#include <ATen/ATen.h>

#include <optional>
#include <vector>

#include "models/resnet.h"

namespace tssl::features {

class FoldedResNet {
 public:
  /// Whether `net` can be folded here (CPU float32 weights and a LibTorch built with oneDNN).
  static bool supported(const ResNetImpl& net);
  /// Snapshots the current weights and running statistics of `net`.
  explicit FoldedResNet(const ResNetImpl& net);
  /// (N, 3, H, W) float32 CPU → the dense (N, C, H', W') layer4 map.
  at::Tensor featureMap(const at::Tensor& images) const;

 private:
  struct Conv {
    at::Tensor weight, bias;  // oneDNN tensors
    std::vector<int64_t> stride, padding;
  };
  struct Block {
    std::vector<Conv> convs;  // 2 (basic) or 3 (bottleneck), ReLU after all but the last
    std::optional<Conv> downsample;
  };
  /// `padding` < 0: kernel / 2.
  static Conv fold(const torch::nn::Conv2d& conv, const torch::nn::BatchNorm2d& bn, int64_t padding = -1);
  static at::Tensor run(const Conv& c, const at::Tensor& x);

  Conv stem_;
  bool maxPool_ = false;
  std::vector<Block> blocks_;
};

}  // namespace tssl::features
