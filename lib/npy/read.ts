/** Reading .npy: from bytes in memory, or from a file, whole or by row ranges. */
import { open, type FileHandle } from 'node:fs/promises';
import { DTYPE_BYTES, type DType, type TypedArray, typedArrayFor } from '../dtype.js';
import { invalidArg } from '../errors.js';
import { ioError, ioFailure, readFully } from '../io.js';
import { formatError } from './errors.js';
import { MAX_HEADER_BYTES, parseNpyHeader, PREAMBLE_MAX, readPreamble, type NpyArray, type NpyHeader } from './header.js';

function byteSwap(bytes: Uint8Array, width: number): void {
  for (let i = 0; i + width <= bytes.length; i += width) {
    for (let a = i, b = i + width - 1; a < b; a++, b--) {
      const t = bytes[a]!;
      bytes[a] = bytes[b]!;
      bytes[b] = t;
    }
  }
}

/** Makes the decoded bytes native (little-endian) and canonical (bools as 0/1), in place. */
function canonicalize(header: Pick<NpyHeader, 'dtype' | 'byteOrder'>, bytes: Uint8Array): void {
  if (header.byteOrder === '>') byteSwap(bytes, DTYPE_BYTES[header.dtype]);
  if (header.dtype === 'bool') for (let i = 0; i < bytes.length; i++) if (bytes[i] !== 0) bytes[i] = 1;
}

function checkDataLength(header: NpyHeader, available: number, name: string): number {
  const nbytes = header.count * DTYPE_BYTES[header.dtype];
  if (available < nbytes) {
    throw formatError(
      name,
      `truncated data: shape (${header.shape.join(', ')}) ${header.dtype} needs ${nbytes} bytes after the header, the file has ${available}`,
    );
  }
  return nbytes;
}

/** Decodes a whole `.npy` held in memory. The result owns a fresh, aligned copy of the data. */
export function parseNpy(buf: Uint8Array, name = '<buffer>'): NpyArray {
  const header = parseNpyHeader(buf, name);
  const nbytes = checkDataLength(header, buf.length - header.dataOffset, name);
  const out = new ArrayBuffer(nbytes);
  const bytes = new Uint8Array(out);
  bytes.set(buf.subarray(header.dataOffset, header.dataOffset + nbytes));
  canonicalize(header, bytes);
  return { dtype: header.dtype, shape: header.shape, data: typedArrayFor(header.dtype, out, 0, header.count) };
}

async function readHeaderFrom(fh: FileHandle, path: string): Promise<NpyHeader> {
  const pre = new Uint8Array(PREAMBLE_MAX);
  const got = await readFully(fh, pre, 0);
  const { headerLength, dictOffset } = readPreamble(pre.subarray(0, got), path);
  if (headerLength > MAX_HEADER_BYTES) throw formatError(path, `header length ${headerLength} exceeds ${MAX_HEADER_BYTES} bytes`);
  const head = new Uint8Array(dictOffset + headerLength);
  const n = await readFully(fh, head, 0);
  return parseNpyHeader(head.subarray(0, n), path);
}

/**
 * A `.npy` file opened for random access by rows (the first dimension), so large arrays can be consumed in
 * batches with bounded memory.
 */
export class NpyFileReader {
  private constructor(
    readonly path: string,
    readonly header: NpyHeader,
    private fh: FileHandle | undefined,
    /** Elements per row: the product of shape[1:]. */
    readonly rowSize: number,
  ) {}

  static async open(path: string): Promise<NpyFileReader> {
    let fh: FileHandle | undefined;
    try {
      fh = await open(path, 'r');
      const header = await readHeaderFrom(fh, path);
      const { size } = await fh.stat();
      checkDataLength(header, size - header.dataOffset, path);
      const rowSize = header.shape.slice(1).reduce((a, b) => a * b, 1);
      return new NpyFileReader(path, header, fh, rowSize);
    } catch (err) {
      await fh?.close().catch(() => undefined);
      throw ioError(path, err, 'read');
    }
  }

  get dtype(): DType {
    return this.header.dtype;
  }
  get shape(): number[] {
    return this.header.shape;
  }
  /** shape[0] (1 for a 0-d array). */
  get rows(): number {
    return this.header.shape.length === 0 ? 1 : this.header.shape[0]!;
  }

  /** Rows `[start, end)` as a fresh typed array (`(end - start) * rowSize` elements). */
  async readRows(start: number, end: number): Promise<TypedArray> {
    if (!Number.isSafeInteger(start) || start < 0 || start > this.rows) throw invalidArg('start', `an integer in [0, ${this.rows}]`, start);
    if (!Number.isSafeInteger(end) || end < start || end > this.rows) throw invalidArg('end', `an integer in [${start}, ${this.rows}]`, end);
    if (this.fh === undefined) throw ioFailure(this.path, `${this.path}: reader is closed`);
    const width = DTYPE_BYTES[this.header.dtype];
    const count = (end - start) * this.rowSize;
    const out = new ArrayBuffer(count * width);
    const bytes = new Uint8Array(out);
    let got: number;
    try {
      got = await readFully(this.fh, bytes, this.header.dataOffset + start * this.rowSize * width);
    } catch (err) {
      throw ioError(this.path, err, 'read');
    }
    if (got !== bytes.length) throw formatError(this.path, 'truncated data (the file shrank while being read)');
    canonicalize(this.header, bytes);
    return typedArrayFor(this.header.dtype, out, 0, count);
  }

  async readAll(): Promise<NpyArray> {
    // A 0-d array reads as one row of one element.
    return { dtype: this.header.dtype, shape: [...this.header.shape], data: await this.readRows(0, this.rows) };
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Reads a whole `.npy` file. Memory: the data once (it is read straight into its typed array). */
export async function readNpyFile(path: string): Promise<NpyArray> {
  const reader = await NpyFileReader.open(path);
  try {
    return await reader.readAll();
  } finally {
    await reader.close();
  }
}
