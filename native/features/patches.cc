#include "features/patches.h"

#include <ATen/CPUGeneratorImpl.h>

#include "common/error.h"

namespace tssl::features {

namespace {

void checkOptions(const PatchOptions& o, int64_t height, int64_t width) {
  TSSL_CHECK(o.size > 0, "ERR_INVALID_ARG", "patch size must be positive, got ", o.size);
  TSSL_CHECK((o.stride > 0) != (o.count > 0), "ERR_INVALID_ARG", "patches need either a stride (grid) or a count (random positions), not both");
  TSSL_CHECK(o.size <= height && o.size <= width, "ERR_TORCH_SHAPE", "patch size ", o.size, " exceeds the image size ", height, "×", width);
}

}  // namespace

int64_t patchesPerImage(const PatchOptions& o, int64_t height, int64_t width) {
  checkOptions(o, height, width);
  if (o.count > 0) return o.count;
  return ((height - o.size) / o.stride + 1) * ((width - o.size) / o.stride + 1);
}

at::Tensor extractPatches(const at::Tensor& images, const PatchOptions& o, int64_t firstIndex) {
  TSSL_CHECK(images.dim() == 4, "ERR_TORCH_SHAPE", "images must be (N, C, H, W), got ", shapeString(images.sizes().vec()));
  const int64_t n = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
  const int64_t perImage = patchesPerImage(o, h, w);
  at::Tensor patches;
  if (o.stride > 0) {
    // (N, C, nh, nw, s, s) → (N, nh, nw, C, s, s): row-major grid positions per image.
    patches = images.unfold(2, o.size, o.stride).unfold(3, o.size, o.stride).permute({0, 2, 3, 1, 4, 5}).reshape({n * perImage, c, o.size, o.size});
  } else {
    at::Tensor ys = at::empty({n, o.count}, at::kLong), xs = at::empty({n, o.count}, at::kLong);
    for (int64_t i = 0; i < n; ++i) {
      // Same stream as torch.Generator().manual_seed(seed + i) followed by two torch.randint calls.
      at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(o.seed + static_cast<uint64_t>(firstIndex + i));
      ys[i].copy_(at::randint(0, h - o.size + 1, {o.count}, gen, at::kLong));
      xs[i].copy_(at::randint(0, w - o.size + 1, {o.count}, gen, at::kLong));
    }
    at::Tensor imageIndex = at::arange(n, at::kLong).unsqueeze(1).expand({n, o.count});
    auto dev = images.device();
    // Every s×s window as a view (N, C, H−s+1, W−s+1, s, s); advanced indexing gathers the chosen ones.
    at::Tensor windows = images.unfold(2, o.size, 1).unfold(3, o.size, 1);
    patches = windows.index({imageIndex.reshape(-1).to(dev), at::indexing::Slice(), ys.reshape(-1).to(dev), xs.reshape(-1).to(dev)});
  }
  const int64_t outH = o.outHeight > 0 ? o.outHeight : h, outW = o.outWidth > 0 ? o.outWidth : w;
  if (outH != o.size || outW != o.size) patches = at::upsample_bilinear2d(patches, {outH, outW}, /*align_corners=*/false);
  return patches;
}

}  // namespace tssl::features
