/**
 * `writeTorchFile`: writes a zip-format `torch.save` file that PyTorch reads with
 * `torch.load(path, weights_only=True)`.
 *
 * Layout as PyTorch writes it: `archive/data.pkl` (pickle protocol 2; tensors as
 * `torch._utils._rebuild_tensor_v2(persistent storage, offset, size, stride, requires_grad, OrderedDict())`,
 * storages as persistent ids ('storage', torch.XStorage, key, 'cpu', numel)), `archive/byteorder`,
 * `archive/data/<key>` (raw little-endian bytes), `archive/version` = 3; every entry stored and its data
 * 64-byte aligned (padding in an extra field, as PyTorch's writer does). Written atomically.
 *
 * Values: TensorData / TensorRef → tensor · Map → collections.OrderedDict (use it for state dicts) ·
 * plain object → dict · array → list · `makeTuple([...])` → tuple · string → str · boolean → bool ·
 * null → None · integral number or bigint → int · other number → float. Only the opcodes PyTorch's
 * weights-only unpickler knows are emitted (floats need PyTorch ≥ 2.0 there; 1.13 lacks BINFLOAT).
 */
import type { FileHandle } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { TorchSslError, invalidArg } from '../errors.js';
import { DTYPE_BYTES, type DType } from '../dtype.js';
import { writeAll, writeAtomically } from '../io.js';
import { isTuple } from './pyvalue.js';
import { TensorRef } from './tensor-ref.js';
import { isLazyTensor, isWritableTensor, tensorBytes, toTensorData, type WritableTensor } from './tensor-data.js';

export type WritableValue =
  | WritableTensor
  | null
  | boolean
  | number
  | bigint
  | string
  | readonly WritableValue[]
  | ReadonlyMap<string | number | bigint | boolean, WritableValue>
  | { readonly [key: string]: WritableValue };

export interface WriteTorchFileOptions {
  /** The zip's top folder (default 'archive', as torch.save names in-memory buffers). */
  archiveName?: string;
}

const STORAGE_CLASS: Record<DType, string> = {
  float16: 'HalfStorage',
  bfloat16: 'BFloat16Storage',
  float32: 'FloatStorage',
  float64: 'DoubleStorage',
  int8: 'CharStorage',
  int16: 'ShortStorage',
  int32: 'IntStorage',
  int64: 'LongStorage',
  uint8: 'ByteStorage',
  bool: 'BoolStorage',
};
const MAX_DEPTH = 1000;
/** PyTorch aligns record data to 64 bytes so it can be memory-mapped. */
const ALIGNMENT = 64;

/** A growable byte buffer for pickle opcodes. */
class PickleBuffer {
  private buf = new Uint8Array(4096);
  private view = new DataView(this.buf.buffer);
  length = 0;
  private ensure(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  op(...bytes: number[]): void {
    this.ensure(bytes.length);
    for (const b of bytes) this.buf[this.length++] = b;
  }
  raw(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  u16(v: number): void {
    this.ensure(2);
    this.view.setUint16(this.length, v, true);
    this.length += 2;
  }
  u32(v: number): void {
    this.ensure(4);
    this.view.setUint32(this.length, v, true);
    this.length += 4;
  }
  i32(v: number): void {
    this.ensure(4);
    this.view.setInt32(this.length, v, true);
    this.length += 4;
  }
  f64be(v: number): void {
    this.ensure(8);
    this.view.setFloat64(this.length, v, false);
    this.length += 8;
  }
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

const encoder = new TextEncoder();
const OP = {
  MARK: 0x28,
  STOP: 0x2e,
  PROTO: 0x80,
  NONE: 0x4e,
  NEWTRUE: 0x88,
  NEWFALSE: 0x89,
  BININT: 0x4a,
  BININT1: 0x4b,
  BININT2: 0x4d,
  LONG1: 0x8a,
  BINFLOAT: 0x47,
  BINUNICODE: 0x58,
  EMPTY_TUPLE: 0x29,
  TUPLE: 0x74,
  TUPLE1: 0x85,
  TUPLE2: 0x86,
  TUPLE3: 0x87,
  EMPTY_LIST: 0x5d,
  APPENDS: 0x65,
  EMPTY_DICT: 0x7d,
  SETITEMS: 0x75,
  GLOBAL: 0x63,
  REDUCE: 0x52,
  BINPERSID: 0x51,
} as const;

interface StorageRecord {
  key: string;
  dtype: DType;
  numel: number;
  tensor: WritableTensor;
}

class TorchPickler {
  readonly out = new PickleBuffer();
  readonly storages: StorageRecord[] = [];
  private readonly storageOf = new Map<object, StorageRecord>();
  private readonly active = new Set<object>();

  dump(v: WritableValue): Uint8Array {
    this.out.op(OP.PROTO, 2);
    this.value(v, 'obj', 0);
    this.out.op(OP.STOP);
    return this.out.bytes();
  }

  private global(module: string, name: string): void {
    this.out.op(OP.GLOBAL);
    this.out.raw(encoder.encode(`${module}\n${name}\n`));
  }

  private int(v: number | bigint): void {
    const o = this.out;
    if (typeof v === 'number' && v >= 0 && v < 256) o.op(OP.BININT1, v);
    else if (typeof v === 'number' && v >= 0 && v < 65536) {
      o.op(OP.BININT2);
      o.u16(v);
    } else if (typeof v === 'number' && v >= -(2 ** 31) && v < 2 ** 31) {
      o.op(OP.BININT);
      o.i32(v);
    } else {
      // LONG1: minimal little-endian two's complement.
      let b = BigInt(v);
      const bytes: number[] = [];
      for (;;) {
        const byte = Number(b & 0xffn);
        bytes.push(byte);
        b >>= 8n;
        if ((b === 0n && (byte & 0x80) === 0) || (b === -1n && (byte & 0x80) !== 0)) break;
      }
      o.op(OP.LONG1, bytes.length, ...bytes);
    }
  }

  private str(s: string): void {
    const b = encoder.encode(s);
    this.out.op(OP.BINUNICODE);
    this.out.u32(b.length);
    this.out.raw(b);
  }

  private tuple(items: readonly (() => void)[]): void {
    const o = this.out;
    if (items.length === 0) return o.op(OP.EMPTY_TUPLE);
    if (items.length > 3) o.op(OP.MARK);
    for (const emit of items) emit();
    o.op(items.length === 1 ? OP.TUPLE1 : items.length === 2 ? OP.TUPLE2 : items.length === 3 ? OP.TUPLE3 : OP.TUPLE);
  }

  private tensor(t: WritableTensor, name: string): void {
    const identity: object = t instanceof TensorRef || isLazyTensor(t) ? t : t.data;
    let rec = this.storageOf.get(identity);
    let shape: readonly number[];
    if (t instanceof TensorRef || isLazyTensor(t)) shape = t.shape;
    else {
      tensorBytes(t, name);
      shape = t.shape;
    }
    const numel = shape.reduce((a, b) => a * b, 1);
    if (!rec) {
      rec = { key: String(this.storages.length), dtype: t.dtype, numel, tensor: t };
      this.storages.push(rec);
      this.storageOf.set(identity, rec);
    } else if (rec.numel !== numel || rec.dtype !== t.dtype) {
      throw invalidArg(name, 'tensors sharing one data array to have the same dtype and size', `${t.dtype} [${shape.join(', ')}]`);
    }
    const stride: number[] = new Array<number>(shape.length);
    for (let d = shape.length - 1, s = 1; d >= 0; d--) {
      stride[d] = s;
      s *= shape[d]!;
    }
    const r = rec;
    this.global('torch._utils', '_rebuild_tensor_v2');
    this.out.op(OP.MARK);
    this.tuple([
      () => this.str('storage'),
      () => this.global('torch', STORAGE_CLASS[r.dtype]),
      () => this.str(r.key),
      () => this.str('cpu'),
      () => this.int(r.numel),
    ]);
    this.out.op(OP.BINPERSID);
    this.int(0);
    this.tuple(shape.map((n) => () => this.int(n)));
    this.tuple(stride.map((n) => () => this.int(n)));
    this.out.op(OP.NEWFALSE);
    this.global('collections', 'OrderedDict');
    this.out.op(OP.EMPTY_TUPLE, OP.REDUCE);
    this.out.op(OP.TUPLE, OP.REDUCE);
  }

  private key(k: unknown, where: string): void {
    if (typeof k === 'string') this.str(k);
    else if (typeof k === 'number' && Number.isSafeInteger(k)) this.int(k);
    else if (typeof k === 'bigint') this.int(k);
    else if (typeof k === 'boolean') this.out.op(k ? OP.NEWTRUE : OP.NEWFALSE);
    else throw invalidArg(`${where} key`, 'a string, integer or boolean dict key', k);
  }

  private value(v: WritableValue, where: string, depth: number): void {
    const o = this.out;
    if (depth > MAX_DEPTH) throw invalidArg(where, `nesting under ${MAX_DEPTH} levels`, 'a deeper value');
    if (v === null || v === undefined) return o.op(OP.NONE);
    if (typeof v === 'boolean') return o.op(v ? OP.NEWTRUE : OP.NEWFALSE);
    if (typeof v === 'bigint') return this.int(v);
    if (typeof v === 'number') {
      if (Number.isSafeInteger(v) && !Object.is(v, -0)) return this.int(v);
      o.op(OP.BINFLOAT);
      return o.f64be(v);
    }
    if (typeof v === 'string') return this.str(v);
    if (typeof v !== 'object') throw invalidArg(where, 'a tensor, Map, object, array, string, number, boolean or null', v);
    if (isWritableTensor(v)) return this.tensor(v as WritableTensor, where);
    if (this.active.has(v)) throw invalidArg(where, 'an acyclic value', 'a value that contains itself');
    this.active.add(v);
    if (Array.isArray(v)) {
      const items = v as readonly WritableValue[];
      if (isTuple(items)) {
        this.tuple(items.map((it, i) => () => this.value(it, `${where}[${i}]`, depth + 1)));
      } else {
        o.op(OP.EMPTY_LIST);
        for (let i = 0; i < items.length; i += 1000) {
          o.op(OP.MARK);
          for (let j = i; j < Math.min(items.length, i + 1000); j++) this.value(items[j]!, `${where}[${j}]`, depth + 1);
          o.op(OP.APPENDS);
        }
      }
    } else if (v instanceof Map) {
      this.global('collections', 'OrderedDict');
      o.op(OP.EMPTY_TUPLE, OP.REDUCE);
      this.items([...v.entries()], where, depth);
    } else if (ArrayBuffer.isView(v)) {
      throw invalidArg(where, 'a tensor ({ dtype, shape, data }) rather than a bare typed array', v.constructor.name);
    } else if (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null) {
      o.op(OP.EMPTY_DICT);
      this.items(Object.entries(v as Record<string, WritableValue>), where, depth);
    } else {
      throw invalidArg(where, 'a tensor, Map, plain object, array, string, number, boolean or null', v.constructor?.name ?? v);
    }
    this.active.delete(v);
  }

  private items(entries: [unknown, WritableValue][], where: string, depth: number): void {
    for (let i = 0; i < entries.length; i += 1000) {
      this.out.op(OP.MARK);
      for (const [k, val] of entries.slice(i, i + 1000)) {
        this.key(k, where);
        this.value(val, `${where}[${JSON.stringify(String(k))}]`, depth + 1);
      }
      this.out.op(OP.SETITEMS);
    }
  }
}

interface CentralRecord {
  name: Uint8Array;
  crc: number;
  size: number;
  offset: number;
}

const CRC_CHUNK = 1 << 20;

/** CRC-32 of large buffers in 1 MiB slices, yielding between them so a big checkpoint never holds the event loop. */
async function chunkedCrc32(data: Uint8Array): Promise<number> {
  if (data.length <= CRC_CHUNK) return crc32(data) >>> 0;
  let crc = 0;
  for (let off = 0; off < data.length; off += CRC_CHUNK) {
    crc = crc32(data.subarray(off, Math.min(data.length, off + CRC_CHUNK)), crc);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return crc >>> 0;
}

/** Sequential writer of a stored, 64-byte-aligned zip. */
class AlignedZipWriter {
  private offset = 0;
  private readonly records: CentralRecord[] = [];
  constructor(private readonly fh: FileHandle) {}

  async add(name: string, data: Uint8Array): Promise<void> {
    const nameBytes = encoder.encode(name);
    if (this.offset + data.length + 30 + nameBytes.length + 4 + ALIGNMENT >= 0xffffffff) {
      throw new TorchSslError('ERR_INVALID_ARG', `checkpoint larger than 4 GiB (zip64) is not supported by writeTorchFile`);
    }
    const pad = (ALIGNMENT - ((this.offset + 30 + nameBytes.length + 4) % ALIGNMENT)) % ALIGNMENT;
    const header = new Uint8Array(30 + nameBytes.length + 4 + pad);
    const v = new DataView(header.buffer);
    const crc = await chunkedCrc32(data);
    v.setUint32(0, 0x04034b50, true);
    v.setUint16(4, 20, true); // version needed
    v.setUint16(6, 0, true); // flags
    v.setUint16(8, 0, true); // stored
    v.setUint16(10, 0, true); // time 00:00
    v.setUint16(12, 0x21, true); // date 1980-01-01
    v.setUint32(14, crc, true);
    v.setUint32(18, data.length, true);
    v.setUint32(22, data.length, true);
    v.setUint16(26, nameBytes.length, true);
    v.setUint16(28, 4 + pad, true);
    header.set(nameBytes, 30);
    // Padding extra field, id "FB" as PyTorch's writer uses, filled with 'Z'.
    v.setUint16(30 + nameBytes.length, 0x4246, true);
    v.setUint16(32 + nameBytes.length, pad, true);
    header.fill(0x5a, 34 + nameBytes.length);
    await writeAll(this.fh, header);
    await writeAll(this.fh, data);
    this.records.push({ name: nameBytes, crc, size: data.length, offset: this.offset });
    this.offset += header.length + data.length;
  }

  async finish(): Promise<void> {
    const cdStart = this.offset;
    const parts: Uint8Array[] = [];
    for (const r of this.records) {
      const e = new Uint8Array(46 + r.name.length);
      const v = new DataView(e.buffer);
      v.setUint32(0, 0x02014b50, true);
      v.setUint16(4, 20, true); // version made by
      v.setUint16(6, 20, true); // version needed
      v.setUint16(12, 0, true);
      v.setUint16(14, 0x21, true);
      v.setUint32(16, r.crc, true);
      v.setUint32(20, r.size, true);
      v.setUint32(24, r.size, true);
      v.setUint16(28, r.name.length, true);
      v.setUint32(42, r.offset, true);
      e.set(r.name, 46);
      parts.push(e);
    }
    const cdSize = parts.reduce((a, p) => a + p.length, 0);
    const eocd = new Uint8Array(22);
    const v = new DataView(eocd.buffer);
    v.setUint32(0, 0x06054b50, true);
    v.setUint16(8, this.records.length, true);
    v.setUint16(10, this.records.length, true);
    v.setUint32(12, cdSize, true);
    v.setUint32(16, cdStart, true);
    for (const p of parts) await writeAll(this.fh, p);
    await writeAll(this.fh, eocd);
  }
}

/**
 * Writes `obj` as a zip-format torch.save file, atomically (temporary file + rename; on error nothing is
 * left at `path`). Throws ERR_INVALID_ARG for values PyTorch cannot represent, ERR_IO on write failure.
 */
export async function writeTorchFile(path: string, obj: WritableValue, opts: WriteTorchFileOptions = {}): Promise<void> {
  if (typeof path !== 'string' || path.length === 0) throw invalidArg('path', 'a file path', path);
  const archive = opts.archiveName ?? 'archive';
  if (!/^[A-Za-z0-9_.-]+$/.test(archive)) throw invalidArg('archiveName', 'a folder name of letters, digits, _ . -', archive);
  const pickler = new TorchPickler();
  const pkl = pickler.dump(obj);
  await writeAtomically(path, async (fh) => {
    const zip = new AlignedZipWriter(fh);
    await zip.add(`${archive}/data.pkl`, pkl);
    await zip.add(`${archive}/byteorder`, encoder.encode('little'));
    for (const s of pickler.storages) {
      const data = await toTensorData(s.tensor);
      const bytes = tensorBytes(data, `storage ${s.key}`);
      if (bytes.length !== s.numel * DTYPE_BYTES[s.dtype]) throw new TorchSslError('ERR_INVALID_ARG', `storage ${s.key}: size changed while writing`);
      await zip.add(`${archive}/data/${s.key}`, bytes);
    }
    await zip.add(`${archive}/version`, encoder.encode('3\n'));
    await zip.finish();
  });
}
