// The learning-rate schedule: solo-learn's LinearWarmupCosineAnnealingLR (interval "step") in closed form, the
// one implementation the trainer (train/trainer.cc) and the library's warmupCosine (lib/optim.ts, through the
// binding) both use:
//   step < W: start + step·(base − start) / max(1, W − 1)   (start = base when W = 0)
//   else:     min + ½(base − min)(1 + cos(π(step − W) / (T − W)));  base when T ≤ W (warm-up covers the run).
#pragma once

namespace tssl::optim {

double warmupCosineLr(double step, double warmupSteps, double totalSteps, double baseLr, double warmupStartLr, double minLr);

}  // namespace tssl::optim
