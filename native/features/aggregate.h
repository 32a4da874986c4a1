// Aggregation of a layer4 feature map into one vector per image. "Local aggregation" (BagSSL appendix C.4,
// the paper's §3 and docs/features.md) is an average pool with kernel 3, stride 2, no padding, then flatten in
// (C, H', W') order: a solo-learn CIFAR ResNet-18 at 32×32 gives 512×5×5 → 512×2×2 = 2048.
#pragma once
#include <ATen/ATen.h>

namespace tssl::features {

enum class PoolingKind { Global, Window, None };

struct Pooling {
  PoolingKind kind = PoolingKind::Global;
  int64_t kernel = 3;  // Window only
  int64_t stride = 2;
};

/// (N, C, H, W) → (N, C) global average, (N, C·H'·W') windowed average, or the map itself (None).
at::Tensor aggregateFeatureMap(const at::Tensor& map, const Pooling& pooling);

}  // namespace tssl::features
