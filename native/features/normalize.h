// Raw pixels → model input. uint8 (N, H, W, 3) is scaled and normalised per channel exactly as torchvision's
// ToTensor + Normalize compute it ((x / 255 − mean) / std); float32 (N, 3, H, W) is taken as already normalised.
#pragma once
#include <ATen/ATen.h>

#include <array>
#include <optional>

namespace tssl::features {

struct ChannelStats {
  std::array<double, 3> mean{0, 0, 0};
  std::array<double, 3> std{1, 1, 1};
};

/// Float NCHW images on `device`. For uint8 input the result is channels_last-strided (a permuted NHWC
/// buffer), which oneDNN convolutions take without a copy. `stats` = nullopt: only the /255 scaling.
at::Tensor toModelInput(const at::Tensor& pixels, const std::optional<ChannelStats>& stats, at::Device device);

}  // namespace tssl::features
