#include <limits>

#include "losses/common.h"
#include "losses/losses.h"

namespace tssl::losses {

LossResult simclr(const at::Tensor& zsIn, const SimCLROptions& o) {
  detail::checkFloating(zsIn, "simclr", "zs");
  TSSL_CHECK(zsIn.dim() == 3, "ERR_TORCH_SHAPE", "simclr: zs must be (V, N, D), got shape ", shapeString(zsIn.sizes().vec()));
  TSSL_CHECK(zsIn.size(0) >= 2, "ERR_TORCH_SHAPE", "simclr: needs V >= 2 views, got shape ", shapeString(zsIn.sizes().vec()));
  TSSL_CHECK(zsIn.size(1) >= 2, "ERR_TORCH_SHAPE", "simclr: needs N >= 2 images, got shape ", shapeString(zsIn.sizes().vec()));
  TSSL_CHECK(zsIn.size(2) >= 1, "ERR_TORCH_SHAPE", "simclr: needs D >= 1");
  TSSL_CHECK(o.temperature > 0, "ERR_INVALID_ARG", "simclr: temperature must be > 0, got ", o.temperature);
  const bool wantGrad = detail::needsGrad(zsIn);
  at::NoGradGuard noGrad;
  const int64_t V = zsIn.size(0), N = zsIn.size(1), D = zsIn.size(2), M = V * N;
  at::Tensor u = detail::computeCopy(zsIn).reshape({M, D});
  auto [z, norms] = detail::normalizeRows(u);
  const double invT = 1.0 / o.temperature;
  const double ninf = -std::numeric_limits<double>::infinity();

  // Row i = view i / N, image i % N. Self-pair excluded from both sums; positives = same image.
  at::Tensor S = at::mm(z, z.t()).mul_(invT);
  S.fill_diagonal_(ninf);
  at::Tensor image = at::arange(M, at::TensorOptions().dtype(at::kLong).device(z.device())).remainder(N);
  at::Tensor positive = image.unsqueeze(1).eq(image.unsqueeze(0));
  positive.fill_diagonal_(false);
  at::Tensor Spos = S.masked_fill(positive.logical_not(), ninf);
  at::Tensor logAll = at::logsumexp(S, {1}, true);
  at::Tensor logPos = at::logsumexp(Spos, {1}, true);
  at::Tensor loss = (logAll - logPos).mean();

  at::Tensor g;
  if (wantGrad) {
    // dL/dS_ij = (softmax over all j≠i − softmax over positives) / M;  dL/dz = (A + Aᵀ) z / T.
    at::Tensor A = S.sub_(logAll).exp_().sub_(Spos.sub_(logPos).exp_()).div_(double(M));
    at::Tensor gz = at::mm(A + A.t(), z).mul_(invT);
    g = detail::normalizeRowsBackward(gz, z, norms).reshape({V, N, D});
  }
  LossResult r;
  r.loss = detail::attach(wantGrad, loss, zsIn, at::Tensor(), g, at::Tensor());
  r.terms = loss.detach().reshape({1});
  r.termNames = {"nce"};
  return r;
}

}  // namespace tssl::losses
