// The .npy format layer, checked against numpy 1.24 in both directions: files numpy writes
// (scripts/fixtures/npy.py) are read here, and files written here are read by numpy in a child process.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { type DType, type TypedArray } from '../lib/dtype.js';
import { TorchSslError } from '../lib/errors.js';
import { NpyFileReader, NpyStreamWriter, parseNpy, parseNpyHeader, readNpyFile, serializeNpyHeader, writeNpyFile } from '../lib/npy.js';
import { ensureFixtures, FIXTURES } from './helpers/fixtures.js';
import { PYTHON } from './helpers/python.js';
import { makeTmpDir } from './helpers/tmp.js';

const fixtures = join(FIXTURES, 'npy');

interface Case {
  name: string;
  file: string;
  dtype: DType;
  shape: number[];
  raw: string;
  version: number;
  bigEndian?: boolean;
}

let manifest: { cases: Case[] };
const work = makeTmpDir('npy');

beforeAll(() => {
  ensureFixtures('npy');
  manifest = JSON.parse(readFileSync(join(fixtures, 'manifest.json'), 'utf8')) as { cases: Case[] };
});

function bytes(a: TypedArray): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

function sha(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

async function expectNpyError(p: Promise<unknown> | (() => unknown), code: string, ...fragments: string[]): Promise<void> {
  let err: unknown;
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    err = e;
  }
  expect(err, 'expected an error').toBeInstanceOf(TorchSslError);
  expect((err as TorchSslError).code).toBe(code);
  for (const f of fragments) expect((err as Error).message).toContain(f);
}

/** Deterministic values of each dtype, including the awkward ones (NaN, -0, int64 beyond 2^53). */
function sample(dtype: DType, count: number): TypedArray {
  const seq = (i: number): number => ((i * 2654435761) % 1000) - 500;
  switch (dtype) {
    case 'float16':
      return Uint16Array.from({ length: count }, (_, i) => [0x7e00, 0x7c00, 0x8000, 0x0001, 0x3c00][i % 5]! + (i > 5 ? i : 0));
    case 'float32':
      return Float32Array.from({ length: count }, (_, i) => (i === 0 ? Number.NaN : i === 1 ? -0 : seq(i) / 7));
    case 'float64':
      return Float64Array.from({ length: count }, (_, i) => (i === 0 ? Number.POSITIVE_INFINITY : seq(i) / 3));
    case 'int8':
      return Int8Array.from({ length: count }, (_, i) => (seq(i) % 128) | 0);
    case 'int16':
      return Int16Array.from({ length: count }, (_, i) => seq(i) * 60);
    case 'int32':
      return Int32Array.from({ length: count }, (_, i) => seq(i) * 4_000_000);
    case 'int64':
      return BigInt64Array.from({ length: count }, (_, i) => (BigInt(seq(i)) * 18_000_000_000_000_000n) / 500n + 1n);
    case 'uint8':
      return Uint8Array.from({ length: count }, (_, i) => (i * 37) & 255);
    case 'bool':
      return Uint8Array.from({ length: count }, (_, i) => (i % 3 === 0 ? 1 : 0));
    default:
      throw new Error(dtype);
  }
}

const DTYPES: DType[] = ['float16', 'float32', 'float64', 'int8', 'int16', 'int32', 'int64', 'uint8', 'bool'];
const SHAPES: number[][] = [[2, 3, 4], [], [0], [0, 3], [5, 0, 2], [7], [1, 1, 1, 1]];

describe('reading files numpy wrote', () => {
  it('has a manifest covering every dtype in v1, v2 and v3 headers', () => {
    for (const dt of DTYPES) {
      for (const v of [1, 2, 3]) expect(manifest.cases.some((c) => c.dtype === dt && c.version === v)).toBe(true);
    }
  });

  it('reads every case with numpy’s dtype, shape and exact bytes (parseNpy and readNpyFile)', async () => {
    for (const c of manifest.cases) {
      const path = join(fixtures, c.file);
      const raw = readFileSync(join(fixtures, c.raw));
      const fromBuffer = parseNpy(readFileSync(path), c.file);
      const fromFile = await readNpyFile(path);
      for (const a of [fromBuffer, fromFile]) {
        expect(a.dtype, c.name).toBe(c.dtype);
        expect(a.shape, c.name).toEqual(c.shape);
        expect(a.data.length, c.name).toBe(c.shape.reduce((x, y) => x * y, 1));
        expect(bytes(a.data).equals(raw), c.name).toBe(true);
      }
    }
  });

  it('converts big-endian files to native order', async () => {
    const big = manifest.cases.filter((c) => c.bigEndian);
    expect(big.length).toBe(6);
    const f8 = await readNpyFile(join(fixtures, 'big-float64.npy'));
    expect(Number.isNaN((f8.data as Float64Array)[0])).toBe(true);
    expect((f8.data as Float64Array)[1]).toBe(Number.POSITIVE_INFINITY);
  });

  it('reports the header version and a 64-byte aligned data offset', () => {
    for (const v of [1, 2, 3] as const) {
      const h = parseNpyHeader(readFileSync(join(fixtures, `float32-3d-v${v}.npy`)));
      expect(h.version).toBe(v);
      expect(h.dataOffset % 64).toBe(0);
      expect(h.shape).toEqual([2, 3, 4]);
    }
  });

  it('writes byte-for-byte the file numpy writes (v1, every dtype and shape)', async () => {
    for (const c of manifest.cases.filter((x) => x.version === 1 && !x.bigEndian)) {
      const a = await readNpyFile(join(fixtures, c.file));
      const out = join(work, `same-${c.name}.npy`);
      await writeNpyFile(out, a);
      expect(readFileSync(out).equals(readFileSync(join(fixtures, c.file))), c.name).toBe(true);
    }
  });

  it('reads rows in batches with NpyFileReader', async () => {
    const raw = readFileSync(join(fixtures, 'rows.raw'));
    await using reader = await NpyFileReader.open(join(fixtures, 'rows.npy'));
    expect(reader.shape).toEqual([1000, 17]);
    expect(reader.rowSize).toBe(17);
    const parts: Buffer[] = [];
    for (let s = 0; s < reader.rows; s += 300) parts.push(bytes(await reader.readRows(s, Math.min(s + 300, reader.rows))));
    expect(Buffer.concat(parts).equals(raw)).toBe(true);
    expect((await reader.readRows(10, 10)).length).toBe(0);
    await expectNpyError(reader.readRows(999, 1001), 'ERR_INVALID_ARG', 'end');
  });

  it.each([
    ['fortran', 'Fortran-order'],
    ['object', 'object arrays'],
    ['structured', 'structured dtype'],
    ['unicode', 'unicode string'],
    ['complex', 'complex'],
    ['uint16', "'<u2' is not supported"],
  ])('refuses %s arrays with ERR_NPY_FORMAT naming the file', async (name, problem) => {
    const path = join(fixtures, `${name}.npy`);
    await expectNpyError(readNpyFile(path), 'ERR_NPY_FORMAT', path, problem);
    await expectNpyError(() => parseNpy(readFileSync(path), `${name}.npy`), 'ERR_NPY_FORMAT', `${name}.npy`, problem);
  });
});

describe('round trips', () => {
  for (const dtype of DTYPES) {
    it(`${dtype}: every shape, including 0-d and empty, through a file and through parseNpy`, async () => {
      for (const shape of SHAPES) {
        const count = shape.reduce((a, b) => a * b, 1);
        const data = sample(dtype, count);
        const path = join(work, `rt-${dtype}-${shape.join('x') || 'scalar'}.npy`);
        await writeNpyFile(path, { dtype, shape, data });
        const back = await readNpyFile(path);
        expect(back.dtype).toBe(dtype);
        expect(back.shape).toEqual(shape);
        expect(bytes(back.data).equals(bytes(data))).toBe(true);
        const parsed = parseNpy(readFileSync(path));
        expect(bytes(parsed.data).equals(bytes(data))).toBe(true);
        expect(readFileSync(path).length).toBe(serializeNpyHeader(dtype, shape).length + data.byteLength);
      }
    });
  }

  it('numpy reads every file written here with the same dtype, shape and bytes', async () => {
    const dir = join(work, 'for-numpy');
    execFileSync('mkdir', ['-p', dir]);
    const expected: Record<string, { dtype: string; shape: number[]; sha: string }> = {};
    const numpyName: Record<DType, string> = {
      float16: 'float16',
      float32: 'float32',
      float64: 'float64',
      int8: 'int8',
      int16: 'int16',
      int32: 'int32',
      int64: 'int64',
      uint8: 'uint8',
      bool: 'bool',
      bfloat16: '-',
    };
    for (const dtype of DTYPES) {
      for (const shape of SHAPES) {
        const data = sample(
          dtype,
          shape.reduce((a, b) => a * b, 1),
        );
        const file = `${dtype}-${shape.join('x') || 'scalar'}.npy`;
        await writeNpyFile(join(dir, file), { dtype, shape, data });
        expected[file] = { dtype: numpyName[dtype], shape, sha: sha(bytes(data)) };
      }
    }
    const script = [
      'import hashlib, json, os, sys',
      'import numpy as np',
      'd = sys.argv[1]; out = {}',
      'for f in sorted(os.listdir(d)):',
      '    a = np.load(os.path.join(d, f), allow_pickle=False)',
      '    out[f] = {"dtype": a.dtype.name, "shape": list(a.shape), "sha": hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest(), "c": bool(a.flags.c_contiguous)}',
      'print(json.dumps(out))',
    ].join('\n');
    const got = JSON.parse(execFileSync(PYTHON, ['-c', script, dir], { encoding: 'utf8' })) as Record<string, { c: boolean }>;
    expect(Object.keys(got).sort()).toEqual(Object.keys(expected).sort());
    for (const [file, e] of Object.entries(expected)) expect(got[file], file).toEqual({ ...e, c: true });
  });

  it('uses a version-2 header only when the header outgrows 65535 bytes', () => {
    expect(serializeNpyHeader('float32', [2, 3])[6]).toBe(1);
    const manyDims = new Array<number>(30_000).fill(1);
    const header = serializeNpyHeader('float32', manyDims);
    expect(header[6]).toBe(2);
    expect(header.length % 64).toBe(0);
    const file = new Uint8Array(header.length + 4);
    file.set(header);
    const a = parseNpy(file);
    expect(a.shape.length).toBe(30_000);
    expect(a.data.length).toBe(1);
  });

  it("accepts the '?' and '=' spellings numpy can produce", () => {
    const handmade = (descr: string, payload: number[]): Uint8Array => {
      const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${payload.length / (descr === '=i2' ? 2 : 1)},), }`;
      const total = Math.ceil((10 + dict.length + 1) / 64) * 64;
      const b = new Uint8Array(total + payload.length);
      b.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, total - 10, 0]);
      b.fill(0x20, 10, total - 1);
      b.set(Buffer.from(dict, 'latin1'), 10);
      b[total - 1] = 0x0a;
      b.set(payload, total);
      return b;
    };
    const bools = parseNpy(handmade('?', [0, 1, 2, 0]));
    expect(bools.dtype).toBe('bool');
    expect([...bools.data]).toEqual([0, 1, 1, 0]);
    const shorts = parseNpy(handmade('=i2', [1, 0, 0xff, 0xff]));
    expect(shorts.dtype).toBe('int16');
    expect([...shorts.data]).toEqual([1, -1]);
  });
});

describe('streaming writer', () => {
  it('appends batches of rows and patches the count into a fixed-width header numpy reads', async () => {
    const path = join(work, 'stream.npy');
    const writer = await NpyStreamWriter.open(path, { dtype: 'float32', rowShape: [2048] });
    const all: Float32Array[] = [];
    for (const n of [128, 1, 0, 300, 71]) {
      const batch = Float32Array.from({ length: n * 2048 }, (_, i) => Math.sin(i + n));
      all.push(batch);
      await writer.append(batch);
    }
    expect(existsSync(path)).toBe(false);
    expect(await writer.finalize()).toEqual([500, 2048]);
    expect(readdirSync(work).filter((f) => f.includes('stream.npy.') && f.endsWith('.tmp'))).toEqual([]);
    const back = await readNpyFile(path);
    expect(back.shape).toEqual([500, 2048]);
    const joined = Buffer.concat(all.map((a) => bytes(a)));
    expect(bytes(back.data).equals(joined)).toBe(true);
    const py = execFileSync(
      PYTHON,
      ['-c', 'import sys, hashlib, numpy as np; a = np.load(sys.argv[1]); print(a.dtype, a.shape, hashlib.sha256(a.tobytes()).hexdigest())', path],
      { encoding: 'utf8' },
    ).trim();
    expect(py).toBe(`float32 (500, 2048) ${sha(joined)}`);
    await writer.abort(); // after finalize: a no-op, the file stays
    expect(existsSync(path)).toBe(true);
  });

  it('keeps appends in call order without awaiting each', async () => {
    const path = join(work, 'ordered.npy');
    const writer = await NpyStreamWriter.open(path, { dtype: 'int64', rowShape: [] });
    const pending = [0, 1, 2, 3, 4].map((k) => writer.append(BigInt64Array.from({ length: 3 }, (_, i) => BigInt(k * 3 + i))));
    await Promise.all(pending);
    await writer.finalize();
    const back = await readNpyFile(path);
    expect(back.shape).toEqual([15]);
    expect([...(back.data as BigInt64Array)].map(Number)).toEqual([...Array(15).keys()]);
  });

  it('finalizes an empty stream as shape (0, D)', async () => {
    const path = join(work, 'empty-stream.npy');
    const writer = await NpyStreamWriter.open(path, { dtype: 'uint8', rowShape: [32, 32, 3] });
    await writer.finalize();
    const py = execFileSync(PYTHON, ['-c', 'import sys, numpy as np; a = np.load(sys.argv[1]); print(a.dtype, a.shape)', path], { encoding: 'utf8' });
    expect(py.trim()).toBe('uint8 (0, 32, 32, 3)');
  });

  it('abort removes the temporary file and leaves an existing output untouched', async () => {
    const dir = makeTmpDir('npy-abort');
    const path = join(dir, 'feats.npy');
    writeFileSync(path, 'previous');
    const writer = await NpyStreamWriter.open(path, { dtype: 'float32', rowShape: [4] });
    await writer.append(new Float32Array(8));
    expect(readdirSync(dir).length).toBe(2);
    await writer.abort();
    expect(readdirSync(dir)).toEqual(['feats.npy']);
    expect(readFileSync(path, 'utf8')).toBe('previous');
    await expectNpyError(writer.append(new Float32Array(4)), 'ERR_IO', 'aborted');
  });

  it('rejects partial rows and wrong array types without corrupting the stream', async () => {
    const path = join(work, 'partial.npy');
    const writer = await NpyStreamWriter.open(path, { dtype: 'float32', rowShape: [4] });
    await expectNpyError(writer.append(new Float32Array(6)), 'ERR_INVALID_ARG', 'multiple of 4');
    await expectNpyError(writer.append(new Float64Array(4) as unknown as Float32Array), 'ERR_INVALID_ARG', 'Float32Array');
    await writer.append(new Float32Array([1, 2, 3, 4]));
    await writer.finalize();
    expect((await readNpyFile(path)).shape).toEqual([1, 4]);
  });
});

describe('bad inputs', () => {
  const good = (): Buffer => readFileSync(join(fixtures, 'float32-3d-v1.npy'));

  it('bad magic', async () => {
    const path = join(work, 'not-npy.npy');
    writeFileSync(path, 'PK\x03\x04 this is a zip, not an npy file');
    await expectNpyError(readNpyFile(path), 'ERR_NPY_FORMAT', path, 'bad magic');
    await expectNpyError(() => parseNpy(new Uint8Array(3), 'tiny'), 'ERR_NPY_FORMAT', 'tiny', 'bad magic');
  });

  it('truncated data names the expected and actual byte counts', async () => {
    const path = join(work, 'truncated.npy');
    const b = good();
    writeFileSync(path, b.subarray(0, b.length - 5));
    await expectNpyError(readNpyFile(path), 'ERR_NPY_FORMAT', path, 'truncated data', 'needs 96 bytes');
    await expectNpyError(() => parseNpy(b.subarray(0, b.length - 5), 'cut.npy'), 'ERR_NPY_FORMAT', 'cut.npy', 'truncated');
  });

  it('truncated header', async () => {
    const path = join(work, 'truncated-header.npy');
    writeFileSync(path, good().subarray(0, 40));
    await expectNpyError(readNpyFile(path), 'ERR_NPY_FORMAT', path, 'truncated header');
  });

  it('an unknown format version', () => {
    const b = good();
    b[6] = 4;
    expect(() => parseNpy(b, 'v4.npy')).toThrow(/v4\.npy: unsupported \.npy format version 4\.0/);
  });

  it('a shape far larger than the file is refused before anything is allocated', async () => {
    const header = serializeNpyHeader('float64', [2 ** 40, 2 ** 12]);
    const path = join(work, 'huge.npy');
    writeFileSync(path, Buffer.concat([header, Buffer.alloc(64)]));
    await expectNpyError(readNpyFile(path), 'ERR_NPY_FORMAT', path, 'truncated data');
    const overflow = Buffer.from(good().toString('latin1').replace('(2, 3, 4)', '(99999999999, 9999999999)'), 'latin1');
    await expectNpyError(() => parseNpy(overflow, 'overflow.npy'), 'ERR_NPY_FORMAT', 'too many elements');
  });

  it.each([
    ["'shape': (2, -3, 4)", 'bad dimension -3'],
    ["'shape': [2, 3, 4]", "'shape' is not a tuple"],
    ["'descr': '<f4'", 'malformed header', "'descr': __import__('os')"],
    ["'fortran_order': False", "'fortran_order' is not True/False", "'fortran_order': 0    "],
  ])('malformed header: %s → %s', (_what, problem, replacement?: string) => {
    const text = good().toString('latin1');
    const edited = replacement !== undefined ? text.replace(_what, replacement) : text.replace("'shape': (2, 3, 4)", _what);
    expect(() => parseNpy(Buffer.from(edited, 'latin1'), 'edited.npy')).toThrow(problem);
  });

  it('a missing file is ERR_IO naming it', async () => {
    const path = join(work, 'does-not-exist.npy');
    await expectNpyError(readNpyFile(path), 'ERR_IO', path);
  });

  it('writing checks dtype, shape and data up front and leaves nothing behind', async () => {
    const dir = makeTmpDir('npy-write');
    const path = join(dir, 'out.npy');
    await expectNpyError(writeNpyFile(path, { dtype: 'float32', shape: [2, 3], data: new Float32Array(5) }), 'ERR_INVALID_ARG', '6 elements');
    await expectNpyError(writeNpyFile(path, { dtype: 'int64', shape: [2], data: new Int32Array(2) }), 'ERR_INVALID_ARG', 'BigInt64Array');
    await expectNpyError(writeNpyFile(path, { dtype: 'bfloat16', shape: [2], data: new Uint16Array(2) }), 'ERR_INVALID_ARG', 'bfloat16');
    await expectNpyError(writeNpyFile(path, { dtype: 'float32', shape: [-1], data: new Float32Array(0) }), 'ERR_INVALID_ARG', 'shape');
    expect(readdirSync(dir)).toEqual([]);
    await expectNpyError(writeNpyFile(join(dir, 'no-such-dir', 'out.npy'), { dtype: 'uint8', shape: [1], data: new Uint8Array(1) }), 'ERR_IO', 'no-such-dir');
    expect(readdirSync(dir)).toEqual([]);
  });

  it('an error after the temporary file exists removes it (rename onto a directory fails)', async () => {
    const dir = makeTmpDir('npy-replace');
    const path = join(dir, 'out.npy');
    execFileSync('mkdir', ['-p', join(path, 'inside')]);
    await expectNpyError(writeNpyFile(path, { dtype: 'uint8', shape: [2], data: new Uint8Array([1, 2]) }), 'ERR_IO', path);
    expect(readdirSync(dir)).toEqual(['out.npy']);
    expect(readdirSync(path)).toEqual(['inside']);
    await expectNpyError(
      (async () => {
        const w = await NpyStreamWriter.open(path, { dtype: 'uint8', rowShape: [] });
        await w.append(new Uint8Array([1]));
        await w.finalize();
      })(),
      'ERR_IO',
      path,
    );
    expect(readdirSync(dir)).toEqual(['out.npy']);
  });
});
