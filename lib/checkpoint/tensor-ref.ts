/**
 * Lazy tensors of a checkpoint. A TensorRef is the metadata of one pickled tensor (dtype, shape, strides,
 * storage offset) plus a handle on its storage's bytes; nothing is read until `read()`. All geometry is
 * validated against the storage's real byte length when the ref is made, so `read()` cannot reach outside
 * the storage and absurd shapes are refused before any allocation.
 */
import { TorchSslError } from '../errors.js';
import { DTYPE_BYTES, typedArrayFor, type DType, type TypedArray } from '../dtype.js';

/** Largest element count a single tensor read may produce (V8 typed arrays stop near 2^32 bytes anyway). */
const MAX_READ_ELEMENTS = 2 ** 31 - 1;
/** Expanded (stride-0) views may exceed their storage's size only up to this many elements. */
const MAX_EXPANDED_ELEMENTS = 1 << 24;
const MAX_RANK = 64;

/** Where a storage's bytes come from (a zip entry, a byte range of a legacy file, a safetensors block). */
export interface ByteSource {
  readonly byteLength: number;
  /** Reads `length` bytes at `offset` (relative to the storage) into a fresh buffer. */
  read(offset: number, length: number): Promise<Uint8Array>;
}

/** PyTorch's storage class names (torch.FloatStorage …) and the dtype each carries. */
export const STORAGE_DTYPES: Readonly<Record<string, DType>> = {
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  FloatStorage: 'float32',
  DoubleStorage: 'float64',
  CharStorage: 'int8',
  ShortStorage: 'int16',
  IntStorage: 'int32',
  LongStorage: 'int64',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
};

export class TorchStorage {
  constructor(
    /** The record name under `<archive>/data/` (or the legacy root key). */
    readonly key: string,
    readonly dtype: DType,
    /** Where it lived when saved ('cpu', 'cuda:0'); informational. */
    readonly location: string,
    /** Elements actually available (byteLength / element size). */
    readonly numel: number,
    readonly source: ByteSource,
    /** Element offset inside `source` (legacy storage views); 0 otherwise. */
    readonly elementOffset = 0,
  ) {}
}

export class TensorRef {
  readonly numel: number;
  /** Bytes a C-contiguous copy takes. */
  readonly byteLength: number;
  /** True when the pickle rebuilt it as torch.nn.Parameter. */
  isParameter = false;

  private constructor(
    readonly dtype: DType,
    readonly shape: readonly number[],
    readonly stride: readonly number[],
    readonly storageOffset: number,
    readonly storage: TorchStorage,
    public requiresGrad: boolean,
    numel: number,
    private readonly extent: number,
  ) {
    this.numel = numel;
    this.byteLength = numel * DTYPE_BYTES[dtype];
  }

  get storageKey(): string {
    return this.storage.key;
  }

  /** True when the strides are the C-contiguous ones for the shape (size-1 dims ignored). */
  get isContiguous(): boolean {
    let expected = 1;
    for (let d = this.shape.length - 1; d >= 0; d--) {
      const n = this.shape[d]!;
      if (n !== 1 && this.stride[d] !== expected) return false;
      expected *= n;
    }
    return true;
  }

  /**
   * Validates geometry against the storage and makes the ref. `where` names the tensor for messages.
   * Throws ERR_CHECKPOINT_FORMAT for negative or non-integer sizes/strides/offsets, a rank above 64,
   * an element range past the storage's end, or an element count no storage of this file could back.
   */
  static create(
    storage: TorchStorage,
    storageOffset: number,
    shape: readonly number[],
    stride: readonly number[],
    requiresGrad: boolean,
    where: string,
  ): TensorRef {
    const bad = (what: string): TorchSslError => new TorchSslError('ERR_CHECKPOINT_FORMAT', `${where}: ${what}`);
    const isIndex = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
    if (shape.length > MAX_RANK) throw bad(`tensor rank ${shape.length} is above ${MAX_RANK}`);
    if (stride.length !== shape.length) throw bad(`stride has ${stride.length} entries for a ${shape.length}-d shape`);
    if (!isIndex(storageOffset)) throw bad(`storage offset ${String(storageOffset)} is not a non-negative integer`);
    let numel = 1;
    let maxIndex = storageOffset;
    for (let d = 0; d < shape.length; d++) {
      const n = shape[d];
      const s = stride[d];
      if (!isIndex(n)) throw bad(`size [${shape.join(', ')}] has an invalid dimension ${String(n)}`);
      if (!isIndex(s)) throw bad(`stride [${stride.join(', ')}] has an invalid entry ${String(s)}`);
      numel *= n;
      if (n > 0) maxIndex += (n - 1) * s;
    }
    if (numel === 0) return new TensorRef(storage.dtype, [...shape], [...stride], storageOffset, storage, requiresGrad, 0, 0);
    if (!Number.isSafeInteger(numel) || numel > MAX_READ_ELEMENTS) {
      throw bad(`shape [${shape.join(', ')}] has ${numel.toExponential(3)} elements, more than any checkpoint tensor can hold`);
    }
    if (!Number.isSafeInteger(maxIndex) || maxIndex >= storage.numel) {
      throw bad(
        `shape [${shape.join(', ')}] with stride [${stride.join(', ')}] at offset ${storageOffset} reaches element ${maxIndex}, ` +
          `past the end of storage ${storage.key} (${storage.numel} ${storage.dtype} elements)`,
      );
    }
    if (numel > storage.numel && numel > MAX_EXPANDED_ELEMENTS) {
      throw bad(`shape [${shape.join(', ')}] expands storage ${storage.key} of ${storage.numel} elements to ${numel}; refused`);
    }
    return new TensorRef(storage.dtype, [...shape], [...stride], storageOffset, storage, requiresGrad, numel, maxIndex - storageOffset + 1);
  }

  /**
   * The values in storage order, without reordering them, when the tensor is dense — its strides a
   * permutation of C-contiguous ones, as channels_last conv weights are. `data` is C-ordered for
   * `physicalShape`; permuting that by `dims` (result dim i = physical dim dims[i]) gives the tensor.
   * Lets a native engine do the reordering. Null when the tensor is not dense (use read()).
   */
  async readPhysical(): Promise<{ data: TypedArray; physicalShape: number[]; dims: number[] } | null> {
    const rank = this.shape.length;
    const order = Array.from({ length: rank }, (_, d) => d).sort((a, b) => this.stride[b]! - this.stride[a]! || a - b);
    let expected = 1;
    for (let i = rank - 1; i >= 0; i--) {
      const d = order[i]!;
      if (this.shape[d] !== 1 && this.stride[d] !== expected) return null;
      expected *= this.shape[d]!;
    }
    const es = DTYPE_BYTES[this.dtype];
    const start = (this.storage.elementOffset + this.storageOffset) * es;
    const raw = this.numel === 0 ? new Uint8Array(0) : await this.storage.source.read(start, this.numel * es);
    const bytes = raw.byteOffset % 8 === 0 ? raw : raw.slice();
    return {
      data: typedArrayFor(this.dtype, bytes.buffer, bytes.byteOffset, this.numel),
      physicalShape: order.map((d) => this.shape[d]!),
      dims: Array.from({ length: rank }, (_, d) => order.indexOf(d)),
    };
  }

  /** A C-contiguous copy of the values (float16 / bfloat16 as Uint16Array raw bits, bool as Uint8Array). */
  async read(): Promise<TypedArray> {
    const es = DTYPE_BYTES[this.dtype];
    if (this.numel === 0) return typedArrayFor(this.dtype, new ArrayBuffer(0), 0, 0);
    const start = (this.storage.elementOffset + this.storageOffset) * es;
    const raw = await this.storage.source.read(start, this.extent * es);
    const bytes = raw.byteOffset % 8 === 0 ? raw : raw.slice();
    if (this.isContiguous) return typedArrayFor(this.dtype, bytes.buffer, bytes.byteOffset, this.numel);
    return typedArrayFor(this.dtype, gather(bytes, es, this.shape, this.stride, this.numel), 0, this.numel);
  }
}

/** Copies a strided view (relative to element 0 of `src`) into C order, moving elements as raw words. */
function gather(src: Uint8Array, es: number, shape: readonly number[], stride: readonly number[], numel: number): ArrayBuffer {
  const out = new ArrayBuffer(numel * es);
  // 8-byte elements move as two 32-bit words so no float NaN payload is ever canonicalised.
  const words = es === 8 ? 2 : 1;
  const unit = es === 8 ? 4 : es;
  const make = (buf: ArrayBufferLike, off: number, len: number): Uint8Array | Uint16Array | Uint32Array =>
    unit === 1 ? new Uint8Array(buf, off, len) : unit === 2 ? new Uint16Array(buf, off, len) : new Uint32Array(buf, off, len);
  const s = make(src.buffer, src.byteOffset, src.byteLength / unit);
  const d = make(out, 0, numel * words);
  const rank = shape.length;
  const last = rank - 1;
  const innerN = shape[last]!;
  const innerS = stride[last]! * words;
  const counter = new Array<number>(rank).fill(0);
  let base = 0;
  let o = 0;
  const rows = numel / innerN;
  for (let r = 0; r < rows; r++) {
    let j = base;
    if (words === 1) {
      for (let i = 0; i < innerN; i++, j += innerS) d[o++] = s[j]!;
    } else {
      for (let i = 0; i < innerN; i++, j += innerS) {
        d[o++] = s[j]!;
        d[o++] = s[j + 1]!;
      }
    }
    for (let k = last - 1; k >= 0; k--) {
      counter[k]!++;
      base += stride[k]! * words;
      if (counter[k]! < shape[k]!) break;
      base -= counter[k]! * stride[k]! * words;
      counter[k] = 0;
    }
  }
  return out;
}
