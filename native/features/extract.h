// One batch of feature extraction: [patches →] backbone feature map → aggregation [→ projector] [→ mean
// over each image's patches]. The caller holds the models in eval mode and runs this under InferenceMode.
#pragma once
#include <ATen/ATen.h>

#include <functional>
#include <optional>

#include "features/aggregate.h"
#include "features/patches.h"

namespace tssl::features {

using ModelFn = std::function<at::Tensor(const at::Tensor&)>;

struct ExtractOptions {
  Pooling pooling;
  std::optional<PatchOptions> patches;
  /// Convert the model input to channels_last before the backbone (oneDNN's preferred layout on CPU).
  bool channelsLast = true;
};

/// `images`: normalised float (N, 3, H, W) (features::toModelInput). `projector` empty: embedding space.
/// `firstIndex`: the index of images[0] in the whole input (seeds random patch positions).
/// Returns float32 (N, D) — or (N, C, H, W) for PoolingKind::None — on the images' device.
at::Tensor extractBatch(const ModelFn& featureMap, const ModelFn& projector, const at::Tensor& images, const ExtractOptions& options,
                        int64_t firstIndex);

}  // namespace tssl::features
