/**
 * SwAV (Caron et al. 2020) as solo-learn trains it (scripts/pretrain/cifar/swav.yaml, solo/methods/swav.py): each
 * crop's prototype scores predict the Sinkhorn-Knopp assignment of the other crops, with a queue of earlier
 * projections once it has started; multi-crop capable. The engine's half is native/methods/swav.cc.
 */
import { defineMethod } from './method.js';

/** The loss options' defaults (solo-learn's CIFAR config), for `losses` and the training recipe alike. */
const DEFAULTS = {
  numPrototypes: 3000,
  temperature: 0.1,
  sinkhornIterations: 3,
  sinkhornEpsilon: 0.05,
  queueSize: 3840,
  queueStartEpoch: 50,
  freezePrototypesEpochs: 2,
};

export const swav = defineMethod({
  name: 'swav',
  title: 'SwAV (Caron et al. 2020): swapped prediction of Sinkhorn-Knopp prototype assignments',
  lossOptions: {
    numPrototypes: { min: 1, kind: 'int', doc: 'prototypes (rows of the weight-normalised prototype layer)' },
    temperature: { min: 0, exclusive: true, doc: 'softmax temperature of the predicted assignment' },
    sinkhornIterations: { min: 1, kind: 'int', doc: 'Sinkhorn-Knopp iterations' },
    sinkhornEpsilon: { min: 0, exclusive: true, doc: 'Sinkhorn-Knopp entropy regularisation (scores are divided by it)' },
    queueSize: { min: 0, kind: 'int', doc: 'projections of earlier batches kept per large crop (0: no queue; divided among the ranks)' },
    queueStartEpoch: { min: 0, kind: 'int', doc: 'the epoch from which the queue joins the assignments' },
    freezePrototypesEpochs: { min: 0, kind: 'int', doc: 'epochs at the start during which the prototypes take no update' },
  },
  lossDefaults: DEFAULTS,
  views: { default: 2, multiCrop: true },
  concatViews: false,
  projector: {
    hiddenDims: [2048],
    outputDim: 128,
    batchNorm: true,
    doc: 'solo-learn SwAV: Linear 512→2048, BN, ReLU, Linear →128; then L2 norm and the prototypes.',
  },
  modules: ['backbone', 'projector', 'prototypes', 'queue'],
  augmentation: {
    name: 'solo-symmetric',
    views: [{ jitter: { p: 0.8, brightness: 0.8, contrast: 0.8, saturation: 0.8, hue: 0.2 }, blur: { p: 0.5, sigma: [0.1, 2], kernel: 0 } }],
    doc: 'solo-learn symmetric.yaml.',
  },
  state: (loss, head) => ({ params: head.outputDim * loss.numPrototypes! + loss.numPrototypes!, buffers: 2 * loss.queueSize! * head.outputDim }),
  train: {
    lr: 0.6,
    weightDecay: 1e-6,
    classifierLr: 0.1,
    optimizer: 'lars',
    loss: DEFAULTS,
  },
});
