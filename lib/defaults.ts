/**
 * The library's numeric defaults, each written once: the optimizers (lib/optim.ts), the schedule, the kNN
 * evaluation (lib/eval.ts) and the training schema (lib/train-config.ts) all read them from here. The engine
 * has none of its own: it receives every field (native/train/trainer.h).
 */

/** LARS as solo-learn fills it in (solo/utils/lars.py; eta from its CIFAR configs). */
export const LARS_DEFAULTS = {
  momentum: 0.9,
  dampening: 0,
  weightDecay: 0,
  nesterov: false,
  eta: 0.02,
  eps: 1e-8,
  clipLr: true,
  excludeBiasAndNorm: true,
} as const;

/** torch.optim.SGD's. */
export const SGD_DEFAULTS = { momentum: 0, dampening: 0, weightDecay: 0, nesterov: false } as const;

/** solo-learn's LinearWarmupCosineAnnealingLR settings (warmup_epochs 10, warmup_start_lr 3e-5, eta_min 0). */
export const SCHEDULE_DEFAULTS = { warmupEpochs: 10, warmupStartLr: 3e-5, minLr: 0 } as const;

/** Weighted kNN (solo-learn's WeightedKNNClassifier: k 20, T 0.07, cosine) and the grid's candidates. */
export const KNN_DEFAULTS = {
  k: 20,
  temperature: 0.07,
  distance: 'cosine',
  gridKs: [1, 2, 5, 10, 20, 50, 100, 200],
  gridTemperatures: [0.01, 0.02, 0.05, 0.07, 0.1, 0.2, 0.5, 1],
} as const;
