// SimCLR (Chen et al. 2020), solo-learn's NT-Xent over any number of views; native/losses/simclr.cc.
// Options: temperature. Logged term: nce.
#include "distributed/autograd.h"
#include "methods/method.h"

namespace tssl::methods {
namespace {
class SimCLR final : public Method {
 public:
  explicit SimCLR(losses::SimCLROptions o) : o_(o) {}
  const char* name() const override { return "simclr"; }
  int64_t views() const override { return 0; }
  // One process: the fused loss (hand-derived backward); one rank of a data-parallel job: the same formula with
  // the batch statistics over the gathered batch, as solo-learn computes it, through autograd.
  losses::LossResult loss(const Outputs& o, LossContext& ctx) const override {
    Collective& c = ctx.collective;
    return c.group() ? distributed(o.z, *c.group()) : local(o.z);
  }

  losses::LossResult local(const std::vector<at::Tensor>& zs) const { return losses::simclr(stackViews(zs), o_); }
  // solo-learn across processes: the local anchors (all views) against the gathered candidates of every rank;
  // positives share a sample id, the self-pair sits at column V·N·rank + i (solo-learn issue #206).
  losses::LossResult distributed(const std::vector<at::Tensor>& zs, dist::Group& group) const {
    const at::Tensor stack = stackViews(zs).to(at::kFloat);
    const int64_t v = stack.size(0), n = stack.size(1), d = stack.size(2), w = group.size(), rank = group.rank();
    at::Tensor z = stack.reshape({v * n, d});
    z = z / z.norm(2, {-1}, true).clamp_min(1e-12);
    const at::Tensor all = dist::gatherWithGrad(z, group);
    const auto longs = at::TensorOptions().dtype(at::kLong).device(z.device());
    const at::Tensor ids = (at::arange(n, longs) + rank * n).repeat({v});
    const at::Tensor allIds = (at::arange(n, longs).repeat({v}).unsqueeze(0) + (at::arange(w, longs) * n).unsqueeze(1)).reshape({-1});
    const at::Tensor s = at::exp(at::matmul(z, all.t()) / o_.temperature);
    at::Tensor pos = ids.unsqueeze(1).eq(allIds.unsqueeze(0));
    const at::Tensor rows = at::arange(v * n, longs);
    pos.index_put_({rows, rows + v * n * rank}, false);
    const at::Tensor neg = ids.unsqueeze(1).ne(allIds.unsqueeze(0));
    const at::Tensor p = (s * pos).sum(1), q = (s * neg).sum(1);
    losses::LossResult r;
    r.loss = -at::log(p / (p + q)).mean();
    r.terms = r.loss.detach().reshape({1});
    r.termNames = {"nce"};
    return r;
  }

 private:
  losses::SimCLROptions o_;
};
}  // namespace

std::unique_ptr<Method> makeSimCLR(OptionReader& r) {
  losses::SimCLROptions o;
  o.temperature = r.take("temperature");
  return std::make_unique<SimCLR>(o);
}

}  // namespace tssl::methods
