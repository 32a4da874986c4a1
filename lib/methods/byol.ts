/**
 * BYOL (Grill et al. 2020) as solo-learn trains it (scripts/pretrain/cifar/byol.yaml): the student's predictions
 * regress a momentum teacher's projections of the other view; the engine's half is native/methods/byol.cc.
 */
import { defineMethod } from './method.js';

export const byol = defineMethod({
  name: 'byol',
  title: 'BYOL (Grill et al. 2020): predictions regress an EMA teacher’s projections',
  lossOptions: {},
  lossDefaults: {},
  views: { default: 2, exactly: 2 },
  concatViews: false,
  projector: { hiddenDims: [4096], outputDim: 256, batchNorm: true, doc: 'solo-learn BYOL: Linear 512→4096, BN, ReLU, Linear →256.' },
  predictor: { hiddenDims: [4096], outputDim: 256, batchNorm: true, doc: 'solo-learn BYOL: Linear 256→4096, BN, ReLU, Linear →256.' },
  momentum: { baseTau: 0.99, finalTau: 1.0 },
  augmentation: {
    name: 'solo-asymmetric',
    views: [{ solarize: 0 }, { solarize: 0.2 }],
    doc: 'solo-learn asymmetric.yaml (BYOL, Barlow): solarize 0 / 0.2, no blur on CIFAR.',
  },
  train: { lr: 1.0, weightDecay: 1e-5, classifierLr: 0.1, optimizer: 'lars', loss: {} },
});
