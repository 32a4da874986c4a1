/**
 * Mutated-byte fuzzing of the checkpoint reader: every variant must end in a value or a TorchSslError —
 * never a crash, a hang or another error type. Cases: TORCH_SSL_FUZZ_CASES (default 3000, split over the
 * targets), seed TORCH_SSL_FUZZ_SEED (default 1). `node scripts/fuzz-checkpoint.mjs N [seed]` runs long.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { TorchSslError } from '../lib/errors.js';
import { findTensors, readTorchFile } from '../lib/checkpoint/torch-file.js';
import { readSafetensors } from '../lib/checkpoint/safetensors.js';
import { recognizeCheckpoint } from '../lib/checkpoint/solo-learn.js';
import { ZipReader } from '../lib/checkpoint/zip.js';
import { ensureCheckpointFixtures } from './helpers/checkpoint-fixtures.js';
import { fixturePath } from './helpers/fixtures.js';
import { makeTmpDir } from './helpers/tmp.js';

const TOTAL = Number(process.env.TORCH_SSL_FUZZ_CASES ?? 3000);
const SEED = Number(process.env.TORCH_SSL_FUZZ_SEED ?? 1);
const TIMEOUT = Math.max(120_000, TOTAL * 100);

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

const INTERESTING = [0x00, 0xff, 0x7f, 0x80, 0x28, 0x2e, 0x52, 0x62, 0x63, 0x71, 0x85, 0x8a, 0x8b, 0x93, 0x95, 0x58, 0x4a];

/** One mutation: byte flips, interesting bytes, 32-bit overwrites, truncation, insertion, deletion, block copy. */
function mutate(src: Uint8Array, rnd: () => number, focus?: [number, number]): Uint8Array {
  const [lo, hi] = focus ?? [0, src.length];
  const at = (): number => lo + Math.floor(rnd() * Math.max(1, hi - lo));
  let out = src.slice();
  const n = 1 + Math.floor(rnd() * 4);
  for (let i = 0; i < n; i++) {
    const kind = Math.floor(rnd() * 7);
    const p = Math.min(at(), Math.max(0, out.length - 1));
    if (kind === 0) out[p] = out[p]! ^ (1 << Math.floor(rnd() * 8));
    else if (kind === 1) out[p] = INTERESTING[Math.floor(rnd() * INTERESTING.length)]!;
    else if (kind === 2 && p + 4 <= out.length)
      new DataView(out.buffer).setUint32(p, [0, 0xffffffff, 0x7fffffff, 0x80000000, Math.floor(rnd() * 2 ** 32)][Math.floor(rnd() * 5)]!, true);
    else if (kind === 3) out = out.slice(0, p);
    else if (kind === 4) {
      const ins = Uint8Array.from({ length: 1 + Math.floor(rnd() * 8) }, () => Math.floor(rnd() * 256));
      const next = new Uint8Array(out.length + ins.length);
      next.set(out.subarray(0, p));
      next.set(ins, p);
      next.set(out.subarray(p), p + ins.length);
      out = next;
    } else if (kind === 5) {
      const k = 1 + Math.floor(rnd() * 8);
      out = Uint8Array.from([...out.subarray(0, p), ...out.subarray(p + k)]);
    } else {
      const from = at();
      const len = Math.min(1 + Math.floor(rnd() * 16), out.length - from, out.length - p);
      if (len > 0) out.copyWithin(p, from, from + len);
    }
  }
  return out;
}

/** A minimal stored-zip builder (correct CRCs), to get mutated pickles past the CRC check. */
function storedZip(entries: Array<[string, Uint8Array]>): Uint8Array {
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const [name, data] of entries) {
    const nb = new TextEncoder().encode(name);
    const h = new Uint8Array(30 + nb.length);
    const v = new DataView(h.buffer);
    const crc = crc32(data) >>> 0;
    v.setUint32(0, 0x04034b50, true);
    v.setUint16(4, 20, true);
    v.setUint32(14, crc, true);
    v.setUint32(18, data.length, true);
    v.setUint32(22, data.length, true);
    v.setUint16(26, nb.length, true);
    h.set(nb, 30);
    const c = new Uint8Array(46 + nb.length);
    const cv = new DataView(c.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(6, 20, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, data.length, true);
    cv.setUint32(24, data.length, true);
    cv.setUint16(28, nb.length, true);
    cv.setUint32(42, offset, true);
    c.set(nb, 46);
    parts.push(h, data);
    central.push(c);
    offset += h.length + data.length;
  }
  const cdSize = central.reduce((a, c) => a + c.length, 0);
  const e = new Uint8Array(22);
  const ev = new DataView(e.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, entries.length, true);
  ev.setUint16(10, entries.length, true);
  ev.setUint32(12, cdSize, true);
  ev.setUint32(16, offset, true);
  return new Uint8Array(Buffer.concat([...parts, ...central, e]));
}

type Outcome = 'value' | 'error';

/** Reads a candidate fully: open, recognise, read every tensor. Anything but TorchSslError fails the test. */
async function exercise(path: string, kind: 'torch' | 'safetensors'): Promise<Outcome> {
  try {
    if (kind === 'safetensors') {
      const f = await readSafetensors(path);
      try {
        for (const t of f.tensors.values()) await t.read();
      } finally {
        await f.close();
      }
      return 'value';
    }
    const f = await readTorchFile(path);
    try {
      for (const { tensor } of findTensors(f.root, 10_000)) await tensor.read();
      try {
        recognizeCheckpoint(f);
      } catch (err) {
        if (!(err instanceof TorchSslError)) throw err;
      }
    } finally {
      await f.close();
    }
    return 'value';
  } catch (err) {
    if (err instanceof TorchSslError) return 'error';
    throw new Error(`non-TorchSslError escaped: ${(err as Error)?.stack ?? String(err)}`);
  }
}

const dir = makeTmpDir('fuzz');
beforeAll(() => ensureCheckpointFixtures());

interface Target {
  name: string;
  kind: 'torch' | 'safetensors';
  /** Produces the i-th variant. */
  variant: (rnd: () => number) => Uint8Array;
}

async function targets(): Promise<Target[]> {
  // Plain Uint8Array copies: Buffer#slice would share memory and let mutations accumulate.
  const zipBytes = new Uint8Array(readFileSync(fixturePath('checkpoints', 'tiny_lightning', 'tiny.ckpt')));
  const legacyBytes = new Uint8Array(readFileSync(fixturePath('checkpoints', 'tiny_lightning', 'tiny_legacy.ckpt')));
  const stBytes = new Uint8Array(readFileSync(fixturePath('checkpoints', 'safetensors', 'reference.safetensors')));
  const zip = await ZipReader.open(fixturePath('checkpoints', 'tiny_lightning', 'tiny.ckpt'));
  const entries: Array<[string, Uint8Array]> = [];
  for (const e of zip.entries.values()) entries.push([e.name, await zip.read(e)]);
  await zip.close();
  const pklIndex = entries.findIndex(([n]) => n.endsWith('/data.pkl'));
  const pkl = entries[pklIndex]![1];
  return [
    { name: 'zip bytes', kind: 'torch', variant: (r) => mutate(zipBytes, r) },
    { name: 'zip directory', kind: 'torch', variant: (r) => mutate(zipBytes, r, [zipBytes.length - 1200, zipBytes.length]) },
    {
      name: 'pickle inside a valid zip',
      kind: 'torch',
      variant: (r) => storedZip(entries.map(([n, d], i) => [n, i === pklIndex ? mutate(pkl, r) : d])),
    },
    { name: 'legacy stream', kind: 'torch', variant: (r) => mutate(legacyBytes, r) },
    { name: 'safetensors', kind: 'safetensors', variant: (r) => mutate(stBytes, r, [0, 600]) },
  ];
}

describe(`checkpoint reader fuzzing (${TOTAL} mutated files, seed ${SEED})`, () => {
  it(
    'ends every mutated file in a value or a TorchSslError, never a crash, hang or other error',
    async () => {
      const all = await targets();
      const rnd = prng(SEED);
      const tally: Record<string, Record<Outcome, number>> = {};
      const path = join(dir, 'case.bin');
      const t0 = Date.now();
      for (let i = 0; i < TOTAL; i++) {
        const target = all[i % all.length]!;
        const bytes = target.variant(rnd);
        writeFileSync(path, bytes);
        const started = Date.now();
        let outcome: Outcome;
        try {
          outcome = await exercise(path, target.kind);
        } catch (err) {
          writeFileSync(join(dir, 'failing.bin'), bytes);
          throw new Error(`case ${i} (${target.name}, seed ${SEED}): ${(err as Error).message}`);
        }
        // A single case taking seconds would be a hang in the making (quadratic loop, giant allocation).
        expect(Date.now() - started, `case ${i} (${target.name}) took too long`).toBeLessThan(5000);
        const t = (tally[target.name] ??= { value: 0, error: 0 });
        t[outcome]++;
      }
      const seconds = (Date.now() - t0) / 1000;
      console.log(`fuzz: ${TOTAL} cases in ${seconds.toFixed(1)} s`, JSON.stringify(tally));
      // The corpus must exercise both paths: some variants still read, most are refused.
      const values = Object.values(tally).reduce((a, t) => a + t.value, 0);
      const errors = Object.values(tally).reduce((a, t) => a + t.error, 0);
      expect(values).toBeGreaterThan(0);
      expect(errors).toBeGreaterThan(0);
    },
    TIMEOUT,
  );
});
