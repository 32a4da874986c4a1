/** VICReg (Bardes, Ponce, LeCun 2022) as solo-learn trains it; the engine's half is native/methods/vicreg.cc. */
import { defineMethod } from './method.js';

export const vicreg = defineMethod({
  name: 'vicreg',
  title: 'VICReg (Bardes, Ponce, LeCun 2022): variance, invariance, covariance on two views',
  lossOptions: {
    simWeight: { min: 0, doc: 'weight of the invariance (MSE) term' },
    varWeight: { min: 0, doc: 'weight of the variance hinge term' },
    covWeight: { min: 0, doc: 'weight of the covariance term' },
  },
  lossDefaults: { simWeight: 25, varWeight: 25, covWeight: 1 },
  views: { default: 2, exactly: 2 },
  concatViews: false,
  projector: { hiddenDims: [2048, 2048], outputDim: 2048, batchNorm: true, doc: 'solo-learn VICReg: Linear-BN-ReLU ×2 → Linear, 2048-2048-2048.' },
  augmentation: {
    name: 'solo-vicreg',
    views: [{ scale: [0.2, 1], solarize: 0.1 }],
    doc: 'solo-learn vicreg.yaml: crop scale (0.2, 1), solarize 0.1 on both views.',
  },
  train: { lr: 0.3, weightDecay: 1e-4, loss: { simWeight: 25, varWeight: 25, covWeight: 1 } },
});
