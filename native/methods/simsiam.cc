// SimSiam (Chen, He 2021) as solo-learn trains it: no teacher; each view's prediction regresses the other view's
// projection under stop-gradient, −cos averaged over both directions; the predictor at a fixed learning rate
// (solo-learn's static_lr: the warmup-cosine schedule leaves it at the base lr). No cross-rank statistics.
// Options: none. Logged term: neg_cos_sim.
#include "common/error.h"
#include "methods/method.h"

namespace tssl::methods {
namespace {

at::Tensor negCos(const at::Tensor& p, const at::Tensor& z) { return -at::cosine_similarity(p, z.detach(), 1, 1e-8).mean(); }

class SimSiam final : public Method {
 public:
  const char* name() const override { return "simsiam"; }
  int64_t views() const override { return 2; }
  Heads heads() const override { return {true, false}; }
  std::vector<ParamGroup> paramGroups(MethodModel& m) const override {
    std::vector<ParamGroup> g = Method::paramGroups(m);
    for (auto& group : g)
      if (group.name == "predictor") group.staticLr = true;
    return g;
  }
  losses::LossResult loss(const Outputs& o, LossContext&) const override {
    TSSL_CHECK(o.p.size() == 2 && o.z.size() == 2, "ERR_TORCH_SHAPE", "simsiam takes 2 views with projections and predictions");
    losses::LossResult r;
    r.loss = negCos(o.p[0], o.z[1]) / 2 + negCos(o.p[1], o.z[0]) / 2;
    r.terms = r.loss.detach().reshape({1});
    r.termNames = {"neg_cos_sim"};
    return r;
  }
};

}  // namespace

std::unique_ptr<Method> makeSimSiam(OptionReader&) { return std::make_unique<SimSiam>(); }

}  // namespace tssl::methods
