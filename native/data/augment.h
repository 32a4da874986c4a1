// Batched data augmentation on float image tensors (N, 3, H, W) in [0, 1], on any device, with
// torchvision's functional semantics (resized_crop, adjust_brightness/contrast/saturation/hue,
// rgb_to_grayscale, gaussian_blur, solarize, hflip, normalize). Random parameters are drawn on the host
// from a seeded std::mt19937_64, so a (seed, step) pair reproduces a batch exactly (resume).
#pragma once
#include <ATen/ATen.h>

#include <array>
#include <random>
#include <vector>

namespace tssl::data {

/// One view's pipeline, in solo-learn's order: RandomResizedCrop → ColorJitter (random order, p) →
/// RandomGrayscale → GaussianBlur (p) → Solarize (p) → HorizontalFlip (p) → Normalize.
// One view's pipeline; every field is set by the caller (defaults: lib/train-config.ts / lib/augment.ts).
struct ViewAugment {
  int64_t size{};
  double scaleMin{}, scaleMax{};
  double ratioMin{}, ratioMax{};
  bool bicubic{};  // solo-learn: BICUBIC; EMP-SSL CIFAR patches: bilinear
  double jitterP{}, brightness{}, contrast{}, saturation{}, hue{};
  double grayP{};
  double blurP{}, sigmaMin{}, sigmaMax{};
  int64_t blurKernel{};  // 0: odd size ≈ 10% of the output side (at least 3)
  double solarizeP{};
  double flipP{};
  std::vector<double> mean, std;
};

struct CropBox {
  int64_t top, left, height, width;
};

/// torchvision RandomResizedCrop.get_params (10 attempts, then the centre-crop fallback).
CropBox sampleCrop(std::mt19937_64& rng, int64_t height, int64_t width, const ViewAugment& a);

// ---- functional ops with explicit per-image parameters (tested against torchvision.functional) ----
at::Tensor resizedCrop(const at::Tensor& x, const std::vector<CropBox>& boxes, int64_t size, bool bicubic);
at::Tensor adjustBrightness(const at::Tensor& x, const at::Tensor& factor);  // factor: (N)
at::Tensor adjustContrast(const at::Tensor& x, const at::Tensor& factor);
at::Tensor adjustSaturation(const at::Tensor& x, const at::Tensor& factor);
at::Tensor adjustHue(const at::Tensor& x, const at::Tensor& factor);  // factor in [−0.5, 0.5]
at::Tensor grayscale(const at::Tensor& x);                            // 3-channel output
at::Tensor gaussianBlur(const at::Tensor& x, int64_t kernel, const at::Tensor& sigma);
at::Tensor solarize(const at::Tensor& x, double threshold);
at::Tensor hflip(const at::Tensor& x);
at::Tensor normalize(const at::Tensor& x, const std::vector<double>& mean, const std::vector<double>& std);

/// Applies `a` to a uint8 (N, H, W, 3) or float (N, 3, H, W) [0,1] batch, drawing parameters from rng.
/// The output is float32 (N, 3, size, size), normalised, on x's device.
at::Tensor augmentBatch(const at::Tensor& x, const ViewAugment& a, std::mt19937_64& rng);

/// uint8 NHWC → float NCHW in [0, 1].
at::Tensor toFloatImages(const at::Tensor& x);

}  // namespace tssl::data
