/**
 * train(config, { onProgress, signal }): the whole loop runs natively on its own thread (augmentation on a
 * producer thread, the step on the training thread); JS validates the config, loads the data, receives
 * events, writes checkpoints (atomically, solo-learn's layout, args.json beside) and can stop the run.
 */
import { mkdir, writeFile, rename, rm, statfs } from 'node:fs/promises';
import { removeStaleTemporaries } from './checkpoint/atomic.js';
import { readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openImageSource } from './data/index.js';
import { NORMALIZATIONS } from './data/normalization.js';
import { TorchSslError, rethrowWithStack } from './errors.js';
import { native, preloadNative, setNumThreads, type NativeTensor } from './native.js';
import { Tensor } from './tensor.js';
import { DTYPE_BYTES, typedArrayFor } from './dtype.js';
import { readTorchFile, tensorMap, writeTorchFile, type WritableValue } from './checkpoint/index.js';
import { dictGet } from './checkpoint/pyvalue.js';
import { resolveTrainConfig, type TrainConfig, type TrainConfigInput } from './train-config.js';
import { loadCheckpoint } from './checkpoint/load.js';
import { checkKeys } from './strict-keys.js';
import { RunLogger } from './viz/run-log.js';

const version = (JSON.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'package.json'), 'utf8')) as { version: string }).version;

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
export interface CheckpointEvent {
  type: 'checkpoint';
  epoch: number;
  globalStep: number;
  path: string;
  final: boolean;
  aborted: boolean;
}
/** Something the run should tell its user before it is too late (e.g. bf16 without hardware support). */
export interface WarningEvent {
  type: 'warning';
  message: string;
}
export type TrainEvent = StepEvent | EpochEvent | KnnEvent | CheckpointEvent | WarningEvent;

/** The CPU does bf16 arithmetic natively (AVX512-BF16 or AMX); without, LibTorch emulates it in software. */
export function cpuHasNativeBf16(): boolean {
  if (process.env.TORCH_SSL_ASSUME_NO_BF16 === '1') return false; // tests of the warning on any CPU
  try {
    return /\b(avx512_bf16|amx_bf16)\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    return true; // not Linux: do not guess
  }
}

/**
 * How many times slower bf16 is than float32 here, measured on one small matrix product (a proxy for a
 * step's convolutions; emulated bf16 is typically 3–20× slower).
 */
export function measureBf16Slowdown(): number {
  const n = 192;
  const a = Tensor.from(Float32Array.from({ length: n * n }, (_, i) => Math.sin(i)), [n, n]);
  const time = (x: Tensor) => {
    x.matmul(x).dispose(); // warm-up
    const t0 = performance.now();
    for (let i = 0; i < 4; i++) x.matmul(x).dispose();
    return performance.now() - t0;
  };
  const b = a.to({ dtype: 'bfloat16' });
  try {
    return time(b) / Math.max(1e-3, time(a));
  } finally {
    a.dispose();
    b.dispose();
  }
}

export interface TrainOptions {
  onProgress?: (event: TrainEvent) => void;
  signal?: AbortSignal;
}

export interface TrainResult {
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
  /** The last checkpoint written (solo-learn layout; loadCheckpoint / extract / Python torch.load read it). */
  checkpoint: string;
  argsJson: string;
  /** Every logged value as CSV (Lightning CSVLogger's layout) and as TensorBoard scalars, next to the checkpoints. */
  metricsCsv: string;
  eventsFile: string;
  knn: { epoch: number; top1: number; top5: number }[];
  losses: { globalStep: number; loss: number }[];
  /** Temporary files of killed earlier runs removed from the checkpoint folder at start. */
  removedTemporaries: string[];
}

/** Parameters of the backbones without their fc (torchvision's counts; the CIFAR stem is ~8k smaller). */
const BACKBONE_PARAMS: Record<18 | 34 | 50, { params: number; features: number }> = {
  18: { params: 11_176_512, features: 512 },
  34: { params: 21_284_672, features: 512 },
  50: { params: 23_508_032, features: 2048 },
};

/**
 * Upper estimate of one checkpoint's size: float32 weights and LARS momentum for backbone, projector and
 * online classifier, BatchNorm buffers, and 2 % for the pickle and zip framing.
 */
export function estimateCheckpointBytes(c: Pick<TrainConfig, 'backbone'> & { projectorResolved: { hiddenDims: number[]; outputDim: number; batchNorm: boolean } }, numClasses: number): number {
  const b = BACKBONE_PARAMS[c.backbone.depth];
  let params = b.params;
  let buffers = 0;
  let prev = b.features;
  for (const h of c.projectorResolved.hiddenDims) {
    params += prev * h + h;
    if (c.projectorResolved.batchNorm) {
      params += 2 * h;
      buffers += 2 * h;
    }
    prev = h;
  }
  params += prev * c.projectorResolved.outputDim + c.projectorResolved.outputDim;
  if (numClasses > 0) params += b.features * numClasses + numClasses;
  return Math.ceil(4 * (2 * params + buffers + b.params / 1000) * 1.02);
}

/** ERR_IO before training when the checkpoint folder's file system cannot hold one more checkpoint. */
export async function checkDiskSpace(dir: string, bytes: number): Promise<void> {
  let free: number;
  try {
    const s = await statfs(dir);
    free = Number(s.bavail) * Number(s.bsize);
  } catch {
    return; // a file system that does not say: the write itself will report
  }
  if (free < bytes) {
    const mb = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;
    throw new TorchSslError('ERR_IO', `config.checkpoint.dir ${dir}: ${mb(free)} free, a checkpoint of this model needs about ${mb(bytes)}; free space or choose another folder`, { file: dir, needed: bytes, free });
  }
}

interface RawCheckpoint {
  type: 'checkpoint';
  epoch: number;
  globalStep: number;
  final: boolean;
  aborted: boolean;
  stateDict: [string, NativeTensor][];
  momentum: [string, NativeTensor][];
  groupLrs: Record<string, number>;
  gradScale?: number;
  ampGrowthTracker?: number;
}

async function loadImages(path: string, labelsPath: string | undefined, d: { size?: number | undefined; fit?: 'pad' | 'resize' | undefined }, limit: number | undefined) {
  const src = await openImageSource({ path, ...(labelsPath ? { labels: labelsPath } : {}), ...(d.size ? { size: d.size } : {}), ...(d.fit ? { fit: d.fit } : {}), ...(limit ? { limit } : {}) });
  try {
    if (src.layout !== 'NHWC-uint8') throw new TorchSslError('ERR_DATA_FORMAT', `${path}: training needs raw uint8 pixels (N, H, W, 3), not ${src.layout}`);
    if (src.count === 0) throw new TorchSslError('ERR_DATA_FORMAT', `${path}: no images`);
    const count = src.count;
    const batch = await src.readBatch(0, count);
    const images = Tensor.from(batch.pixels as Uint8Array, [count, src.height, src.width, 3], { dtype: 'uint8' });
    const labels = batch.labels ? Tensor.from(BigInt64Array.from(batch.labels, (v) => BigInt(v)), [count], { dtype: 'int64' }) : undefined;
    const numClasses = batch.labels ? batch.labels.reduce((m, v) => Math.max(m, v), 0) + 1 : 0;
    return { images, labels, numClasses, height: src.height, normalization: src.normalization };
  } finally {
    await src.close();
  }
}

/**
 * A checkpoint snapshot's elements, viewed in place (no copy on the JS thread) when the writer reaches
 * it. The trainer cloned these tensors for this event alone, so nothing mutates them.
 */
function tensorData(t: NativeTensor) {
  const w = new Tensor(t);
  const dtype = w.dtype;
  return {
    dtype,
    shape: w.shape,
    load: () => {
      const buf = t.toSharedBuffer();
      w.dispose();
      return typedArrayFor(dtype, buf, 0, buf.byteLength / DTYPE_BYTES[dtype]);
    },
  };
}

/**
 * What `resume` needs from a checkpoint, checked before anything trains: written by this trainer (its
 * `torch_ssl` entry), for the same method, with the projector, the optimizer state and the parameter
 * names; a backbone from elsewhere belongs in `backbone.init`.
 */
function checkResumable(path: string, root: unknown, c: TrainConfig, sdKeys: string[]): void {
  const missing: string[] = [];
  const mark = dictGet(root as never, 'torch_ssl') as unknown;
  if (mark === undefined || mark === null) missing.push('the torch_ssl entry (written by torch-ssl train)');
  if (!sdKeys.some((k) => k.startsWith('projector.'))) missing.push('projector weights');
  if (!sdKeys.some((k) => k.startsWith('backbone.'))) missing.push('backbone weights under backbone.*');
  const opt = (dictGet(root as never, 'optimizer_states') as unknown[] | undefined)?.[0];
  if (!opt || !(dictGet(opt as never, 'state') instanceof Map)) missing.push('the optimizer state (optimizer_states[0].state)');
  if (!Array.isArray(dictGet(root as never, 'parameter_names'))) missing.push('parameter_names');
  if (typeof dictGet(root as never, 'global_step') !== 'number' && typeof dictGet(root as never, 'global_step') !== 'bigint') missing.push('global_step');
  if (missing.length > 0) {
    throw new TorchSslError(
      'ERR_CHECKPOINT_FORMAT',
      `config.resume ${path} is not a training checkpoint of torch-ssl train: it lacks ${missing.join(', ')}. To start a new run from its backbone, use backbone.init instead`,
      { file: path, missing },
    );
  }
  const method = dictGet(mark as never, 'method');
  if (typeof method === 'string' && method !== c.method) {
    throw new TorchSslError('ERR_CONFIG', `config.resume ${path} was trained with method ${method}, but config.method is ${c.method}`, { file: path });
  }
}

async function readResume(path: string, c: TrainConfig) {
  const file = await readTorchFile(path);
  try {
    const root = file.root;
    const sd = tensorMap(dictGet(root as never, 'state_dict') as never);
    if (!sd) throw new TorchSslError('ERR_CHECKPOINT_FORMAT', `config.resume ${path}: no state_dict to resume from; to start from a backbone use backbone.init`, { file: path });
    checkResumable(path, root, c, [...sd.keys()]);
    const stateDict: [string, NativeTensor][] = [];
    for (const [k, ref] of sd) stateDict.push([k, Tensor.from(await ref.read(), ref.shape, { dtype: ref.dtype }).handle]);
    const names = dictGet(root as never, 'parameter_names') as string[] | undefined;
    const momentum: [string, NativeTensor][] = [];
    const opt = (dictGet(root as never, 'optimizer_states') as unknown[] | undefined)?.[0];
    const state = opt ? (dictGet(opt as never, 'state') as Map<number, unknown> | undefined) : undefined;
    if (names && state) {
      for (const [idx, s] of state) {
        const ref = dictGet(s as never, 'momentum_buffer') as { read(): Promise<never>; shape: number[]; dtype: never } | undefined;
        const name = names[Number(idx)];
        if (ref && name) momentum.push([name, Tensor.from(await ref.read(), ref.shape, { dtype: ref.dtype }).handle]);
      }
    }
    // GradScaler.state_dict() (scale, growth factors, _growth_tracker): Lightning 1.x's key, which this
    // trainer writes, or the precision plugin's class name that Lightning >= 1.6 / 2.x use.
    const amp = (['native_amp_scaling_state', 'MixedPrecision', 'MixedPrecisionPlugin', 'NativeMixedPrecisionPlugin'] as const)
      .map((k) => dictGet(root as never, k) as unknown)
      .find((v) => v !== undefined && v !== null);
    const ampScale = amp ? Number(dictGet(amp as never, 'scale') ?? 0) : 0;
    const ampGrowthTracker = amp ? Number(dictGet(amp as never, '_growth_tracker') ?? 0) : 0;
    return {
      epoch: Number(dictGet(root as never, 'epoch') ?? 0),
      globalStep: Number(dictGet(root as never, 'global_step') ?? 0),
      stateDict,
      momentum,
      ...(ampScale > 0 ? { ampScale, ampGrowthTracker } : {}),
    };
  } finally {
    await file.close();
  }
}

/**
 * `backbone.init`: any checkpoint loadCheckpoint reads (solo-learn, torchvision, torch-ssl); its backbone's
 * weights and BatchNorm buffers start a new run (epoch 0, step 0, fresh projector and momentum).
 */
async function readBackboneInit(path: string, c: TrainConfig) {
  const loaded = await loadCheckpoint(path, { heads: false });
  try {
    const { depth, stem } = loaded.backbone;
    if (depth !== c.backbone.depth || stem !== c.backbone.stem) {
      throw new TorchSslError('ERR_CONFIG', `config.backbone.init ${path} holds a ResNet-${depth} (${stem} stem), but config.backbone is ResNet-${c.backbone.depth} (${c.backbone.stem} stem)`, { file: path });
    }
    const stateDict: [string, NativeTensor][] = Object.entries(loaded.backbone.stateDict()).map(([k, t]) => [`backbone.${k}`, t.clone().handle]);
    return { epoch: 0, globalStep: 0, stateDict, momentum: [] as [string, NativeTensor][] };
  } finally {
    loaded.dispose();
  }
}

/** Trains a ResNet + projector with a joint-embedding objective, natively. Resolves when the run ends. */
export async function train(configInput: TrainConfigInput | Record<string, unknown>, opts: TrainOptions = {}): Promise<TrainResult> {
  const callSite = new Error();
  try {
    if (typeof opts !== 'object' || opts === null) throw new TorchSslError('ERR_INVALID_ARG', 'train options must be an object { onProgress?, signal? }');
    checkKeys(opts, ['onProgress', 'signal'], 'train options');
    return await trainImpl(configInput, opts);
  } catch (err) {
    rethrowWithStack(err, callSite);
  }
}

async function trainImpl(configInput: TrainConfigInput | Record<string, unknown>, opts: TrainOptions): Promise<TrainResult> {
  const c = resolveTrainConfig(configInput);
  await preloadNative();
  if (c.threads > 0) setNumThreads(c.threads);
  if (opts.signal?.aborted) throw new TorchSslError('ERR_ABORTED', 'training was aborted before it started');
  if (c.precision === 'bf16-mixed' && !c.device.startsWith('cuda') && !cpuHasNativeBf16()) {
    let measured: string;
    try {
      measured = `${measureBf16Slowdown().toFixed(1)}× slower than float32 on a small matrix product measured now`;
    } catch {
      measured = 'slower than float32 (the measurement itself failed)'; // a warning must never stop the run
    }
    opts.onProgress?.({
      type: 'warning',
      message: `precision 'bf16-mixed' on a CPU without native bf16 (no AVX512-BF16 / AMX): bf16 is emulated, ${measured}; precision '32' will likely train faster here`,
    });
  }
  const train = await loadImages(c.data.train, c.data.labels, c.data, c.data.limit);
  const val = c.data.val ? await loadImages(c.data.val, c.data.valLabels, c.data, c.data.valLimit) : undefined;
  // The data set's own statistics when the source knows them; else CIFAR-10's, recorded as such (the
  // checkpoint then says dataset "custom" with the statistics it was trained with, not "cifar10").
  const known = train.normalization === 'cifar-eval' ? 'cifar10' : train.normalization;
  const datasetName = known ?? 'custom';
  c.data.normalization ??= known ?? 'cifar10';
  const norm = typeof c.data.normalization === 'string' ? NORMALIZATIONS[c.data.normalization] : c.data.normalization;
  const resume = c.resume ? await readResume(c.resume, c) : c.backbone.init ? await readBackboneInit(c.backbone.init, c) : null;

  const name = c.checkpoint.name ?? `${c.method}-resnet${c.backbone.depth}-${basename(c.data.train).replace(/\.[^.]*$/, '')}`;
  try {
    await mkdir(c.checkpoint.dir, { recursive: true });
  } catch (err) {
    throw new TorchSslError('ERR_IO', `config.checkpoint.dir ${c.checkpoint.dir}: cannot create the folder (${(err as Error).message})`, { file: c.checkpoint.dir });
  }
  // What a killed run left behind (its process is gone) is removed; a checkpoint must fit before step one.
  const removedTemporaries = await removeStaleTemporaries(c.checkpoint.dir);
  await checkDiskSpace(c.checkpoint.dir, estimateCheckpointBytes(c, train.numClasses));
  const argsJson = join(c.checkpoint.dir, 'args.json');
  const args = { ...c, name, torch_ssl_version: version, method_kwargs: c.loss, backbone: { name: `resnet${c.backbone.depth}`, ...c.backbone }, data: { ...c.data, dataset: datasetName, num_classes: train.numClasses } };
  await writeFile(`${argsJson}.tmp-${process.pid}`, JSON.stringify(args, null, 2));
  await rename(`${argsJson}.tmp-${process.pid}`, argsJson);

  const nativeConfig = {
    method: c.method,
    depth: c.backbone.depth,
    stem: c.backbone.stem,
    zeroInitResidual: c.backbone.zeroInitResidual,
    projectorHidden: c.projectorResolved.hiddenDims,
    projectorOutput: c.projectorResolved.outputDim,
    projectorBatchNorm: c.projectorResolved.batchNorm,
    views: c.resolvedViews.map((v) => ({
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
    })),
    numViews: c.numViews,
    concatViews: c.concatViews,
    batchSize: c.batchSize,
    epochs: c.epochs,
    maxSteps: c.maxSteps,
    lr: c.optimizer.lr,
    classifierLr: c.optimizer.classifierLr,
    weightDecay: c.optimizer.weightDecay,
    eta: c.optimizer.eta,
    momentum: c.optimizer.momentum,
    clipLr: c.optimizer.clipLr,
    excludeBiasAndNorm: c.optimizer.excludeBiasAndNorm,
    warmupEpochs: c.scheduler.warmupEpochs,
    warmupStartLr: c.scheduler.warmupStartLr,
    minLr: c.scheduler.minLr,
    loss: c.loss,
    numClasses: train.labels ? train.numClasses : 0,
    seed: c.seed,
    device: c.device,
    channelsLast: c.channelsLast,
    shuffle: c.data.shuffle,
    precision: c.precision,
    gradScaler: c.gradScaler.enabled === undefined ? -1 : c.gradScaler.enabled ? 1 : 0,
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
  };
  const data = { images: train.images.handle, labels: train.labels?.handle, valImages: val?.images.handle, valLabels: val?.labels?.handle };

  // Events reach JS through the loop only after startTraining returns (thread-safe function calls).
  let logger: RunLogger | undefined;
  const knn: TrainResult['knn'] = [];
  const losses: TrainResult['losses'] = [];
  let lastCheckpoint = '';
  let writes: Promise<void> = Promise.resolve();
  let writeError: unknown;
  let abortRun = () => {};

  const writeCheckpoint = async (e: RawCheckpoint) => {
    const path = join(c.checkpoint.dir, `${name}-ep=${e.epoch}${e.aborted ? '-aborted' : ''}.ckpt`);
    const stateDict = new Map<string, WritableValue>(e.stateDict.map(([k, t]) => [k, tensorData(t)]));
    const parameterNames = e.stateDict.map(([k]) => k).filter((k) => !/running_|num_batches_tracked/.test(k));
    const momentumByName = new Map(e.momentum);
    const state = new Map<number, WritableValue>();
    parameterNames.forEach((n, i) => {
      const m = momentumByName.get(n);
      if (m) state.set(i, new Map([['momentum_buffer', tensorData(m)]]));
    });
    const groups = Object.entries(e.groupLrs).map(([groupName, lr]) => {
      const idx = parameterNames.map((n, i) => [n, i] as const).filter(([n]) => n.startsWith(`${groupName}.`)).map(([, i]) => i);
      return {
        name: groupName,
        lr,
        momentum: c.optimizer.momentum,
        dampening: 0,
        weight_decay: groupName === 'classifier' ? 0 : c.optimizer.weightDecay!,
        nesterov: false,
        eta: c.optimizer.eta,
        eps: 1e-8,
        clip_lr: c.optimizer.clipLr,
        exclude_bias_n_norm: c.optimizer.excludeBiasAndNorm,
        params: idx,
      };
    });
    const stepsPerEpoch = Math.floor(train.images.shape[0]! / c.batchSize);
    await writeTorchFile(path, {
      epoch: e.epoch,
      global_step: e.globalStep,
      'pytorch-lightning_version': `torch-ssl ${version}`,
      state_dict: stateDict,
      optimizer_states: [{ state, param_groups: groups }],
      lr_schedulers: [
        {
          warmup_epochs: c.scheduler.warmupEpochs * stepsPerEpoch,
          max_epochs: c.epochs * stepsPerEpoch,
          warmup_start_lr: c.scheduler.warmupStartLr,
          eta_min: c.scheduler.minLr,
          base_lrs: groups.map((g) => (g.name === 'classifier' ? c.optimizer.classifierLr : c.optimizer.lr!)),
          last_epoch: e.globalStep,
        },
      ],
      parameter_names: parameterNames,
      ...(e.gradScale
        ? {
            native_amp_scaling_state: {
              scale: e.gradScale,
              growth_factor: c.gradScaler.growthFactor,
              backoff_factor: c.gradScaler.backoffFactor,
              growth_interval: c.gradScaler.growthInterval,
              _growth_tracker: e.ampGrowthTracker ?? 0,
            },
          }
        : {}),
      torch_ssl: { version, method: c.method, precision: c.precision },
    });
    lastCheckpoint = path;
    opts.onProgress?.({ type: 'checkpoint', epoch: e.epoch, globalStep: e.globalStep, path, final: e.final, aborted: e.aborted });
  };

  const onEvent = (raw: { type: string } & Record<string, unknown>) => {
    if (raw.type === 'checkpoint') {
      const e = raw as unknown as RawCheckpoint;
      writes = writes.then(() => (writeError === undefined ? writeCheckpoint(e) : undefined)).catch((err) => {
        // A checkpoint that cannot be written stops the run now, not after the remaining epochs.
        writeError ??= new TorchSslError('ERR_IO', `checkpoint of epoch ${e.epoch} could not be written, training stopped: ${(err as Error).message}`, { file: c.checkpoint.dir });
        abortRun();
      });
      return;
    }
    logger?.onEvent(raw as never);
    if (raw.type === 'step') losses.push({ globalStep: raw.globalStep as number, loss: raw.loss as number });
    if (raw.type === 'knn') knn.push({ epoch: raw.epoch as number, top1: raw.top1 as number, top5: raw.top5 as number });
    opts.onProgress?.(raw as unknown as TrainEvent);
  };

  const run = native().startTraining(nativeConfig, data, resume, onEvent) as { done: Promise<Omit<TrainResult, 'checkpoint' | 'argsJson' | 'metricsCsv' | 'eventsFile' | 'knn' | 'losses'>>; abort: () => void };
  logger = new RunLogger(c.checkpoint.dir, { resumeStep: c.resume && resume ? resume.globalStep : undefined });
  abortRun = () => run.abort();
  const onAbort = () => run.abort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const r = await run.done;
    await writes;
    if (writeError) throw writeError;
    await logger.close();
    return { ...r, checkpoint: lastCheckpoint, argsJson, metricsCsv: logger.csvPath, eventsFile: logger.eventsPath, knn, losses, removedTemporaries };
  } finally {
    await logger.close().catch(() => undefined); // idempotent after success; after a failure the logs are best effort
    opts.signal?.removeEventListener('abort', onAbort);
    train.images.dispose();
    train.labels?.dispose();
    val?.images.dispose();
    val?.labels?.dispose();
  }
}

export { resolveTrainConfig, TRAIN_PRESETS, METHOD_DEFAULTS, AUGMENTATION_PRESETS, type TrainConfig, type TrainConfigInput } from './train-config.js';

/** Removes a run's checkpoint directory (tests, demos). */
export async function removeRun(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}
