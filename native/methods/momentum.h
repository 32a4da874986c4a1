// What solo-learn's BaseMomentumMethod adds to a method: a teacher (momentum_backbone, momentum_projector) that
// follows the student by an exponential moving average after every optimizer step, with the cosine schedule of
// solo/utils/momentum.py: tau(step) = final − (final − base)·(cos(π·step/maxSteps) + 1)/2. Parameters only: the
// teacher's BatchNorm buffers are its own running statistics (it runs in train mode).
#pragma once
#include "methods/method.h"

namespace tssl::methods {

struct TauSchedule {
  double base = 0, final = 0;
  /// tau for the optimizer step `step` (0-based) of `totalSteps`: base at step 0, final at the end.
  double at(int64_t step, int64_t totalSteps) const;
  /// Reads baseTau / finalTau (0 ≤ base ≤ final ≤ 1).
  static TauSchedule read(OptionReader& r);
};

/// teacher ← tau·teacher + (1 − tau)·student, for every momentum pair of the model.
void emaUpdate(MethodModel& model, double tau);

class MomentumMethod : public Method {
 public:
  explicit MomentumMethod(TauSchedule tau) : tau_(tau) {}
  Heads heads() const override { return {true, true}; }
  void afterStep(MethodModel& model, int64_t step, int64_t totalSteps) const override { emaUpdate(model, tau_.at(step, totalSteps)); }

 protected:
  TauSchedule tau_;
};

}  // namespace tssl::methods
