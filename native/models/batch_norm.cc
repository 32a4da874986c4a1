#include "models/batch_norm.h"

#include "models/conv.h"

namespace tssl {
namespace {
thread_local BatchNormOverride* current = nullptr;
}

BatchNormOverride* setBatchNormOverride(BatchNormOverride* o) {
  BatchNormOverride* previous = current;
  current = o;
  return previous;
}

BatchNormOverride* batchNormOverride() { return current; }

at::Tensor forwardSequential(torch::nn::Sequential& seq, at::Tensor x) {
  for (auto& m : *seq) {
    if (auto* b1 = m.ptr()->as<torch::nn::BatchNorm1dImpl>()) {
      x = batchNorm(*b1, x);
    } else if (auto* b2 = m.ptr()->as<torch::nn::BatchNorm2dImpl>()) {
      x = batchNorm(*b2, x);
    } else if (auto* conv = m.ptr()->as<torch::nn::Conv2dImpl>()) {
      x = convolve(*conv, x);
    } else {
      x = m.forward(x);
    }
  }
  return x;
}

}  // namespace tssl
