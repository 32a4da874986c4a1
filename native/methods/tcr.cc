// TCR: total coding rate over many fixed-scale patches per image (EMP-SSL; BagSSL), native/losses/tcr.cc.
// Options: eps, lambda. Logged terms: rate, sim.
#include "methods/method.h"

namespace tssl::methods {
namespace {
class TCR final : public Method {
 public:
  explicit TCR(losses::TCROptions o) : o_(o) {}
  const char* name() const override { return "tcr"; }
  int64_t views() const override { return 0; }
  losses::LossResult loss(const std::vector<at::Tensor>& zs) const override { return losses::tcr(stackViews(zs), o_); }

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
