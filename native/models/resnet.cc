#include "models/resnet.h"

#include <torch/nn/functional/pooling.h>
#include <torch/nn/init.h>

#include "common/error.h"
#include "models/batch_norm.h"
#include "models/batch_norm_act.h"
#include "models/conv.h"

namespace tssl {
namespace {

torch::nn::Conv2d conv3x3(int64_t in, int64_t out, int64_t stride) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).stride(stride).padding(1).bias(false));
}
torch::nn::Conv2d conv1x1(int64_t in, int64_t out, int64_t stride) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 1).stride(stride).bias(false));
}

}  // namespace

BasicBlockImpl::BasicBlockImpl(int64_t inplanes, int64_t planes, int64_t stride, torch::nn::Sequential ds)
    : conv1(register_module("conv1", conv3x3(inplanes, planes, stride))),
      conv2(register_module("conv2", conv3x3(planes, planes, 1))),
      bn1(register_module("bn1", torch::nn::BatchNorm2d(planes))),
      bn2(register_module("bn2", torch::nn::BatchNorm2d(planes))) {
  if (ds) downsample = register_module("downsample", ds);
}

at::Tensor BasicBlockImpl::forward(const at::Tensor& x) {
  at::Tensor out = batchNormAct(*bn1, convolve(*conv1, x), {}, /*relu=*/true);
  return batchNormAct(*bn2, convolve(*conv2, out), downsample ? forwardSequential(downsample, x) : x, /*relu=*/true);
}

BottleneckImpl::BottleneckImpl(int64_t inplanes, int64_t planes, int64_t stride, torch::nn::Sequential ds)
    : conv1(register_module("conv1", conv1x1(inplanes, planes, 1))),
      conv2(register_module("conv2", conv3x3(planes, planes, stride))),
      conv3(register_module("conv3", conv1x1(planes, planes * expansion, 1))),
      bn1(register_module("bn1", torch::nn::BatchNorm2d(planes))),
      bn2(register_module("bn2", torch::nn::BatchNorm2d(planes))),
      bn3(register_module("bn3", torch::nn::BatchNorm2d(planes * expansion))) {
  if (ds) downsample = register_module("downsample", ds);
}

at::Tensor BottleneckImpl::forward(const at::Tensor& x) {
  at::Tensor out = batchNormAct(*bn1, convolve(*conv1, x), {}, /*relu=*/true);
  out = batchNormAct(*bn2, convolve(*conv2, out), {}, /*relu=*/true);
  return batchNormAct(*bn3, convolve(*conv3, out), downsample ? forwardSequential(downsample, x) : x, /*relu=*/true);
}

ResNetImpl::ResNetImpl(const ResNetOptions& options) : options_(options) {
  std::vector<int64_t> blocks;
  switch (options.depth) {
    case 18:
      blocks = {2, 2, 2, 2};
      break;
    case 34:
      blocks = {3, 4, 6, 3};
      break;
    case 50:
      blocks = {3, 4, 6, 3};
      bottleneck_ = true;
      break;
    default:
      throw Error("ERR_INVALID_ARG", concat("Expected depth 18, 34 or 50 but received ", options.depth));
  }
  if (options.stem == Stem::Cifar) {
    // solo-learn's CIFAR surgery: 3×3, stride 1, padding 2 (not 1), and no max-pool.
    conv1 = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 64, 3).stride(1).padding(2).bias(false)));
  } else {
    conv1 = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 64, 7).stride(2).padding(3).bias(false)));
  }
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(64));
  layer1 = register_module("layer1", makeLayer(64, blocks[0], 1));
  layer2 = register_module("layer2", makeLayer(128, blocks[1], 2));
  layer3 = register_module("layer3", makeLayer(256, blocks[2], 2));
  layer4 = register_module("layer4", makeLayer(512, blocks[3], 2));
  featureDim_ = inplanes_;
  if (options.numClasses > 0) fc = register_module("fc", torch::nn::Linear(featureDim_, options.numClasses));

  if (!options.torchvisionInit) return;
  // torchvision's initialisation: kaiming-normal (fan_out, relu) convs, BN γ = 1, β = 0.
  torch::NoGradGuard noGrad;
  for (auto& m : modules(/*include_self=*/false)) {
    if (auto* conv = m->as<torch::nn::Conv2dImpl>()) {
      torch::nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut, torch::kReLU);
    } else if (auto* bn = m->as<torch::nn::BatchNorm2dImpl>()) {
      bn->weight.fill_(1.0);
      bn->bias.zero_();
    }
  }
  if (options.zeroInitResidual) {
    for (auto& m : modules(false)) {
      if (auto* b = m->as<BottleneckImpl>()) b->bn3->weight.zero_();
      if (auto* b = m->as<BasicBlockImpl>()) b->bn2->weight.zero_();
    }
  }
}

torch::nn::Sequential ResNetImpl::makeLayer(int64_t planes, int64_t blocks, int64_t stride) {
  const int64_t expansion = bottleneck_ ? BottleneckImpl::expansion : BasicBlockImpl::expansion;
  torch::nn::Sequential downsample{nullptr};
  if (stride != 1 || inplanes_ != planes * expansion) {
    downsample = torch::nn::Sequential(conv1x1(inplanes_, planes * expansion, stride), torch::nn::BatchNorm2d(planes * expansion));
  }
  torch::nn::Sequential layer;
  for (int64_t i = 0; i < blocks; ++i) {
    const int64_t s = i == 0 ? stride : 1;
    torch::nn::Sequential ds = i == 0 ? downsample : torch::nn::Sequential(nullptr);
    if (bottleneck_) layer->push_back(Bottleneck(inplanes_, planes, s, ds));
    else layer->push_back(BasicBlock(inplanes_, planes, s, ds));
    inplanes_ = planes * expansion;
  }
  return layer;
}

void ResNetImpl::checkInput(const at::Tensor& x) const {
  TSSL_CHECK(x.defined(), "ERR_INVALID_ARG", "ResNet input is undefined");
  TSSL_CHECK(x.dim() == 4, "ERR_TORCH_SHAPE", "ResNet expects a 4-D input (N, 3, H, W) but received shape ", shapeString(x.sizes().vec()));
  TSSL_CHECK(x.size(1) == 3, "ERR_TORCH_SHAPE", "ResNet expects 3 input channels (N, 3, H, W) but received shape ", shapeString(x.sizes().vec()));
  TSSL_CHECK(x.is_floating_point(), "ERR_TORCH_DTYPE", "ResNet expects a floating-point input but received ", c10::toString(x.scalar_type()));
  TSSL_CHECK(x.size(0) > 0, "ERR_TORCH_SHAPE", "ResNet input has an empty batch: shape ", shapeString(x.sizes().vec()));
  const int64_t minSide = options_.stem == Stem::Cifar ? 1 : 8;
  TSSL_CHECK(x.size(2) >= minSide && x.size(3) >= minSide, "ERR_TORCH_SHAPE", "ResNet input is too small: shape ", shapeString(x.sizes().vec()));
}

at::Tensor ResNetImpl::featureMap(const at::Tensor& input) {
  checkInput(input);
  const auto& w = conv1->weight;
  at::Tensor x = input;
  if (x.scalar_type() != w.scalar_type() || x.device() != w.device()) x = x.to(w.device(), w.scalar_type());
  // Follow the weights' memory format: channels_last weights want channels_last activations.
  if (w.is_contiguous(at::MemoryFormat::ChannelsLast) && !w.is_contiguous()) x = x.contiguous(at::MemoryFormat::ChannelsLast);
  x = batchNormAct(*bn1, convolve(*conv1, x), {}, /*relu=*/true);
  if (options_.stem == Stem::ImageNet) x = torch::nn::functional::max_pool2d(x, torch::nn::functional::MaxPool2dFuncOptions(3).stride(2).padding(1));
  x = layer1->forward(x);
  x = layer2->forward(x);
  x = layer3->forward(x);
  return layer4->forward(x);
}

at::Tensor ResNetImpl::forward(const at::Tensor& x) {
  at::Tensor pooled = featureMap(x).mean({2, 3});
  return fc ? fc->forward(pooled) : pooled;
}

}  // namespace tssl
