// MoCo v3 (Chen, Xie, He 2021) as solo-learn trains it: InfoNCE between the student's predictions (queries) of
// one view and the teacher's projections (keys) of the other, both L2-normalised, with the keys of every rank as
// negatives (gathered without gradient; the positives at n·rank + i), scaled by 2·temperature, summed over both
// directions; the teacher follows by EMA (methods/momentum.h). Options: temperature, baseTau, finalTau.
// Logged term: contrastive.
#include "common/error.h"
#include "methods/momentum.h"

namespace tssl::methods {
namespace {

class MoCoV3 final : public MomentumMethod {
 public:
  MoCoV3(TauSchedule tau, double temperature) : MomentumMethod(tau), temperature_(temperature) {}
  const char* name() const override { return "mocov3"; }
  int64_t views() const override { return 2; }
  losses::LossResult loss(const Outputs& o, LossContext& ctx) const override {
    Collective& c = ctx.collective;
    TSSL_CHECK(o.p.size() == 2 && o.teacher.size() == 2, "ERR_TORCH_SHAPE", "mocov3 takes 2 views with predictions and teacher projections");
    losses::LossResult r;
    r.loss = infoNce(o.p[0], o.teacher[1], c) + infoNce(o.p[1], o.teacher[0], c);
    r.terms = r.loss.detach().reshape({1});
    r.termNames = {"contrastive"};
    return r;
  }

 private:
  at::Tensor infoNce(const at::Tensor& query, const at::Tensor& key, Collective& c) const {
    const int64_t n = query.size(0);
    const at::Tensor q = l2normalize(query);
    const at::Tensor k = c.gatherNoGrad(l2normalize(key));
    const at::Tensor logits = at::einsum("nc,mc->nm", {q, k}) / temperature_;
    const at::Tensor labels = at::arange(n, at::TensorOptions().dtype(at::kLong).device(q.device())) + n * c.rank();
    return at::cross_entropy_loss(logits, labels, {}, at::Reduction::Mean, -100) * (2 * temperature_);
  }
  double temperature_;
};

}  // namespace

std::unique_ptr<Method> makeMoCoV3(OptionReader& r) {
  const double t = r.take("temperature");
  TSSL_CHECK(t > 0, "ERR_CONFIG", "method mocov3: temperature must be > 0, got ", t);
  return std::make_unique<MoCoV3>(TauSchedule::read(r), t);
}

}  // namespace tssl::methods
