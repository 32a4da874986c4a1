/**
 * `readTorchFile`: the safe, lazy reader of `torch.save` files.
 *
 * Zip format (PyTorch ≥ 1.6): `<archive>/data.pkl` is unpickled by the restricted VM; each persistent
 * id ('storage', torch.XStorage, key, location, numel) becomes a TorchStorage over the stored entry
 * `<archive>/data/<key>`; `_rebuild_tensor_v2` & co. become TensorRefs validated against that entry.
 * Legacy format (PyTorch < 1.6): four pickles (magic number, protocol, sys info, object) then the storage
 * keys and each storage's bytes, prefixed by its element count; offsets are found by hopping over the
 * counts, so the data is still read lazily. Tensor bytes are read only by `TensorRef.read()`.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { TorchSslError } from '../errors.js';
import { ioFailure, readBytes } from '../io.js';
import { DTYPE_BYTES, type DType } from '../dtype.js';
import { formatError } from './errors.js';
import { PyGlobal, PyObject, getPyState, isTuple, type PyDict, type PyValue } from './pyvalue.js';
import { STORAGE_DTYPES, TensorRef, TorchStorage, type ByteSource } from './tensor-ref.js';
import { PickleTruncatedError, describe, unpickle, type PyCallable } from './unpickle.js';
import { ZipReader, type ZipEntry } from './zip.js';

export { TensorRef, TorchStorage } from './tensor-ref.js';

export interface TorchFile {
  readonly path: string;
  readonly format: 'zip' | 'legacy';
  /** The zip's top folder (`archive`, or the saved file's stem); null for legacy files. */
  readonly archiveName: string | null;
  /** The `<archive>/version` record (3 for PyTorch ≥ 1.6 files), or the legacy protocol version (1001). */
  readonly version: number | null;
  /** The unpickled object: a Map for a dict, with TensorRefs where tensors were. */
  readonly root: PyValue;
  readonly storages: ReadonlyMap<string, TorchStorage>;
  /** Releases the file descriptor; TensorRef.read() fails with ERR_IO afterwards. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Upper bound on a data.pkl / legacy object pickle (the pickle holds metadata, never tensor bytes). */
const MAX_PICKLE_BYTES = 1 << 30;
const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;

const TORCH_DTYPES: Readonly<Record<string, DType>> = {
  'torch.float16': 'float16',
  'torch.half': 'float16',
  'torch.bfloat16': 'bfloat16',
  'torch.float32': 'float32',
  'torch.float': 'float32',
  'torch.float64': 'float64',
  'torch.double': 'float64',
  'torch.int8': 'int8',
  'torch.int16': 'int16',
  'torch.short': 'int16',
  'torch.int32': 'int32',
  'torch.int': 'int32',
  'torch.int64': 'int64',
  'torch.long': 'int64',
  'torch.uint8': 'uint8',
  'torch.bool': 'bool',
};

/**
 * Opens any `torch.save` file without executing anything in it. Throws ERR_IO when the file cannot be
 * opened, ERR_CHECKPOINT_FORMAT (naming the file and the fault) when it is not a readable torch file.
 */
export async function readTorchFile(path: string): Promise<TorchFile> {
  if (typeof path !== 'string' || path.length === 0) {
    throw new TorchSslError('ERR_INVALID_ARG', `Expected a file path for path but received ${String(path)} of type ${typeof path}`);
  }
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    throw ioFailure(path, `${path}: cannot open (${(err as Error).message})`, { cause: err });
  }
  let head: Uint8Array;
  let size: number;
  try {
    size = (await fh.stat()).size;
    head = new Uint8Array(Math.min(size, 512));
    await fh.read(head, 0, head.length, 0);
  } catch (err) {
    await fh.close().catch(() => undefined);
    throw ioFailure(path, `${path}: cannot read (${(err as Error).message})`, { cause: err });
  }
  if (ZipReader.looksLikeZip(head)) {
    await fh.close();
    return readZipTorchFile(path);
  }
  try {
    if (size === 0) throw formatError(path, 'empty file');
    if (head.length >= 262 && latin1(head.subarray(257, 262)) === 'ustar') {
      throw formatError(path, 'a tar-format torch.save file (PyTorch < 0.4); this format is not supported, re-save it with a newer PyTorch');
    }
    if (head[0] === 0x80) return await readLegacyTorchFile(path, fh, size);
    throw formatError(path, 'not a PyTorch file: neither a zip archive (torch.save ≥ 1.6) nor a legacy pickle stream');
  } catch (err) {
    await fh.close().catch(() => undefined);
    throw err;
  }
}

function latin1(b: Uint8Array): string {
  return String.fromCharCode(...b);
}

/** The tensor rebuild functions PyTorch pickles, bound to a storage resolver. */
function tensorCallables(path: string): Map<string, PyCallable> {
  let count = 0;
  const where = (storage: PyValue): string => `${path}: tensor #${count} (storage ${storage instanceof TorchStorage ? storage.key : '?'})`;
  const shapeOf = (v: PyValue | undefined, what: string, w: string): number[] => {
    if (!Array.isArray(v)) throw formatError(w, `${what} is a ${describe(v)}, expected a tuple of ints`);
    return v.map((x) => {
      if (typeof x !== 'number') throw formatError(w, `${what} holds a ${describe(x)}${typeof x === 'bigint' ? ` (${x})` : ''}, expected an int`);
      return x;
    });
  };
  const rebuild = (args: PyValue[], dtypeOverride?: DType): TensorRef => {
    count++;
    const [storage, offset, size, stride, requiresGrad] = args;
    const w = where(storage ?? null);
    if (!(storage instanceof TorchStorage)) throw formatError(w, `tensor storage is a ${describe(storage)}`);
    if (typeof offset !== 'number') throw formatError(w, `storage offset is a ${describe(offset)}`);
    let st = storage;
    if (dtypeOverride !== undefined && dtypeOverride !== storage.dtype) {
      const numel = Math.floor((storage.numel * DTYPE_BYTES[storage.dtype]) / DTYPE_BYTES[dtypeOverride]);
      st = new TorchStorage(storage.key, dtypeOverride, storage.location, numel, storage.source, 0);
    }
    return TensorRef.create(st, offset, shapeOf(size, 'size', w), shapeOf(stride, 'stride', w), requiresGrad === true, w);
  };
  const parameter = (args: PyValue[]): PyValue => {
    const [data, requiresGrad] = args;
    if (!(data instanceof TensorRef)) throw formatError(path, `Parameter data is a ${describe(data)}, expected a tensor`);
    data.isParameter = true;
    data.requiresGrad = requiresGrad !== false;
    return data;
  };
  const table: Map<string, PyCallable> = new Map<string, PyCallable>([
    ['torch._utils._rebuild_tensor', (a) => rebuild(a)],
    ['torch._utils._rebuild_tensor_v2', (a) => rebuild(a)],
    [
      'torch._utils._rebuild_tensor_v3',
      (a) => {
        const dt = a[6] instanceof PyGlobal ? TORCH_DTYPES[a[6].$global] : undefined;
        if (dt === undefined) throw formatError(path, `_rebuild_tensor_v3 with unsupported dtype ${describe(a[6])}`);
        return rebuild(a, dt);
      },
    ],
    ['torch._utils._rebuild_parameter', parameter],
    ['torch._utils._rebuild_parameter_with_state', parameter],
    [
      // Tensor subclasses: rebuild with the inner function, keep it a plain tensor.
      'torch._tensor._rebuild_from_type_v2',
      (a) => {
        const [fn, , args] = a;
        if (fn instanceof PyGlobal && Array.isArray(args)) {
          const inner = fn.$global === 'torch._tensor._rebuild_from_type_v2' ? undefined : table.get(fn.$global);
          if (inner) return inner([...args], null);
        }
        return new PyObject('torch._tensor._rebuild_from_type_v2', a);
      },
    ],
  ]);
  return table;
}

/** Parses a persistent id ('storage', torch.XStorage, key, location, numel[, view_metadata]). */
function parseStoragePid(pid: PyValue, where: string): { dtype: DType; key: string; location: string; numel: number; view: PyValue } {
  if (!Array.isArray(pid) || pid.length < 5 || pid[0] !== 'storage') {
    throw formatError(
      where,
      `unsupported persistent id (${describe(pid)}${Array.isArray(pid) ? ` starting ${describe(pid[0])}` : ''}); only storages are allowed`,
    );
  }
  const [, type, key, location, numel, view] = pid;
  const typeName = type instanceof PyGlobal ? type.$global : describe(type);
  const dtype = type instanceof PyGlobal && type.module === 'torch' ? (type.name === 'UntypedStorage' ? 'uint8' : STORAGE_DTYPES[type.name]) : undefined;
  if (dtype === undefined) throw formatError(where, `storage type ${typeName} is not supported`);
  if (typeof key !== 'string' && typeof key !== 'number') throw formatError(where, `storage key is a ${describe(key)}`);
  if (typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0)
    throw formatError(where, `storage ${String(key)} has an invalid size ${String(numel)}`);
  return { dtype, key: String(key), location: typeof location === 'string' ? location : 'cpu', numel, view: view ?? null };
}

async function readZipTorchFile(path: string): Promise<TorchFile> {
  const zip = await ZipReader.open(path);
  try {
    const names = [...zip.entries.keys()];
    if (names.some((n) => /^([^/]+\/)?constants\.pkl$/.test(n) || /^([^/]+\/)?code\//.test(n))) {
      throw formatError(path, 'a TorchScript archive (torch.jit.save), not a torch.save file; load it with torch.jit.load');
    }
    const pkls = names.filter((n) => /^[^/]+\/data\.pkl$/.test(n) || n === 'data.pkl');
    if (pkls.length === 0) {
      throw formatError(
        path,
        `a zip archive without <archive>/data.pkl, not a torch.save file (entries: ${names.slice(0, 5).join(', ')}${names.length > 5 ? ', …' : ''})`,
      );
    }
    if (pkls.length > 1) throw formatError(path, `several data.pkl records (${pkls.join(', ')})`);
    const pklName = pkls[0]!;
    const prefix = pklName.slice(0, pklName.length - 'data.pkl'.length);
    const archiveName = prefix === '' ? '' : prefix.slice(0, -1);
    const pklEntry = zip.entries.get(pklName)!;
    if (pklEntry.uncompressedSize > MAX_PICKLE_BYTES)
      throw formatError(path, `${pklName} is ${pklEntry.uncompressedSize} bytes, above the ${MAX_PICKLE_BYTES}-byte limit`);

    let version: number | null = null;
    const versionEntry = zip.entries.get(`${prefix}version`) ?? zip.entries.get(`${prefix}.data/version`);
    if (versionEntry && versionEntry.uncompressedSize <= 64) {
      const text = new TextDecoder().decode(await zip.read(versionEntry)).trim();
      version = /^\d+$/.test(text) ? Number(text) : null;
    }
    const byteorder = zip.entries.get(`${prefix}byteorder`);
    if (byteorder && byteorder.uncompressedSize <= 16) {
      const order = new TextDecoder().decode(await zip.read(byteorder)).trim();
      if (order !== 'little') throw formatError(path, `storages are ${order}-endian; only little-endian files are supported`);
    }

    const pickle = await zip.read(pklEntry);
    const storages = new Map<string, TorchStorage>();
    const source = `${path}: ${pklName}`;
    const persistentLoad = (pid: PyValue): PyValue => {
      const p = parseStoragePid(pid, source);
      const known = storages.get(p.key);
      if (known) return known;
      const entry = zip.entries.get(`${prefix}data/${p.key}`);
      if (!entry) throw formatError(path, `storage ${p.key} is referenced but ${prefix}data/${p.key} is missing from the archive`);
      const es = DTYPE_BYTES[p.dtype];
      if (p.numel * es > entry.uncompressedSize) {
        throw formatError(
          path,
          `storage ${p.key} declares ${p.numel} ${p.dtype} elements (${p.numel * es} bytes) but its record holds ${entry.uncompressedSize} bytes`,
        );
      }
      const storage = new TorchStorage(p.key, p.dtype, p.location, p.numel, zipSource(zip, entry));
      storages.set(p.key, storage);
      return storage;
    };
    const { value } = unpickle(pickle, { source, persistentLoad, callables: tensorCallables(path) });
    return makeTorchFile(path, 'zip', archiveName, version, value, storages, () => zip.close());
  } catch (err) {
    await zip.close().catch(() => undefined);
    throw err;
  }
}

function zipSource(zip: ZipReader, entry: ZipEntry): ByteSource {
  return { byteLength: entry.uncompressedSize, read: (offset, length) => zip.readRange(entry, offset, length) };
}

async function readLegacyTorchFile(path: string, fh: FileHandle, size: number): Promise<TorchFile> {
  let closed = false;
  const readAt = async (position: number, length: number): Promise<Uint8Array> => {
    if (closed) throw ioFailure(path, `${path}: the file was closed`);
    if (position < 0 || position + length > size) throw formatError(path, `read of ${length} bytes at ${position} is past the end of the ${size}-byte file`);
    return readBytes(fh, position, length, (at) => formatError(path, `file ended early at byte ${at}`));
  };

  // Storages are declared while the object pickle runs; where their bytes are is learnt afterwards.
  const declared = new Map<string, { dtype: DType; numel: number; dataOffset: number }>();
  const storages = new Map<string, TorchStorage>();
  const source = `${path} (legacy torch.save format)`;
  let parsed: { value: PyValue; keys: PyValue; end: number } | undefined;
  for (let chunk = Math.min(size, 1 << 20); ; chunk = Math.min(size, chunk * 4)) {
    const buf = await readAt(0, chunk);
    declared.clear();
    storages.clear();
    const callables = tensorCallables(path);
    const persistentLoad = (pid: PyValue): PyValue => {
      const p = parseStoragePid(pid, source);
      const root = declared.get(p.key) ?? { dtype: p.dtype, numel: p.numel, dataOffset: -1 };
      declared.set(p.key, root);
      if (root.dtype !== p.dtype) throw formatError(path, `storage ${p.key} is used as both ${root.dtype} and ${p.dtype}`);
      const src: ByteSource = {
        get byteLength() {
          return root.numel * DTYPE_BYTES[root.dtype];
        },
        read: (offset, length) => {
          if (root.dataOffset < 0) throw formatError(path, `storage ${p.key} has no data in the file`);
          if (offset + length > root.numel * DTYPE_BYTES[root.dtype]) throw formatError(path, `read past the end of storage ${p.key}`);
          return readAt(root.dataOffset + offset, length);
        },
      };
      let key = p.key;
      let elementOffset = 0;
      let numel = p.numel;
      if (p.view !== null) {
        const v = p.view;
        if (
          !Array.isArray(v) ||
          v.length !== 3 ||
          typeof v[1] !== 'number' ||
          typeof v[2] !== 'number' ||
          !Number.isSafeInteger(v[1]) ||
          !Number.isSafeInteger(v[2]) ||
          v[1] < 0 ||
          v[2] < 0 ||
          v[1] + v[2] > p.numel
        ) {
          throw formatError(path, `storage view of ${p.key} has invalid metadata`);
        }
        key = String(v[0]);
        elementOffset = v[1];
        numel = v[2];
      }
      const known = storages.get(key);
      if (known) return known;
      const s = new TorchStorage(key, p.dtype, p.location, numel, src, elementOffset);
      storages.set(key, s);
      return s;
    };
    try {
      const magic = unpickle(buf, { source });
      if (magic.value !== LEGACY_MAGIC && !(typeof magic.value === 'bigint' && magic.value === LEGACY_MAGIC)) {
        throw formatError(path, 'a pickle file but not a torch.save file (no PyTorch magic number)');
      }
      const proto = unpickle(buf, { source, offset: magic.end });
      if (proto.value !== LEGACY_PROTOCOL) throw formatError(path, `unsupported legacy protocol version ${String(proto.value)}`);
      const sysInfo = unpickle(buf, { source, offset: proto.end });
      const littleEndian = sysInfo.value instanceof Map ? sysInfo.value.get('little_endian') : undefined;
      if (littleEndian === false) throw formatError(path, 'storages are big-endian; only little-endian files are supported');
      const obj = unpickle(buf, { source, offset: sysInfo.end, persistentLoad, callables });
      const keys = unpickle(buf, { source, offset: obj.end });
      parsed = { value: obj.value, keys: keys.value, end: keys.end };
      break;
    } catch (err) {
      if (err instanceof PickleTruncatedError && chunk < size && chunk < MAX_PICKLE_BYTES) continue;
      throw err;
    }
  }
  const keys = parsed.keys;
  if (!Array.isArray(keys)) throw formatError(path, `storage key list is a ${describe(keys)}`);
  let pos = parsed.end;
  for (const k of keys) {
    const key = String(k);
    const d = declared.get(key);
    if (!d) throw formatError(path, `storage ${key} has data but no tensor uses it`);
    const header = await readAt(pos, 8);
    const count = new DataView(header.buffer).getBigInt64(0, true);
    const es = DTYPE_BYTES[d.dtype];
    if (count < 0n || count > BigInt(size)) throw formatError(path, `storage ${key} has an invalid element count ${count}`);
    const n = Number(count);
    if (n < d.numel) throw formatError(path, `storage ${key} holds ${n} elements, fewer than the ${d.numel} declared`);
    d.dataOffset = pos + 8;
    pos += 8 + n * es;
    if (pos > size) throw formatError(path, `storage ${key} (${n} ${d.dtype} elements) runs past the end of the file; truncated?`);
  }
  for (const [key, d] of declared) if (d.dataOffset < 0) throw formatError(path, `storage ${key} is used but its data is missing`);
  return makeTorchFile(path, 'legacy', null, LEGACY_PROTOCOL, parsed.value, storages, async () => {
    if (!closed) {
      closed = true;
      await fh.close();
    }
  });
}

function makeTorchFile(
  path: string,
  format: 'zip' | 'legacy',
  archiveName: string | null,
  version: number | null,
  root: PyValue,
  storages: Map<string, TorchStorage>,
  close: () => Promise<void>,
): TorchFile {
  return {
    path,
    format,
    archiveName,
    version,
    root,
    storages,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** The string-keyed tensor entries of a dict (a state_dict), in order; null if `v` is not a dict. */
export function tensorMap(v: PyValue | undefined): Map<string, TensorRef> | null {
  let m: PyDict | null = null;
  if (v instanceof Map) m = v;
  else if (v instanceof PyObject && v.dictItems) m = v.dictItems;
  if (!m) return null;
  const out = new Map<string, TensorRef>();
  for (const [k, t] of m) if (typeof k === 'string' && t instanceof TensorRef) out.set(k, t);
  return out;
}

export interface FoundTensor {
  /** Where it sits, e.g. `state_dict["backbone.conv1.weight"]` or `optimizer_states[0]["state"][3]["momentum_buffer"]`. */
  path: string;
  tensor: TensorRef;
}

/**
 * Every tensor reachable from `root`, each once, in pickle order. Iterative with a visited set, so cycles
 * (omegaconf `_parent` links) and 200 000-deep nesting are harmless; paths are built only for hits.
 */
export function findTensors(root: PyValue, limit = Infinity): FoundTensor[] {
  interface Node {
    value: PyValue;
    parent: Node | null;
    step: string;
  }
  const out: FoundTensor[] = [];
  const seen = new Set<object>();
  const stack: Node[] = [{ value: root, parent: null, step: '' }];
  const pathOf = (n: Node): string => {
    const parts: string[] = [];
    for (let c: Node | null = n; c; c = c.parent) parts.push(c.step);
    return parts.reverse().join('');
  };
  const keyStep = (k: PyValue): string =>
    typeof k === 'string' ? `[${JSON.stringify(k)}]` : typeof k === 'number' || typeof k === 'bigint' ? `[${k}]` : `[<${describe(k)}>]`;
  while (stack.length > 0 && out.length < limit) {
    const node = stack.pop()!;
    const v = node.value;
    if (v === null || typeof v !== 'object') continue;
    if (seen.has(v)) continue;
    seen.add(v);
    if (v instanceof TensorRef) {
      out.push({ path: pathOf(node), tensor: v });
      continue;
    }
    const children: Node[] = [];
    if (Array.isArray(v)) v.forEach((c, i) => children.push({ value: c, parent: node, step: `[${i}]` }));
    else if (v instanceof Map) {
      for (const [k, c] of v) children.push({ value: c, parent: node, step: keyStep(k) });
      const st = getPyState(v);
      if (st !== undefined) children.push({ value: st, parent: node, step: '.__dict__' });
    } else if (v instanceof Set) [...v].forEach((c, i) => children.push({ value: c, parent: node, step: `{${i}}` }));
    else if (v instanceof PyObject) {
      v.args.forEach((c, i) => children.push({ value: c, parent: node, step: `.args[${i}]` }));
      if (v.state !== undefined) children.push({ value: v.state, parent: node, step: '.state' });
      v.listItems?.forEach((c, i) => children.push({ value: c, parent: node, step: `[${i}]` }));
      if (v.dictItems) for (const [k, c] of v.dictItems) children.push({ value: c, parent: node, step: keyStep(k) });
    }
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]!);
  }
  return out;
}

export { isTuple };
