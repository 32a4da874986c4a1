/**
 * The mapping of a resolved training config onto the engine's wire types (lib/native.ts): every field filled,
 * names as native/bindings/train.cc and native/data/augment.h read them.
 */
import { LARS_DEFAULTS } from './defaults.js';
import type { NativeTrainConfig, NativeView } from './native.js';
import type { ResolvedTrainConfig, ViewConfig } from './train-config.js';

export function toNativeView(v: ViewConfig, norm: { mean: readonly number[]; std: readonly number[] }): NativeView {
  return {
    size: v.size,
    scaleMin: v.scale[0],
    scaleMax: v.scale[1],
    ratioMin: v.ratio[0],
    ratioMax: v.ratio[1],
    interpolation: v.interpolation,
    jitterP: v.jitter.p,
    brightness: v.jitter.brightness,
    contrast: v.jitter.contrast,
    saturation: v.jitter.saturation,
    hue: v.jitter.hue,
    grayP: v.grayscale,
    blurP: v.blur.p,
    sigmaMin: v.blur.sigma[0],
    sigmaMax: v.blur.sigma[1],
    blurKernel: v.blur.kernel,
    solarizeP: v.solarize,
    flipP: v.flip,
    mean: [...norm.mean],
    std: [...norm.std],
  };
}

/** The complete engine config of a resolved training config; `norm` the statistics views and kNN use. */
export function toNativeConfig(c: ResolvedTrainConfig, norm: { mean: readonly number[]; std: readonly number[] }, numClasses: number): NativeTrainConfig {
  return {
    method: c.method,
    // The engine reads a method's options from one map: its loss options and, with a teacher, the EMA's tau.
    loss: { ...c.loss, ...(c.momentum ? { baseTau: c.momentum.baseTau!, finalTau: c.momentum.finalTau! } : {}) },
    depth: c.backbone.depth,
    stem: c.backbone.stem,
    zeroInitResidual: c.backbone.zeroInitResidual,
    projector: c.projectorResolved,
    predictor: c.predictorResolved,
    optimizer: c.optimizer.name!,
    views: c.resolvedViews.map((v) => toNativeView(v, norm)),
    numViews: c.numViews,
    concatViews: c.concatViews,
    batchSize: c.batchSize,
    epochs: c.epochs,
    maxSteps: c.maxSteps,
    profileSteps: c.profileSteps,
    lr: c.optimizer.lr!,
    classifierLr: c.optimizer.classifierLr!,
    weightDecay: c.optimizer.weightDecay!,
    eta: c.optimizer.eta,
    momentum: c.optimizer.momentum,
    // solo-learn's LARS settings the config does not expose.
    dampening: LARS_DEFAULTS.dampening,
    nesterov: LARS_DEFAULTS.nesterov,
    eps: LARS_DEFAULTS.eps,
    clipLr: c.optimizer.clipLr,
    excludeBiasAndNorm: c.optimizer.excludeBiasAndNorm,
    warmupEpochs: c.scheduler.warmupEpochs,
    warmupStartLr: c.scheduler.warmupStartLr,
    minLr: c.scheduler.minLr,
    numClasses,
    seed: c.seed,
    device: c.device,
    channelsLast: c.channelsLast,
    shuffle: c.data.shuffle,
    precision: c.precision,
    gradScaler: c.gradScaler.enabled ?? null,
    scalerInitScale: c.gradScaler.initScale,
    scalerGrowthFactor: c.gradScaler.growthFactor,
    scalerBackoffFactor: c.gradScaler.backoffFactor,
    scalerGrowthInterval: c.gradScaler.growthInterval,
    checkpointEvery: c.checkpoint.every,
    logEvery: c.logEvery,
    knnEvery: c.knn.every,
    knnK: c.knn.k,
    knnTemperature: c.knn.temperature,
    evalMean: [...norm.mean],
    evalStd: [...norm.std],
    dist: null,
  };
}
