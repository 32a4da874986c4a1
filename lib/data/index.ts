/**
 * Image data sources: a `.npy` array, a CIFAR-10/100 binary folder or an image folder, behind one
 * `ImageSource` that reads batches of raw pixels with bounded memory.
 */
import { stat } from 'node:fs/promises';
import { invalidArg, TorchSslError } from '../errors.js';
import { checkKeys } from '../strict-keys.js';
import { CifarSource, detectCifar, type CifarSplit, type CifarVariant } from './cifar.js';
import { ImageFolderSource, type ImageFolderOptions, type ResizeFit } from './image-folder.js';
import { NpyImageSource } from './npy-source.js';
import { IdxImageSource, findIdxImages, isIdxPath, type IdxFit } from './idx.js';
import { checkRange, ioError, type ImageBatch, type ImageSource } from './source.js';

export * from './source.js';
export * from './normalization.js';
export { CifarSource, readCifar, detectCifar, CIFAR10_CLASSES, CIFAR100_CLASSES, CIFAR100_COARSE_CLASSES } from './cifar.js';
export type { CifarData, CifarOptions, CifarSplit, CifarVariant } from './cifar.js';
export { ImageFolderSource, readImageFolder, scanImageFolder, decodeImage, decodeImages, IMG_EXTENSIONS } from './image-folder.js';
export type { DecodeOptions, ImageFolderIndex, ImageFolderOptions, ResizeFit, ResizeKernel } from './image-folder.js';
export { NpyImageSource, readLabelsNpy, findLabelsFile } from './npy-source.js';
export type { NpyImageSourceOptions } from './npy-source.js';
export { IdxImageSource, readIdxLabels, findIdxLabels, isIdxPath, FASHION_MNIST_CLASSES, MNIST_CLASSES } from './idx.js';
export type { IdxOptions, IdxFit, IdxSplit } from './idx.js';

export interface OpenImageSourceOptions extends Omit<ImageFolderOptions, 'fit'> {
  /** Image folders: how a decoded image meets `size` (`'cover'` default, `'contain'`, `'fill'`).
   *  IDX (MNIST family): zero-pad or resize the stored images to `size` (default: pad when larger, resize when smaller). */
  fit?: ResizeFit | IdxFit;
  path: string;
  /** Skip detection. `'cifar'` detects CIFAR-10 vs CIFAR-100 from the file names. */
  kind?: 'npy' | 'cifar' | CifarVariant | 'idx' | 'image-folder';
  /** CIFAR and IDX folders: which split (default `'train'`). */
  split?: CifarSplit;
  /** CIFAR-100: fine (100, default) or coarse (20) labels. */
  labelKind?: 'fine' | 'coarse';
  /** .npy: the labels file (default `<stem>-labels.npy` / `<stem>_labels.npy` when present), or `false`. */
  labels?: string | false;
  /** IDX: gray → RGB by copying the channel (the only mode, named to be explicit). */
  grayscale?: 'replicate';
  /** The first `limit` images only (any kind); with `sampleSeed`, `limit` images drawn at random. */
  limit?: number;
  /**
   * With `limit`: a seeded random sample of `limit` distinct images (kept in file order) instead of the first
   * `limit`; the same seed draws the same images on every machine.
   */
  sampleSeed?: number;
}

const KINDS = ['npy', 'cifar', 'cifar10', 'cifar100', 'idx', 'image-folder'];
const OPEN_KEYS = [
  'path',
  'kind',
  'split',
  'labelKind',
  'labels',
  'fit',
  'grayscale',
  'limit',
  'sampleSeed',
  'size',
  'kernel',
  'concurrency',
  'height',
  'width',
] as const;
// Compile-time: the list names every OpenImageSourceOptions key.
const _openKeysComplete: Exclude<keyof OpenImageSourceOptions, (typeof OPEN_KEYS)[number]> extends never ? true : never = true;
void _openKeysComplete;

/**
 * Opens `path` as an image source, detecting its kind: a `.npy` file; an MNIST-family IDX images file
 * (`*-images-idx3-ubyte[.gz]`); a folder with CIFAR binary batches (or with `cifar-10-batches-bin` /
 * `cifar-100-binary` inside); a folder of IDX files (the split's `train-` / `t10k-` images); otherwise a
 * folder of class sub-folders.
 */
export async function openImageSource(pathOrOptions: string | OpenImageSourceOptions): Promise<ImageSource> {
  const opts: OpenImageSourceOptions = typeof pathOrOptions === 'string' ? { path: pathOrOptions } : { ...pathOrOptions };
  if (opts === null || typeof opts !== 'object' || typeof opts.path !== 'string' || opts.path.length === 0) {
    throw invalidArg('path', 'a non-empty string', (opts as { path?: unknown } | null)?.path);
  }
  checkKeys(opts, OPEN_KEYS, 'openImageSource options');
  if (opts.kind !== undefined && !KINDS.includes(opts.kind)) throw invalidArg('kind', KINDS.map((k) => `'${k}'`).join(', '), opts.kind);
  const { path } = opts;
  let info;
  try {
    info = await stat(path);
  } catch (err) {
    throw ioError(path, err);
  }

  if (opts.limit !== undefined && (!Number.isSafeInteger(opts.limit) || opts.limit <= 0)) throw invalidArg('limit', 'a positive integer', opts.limit);
  if (opts.sampleSeed !== undefined) {
    if (!Number.isSafeInteger(opts.sampleSeed) || opts.sampleSeed < 0) throw invalidArg('sampleSeed', 'a non-negative integer', opts.sampleSeed);
    if (opts.limit === undefined) throw invalidArg('limit', 'a positive integer (sampleSeed draws `limit` images)', opts.limit);
  }
  const kind = opts.kind ?? (await detectKind(path, info.isDirectory()));
  if (opts.sampleSeed !== undefined) {
    const { limit, sampleSeed, ...whole } = opts;
    const all = kind === 'idx' ? await openIdx(path, whole) : await openKind(kind, path, whole);
    return sampleSource(all, limit!, sampleSeed);
  }
  if (kind === 'idx') return openIdx(path, opts);
  const source = await openKind(kind, path, opts);
  return opts.limit === undefined ? source : limitSource(source, opts.limit);
}

/**
 * `limit` distinct indices of `[0, count)` drawn by a seeded partial Fisher-Yates shuffle (SplitMix32 draws),
 * sorted: the same seed gives the same sample everywhere.
 */
export function sampleIndices(count: number, limit: number, seed: number): Int32Array {
  const n = Math.min(limit, count);
  const pool = Int32Array.from({ length: count }, (_, i) => i);
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor((next() / 2 ** 32) * (count - i));
    const t = pool[i]!;
    pool[i] = pool[j]!;
    pool[j] = t;
  }
  return pool.subarray(0, n).sort();
}

/** A seeded random sample of `limit` images of `source`, in file order (reads gather them one by one). */
function sampleSource(source: ImageSource, limit: number, seed: number): ImageSource {
  const picked = sampleIndices(source.count, limit, seed);
  const count = picked.length;
  const view = Object.create(source) as ImageSource;
  Object.defineProperty(view, 'count', { value: count });
  if (source.labels !== undefined) Object.defineProperty(view, 'labels', { value: Int32Array.from(picked, (i) => source.labels![i]!) });
  Object.defineProperty(view, 'readBatch', {
    value: async (start: number, end: number): Promise<ImageBatch> => {
      checkRange(start, end, count);
      const parts: ImageBatch[] = [];
      for (let k = start; k < end; k++) parts.push(await source.readBatch(picked[k]!, picked[k]! + 1));
      const per = source.height * source.width * 3;
      const pixels = source.layout === 'NHWC-uint8' ? new Uint8Array((end - start) * per) : new Float32Array((end - start) * per);
      parts.forEach((p, k) => pixels.set(p.pixels, k * per));
      const labels = source.labels !== undefined ? Int32Array.from(picked.subarray(start, end), (i) => source.labels![i]!) : undefined;
      return { pixels, layout: source.layout, count: end - start, height: source.height, width: source.width, ...(labels && { labels }) };
    },
  });
  Object.defineProperty(view, 'close', { value: () => source.close() });
  Object.defineProperty(view, Symbol.asyncDispose, { value: () => source.close() });
  return view;
}

async function openKind(kind: 'npy' | 'cifar' | CifarVariant | 'image-folder', path: string, opts: OpenImageSourceOptions): Promise<ImageSource> {
  switch (kind) {
    case 'npy':
      return NpyImageSource.open(path, opts.labels === undefined ? {} : { labels: opts.labels });
    case 'cifar':
    case 'cifar10':
    case 'cifar100':
      return CifarSource.open(path, {
        ...(opts.split !== undefined && { split: opts.split }),
        ...(kind !== 'cifar' && { variant: kind }),
        ...(opts.labelKind !== undefined && { labelKind: opts.labelKind }),
      });
    case 'image-folder':
      return ImageFolderSource.open(path, opts as ImageFolderOptions);
  }
}

function openIdx(path: string, opts: OpenImageSourceOptions): Promise<ImageSource> {
  if (Array.isArray(opts.size)) throw invalidArg('size', 'one side (IDX images are square after padding / resizing)', opts.size);
  if (opts.fit !== undefined && opts.fit !== 'pad' && opts.fit !== 'resize') throw invalidArg('fit', "'pad' or 'resize' for IDX files", opts.fit);
  return IdxImageSource.open(path, {
    ...(opts.labels !== undefined && { labels: opts.labels }),
    ...(opts.split !== undefined && { split: opts.split }),
    ...(opts.size !== undefined && { size: opts.size as number }),
    ...(opts.fit !== undefined && { fit: opts.fit as IdxFit }),
    ...(opts.grayscale !== undefined && { grayscale: opts.grayscale }),
    ...(opts.limit !== undefined && { limit: opts.limit }),
  });
}

/** The first `limit` images of `source` (the source itself when it has no more). */
function limitSource(source: ImageSource, limit: number): ImageSource {
  if (limit >= source.count) return source;
  const view = Object.create(source) as ImageSource;
  Object.defineProperty(view, 'count', { value: limit });
  if (source.labels !== undefined) Object.defineProperty(view, 'labels', { value: source.labels.subarray(0, limit) });
  Object.defineProperty(view, 'readBatch', {
    value: (start: number, end: number) => {
      checkRange(start, end, limit);
      return source.readBatch(start, end);
    },
  });
  Object.defineProperty(view, 'close', { value: () => source.close() });
  Object.defineProperty(view, Symbol.asyncDispose, { value: () => source.close() });
  return view;
}

async function detectKind(path: string, isDirectory: boolean): Promise<'npy' | 'cifar' | 'idx' | 'image-folder'> {
  if (!isDirectory) {
    if (path.toLowerCase().endsWith('.npy')) return 'npy';
    if (isIdxPath(path)) return 'idx';
    throw new TorchSslError(
      'ERR_DATA_FORMAT',
      `${path}: unsupported input file; expected a .npy array (uint8 N×H×W×3 or float32 N×3×H×W), an MNIST-style *-images-idx3-ubyte[.gz] file, a CIFAR binary folder, a folder of IDX files or an image folder`,
      { file: path },
    );
  }
  if ((await detectCifar(path)) !== undefined) return 'cifar';
  if ((await findIdxImages(path, 'train')) !== undefined || (await findIdxImages(path, 'test')) !== undefined) return 'idx';
  return 'image-folder';
}

export interface IterateBatchesOptions {
  /** Batches prepared ahead of the consumer (default 1): decoding overlaps with whatever consumes them. */
  prefetch?: number;
  start?: number;
  end?: number;
  signal?: AbortSignal;
}

/**
 * Yields consecutive batches of `batchSize` images (the last may be shorter), reading the next ones while the
 * caller works on the current one.
 */
export async function* iterateBatches(
  source: ImageSource,
  batchSize: number,
  opts: IterateBatchesOptions = {},
): AsyncGenerator<ImageBatch & { start: number }> {
  if (!Number.isSafeInteger(batchSize) || batchSize <= 0) throw invalidArg('batchSize', 'positive integer', batchSize);
  const prefetch = opts.prefetch ?? 1;
  if (!Number.isSafeInteger(prefetch) || prefetch < 0) throw invalidArg('prefetch', 'non-negative integer', prefetch);
  const first = opts.start ?? 0;
  const last = opts.end ?? source.count;
  if (!Number.isSafeInteger(first) || first < 0 || first > source.count) throw invalidArg('start', `an integer in [0, ${source.count}]`, first);
  if (!Number.isSafeInteger(last) || last < first || last > source.count) throw invalidArg('end', `an integer in [${first}, ${source.count}]`, last);
  const pending: { start: number; batch: Promise<ImageBatch> }[] = [];
  let next = first;
  const fill = (): void => {
    while (pending.length <= prefetch && next < last) {
      const start = next;
      const end = Math.min(start + batchSize, last);
      const batch = source.readBatch(start, end);
      batch.catch(() => undefined); // surfaced when awaited below
      pending.push({ start, batch });
      next = end;
    }
  };
  try {
    fill();
    while (pending.length > 0) {
      if (opts.signal?.aborted) throw new TorchSslError('ERR_ABORTED', 'reading images was aborted');
      const head = pending.shift()!;
      const batch = await head.batch;
      fill();
      yield { ...batch, start: head.start };
    }
  } finally {
    await Promise.allSettled(pending.map((p) => p.batch));
  }
}
