#include "models/batch_norm.h"

#include "models/batch_norm_act.h"
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
  for (auto it = seq->begin(); it != seq->end(); ++it) {
    // A BatchNorm and the ReLU after it are one fused op (models/batch_norm_act.h).
    const auto next = it + 1;
    const bool reluNext = next != seq->end() && next->ptr()->as<torch::nn::ReLUImpl>() != nullptr;
    if (auto* b1 = it->ptr()->as<torch::nn::BatchNorm1dImpl>()) {
      x = batchNormAct(*b1, x, {}, reluNext);
      if (reluNext) ++it;
    } else if (auto* b2 = it->ptr()->as<torch::nn::BatchNorm2dImpl>()) {
      x = batchNormAct(*b2, x, {}, reluNext);
      if (reluNext) ++it;
    } else if (auto* conv = it->ptr()->as<torch::nn::Conv2dImpl>()) {
      x = convolve(*conv, x);
    } else {
      x = it->forward(x);
    }
  }
  return x;
}

}  // namespace tssl
