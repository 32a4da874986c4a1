#include "features/normalize.h"

#include "common/error.h"

namespace tssl::features {

at::Tensor toModelInput(const at::Tensor& pixels, const std::optional<ChannelStats>& stats, at::Device device) {
  TSSL_CHECK(pixels.defined(), "ERR_INVALID_ARG", "images are undefined");
  const auto shape = shapeString(pixels.sizes().vec());
  if (pixels.scalar_type() == at::kByte) {
    TSSL_CHECK(pixels.dim() == 4 && pixels.size(3) == 3, "ERR_TORCH_SHAPE",
               "uint8 images must have shape (N, H, W, 3) (RGB, channels last) but received ", shape);
    TSSL_CHECK(pixels.size(0) > 0, "ERR_TORCH_SHAPE", "no images: shape ", shape);
    at::Tensor x = pixels.to(device).to(at::kFloat).div_(255.0);
    if (stats) {
      auto opts = at::TensorOptions().dtype(at::kFloat).device(device);
      at::Tensor mean = at::tensor(std::vector<double>(stats->mean.begin(), stats->mean.end()), opts.dtype(at::kDouble)).to(opts);
      at::Tensor stdev = at::tensor(std::vector<double>(stats->std.begin(), stats->std.end()), opts.dtype(at::kDouble)).to(opts);
      x.sub_(mean).div_(stdev);
    }
    return x.permute({0, 3, 1, 2});
  }
  TSSL_CHECK(pixels.scalar_type() == at::kFloat, "ERR_TORCH_DTYPE",
             "images must be uint8 (N, H, W, 3) raw pixels or float32 (N, 3, H, W) normalised, but received ", c10::toString(pixels.scalar_type()),
             " ", shape);
  TSSL_CHECK(pixels.dim() == 4 && pixels.size(1) == 3, "ERR_TORCH_SHAPE",
             "float32 images must have shape (N, 3, H, W) (RGB, channels first) but received ", shape);
  TSSL_CHECK(pixels.size(0) > 0, "ERR_TORCH_SHAPE", "no images: shape ", shape);
  return pixels.to(device);
}

}  // namespace tssl::features
