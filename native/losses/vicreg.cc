#include "losses/common.h"
#include "losses/losses.h"

namespace tssl::losses {
namespace {

struct ViewTerms {
  at::Tensor varT, covT;  // scalar tensors (keep the computation on-device)
  at::Tensor grad;        // varWeight·d var/dz + covWeight·d cov/dz (undefined when not needed)
};

// Variance hinge and covariance penalty of one view z (N, D). Derivation: docs/losses.md §VICReg. Written to
// keep N×D temporaries to two per view (zc and the gradient, accumulated in place).
ViewTerms viewTerms(const at::Tensor& z, bool wantGrad, double varWeight, double covWeight) {
  const int64_t N = z.size(0), D = z.size(1);
  ViewTerms t;
  at::Tensor zc = z - z.mean(0, true);
  at::Tensor colsq = zc.norm(2, {0}).square_();                 // (D) = (N−1)·C_dd
  at::Tensor std = (colsq / double(N - 1)).add_(1e-4).sqrt_();  // (D)
  t.varT = (1.0 - std).clamp_min_(0.0).mean();
  // Σ_{i≠j} C_ij² = (‖C‖_F² − Σ C_dd²); ‖C‖_F = ‖zcᵀzc‖_F = ‖zc zcᵀ‖_F, so use the smaller Gram.
  const double s = 1.0 / double(N - 1);
  at::Tensor diagSq = (colsq * s).square_().sum();
  at::Tensor gram = N < D ? at::mm(zc, zc.t()) : at::mm(zc.t(), zc);  // (N,N) or (D,D), unscaled
  t.covT = (gram.norm().square() * (s * s) - diagSq) / double(D);
  if (wantGrad) {
    // d cov/dz = 4/(D(N−1)²) · (zc zcᵀ zc − zc ⊙ colsq)
    at::Tensor g = N < D ? at::mm(gram, zc) : at::mm(zc, gram);
    g.addcmul_(zc, colsq.unsqueeze(0), -1.0).mul_(covWeight * 4.0 / (double(D) * double(N - 1) * double(N - 1)));
    // d var/dz = −(1/D)·[std < 1]·zc / ((N−1)·std)
    at::Tensor coef = (std < 1.0).to(z.scalar_type()).div_(std).mul_(-varWeight / (double(D) * double(N - 1)));
    g.addcmul_(zc, coef.unsqueeze(0));
    t.grad = g;
  }
  return t;
}

}  // namespace

LossResult vicreg(const at::Tensor& z1in, const at::Tensor& z2in, const VICRegOptions& o) {
  detail::checkFloating(z1in, "vicreg", "z1");
  detail::checkFloating(z2in, "vicreg", "z2");
  TSSL_CHECK(z1in.dim() == 2 && z2in.dim() == 2 && z1in.sizes() == z2in.sizes(), "ERR_TORCH_SHAPE",
             "vicreg: z1 and z2 must both be (N, D) with the same shape, got ", shapeString(z1in.sizes().vec()), " and ",
             shapeString(z2in.sizes().vec()));
  TSSL_CHECK(z1in.size(0) >= 2, "ERR_TORCH_SHAPE", "vicreg: needs N >= 2 (unbiased variance), got shape ", shapeString(z1in.sizes().vec()));
  TSSL_CHECK(z1in.size(1) >= 1, "ERR_TORCH_SHAPE", "vicreg: needs D >= 1");
  TSSL_CHECK(z1in.device() == z2in.device(), "ERR_TORCH_DEVICE", "vicreg: z1 and z2 are on different devices");
  const bool wantGrad = detail::needsGrad(z1in, z2in);
  at::NoGradGuard noGrad;
  at::Tensor z1 = detail::computeCopy(z1in), z2 = detail::computeCopy(z2in).to(z1.scalar_type());
  const int64_t N = z1.size(0), D = z1.size(1);

  at::Tensor diff = z1 - z2;
  at::Tensor sim = diff.norm().square() / double(N * D);
  ViewTerms a = viewTerms(z1, wantGrad, o.varWeight, o.covWeight);
  ViewTerms b = viewTerms(z2, wantGrad, o.varWeight, o.covWeight);
  at::Tensor var = a.varT + b.varT, cov = a.covT + b.covT;
  at::Tensor loss = sim * o.simWeight + var * o.varWeight + cov * o.covWeight;

  at::Tensor g1, g2;
  if (wantGrad) {
    const double simScale = 2.0 * o.simWeight / double(N * D);  // d sim/dz1 = 2(z1 − z2)/(ND) = −d sim/dz2
    g1 = a.grad.add_(diff, simScale);
    g2 = b.grad.add_(diff, -simScale);
  }
  LossResult r;
  r.loss = detail::attach(wantGrad, loss, z1in, z2in, g1, g2);
  r.terms = at::stack({sim, var, cov});
  r.termNames = {"sim", "var", "cov"};
  return r;
}

}  // namespace tssl::losses
