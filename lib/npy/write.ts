/** Writing .npy: a whole array atomically, or row batches streamed to a temporary file renamed at the end. */
import { type FileHandle } from 'node:fs/promises';
import { type DType, type TypedArray } from '../dtype.js';
import { invalidArg } from '../errors.js';
import { commitTemporary, createTemporary, discardTemporary, ioError, ioFailure } from '../io.js';
import { checkWritable, headerBytes, serializeNpyHeader, type NpyArray } from './header.js';

const ARRAY_CTOR: Record<DType, string> = {
  float16: 'Uint16Array',
  bfloat16: 'Uint16Array',
  float32: 'Float32Array',
  float64: 'Float64Array',
  int8: 'Int8Array',
  int16: 'Int16Array',
  int32: 'Int32Array',
  int64: 'BigInt64Array',
  uint8: 'Uint8Array',
  bool: 'Uint8Array',
};

function checkArrayType(dtype: DType, data: unknown, what: string): asserts data is TypedArray {
  const ctor = ARRAY_CTOR[dtype];
  const actual = (data as { constructor?: { name?: string } } | null)?.constructor?.name;
  // Buffer is a Uint8Array subclass; accept it for the byte dtypes.
  const ok = actual === ctor || (ctor === 'Uint8Array' && data instanceof Uint8Array);
  if (!ok || !ArrayBuffer.isView(data)) throw invalidArg(what, `a ${ctor} for dtype ${dtype}`, actual ?? data);
}

function bytesOf(data: TypedArray): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

async function writeFully(fh: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    // Large writes are chunked: a single write(2) is capped near 2 GiB.
    const { bytesWritten } = await fh.write(bytes, done, Math.min(bytes.length - done, 1 << 30), position + done);
    done += bytesWritten;
  }
}

/**
 * Creates the temporary file `path` is written through (beside it, exclusively) and writes `header` at its
 * start. Throws ERR_IO naming `path`, leaving no file behind.
 */
async function createWithHeader(path: string, header: Uint8Array): Promise<{ tmp: string; fh: FileHandle }> {
  let created: { tmp: string; fh: FileHandle } | undefined;
  try {
    created = await createTemporary(path, 0o644);
    await writeFully(created.fh, header, 0);
    return created;
  } catch (err) {
    if (created) await discardTemporary(created.fh, created.tmp);
    throw ioError(path, err, 'write');
  }
}

/**
 * Writes `{ dtype, shape, data }` as a v1 (or v2 for huge headers) `.npy`, atomically: the bytes go to a
 * temporary file in the same directory which is renamed over `path` only once complete; on any error the
 * temporary file is removed and `path` is untouched.
 */
export async function writeNpyFile(path: string, array: NpyArray): Promise<void> {
  if (typeof path !== 'string' || path.length === 0) throw invalidArg('path', 'a non-empty string', path);
  const { dtype, shape, data } = array;
  const { count } = checkWritable(dtype, shape);
  checkArrayType(dtype, data, 'data');
  if (data.length !== count) throw invalidArg('data', `${count} elements for shape [${shape.join(', ')}]`, `${data.length} elements`);
  const header = serializeNpyHeader(dtype, shape);
  const { tmp, fh } = await createWithHeader(path, header);
  try {
    await writeFully(fh, bytesOf(data), header.length);
    await commitTemporary(fh, tmp, path);
  } catch (err) {
    await discardTemporary(fh, tmp);
    throw ioError(path, err, 'write');
  }
}

export interface NpyStreamOptions {
  dtype: DType;
  /** The shape of one row (everything after the first dimension); `[]` for a 1-D output. */
  rowShape: readonly number[];
}

/**
 * Writes a `.npy` whose first dimension grows as rows are appended, with bounded memory (e.g. features of a
 * large image set, batch by batch). The header is reserved at a fixed width big enough for any row count and
 * patched by `finalize()`, which then renames the temporary file into place; `abort()` removes it.
 */
export class NpyStreamWriter {
  private fh: FileHandle | undefined;
  private position: number;
  private rowCount = 0;
  private queue: Promise<void> = Promise.resolve();
  private state: 'open' | 'finalized' | 'aborted' | 'failed' = 'open';
  readonly rowSize: number;

  private constructor(
    readonly path: string,
    private readonly tmpPath: string,
    readonly dtype: DType,
    readonly rowShape: readonly number[],
    fh: FileHandle,
    private readonly headerLength: number,
  ) {
    this.fh = fh;
    this.position = headerLength;
    this.rowSize = rowShape.reduce((a, b) => a * b, 1);
  }

  static async open(path: string, opts: NpyStreamOptions): Promise<NpyStreamWriter> {
    if (typeof path !== 'string' || path.length === 0) throw invalidArg('path', 'a non-empty string', path);
    const rowShape = [...opts.rowShape];
    const { descr } = checkWritable(opts.dtype, rowShape);
    // The widest header this array can ever need: the row count at the largest safe integer.
    const reserved = headerBytes(descr, [Number.MAX_SAFE_INTEGER, ...rowShape], 0);
    const { tmp, fh } = await createWithHeader(path, serializeNpyHeader(opts.dtype, [0, ...rowShape], { minLength: reserved.length }));
    return new NpyStreamWriter(path, tmp, opts.dtype, rowShape, fh, reserved.length);
  }

  /** Rows appended so far. */
  get rows(): number {
    return this.rowCount;
  }

  private enqueue(work: () => Promise<void>): Promise<void> {
    const next = this.queue.then(work);
    // Keep the chain alive after a failure; the failing call still rejects.
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async fail(err: unknown): Promise<never> {
    this.state = 'failed';
    await this.discard();
    throw ioError(this.path, err, 'write');
  }

  /**
   * Appends whole rows (`data.length` a multiple of the row size) in call order. The data is written before
   * the returned promise resolves; don't modify it until then.
   */
  append(data: TypedArray): Promise<void> {
    if (this.state !== 'open') return Promise.reject(ioFailure(this.path, `${this.path}: stream writer is ${this.state}`));
    try {
      checkArrayType(this.dtype, data, 'data');
      if (this.rowSize === 0 ? data.length !== 0 : data.length % this.rowSize !== 0) {
        throw invalidArg('data', `a multiple of ${this.rowSize} elements (rows of shape [${this.rowShape.join(', ')}])`, `${data.length} elements`);
      }
    } catch (err) {
      return Promise.reject(err);
    }
    const rows = this.rowSize === 0 ? 0 : data.length / this.rowSize;
    const bytes = bytesOf(data);
    return this.enqueue(async () => {
      if (this.state !== 'open') throw ioFailure(this.path, `${this.path}: stream writer is ${this.state}`);
      try {
        await writeFully(this.fh!, bytes, this.position);
      } catch (err) {
        await this.fail(err);
      }
      this.position += bytes.length;
      this.rowCount += rows;
    });
  }

  /**
   * Appends rows of a row-less shape (`rowSize` 0, e.g. features of dimension 0) — only needed because such rows
   * carry no data to count.
   */
  appendEmptyRows(rows: number): Promise<void> {
    if (this.rowSize !== 0) return Promise.reject(invalidArg('rowShape', 'a shape with a zero dimension for appendEmptyRows', `[${this.rowShape.join(', ')}]`));
    return this.enqueue(async () => {
      this.rowCount += rows;
    });
  }

  /** Patches the row count into the header, flushes and renames into place. Returns the final shape. */
  finalize(): Promise<number[]> {
    return this.enqueue(async () => {
      if (this.state !== 'open') throw ioFailure(this.path, `${this.path}: stream writer is ${this.state}`);
      const shape = [this.rowCount, ...this.rowShape];
      try {
        const header = serializeNpyHeader(this.dtype, shape, { minLength: this.headerLength });
        if (header.length !== this.headerLength) throw new Error(`header grew to ${header.length} bytes`);
        await writeFully(this.fh!, header, 0);
        await commitTemporary(this.fh!, this.tmpPath, this.path);
        this.fh = undefined;
        this.state = 'finalized';
      } catch (err) {
        await this.fail(err);
      }
    }).then(() => [this.rowCount, ...this.rowShape]);
  }

  private async discard(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    await discardTemporary(fh, this.tmpPath);
  }

  /** Removes the temporary file; `path` is left as it was. Safe to call more than once, or after finalize(). */
  async abort(): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'aborted';
    await this.queue;
    await this.discard();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.abort();
  }
}
