// Structure-aware fuzzing of the archive readers: every integer field of a real torch.save zip's central
// directory and end record, and every number of a safetensors header (its length, data_offsets, shapes), set
// to extreme and random values. Each variant must end, quickly, in a readable file or a TorchSslError.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readTorchFile } from '../lib/checkpoint/torch-file.js';
import { readSafetensors } from '../lib/checkpoint/safetensors.js';
import { TorchSslError } from '../lib/errors.js';
import { ensureCheckpointFixtures } from './helpers/checkpoint-fixtures.js';
import { fixturePath } from './helpers/fixtures.js';
import { makeTmpDir } from './helpers/tmp.js';

const work = makeTmpDir('archive-fuzz');
beforeAll(() => ensureCheckpointFixtures(), 300_000);

const EXTREMES = (bits: number) => [0, 1, 2 ** (bits - 1), 2 ** bits - 1, 0x7fffffff % 2 ** bits, 12345 % 2 ** bits];

async function endsWell(path: string, read: (p: string) => Promise<{ close(): Promise<void> }>, what: string): Promise<'read' | 'refused'> {
  try {
    const f = await read(path);
    await f.close();
    return 'read';
  } catch (err) {
    if (err instanceof TorchSslError) return 'refused';
    throw new Error(`${what}: ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`);
  }
}

describe('archive readers, structure-aware fuzzing', () => {
  it('zip: every central-directory and end-record integer field of a torch.save file', async () => {
    const base = readFileSync(fixturePath('checkpoints', 'dtypes', 'dtypes.pt'));
    const eocd = base.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
    expect(eocd).toBeGreaterThan(0);
    const fields: [number, number, string][] = [
      [eocd + 8, 2, 'entries on disk'],
      [eocd + 10, 2, 'entries'],
      [eocd + 12, 4, 'directory size'],
      [eocd + 16, 4, 'directory offset'],
      [eocd + 20, 2, 'comment length'],
    ];
    let p = base.readUInt32LE(eocd + 16);
    for (let i = 0; i < base.readUInt16LE(eocd + 10) && base.readUInt32LE(p) === 0x02014b50; i++) {
      for (const [off, w, name] of [
        [10, 2, 'method'],
        [16, 4, 'crc'],
        [20, 4, 'compressed size'],
        [24, 4, 'size'],
        [28, 2, 'name length'],
        [30, 2, 'extra length'],
        [32, 2, 'comment length'],
        [42, 4, 'local header offset'],
      ] as const) {
        fields.push([p + off, w, `entry ${i} ${name}`]);
      }
      p += 46 + base.readUInt16LE(p + 28) + base.readUInt16LE(p + 30) + base.readUInt16LE(p + 32);
    }
    expect(fields.length).toBeGreaterThan(20);
    let refused = 0;
    let slowest = 0;
    const file = join(work, 'z.pt');
    for (const [pos, width, name] of fields) {
      for (const v of EXTREMES(8 * width)) {
        const m = Buffer.from(base);
        if (width === 2) m.writeUInt16LE(v, pos);
        else m.writeUInt32LE(v, pos);
        writeFileSync(file, m);
        const t0 = performance.now();
        if ((await endsWell(file, readTorchFile, `${name} = ${v}`)) === 'refused') refused++;
        slowest = Math.max(slowest, performance.now() - t0);
      }
    }
    expect(refused).toBeGreaterThan(fields.length);
    expect(slowest).toBeLessThan(1000);
  });

  it('safetensors: the header length and every number of the header', async () => {
    const base = readFileSync(fixturePath('checkpoints', 'safetensors', 'reference.safetensors'));
    const n = Number(base.readBigUInt64LE(0));
    const header = base.subarray(8, 8 + n).toString('utf8');
    const data = base.subarray(8 + n);
    const numbers = [...header.matchAll(/\d+/g)].map((m) => ({ at: m.index!, len: m[0].length }));
    expect(numbers.length).toBeGreaterThan(5);
    const file = join(work, 's.safetensors');
    const variants: [Buffer, string][] = [];
    for (const v of [0n, 1n, 7n, BigInt(n - 1), BigInt(n + 1), 2n ** 63n, 2n ** 64n - 1n]) {
      const m = Buffer.from(base);
      m.writeBigUInt64LE(v, 0);
      variants.push([m, `header length ${v}`]);
    }
    for (const { at, len } of numbers) {
      for (const v of ['0', '1', '4294967295', '9007199254740993', '18446744073709551615', '-1', '1e308']) {
        const h = Buffer.from(header.slice(0, at) + v + header.slice(at + len), 'utf8');
        const lenBuf = Buffer.alloc(8);
        lenBuf.writeBigUInt64LE(BigInt(h.length));
        variants.push([Buffer.concat([lenBuf, h, data]), `number at ${at} = ${v}`]);
      }
    }
    let refused = 0;
    let slowest = 0;
    for (const [m, what] of variants) {
      writeFileSync(file, m);
      const t0 = performance.now();
      if ((await endsWell(file, readSafetensors, what)) === 'refused') refused++;
      slowest = Math.max(slowest, performance.now() - t0);
    }
    expect(refused).toBeGreaterThan(variants.length / 2);
    expect(slowest).toBeLessThan(1000);
  });
});
