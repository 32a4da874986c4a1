// SimCLR (Chen et al. 2020), solo-learn's NT-Xent over any number of views; native/losses/simclr.cc.
// Options: temperature. Logged term: nce.
#include "methods/method.h"

namespace tssl::methods {
namespace {
class SimCLR final : public Method {
 public:
  explicit SimCLR(losses::SimCLROptions o) : o_(o) {}
  const char* name() const override { return "simclr"; }
  int64_t views() const override { return 0; }
  losses::LossResult loss(const std::vector<at::Tensor>& zs) const override { return losses::simclr(stackViews(zs), o_); }

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
