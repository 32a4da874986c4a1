#include "methods/momentum.h"

#include <torch/autograd.h>

#include <cmath>

#include "common/error.h"

namespace tssl::methods {

double TauSchedule::at(int64_t step, int64_t totalSteps) const {
  if (totalSteps <= 0) return base;
  return final - (final - base) * (std::cos(M_PI * double(step) / double(totalSteps)) + 1) / 2;
}

TauSchedule TauSchedule::read(OptionReader& r) {
  TauSchedule t;
  t.base = r.take("baseTau");
  t.final = r.take("finalTau");
  TSSL_CHECK(t.base >= 0 && t.base <= t.final && t.final <= 1, "ERR_CONFIG", "method ", r.method(),
             ": momentum needs 0 <= baseTau <= finalTau <= 1, got baseTau ", t.base, ", finalTau ", t.final);
  return t;
}

void emaUpdate(MethodModel& model, double tau) {
  at::NoGradGuard g;
  // The same arithmetic as solo-learn's MomentumUpdater: mp = tau·mp + (1 − tau)·op.
  for (auto& [teacher, student] : model.momentumPairs()) teacher.copy_(teacher * tau + student * (1 - tau));
}

}  // namespace tssl::methods
