/**
 * MoCo v3 (Chen, Xie, He 2021) as solo-learn trains a ResNet with it (scripts/pretrain/cifar/mocov3.yaml): InfoNCE
 * of the student's predictions against a momentum teacher's keys, negatives over every rank's keys; the engine's
 * half is native/methods/mocov3.cc.
 */
import { defineMethod } from './method.js';

export const mocov3 = defineMethod({
  name: 'mocov3',
  title: 'MoCo v3 (Chen, Xie, He 2021): InfoNCE of predictions against an EMA teacher’s keys',
  lossOptions: { temperature: { min: 0, exclusive: true, doc: 'softmax temperature (the loss is scaled by 2·temperature)' } },
  lossDefaults: { temperature: 0.2 },
  views: { default: 2, exactly: 2 },
  concatViews: false,
  projector: {
    hiddenDims: [4096],
    outputDim: 256,
    batchNorm: true,
    hiddenBias: false,
    outputBias: 'off',
    outputBatchNorm: true,
    doc: 'solo-learn MoCo v3 (ResNet): Linear 512→4096 (no bias), BN, ReLU, Linear →256 (no bias), BN(affine=False).',
  },
  predictor: {
    hiddenDims: [4096],
    outputDim: 256,
    batchNorm: true,
    hiddenBias: false,
    outputBias: 'off',
    doc: 'solo-learn MoCo v3: Linear 256→4096 (no bias), BN, ReLU, Linear →256 (no bias).',
  },
  momentum: { baseTau: 0.99, finalTau: 1.0 },
  augmentation: { name: 'solo-asymmetric', views: [{ solarize: 0 }, { solarize: 0.2 }], doc: 'solo-learn asymmetric.yaml.' },
  train: { lr: 0.3, weightDecay: 1e-6, classifierLr: 0.3, optimizer: 'lars', loss: { temperature: 0.2 } },
});
