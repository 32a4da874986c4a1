// A bias-free Linear under weight normalisation, as torch.nn.utils.weight_norm(nn.Linear(in, out, bias=False))
// leaves it: parameters `weight_g` (out, 1) and `weight_v` (out, in), weight = g · v / ‖v‖ (row norms), so
// state dicts interchange with solo-learn's DINO head (`head.last_layer.`) and SwAV prototypes (`prototypes.`).
// g starts at 1 and may be frozen (norm_last_layer; SwAV always): the rows are then unit prototypes.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

namespace tssl {

struct WeightNormLinearImpl : torch::nn::Module {
  /// v as nn.Linear initialises its weight (kaiming_uniform, a = √5); g filled with 1, frozen when `freezeG`.
  WeightNormLinearImpl(int64_t in, int64_t out, bool freezeG);
  at::Tensor forward(const at::Tensor& x);
  /// The effective weight g · v / ‖v‖.
  at::Tensor weight() const;
  at::Tensor weight_g, weight_v;
};
TORCH_MODULE(WeightNormLinear);

}  // namespace tssl
