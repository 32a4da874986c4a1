// scripts/fixtures/train_step.py's VICReg step as a train() config: ResNet-18 CIFAR stem, a 256-wide projector,
// LARS, from the fixture's initial checkpoint. Deterministic views (the image; its mirror image), one batch = the
// whole set, so shuffling does not matter. test/train-amp.test.ts, test/winograd.test.ts and
// test/batch-norm-act.test.ts compare it with PyTorch's.
import { fixturePath } from './fixtures.js';

/** An augmentation that keeps the image as it is (no crop, no jitter, no grayscale); flip is set per view. */
export const stillView = { scale: [1, 1], ratio: [1, 1], jitter: { p: 0, brightness: 0, contrast: 0, saturation: 0, hue: 0 }, grayscale: 0 };

export function trainStepConfig(dir: string, precision: '32' | 'bf16-mixed', extra: Record<string, unknown> = {}) {
  return {
    method: 'vicreg' as const,
    data: { train: fixturePath('train_step', 'images.npy'), shuffle: false },
    projector: { hiddenDims: [256], outputDim: 128 },
    augmentation: [
      { ...stillView, flip: 0 },
      { ...stillView, flip: 1 },
    ],
    batchSize: 64,
    epochs: 1,
    scheduler: { warmupEpochs: 0 },
    optimizer: { lr: 0.3, weightDecay: 1e-4, eta: 0.02 },
    precision,
    resume: fixturePath('train_step', 'init.ckpt'),
    checkpoint: { dir },
    ...extra,
  };
}
