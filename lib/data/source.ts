/** The uniform view every image data source gives: random access to batches of raw pixels. */
import { invalidArg, TorchSslError } from '../errors.js';
import type { NormalizationName } from './normalization.js';

/**
 * `'NHWC-uint8'`: raw 0..255 pixels, channels last (numpy/PIL order). `'NCHW-float32'`: values taken as
 * already normalised, channels first (PyTorch order).
 */
export type PixelLayout = 'NHWC-uint8' | 'NCHW-float32';

export type ImageSourceKind = 'npy' | 'cifar10' | 'cifar100' | 'idx' | 'image-folder';

export interface ImageBatch {
  /** `count * height * width * 3` values in `layout` order. */
  pixels: Uint8Array | Float32Array;
  layout: PixelLayout;
  count: number;
  height: number;
  width: number;
  /** Labels of these images, when the source has labels. */
  labels?: Int32Array;
}

export interface ImageSource {
  readonly kind: ImageSourceKind;
  /** The file or folder it reads. */
  readonly path: string;
  readonly count: number;
  readonly height: number;
  readonly width: number;
  readonly layout: PixelLayout;
  /** One label per image (class indices), when the source has them. */
  readonly labels?: Int32Array | undefined;
  /** Class names indexed by label, when known. */
  readonly classes?: readonly string[] | undefined;
  /** The dataset statistics that fit this source (CIFAR folders, Fashion-MNIST / MNIST IDX files), when known. */
  readonly normalization?: NormalizationName | undefined;
  /** Images `[start, end)`; memory is proportional to `end - start` only. */
  readBatch(start: number, end: number): Promise<ImageBatch>;
  /** Releases open files. Idempotent. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export function checkRange(start: number, end: number, count: number): void {
  if (!Number.isSafeInteger(start) || start < 0 || start > count) throw invalidArg('start', `an integer in [0, ${count}]`, start);
  if (!Number.isSafeInteger(end) || end < start || end > count) throw invalidArg('end', `an integer in [${start}, ${count}]`, end);
}

/** A malformed input file: `ERR_DATA_FORMAT` naming it. */
export function dataError(path: string, problem: string): TorchSslError {
  return new TorchSslError('ERR_DATA_FORMAT', `${path}: ${problem}`, { file: path });
}

/** A file that cannot be read: `ERR_IO` naming it (a TorchSslError passes through unchanged). */
export { ioError } from '../io.js';
