/**
 * DINO (Caron et al. 2021) as solo-learn trains a ResNet with it (scripts/pretrain/cifar/dino.yaml,
 * solo/methods/dino.py): an EMA teacher's centred, sharpened outputs over prototypes teach the student's, through a
 * DINO head (MLP, L2 norm, weight-normalised last layer); multi-crop capable. The engine's half is
 * native/methods/dino.cc.
 */
import { defineMethod } from './method.js';

/** DINO's crops on CIFAR-size images: 2 global crops of 32 (scale 0.4–1) and 6 local crops of 16 (0.05–0.4). */
export const DINO_MULTICROP_CIFAR = [
  { size: 32, scale: [0.4, 1], crops: 2 },
  { size: 16, scale: [0.05, 0.4], crops: 6 },
];

/** The loss options' defaults (solo-learn's CIFAR config), for `losses` and the training recipe alike. */
const DEFAULTS = {
  numPrototypes: 4096,
  normLastLayer: 1,
  studentTemperature: 0.1,
  teacherTemperature: 0.07,
  warmupTeacherTemperature: 0.04,
  warmupTeacherTemperatureEpochs: 0,
  centerMomentum: 0.9,
  freezeLastLayerEpochs: 1,
  clipGrad: 0,
};

export const dino = defineMethod({
  name: 'dino',
  title: 'DINO (Caron et al. 2021): an EMA teacher’s centred, sharpened prototype outputs teach the student',
  lossOptions: {
    numPrototypes: { min: 1, kind: 'int', doc: 'outputs of the head’s last layer (prototypes)' },
    normLastLayer: { min: 0, max: 1, kind: 'bool', doc: 'keep the last layer’s weight_g frozen at 1 (unit prototypes)' },
    studentTemperature: { min: 0, exclusive: true, doc: 'the student’s softmax temperature' },
    teacherTemperature: { min: 0, exclusive: true, doc: 'the teacher’s softmax temperature after the warm-up' },
    warmupTeacherTemperature: { min: 0, exclusive: true, doc: 'the teacher’s temperature at epoch 0 (linear warm-up)' },
    warmupTeacherTemperatureEpochs: { min: 0, kind: 'int', doc: 'epochs of the teacher temperature’s warm-up (0: none)' },
    centerMomentum: { min: 0, max: 1, doc: 'momentum of the centre’s EMA over the teacher’s batch means' },
    freezeLastLayerEpochs: { min: 0, kind: 'int', doc: 'epochs at the start during which the last layer takes no update' },
    clipGrad: { min: 0, doc: 'clip each backbone parameter’s gradient norm to this (0: off)' },
  },
  lossDefaults: DEFAULTS,
  views: { default: 2, multiCrop: true },
  concatViews: false,
  projector: {
    hiddenDims: [2048, 2048],
    outputDim: 256,
    batchNorm: false,
    activation: 'gelu',
    doc: 'solo-learn DINOHead mlp: Linear 512→2048, GELU, Linear →2048, GELU, Linear →256 (bottleneck); then L2 norm and a weight-normalised Linear onto the prototypes.',
  },
  momentum: { baseTau: 0.9995, finalTau: 1.0 },
  modules: ['backbone', 'head', 'momentum_backbone', 'momentum_head', 'dino_loss_func'],
  augmentation: { name: 'solo-asymmetric', views: [{ solarize: 0 }, { solarize: 0.2 }], doc: 'solo-learn asymmetric.yaml.' },
  moreAugmentations: [
    { name: 'dino-multicrop-cifar', views: DINO_MULTICROP_CIFAR, doc: '2 global crops of 32 (scale 0.4–1), 6 local crops of 16 (scale 0.05–0.4).' },
  ],
  // The student's last layer (with its LARS momentum), the teacher's copy and the centre.
  state: (loss, head) => ({
    params: head.outputDim * loss.numPrototypes! + loss.numPrototypes!,
    buffers: head.outputDim * loss.numPrototypes! + 2 * loss.numPrototypes!,
  }),
  train: {
    lr: 0.3,
    weightDecay: 1e-6,
    classifierLr: 0.1,
    optimizer: 'lars',
    loss: DEFAULTS,
  },
});
