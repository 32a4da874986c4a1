#include "optim/lars.h"

#include <ATen/Parallel.h>
#include <ATen/TensorOperators.h>
#include <torch/autograd.h>

#include <algorithm>

#include "common/error.h"
#include "common/torch_compat.h"

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

namespace {

// One pass over float32 contiguous CPU tensors: buf = μ·buf + a·g + b·p; p −= lr·buf. The unfused form
// reads and writes each tensor several times; this is memory-bound, so one pass is what matters.
bool fusedStep(at::Tensor& p, const at::Tensor& g, at::Tensor& buf, double mu, double a, double b, double lr) {
  if (p.scalar_type() != at::kFloat || g.scalar_type() != at::kFloat || buf.scalar_type() != at::kFloat) return false;
  if (!p.is_contiguous() || !g.is_contiguous() || !buf.is_contiguous()) return false;
  float* pp = p.data_ptr<float>();
  const float* gp = g.data_ptr<float>();
  float* bp = buf.data_ptr<float>();
  const float fmu = float(mu), fa = float(a), fb = float(b), flr = float(lr);
  at::parallel_for(0, p.numel(), 1 << 14, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float v = fmu * bp[i] + fa * gp[i] + fb * pp[i];
      bp[i] = v;
      pp[i] -= flr * v;
    }
  });
  return true;
}

}  // namespace

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
      const at::Tensor& g = p.grad();
      const bool excluded = o.exclude_bias_n_norm() && p.dim() == 1;
      auto key = compat::optimizerStateKey(state_, p);
      auto it = o.momentum() != 0 ? state_.find(key) : state_.end();
      const bool hasBuf = it != state_.end();
      if (p.is_cpu()) {
        // CPU: scalar trust ratio (a norm's .item() costs nothing here) and in-place axpys, no temporaries:
        // d = (g + wd·p)·factor is folded straight into the momentum buffer.
        double factor = 1.0, wd = 0.0;
        if (!o.lars()) {
          wd = o.weight_decay();
        } else if (!excluded) {
          const double pNorm = p.norm().item<double>(), gNorm = g.norm().item<double>();
          if (pNorm != 0.0 && gNorm != 0.0) {
            double trust = o.eta() * pNorm / (gNorm + o.weight_decay() * pNorm + o.eps());
            if (o.clip_lr()) trust = o.lr() > 0 ? std::min(trust / o.lr(), 1.0) : 1.0;
            factor = trust;
            wd = o.weight_decay();
          }
        }
        if (o.momentum() == 0) {
          // p − lr·factor·(g + wd·p)
          if (wd != 0) p.mul_(1.0 - o.lr() * factor * wd);
          p.add_(g, -o.lr() * factor);
          continue;
        }
        if (!hasBuf) {
          auto st = std::make_unique<LARSParamState>();
          at::Tensor buf = g.mul(factor);
          if (wd != 0) buf.add_(p, factor * wd);
          st->momentum_buffer(buf);
          it = state_.emplace(key, std::move(st)).first;
        } else {
          const double scale = (1.0 - o.dampening()) * factor;
          at::Tensor& buf = static_cast<LARSParamState&>(*it->second).momentum_buffer();
          if (!o.nesterov() && fusedStep(p, g, buf, o.momentum(), scale, scale * wd, o.lr())) continue;
          buf.mul_(o.momentum()).add_(g, scale);
          if (wd != 0) buf.add_(p, scale * wd);
        }
        const at::Tensor& buf = static_cast<LARSParamState&>(*it->second).momentum_buffer();
        if (o.nesterov()) {
          // p − lr·(d + μ·buf), d = factor·(g + wd·p); buf already used the old p
          if (wd != 0) p.mul_(1.0 - o.lr() * factor * wd);
          p.add_(g, -o.lr() * factor).add_(buf, -o.lr() * o.momentum());
        } else {
          p.add_(buf, -o.lr());
        }
        continue;
      }
      // Accelerators: every branch as tensor ops, so a step never waits on the device.
      at::Tensor d;
      if (!o.lars()) {
        d = o.weight_decay() != 0 ? g + p * o.weight_decay() : g;
      } else if (excluded) {
        d = g;
      } else {
        TrustRatio tr = trustRatio(p, g, o);
        at::Tensor wdT = at::where(tr.active, at::full({}, o.weight_decay(), p.options()), at::zeros({}, p.options()));
        d = (o.weight_decay() != 0 ? g + p * wdT : g) * tr.factor;
      }
      if (o.momentum() != 0) {
        if (!hasBuf) {
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
