#include "features/aggregate.h"

#include "common/error.h"

namespace tssl::features {

at::Tensor aggregateFeatureMap(const at::Tensor& map, const Pooling& pooling) {
  TSSL_CHECK(map.dim() == 4, "ERR_TORCH_SHAPE", "a feature map must be (N, C, H, W) but received ", shapeString(map.sizes().vec()));
  switch (pooling.kind) {
    case PoolingKind::Global:
      // torchvision: AdaptiveAvgPool2d((1, 1)) then flatten.
      return at::adaptive_avg_pool2d(map, {1, 1}).flatten(1);
    case PoolingKind::Window: {
      TSSL_CHECK(pooling.kernel > 0 && pooling.stride > 0, "ERR_INVALID_ARG", "pooling kernel and stride must be positive");
      TSSL_CHECK(map.size(2) >= pooling.kernel && map.size(3) >= pooling.kernel, "ERR_TORCH_SHAPE", "the feature map is ", map.size(2), "×",
                 map.size(3), ", smaller than the pooling kernel ", pooling.kernel,
                 " (a CIFAR-stem ResNet at 32×32 gives 5×5; use a larger input or a smaller kernel)");
      return at::avg_pool2d(map, {pooling.kernel, pooling.kernel}, {pooling.stride, pooling.stride}).flatten(1);
    }
    case PoolingKind::None:
      return map;
  }
  return map;
}

}  // namespace tssl::features
