/**
 * Tensor: a JS handle on a native at::Tensor. Native memory is reported to V8 so the GC feels it, but
 * deterministic release is `dispose()` (or `using`-style `[Symbol.dispose]()`); use after dispose throws
 * ERR_DISPOSED. `Tensor.liveCount()` counts live native handles (for leak tests).
 */
import { DTYPE_BYTES, dtypeOfArray, typedArrayFor, type DType, type TypedArray } from './dtype.js';
import { invalidArg, rethrowWithStack, TorchSslError } from './errors.js';
import { native, type NativeTensor } from './native.js';
import { readNpyFile, writeNpyFile } from './npy.js';

export interface TensorOptions {
  requiresGrad?: boolean;
  /** 'cpu' (default), 'cuda', 'cuda:1', … */
  device?: string;
  /** Element type; by default implied by the typed array (Uint16Array means float16 raw bits). */
  dtype?: DType;
}

const DTYPES = new Set<DType>(['float16', 'bfloat16', 'float32', 'float64', 'int8', 'int16', 'int32', 'int64', 'uint8', 'bool']);

/** Runs a synchronous native call, turning native errors into TorchSslError with the caller's stack. */
export function callNative<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    rethrowWithStack(err, new Error());
  }
}

/** Awaits a native Promise, keeping the JS call site's stack (captured before going async). */
export async function awaitNative<T>(start: () => Promise<T>): Promise<T> {
  const callSite = new Error();
  try {
    return await start();
  } catch (err) {
    rethrowWithStack(err, callSite);
  }
}

export class Tensor {
  /** @internal */
  readonly #handle: NativeTensor;

  /** @internal Use Tensor.from(); this wraps an existing native handle. */
  constructor(handle: NativeTensor) {
    this.#handle = handle;
  }

  /** @internal The native handle (throws ERR_DISPOSED after dispose()). */
  get handle(): NativeTensor {
    if (this.#handle.disposed) throw new TorchSslError('ERR_DISPOSED', 'Tensor was used after dispose()');
    return this.#handle;
  }

  /** Copies `data` into a new tensor of the given shape (C order). */
  static from(data: TypedArray | number[], shape: readonly number[], opts: TensorOptions = {}): Tensor {
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) throw invalidArg('shape', 'an array of non-negative integers', shape);
    if (opts.dtype !== undefined && !DTYPES.has(opts.dtype)) throw invalidArg('dtype', `one of ${[...DTYPES].join(', ')}`, opts.dtype);
    if (opts.requiresGrad !== undefined && typeof opts.requiresGrad !== 'boolean') throw invalidArg('requiresGrad', 'a boolean', opts.requiresGrad);
    if (opts.device !== undefined && typeof opts.device !== 'string') throw invalidArg('device', "a device string such as 'cpu' or 'cuda'", opts.device);
    let array: TypedArray;
    if (Array.isArray(data)) {
      const dt = opts.dtype ?? 'float32';
      if (dt === 'float32') array = Float32Array.from(data);
      else if (dt === 'float64') array = Float64Array.from(data);
      else if (dt === 'int64') array = BigInt64Array.from(data.map((v) => BigInt(Math.trunc(v))));
      else if (dt === 'int32') array = Int32Array.from(data);
      else if (dt === 'uint8' || dt === 'bool') array = Uint8Array.from(data);
      else throw invalidArg('data', `a typed array for dtype ${dt}`, data);
    } else if (ArrayBuffer.isView(data)) {
      array = data;
    } else {
      throw invalidArg('data', 'a TypedArray or an array of numbers', data);
    }
    const dtype = opts.dtype ?? dtypeOfArray(array);
    if (dtype === undefined) throw invalidArg('data', 'a supported TypedArray', data);
    const numel = shape.reduce((a, b) => a * b, 1);
    if (array.byteLength !== numel * DTYPE_BYTES[dtype]) {
      throw new TorchSslError(
        'ERR_TORCH_SHAPE',
        `data has ${array.byteLength / DTYPE_BYTES[dtype]} elements of ${dtype} but shape [${shape.join(', ')}] needs ${numel}`,
      );
    }
    return new Tensor(callNative(() => native().fromBuffer(array, dtype, [...shape], opts.requiresGrad ?? false, opts.device ?? 'cpu')));
  }

  /** A tensor of zeros. */
  static zeros(shape: readonly number[], opts: TensorOptions = {}): Tensor {
    const dtype = opts.dtype ?? 'float32';
    const numel = shape.reduce((a, b) => a * b, 1);
    return Tensor.from(typedArrayFor(dtype, new ArrayBuffer(numel * DTYPE_BYTES[dtype]), 0, numel), shape, { ...opts, dtype });
  }

  /** Number of live native tensor handles in this process (created and neither disposed nor collected). */
  static liveCount(): number {
    return native().NativeTensor.liveCount();
  }

  get shape(): number[] {
    return callNative(() => this.handle.shape);
  }
  get dtype(): DType {
    return this.handle.dtype as DType;
  }
  get device(): string {
    return this.handle.device;
  }
  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
  get disposed(): boolean {
    return this.#handle.disposed;
  }
  get requiresGrad(): boolean {
    return this.handle.requiresGrad;
  }
  set requiresGrad(v: boolean) {
    callNative(() => {
      this.handle.requiresGrad = v;
    });
  }
  /** The accumulated gradient (null when none), as in PyTorch; assignable (null clears it). */
  get grad(): Tensor | null {
    const g = this.handle.grad;
    return g === null ? null : new Tensor(g);
  }
  set grad(g: Tensor | null) {
    callNative(() => {
      this.handle.grad = g === null ? null : g.handle;
    });
  }

  /** A contiguous copy of the elements (float16/bfloat16 come back as Uint16Array raw bits). */
  toTypedArray(): TypedArray {
    const dtype = this.dtype;
    const buf = callNative(() => this.handle.toBuffer());
    return typedArrayFor(dtype, buf, 0, buf.byteLength / DTYPE_BYTES[dtype]);
  }

  /** The value of a one-element tensor. */
  item(): number {
    const v = callNative(() => this.handle.item());
    return typeof v === 'boolean' ? Number(v) : v;
  }

  /** Back-propagates from this tensor (a scalar, or pass `gradient`) on a native thread. */
  backward(gradient?: Tensor): Promise<void> {
    const h = this.handle;
    const g = gradient?.handle;
    return awaitNative(() => h.backward(g));
  }

  detach(): Tensor {
    return new Tensor(callNative(() => this.handle.op('detach')));
  }
  clone(): Tensor {
    return new Tensor(callNative(() => this.handle.op('clone')));
  }
  reshape(shape: readonly number[]): Tensor {
    return new Tensor(callNative(() => this.handle.op('reshape', [...shape])));
  }
  permute(dims: readonly number[]): Tensor {
    return new Tensor(callNative(() => this.handle.op('permute', [...dims])));
  }
  /** Elements [start, start+length) along `dim` (a view). */
  narrow(dim: number, start: number, length: number): Tensor {
    return new Tensor(callNative(() => this.handle.op('narrow', dim, start, length)));
  }
  select(dim: number, index: number): Tensor {
    return new Tensor(callNative(() => this.handle.op('select', dim, index)));
  }
  sum(): Tensor {
    return new Tensor(callNative(() => this.handle.op('sum')));
  }
  mean(): Tensor {
    return new Tensor(callNative(() => this.handle.op('mean')));
  }
  add(other: Tensor | number): Tensor {
    return new Tensor(callNative(() => (typeof other === 'number' ? this.handle.op('addScalar', other) : this.handle.op('add', other.handle))));
  }
  sub(other: Tensor): Tensor {
    return new Tensor(callNative(() => this.handle.op('sub', other.handle)));
  }
  mul(other: Tensor | number): Tensor {
    return new Tensor(callNative(() => (typeof other === 'number' ? this.handle.op('mulScalar', other) : this.handle.op('mul', other.handle))));
  }
  matmul(other: Tensor): Tensor {
    return new Tensor(callNative(() => this.handle.op('matmul', other.handle)));
  }
  /** True when every element is finite. */
  isFinite(): boolean {
    return callNative(() => this.handle.op('isfinite'));
  }
  /** A copy on another device and/or with another dtype. */
  to(target: string | { device?: string; dtype?: DType }): Tensor {
    const device = typeof target === 'string' ? target : target.device;
    const dtype = typeof target === 'string' ? undefined : target.dtype;
    return new Tensor(callNative(() => this.handle.to(device, dtype)));
  }

  /** Releases the native reference now. Idempotent. */
  dispose(): void {
    this.#handle.dispose();
  }
  [Symbol.dispose](): void {
    this.dispose();
  }

  toString(): string {
    return this.disposed ? 'Tensor(disposed)' : `Tensor(shape=[${this.shape.join(', ')}], dtype=${this.dtype}, device=${this.device})`;
  }
}

/** Reads a numpy .npy file (v1–v3, C order) into a CPU tensor. */
export async function readNpy(path: string): Promise<Tensor> {
  const { dtype, shape, data } = await readNpyFile(path);
  return Tensor.from(data, shape, { dtype });
}

/** Writes a tensor as .npy (v1 header, C order), atomically (temp file + rename). */
export async function writeNpy(path: string, t: Tensor): Promise<void> {
  await writeNpyFile(path, { dtype: t.dtype, shape: t.shape, data: t.toTypedArray() });
}
