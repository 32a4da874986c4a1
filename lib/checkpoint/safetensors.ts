/**
 * `.safetensors` (huggingface/safetensors format): an 8-byte little-endian header length N, N bytes of
 * JSON `{ name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__"?: { str: str } }` padded with
 * spaces, then the data block; offsets are relative to the data block. Tensors are C-contiguous
 * little-endian. Reading is lazy (TensorRefs over byte ranges) and fully bounds-checked.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { TorchSslError, invalidArg } from '../errors.js';
import { DTYPE_BYTES, type DType } from '../dtype.js';
import { ioFailure, readBytes, writeAll, writeAtomically } from '../io.js';
import { formatError } from './errors.js';
import { TensorRef, TorchStorage } from './tensor-ref.js';
import { isLazyTensor, tensorBytes, toTensorData, isWritableTensor, type WritableTensor } from './tensor-data.js';

const TO_ST: Record<DType, string> = {
  float16: 'F16',
  bfloat16: 'BF16',
  float32: 'F32',
  float64: 'F64',
  int8: 'I8',
  int16: 'I16',
  int32: 'I32',
  int64: 'I64',
  uint8: 'U8',
  bool: 'BOOL',
};
const FROM_ST: Record<string, DType> = Object.fromEntries(Object.entries(TO_ST).map(([k, v]) => [v, k as DType]));
/** The reference implementation refuses headers above 100 MB. */
const MAX_HEADER = 100_000_000;

export interface SafetensorsFile {
  readonly path: string;
  /** Tensors in data order. */
  readonly tensors: ReadonlyMap<string, TensorRef>;
  readonly metadata: Readonly<Record<string, string>> | null;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Writes tensors (Map or record of name → TensorData / TensorRef) and optional string metadata,
 * atomically. Like the reference writer, tensors are laid out by descending element size then name,
 * so every tensor is aligned to its element size.
 */
export async function writeSafetensors(
  path: string,
  tensors: ReadonlyMap<string, WritableTensor> | Readonly<Record<string, WritableTensor>>,
  metadata?: Readonly<Record<string, string>>,
): Promise<void> {
  if (typeof path !== 'string' || path.length === 0) throw invalidArg('path', 'a file path', path);
  const entries: Array<[string, WritableTensor]> =
    tensors instanceof Map ? [...(tensors as ReadonlyMap<string, WritableTensor>).entries()] : Object.entries(tensors as Record<string, WritableTensor>);
  for (const [name, t] of entries) {
    if (name === '__metadata__') throw invalidArg('tensors', 'no tensor named __metadata__', name);
    if (!isWritableTensor(t)) throw invalidArg(`tensors[${JSON.stringify(name)}]`, 'a tensor ({ dtype, shape, data })', t);
    if (!(t instanceof TensorRef) && !isLazyTensor(t)) tensorBytes(t, `tensors[${JSON.stringify(name)}]`);
  }
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) if (typeof v !== 'string') throw invalidArg(`metadata[${JSON.stringify(k)}]`, 'a string', v);
  }
  entries.sort(([an, a], [bn, b]) => DTYPE_BYTES[b.dtype] - DTYPE_BYTES[a.dtype] || (an < bn ? -1 : an > bn ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of entries) {
    const numel = t.shape.reduce((a, b) => a * b, 1);
    const size = numel * DTYPE_BYTES[t.dtype];
    header[name] = { dtype: TO_ST[t.dtype], shape: [...t.shape], data_offsets: [offset, offset + size] };
    offset += size;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  await writeAtomically(path, async (fh) => {
    const len = new Uint8Array(8);
    new DataView(len.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
    await writeAll(fh, len);
    await writeAll(fh, headerBytes);
    for (const [name, t] of entries) await writeAll(fh, tensorBytes(await toTensorData(t), `tensors[${JSON.stringify(name)}]`));
  });
}

/** Opens a .safetensors file lazily; tensor data is read by each TensorRef's `read()`. */
export async function readSafetensors(path: string): Promise<SafetensorsFile> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    throw ioFailure(path, `${path}: cannot open (${(err as Error).message})`, { cause: err });
  }
  let closed = false;
  try {
    const size = (await fh.stat()).size;
    const readAt = async (position: number, length: number): Promise<Uint8Array> => {
      if (closed) throw ioFailure(path, `${path}: the file was closed`);
      return readBytes(fh, position, length, (at) => formatError(path, `file ended early at byte ${at}`));
    };
    if (size < 8) throw formatError(path, 'not a safetensors file (shorter than its 8-byte header length)');
    const n = new DataView((await readAt(0, 8)).buffer).getBigUint64(0, true);
    if (n > BigInt(Math.min(MAX_HEADER, size - 8))) throw formatError(path, `safetensors header length ${n} is larger than the file or the 100 MB limit`);
    const headerLen = Number(n);
    let header: unknown;
    try {
      header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(await readAt(8, headerLen)));
    } catch (err) {
      if (err instanceof TorchSslError) throw err;
      throw formatError(path, `safetensors header is not valid JSON (${(err as Error).message})`);
    }
    if (header === null || typeof header !== 'object' || Array.isArray(header)) throw formatError(path, 'safetensors header is not a JSON object');
    const dup = duplicateTopLevelKey(new TextDecoder('utf-8').decode(await readAt(8, headerLen)));
    if (dup !== undefined) throw formatError(path, `safetensors header names tensor ${JSON.stringify(dup)} twice`);
    const dataStart = 8 + headerLen;
    const dataLen = size - dataStart;
    let metadata: Record<string, string> | null = null;
    const spans: Array<[number, number, string]> = [];
    const tensors = new Map<string, TensorRef>();
    for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
      if (name === '__metadata__') {
        if (info === null || typeof info !== 'object' || Object.values(info).some((v) => typeof v !== 'string')) {
          throw formatError(path, '__metadata__ must map strings to strings');
        }
        metadata = info as Record<string, string>;
        continue;
      }
      const rec = info as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      const dtype = typeof rec?.dtype === 'string' ? FROM_ST[rec.dtype] : undefined;
      if (dtype === undefined) throw formatError(path, `tensor ${name} has unsupported dtype ${JSON.stringify(rec?.dtype)}`);
      const shape = rec.shape;
      const offs = rec.data_offsets;
      if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw formatError(path, `tensor ${name} has an invalid shape`);
      if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((d) => Number.isSafeInteger(d) && d >= 0) || offs[1] < offs[0] || offs[1] > dataLen) {
        throw formatError(path, `tensor ${name} has data_offsets ${JSON.stringify(offs)} outside the ${dataLen}-byte data block`);
      }
      const [begin, end] = offs as [number, number];
      const es = DTYPE_BYTES[dtype];
      const numel = (shape as number[]).reduce((a, b) => a * b, 1);
      if (!Number.isSafeInteger(numel) || numel * es !== end - begin) {
        throw formatError(path, `tensor ${name}: shape [${shape.join(', ')}] of ${dtype} needs ${numel * es} bytes, data_offsets give ${end - begin}`);
      }
      spans.push([begin, end, name]);
      const storage = new TorchStorage(name, dtype, 'cpu', numel, {
        byteLength: end - begin,
        read: (offset, length) => readAt(dataStart + begin + offset, length),
      });
      const stride: number[] = new Array<number>(shape.length);
      for (let d = shape.length - 1, s = 1; d >= 0; d--) {
        stride[d] = s;
        s *= shape[d] as number;
      }
      tensors.set(name, TensorRef.create(storage, 0, shape as number[], stride, false, `${path}: tensor ${name}`));
    }
    // As the reference implementation validates: sorted by offset the tensors tile the data block exactly,
    // with no overlap, no gap and nothing after the last one.
    spans.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let expectedStart = 0;
    for (let i = 0; i < spans.length; i++) {
      const [begin, , name] = spans[i]!;
      if (begin < expectedStart) throw formatError(path, `tensors ${spans[i - 1]![2]} and ${name} overlap`);
      if (begin > expectedStart)
        throw formatError(path, `a gap of ${begin - expectedStart} bytes before tensor ${name} (data_offsets must tile the data block)`);
      expectedStart = spans[i]![1];
    }
    if (expectedStart !== dataLen)
      throw formatError(path, `the tensors cover ${expectedStart} of the ${dataLen}-byte data block (${dataLen - expectedStart} bytes unaccounted for)`);
    const ordered = new Map([...spans].map(([, , name]) => [name, tensors.get(name)!] as const));
    const close = async (): Promise<void> => {
      if (!closed) {
        closed = true;
        await fh.close();
      }
    };
    return { path, tensors: ordered, metadata, close, [Symbol.asyncDispose]: close };
  } catch (err) {
    closed = true;
    await fh.close().catch(() => undefined);
    throw err;
  }
}

/**
 * The first key that appears twice at the top level of a JSON object text (JSON.parse keeps the last
 * silently). A small scanner: strings, escapes and nesting depth; the text is already known to parse.
 */
export function duplicateTopLevelKey(text: string): string | undefined {
  const seen = new Set<string>();
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (depth === 1 && expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (seen.has(key)) return key;
        seen.add(key);
        expectKey = false;
      }
      i = j;
    } else if (ch === '{' || ch === '[') {
      depth++;
      if (depth === 1 && ch === '{') expectKey = true;
    } else if (ch === '}' || ch === ']') {
      depth--;
    } else if (ch === ',' && depth === 1) {
      expectKey = true;
    }
  }
  return undefined;
}
