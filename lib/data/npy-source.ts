/**
 * Images stored as one `.npy`: uint8 (N,H,W,3) raw pixels, or float32 (N,3,H,W) already normalised; with
 * optional labels in a second `.npy` (any integer dtype, shape (N,)). Rows are read per batch, so memory is
 * bounded by the batch whatever N is.
 */
import { access } from 'node:fs/promises';
import { NpyFileReader, readNpyFile } from '../npy.js';
import { checkRange, dataError, type ImageBatch, type ImageSource, type PixelLayout } from './source.js';

export interface NpyImageSourceOptions {
  /**
   * Labels `.npy`. Default: `<stem>-labels.npy` or `<stem>_labels.npy` beside the images when such a file
   * exists; `false` for none.
   */
  labels?: string | false;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** The labels file that conventionally sits beside `imagesPath`, if one does. */
export async function findLabelsFile(imagesPath: string): Promise<string | undefined> {
  if (!imagesPath.endsWith('.npy')) return undefined;
  const stem = imagesPath.slice(0, -'.npy'.length);
  for (const candidate of [`${stem}-labels.npy`, `${stem}_labels.npy`]) if (await exists(candidate)) return candidate;
  return undefined;
}

/** Reads a labels `.npy` of any integer dtype as Int32Array; shape (N,) or (N, 1). */
export async function readLabelsNpy(path: string): Promise<Int32Array> {
  const { dtype, shape, data } = await readNpyFile(path);
  if (!(shape.length === 1 || (shape.length === 2 && shape[1] === 1))) {
    throw dataError(path, `labels must have shape (N,), got (${shape.join(', ')})`);
  }
  if (!['int8', 'int16', 'int32', 'int64', 'uint8'].includes(dtype)) {
    throw dataError(path, `labels must be an integer array (int64 / int32 / ...), got ${dtype}`);
  }
  if (data instanceof BigInt64Array) {
    const out = new Int32Array(data.length);
    for (let i = 0; i < data.length; i++) {
      const v = data[i]!;
      if (v < -2147483648n || v > 2147483647n) throw dataError(path, `label ${v} at index ${i} is outside the int32 range`);
      out[i] = Number(v);
    }
    return out;
  }
  return data instanceof Int32Array ? data : Int32Array.from(data as ArrayLike<number>);
}

export class NpyImageSource implements ImageSource {
  readonly kind = 'npy' as const;
  private constructor(
    readonly path: string,
    private readonly reader: NpyFileReader,
    readonly layout: PixelLayout,
    readonly count: number,
    readonly height: number,
    readonly width: number,
    readonly labels: Int32Array | undefined,
    readonly labelsPath: string | undefined,
  ) {}

  static async open(path: string, opts: NpyImageSourceOptions = {}): Promise<NpyImageSource> {
    const reader = await NpyFileReader.open(path);
    try {
      const { dtype, shape } = reader;
      const [n, a, b, c] = shape as [number, number, number, number];
      let layout: PixelLayout;
      let height: number;
      let width: number;
      if (dtype === 'uint8' && shape.length === 4 && c === 3) {
        layout = 'NHWC-uint8';
        [height, width] = [a, b];
      } else if (dtype === 'float32' && shape.length === 4 && a === 3) {
        layout = 'NCHW-float32';
        [height, width] = [b, c];
      } else {
        throw dataError(path, `expected uint8 (N, H, W, 3) raw pixels or float32 (N, 3, H, W) normalised images, got ${dtype} (${shape.join(', ')})`);
      }
      if (height === 0 || width === 0) throw dataError(path, `images have an empty side: shape (${shape.join(', ')})`);
      const labelsPath = opts.labels === false ? undefined : (opts.labels ?? (await findLabelsFile(path)));
      let labels: Int32Array | undefined;
      if (labelsPath !== undefined) {
        labels = await readLabelsNpy(labelsPath);
        if (labels.length !== n) {
          throw dataError(labelsPath, `has ${labels.length} labels but ${path} has ${n} images`);
        }
      }
      return new NpyImageSource(path, reader, layout, n, height, width, labels, labelsPath);
    } catch (err) {
      await reader.close();
      throw err;
    }
  }

  async readBatch(start: number, end: number): Promise<ImageBatch> {
    checkRange(start, end, this.count);
    const pixels = (await this.reader.readRows(start, end)) as Uint8Array | Float32Array;
    const batch: ImageBatch = { pixels, layout: this.layout, count: end - start, height: this.height, width: this.width };
    if (this.labels !== undefined) batch.labels = this.labels.slice(start, end);
    return batch;
  }

  async close(): Promise<void> {
    await this.reader.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
