#include "losses/common.h"
#include "losses/losses.h"

namespace tssl::losses {

LossResult tcr(const at::Tensor& zsIn, const TCROptions& o) {
  detail::checkFloating(zsIn, "tcr", "zs");
  TSSL_CHECK(zsIn.dim() == 3, "ERR_TORCH_SHAPE", "tcr: zs must be (V, N, D), got shape ", shapeString(zsIn.sizes().vec()));
  TSSL_CHECK(zsIn.size(0) >= 2, "ERR_TORCH_SHAPE", "tcr: needs V >= 2 views/patches, got shape ", shapeString(zsIn.sizes().vec()));
  TSSL_CHECK(zsIn.size(1) >= 2, "ERR_TORCH_SHAPE", "tcr: needs N >= 2 images, got shape ", shapeString(zsIn.sizes().vec()));
  TSSL_CHECK(zsIn.size(2) >= 1, "ERR_TORCH_SHAPE", "tcr: needs D >= 1");
  TSSL_CHECK(o.eps > 0, "ERR_INVALID_ARG", "tcr: eps must be > 0, got ", o.eps);
  const bool wantGrad = detail::needsGrad(zsIn);
  at::NoGradGuard noGrad;
  const int64_t V = zsIn.size(0), N = zsIn.size(1), D = zsIn.size(2);
  at::Tensor u = detail::computeCopy(zsIn);
  auto [z, norms] = detail::normalizeRows(u);  // (V, N, D)
  const double alpha = double(D) / (double(N) * o.eps);

  // R(Z_v) = ½ logdet(I + α Z_vᵀZ_v) = ½ logdet(I + α Z_v Z_vᵀ) (Sylvester): factor the smaller Gram.
  const bool gramN = N <= D;
  const int64_t k = gramN ? N : D;
  at::Tensor eye = at::eye(k, z.options()).expand({V, k, k});
  at::Tensor gram = gramN ? at::bmm(z, z.transpose(1, 2)) : at::bmm(z.transpose(1, 2), z);
  at::Tensor L = at::linalg_cholesky(eye + gram * alpha);
  at::Tensor rate = L.diagonal(0, 1, 2).log().sum(-1);  // (V): ½·logdet = Σ log diag L
  at::Tensor meanRate = rate.mean();

  // Σ_v cos(z_vn, z̄_n) = V·‖z̄_n‖ for unit rows, so the invariance is mean_n ‖z̄_n‖.
  at::Tensor zbar = z.mean(0);                                     // (N, D)
  at::Tensor zbarNorm = zbar.norm(2, {-1}, true).clamp_min(1e-8);  // as F.cosine_similarity's eps
  at::Tensor cosMean = (z * (zbar / zbarNorm).unsqueeze(0)).sum(-1).mean();
  at::Tensor loss = -meanRate - cosMean * o.lambda;

  at::Tensor g;
  if (wantGrad) {
    // dR_v/dZ_v = α (I + α Z Zᵀ)⁻¹ Z  (or α Z (I + α ZᵀZ)⁻¹);  d mean‖z̄_n‖/dz_vn = z̄_n / (‖z̄_n‖ N V).
    at::Tensor gRate = gramN ? at::cholesky_solve(z, L) : at::cholesky_solve(z.transpose(1, 2), L).transpose(1, 2);
    at::Tensor gz = gRate * (-alpha / double(V)) - (zbar / zbarNorm).unsqueeze(0) * (o.lambda / double(N * V));
    g = detail::normalizeRowsBackward(gz, z, norms);
  }
  LossResult r;
  r.loss = detail::attach(wantGrad, loss, zsIn, at::Tensor(), g, at::Tensor());
  r.terms = at::stack({meanRate, cosMean});
  r.termNames = {"rate", "sim"};
  return r;
}

}  // namespace tssl::losses
