// TCR: total coding rate over many fixed-scale patches per image (EMP-SSL; BagSSL), native/losses/tcr.cc.
// Options: eps, lambda. Logged terms: rate, sim.
#include "distributed/autograd.h"
#include "methods/method.h"

namespace tssl::methods {
namespace {
class TCR final : public Method {
 public:
  explicit TCR(losses::TCROptions o) : o_(o) {}
  const char* name() const override { return "tcr"; }
  int64_t views() const override { return 0; }
  // One process: the fused loss (hand-derived backward); one rank of a data-parallel job: the same formula with
  // the batch statistics over the gathered batch, as solo-learn computes it, through autograd.
  losses::LossResult loss(const Outputs& o, LossContext& ctx) const override {
    Collective& c = ctx.collective;
    return c.group() ? distributed(o.z, *c.group()) : local(o.z);
  }

  losses::LossResult local(const std::vector<at::Tensor>& zs) const { return losses::tcr(stackViews(zs), o_); }
  // Across processes: each view's coding rate over the gathered batch (the rate is a statistic of the whole
  // batch, as VICReg's covariance), the invariance (cosine to the mean of the views) on the local batch.
  losses::LossResult distributed(const std::vector<at::Tensor>& zs, dist::Group& group) const {
    const at::Tensor stack = stackViews(zs).to(at::kFloat);  // (V, N, D)
    const at::Tensor gathered = dist::gatherWithGrad(stack.transpose(0, 1).contiguous(), group).transpose(0, 1);
    losses::TCROptions rateOnly = o_;
    rateOnly.lambda = 0;
    losses::LossResult r = losses::tcr(gathered, rateOnly);
    const at::Tensor z = stack / stack.norm(2, {-1}, true).clamp_min(1e-12);
    const at::Tensor mean = z.mean(0, true);
    const at::Tensor cos = ((z * mean).sum(-1) / (mean.norm(2, {-1}).clamp_min(1e-8))).mean();
    r.loss = r.loss - o_.lambda * cos;
    r.terms = r.terms.clone();
    r.terms[1] = cos.detach().to(r.terms.scalar_type());  // terms: rate (global), sim (local)
    return r;
  }

 private:
  losses::TCROptions o_;
};
}  // namespace

std::unique_ptr<Method> makeTCR(OptionReader& r) {
  losses::TCROptions o;
  o.eps = r.take("eps");
  o.lambda = r.take("lambda");
  return std::make_unique<TCR>(o);
}

}  // namespace tssl::methods
