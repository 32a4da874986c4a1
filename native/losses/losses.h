// Joint-embedding SSL losses with hand-derived backward (derivations: docs/losses.md).
//
// Each loss is a torch::autograd::Function whose forward computes the value and, when an input requires
// grad, the input gradient in the same pass; it saves only that gradient (N×D per input), never the D×D /
// M×M intermediates. backward scales it by the incoming scalar gradient. Consequence: no double backward.
// Device-agnostic (plain ATen); half / bfloat16 inputs are computed in float32.
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace tssl::losses {

/// A differentiable scalar `loss` plus its unweighted terms (non-differentiable, for logging).
struct LossResult {
  at::Tensor loss;
  at::Tensor terms;  // 1-D, one entry per name in `termNames`
  std::vector<std::string> termNames;
};

// Options carry no defaults: the TypeScript schema owns them (lib/methods/*.ts), the methods pass them all.
struct VICRegOptions {
  double simWeight, varWeight, covWeight;
};
/// solo-learn VICReg on z1, z2 (N, D): 25·MSE + 25·Σ_views mean relu(1 − sqrt(var_unbiased + 1e-4))
/// + 1·Σ_views Σ_{i≠j} C_ij² / D. Terms: sim, var, cov.
LossResult vicreg(const at::Tensor& z1, const at::Tensor& z2, const VICRegOptions& options);

struct SimCLROptions {
  double temperature;
};
/// solo-learn NT-Xent on zs (V, N, D): every row an anchor, positives (other views of the same image)
/// summed inside the log, self-pair in neither sum, mean over V·N anchors. Terms: nce.
LossResult simclr(const at::Tensor& zs, const SimCLROptions& options);

struct TCROptions {
  double eps;     // enters un-squared, as EMP-SSL's code: α = D / (N·eps)
  double lambda;  // invariance weight
};
/// EMP-SSL total coding rate on zs (V, N, D): −mean_v ½ logdet(I + α Z_vᵀZ_v) − λ·mean_{v,n} cos(z_vn, z̄_n).
/// Terms: rate (mean_v R), sim (mean cosine).
LossResult tcr(const at::Tensor& zs, const TCROptions& options);

struct BarlowOptions {
  double lambda, scale;
};
/// solo-learn Barlow Twins on z1, z2 (N, D): per-view batch standardisation (biased var, eps 1e-5),
/// c = z1nᵀz2n / N, scale·(Σ(1 − c_ii)² + λ Σ_{i≠j} c_ij²). Terms: onDiag, offDiag.
LossResult barlow(const at::Tensor& z1, const at::Tensor& z2, const BarlowOptions& options);

}  // namespace tssl::losses
