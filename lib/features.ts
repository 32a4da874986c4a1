/**
 * Feature extraction from a frozen ResNet (docs/features.md): global pooling, BagSSL's "local aggregation"
 * (layer4 map → average pool 3/2 → flatten: 512×5×5 → 2048 for a solo-learn CIFAR ResNet-18), any
 * {kernel, stride} window, the raw map, or a bag of fixed-scale patches averaged per image; in embedding
 * space (backbone) or projection space (projector output).
 *
 * Pipeline: batch i+1 is read and normalised (uint8 NHWC → float NCHW, natively) while batch i runs through
 * the model on a native worker under inference mode; features are copied out per batch, either into one
 * (N, D) Tensor or streamed to a .npy file so memory stays bounded whatever N is.
 */
import { invalidArg, TorchSslError } from './errors.js';
import { checkKeys } from './strict-keys.js';
import { openImageSource, NORMALIZATIONS, isNormalizationName, type ImageSource, type Normalization, type NormalizationName } from './data/index.js';
import { ResNet, type Projector } from './models.js';
import { native, preloadNative, releaseCpuCache, type NativeTensor } from './native.js';
import { NpyStreamWriter } from './npy.js';
import { awaitNative, Tensor } from './tensor.js';

export type Pooling = 'global' | 'local' | 'none' | { kernel: number; stride: number };

/** A grid of `size`×`size` patches every `stride` pixels (row-major). */
export interface GridPatches {
  size: number;
  stride: number;
  /** Side each patch is resized to (bilinear) before the backbone; default the image's own size. */
  resize?: number;
}
/**
 * `count` patches per image at uniform random positions, as EMP-SSL evaluates (its 16×16 → 32×32 crops,
 * without the colour augmentations). Image i's positions come from torch.Generator().manual_seed(seed + i):
 * two torch.randint draws (rows, then columns), so a bag does not depend on batching.
 */
export interface RandomPatches {
  size: number;
  count: number;
  seed?: number;
  resize?: number;
}
export type PatchSpec = GridPatches | RandomPatches;

export type NormalizeOption = NormalizationName | 'none' | Normalization;

export interface ExtractProgress {
  done: number;
  total: number;
  imagesPerSec: number;
}

export interface ExtractOptions {
  /** Default 'global'. 'local' = { kernel: 3, stride: 2 }. 'none' returns the (N, C, H, W) map. */
  pooling?: Pooling;
  /** 'embedding' (backbone, default) or 'projection' (the projector's output; needs global pooling). */
  space?: 'embedding' | 'projection';
  patches?: PatchSpec;
  /** Backbone inputs per forward pass (with patches: patches, so images per pass = batchSize / patches per image). Default 256. */
  batchSize?: number;
  /**
   * Statistics for uint8 inputs: a name, `{ mean, std }`, or 'none' (only /255). Default: the checkpoint's
   * (`model.info.normalization`), else the source's (CIFAR folders), else cifar10 for 32×32 images and imagenet
   * otherwise. Float32 (N, 3, H, W) inputs are taken as already normalised.
   */
  normalize?: NormalizeOption;
  /** Where images are sent ('cpu', 'cuda', …); the model must already be there. Default 'cpu'. */
  device?: string;
  /** Convert model inputs to channels_last before the backbone (oneDNN's fast layout). Default true. */
  channelsLast?: boolean;
  /**
   * CPU: run an inference copy of the backbone with eval-mode BatchNorm folded into the convolutions and
   * weights pre-packed for oneDNN (same features up to float rounding, ~1.3–2× faster). Default true;
   * false runs the module itself.
   */
  foldBatchNorm?: boolean;
  onProgress?: (p: ExtractProgress) => void;
  signal?: AbortSignal;
  /** Stream features to this .npy path (atomically renamed when complete) instead of returning a Tensor. */
  out?: string;
}

/** A backbone with an optional projector and checkpoint facts, as loadCheckpoint returns them. */
export interface FeatureModel {
  backbone: ResNet;
  projector?: Projector | undefined;
  info?: { normalization?: Normalization | null; dataset?: string | null } | undefined;
}

export interface ExtractResult {
  /** (N, D) float32 — (N, C, H, W) for pooling 'none' — unless streamed to `out`. */
  features: Tensor | undefined;
  /** One label per image when the source has them. */
  labels?: Int32Array;
  count: number;
  /** Values per image (the product of the row shape). */
  dim: number;
  /** Shape of the whole output, e.g. [N, 2048]. */
  shape: number[];
  /** The statistics uint8 inputs were normalised with ('none' = only /255); undefined for float inputs. */
  normalization?: Normalization | 'none';
}

export const EXTRACT_DEFAULTS = { pooling: 'global', space: 'embedding', batchSize: 256, device: 'cpu', channelsLast: true, foldBatchNorm: true } as const;

interface PoolingSpec {
  kind: 'global' | 'window' | 'none';
  kernel: number;
  stride: number;
}

const posInt = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) > 0;

function parsePooling(p: unknown): PoolingSpec {
  if (p === 'global' || p === 'none') return { kind: p, kernel: 0, stride: 0 };
  if (p === 'local') return { kind: 'window', kernel: 3, stride: 2 };
  if (typeof p === 'object' && p !== null) {
    const { kernel, stride } = p as { kernel?: unknown; stride?: unknown };
    if (!posInt(kernel)) throw invalidArg('pooling.kernel', 'a positive integer', kernel);
    if (!posInt(stride)) throw invalidArg('pooling.stride', 'a positive integer', stride);
    return { kind: 'window', kernel, stride };
  }
  throw invalidArg('pooling', "'global', 'local', 'none' or { kernel, stride }", p);
}

interface NativePatches {
  size: number;
  stride: number;
  count: number;
  seed: number;
  outHeight: number;
  outWidth: number;
}

function parsePatches(p: unknown, height: number, width: number): NativePatches | undefined {
  if (p === undefined) return undefined;
  if (typeof p !== 'object' || p === null) throw invalidArg('patches', '{ size, stride } or { size, count }', p);
  const o = p as { size?: unknown; stride?: unknown; count?: unknown; seed?: unknown; resize?: unknown };
  if (!posInt(o.size)) throw invalidArg('patches.size', 'a positive integer', o.size);
  if ((o.stride === undefined) === (o.count === undefined)) throw invalidArg('patches', 'exactly one of stride (grid) or count (random)', JSON.stringify(p));
  if (o.stride !== undefined && !posInt(o.stride)) throw invalidArg('patches.stride', 'a positive integer', o.stride);
  if (o.count !== undefined && !posInt(o.count)) throw invalidArg('patches.count', 'a positive integer', o.count);
  if (o.seed !== undefined && !(Number.isSafeInteger(o.seed) && (o.seed as number) >= 0)) throw invalidArg('patches.seed', 'a non-negative integer', o.seed);
  if (o.resize !== undefined && !posInt(o.resize)) throw invalidArg('patches.resize', 'a positive integer', o.resize);
  if (o.size > height || o.size > width) {
    throw new TorchSslError('ERR_TORCH_SHAPE', `patch size ${o.size} exceeds the image size ${height}×${width}`);
  }
  return {
    size: o.size,
    stride: (o.stride as number | undefined) ?? 0,
    count: (o.count as number | undefined) ?? 0,
    seed: (o.seed as number | undefined) ?? 0,
    outHeight: (o.resize as number | undefined) ?? height,
    outWidth: (o.resize as number | undefined) ?? width,
  };
}

function patchesPerImage(p: NativePatches | undefined, height: number, width: number): number {
  if (p === undefined) return 1;
  if (p.count > 0) return p.count;
  return (Math.floor((height - p.size) / p.stride) + 1) * (Math.floor((width - p.size) / p.stride) + 1);
}

function resolveNormalization(
  opt: unknown,
  model: FeatureModel,
  source: { height: number; width: number; normalization?: NormalizationName | undefined },
): Normalization | 'none' {
  if (opt !== undefined) {
    if (opt === 'none') return 'none';
    if (isNormalizationName(opt)) return NORMALIZATIONS[opt];
    if (typeof opt === 'object' && opt !== null) {
      const { mean, std } = opt as { mean?: unknown; std?: unknown };
      const triple = (v: unknown) => Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number' && Number.isFinite(x));
      if (!triple(mean)) throw invalidArg('normalize.mean', 'three finite numbers', mean);
      if (!triple(std) || !(std as number[]).every((x) => x > 0)) throw invalidArg('normalize.std', 'three positive numbers', std);
      return { mean: [...(mean as number[])] as [number, number, number], std: [...(std as number[])] as [number, number, number] };
    }
    throw invalidArg('normalize', `one of ${Object.keys(NORMALIZATIONS).join(', ')}, 'none' or { mean, std }`, opt);
  }
  if (model.info?.normalization) return model.info.normalization;
  if (source.normalization !== undefined) return NORMALIZATIONS[source.normalization];
  return source.height === 32 && source.width === 32 ? NORMALIZATIONS.cifar10 : NORMALIZATIONS.imagenet;
}

/** Random access to batches of images as native tensors, from a Tensor or an ImageSource. */
interface BatchReader {
  count: number;
  height: number;
  width: number;
  uint8: boolean;
  labels?: Int32Array | undefined;
  normalization?: NormalizationName | undefined;
  read(start: number, end: number): Promise<NativeTensor>;
  close(): Promise<void>;
}

function tensorReader(t: Tensor): BatchReader {
  const shape = t.shape;
  const uint8 = t.dtype === 'uint8';
  if (uint8 ? !(shape.length === 4 && shape[3] === 3) : !(t.dtype === 'float32' && shape.length === 4 && shape[1] === 3)) {
    throw new TorchSslError(
      'ERR_TORCH_SHAPE',
      `images must be uint8 (N, H, W, 3) raw RGB pixels or float32 (N, 3, H, W) normalised, but received ${t.dtype} [${shape.join(', ')}]`,
    );
  }
  return {
    count: shape[0]!,
    height: uint8 ? shape[1]! : shape[2]!,
    width: uint8 ? shape[2]! : shape[3]!,
    uint8,
    read: async (start, end) => t.narrow(0, start, end - start).handle,
    close: async () => undefined,
  };
}

function sourceReader(source: ImageSource, owned: boolean): BatchReader {
  const uint8 = source.layout === 'NHWC-uint8';
  return {
    count: source.count,
    height: source.height,
    width: source.width,
    uint8,
    labels: source.labels,
    normalization: source.normalization,
    read: async (start, end) => {
      const b = await source.readBatch(start, end);
      const shape = uint8 ? [b.count, b.height, b.width, 3] : [b.count, 3, b.height, b.width];
      return Tensor.from(b.pixels, shape).handle;
    },
    close: async () => {
      if (owned) await source.close();
    },
  };
}

function isImageSource(v: unknown): v is ImageSource {
  return typeof v === 'object' && v !== null && typeof (v as ImageSource).readBatch === 'function' && typeof (v as ImageSource).count === 'number';
}

function toFeatureModel(model: unknown): FeatureModel {
  if (model instanceof ResNet) return { backbone: model };
  if (typeof model === 'object' && model !== null && (model as FeatureModel).backbone instanceof ResNet) return model as FeatureModel;
  throw invalidArg('model', 'a ResNet or { backbone: ResNet, projector? } (what loadCheckpoint returns)', model);
}

function aborted(what: string): TorchSslError {
  return new TorchSslError('ERR_ABORTED', `${what} was aborted`);
}

/** The options that shape the model's run, checked, with their defaults filled in. */
interface ExtractSettings {
  pooling: PoolingSpec;
  space: 'embedding' | 'projection';
  batchSize: number;
  device: string;
  channelsLast: boolean;
  foldBatchNorm: boolean;
}

function resolveSettings(m: FeatureModel, opts: ExtractOptions): ExtractSettings {
  checkKeys(opts, EXTRACT_OPTION_KEYS, 'extractFeatures options');
  const pooling = parsePooling(opts.pooling ?? EXTRACT_DEFAULTS.pooling);
  const space = opts.space ?? EXTRACT_DEFAULTS.space;
  if (space !== 'embedding' && space !== 'projection') throw invalidArg('space', "'embedding' or 'projection'", space);
  if (space === 'projection') {
    if (m.projector === undefined) throw new TorchSslError('ERR_INVALID_ARG', "space 'projection' needs a model with a projector (the checkpoint has none)");
    if (pooling.kind !== 'global')
      throw new TorchSslError('ERR_INVALID_ARG', "space 'projection' needs pooling 'global': the projector takes the pooled backbone vector");
  }
  const batchSize = opts.batchSize ?? EXTRACT_DEFAULTS.batchSize;
  if (!posInt(batchSize)) throw invalidArg('batchSize', 'a positive integer', batchSize);
  const device = opts.device ?? EXTRACT_DEFAULTS.device;
  if (typeof device !== 'string') throw invalidArg('device', "a device string such as 'cpu' or 'cuda'", device);
  const channelsLast = opts.channelsLast ?? EXTRACT_DEFAULTS.channelsLast;
  const foldBatchNorm = opts.foldBatchNorm ?? EXTRACT_DEFAULTS.foldBatchNorm;
  if (typeof channelsLast !== 'boolean') throw invalidArg('channelsLast', 'a boolean', channelsLast);
  if (typeof foldBatchNorm !== 'boolean') throw invalidArg('foldBatchNorm', 'a boolean', foldBatchNorm);
  if (opts.onProgress !== undefined && typeof opts.onProgress !== 'function') throw invalidArg('onProgress', 'a function', opts.onProgress);
  if (opts.out !== undefined && (typeof opts.out !== 'string' || opts.out.length === 0)) throw invalidArg('out', 'a non-empty path', opts.out);
  return { pooling, space, batchSize, device, channelsLast, foldBatchNorm };
}

async function openReader(images: Tensor | string | ImageSource): Promise<BatchReader> {
  if (images instanceof Tensor) return tensorReader(images);
  if (typeof images === 'string') return sourceReader(await openImageSource(images), true);
  if (isImageSource(images)) return sourceReader(images, false);
  throw invalidArg('images', 'a Tensor, a path (.npy, CIFAR folder, image folder) or an ImageSource', images);
}

/** The statistics uint8 images are normalised with; float32 images are taken as normalised and refuse any. */
function inputNormalization(opt: unknown, m: FeatureModel, reader: BatchReader): Normalization | 'none' | undefined {
  if (reader.uint8) return resolveNormalization(opt, m, reader);
  if (opt !== undefined && opt !== 'none') {
    throw new TorchSslError('ERR_INVALID_ARG', 'normalize applies to uint8 (N, H, W, 3) images; float32 (N, 3, H, W) inputs are taken as already normalised');
  }
  return undefined;
}

/** Starts reading images [start, start + step) and normalising them natively; each promise is kept in `pending`. */
function batchPreparer(
  reader: BatchReader,
  step: number,
  stats: { mean: number[]; std: number[] } | null,
  device: string,
  pending: Promise<unknown>[],
): (start: number) => Promise<NativeTensor> {
  return (start: number): Promise<NativeTensor> => {
    const end = Math.min(start + step, reader.count);
    const p = reader.read(start, end).then((raw) => native().prepareImages(raw, stats, device) as Promise<NativeTensor>);
    p.catch(() => undefined); // surfaced when awaited
    pending.push(p);
    return p;
  };
}

/** Where the features go: one (N, …) array in memory, or a .npy stream to `out`; opened on the first batch's row shape. */
interface FeatureSink {
  readonly rowShape: number[] | undefined;
  open(rowShape: number[]): Promise<void>;
  append(values: Float32Array, offset: number): Promise<void>;
  /** Completes the .npy file (no Tensor), or returns the array as a Tensor of `shape`. */
  finish(shape: number[]): Promise<Tensor | undefined>;
  abort(): Promise<void>;
}

function featureSink(out: string | undefined, total: number): FeatureSink {
  let rows: number[] | undefined;
  let writer: NpyStreamWriter | undefined;
  let collected: Float32Array | undefined;
  return {
    get rowShape() {
      return rows;
    },
    async open(rowShape) {
      rows = rowShape;
      if (out !== undefined) writer = await NpyStreamWriter.open(out, { dtype: 'float32', rowShape });
      else collected = new Float32Array(total * rowShape.reduce((a, b) => a * b, 1));
    },
    async append(values, offset) {
      if (writer !== undefined) await writer.append(values);
      else collected!.set(values, offset);
    },
    async finish(shape) {
      if (writer === undefined) return Tensor.from(collected!, shape);
      await writer.finalize();
      return undefined;
    },
    async abort() {
      await writer?.abort();
    },
  };
}

/** One extraction's checked inputs, as the batch loop needs them. */
interface ExtractRun {
  model: FeatureModel;
  reader: BatchReader;
  settings: ExtractSettings;
  patches: NativePatches | undefined;
  /** Images per forward pass. */
  step: number;
  prepare: (start: number) => Promise<NativeTensor>;
  opts: ExtractOptions;
}

/** Runs every batch through the model on a native worker while the next one is read and normalised. */
async function extractBatches(run: ExtractRun, sink: FeatureSink): Promise<void> {
  const { reader, settings, step, opts } = run;
  const backbone = run.model.backbone.handle;
  const proj = settings.space === 'projection' ? run.model.projector!.handle : null;
  const nativeOpts = { pooling: settings.pooling, patches: run.patches ?? null, channelsLast: settings.channelsLast, foldBatchNorm: settings.foldBatchNorm };
  const total = reader.count;
  const t0 = performance.now();
  let next: Promise<NativeTensor> | undefined = run.prepare(0);
  for (let start = 0; start < total; start += step) {
    if (opts.signal?.aborted) throw aborted('feature extraction');
    const input = await awaitNative(() => next!);
    next = start + step < total ? run.prepare(start + step) : undefined;
    const out = await awaitNative(() => native().extractFeatureBatch(backbone, proj, input, { ...nativeOpts, firstIndex: start }) as Promise<NativeTensor>);
    await storeBatch(run, sink, new Tensor(out), start);
    const done = Math.min(start + step, total);
    opts.onProgress?.({ done, total, imagesPerSec: done / ((performance.now() - t0) / 1000) });
  }
}

/** Copies one batch's features into the sink (opening it on the first batch) and frees the batch. */
async function storeBatch(run: ExtractRun, sink: FeatureSink, batch: Tensor, start: number): Promise<void> {
  try {
    const shape = batch.shape;
    if (sink.rowShape === undefined) {
      const rowShape = shape.slice(1);
      checkLocalPooling(run, rowShape);
      await sink.open(rowShape);
    }
    const values = batch.toTypedArray() as Float32Array;
    await sink.append(values, start * (values.length / shape[0]!));
  } finally {
    batch.dispose();
  }
}

// 'local' on a map too small for two windows per side would silently equal global pooling.
function checkLocalPooling(run: ExtractRun, rowShape: number[]): void {
  if (run.opts.pooling === 'local' && run.settings.space === 'embedding' && rowShape.reduce((a, b) => a * b, 1) <= run.model.backbone.featureDim) {
    throw new TorchSslError(
      'ERR_TORCH_SHAPE',
      `pooling 'local' (3×3 windows, stride 2) needs a layer4 map of at least 5×5, as a CIFAR-stem ResNet gives for 32×32 images; these ${run.reader.height}×${run.reader.width} images give one window only, which is global pooling. Use 32×32 inputs, or pooling { kernel: 2, stride: 1 } for a 3×3 or 4×4 map`,
    );
  }
}

async function extractResult(reader: BatchReader, sink: FeatureSink, normalization: Normalization | 'none' | undefined): Promise<ExtractResult> {
  const rowShape = sink.rowShape!;
  const total = reader.count;
  const shape = [total, ...rowShape];
  const features = await sink.finish(shape);
  const result: ExtractResult = { features, count: total, dim: rowShape.reduce((a, b) => a * b, 1), shape };
  if (reader.labels !== undefined) result.labels = reader.labels;
  if (normalization !== undefined) result.normalization = normalization;
  return result;
}

/**
 * Extracts one feature vector (or map) per image. `images`: a Tensor (uint8 (N, H, W, 3) or float32
 * (N, 3, H, W)), a path (.npy, CIFAR-10/100 binary folder, image folder) or an ImageSource.
 */
const EXTRACT_OPTION_KEYS = [
  'pooling',
  'space',
  'patches',
  'batchSize',
  'normalize',
  'device',
  'channelsLast',
  'foldBatchNorm',
  'onProgress',
  'signal',
  'out',
] as const;
// Compile-time: the list names every ExtractOptions key (a key added to the interface but not here fails tsc).
const _extractKeysComplete: Exclude<keyof ExtractOptions, (typeof EXTRACT_OPTION_KEYS)[number]> extends never ? true : never = true;
void _extractKeysComplete;

/** Features streamed to `out`: the result holds no tensor. */
export type ExtractResultStreamed = ExtractResult & { features: undefined };
/** Features in memory (no `out`): `features` is always a Tensor. */
export type ExtractResultInMemory = ExtractResult & { features: Tensor };

export function extractFeatures(
  model: ResNet | FeatureModel,
  images: Tensor | string | ImageSource,
  opts: ExtractOptions & { out: string },
): Promise<ExtractResultStreamed>;
export function extractFeatures(
  model: ResNet | FeatureModel,
  images: Tensor | string | ImageSource,
  opts?: ExtractOptions & { out?: undefined },
): Promise<ExtractResultInMemory>;
export function extractFeatures(model: ResNet | FeatureModel, images: Tensor | string | ImageSource, opts?: ExtractOptions): Promise<ExtractResult>;
export async function extractFeatures(model: ResNet | FeatureModel, images: Tensor | string | ImageSource, opts: ExtractOptions = {}): Promise<ExtractResult> {
  const m = toFeatureModel(model);
  if (typeof opts !== 'object' || opts === null) throw invalidArg('options', 'an object', opts);
  await preloadNative();
  const settings = resolveSettings(m, opts);
  if (opts.signal?.aborted) throw aborted('feature extraction');
  const reader = await openReader(images);
  const sink = featureSink(opts.out, reader.count);
  const pending: Promise<unknown>[] = [];
  try {
    if (reader.count === 0) throw new TorchSslError('ERR_TORCH_SHAPE', 'no images to extract features from (the input is empty)');
    const patches = parsePatches(opts.patches, reader.height, reader.width);
    const normalization = inputNormalization(opts.normalize, m, reader);
    const stats = normalization === undefined || normalization === 'none' ? null : { mean: [...normalization.mean], std: [...normalization.std] };
    const step = Math.max(1, Math.floor(settings.batchSize / patchesPerImage(patches, reader.height, reader.width)));
    const run: ExtractRun = { model: m, reader, settings, patches, step, prepare: batchPreparer(reader, step, stats, settings.device, pending), opts };
    await extractBatches(run, sink);
    return await extractResult(reader, sink, normalization);
  } catch (err) {
    await sink.abort();
    throw err;
  } finally {
    await Promise.allSettled(pending);
    await reader.close();
    // The activations' blocks go back to the system when an inference call ends (training does the same),
    // so a library user's process does not keep ~1 GB after one extraction.
    releaseCpuCache();
  }
}
