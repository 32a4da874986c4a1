/** SimCLR (Chen et al. 2020), solo-learn's NT-Xent over any number of views; the engine's half is native/methods/simclr.cc. */
import { defineMethod } from './method.js';

export const simclr = defineMethod({
  name: 'simclr',
  title: 'SimCLR (Chen et al. 2020): NT-Xent over any number of views',
  lossOptions: { temperature: { min: 0, exclusive: true, doc: 'softmax temperature' } },
  lossDefaults: { temperature: 0.1 },
  views: { default: 2 },
  concatViews: false,
  projector: { hiddenDims: [2048], outputDim: 256, batchNorm: false, doc: 'solo-learn SimCLR: Linear-ReLU → Linear, 2048 → 256, no BN.' },
  augmentation: {
    name: 'solo-symmetric',
    views: [{ jitter: { p: 0.8, brightness: 0.8, contrast: 0.8, saturation: 0.8, hue: 0.2 }, blur: { p: 0.5, sigma: [0.1, 2], kernel: 0 } }],
    doc: 'solo-learn symmetric.yaml (SimCLR).',
  },
  // solo-learn's CIFAR SimCLR config trains at temperature 0.2 (the loss function's own default is 0.1).
  train: { lr: 0.4, weightDecay: 1e-4, loss: { temperature: 0.2 } },
});
