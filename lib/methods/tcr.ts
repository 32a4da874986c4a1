/**
 * TCR: total coding rate over many fixed-scale patches per image (EMP-SSL; the BagSSL seed's λ and ε); the
 * engine's half is native/methods/tcr.cc.
 */
import { defineMethod } from './method.js';

export const tcr = defineMethod({
  name: 'tcr',
  title: 'TCR / EMP-SSL: total coding rate over many fixed-scale patches per image',
  lossOptions: {
    eps: { min: 0, exclusive: true, doc: 'coding precision ε (enters un-squared, as in EMP-SSL’s code)' },
    lambda: { min: 0, doc: 'weight of the invariance (cosine to the mean patch embedding) term' },
  },
  lossDefaults: { eps: 0.2, lambda: 30 },
  views: { default: 20 },
  concatViews: true,
  projector: { hiddenDims: [4096, 4096], outputDim: 1024, batchNorm: true, doc: 'EMP-SSL (TCR): 4096 pre-feature + 4096 hidden, BN, → 1024.' },
  augmentation: {
    name: 'emp-ssl-patches',
    views: [
      {
        scale: [0.25, 0.25],
        ratio: [1, 1],
        interpolation: 'bilinear',
        jitter: { p: 0.8, brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.2 },
        blur: { p: 0.1, sigma: [0.1, 2], kernel: 0 },
        solarize: 0.1,
      },
    ],
    doc: 'EMP-SSL CIFAR: fixed-scale 16×16 patches (area 0.25, ratio 1) upsampled to 32, bilinear.',
  },
  train: { lr: 0.3, weightDecay: 1e-4, loss: { eps: 0.2, lambda: 30 } },
});
