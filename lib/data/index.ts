/**
 * Image data sources: a `.npy` array, a CIFAR-10/100 binary folder or an image folder, behind one
 * `ImageSource` that reads batches of raw pixels with bounded memory.
 */
import { stat } from 'node:fs/promises';
import { invalidArg, TorchSslError } from '../errors.js';
import { CifarSource, detectCifar, type CifarSplit, type CifarVariant } from './cifar.js';
import { ImageFolderSource, type ImageFolderOptions } from './image-folder.js';
import { NpyImageSource } from './npy-source.js';
import type { ImageBatch, ImageSource } from './source.js';

export * from './source.js';
export * from './normalization.js';
export { CifarSource, readCifar, detectCifar, CIFAR10_CLASSES, CIFAR100_CLASSES, CIFAR100_COARSE_CLASSES } from './cifar.js';
export type { CifarData, CifarOptions, CifarSplit, CifarVariant } from './cifar.js';
export { ImageFolderSource, readImageFolder, scanImageFolder, decodeImage, decodeImages, IMG_EXTENSIONS } from './image-folder.js';
export type { DecodeOptions, ImageFolderIndex, ImageFolderOptions, ResizeFit, ResizeKernel } from './image-folder.js';
export { NpyImageSource, readLabelsNpy, findLabelsFile } from './npy-source.js';
export type { NpyImageSourceOptions } from './npy-source.js';

export interface OpenImageSourceOptions extends ImageFolderOptions {
  path: string;
  /** Skip detection. `'cifar'` detects CIFAR-10 vs CIFAR-100 from the file names. */
  kind?: 'npy' | 'cifar' | CifarVariant | 'image-folder';
  /** CIFAR: which split (default `'train'`). */
  split?: CifarSplit;
  /** CIFAR-100: fine (100, default) or coarse (20) labels. */
  labelKind?: 'fine' | 'coarse';
  /** .npy: the labels file (default `<stem>-labels.npy` / `<stem>_labels.npy` when present), or `false`. */
  labels?: string | false;
}

const KINDS = ['npy', 'cifar', 'cifar10', 'cifar100', 'image-folder'];

/**
 * Opens `path` as an image source, detecting its kind: a `.npy` file; a folder with CIFAR binary batches
 * (or with `cifar-10-batches-bin` / `cifar-100-binary` inside); otherwise a folder of class sub-folders.
 */
export async function openImageSource(pathOrOptions: string | OpenImageSourceOptions): Promise<ImageSource> {
  const opts: OpenImageSourceOptions = typeof pathOrOptions === 'string' ? { path: pathOrOptions } : { ...pathOrOptions };
  if (opts === null || typeof opts !== 'object' || typeof opts.path !== 'string' || opts.path.length === 0) {
    throw invalidArg('path', 'a non-empty string', (opts as { path?: unknown } | null)?.path);
  }
  if (opts.kind !== undefined && !KINDS.includes(opts.kind)) throw invalidArg('kind', KINDS.map((k) => `'${k}'`).join(', '), opts.kind);
  const { path } = opts;
  let info;
  try {
    info = await stat(path);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new TorchSslError('ERR_IO', `Cannot read ${path}: ${e?.message ?? String(err)}`, { file: path, errno: e?.code });
  }

  const kind = opts.kind ?? (await detectKind(path, info.isDirectory()));
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
      return ImageFolderSource.open(path, opts);
  }
}

async function detectKind(path: string, isDirectory: boolean): Promise<'npy' | 'cifar' | 'image-folder'> {
  if (!isDirectory) {
    if (path.toLowerCase().endsWith('.npy')) return 'npy';
    throw new TorchSslError(
      'ERR_DATA_FORMAT',
      `${path}: unsupported input file; expected a .npy array (uint8 N×H×W×3 or float32 N×3×H×W), a CIFAR binary folder or an image folder`,
      { file: path },
    );
  }
  if ((await detectCifar(path)) !== undefined) return 'cifar';
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
export async function* iterateBatches(source: ImageSource, batchSize: number, opts: IterateBatchesOptions = {}): AsyncGenerator<ImageBatch & { start: number }> {
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
