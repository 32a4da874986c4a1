// LARS as solo-learn implements it (solo/utils/lars.py, from Lightning Bolts):
//   trust = eta·‖p‖ / (‖g‖ + wd·‖p‖ + eps); with clipLr the factor is min(trust / lr, 1);
//   d = (g + wd·p)·factor — only when p is not excluded and both norms are non-zero; otherwise d = g
//   (no weight decay); excluded = 1-D parameters (biases, norm γ/β) when excludeBiasAndNorm;
//   momentum buffer starts at d, then buf = μ·buf + (1 − dampening)·d; Nesterov: d + μ·buf; p −= lr·d.
// With lars(false) the same loop is torch.optim.SGD (no trust ratio, weight decay on every parameter).
// Every branch is computed with tensor ops (no host synchronisation), so CUDA steps never stall.
#pragma once
#include <torch/optim/optimizer.h>

namespace tssl::optim {

struct LARSOptions : public torch::optim::OptimizerCloneableOptions<LARSOptions> {
  // No defaults here: every field is set by the caller (the trainer from its config, the binding from the
  // options lib/optim.ts fills with LARS_DEFAULTS, lib/defaults.ts). Unset fields are zero / off.
  explicit LARSOptions(double lr) : lr_(lr) {}
  TORCH_ARG(double, lr);
  TORCH_ARG(double, momentum){};
  TORCH_ARG(double, dampening){};
  TORCH_ARG(double, weight_decay){};
  TORCH_ARG(bool, nesterov){};
  TORCH_ARG(double, eta){};
  TORCH_ARG(double, eps){};
  TORCH_ARG(bool, clip_lr){};
  TORCH_ARG(bool, exclude_bias_n_norm){};
  /// false: plain momentum SGD (torch.optim.SGD: d = g + wd·p for every parameter, no trust ratio), the optimizer
  /// solo-learn's CIFAR SimSiam recipe uses; eta, clip_lr and exclude_bias_n_norm are then unused.
  TORCH_ARG(bool, lars) = true;

 public:
  double get_lr() const override { return lr(); }
  void set_lr(const double lr) override { this->lr(lr); }
};

struct LARSParamState : public torch::optim::OptimizerCloneableParamState<LARSParamState> {
  TORCH_ARG(at::Tensor, momentum_buffer);
};

class LARS : public torch::optim::Optimizer {
 public:
  LARS(std::vector<torch::optim::OptimizerParamGroup> groups, LARSOptions defaults);
  at::Tensor step(LossClosure closure = nullptr) override;
};

/// The per-parameter LARS factor (trust ratio, clipped) and whether weight decay applies, as tensors.
struct TrustRatio {
  at::Tensor factor;  // scalar
  at::Tensor active;  // scalar bool: the LARS branch is taken
};
TrustRatio trustRatio(const at::Tensor& p, const at::Tensor& g, const LARSOptions& o);

}  // namespace tssl::optim
