// BYOL (Grill et al. 2020) as solo-learn trains it: the student's predictions regress the teacher's projections
// of the other view, l(p, z') = 2 − 2·mean cos(p, z'), summed over both directions; the teacher follows by EMA
// (methods/momentum.h). No cross-rank statistics: a data-parallel rank computes the same loss on its own batch.
// Options: baseTau, finalTau. Logged term: byol.
#include "common/error.h"
#include "methods/momentum.h"

namespace tssl::methods {
namespace {

at::Tensor byolLoss(const at::Tensor& p, const at::Tensor& z) { return 2 - 2 * at::cosine_similarity(p, z.detach(), 1, 1e-8).mean(); }

class BYOL final : public MomentumMethod {
 public:
  using MomentumMethod::MomentumMethod;
  const char* name() const override { return "byol"; }
  int64_t views() const override { return 2; }
  losses::LossResult loss(const Outputs& o, LossContext&) const override {
    TSSL_CHECK(o.p.size() == 2 && o.teacher.size() == 2, "ERR_TORCH_SHAPE", "byol takes 2 views with predictions and teacher projections");
    // solo-learn: Σ over v1 (large crops) and v2 ≠ v1 of l(P[v2], Z_momentum[v1]).
    losses::LossResult r;
    r.loss = byolLoss(o.p[1], o.teacher[0]) + byolLoss(o.p[0], o.teacher[1]);
    r.terms = r.loss.detach().reshape({1});
    r.termNames = {"byol"};
    return r;
  }
};

}  // namespace

std::unique_ptr<Method> makeBYOL(OptionReader& r) { return std::make_unique<BYOL>(TauSchedule::read(r)); }

}  // namespace tssl::methods
