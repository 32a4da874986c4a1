#include "models/weight_norm.h"

#include <torch/autograd.h>
#include <torch/nn/modules/linear.h>

#include "common/error.h"

namespace tssl {

WeightNormLinearImpl::WeightNormLinearImpl(int64_t in, int64_t out, bool freezeG) {
  TSSL_CHECK(in > 0 && out > 0, "ERR_INVALID_ARG", "a weight-normalised Linear needs positive sizes, got ", in, " -> ", out);
  torch::nn::Linear init(torch::nn::LinearOptions(in, out).bias(false));
  // Registration order as weight_norm leaves it: weight_g, then weight_v.
  weight_g = register_parameter("weight_g", at::ones({out, 1}));
  weight_v = register_parameter("weight_v", init->weight.detach().clone());
  if (freezeG) weight_g.set_requires_grad(false);
}

at::Tensor WeightNormLinearImpl::weight() const { return at::_weight_norm(weight_v, weight_g, 0); }

at::Tensor WeightNormLinearImpl::forward(const at::Tensor& x) { return at::linear(x, weight()); }

}  // namespace tssl
