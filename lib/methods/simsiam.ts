/**
 * SimSiam (Chen, He 2021) as solo-learn trains it (scripts/pretrain/cifar/simsiam.yaml): each view's prediction
 * regresses the other's projection under stop-gradient, no teacher; momentum SGD, the predictor at a fixed
 * learning rate; the engine's half is native/methods/simsiam.cc.
 */
import { defineMethod } from './method.js';

export const simsiam = defineMethod({
  name: 'simsiam',
  title: 'SimSiam (Chen, He 2021): predictions regress the other view’s projection under stop-gradient',
  lossOptions: {},
  lossDefaults: {},
  views: { default: 2, exactly: 2 },
  concatViews: false,
  projector: {
    hiddenDims: [2048, 2048],
    outputDim: 2048,
    batchNorm: true,
    hiddenBias: false,
    outputBias: 'frozen',
    outputBatchNorm: true,
    doc: 'solo-learn SimSiam: (Linear no bias, BN, ReLU) ×2, Linear →2048 (bias frozen), BN(affine=False).',
  },
  predictor: {
    hiddenDims: [512],
    outputDim: 2048,
    batchNorm: true,
    hiddenBias: false,
    staticLr: true,
    doc: 'solo-learn SimSiam: Linear 2048→512 (no bias), BN, ReLU, Linear →2048; fixed lr.',
  },
  augmentation: {
    name: 'solo-symmetric-weak',
    views: [{ jitter: { p: 0.8, brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1 }, blur: { p: 0.5, sigma: [0.1, 2], kernel: 0 } }],
    doc: 'solo-learn symmetric_weak.yaml (SimSiam): crop scale (0.08, 1), jitter 0.8 × 0.4/0.4/0.4/0.1, gray 0.2, blur 0.5.',
  },
  train: { lr: 0.5, weightDecay: 1e-5, classifierLr: 0.1, optimizer: 'sgd', loss: {} },
});
