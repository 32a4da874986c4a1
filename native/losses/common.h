// Pieces shared by the fused losses: input checks, precision handling, the scalar-output autograd node.
#pragma once
#include <ATen/ATen.h>
#include <torch/autograd.h>

#include "common/error.h"

namespace tssl::losses::detail {

inline void checkFloating(const at::Tensor& t, const char* loss, const char* name) {
  TSSL_CHECK(t.defined(), "ERR_INVALID_ARG", loss, ": ", name, " is undefined");
  TSSL_CHECK(t.is_floating_point(), "ERR_TORCH_DTYPE", loss, ": ", name, " must be floating point, got ", c10::toString(t.scalar_type()));
}

inline void checkFinite(const at::Tensor& t, const char* loss, const char* name) {
  TSSL_CHECK(t.isfinite().all().item<bool>(), "ERR_TORCH_VALUE", loss, ": ", name, " contains NaN or Inf");
}

/// Half-precision inputs are computed in float32; float32 / float64 as they are.
inline at::Tensor computeCopy(const at::Tensor& t) {
  at::Tensor d = t.detach();
  if (d.scalar_type() == at::kHalf || d.scalar_type() == at::kBFloat16) d = d.to(at::kFloat);
  return d.contiguous();
}

/// Row-wise L2 normalisation as F.normalize (eps 1e-12); returns the norms for the backward.
inline std::pair<at::Tensor, at::Tensor> normalizeRows(const at::Tensor& u) {
  at::Tensor n = u.norm(2, {-1}, true).clamp_min(1e-12);
  return {u / n, n};
}
/// d/du of z = u/‖u‖ applied to g: (g − z·⟨z, g⟩) / ‖u‖.
inline at::Tensor normalizeRowsBackward(const at::Tensor& g, const at::Tensor& z, const at::Tensor& n) { return (g - z * (z * g).sum(-1, true)) / n; }

/// The autograd node of a fused scalar loss: forward already produced the input gradients; backward
/// multiplies them by the incoming gradient of the scalar.
struct PrecomputedGrad : public torch::autograd::Function<PrecomputedGrad> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& value, const at::Tensor& a,
                                                const at::Tensor& b, const at::Tensor& ga, const at::Tensor& gb) {
    ctx->save_for_backward({ga, gb});
    ctx->saved_data["a_dtype"] = static_cast<int64_t>(a.scalar_type());
    ctx->saved_data["b_dtype"] = b.defined() ? static_cast<int64_t>(b.scalar_type()) : int64_t{-1};
    return {value.detach().clone()};
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor& go = grads[0];
    auto scale = [&](const at::Tensor& g, int64_t dtype) -> at::Tensor {
      if (!g.defined()) return at::Tensor();
      return (g * go.to(g.scalar_type())).to(static_cast<at::ScalarType>(dtype));
    };
    return {at::Tensor(), scale(saved[0], ctx->saved_data["a_dtype"].toInt()), scale(saved[1], ctx->saved_data["b_dtype"].toInt()), at::Tensor(),
            at::Tensor()};
  }
};

/// Single-input variant (SimCLR, TCR).
struct PrecomputedGrad1 : public torch::autograd::Function<PrecomputedGrad1> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& value, const at::Tensor& a,
                                                const at::Tensor& ga) {
    ctx->save_for_backward({ga});
    ctx->saved_data["a_dtype"] = static_cast<int64_t>(a.scalar_type());
    return {value.detach().clone()};
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    at::Tensor g = ctx->get_saved_variables()[0];
    const auto dtype = static_cast<at::ScalarType>(ctx->saved_data["a_dtype"].toInt());
    return {at::Tensor(), (g * grads[0].to(g.scalar_type())).to(dtype), at::Tensor()};
  }
};

/// Attaches precomputed gradients of `value` w.r.t. a (and b) to the graph, when any input requires grad.
/// `wantGrad` comes from needsGrad() evaluated before the loss body's NoGradGuard.
inline at::Tensor attach(bool wantGrad, const at::Tensor& value, const at::Tensor& a, const at::Tensor& b, const at::Tensor& ga,
                         const at::Tensor& gb) {
  if (!wantGrad) return value;
  at::AutoGradMode enable(true);
  if (!b.defined()) return PrecomputedGrad1::apply(value, a, ga)[0];
  return PrecomputedGrad::apply(value, a, b, ga, gb)[0];
}

inline bool needsGrad(const at::Tensor& a, const at::Tensor& b = at::Tensor()) {
  return at::GradMode::is_enabled() && (a.requires_grad() || (b.defined() && b.requires_grad()));
}

}  // namespace tssl::losses::detail
