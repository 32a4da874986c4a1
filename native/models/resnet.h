// ResNet-18/34/50 as torchvision builds them (models/resnet.py), with torchvision's parameter and buffer
// names, plus solo-learn's CIFAR stem. `fc` exists only when numClasses > 0 (solo-learn replaces it by
// Identity, so its checkpoints have no fc keys).
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include <string>
#include <vector>

namespace tssl {

/// Two 3×3 convolutions (ResNet-18/34). Stride sits on conv1, as in torchvision.
struct BasicBlockImpl : torch::nn::Module {
  static constexpr int64_t expansion = 1;
  BasicBlockImpl(int64_t inplanes, int64_t planes, int64_t stride, torch::nn::Sequential downsample);
  at::Tensor forward(const at::Tensor& x);

  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  torch::nn::Sequential downsample{nullptr};
};
TORCH_MODULE(BasicBlock);

/// 1×1 → 3×3 → 1×1 with expansion 4 (ResNet-50). Stride sits on the 3×3 conv2 (torchvision "v1.5").
struct BottleneckImpl : torch::nn::Module {
  static constexpr int64_t expansion = 4;
  BottleneckImpl(int64_t inplanes, int64_t planes, int64_t stride, torch::nn::Sequential downsample);
  at::Tensor forward(const at::Tensor& x);

  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::Sequential downsample{nullptr};
};
TORCH_MODULE(Bottleneck);

enum class Stem { ImageNet, Cifar };

/// No defaults: the caller sets every field (bindings: createResNet from lib/models.ts resnet(), the trainer's
/// config from lib/train-wire.ts).
struct ResNetOptions {
  int depth{};  // 18 | 34 | 50
  Stem stem{};
  int64_t numClasses{};  // 0: no fc (backbone only)
  bool zeroInitResidual{};
  /// true: torchvision's initialisation (kaiming-normal convs, BN γ 1 / β 0, zeroInitResidual). false: only
  /// the modules' own constructors run, for weights a checkpoint overwrites at once (saves a pass over every
  /// weight at load time).
  bool torchvisionInit{};
};

struct ResNetImpl : torch::nn::Module {
  explicit ResNetImpl(const ResNetOptions& options);

  /// Global-average-pooled, flattened layer4 features (then fc when present), as torchvision's forward.
  at::Tensor forward(const at::Tensor& x);
  /// The layer4 feature map (N, C, H, W); for the CIFAR stem a 32×32 input gives 5×5.
  at::Tensor featureMap(const at::Tensor& x);
  /// Width of the pooled feature: 512 (18/34) or 2048 (50).
  int64_t featureDim() const { return featureDim_; }
  const ResNetOptions& options() const { return options_; }

  torch::nn::Conv2d conv1{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr};
  torch::nn::Sequential layer1{nullptr}, layer2{nullptr}, layer3{nullptr}, layer4{nullptr};
  torch::nn::Linear fc{nullptr};

 private:
  torch::nn::Sequential makeLayer(int64_t planes, int64_t blocks, int64_t stride);
  void checkInput(const at::Tensor& x) const;

  ResNetOptions options_;
  bool bottleneck_ = false;
  int64_t inplanes_ = 64;
  int64_t featureDim_ = 512;
};
TORCH_MODULE(ResNet);

}  // namespace tssl
