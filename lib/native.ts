/**
 * Loads the compiled addon (build/Release/torch_ssl.node) and fails with an actionable message: what was
 * looked for, why it failed, and how to fix it (sharp-style).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TorchSslError } from './errors.js';

export interface NativeTensor {
  readonly shape: number[];
  readonly dtype: string;
  readonly device: string;
  requiresGrad: boolean;
  grad: NativeTensor | null;
  readonly disposed: boolean;
  readonly nbytes: number;
  toBuffer(): ArrayBuffer;
  /** No copy: an ArrayBuffer over the tensor's storage (only for tensors nothing mutates afterwards). */
  toSharedBuffer(): ArrayBuffer;
  item(): number | boolean;
  backward(gradient?: NativeTensor): Promise<void>;
  dispose(): void;
  /** Tensor ops by name (native/bindings/tensor.cc): a new tensor, or a boolean for 'isfinite'. */
  op(name: 'isfinite'): boolean;
  /** Test hook: [output, input gradient, weight gradient] of a Winograd 3×3 convolution. */
  op(name: 'winogradConv3x3', weight: NativeTensor, gradOutput: NativeTensor): [NativeTensor, NativeTensor, NativeTensor];
  /** Test hook: [output, input gradient, weight gradient, bias gradient, residual gradient] of the fused BatchNorm + add + ReLU. */
  op(
    name: 'batchNormAct',
    weight: NativeTensor,
    bias: NativeTensor,
    residual: NativeTensor | null,
    runningMean: NativeTensor | null,
    runningVar: NativeTensor | null,
    factor: number,
    eps: number,
    relu: boolean,
    gradOutput: NativeTensor,
  ): [NativeTensor, NativeTensor, NativeTensor, NativeTensor, NativeTensor | null];
  op(name: string, ...args: unknown[]): NativeTensor;
  to(device?: string, dtype?: string): NativeTensor;
}

export interface NativeModule {
  readonly training: boolean;
  readonly kind: string;
  forward(x: NativeTensor, opts?: { grad?: boolean }): Promise<NativeTensor>;
  featureMap(x: NativeTensor, opts?: { grad?: boolean }): Promise<NativeTensor>;
  setTraining(on: boolean): void;
  namedParameters(): [string, NativeTensor][];
  namedBuffers(): [string, NativeTensor][];
  loadStateDict(entries: [string, NativeTensor][], strict: boolean): Promise<{ missing: string[]; unexpected: string[] }>;
  to(device: string): Promise<void>;
  setChannelsLast(on: boolean): void;
  dispose(): void;
}

/** The BLAS the engine's GEMMs run on (native/common/blas.h). */
export interface BlasInfo {
  /** 'OpenBLAS', or '' for another BLAS (nothing is known or changed then). */
  library: string;
  /** OpenBLAS's version and build options (openblas_get_config()). */
  config: string;
  /** The kernels in use ('SkylakeX', 'Haswell', 'Zen', ...). */
  core: string;
  /** What OpenBLAS chose by itself; differs from core when torch-ssl corrected a misreading. */
  detected: string;
  /** Who chose core: 'OpenBLAS' (its own detection), 'OPENBLAS_CORETYPE' (the user's or the machine's setting,
   *  always honoured) or 'torch-ssl' (OpenBLAS took an AVX2 / AVX-512 CPU for an older core). */
  chosenBy: string;
  /** What the CPU offers: 'avx512' | 'avx2' | 'avx' | 'sse'. */
  cpuIsa: string;
}

export interface BuildInfo {
  torchVersion: string;
  cudaAvailable: boolean;
  cudaDeviceCount: number;
  cudaBuild: boolean;
  parallelInfo: string;
  mkldnn: boolean;
  distributedBackends: string[];
  blas: BlasInfo;
  /** Which kernels the CPU convolutions run on (native/models/winograd.h; docs/throughput.md). */
  conv: {
    /** float32 3×3 stride-1 convolutions run as oneDNN's Winograd F(4×4, 3×3) (AVX-512, oneDNN 2.x build, not TORCH_SSL_WINOGRAD=0). */
    winograd: boolean;
    /** The same in words, with the reason when Winograd is off. */
    kernels: string;
  };
  /** Whether BatchNorm, the residual add and ReLU run as one fused op on CPU (native/models/batch_norm_act.h). */
  batchNorm: {
    /** On: AVX-512 CPU and not TORCH_SSL_FUSED_BN=0 (channels_last or (N, C) activations, float32 or bfloat16). */
    fused: boolean;
    /** The same in words, with the reason when it is off. */
    kernels: string;
  };
}

export interface NativeAddon {
  NativeTensor: { liveCount(): number; new (...a: never[]): NativeTensor };
  NativeModule: new (...a: never[]) => NativeModule;
  fromBuffer(data: ArrayBufferView, dtype: string, shape: number[], requiresGrad?: boolean, device?: string): NativeTensor;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  manualSeed(seed: number): void;
  buildInfo(): BuildInfo;
  cpuCacheInfo(): CpuCacheInfo;
  releaseCpuCache(): void;
  createResNet(o: { depth: number; stem: string; numClasses: number; zeroInitResidual: boolean; init: boolean }): NativeModule;
  createProjector(o: NativeHead & { inputDim: number }): NativeModule;
  createOptimizer(
    kind: 'lars' | 'sgd',
    groups: { params: NativeTensor[]; options: Record<string, unknown> }[],
    defaults: Record<string, unknown>,
  ): NativeOptimizer;
  /** The learning-rate schedule (native/optim/schedule.h), the trainer's own. */
  warmupCosineLr(step: number, warmupSteps: number, totalSteps: number, baseLr: number, warmupStartLr: number, minLr: number): number;
  computeLoss(name: string, tensors: NativeTensor[], options: Record<string, number>): Promise<{ loss: NativeTensor; terms: Record<string, number> }>;
  augmentBatch(images: NativeTensor, view: NativeView, seed: number): Promise<NativeTensor>;
  /** The functional augmentation ops with explicit parameters (tests compare them with torchvision's). */
  augmentOp(name: string, images: NativeTensor, params: Record<string, unknown>): NativeTensor;
  prepareImages(raw: NativeTensor, stats: { mean: number[]; std: number[] } | null, device: string): Promise<NativeTensor>;
  extractFeatureBatch(backbone: NativeModule, projector: NativeModule | null, input: NativeTensor, opts: Record<string, unknown>): Promise<NativeTensor>;
  knnGrid(
    trainFeatures: NativeTensor,
    trainLabels: NativeTensor,
    testFeatures: NativeTensor,
    testLabels: NativeTensor,
    opts: { ks: number[]; temperatures: number[]; distance: string; chunkSize: number },
  ): Promise<NativeKnnGrid>;
  linearProbe(
    trainFeatures: NativeTensor,
    trainLabels: NativeTensor,
    testFeatures: NativeTensor,
    testLabels: NativeTensor,
    opts: Record<string, unknown>,
    stop: NativeStopFlag,
  ): Promise<NativeLinearProbe>;
  newStopFlag(): NativeStopFlag;
  raiseStopFlag(flag: NativeStopFlag): void;
  startTraining(
    config: NativeTrainConfig,
    data: { images: NativeTensor; labels?: NativeTensor | undefined; valImages?: NativeTensor | undefined; valLabels?: NativeTensor | undefined },
    resume: NativeResume | null,
    onEvent: (e: NativeTrainEvent) => void,
  ): { done: Promise<NativeTrainResult>; abort(): void };
}

// ---- Wire types: the engine's config as native/bindings/*.cc read it (every field, no defaults there). ----

/** A head as the engine reads it (native/bindings/options.h parseHead): every field. */
export interface NativeHead {
  hiddenDims: number[];
  outputDim: number;
  batchNorm: boolean;
  hiddenBias: boolean;
  outputBias: 'on' | 'off' | 'frozen';
  outputBatchNorm: boolean;
  outputBatchNormAffine: boolean;
  activation: 'relu' | 'gelu';
}
/** What the engine receives (native/bindings/train.cc parseConfig): every field, no defaults on that side. */
export interface NativeTrainConfig {
  /** A method of the registry (lib/methods/index.ts METHODS). */
  method: string;
  loss: Record<string, number>;
  depth: number;
  stem: 'cifar' | 'imagenet';
  zeroInitResidual: boolean;
  projector: NativeHead;
  /** The method's predictor; null for methods without one. */
  predictor: NativeHead | null;
  optimizer: 'lars' | 'sgd';
  views: NativeView[];
  numViews: number;
  concatViews: boolean;
  batchSize: number;
  epochs: number;
  maxSteps: number;
  profileSteps: number;
  lr: number;
  classifierLr: number;
  weightDecay: number;
  eta: number;
  momentum: number;
  dampening: number;
  nesterov: boolean;
  eps: number;
  clipLr: boolean;
  excludeBiasAndNorm: boolean;
  warmupEpochs: number;
  warmupStartLr: number;
  minLr: number;
  numClasses: number;
  seed: number;
  device: string;
  channelsLast: boolean;
  shuffle: boolean;
  precision: '32' | '16-mixed' | 'bf16-mixed';
  /** null: on for '16-mixed' only. */
  gradScaler: boolean | null;
  scalerInitScale: number;
  scalerGrowthFactor: number;
  scalerBackoffFactor: number;
  scalerGrowthInterval: number;
  checkpointEvery: number;
  logEvery: number;
  knnEvery: number;
  knnK: number;
  knnTemperature: number;
  evalMean: number[];
  evalStd: number[];
  /** null: a single-process run. */
  dist: NativeDist | null;
}

/** One rank's place in a data-parallel job, as native/distributed/group.h reads it. */
export interface NativeDist {
  rank: number;
  worldSize: number;
  localRank: number;
  masterAddr: string;
  masterPort: number;
  backend: 'gloo' | 'nccl';
  timeoutSec: number;
  rendezvousTimeoutSec: number;
  /** Every rank must agree on it: the engine config without the rank's own fields, and the data's shape. */
  configDigest: string;
  syncBatchNorm: boolean;
  bucketMb: number;
}

/** One view pipeline as the engine reads it (native/data/augment.h ViewAugment). */
export interface NativeView {
  size: number;
  scaleMin: number;
  scaleMax: number;
  ratioMin: number;
  ratioMax: number;
  interpolation: 'bicubic' | 'bilinear';
  jitterP: number;
  brightness: number;
  contrast: number;
  saturation: number;
  hue: number;
  grayP: number;
  blurP: number;
  sigmaMin: number;
  sigmaMax: number;
  blurKernel: number;
  solarizeP: number;
  flipP: number;
  mean: number[];
  std: number[];
}

// ---- Training events (native/bindings/train.cc): what startTraining's onEvent receives. ----

export interface StepEvent {
  type: 'step';
  epoch: number;
  step: number;
  globalStep: number;
  totalSteps: number;
  stepsPerEpoch: number;
  loss: number;
  classifierLoss: number;
  terms: Record<string, number>;
  lr: number;
  imagesPerSec: number;
  /** Time the producer spent augmenting this batch, the step's compute time, and how long the step waited for data. */
  augmentMs: number;
  stepMs: number;
  waitMs: number;
  /** With a grad scaler (precision '16-mixed', or gradScaler.enabled): the current loss scale and the
   *  optimizer steps skipped so far because gradients overflowed. */
  gradScale?: number;
  skippedSteps?: number;
  /** Data-parallel runs: this step's gradient all-reduce, from its first bucket to the last, and the part of it
   *  that backward did not hide (the wait after backward). */
  commMs?: number;
  commWaitMs?: number;
}
export interface EpochEvent {
  type: 'epoch';
  epoch: number;
  globalStep: number;
  totalSteps: number;
  /** The mean SSL loss over the epoch's steps (Lightning's train_loss_epoch), not the last step's. */
  loss: number;
}
export interface KnnEvent {
  type: 'knn';
  epoch: number;
  globalStep: number;
  top1: number;
  top5: number;
}
/** Something the run should tell its user before it is too late (e.g. bf16 without hardware support). */
export interface WarningEvent {
  type: 'warning';
  message: string;
}
/** A checkpoint to write (JS writes it; lib/checkpoint/lightning.ts). */
export interface NativeCheckpointEvent {
  type: 'checkpoint';
  epoch: number;
  globalStep: number;
  final: boolean;
  aborted: boolean;
  stateDict: [string, NativeTensor][];
  /** Every parameter's name (student, predictor, classifier, teacher), in the model's order; the rest of the
   *  state dict is buffers. */
  parameterNames: string[];
  momentum: [string, NativeTensor][];
  groupLrs: Record<string, number>;
  gradScale?: number;
  ampGrowthTracker?: number;
}

export type NativeTrainEvent = StepEvent | EpochEvent | KnnEvent | WarningEvent | NativeCheckpointEvent;

/** An opaque cancellation token the native side polls. */
export type NativeStopFlag = { readonly __nativeStopFlag: unique symbol };

export interface NativeOptimizer {
  step(): Promise<void>;
  zeroGrad(): void;
  getGroup(i: number): Record<string, number | boolean>;
  setGroup(i: number, options: Record<string, unknown>): void;
  /** Per group, per parameter. */
  momentumBuffers(): (NativeTensor | null)[][];
  setMomentumBuffers(buffers: (NativeTensor | null)[][]): void;
  dispose(): void;
}

export interface NativeKnnGrid {
  ks: number[];
  temperatures: number[];
  top1: number[];
  top5: number[];
  numClasses: number;
  trainCount: number;
  testCount: number;
}

export interface NativeLinearProbe {
  top1: number;
  top5: number;
  numClasses: number;
  history: { epoch: number; lr: number; loss: number; trainTop1: number; testTop1?: number }[];
  weight: NativeTensor;
  bias: NativeTensor;
}

/** What resume / backbone.init hand the trainer: weights by solo-learn name, momentum by parameter name. */
export interface NativeResume {
  globalStep: number;
  /** config.backbone.init: the backbone alone starts a new run (a teacher starts as its copy). */
  backboneOnly: boolean;
  stateDict: [string, NativeTensor][];
  momentum: [string, NativeTensor][];
  ampScale?: number;
  ampGrowthTracker?: number;
}

/** One row of a training profile (config.profileSteps): an op within a phase of the step, summed over the
 *  profiled steps. */
export interface ProfiledOp {
  /** The trainer's phase around the op: 'tssl::wait_data' | 'tssl::forward' | 'tssl::loss' | 'tssl::backward' |
   *  'tssl::optimizer' ('' outside them: the step's own bookkeeping). */
  phase: string;
  /** The ATen op (`aten::mkldnn_convolution`), an autograd node (`MkldnnConvolutionBackward0`), or the phase
   *  itself (its time outside every op). */
  name: string;
  /** Convolutions and GEMMs: their input shapes, one row per shape ('' for other ops). */
  shapes: string;
  calls: number;
  /** Time in the op itself, nested ops excluded: the rows add up to the profiled steps' time. */
  selfMs: number;
  totalMs: number;
  /** 2 × multiply-adds where the shapes determine them (GEMMs, convolutions), else 0. */
  flops: number;
  /** Σ numel of the op's tensor inputs: a lower bound of the memory it moves. */
  elements: number;
}

export interface TrainProfile {
  steps: number;
  /** The profiled steps' time as the trainer measured it (waiting for data included). */
  wallMs: number;
  ops: ProfiledOp[];
}

export interface NativeTrainResult {
  /** config.profileSteps > 0: the op-level profile of that many steps after the first (bench/profile). */
  profile?: TrainProfile;
  /** Epochs completed (a resumed run counts the earlier ones). */
  epochs: number;
  globalStep: number;
  aborted: boolean;
  lastLoss: number;
  imagesPerSec: number;
  augmentMsPerStep: number;
  stepMsPerStep: number;
  waitMsPerStep: number;
  /** Optimizer steps the grad scaler skipped (inf/NaN gradients); 0 without a scaler. */
  skippedSteps: number;
  /** Data-parallel runs: this process's rank and the world size (0 and 1 otherwise), and the gradient
   *  all-reduce per step: its whole span and the part backward did not hide (ms). */
  rank: number;
  worldSize: number;
  commMsPerStep: number;
  commWaitMsPerStep: number;
}

const here = dirname(fileURLToPath(import.meta.url));
// lib/ (tests, ts sources) and dist/ (compiled) both sit one level below the package root.
const packageRoot = resolve(here, '..');

let cached: NativeAddon | undefined;

function addonCandidates(): string[] {
  return [process.env.TORCH_SSL_ADDON, join(packageRoot, 'build', 'Release', 'torch_ssl.node'), join(packageRoot, 'build', 'Debug', 'torch_ssl.node')].filter(
    (p): p is string => typeof p === 'string' && p.length > 0,
  );
}

export function native(): NativeAddon {
  if (cached) return cached;
  const candidates = addonCandidates();
  const require = createRequire(import.meta.url);
  const failures: string[] = [];
  for (const path of candidates) {
    if (!existsSync(path)) {
      failures.push(`${path}: not built`);
      continue;
    }
    try {
      cached = require(path) as NativeAddon;
      return cached;
    } catch (err) {
      failures.push(`${path}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  // Installed in a user's project, the addon is built by the package's install script, which package managers
  // that gate install scripts (npm's allowScripts, pnpm's onlyBuiltDependencies) skip until it is approved.
  const installed = packageRoot.split(/[\\/]/).includes('node_modules');
  const hints = [
    installed
      ? '- build it: npm rebuild torch-ssl (needs cmake, g++ and a LibTorch). If your package manager skipped its install script: ' +
        'npm install-scripts approve torch-ssl (npm ≥ 11 with allowScripts), pnpm approve-builds (pnpm ≥ 10), then rebuild'
      : '- build it: npm run build (needs cmake, g++ and a LibTorch)',
    '- install LibTorch on Debian/Ubuntu: sudo apt-get install libtorch-dev libopenblas0-pthread cmake g++',
    `- use an unpacked LibTorch or a PyTorch install: LIBTORCH=/path/to/libtorch ${installed ? 'npm rebuild torch-ssl' : 'npm run build'}`,
    '- "cannot open shared object file: libtorch*.so": the LibTorch the addon was built against moved; rebuild',
    '- "undefined symbol ... __cxx11": the LibTorch has the pre-cxx11 ABI; use a cxx11-ABI LibTorch',
  ];
  throw new TorchSslError(
    'ERR_NATIVE_LOAD',
    `Could not load the torch-ssl native addon. Looked for:\n  ${failures.join('\n  ')}\nPossible solutions:\n  ${hints.join('\n  ')}`,
  );
}

let preloading: Promise<void> | undefined;

/**
 * Loads LibTorch off the JS thread: a worker thread loads the addon once (its shared libraries and static
 * initialisers, ~0.4–0.8 s), so the JS thread's own load that follows takes milliseconds. The library's
 * async entry points (loadCheckpoint, extractFeatures, train) await this before their first native call;
 * call it at start-up to warm synchronous ones too (`resnet()`, `Tensor.from`). Never rejects: a failure to
 * load is reported, with its remedies, by the first native call. `TORCH_SSL_PRELOAD=0` turns it off.
 */
export function preloadNative(): Promise<void> {
  if (cached || process.env.TORCH_SSL_PRELOAD === '0') return Promise.resolve();
  preloading ??= new Promise<void>((done) => {
    const path = addonCandidates().find((p) => existsSync(p));
    if (path === undefined) return done();
    // An ES module as a data: URL runs the same whether the host package is CommonJS or ESM.
    const code = `import { createRequire } from 'node:module'; createRequire(${JSON.stringify(path)})(${JSON.stringify(path)});`;
    const w = new Worker(new URL(`data:text/javascript,${encodeURIComponent(code)}`));
    w.on('error', () => done());
    w.on('exit', () => done());
  });
  return preloading;
}

/** Intra-op threads LibTorch uses for torch-ssl's work (applied on each worker thread). Default: all cores. */
export function setNumThreads(n: number): void {
  if (!Number.isInteger(n) || n < 0) throw new TorchSslError('ERR_INVALID_ARG', `Expected non-negative integer for threads but received ${n}`);
  native().setNumThreads(n);
}
export function getNumThreads(): number {
  return native().getNumThreads();
}
export function manualSeed(seed: number): void {
  native().manualSeed(seed);
}
/** Facts about the LibTorch the addon was built against. */
export function buildInfo(): BuildInfo {
  return native().buildInfo();
}

/** One line for logs: which BLAS kernels the engine's GEMMs run on, and who chose them. */
export function describeBlas(b: BlasInfo = buildInfo().blas): string {
  if (b.library === '') return 'BLAS: not OpenBLAS (kernels chosen by that library)';
  const version = /OpenBLAS\s+([\d.]+)/.exec(b.config)?.[1] ?? '';
  const why =
    b.chosenBy === 'torch-ssl'
      ? `corrected by torch-ssl: OpenBLAS read this ${b.cpuIsa.toUpperCase()} CPU as ${b.detected}; set OPENBLAS_CORETYPE to choose yourself`
      : b.chosenBy === 'OPENBLAS_CORETYPE'
        ? `OPENBLAS_CORETYPE=${process.env.OPENBLAS_CORETYPE ?? b.core}, as set`
        : "OpenBLAS's own choice";
  return `BLAS: OpenBLAS ${version}, ${b.core} kernels (${why})`;
}
/** One line for logs: which kernels the engine's CPU convolutions run on. */
export function describeConv(info: BuildInfo = buildInfo()): string {
  return `convolutions: ${info.conv.kernels}`;
}
/** One line for logs: whether BatchNorm, add and ReLU run fused on CPU. */
export function describeBatchNorm(info: BuildInfo = buildInfo()): string {
  return `BatchNorm: ${info.batchNorm.kernels}`;
}
/** State of torch-ssl's caching CPU allocator (see docs/threads.md, "Memory"). */
export interface CpuCacheInfo {
  /** false when TORCH_SSL_CPU_CACHE_MB=0 left LibTorch's system allocator in place. */
  installed: boolean;
  /** Most bytes the cache holds in its free lists. */
  capBytes: number;
  /** Bytes held in free lists now (not in use by any tensor). */
  cachedBytes: number;
  /** Allocations served from the cache / cacheable allocations that went to the system. */
  hits: number;
  misses: number;
}
export function cpuCacheInfo(): CpuCacheInfo {
  return native().cpuCacheInfo();
}
/** Returns the freed CPU blocks the cache holds to the system; tensors in use are unaffected. Training releases it when it ends. */
export function releaseCpuCache(): void {
  native().releaseCpuCache();
}
export const cuda = {
  isAvailable(): boolean {
    return native().buildInfo().cudaAvailable;
  },
  deviceCount(): number {
    return native().buildInfo().cudaDeviceCount;
  },
};
