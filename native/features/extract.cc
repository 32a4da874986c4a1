#include "features/extract.h"

#include "common/error.h"

namespace tssl::features {

at::Tensor extractBatch(const ModelFn& featureMap, const ModelFn& projector, const at::Tensor& images, const ExtractOptions& options,
                        int64_t firstIndex) {
  TSSL_CHECK(images.dim() == 4 && images.size(1) == 3, "ERR_TORCH_SHAPE", "images must be (N, 3, H, W) but received ",
             shapeString(images.sizes().vec()));
  TSSL_CHECK(!projector || options.pooling.kind == PoolingKind::Global, "ERR_INVALID_ARG",
             "projection-space features need global pooling: the projector takes the pooled backbone vector");
  const int64_t n = images.size(0);
  at::Tensor x = options.patches ? extractPatches(images, *options.patches, firstIndex) : images;
  if (options.channelsLast) x = x.contiguous(at::MemoryFormat::ChannelsLast);
  at::Tensor features = aggregateFeatureMap(featureMap(x), options.pooling);
  if (projector) features = projector(features);
  if (options.patches) {
    // Bag of patches: the image's representation is the plain mean of its patch embeddings.
    const int64_t perImage = x.size(0) / n;
    auto shape = features.sizes().vec();
    shape[0] = perImage;
    shape.insert(shape.begin(), n);
    features = features.reshape(shape).mean(1);
  }
  return features.contiguous();
}

}  // namespace tssl::features
