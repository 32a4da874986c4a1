import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { DType, TypedArray } from '../lib/dtype.js';
import { TorchSslError } from '../lib/errors.js';
import { makeTuple, dictGet } from '../lib/checkpoint/pyvalue.js';
import { readTorchFile, tensorMap, TensorRef } from '../lib/checkpoint/torch-file.js';
import { writeTorchFile } from '../lib/checkpoint/torch-writer.js';
import { readSafetensors, writeSafetensors } from '../lib/checkpoint/safetensors.js';
import type { TensorData } from '../lib/checkpoint/tensor-data.js';
import { ensureCheckpointFixtures, expected, python, sha256 } from './helpers/checkpoint-fixtures.js';
import { fixturePath } from './helpers/fixtures.js';
import { makeTmpDir } from './helpers/tmp.js';

const dir = makeTmpDir('writer');
beforeAll(() => ensureCheckpointFixtures());

/** Deterministic test data (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function make(dtype: DType, shape: number[], seed: number): TensorData {
  const n = shape.reduce((a, b) => a * b, 1);
  const r = prng(seed);
  let data: TypedArray;
  switch (dtype) {
    case 'float32':
      data = Float32Array.from({ length: n }, () => r() * 2 - 1);
      break;
    case 'float64':
      data = Float64Array.from({ length: n }, () => r() * 2 - 1);
      break;
    case 'float16':
    case 'bfloat16':
      // Finite 16-bit patterns: sign, exponent below all-ones, any mantissa.
      data = Uint16Array.from({ length: n }, () => (r() * 0x7b00) | 0 | (r() < 0.5 ? 0x8000 : 0));
      break;
    case 'int8':
      data = Int8Array.from({ length: n }, () => Math.floor(r() * 256) - 128);
      break;
    case 'int16':
      data = Int16Array.from({ length: n }, () => Math.floor(r() * 65536) - 32768);
      break;
    case 'int32':
      data = Int32Array.from({ length: n }, () => Math.floor(r() * 2 ** 32) - 2 ** 31);
      break;
    case 'int64':
      data = BigInt64Array.from({ length: n }, () => BigInt(Math.floor(r() * 2 ** 53)) * (r() < 0.5 ? -1n : 1n) * 1024n);
      break;
    case 'uint8':
      data = Uint8Array.from({ length: n }, () => Math.floor(r() * 256));
      break;
    case 'bool':
      data = Uint8Array.from({ length: n }, () => (r() < 0.5 ? 1 : 0));
      break;
  }
  return { dtype, shape, data };
}

/** What PyTorch sees: dtype, shape and sha256 of each tensor's contiguous bytes, plus a JSON view of the rest. */
function torchLoad(path: string, weightsOnly: boolean): Record<string, unknown> {
  const code = `
import sys, json, hashlib, collections, struct, torch
obj = torch.load(sys.argv[1], weights_only=${weightsOnly ? 'True' : 'False'})
names = {torch.float16:'float16', torch.bfloat16:'bfloat16', torch.float32:'float32', torch.float64:'float64', torch.int8:'int8',
         torch.int16:'int16', torch.int32:'int32', torch.int64:'int64', torch.uint8:'uint8', torch.bool:'bool'}
def conv(v):
    if isinstance(v, torch.Tensor):
        t = v.contiguous()
        if t.dtype in (torch.float16, torch.bfloat16): t = t.view(torch.int16)
        return {'$tensor': names[v.dtype], 'shape': list(v.shape), 'sha256': hashlib.sha256(t.numpy().tobytes()).hexdigest(),
                'shares': None}
    if isinstance(v, collections.OrderedDict): return {'$ordered': {str(k): conv(x) for k, x in v.items()}}
    if isinstance(v, dict): return {'$dict': {str(k): conv(x) for k, x in v.items()}}
    if isinstance(v, tuple): return {'$tuple': [conv(x) for x in v]}
    if isinstance(v, list): return [conv(x) for x in v]
    if isinstance(v, float): return {'$float': struct.pack('>d', v).hex()}
    return v
out = conv(obj)
if isinstance(obj, dict) and 'state_dict' in obj and 'a' in obj['state_dict'] and 'a_again' in obj['state_dict']:
    out['same_storage'] = obj['state_dict']['a'].data_ptr() == obj['state_dict']['a_again'].data_ptr()
print(json.dumps(out))
`;
  return JSON.parse(execFileSync(python, ['-c', code, path], { encoding: 'utf8', maxBuffer: 64 << 20 })) as Record<string, unknown>;
}

const DTYPES: DType[] = ['float16', 'bfloat16', 'float32', 'float64', 'int8', 'int16', 'int32', 'int64', 'uint8', 'bool'];

describe('writeTorchFile', () => {
  it('writes every dtype so that torch.load(weights_only=True) reads the same bytes, shapes and structure', () =>
    (async () => {
      const sd = new Map<string, TensorData>();
      DTYPES.forEach((d, i) => sd.set(d, make(d, [3, 4, 5].slice(0, 1 + (i % 3)), i + 1)));
      sd.set('scalar', make('float32', [], 99));
      sd.set('empty', make('float32', [0, 3], 98));
      const a = make('float32', [2, 3], 97);
      sd.set('a', a);
      sd.set('a_again', a);
      const path = join(dir, 'all-dtypes.pth');
      await writeTorchFile(path, {
        state_dict: sd,
        epoch: 41,
        big: 2n ** 70n,
        negative: -123456789012,
        name: 'résumé ✓',
        flags: [true, false, null],
        shape: makeTuple([1, 2, 3]),
      });
      const got = torchLoad(path, true) as { $dict: Record<string, unknown>; same_storage: boolean };
      const top = got.$dict;
      expect(top.epoch).toBe(41);
      expect(top.big).toBe(Number(2n ** 70n)); // JSON turns Python's exact int into a double
      expect(top.negative).toBe(-123456789012);
      expect(top.name).toBe('résumé ✓');
      expect(top.flags).toEqual([true, false, null]);
      expect(top.shape).toEqual({ $tuple: [1, 2, 3] });
      const tensors = (top.state_dict as { $ordered: Record<string, { $tensor: string; shape: number[]; sha256: string }> }).$ordered;
      expect(Object.keys(tensors)).toEqual([...sd.keys()]);
      for (const [k, t] of sd) expect({ k, ...tensors[k] }).toEqual({ k, $tensor: t.dtype, shape: t.shape, sha256: sha256(t.data), shares: null });
      expect(got.same_storage).toBe(true);
    })());

  it('writes float metadata PyTorch reads back exactly', async () => {
    const path = join(dir, 'floats.pth');
    await writeTorchFile(path, { lr: 0.3, tiny: 1e-300, inf: Infinity, neg: -2.5 });
    const torch2 = execFileSync(python, ['-c', 'import torch; print(int(torch.__version__.split(".")[0]) >= 2)'], { encoding: 'utf8' }).trim() === 'True';
    // PyTorch 1.13's weights-only unpickler lacks BINFLOAT; 2.x has it.
    const got = torchLoad(path, torch2) as { $dict: Record<string, { $float: string }> };
    const hex = (x: number): string => {
      const b = new DataView(new ArrayBuffer(8));
      b.setFloat64(0, x, false);
      return Buffer.from(b.buffer).toString('hex');
    };
    const want = { lr: 0.3, tiny: 1e-300, inf: Infinity, neg: -2.5 };
    expect(Object.fromEntries(Object.entries(got.$dict).map(([k, v]) => [k, v.$float]))).toEqual(
      Object.fromEntries(Object.entries(want).map(([k, v]) => [k, hex(v)])),
    );
  });

  it('aligns every stored record to 64 bytes as PyTorch does, under an archive/ folder with version 3', async () => {
    const path = join(dir, 'aligned.pth');
    await writeTorchFile(
      path,
      new Map([
        ['w', make('float32', [7], 1)],
        ['b', make('int8', [3], 2)],
      ]),
    );
    const code = `
import sys, zipfile, json
z = zipfile.ZipFile(sys.argv[1])
out = {}
for i in z.infolist():
    out[i.filename] = {'stored': i.compress_type == 0, 'data_offset': i.header_offset + 30 + len(i.filename) + len(i.extra) if False else None}
    with open(sys.argv[1], 'rb') as f:
        f.seek(i.header_offset + 26)
        n, m = int.from_bytes(f.read(2), 'little'), int.from_bytes(f.read(2), 'little')
    out[i.filename]['data_offset'] = i.header_offset + 30 + n + m
out['version'] = z.read('archive/version').decode()
print(json.dumps(out))`;
    const info = JSON.parse(execFileSync(python, ['-c', code, path], { encoding: 'utf8' })) as Record<string, { stored: boolean; data_offset: number }> & {
      version: string;
    };
    expect(info.version).toBe('3\n');
    expect(Object.keys(info)).toEqual(expect.arrayContaining(['archive/data.pkl', 'archive/data/0', 'archive/data/1', 'archive/version']));
    for (const [name, e] of Object.entries(info) as Array<[string, { stored: boolean; data_offset: number }]>) {
      if (name === 'version') continue;
      expect(e.stored, name).toBe(true);
      expect(e.data_offset % 64, name).toBe(0);
    }
  });

  it('re-exports a channels_last solo-learn backbone read lazily, and PyTorch reads it bit-exactly (contiguous)', async () => {
    const f = await readTorchFile(fixturePath('checkpoints', 'vicreg_channels_last', 'vicreg-cifar10-q9w8e7r6-ep=999.ckpt'));
    const sd = tensorMap(dictGet(f.root, 'state_dict'))!;
    const backbone = new Map<string, TensorRef>();
    for (const [k, t] of sd) if (k.startsWith('backbone.')) backbone.set(k.slice('backbone.'.length), t);
    const path = join(dir, 'backbone.pth');
    await writeTorchFile(path, backbone);
    await f.close();
    const got = (torchLoad(path, true) as { $ordered: Record<string, { sha256: string; shape: number[] }> }).$ordered;
    const exp = expected('vicreg_channels_last').tensors;
    expect(Object.keys(got).length).toBe(backbone.size);
    for (const k of backbone.keys()) expect({ k, sha: got[k]!.sha256 }).toEqual({ k, sha: exp[`backbone.${k}`]!.sha256 });
  });

  it('round-trips through readTorchFile', async () => {
    const path = join(dir, 'roundtrip.pth');
    const w = make('float32', [4, 2], 5);
    await writeTorchFile(path, new Map([['w', w]]));
    const f = await readTorchFile(path);
    expect(Array.from((await tensorMap(f.root)!.get('w')!.read()) as Float32Array)).toEqual(Array.from(w.data as Float32Array));
    await f.close();
  });

  it('leaves no file (and no temporary file) when a value is invalid, and keeps an existing file intact', async () => {
    const path = join(dir, 'atomic.pth');
    writeFileSync(path, 'previous');
    const before = readdirSync(dir).length;
    const bad = { dtype: 'float32' as const, shape: [3], data: new Float32Array(2) };
    await expect(
      writeTorchFile(
        path,
        new Map([
          ['ok', make('float32', [2], 1)],
          ['bad', bad],
        ]),
      ),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
    await expect(writeTorchFile(join(dir, 'fresh.pth'), { x: new Float32Array(3) as never })).rejects.toBeInstanceOf(TorchSslError);
    expect(readFileSync(path, 'utf8')).toBe('previous');
    expect(existsSync(join(dir, 'fresh.pth'))).toBe(false);
    expect(readdirSync(dir).length).toBe(before);
  });

  it('leaves no file when reading a source tensor fails midway (closed source file)', async () => {
    const f = await readTorchFile(fixturePath('checkpoints', 'dtypes', 'dtypes.pt'));
    const t = tensorMap(f.root)!.get('float32')!;
    await f.close();
    const path = join(dir, 'midway.pth');
    const before = readdirSync(dir).length;
    await expect(writeTorchFile(path, new Map([['t', t]]))).rejects.toMatchObject({ code: 'ERR_IO' });
    expect(existsSync(path)).toBe(false);
    expect(readdirSync(dir).length).toBe(before);
  });
});

describe('safetensors', () => {
  it('writes a file that an independent spec reader (Python) decodes to the same tensors and metadata', async () => {
    const tensors = new Map<string, TensorData>();
    DTYPES.forEach((d, i) => tensors.set(`t.${d}`, make(d, [2, 3].slice(0, 1 + (i % 2)), 10 + i)));
    tensors.set('scalar', make('float64', [], 3));
    const path = join(dir, 'out.safetensors');
    await writeSafetensors(path, tensors, { format: 'pt', epoch: '7' });
    const code = `
import sys, json, struct, hashlib
data = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', data[:8])[0]
h = json.loads(data[8:8+n])
assert (8 + n) % 8 == 0
body = data[8+n:]
out = {'__metadata__': h.pop('__metadata__', None), 'tensors': {}}
for k, v in h.items():
    b, e = v['data_offsets']
    out['tensors'][k] = {'dtype': v['dtype'], 'shape': v['shape'], 'sha256': hashlib.sha256(body[b:e]).hexdigest(), 'aligned': b % {'F64':8,'I64':8,'F32':4,'I32':4,'F16':2,'BF16':2,'I16':2}.get(v['dtype'],1) == 0}
assert sum(v['data_offsets'][1] - v['data_offsets'][0] for v in h.values()) == len(body)
print(json.dumps(out))`;
    const got = JSON.parse(execFileSync(python, ['-c', code, path], { encoding: 'utf8' })) as {
      __metadata__: Record<string, string>;
      tensors: Record<string, { dtype: string; shape: number[]; sha256: string; aligned: boolean }>;
    };
    expect(got.__metadata__).toEqual({ format: 'pt', epoch: '7' });
    const codes: Record<DType, string> = {
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
    for (const [k, t] of tensors) expect({ k, ...got.tensors[k] }).toEqual({ k, dtype: codes[t.dtype], shape: t.shape, sha256: sha256(t.data), aligned: true });
  });

  it('reads a spec-conformant file written by Python, lazily and bit-exactly', async () => {
    const f = await readSafetensors(fixturePath('checkpoints', 'safetensors', 'reference.safetensors'));
    expect(f.metadata).toEqual({ format: 'pt', source: 'fixture' });
    const exp = expected('safetensors').tensors;
    expect([...f.tensors.keys()].sort()).toEqual(Object.keys(exp).sort());
    for (const [k, e] of Object.entries(exp)) {
      const t = f.tensors.get(k)!;
      expect({ k, dtype: t.dtype, shape: t.shape }).toEqual({ k, dtype: e.dtype, shape: e.shape });
      expect(sha256(await t.read()), k).toBe(e.sha256);
    }
    await f.close();
  });

  const craft = (header: unknown, body = new Uint8Array(16), lenOverride?: bigint): Uint8Array => {
    const h = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
    const out = new Uint8Array(8 + h.length + body.length);
    new DataView(out.buffer).setBigUint64(0, lenOverride ?? BigInt(h.length), true);
    out.set(h, 8);
    out.set(body, 8 + h.length);
    return out;
  };
  const bad: Array<[string, Uint8Array, RegExp]> = [
    ['header length past the file', craft({}, undefined, 10n ** 12n), /header length/],
    ['header not JSON', craft('{"a": '), /not valid JSON/],
    ['offsets past the data', craft({ a: { dtype: 'F32', shape: [8], data_offsets: [0, 32] } }), /outside the 16-byte data block/],
    ['size disagreeing with shape', craft({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 16] } }), /needs 12 bytes/],
    [
      'overlapping tensors',
      craft({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }),
      /overlap/,
    ],
    ['unknown dtype', craft({ a: { dtype: 'C64', shape: [1], data_offsets: [0, 8] } }), /unsupported dtype/],
    ['too short', new Uint8Array(3), /shorter than/],
  ];
  for (const [what, bytes, pattern] of bad) {
    it(`refuses a safetensors file with ${what} (ERR_CHECKPOINT_FORMAT)`, async () => {
      const p = join(dir, 'bad.safetensors');
      writeFileSync(p, bytes);
      const err = await readSafetensors(p).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TorchSslError);
      expect((err as TorchSslError).code).toBe('ERR_CHECKPOINT_FORMAT');
      expect((err as Error).message).toMatch(pattern);
    });
  }

  it('writes atomically: an invalid tensor leaves no file', async () => {
    const p = join(dir, 'never.safetensors');
    await expect(writeSafetensors(p, { a: { dtype: 'float32', shape: [4], data: new Float32Array(3) } })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
    expect(existsSync(p)).toBe(false);
  });
});
