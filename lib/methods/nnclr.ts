/**
 * NNCLR (Dwibedi et al. 2021) as solo-learn trains it (scripts/pretrain/cifar/nnclr.yaml, solo/methods/nnclr.py):
 * InfoNCE between each view's nearest neighbour in a support queue and the other view's prediction. The engine's
 * half is native/methods/nnclr.cc.
 */
import { defineMethod } from './method.js';

/** The loss options' defaults (solo-learn's CIFAR config), for `losses` and the training recipe alike. */
const DEFAULTS = { temperature: 0.2, queueSize: 65536 };

export const nnclr = defineMethod({
  name: 'nnclr',
  title: 'NNCLR (Dwibedi et al. 2021): InfoNCE of support-queue nearest neighbours against predictions',
  lossOptions: {
    temperature: { min: 0, exclusive: true, doc: 'softmax temperature' },
    queueSize: { min: 1, kind: 'int', doc: 'projections kept in the support queue (a multiple of the batch across ranks)' },
  },
  lossDefaults: DEFAULTS,
  views: { default: 2, exactly: 2 },
  concatViews: false,
  projector: {
    hiddenDims: [2048, 2048],
    outputDim: 256,
    batchNorm: true,
    outputBatchNorm: true,
    outputBatchNormAffine: true,
    doc: 'solo-learn NNCLR: (Linear, BN, ReLU) ×2 at 2048, Linear →256, BN.',
  },
  predictor: { hiddenDims: [4096], outputDim: 256, batchNorm: true, doc: 'solo-learn NNCLR: Linear 256→4096, BN, ReLU, Linear →256.' },
  modules: ['backbone', 'projector', 'predictor', 'queue', 'queue_y', 'queue_ptr'],
  augmentation: { name: 'solo-asymmetric', views: [{ solarize: 0 }, { solarize: 0.2 }], doc: 'solo-learn asymmetric.yaml.' },
  checkConfig: (c) =>
    c.loss.queueSize! % c.batchSize !== 0
      ? `config.loss.queueSize ${c.loss.queueSize} must be a multiple of config.batchSize ${c.batchSize} (times the ranks): the queue takes whole batches`
      : undefined,
  state: (loss, head) => ({ params: 0, buffers: loss.queueSize! * (head.outputDim + 1) + 1 }),
  train: { lr: 0.4, weightDecay: 1e-5, classifierLr: 0.1, optimizer: 'lars', loss: DEFAULTS },
});
