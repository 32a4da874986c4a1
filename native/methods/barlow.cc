// Barlow Twins (Zbontar et al. 2021), as solo-learn trains it: two views; native/losses/barlow.cc.
// Options: lambda, scale. Logged terms: onDiag, offDiag.
#include "common/error.h"
#include "distributed/autograd.h"
#include "methods/method.h"

namespace tssl::methods {
namespace {
class Barlow final : public Method {
 public:
  explicit Barlow(losses::BarlowOptions o) : o_(o) {}
  const char* name() const override { return "barlow"; }
  int64_t views() const override { return 2; }
  // One process: the fused loss (hand-derived backward); one rank of a data-parallel job: the same formula with
  // the batch statistics over the gathered batch, as solo-learn computes it, through autograd.
  losses::LossResult loss(const Outputs& o, LossContext& ctx) const override {
    Collective& c = ctx.collective;
    return c.group() ? distributed(o.z, *c.group()) : local(o.z);
  }

  losses::LossResult local(const std::vector<at::Tensor>& zs) const {
    TSSL_CHECK(zs.size() == 2, "ERR_TORCH_SHAPE", "barlow takes 2 views, got ", zs.size());
    return losses::barlow(zs[0], zs[1], o_);
  }
  // solo-learn across processes: each rank standardises its own batch, and the cross-correlation is
  // all-reduced and divided by the world size (its gradient reaches the local batch divided by it too).
  losses::LossResult distributed(const std::vector<at::Tensor>& zs, dist::Group& group) const {
    TSSL_CHECK(zs.size() == 2, "ERR_TORCH_SHAPE", "barlow takes 2 views, got ", zs.size());
    auto standardise = [](const at::Tensor& z) {
      const at::Tensor zf = z.to(at::kFloat);
      const at::Tensor mean = zf.mean(0, true);
      const at::Tensor var = (zf - mean).pow(2).mean(0, true);
      return (zf - mean) / at::sqrt(var + 1e-5);
    };
    const at::Tensor a = standardise(zs[0]), b = standardise(zs[1]);
    const at::Tensor c = dist::meanWithLocalGrad(at::matmul(a.t(), b) / double(a.size(0)), group);
    const at::Tensor diag = c.diagonal();
    const at::Tensor on = (diag - 1).pow(2).sum();
    const at::Tensor off = c.pow(2).sum() - diag.pow(2).sum();
    losses::LossResult r;
    r.loss = o_.scale * (on + o_.lambda * off);
    r.terms = at::stack({on.detach(), off.detach()});
    r.termNames = {"onDiag", "offDiag"};
    return r;
  }

 private:
  losses::BarlowOptions o_;
};
}  // namespace

std::unique_ptr<Method> makeBarlow(OptionReader& r) {
  losses::BarlowOptions o;
  o.lambda = r.take("lambda");
  o.scale = r.take("scale");
  return std::make_unique<Barlow>(o);
}

}  // namespace tssl::methods
