/**
 * train(config, { onProgress, signal }): the whole loop runs natively on its own thread (augmentation on a
 * producer thread, the step on the training thread); JS validates the config, loads the data, receives
 * events, writes checkpoints (atomically, solo-learn's layout, args.json beside) and can stop the run.
 */
import { mkdir, statfs } from 'node:fs/promises';
import { ioFailure, removeStaleTemporaries } from './io.js';
import { basename, join } from 'node:path';
import { openImageSource, type OpenImageSourceOptions } from './data/index.js';
import { NORMALIZATIONS, type NormalizationName } from './data/normalization.js';
import { TorchSslError, rethrowWithStack } from './errors.js';
import {
  native,
  preloadNative,
  setNumThreads,
  type EpochEvent,
  type KnnEvent,
  type NativeAddon,
  type NativeResume,
  type NativeTrainConfig,
  type NativeTrainEvent,
  type NativeTrainResult,
  type StepEvent,
  type WarningEvent,
} from './native.js';
import { Tensor } from './tensor.js';
import { methodSpec } from './methods/index.js';
import { resolveTrainConfig, type Precision, type ResolvedTrainConfig, type TrainConfig, type TrainConfigInput } from './train-config.js';
import { toNativeConfig } from './train-wire.js';
import { cpuHasNativeBf16 } from './cpu.js';
import { checkKeys } from './strict-keys.js';
import { RunLogger } from './viz/run-log.js';
import { PACKAGE } from './version.js';
import { configDigest, deviceForRank, resolveDist, toNativeDist, type DistPlace } from './distributed.js';
import { readBackboneInit, readResume, writeArgsJson, writeTrainingCheckpoint, type RawCheckpoint } from './checkpoint/lightning.js';

const version = PACKAGE.version;

export type { StepEvent, EpochEvent, KnnEvent, WarningEvent };

export interface CheckpointEvent {
  type: 'checkpoint';
  epoch: number;
  globalStep: number;
  path: string;
  final: boolean;
  aborted: boolean;
}
export type TrainEvent = StepEvent | EpochEvent | KnnEvent | CheckpointEvent | WarningEvent;

/**
 * How many times slower bf16 is than float32 here, measured on one small matrix product (a proxy for a
 * step's convolutions; emulated bf16 is typically 3–20× slower).
 */
export function measureBf16Slowdown(): number {
  const n = 192;
  const a = Tensor.from(
    Float32Array.from({ length: n * n }, (_, i) => Math.sin(i)),
    [n, n],
  );
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

/** What the run did (NativeTrainResult: epochs, globalStep, aborted, lastLoss, images/s, ms per step, skippedSteps) and what it wrote. */
export interface TrainResult extends NativeTrainResult {
  /** The last checkpoint written (solo-learn layout; loadCheckpoint / extract / Python torch.load read it).
   *  In a data-parallel run rank 0 alone writes: on the other ranks this, argsJson and the log paths are ''. */
  checkpoint: string;
  argsJson: string;
  /** Every logged value as CSV (Lightning CSVLogger's layout) and as TensorBoard scalars, next to the checkpoints. */
  metricsCsv: string;
  eventsFile: string;
  knn: { epoch: number; top1: number; top5: number }[];
  losses: { globalStep: number; loss: number }[];
  /** Temporary files of killed earlier runs removed from the checkpoint folder at start. */
  removedTemporaries: string[];
  /** The precision the run trained in ('auto' resolved), and, when the config said 'auto', why. */
  precision: Precision;
  precisionReason?: string;
}

/** Parameters of the backbones without their fc (torchvision's counts; the CIFAR stem is ~8k smaller). */
const BACKBONE_PARAMS: Record<18 | 34 | 50, { params: number; features: number }> = {
  18: { params: 11_176_512, features: 512 },
  34: { params: 21_284_672, features: 512 },
  50: { params: 23_508_032, features: 2048 },
};

/**
 * Upper estimate of one checkpoint's size: float32 weights and LARS momentum for backbone, projector, predictor
 * and online classifier, the teacher's weights (no momentum), BatchNorm buffers, and 2 % for the pickle and zip
 * framing.
 */
type HeadSize = { hiddenDims: readonly number[]; outputDim: number; batchNorm: boolean; outputBatchNorm?: boolean };
function headSize(h: HeadSize, input: number): { params: number; buffers: number } {
  let params = 0;
  let buffers = 0;
  let prev = input;
  for (const d of h.hiddenDims) {
    params += prev * d + d;
    if (h.batchNorm) {
      params += 2 * d;
      buffers += 2 * d;
    }
    prev = d;
  }
  params += prev * h.outputDim + h.outputDim;
  if (h.outputBatchNorm) buffers += 2 * h.outputDim;
  return { params, buffers };
}
export function estimateCheckpointBytes(
  c: Pick<TrainConfig, 'backbone' | 'momentum' | 'method'> & {
    projectorResolved: HeadSize;
    predictorResolved?: HeadSize | null;
    loss?: Record<string, number>;
  },
  numClasses: number,
): number {
  const b = BACKBONE_PARAMS[c.backbone.depth];
  const proj = headSize(c.projectorResolved, b.features);
  const pred = c.predictorResolved ? headSize(c.predictorResolved, c.projectorResolved.outputDim) : { params: 0, buffers: 0 };
  let params = b.params + proj.params + pred.params;
  if (numClasses > 0) params += b.features * numClasses + numClasses;
  // A teacher: backbone and projector again, weights and buffers, no momentum buffers.
  const teacher = c.momentum ? b.params + proj.params + proj.buffers + b.params / 1000 : 0;
  const own = methodSpec(c.method).state?.(c.loss ?? {}, c.projectorResolved) ?? { params: 0, buffers: 0 };
  return Math.ceil(4 * (2 * (params + own.params) + proj.buffers + pred.buffers + b.params / 1000 + teacher + own.buffers) * 1.02);
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
    throw ioFailure(
      dir,
      `config.checkpoint.dir ${dir}: ${mb(free)} free, a checkpoint of this model needs about ${mb(bytes)}; free space or choose another folder`,
      { needed: bytes, free },
    );
  }
}

type DataShape = { size?: number | undefined; fit?: 'pad' | 'resize' | undefined };

/** How training (and the demo, which measures the same images) opens a config's data: its side, fit, limit and sample. */
export function dataSourceOptions(path: string, d: DataShape, limit: number | undefined, sampleSeed?: number): OpenImageSourceOptions {
  return {
    path,
    ...(d.size !== undefined && { size: d.size }),
    ...(d.fit !== undefined && { fit: d.fit }),
    ...(limit !== undefined && { limit }),
    ...(limit !== undefined && sampleSeed !== undefined && { sampleSeed }),
  };
}

async function loadImages(path: string, labelsPath: string | undefined, d: DataShape, limit: number | undefined, sampleSeed?: number) {
  const src = await openImageSource({ ...dataSourceOptions(path, d, limit, sampleSeed), ...(labelsPath ? { labels: labelsPath } : {}) });
  try {
    if (src.layout !== 'NHWC-uint8') throw new TorchSslError('ERR_DATA_FORMAT', `${path}: training needs raw uint8 pixels (N, H, W, 3), not ${src.layout}`);
    if (src.count === 0) throw new TorchSslError('ERR_DATA_FORMAT', `${path}: no images`);
    const count = src.count;
    const batch = await src.readBatch(0, count);
    const images = Tensor.from(batch.pixels as Uint8Array, [count, src.height, src.width, 3], { dtype: 'uint8' });
    const labels = batch.labels
      ? Tensor.from(
          BigInt64Array.from(batch.labels, (v) => BigInt(v)),
          [count],
          { dtype: 'int64' },
        )
      : undefined;
    const numClasses = batch.labels ? batch.labels.reduce((m, v) => Math.max(m, v), 0) + 1 : 0;
    return { images, labels, numClasses, height: src.height, normalization: src.normalization };
  } finally {
    await src.close();
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
  const place = resolveDist(c);
  c.device = deviceForRank(c.device, place);
  // Rank 0 alone writes checkpoints, args.json and the run logs, and reports progress (the others train).
  const lead = !place || place.rank === 0;
  await preloadNative();
  if (c.threads > 0) setNumThreads(c.threads);
  if (opts.signal?.aborted) throw new TorchSslError('ERR_ABORTED', 'training was aborted before it started');
  warnIfBf16Emulated(c, opts);
  const train = await loadImages(c.data.train, c.data.labels, c.data, c.data.limit, c.data.sampleSeed);
  let val: Awaited<ReturnType<typeof loadImages>> | undefined;
  try {
    // Only rank 0 runs the online kNN: the other ranks of a data-parallel run do not load the validation set.
    if (c.data.val && lead) val = await loadImages(c.data.val, c.data.valLabels, c.data, c.data.valLimit);
    const { norm, datasetName } = resolveNormalization(c, train.normalization);
    const worldSize = place?.worldSize ?? 1;
    const resume = c.resume ? await readResume(c.resume, c, worldSize) : c.backbone.init ? await readBackboneInit(c.backbone.init, c) : null;
    const run: RunPlace = {
      name: c.checkpoint.name ?? `${c.method}-resnet${c.backbone.depth}-${basename(c.data.train).replace(/\.[^.]*$/, '')}`,
      stepsPerEpoch: Math.floor(Math.floor(train.images.shape[0]! / worldSize) / c.batchSize),
      worldSize,
      lead,
    };
    const written = lead ? await prepareCheckpointDir(c, run, place, datasetName, train.numClasses) : { removedTemporaries: [], argsJson: '' };
    const nativeConfig = toNativeConfig(c, norm, train.labels ? train.numClasses : 0);
    if (place) nativeConfig.dist = toNativeDist(place, configDigest(nativeConfig, place, train.images.shape));
    const data = { images: train.images.handle, labels: train.labels?.handle, valImages: val?.images.handle, valLabels: val?.labels?.handle };
    return { ...(await runNatively(c, run, nativeConfig, data, resume, opts)), ...written };
  } finally {
    train.images.dispose();
    train.labels?.dispose();
    val?.images.dispose();
    val?.labels?.dispose();
  }
}

/** Where a run writes and how its steps are counted. */
interface RunPlace {
  /** The checkpoints' file name stem. */
  name: string;
  stepsPerEpoch: number;
  worldSize: number;
  /** Rank 0 (or a single process): writes the checkpoints and logs, reports progress. */
  lead: boolean;
}

/** A warning event when bf16-mixed will run emulated on this CPU, with a slowdown measured now. */
function warnIfBf16Emulated(c: ResolvedTrainConfig, opts: TrainOptions): void {
  if (c.precision !== 'bf16-mixed' || c.device.startsWith('cuda') || cpuHasNativeBf16()) return;
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

/**
 * The statistics views and kNN inputs are normalised with: the data set's own when the source knows them; else
 * CIFAR-10's, recorded as such (the checkpoint then says dataset "custom" with the statistics it was trained
 * with, not "cifar10"). Fills config.data.normalization.
 */
function resolveNormalization(c: ResolvedTrainConfig, sourceNormalization: NormalizationName | undefined) {
  const known = sourceNormalization === 'cifar-eval' ? 'cifar10' : sourceNormalization;
  c.data.normalization ??= known ?? 'cifar10';
  const norm = typeof c.data.normalization === 'string' ? NORMALIZATIONS[c.data.normalization] : c.data.normalization;
  return { norm, datasetName: known ?? 'custom' };
}

/** Before step one: the checkpoint folder exists, a killed run's temporaries are gone, a checkpoint fits, args.json is written. */
async function prepareCheckpointDir(c: ResolvedTrainConfig, run: RunPlace, place: DistPlace | null, datasetName: string, numClasses: number) {
  try {
    await mkdir(c.checkpoint.dir, { recursive: true });
  } catch (err) {
    throw ioFailure(c.checkpoint.dir, `config.checkpoint.dir ${c.checkpoint.dir}: cannot create the folder (${(err as Error).message})`, { cause: err });
  }
  // What a killed run left behind (its process is gone) is removed; a checkpoint must fit before step one.
  const removedTemporaries = await removeStaleTemporaries(c.checkpoint.dir);
  await checkDiskSpace(c.checkpoint.dir, estimateCheckpointBytes(c, numClasses));
  const argsJson = await writeArgsJson(c.checkpoint.dir, {
    ...c,
    name: run.name,
    torch_ssl_version: version,
    method_kwargs: c.loss,
    backbone: { name: `resnet${c.backbone.depth}`, ...c.backbone },
    data: { ...c.data, dataset: datasetName, num_classes: numClasses },
    ...(place ? { dist: { ...c.dist, world_size: place.worldSize, backend: place.backend }, num_nodes_x_devices: place.worldSize } : {}),
  });
  return { removedTemporaries, argsJson };
}

/**
 * Runs the engine and handles its events on the JS thread: progress to the caller, the run logs (lead rank),
 * checkpoints written in order (a failed write stops the run), the AbortSignal.
 */
async function runNatively(
  c: ResolvedTrainConfig,
  run: RunPlace,
  nativeConfig: NativeTrainConfig,
  data: Parameters<NativeAddon['startTraining']>[1],
  resume: NativeResume | null,
  opts: TrainOptions,
): Promise<Omit<TrainResult, 'argsJson' | 'removedTemporaries'>> {
  // Events reach JS through the loop only after startTraining returns (thread-safe function calls).
  let logger: RunLogger | undefined;
  const knn: TrainResult['knn'] = [];
  const losses: TrainResult['losses'] = [];
  let lastCheckpoint = '';
  let writes: Promise<void> = Promise.resolve();
  let writeError: unknown;
  let abortRun = () => {};

  const writeCheckpoint = async (e: RawCheckpoint) => {
    const path = join(c.checkpoint.dir, `${run.name}-ep=${e.epoch}${e.aborted ? '-aborted' : ''}.ckpt`);
    await writeTrainingCheckpoint(path, e, c, run.stepsPerEpoch, version, run.worldSize);
    lastCheckpoint = path;
    opts.onProgress?.({ type: 'checkpoint', epoch: e.epoch, globalStep: e.globalStep, path, final: e.final, aborted: e.aborted });
  };

  const onEvent = (e: NativeTrainEvent) => {
    logger?.onEvent(e); // metrics.csv is rewritten with each checkpoint
    if (e.type === 'checkpoint') {
      writes = writes
        .then(() => (writeError === undefined ? writeCheckpoint(e) : undefined))
        .catch((err) => {
          // A checkpoint that cannot be written stops the run now, not after the remaining epochs.
          writeError ??= ioFailure(c.checkpoint.dir, `checkpoint of epoch ${e.epoch} could not be written, training stopped: ${(err as Error).message}`, {
            cause: err,
          });
          abortRun();
        });
      return;
    }
    if (e.type === 'step') losses.push({ globalStep: e.globalStep, loss: e.loss });
    if (e.type === 'knn') knn.push({ epoch: e.epoch, top1: e.top1, top5: e.top5 });
    opts.onProgress?.(e);
  };

  const handle = native().startTraining(nativeConfig, data, resume, onEvent);
  if (run.lead) logger = new RunLogger(c.checkpoint.dir, { resumeStep: c.resume && resume ? resume.globalStep : undefined });
  abortRun = () => handle.abort();
  const onAbort = () => handle.abort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const r = await handle.done;
    await writes;
    if (writeError) throw writeError;
    await logger?.close();
    return {
      ...r,
      precision: c.precision,
      ...(c.precisionReason !== undefined && { precisionReason: c.precisionReason }),
      checkpoint: lastCheckpoint,
      metricsCsv: logger?.csvPath ?? '',
      eventsFile: logger?.eventsPath ?? '',
      knn,
      losses,
    };
  } finally {
    await logger?.close().catch(() => undefined); // idempotent after success; after a failure the logs are best effort
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

export { resolveTrainConfig, TRAIN_PRESETS, METHOD_DEFAULTS, AUGMENTATION_PRESETS, type TrainConfig, type TrainConfigInput } from './train-config.js';
