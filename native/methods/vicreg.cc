// VICReg (Bardes, Ponce, LeCun 2022), as solo-learn trains it: two views; the loss of native/losses/vicreg.cc.
// Options: simWeight, varWeight, covWeight. Logged terms: sim, var, cov.
#include "common/error.h"
#include "distributed/autograd.h"
#include "methods/method.h"

namespace tssl::methods {
namespace {
class VICReg final : public Method {
 public:
  explicit VICReg(losses::VICRegOptions o) : o_(o) {}
  const char* name() const override { return "vicreg"; }
  int64_t views() const override { return 2; }
  // One process: the fused loss (hand-derived backward); one rank of a data-parallel job: the same formula with
  // the batch statistics over the gathered batch, as solo-learn computes it, through autograd.
  losses::LossResult loss(const Outputs& o, LossContext& ctx) const override {
    Collective& c = ctx.collective;
    return c.group() ? distributed(o.z, *c.group()) : local(o.z);
  }

  losses::LossResult local(const std::vector<at::Tensor>& zs) const {
    TSSL_CHECK(zs.size() == 2, "ERR_TORCH_SHAPE", "vicreg takes 2 views, got ", zs.size());
    return losses::vicreg(zs[0], zs[1], o_);
  }
  // solo-learn: the invariance term on the local batch, variance and covariance on the gathered batch.
  losses::LossResult distributed(const std::vector<at::Tensor>& zs, dist::Group& group) const {
    TSSL_CHECK(zs.size() == 2, "ERR_TORCH_SHAPE", "vicreg takes 2 views, got ", zs.size());
    const at::Tensor sim = at::mse_loss(zs[0], zs[1]);
    losses::VICRegOptions global = o_;
    global.simWeight = 0;
    losses::LossResult r = losses::vicreg(dist::gatherWithGrad(zs[0], group), dist::gatherWithGrad(zs[1], group), global);
    r.loss = r.loss + o_.simWeight * sim;
    r.terms = r.terms.clone();
    r.terms[0] = sim.detach().to(r.terms.scalar_type());  // terms: sim (local), var, cov (global)
    return r;
  }

 private:
  losses::VICRegOptions o_;
};
}  // namespace

std::unique_ptr<Method> makeVICReg(OptionReader& r) {
  losses::VICRegOptions o;
  o.simWeight = r.take("simWeight");
  o.varWeight = r.take("varWeight");
  o.covWeight = r.take("covWeight");
  return std::make_unique<VICReg>(o);
}

}  // namespace tssl::methods
