/** The plain tensor shape the writers accept: a dtype, a shape and C-ordered values. */
import { invalidArg } from '../errors.js';
import { DTYPE_BYTES, type DType, type TypedArray } from '../dtype.js';
import { TensorRef } from './tensor-ref.js';

export interface TensorData {
  dtype: DType;
  shape: readonly number[];
  /** C-contiguous values; float16 / bfloat16 as Uint16Array raw bits, bool as Uint8Array 0/1. */
  data: TypedArray;
}

/** The writers take TensorData or a TensorRef from a file being read (read on demand). */
/**
 * A tensor whose values are produced only when the writer reaches it (e.g. copied out of a native tensor),
 * so a large checkpoint is never materialised in JS memory at once and the event loop is not held.
 */
export interface LazyTensor {
  dtype: DType;
  shape: readonly number[];
  load(): Promise<TypedArray> | TypedArray;
}

export type WritableTensor = TensorData | TensorRef | LazyTensor;

export function isLazyTensor(v: unknown): v is LazyTensor {
  if (v === null || typeof v !== 'object') return false;
  const t = v as Partial<LazyTensor>;
  return typeof t.dtype === 'string' && t.dtype in DTYPE_BYTES && Array.isArray(t.shape) && typeof t.load === 'function';
}

const ARRAY_OK: Record<DType, (a: TypedArray) => boolean> = {
  float16: (a) => a instanceof Uint16Array,
  bfloat16: (a) => a instanceof Uint16Array,
  float32: (a) => a instanceof Float32Array,
  float64: (a) => a instanceof Float64Array,
  int8: (a) => a instanceof Int8Array,
  int16: (a) => a instanceof Int16Array,
  int32: (a) => a instanceof Int32Array,
  int64: (a) => a instanceof BigInt64Array,
  uint8: (a) => a instanceof Uint8Array,
  bool: (a) => a instanceof Uint8Array,
};

export function isTensorData(v: unknown): v is TensorData {
  if (v === null || typeof v !== 'object') return false;
  const t = v as Partial<TensorData>;
  return typeof t.dtype === 'string' && t.dtype in DTYPE_BYTES && Array.isArray(t.shape) && ArrayBuffer.isView(t.data);
}

export function isWritableTensor(v: unknown): v is WritableTensor {
  return v instanceof TensorRef || isTensorData(v) || isLazyTensor(v);
}

/** Checks dtype/array agreement and element count; returns the raw bytes. `name` labels errors. */
export function tensorBytes(t: TensorData, name: string): Uint8Array {
  const check = ARRAY_OK[t.dtype];
  if (!check || !check(t.data)) {
    throw invalidArg(`${name}.data`, `a typed array matching dtype ${t.dtype}`, t.data?.constructor?.name ?? t.data);
  }
  let numel = 1;
  for (const n of t.shape) {
    if (!Number.isSafeInteger(n) || n < 0) throw invalidArg(`${name}.shape`, 'an array of non-negative integers', `[${t.shape.join(', ')}]`);
    numel *= n;
  }
  if (t.data.length !== numel) {
    throw invalidArg(`${name}.data`, `${numel} elements for shape [${t.shape.join(', ')}]`, `${t.data.length} elements`);
  }
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/** Resolves a WritableTensor to TensorData (reading a TensorRef's values). */
export async function toTensorData(t: WritableTensor): Promise<TensorData> {
  if (t instanceof TensorRef) return { dtype: t.dtype, shape: t.shape, data: await t.read() };
  if (isLazyTensor(t)) {
    await new Promise<void>((resolve) => setImmediate(resolve)); // let the event loop run between tensors
    return { dtype: t.dtype, shape: t.shape, data: await t.load() };
  }
  return t;
}
