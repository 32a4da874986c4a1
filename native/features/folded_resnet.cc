#include "features/folded_resnet.h"

#include <ATen/Context.h>

#include "common/error.h"

namespace tssl::features {

namespace {

std::vector<int64_t> pair(const torch::ExpandingArray<2>& a) { return {(*a)[0], (*a)[1]}; }

}  // namespace

bool FoldedResNet::supported(const ResNetImpl& net) {
  const auto& w = net.conv1->weight;
  return at::hasMKLDNN() && w.device().is_cpu() && w.scalar_type() == at::kFloat;
}

FoldedResNet::Conv FoldedResNet::fold(const torch::nn::Conv2d& conv, const torch::nn::BatchNorm2d& bn, int64_t padding) {
  const auto& o = conv->options;
  TSSL_CHECK(o.groups() == 1 && (*o.dilation())[0] == 1 && (*o.dilation())[1] == 1 && bn->options.affine() && bn->options.track_running_stats(),
             "ERR_TORCH_NOT_IMPLEMENTED", "this ResNet layer cannot be folded");
  at::Tensor scale = bn->weight / (bn->running_var + bn->options.eps()).sqrt();
  at::Tensor weight = (conv->weight * scale.view({-1, 1, 1, 1})).contiguous();
  at::Tensor bias = bn->bias - bn->running_mean * scale;
  if (conv->bias.defined()) bias = bias + conv->bias * scale;
  Conv c;
  c.stride = pair(o.stride());
  // Padding is a variant whose type differs between LibTorch versions: ResNet's convs are all "same"-style
  // (kernel / 2) except solo-learn's CIFAR stem (3×3, padding 2), which the caller passes.
  c.padding = padding >= 0 ? std::vector<int64_t>{padding, padding} : std::vector<int64_t>{conv->weight.size(2) / 2, conv->weight.size(3) / 2};
  c.weight = at::mkldnn_reorder_conv2d_weight(weight.to_mkldnn(), c.padding, c.stride, {1, 1}, 1);
  c.bias = bias.contiguous().to_mkldnn();
  return c;
}

at::Tensor FoldedResNet::run(const Conv& c, const at::Tensor& x) {
  return at::mkldnn_convolution(x, c.weight, c.bias, c.padding, c.stride, {1, 1}, 1);
}

FoldedResNet::FoldedResNet(const ResNetImpl& net) {
  stem_ = fold(net.conv1, net.bn1, net.options().stem == Stem::Cifar ? 2 : 3);
  maxPool_ = net.options().stem == Stem::ImageNet;
  for (const auto& layer : {net.layer1, net.layer2, net.layer3, net.layer4}) {
    for (size_t i = 0; i < layer->size(); ++i) {
      Block b;
      torch::nn::Sequential down{nullptr};
      if (auto basic = std::dynamic_pointer_cast<BasicBlockImpl>(layer->ptr(i))) {
        b.convs = {fold(basic->conv1, basic->bn1), fold(basic->conv2, basic->bn2)};
        down = basic->downsample;
      } else if (auto bottleneck = std::dynamic_pointer_cast<BottleneckImpl>(layer->ptr(i))) {
        b.convs = {fold(bottleneck->conv1, bottleneck->bn1), fold(bottleneck->conv2, bottleneck->bn2), fold(bottleneck->conv3, bottleneck->bn3)};
        down = bottleneck->downsample;
      } else {
        throw Error("ERR_TORCH_NOT_IMPLEMENTED", "unknown residual block");
      }
      if (down) {
        auto conv = std::dynamic_pointer_cast<torch::nn::Conv2dImpl>(down->ptr(0));
        auto bn = std::dynamic_pointer_cast<torch::nn::BatchNorm2dImpl>(down->ptr(1));
        TSSL_CHECK(conv && bn, "ERR_TORCH_NOT_IMPLEMENTED", "unexpected downsample layout");
        b.downsample = fold(torch::nn::Conv2d(conv), torch::nn::BatchNorm2d(bn));
      }
      blocks_.push_back(std::move(b));
    }
  }
}

at::Tensor FoldedResNet::featureMap(const at::Tensor& images) const {
  TSSL_CHECK(images.dim() == 4 && images.size(1) == 3 && images.size(0) > 0, "ERR_TORCH_SHAPE",
             "ResNet expects a non-empty (N, 3, H, W) input but received shape ", shapeString(images.sizes().vec()));
  at::Tensor x = run(stem_, images.to(at::kFloat).contiguous().to_mkldnn()).relu_();
  if (maxPool_) x = at::max_pool2d(x, {3, 3}, {2, 2}, {1, 1});
  for (const Block& b : blocks_) {
    at::Tensor out = x;
    for (size_t i = 0; i < b.convs.size(); ++i) {
      out = run(b.convs[i], out);
      if (i + 1 < b.convs.size()) out.relu_();
    }
    out = at::add(out, b.downsample ? run(*b.downsample, x) : x).relu_();
    x = out;
  }
  return x.to_dense();
}

}  // namespace tssl::features
