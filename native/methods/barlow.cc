// Barlow Twins (Zbontar et al. 2021), as solo-learn trains it: two views; native/losses/barlow.cc.
// Options: lambda, scale. Logged terms: onDiag, offDiag.
#include "common/error.h"
#include "methods/method.h"

namespace tssl::methods {
namespace {
class Barlow final : public Method {
 public:
  explicit Barlow(losses::BarlowOptions o) : o_(o) {}
  const char* name() const override { return "barlow"; }
  int64_t views() const override { return 2; }
  losses::LossResult loss(const std::vector<at::Tensor>& zs) const override {
    TSSL_CHECK(zs.size() == 2, "ERR_TORCH_SHAPE", "barlow takes 2 views, got ", zs.size());
    return losses::barlow(zs[0], zs[1], o_);
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
