/**
 * The `.npy` header (the format is described in lib/npy.ts): reading its preamble, parsing and validating
 * its dict (dtype, order, shape), and laying it out for writing.
 */
import { DTYPE_BYTES, type DType, type TypedArray } from '../dtype.js';
import { invalidArg } from '../errors.js';
import { formatError } from './errors.js';
import { LiteralParser, type LiteralValue } from './literal.js';

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

export const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
/** numpy >= 1.14 aligns the data to 64 bytes so it can be memory-mapped by any SIMD width. */
export const ALIGN = 64;
/** The longest prefix needed before the header length is known (magic + version + uint32). */
export const PREAMBLE_MAX = 12;
/** numpy refuses headers above this unless told otherwise (`max_header_size`); a bound against hostile files. */
export const MAX_HEADER_BYTES = 1 << 20;

/** descr kind+size (without the byte-order char) → dtype. */
export const DESCR_TO_DTYPE: Record<string, DType> = {
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

export const DTYPE_TO_DESCR: Partial<Record<DType, string>> = {
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

export const DESCR_KIND_NAMES: Record<string, string> = {
  O: 'object',
  U: 'unicode string',
  S: 'byte string',
  a: 'byte string',
  V: 'void / structured',
  c: 'complex',
  M: 'datetime64',
  m: 'timedelta64',
};

export function describeDescr(descr: LiteralValue): string {
  return typeof descr === 'string' ? descr : JSON.stringify(descr, (_k, v: unknown) => (v instanceof Map ? Object.fromEntries(v) : v));
}

export function dtypeFromDescr(descr: LiteralValue, name: string): { dtype: DType; byteOrder: '<' | '>' | '|' } {
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
export function interpretHeader(dictText: string, name: string): { dtype: DType; byteOrder: '<' | '>' | '|'; shape: number[]; count: number } {
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

export function readPreamble(bytes: Uint8Array, name: string): { version: 1 | 2 | 3; headerLength: number; dictOffset: number } {
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

// ---------------------------------------------------------------------------------------------
// Writing

export function checkWritable(dtype: DType, shape: readonly number[]): { descr: string; count: number } {
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

export function pythonTuple(shape: readonly number[]): string {
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

export function headerBytes(descr: string, shape: readonly number[], minLength: number): Uint8Array {
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
