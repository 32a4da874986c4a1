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

  // Row i = view i / N, image i % N. Self-pair excluded from both sums; the V − 1 positives of row i are the
  // columns (i mod N) + w·N for the other views w, gathered instead of masking an M×M copy.
  at::Tensor S = at::mm(z, z.t()).mul_(invT);
  S.fill_diagonal_(ninf);
  const auto longOpts = at::TensorOptions().dtype(at::kLong).device(z.device());
  at::Tensor row = at::arange(M, longOpts);
  at::Tensor view = row.div(N, "floor"), image = row.remainder(N);
  at::Tensor others = at::arange(V - 1, longOpts).unsqueeze(0);                 // (1, V−1)
  at::Tensor otherView = others + (others >= view.unsqueeze(1)).to(at::kLong);  // skip own view
  at::Tensor posIdx = otherView * N + image.unsqueeze(1);                       // (M, V−1)
  at::Tensor posLogits = S.gather(1, posIdx);
  at::Tensor logAll = at::logsumexp(S, {1}, true);
  at::Tensor logPos = at::logsumexp(posLogits, {1}, true);
  at::Tensor loss = (logAll - logPos).mean();

  at::Tensor g;
  if (wantGrad) {
    // dL/dS_ij = (softmax over all j≠i − softmax over positives) / M;  dL/dz = (A + Aᵀ) z / T.
    at::Tensor A = S.sub_(logAll).exp_();
    A.scatter_add_(1, posIdx, posLogits.sub_(logPos).exp_().neg_());
    A.div_(double(M));
    at::Tensor gz = at::mm(A + A.t(), z).mul_(invT);
    // Normalisation backward in place: (gz − z·⟨z, gz⟩) / ‖u‖.
    at::Tensor dot = (z * gz).sum(-1, true);
    g = gz.addcmul_(z, dot, -1.0).div_(norms).reshape({V, N, D});
  }
  LossResult r;
  r.loss = detail::attach(wantGrad, loss, zsIn, at::Tensor(), g, at::Tensor());
  r.terms = loss.detach().reshape({1});
  r.termNames = {"nce"};
  return r;
}

}  // namespace tssl::losses
