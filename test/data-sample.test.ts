import { describe, expect, it } from 'vitest';
import { openImageSource, sampleIndices } from '../lib/data/index.js';
import { registerDemo } from '../lib/cli/demo.js';
import { resolveTrainConfig } from '../lib/train-config.js';
import { cliRunner } from './helpers/cli.js';

const FASHION_TEST = '/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz';

describe('openImageSource sampleSeed: a seeded random subset', () => {
  it('draws distinct indices in file order, the same for the same seed, others for another', () => {
    const a = sampleIndices(10_000, 2000, 3);
    expect(a.length).toBe(2000);
    expect(new Set(a).size).toBe(2000);
    for (let i = 1; i < a.length; i++) expect(a[i]!).toBeGreaterThan(a[i - 1]!);
    expect(Array.from(sampleIndices(10_000, 2000, 3))).toEqual(Array.from(a));
    const b = sampleIndices(10_000, 2000, 4);
    const shared = Array.from(b).filter((i) => a.includes(i)).length;
    expect(shared).toBeLessThan(600); // two independent 20 % samples share ~400
    expect(a[a.length - 1]!).toBeGreaterThan(9000); // spread over the whole file, not its start
    expect(sampleIndices(5, 10, 1).length).toBe(5);
  });

  it('gives the images and labels of the whole source at the drawn indices', async () => {
    const whole = await openImageSource({ path: FASHION_TEST, size: 16, fit: 'resize' });
    const sample = await openImageSource({ path: FASHION_TEST, size: 16, fit: 'resize', limit: 200, sampleSeed: 7 });
    try {
      const idx = sampleIndices(whole.count, 200, 7);
      expect(sample.count).toBe(200);
      expect([sample.height, sample.width]).toEqual([16, 16]);
      const got = await sample.readBatch(0, 200);
      const per = 16 * 16 * 3;
      for (const k of [0, 1, 57, 199]) {
        const ref = await whole.readBatch(idx[k]!, idx[k]! + 1);
        expect(Buffer.from(got.pixels.subarray(k * per, (k + 1) * per)).equals(Buffer.from(ref.pixels))).toBe(true);
        expect(got.labels![k]).toBe(whole.labels![idx[k]!]);
      }
      expect(Array.from(sample.labels!)).toEqual(Array.from(idx, (i) => whole.labels![i]!));
      expect(new Set(sample.labels).size).toBe(10); // every class of Fashion-MNIST in 200 random images
    } finally {
      await whole.close();
      await sample.close();
    }
  });

  it('needs limit and a non-negative integer seed; training configs take data.sampleSeed', async () => {
    await expect(openImageSource({ path: FASHION_TEST, sampleSeed: 1 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG', message: /limit/ });
    await expect(openImageSource({ path: FASHION_TEST, limit: 5, sampleSeed: -1 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG', message: /sampleSeed/ });
    expect(resolveTrainConfig({ method: 'tcr', data: { train: 'x', limit: 10, sampleSeed: 2 } }).data.sampleSeed).toBe(2);
  });

  it('torch-ssl demo --subset-seed takes a non-negative integer, named in the error', async () => {
    const { fails } = cliRunner(registerDemo);
    for (const bad of ['-1', '1.5', 'x']) {
      const err = await fails('demo', '--subset-seed', bad);
      expect(err.code).toBe('ERR_INVALID_ARG');
      expect(err.message).toContain('--subset-seed');
    }
  });
});
