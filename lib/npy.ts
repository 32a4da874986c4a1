/**
 * The NumPy `.npy` format (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html),
 * as plain bytes and typed arrays: no native Tensor here, so readers, writers and data sources share it.
 *
 * Layout: magic `\x93NUMPY`, major, minor, a little-endian header length (uint16 in v1, uint32 in v2/v3),
 * then a Python dict literal `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }` padded with
 * spaces and a final newline so that the data starts on a 64-byte boundary, then the raw C-order data.
 * v1/v2 headers are latin-1, v3 headers UTF-8.
 */
import { constants as fsConstants } from 'node:fs';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { DTYPE_BYTES, type DType, type TypedArray, typedArrayFor } from './dtype.js';
import { invalidArg, TorchSslError } from './errors.js';
import { ioError, readFully, tempPathFor } from './io.js';

export interface NpyArray {
  dtype: DType;
  shape: number[];
  /** C-order elements; float16 as raw bits in a Uint16Array, bool as 0/1 in a Uint8Array. */
  data: TypedArray;
}

export interface NpyHeader {
  dtype: DType;
  shape: number[];
  /** `'<'` little-endian, `'>'` big-endian (converted on read), `'|'` single-byte. */
  byteOrder: '<' | '>' | '|';
  /** Byte offset of the first element. */
  dataOffset: number;
  /** Number of elements, the product of `shape` (1 for a 0-d array). */
  count: number;
  /** The format version the file declares. */
  version: 1 | 2 | 3;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
/** numpy >= 1.14 aligns the data to 64 bytes so it can be memory-mapped by any SIMD width. */
const ALIGN = 64;
/** The longest prefix needed before the header length is known (magic + version + uint32). */
const PREAMBLE_MAX = 12;
/** numpy refuses headers above this unless told otherwise (`max_header_size`); a bound against hostile files. */
const MAX_HEADER_BYTES = 1 << 20;

/** descr kind+size (without the byte-order char) → dtype. */
const DESCR_TO_DTYPE: Record<string, DType> = {
  f2: 'float16',
  f4: 'float32',
  f8: 'float64',
  i1: 'int8',
  i2: 'int16',
  i4: 'int32',
  i8: 'int64',
  u1: 'uint8',
  b1: 'bool',
};

const DTYPE_TO_DESCR: Partial<Record<DType, string>> = {
  float16: '<f2',
  float32: '<f4',
  float64: '<f8',
  int8: '|i1',
  int16: '<i2',
  int32: '<i4',
  int64: '<i8',
  uint8: '|u1',
  bool: '|b1',
};

const DESCR_KIND_NAMES: Record<string, string> = {
  O: 'object',
  U: 'unicode string',
  S: 'byte string',
  a: 'byte string',
  V: 'void / structured',
  c: 'complex',
  M: 'datetime64',
  m: 'timedelta64',
};

function formatError(name: string, problem: string): TorchSslError {
  return new TorchSslError('ERR_NPY_FORMAT', `${name}: ${problem}`, { file: name });
}

// ---------------------------------------------------------------------------------------------
// Header dict: a small parser for the Python literal subset numpy writes (dict, tuple, list, str,
// int, True/False/None). Never eval'd; anything else is a format error.

type PyValue = string | number | boolean | null | PyValue[] | { tuple: PyValue[] } | Map<string, PyValue>;

class LiteralParser {
  private pos = 0;
  constructor(
    private readonly text: string,
    private readonly name: string,
  ) {}

  parseTop(): PyValue {
    const v = this.value();
    this.skipSpace();
    if (this.pos !== this.text.length) throw this.fail('trailing characters after the header dict');
    return v;
  }

  private fail(what: string): TorchSslError {
    return formatError(this.name, `malformed header (${what} at offset ${this.pos}): ${JSON.stringify(this.text.slice(0, 200))}`);
  }

  private skipSpace(): void {
    while (this.pos < this.text.length && /\s/.test(this.text[this.pos]!)) this.pos++;
  }

  private value(): PyValue {
    this.skipSpace();
    const c = this.text[this.pos];
    if (c === undefined) throw this.fail('unexpected end');
    if (c === '{') return this.dict();
    if (c === '(') return { tuple: this.sequence('(', ')') };
    if (c === '[') return this.sequence('[', ']');
    if (c === "'" || c === '"') return this.string();
    if (/[-0-9]/.test(c)) return this.integer();
    for (const [word, v] of [
      ['True', true],
      ['False', false],
      ['None', null],
    ] as const) {
      if (this.text.startsWith(word, this.pos)) {
        this.pos += word.length;
        return v;
      }
    }
    throw this.fail(`unexpected ${JSON.stringify(c)}`);
  }

  private dict(): Map<string, PyValue> {
    const out = new Map<string, PyValue>();
    this.pos++; // {
    for (;;) {
      this.skipSpace();
      if (this.text[this.pos] === '}') {
        this.pos++;
        return out;
      }
      const key = this.value();
      if (typeof key !== 'string') throw this.fail('non-string dict key');
      this.skipSpace();
      if (this.text[this.pos] !== ':') throw this.fail("expected ':'");
      this.pos++;
      out.set(key, this.value());
      this.skipSpace();
      if (this.text[this.pos] === ',') this.pos++;
      else if (this.text[this.pos] !== '}') throw this.fail("expected ',' or '}'");
    }
  }

  private sequence(open: string, close: string): PyValue[] {
    const out: PyValue[] = [];
    this.pos++; // open
    for (;;) {
      this.skipSpace();
      if (this.text[this.pos] === close) {
        this.pos++;
        return out;
      }
      out.push(this.value());
      this.skipSpace();
      if (this.text[this.pos] === ',') this.pos++;
      else if (this.text[this.pos] !== close) throw this.fail(`expected ',' or '${close}' after ${open}...`);
    }
  }

  private string(): string {
    const quote = this.text[this.pos]!;
    const end = this.text.indexOf(quote, this.pos + 1);
    if (end < 0) throw this.fail('unterminated string');
    const s = this.text.slice(this.pos + 1, end);
    if (s.includes('\\')) throw this.fail('escaped string');
    this.pos = end + 1;
    return s;
  }

  private integer(): number {
    const m = /^-?[0-9]+L?/.exec(this.text.slice(this.pos, this.pos + 32));
    if (m === null) throw this.fail('bad number');
    this.pos += m[0].length;
    // Python 2 longs ("3L") appear in very old files.
    const digits = m[0].endsWith('L') ? m[0].slice(0, -1) : m[0];
    const n = Number(digits);
    if (!Number.isSafeInteger(n)) throw this.fail(`integer ${digits} out of range`);
    return n;
  }
}

function describeDescr(descr: PyValue): string {
  return typeof descr === 'string' ? descr : JSON.stringify(descr, (_k, v: unknown) => (v instanceof Map ? Object.fromEntries(v) : v));
}

function dtypeFromDescr(descr: PyValue, name: string): { dtype: DType; byteOrder: '<' | '>' | '|' } {
  if (typeof descr !== 'string') {
    throw formatError(name, `structured dtype ${describeDescr(descr)} is not supported; save a plain numeric array (e.g. arr['field'])`);
  }
  if (descr === '?') return { dtype: 'bool', byteOrder: '|' };
  const m = /^([<>|=]?)([a-zA-Z])(\d*)$/.exec(descr);
  if (m === null) throw formatError(name, `unsupported dtype descr '${descr}'`);
  const order = m[1] ?? '';
  const kind = m[2]!;
  const size = m[3] ?? '';
  const kindName = DESCR_KIND_NAMES[kind];
  if (kind === 'O') {
    throw formatError(name, `object arrays (descr '${descr}') are not supported: they need Python's pickle; save a numeric array instead`);
  }
  if (kindName !== undefined) throw formatError(name, `${kindName} arrays (descr '${descr}') are not supported; save a numeric array`);
  const dtype = DESCR_TO_DTYPE[`${kind}${size}`];
  if (dtype === undefined) {
    throw formatError(
      name,
      `dtype '${descr}' is not supported (supported: float16/32/64, int8/16/32/64, uint8, bool); convert it first, e.g. arr.astype(np.int64)`,
    );
  }
  // '=' is native order; numpy only writes it on explicit request and every supported host is little-endian.
  const byteOrder: '<' | '>' | '|' = DTYPE_BYTES[dtype] === 1 ? '|' : order === '>' ? '>' : '<';
  return { dtype, byteOrder };
}

/** Validates the header dict and returns dtype, shape and the element count. */
function interpretHeader(dictText: string, name: string): { dtype: DType; byteOrder: '<' | '>' | '|'; shape: number[]; count: number } {
  const dict = new LiteralParser(dictText, name).parseTop();
  if (!(dict instanceof Map)) throw formatError(name, 'header is not a dict');
  for (const key of ['descr', 'fortran_order', 'shape']) {
    if (!dict.has(key)) throw formatError(name, `header lacks the '${key}' key`);
  }
  if (dict.size !== 3) throw formatError(name, `header has unexpected keys: ${[...dict.keys()].join(', ')}`);
  const { dtype, byteOrder } = dtypeFromDescr(dict.get('descr')!, name);
  const fortran = dict.get('fortran_order');
  if (typeof fortran !== 'boolean') throw formatError(name, "header 'fortran_order' is not True/False");
  const shapeValue = dict.get('shape');
  if (shapeValue === null || typeof shapeValue !== 'object' || !('tuple' in shapeValue)) {
    throw formatError(name, "header 'shape' is not a tuple");
  }
  const shape: number[] = [];
  let count = 1;
  for (const d of shapeValue.tuple) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) throw formatError(name, `bad dimension ${String(d)} in shape`);
    shape.push(d);
    count *= d;
    if (!Number.isSafeInteger(count)) throw formatError(name, `shape (${shape.join(', ')}, ...) has too many elements`);
  }
  if (fortran && shape.filter((d) => d > 1).length > 1) {
    // A Fortran-order array with at most one non-trivial dimension has the same bytes as C order.
    throw formatError(name, `Fortran-order arrays are not supported (shape (${shape.join(', ')})); save np.ascontiguousarray(arr)`);
  }
  return { dtype, byteOrder, shape, count };
}

function readPreamble(bytes: Uint8Array, name: string): { version: 1 | 2 | 3; headerLength: number; dictOffset: number } {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw formatError(name, 'not a .npy file (bad magic; expected \\x93NUMPY)');
  }
  const major = bytes[6]!;
  const minor = bytes[7]!;
  if (major < 1 || major > 3 || minor !== 0) throw formatError(name, `unsupported .npy format version ${major}.${minor}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (major === 1) return { version: 1, headerLength: view.getUint16(8, true), dictOffset: 10 };
  if (bytes.length < 12) throw formatError(name, 'truncated header');
  return { version: major as 2 | 3, headerLength: view.getUint32(8, true), dictOffset: 12 };
}

/**
 * Parses the header at the start of `bytes` (which needs to hold at least the whole header; the data is
 * not looked at). Throws `ERR_NPY_FORMAT` naming `name` and the problem.
 */
export function parseNpyHeader(bytes: Uint8Array, name = '<buffer>'): NpyHeader {
  const { version, headerLength, dictOffset } = readPreamble(bytes, name);
  if (headerLength > MAX_HEADER_BYTES) throw formatError(name, `header length ${headerLength} exceeds ${MAX_HEADER_BYTES} bytes`);
  const dataOffset = dictOffset + headerLength;
  if (bytes.length < dataOffset) throw formatError(name, `truncated header (needs ${dataOffset} bytes, has ${bytes.length})`);
  const raw = bytes.subarray(dictOffset, dataOffset);
  const text = new TextDecoder(version === 3 ? 'utf-8' : 'latin1').decode(raw);
  const parsed = interpretHeader(text.trim(), name);
  return { ...parsed, dataOffset, version };
}

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
    if (this.fh === undefined) throw new TorchSslError('ERR_IO', `${this.path}: reader is closed`);
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

// ---------------------------------------------------------------------------------------------
// Writing

function checkWritable(dtype: DType, shape: readonly number[]): { descr: string; count: number } {
  const descr = DTYPE_TO_DESCR[dtype];
  if (descr === undefined) {
    throw invalidArg('dtype', 'a dtype .npy can hold (float16, float32, float64, int8, int16, int32, int64, uint8, bool); convert bfloat16 to float32', dtype);
  }
  if (!Array.isArray(shape)) throw invalidArg('shape', 'an array of non-negative integers', shape);
  let count = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw invalidArg('shape', 'an array of non-negative integers', `[${shape.join(', ')}]`);
    count *= d;
  }
  if (!Number.isSafeInteger(count)) throw invalidArg('shape', 'a shape with at most 2^53 elements', `[${shape.join(', ')}]`);
  return { descr, count };
}

function pythonTuple(shape: readonly number[]): string {
  if (shape.length === 1) return `(${shape[0]},)`;
  return `(${shape.join(', ')})`;
}

/**
 * The header bytes (magic through the newline) for a C-order array, padded so that the data starts on a
 * 64-byte boundary, exactly as numpy's `write_array` lays it out. Version 1 unless the header needs more than
 * 65535 bytes. `minLength` pads further (used to reserve room for a row count patched in later).
 */
export function serializeNpyHeader(dtype: DType, shape: readonly number[], opts: { minLength?: number } = {}): Uint8Array {
  const { descr } = checkWritable(dtype, shape);
  return headerBytes(descr, shape, opts.minLength ?? 0);
}

function headerBytes(descr: string, shape: readonly number[], minLength: number): Uint8Array {
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${pythonTuple(shape)}, }`;
  let version: 1 | 2 = 1;
  let preamble = 10;
  // +1 for the terminating newline.
  let total = Math.max(preamble + dict.length + 1, minLength);
  total = Math.ceil(total / ALIGN) * ALIGN;
  if (total - preamble > 0xffff) {
    version = 2;
    preamble = 12;
    total = Math.ceil(Math.max(preamble + dict.length + 1, minLength) / ALIGN) * ALIGN;
  }
  const out = new Uint8Array(total);
  out.set(MAGIC, 0);
  out[6] = version;
  out[7] = 0;
  const view = new DataView(out.buffer);
  if (version === 1) view.setUint16(8, total - preamble, true);
  else view.setUint32(8, total - preamble, true);
  out.fill(0x20, preamble, total - 1);
  for (let i = 0; i < dict.length; i++) out[preamble + i] = dict.charCodeAt(i);
  out[total - 1] = 0x0a;
  return out;
}

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
  const tmp = tempPathFor(path);
  let fh: FileHandle | undefined;
  try {
    fh = await open(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o644);
    await writeFully(fh, header, 0);
    await writeFully(fh, bytesOf(data), header.length);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await rename(tmp, path);
  } catch (err) {
    await fh?.close().catch(() => undefined);
    await rm(tmp, { force: true }).catch(() => undefined);
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
    const tmp = tempPathFor(path);
    let fh: FileHandle | undefined;
    try {
      fh = await open(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o644);
      await writeFully(fh, serializeNpyHeader(opts.dtype, [0, ...rowShape], { minLength: reserved.length }), 0);
    } catch (err) {
      await fh?.close().catch(() => undefined);
      await rm(tmp, { force: true }).catch(() => undefined);
      throw ioError(path, err, 'write');
    }
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
    if (this.state !== 'open') return Promise.reject(new TorchSslError('ERR_IO', `${this.path}: stream writer is ${this.state}`));
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
      if (this.state !== 'open') throw new TorchSslError('ERR_IO', `${this.path}: stream writer is ${this.state}`);
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
      if (this.state !== 'open') throw new TorchSslError('ERR_IO', `${this.path}: stream writer is ${this.state}`);
      const shape = [this.rowCount, ...this.rowShape];
      try {
        const header = serializeNpyHeader(this.dtype, shape, { minLength: this.headerLength });
        if (header.length !== this.headerLength) throw new Error(`header grew to ${header.length} bytes`);
        await writeFully(this.fh!, header, 0);
        await this.fh!.sync();
        await this.fh!.close();
        this.fh = undefined;
        await rename(this.tmpPath, this.path);
        this.state = 'finalized';
      } catch (err) {
        await this.fail(err);
      }
    }).then(() => [this.rowCount, ...this.rowShape]);
  }

  private async discard(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close().catch(() => undefined);
    await rm(this.tmpPath, { force: true }).catch(() => undefined);
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
