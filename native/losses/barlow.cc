#include "losses/common.h"
#include "losses/losses.h"

namespace tssl::losses {

LossResult barlow(const at::Tensor& z1in, const at::Tensor& z2in, const BarlowOptions& o) {
  detail::checkFloating(z1in, "barlow", "z1");
  detail::checkFloating(z2in, "barlow", "z2");
  TSSL_CHECK(z1in.dim() == 2 && z2in.dim() == 2 && z1in.sizes() == z2in.sizes(), "ERR_TORCH_SHAPE",
             "barlow: z1 and z2 must both be (N, D) with the same shape, got ", shapeString(z1in.sizes().vec()), " and ",
             shapeString(z2in.sizes().vec()));
  TSSL_CHECK(z1in.size(0) >= 2, "ERR_TORCH_SHAPE", "barlow: needs N >= 2, got shape ", shapeString(z1in.sizes().vec()));
  TSSL_CHECK(z1in.size(1) >= 1, "ERR_TORCH_SHAPE", "barlow: needs D >= 1");
  TSSL_CHECK(z1in.device() == z2in.device(), "ERR_TORCH_DEVICE", "barlow: z1 and z2 are on different devices");
  const bool wantGrad = detail::needsGrad(z1in, z2in);
  at::NoGradGuard noGrad;
  at::Tensor z1 = detail::computeCopy(z1in), z2 = detail::computeCopy(z2in).to(z1.scalar_type());
  const int64_t N = z1.size(0), D = z1.size(1);
  const double invN = 1.0 / double(N);

  // BatchNorm1d(affine=False) in train mode: batch mean, biased variance, eps 1e-5.
  auto standardise = [&](const at::Tensor& z) {
    at::Tensor zc = z - z.mean(0, true);
    at::Tensor sd = (zc.pow(2).mean(0, true) + 1e-5).sqrt();
    return std::make_pair(zc / sd, sd);
  };
  auto [n1, s1] = standardise(z1);
  auto [n2, s2] = standardise(z2);

  at::Tensor cd = (n1 * n2).sum(0) * invN;  // c_ii
  at::Tensor onDiag = (1.0 - cd).pow(2).sum();
  // Σ_ij c_ij² without the D×D matrix when N < D: ‖n1ᵀn2‖_F² = Σ (n1 n1ᵀ) ⊙ (n2 n2ᵀ).
  at::Tensor k1, k2, c;
  at::Tensor allSq;
  if (N < D) {
    k1 = at::mm(n1, n1.t());
    k2 = at::mm(n2, n2.t());
    allSq = (k1 * k2).sum() * (invN * invN);
  } else {
    c = at::mm(n1.t(), n2) * invN;
    allSq = c.pow(2).sum();
  }
  at::Tensor offDiag = allSq - cd.pow(2).sum();
  at::Tensor loss = (onDiag + offDiag * o.lambda) * o.scale;

  at::Tensor g1, g2;
  if (wantGrad) {
    // dL/dn1 = scale·[2λ n2 cᵀ / N + n2 ⊙ (−2(1 − c_ii) − 2λ c_ii) / N], symmetric for n2 (docs/losses.md).
    at::Tensor diagCoef = ((cd - 1.0) * 2.0 - cd * (2.0 * o.lambda)) * invN;  // (D)
    at::Tensor gn1, gn2;
    if (N < D) {
      gn1 = at::mm(k2, n1) * (2.0 * o.lambda * invN * invN) + n2 * diagCoef;
      gn2 = at::mm(k1, n2) * (2.0 * o.lambda * invN * invN) + n1 * diagCoef;
    } else {
      gn1 = at::mm(n2, c.t()) * (2.0 * o.lambda * invN) + n2 * diagCoef;
      gn2 = at::mm(n1, c) * (2.0 * o.lambda * invN) + n1 * diagCoef;
    }
    // Back through the standardisation: dz = (g − mean g − n·mean(g ⊙ n)) / sd.
    auto bnBackward = [&](const at::Tensor& g, const at::Tensor& n, const at::Tensor& sd) {
      return (g - g.mean(0, true) - n * (g * n).mean(0, true)) / sd;
    };
    g1 = bnBackward(gn1, n1, s1) * o.scale;
    g2 = bnBackward(gn2, n2, s2) * o.scale;
  }
  LossResult r;
  r.loss = detail::attach(wantGrad, loss, z1in, z2in, g1, g2);
  r.terms = at::stack({onDiag, offDiag});
  r.termNames = {"onDiag", "offDiag"};
  return r;
}

}  // namespace tssl::losses
