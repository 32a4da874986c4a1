#include "optim/lars.h"

#include <torch/autograd.h>

#include "common/error.h"

namespace tssl::optim {

LARS::LARS(std::vector<torch::optim::OptimizerParamGroup> groups, LARSOptions defaults)
    : torch::optim::Optimizer(std::move(groups), std::make_unique<LARSOptions>(defaults)) {
  TSSL_CHECK(defaults.lr() >= 0, "ERR_INVALID_ARG", "LARS: lr must be >= 0");
  TSSL_CHECK(defaults.momentum() >= 0, "ERR_INVALID_ARG", "LARS: momentum must be >= 0");
  TSSL_CHECK(defaults.weight_decay() >= 0, "ERR_INVALID_ARG", "LARS: weightDecay must be >= 0");
  TSSL_CHECK(!defaults.nesterov() || (defaults.momentum() > 0 && defaults.dampening() == 0), "ERR_INVALID_ARG",
             "LARS: Nesterov momentum requires momentum > 0 and zero dampening");
}

TrustRatio trustRatio(const at::Tensor& p, const at::Tensor& g, const LARSOptions& o) {
  at::Tensor pNorm = p.norm();
  at::Tensor gNorm = g.norm();
  at::Tensor active = pNorm.ne(0).logical_and(gNorm.ne(0));
  at::Tensor trust = pNorm.mul(o.eta()).div(gNorm + pNorm * o.weight_decay() + o.eps());
  if (o.clip_lr()) trust = o.lr() > 0 ? trust.div(o.lr()).clamp_max(1.0) : at::ones_like(trust);
  return {at::where(active, trust, at::ones_like(trust)), active};
}

at::Tensor LARS::step(LossClosure closure) {
  at::NoGradGuard noGrad;
  at::Tensor loss;
  if (closure != nullptr) {
    at::AutoGradMode enable(true);
    loss = closure();
  }
  for (auto& group : param_groups()) {
    auto& o = static_cast<LARSOptions&>(group.options());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      at::Tensor g = p.grad();
      at::Tensor d;
      const bool excluded = o.exclude_bias_n_norm() && p.dim() == 1;
      if (excluded) {
        d = g;
      } else {
        TrustRatio tr = trustRatio(p, g, o);
        at::Tensor wd = at::where(tr.active, at::full({}, o.weight_decay(), p.options()), at::zeros({}, p.options()));
        d = (o.weight_decay() != 0 ? g + p * wd : g) * tr.factor;
      }
      if (o.momentum() != 0) {
        auto key = c10::guts::to_string(p.unsafeGetTensorImpl());
        auto it = state_.find(key);
        if (it == state_.end()) {
          auto st = std::make_unique<LARSParamState>();
          st->momentum_buffer(d.clone().detach());
          it = state_.emplace(key, std::move(st)).first;
        } else {
          auto& buf = static_cast<LARSParamState&>(*it->second).momentum_buffer();
          buf.mul_(o.momentum()).add_(d, 1.0 - o.dampening());
        }
        const at::Tensor& buf = static_cast<LARSParamState&>(*it->second).momentum_buffer();
        d = o.nesterov() ? d + buf * o.momentum() : buf;
      }
      p.add_(d, -o.lr());
    }
  }
  return loss;
}

}  // namespace tssl::optim
