// Bags of fixed-scale patches (BagSSL; EMP-SSL's evaluation, docs/features.md, patches): square patches
// cut from each image on a grid or at random positions, each resized to the model's input size with bilinear
// interpolation (align_corners = false, no antialiasing, as torch.nn.functional.interpolate by default).
#pragma once
#include <ATen/ATen.h>

namespace tssl::features {

struct PatchOptions {
  int64_t size = 16;
  /// Grid: patches at every `stride` pixels, row-major (stride > 0, count = 0).
  int64_t stride = 0;
  /// Random: `count` patches per image at uniform positions (count > 0, stride = 0).
  int64_t count = 0;
  /// Each random image i draws its positions from a generator seeded with seed + i (its index in the whole
  /// input), so the bag of an image does not depend on batching.
  uint64_t seed = 0;
  /// Side of the resized patch (the model input); 0 = the image's own size.
  int64_t outHeight = 0, outWidth = 0;
};

int64_t patchesPerImage(const PatchOptions& options, int64_t height, int64_t width);

/// (N, C, H, W) → (N·P, C, outH, outW), the P patches of image n at rows [n·P, (n+1)·P).
/// `firstIndex` is the index of images[0] in the whole input (random positions only).
at::Tensor extractPatches(const at::Tensor& images, const PatchOptions& options, int64_t firstIndex);

}  // namespace tssl::features
