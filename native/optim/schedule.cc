#include "optim/schedule.h"

#include <algorithm>
#include <cmath>

namespace tssl::optim {

double warmupCosineLr(double step, double warmupSteps, double totalSteps, double baseLr, double warmupStartLr, double minLr) {
  const double start = warmupSteps <= 0 ? baseLr : warmupStartLr;
  if (step < warmupSteps) return start + step * (baseLr - start) / std::max(1.0, warmupSteps - 1);
  if (totalSteps <= warmupSteps) return baseLr;
  return minLr + 0.5 * (baseLr - minLr) * (1 + std::cos(M_PI * (step - warmupSteps) / (totalSteps - warmupSteps)));
}

}  // namespace tssl::optim
