/** Barlow Twins (Zbontar et al. 2021) as solo-learn trains it; the engine's half is native/methods/barlow.cc. */
import { defineMethod } from './method.js';

export const barlow = defineMethod({
  name: 'barlow',
  title: 'Barlow Twins (Zbontar et al. 2021): cross-correlation towards the identity',
  lossOptions: {
    lambda: { min: 0, doc: 'weight of the off-diagonal (redundancy) term' },
    scale: { min: 0, exclusive: true, doc: 'overall scale of the loss' },
  },
  lossDefaults: { lambda: 0.0051, scale: 0.1 },
  views: { default: 2, exactly: 2 },
  concatViews: false,
  projector: { hiddenDims: [2048, 2048], outputDim: 2048, batchNorm: true, doc: 'solo-learn Barlow Twins: as VICReg.' },
  augmentation: {
    name: 'solo-asymmetric',
    views: [{ solarize: 0 }, { solarize: 0.2 }],
    doc: 'solo-learn asymmetric.yaml (BYOL, Barlow): solarize 0 / 0.2, no blur on CIFAR.',
  },
  train: { lr: 0.3, weightDecay: 1e-4, loss: { lambda: 0.0051, scale: 0.1 } },
});
