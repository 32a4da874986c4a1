// MNIST-family IDX files against torchvision's FashionMNIST reader and transforms on Debian's
// dataset-fashion-mnist (scripts/fixtures/idx.py), and hostile IDX files.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { FASHION_MNIST_CLASSES, IdxImageSource, NORMALIZATIONS, openImageSource, readIdxLabels } from '../lib/data/index.js';
import { expectError } from './helpers/errors.js';
import { readNpyFile } from '../lib/npy.js';
import { ensureFixtures, FIXTURES } from './helpers/fixtures.js';
import { REPO_ROOT } from './helpers/paths.js';
import { makeTmpDir } from './helpers/tmp.js';

const FM = '/usr/share/datasets/fashion-mnist';
const fx = join(FIXTURES, 'idx');
const work = makeTmpDir('idx');

beforeAll(() => ensureFixtures('idx'));

async function expected(name: string): Promise<Uint8Array> {
  return (await readNpyFile(join(fx, 'expected', `${name}.npy`))).data as Uint8Array;
}

function idxBytes(dims: number[], values: Uint8Array, magic = [0, 0, 8, dims.length]): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head.set(magic, 0);
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, values]);
}

describe('IDX images (Fashion-MNIST) against torchvision', () => {
  it('reads the gzipped training split: count, labels, classes, normalisation, stored pixels', async () => {
    await using src = await openImageSource(join(FM, 'train-images-idx3-ubyte.gz'));
    expect(src.kind).toBe('idx');
    expect([src.count, src.height, src.width]).toEqual([60000, 28, 28]);
    expect(Array.from(src.labels!)).toEqual(Array.from(await expected('train-labels')));
    expect(src.classes).toEqual(FASHION_MNIST_CLASSES);
    expect(src.normalization).toBe('fashion-mnist');
    const b = await src.readBatch(0, 64);
    const gray = await expected('train-first64');
    const red = b.pixels.filter((_, i) => i % 3 === 0);
    expect(Buffer.from(red).equals(Buffer.from(gray))).toBe(true);
    // gray replicated to three equal channels
    for (let i = 0; i < b.pixels.length; i += 3)
      if (b.pixels[i] !== b.pixels[i + 1] || b.pixels[i] !== b.pixels[i + 2]) throw new Error(`pixel ${i / 3} not gray`);
  });

  it("pads to 32×32 exactly like torchvision's Pad(2) + Grayscale(3)", async () => {
    await using src = await openImageSource({ path: join(FM, 'train-images-idx3-ubyte.gz'), size: 32 });
    expect((src as IdxImageSource).fit).toBe('pad');
    const b = await src.readBatch(0, 64);
    expect([b.height, b.width]).toEqual([32, 32]);
    expect(Buffer.from(b.pixels).equals(Buffer.from(await expected('train-pad32')))).toBe(true);
  });

  it("resizes to 16×16 like torchvision's Resize on a PIL image (bilinear, antialiased) within one level", async () => {
    await using src = await openImageSource({ path: join(FM, 't10k-images-idx3-ubyte.gz'), size: 16 });
    expect((src as IdxImageSource).fit).toBe('resize');
    const b = await src.readBatch(0, 64);
    const want = await expected('test-resize16');
    let maxDiff = 0;
    let exact = 0;
    for (let i = 0; i < want.length; i++) {
      const d = Math.abs(b.pixels[i]! - want[i]!);
      maxDiff = Math.max(maxDiff, d);
      if (d === 0) exact++;
    }
    expect(maxDiff).toBeLessThanOrEqual(1); // PIL accumulates in 8-bit fixed point between its two passes
    expect(exact / want.length).toBeGreaterThan(0.9);
  });

  it('reads the uncompressed form, found from its folder by split, and a limit', async () => {
    const dir = join(fx, 'raw', 'FashionMNIST', 'raw');
    await using src = await openImageSource({ path: dir, split: 'test', limit: 100 });
    expect(src.kind).toBe('idx');
    expect(src.path).toBe(join(dir, 't10k-images-idx3-ubyte'));
    expect(src.count).toBe(100);
    expect(Array.from(src.labels!)).toEqual(Array.from((await expected('test-labels')).subarray(0, 100)));
    const b = await src.readBatch(10, 64);
    const gray = await expected('test-first64');
    expect(Buffer.from(b.pixels.filter((_, i) => i % 3 === 0)).equals(Buffer.from(gray.subarray(10 * 784)))).toBe(true);
    expect(Array.from(await readIdxLabels(join(dir, 't10k-labels-idx1-ubyte')))).toEqual(Array.from(await expected('test-labels')));
  });

  it('its normalisation entry is the training set statistics', () => {
    const stats = JSON.parse(readFileSync(join(fx, 'stats.json'), 'utf8')) as { mean: number; std: number };
    for (const c of [0, 1, 2]) {
      expect(NORMALIZATIONS['fashion-mnist'].mean[c]).toBeCloseTo(stats.mean, 3);
      expect(NORMALIZATIONS['fashion-mnist'].std[c]).toBeCloseTo(stats.std, 3);
    }
  });
});

describe('bad IDX files are ERR_DATA_FORMAT naming the file', () => {
  const imgs = new Uint8Array(3 * 4 * 4).fill(7);
  const write = (name: string, bytes: Uint8Array, gz = false): string => {
    const p = join(work, gz ? `${name}.gz` : name);
    mkdirSync(work, { recursive: true });
    writeFileSync(p, gz ? gzipSync(bytes) : bytes);
    return p;
  };

  it('wrong magic, a gzip not named .gz, wrong dimension count, wrong value type', async () => {
    const bad = write('bad-images-idx3-ubyte', idxBytes([3, 4, 4], imgs, [0x12, 0x34, 8, 3]));
    await expectError(openImageSource(bad), 'ERR_DATA_FORMAT', bad, 'not an IDX file', '12 34 08 03');
    const gz = write('gz-images-idx3-ubyte', gzipSync(idxBytes([3, 4, 4], imgs)));
    await expectError(openImageSource(gz), 'ERR_DATA_FORMAT', gz, 'gzip-compressed');
    const labelsAsImages = write('l-images-idx3-ubyte', idxBytes([3], new Uint8Array(3)));
    await expectError(openImageSource(labelsAsImages), 'ERR_DATA_FORMAT', '1 dimension(s), expected 3');
    const floats = write('f-images-idx3-ubyte', idxBytes([3, 4, 4], imgs, [0, 0, 0x0d, 3]));
    await expectError(openImageSource(floats), 'ERR_DATA_FORMAT', 'value type 0x0d');
  });

  it('truncated and over-long data, plain and gzipped', async () => {
    for (const gz of [false, true]) {
      const short = write(`short${gz}-images-idx3-ubyte`, idxBytes([3, 4, 4], imgs.subarray(0, 40)), gz);
      await expectError(openImageSource(short), 'ERR_DATA_FORMAT', short, 'truncated');
      const long = write(`long${gz}-images-idx3-ubyte`, idxBytes([2, 4, 4], imgs), gz);
      await expectError(openImageSource(long), 'ERR_DATA_FORMAT', long, 'more data than its header declares');
      const head = write(`head${gz}-images-idx3-ubyte`, new Uint8Array([0, 0, 8, 3, 0, 0]), gz);
      await expectError(openImageSource(head), 'ERR_DATA_FORMAT', head, 'truncated IDX header');
    }
  });

  it('a gzip stream that is corrupt, and a header that declares far more than it holds, stay bounded', async () => {
    const good = gzipSync(idxBytes([3, 4, 4], imgs));
    good[good.length - 6] = good[good.length - 6]! ^ 0xff; // CRC / size trailer
    const p = join(work, 'crc-images-idx3-ubyte.gz');
    writeFileSync(p, good);
    await expectError(openImageSource({ path: p, labels: false }), 'ERR_DATA_FORMAT', p);
    // 4 billion images of 4 billion pixels: refused from the header, nothing allocated
    const huge = write('huge-images-idx3-ubyte', idxBytes([0xffffffff, 0xffffffff, 0xffffffff], new Uint8Array(0)), true);
    await expectError(openImageSource(huge), 'ERR_DATA_FORMAT', huge, 'more than this reader holds');
  });

  it('labels that do not match the images: count, and a labels file given as images', async () => {
    const images = write('m-images-idx3-ubyte', idxBytes([3, 4, 4], imgs));
    const labels = write('m-labels-idx1-ubyte', idxBytes([2], new Uint8Array([1, 2])));
    await expectError(openImageSource(images), 'ERR_DATA_FORMAT', labels, 'has 2 labels but', '3 images');
    const wrong = write('w-labels-idx1-ubyte', idxBytes([3, 4, 4], imgs));
    await expectError(readIdxLabels(wrong), 'ERR_DATA_FORMAT', wrong, '3 dimension(s), expected 1');
  });

  it('a missing file is ERR_IO; a folder without IDX images is ERR_DATA_FORMAT; bad options are ERR_INVALID_ARG', async () => {
    await expectError(openImageSource(join(work, 'none-images-idx3-ubyte.gz')), 'ERR_IO', 'none-images-idx3-ubyte.gz');
    await expectError(IdxImageSource.open(work, { split: 'test' }), 'ERR_DATA_FORMAT', 't10k / test-images-idx3-ubyte');
    await expectError(openImageSource({ path: join(FM, 'train-images-idx3-ubyte.gz'), fit: 'cover' }), 'ERR_INVALID_ARG', 'fit');
    await expectError(IdxImageSource.open(join(FM, 'train-images-idx3-ubyte.gz'), { limit: 0 }), 'ERR_INVALID_ARG', 'limit');
  });
});

describe('IDX files as training and extraction inputs', () => {
  it('train() reads Fashion-MNIST IDX files (resized, limited), uses its statistics and records the data set', async () => {
    const { train } = await import('../lib/train.js');
    const { loadCheckpoint } = await import('../lib/checkpoint/load.js');
    const dir = join(work, 'train-idx');
    const knn: number[] = [];
    const r = await train(
      {
        method: 'vicreg',
        data: { train: join(FM, 'train-images-idx3-ubyte.gz'), val: join(FM, 't10k-images-idx3-ubyte.gz'), size: 16, limit: 48, valLimit: 40 },
        projector: { hiddenDims: [64], outputDim: 32 },
        augmentation: [{ size: 16 }],
        batchSize: 16,
        epochs: 1,
        knn: { every: 1 },
        checkpoint: { dir, every: 0 },
        seed: 3,
      },
      { onProgress: (e) => e.type === 'knn' && knn.push(e.top1) },
    );
    expect(r.globalStep).toBe(3); // 48 images / batch 16: the limit was applied
    expect(knn).toHaveLength(2); // before the first step and after the last
    const args = JSON.parse(readFileSync(r.argsJson, 'utf8')) as { data: { dataset: string; normalization: string; num_classes: number } };
    expect(args.data.dataset).toBe('fashion-mnist');
    expect(args.data.normalization).toBe('fashion-mnist');
    const ck = await loadCheckpoint(r.checkpoint);
    try {
      expect(ck.info.dataset).toBe('fashion-mnist');
      expect(ck.info.normalization).toEqual({ mean: [0.286, 0.286, 0.286], std: [0.353, 0.353, 0.353] });
    } finally {
      ck.dispose();
    }
  }, 120_000);

  it('torch-ssl extract reads an IDX file with --size, --fit and --limit', async () => {
    const { train } = await import('../lib/train.js');
    const dir = join(work, 'extract-idx');
    const r = await train({
      method: 'vicreg',
      data: { train: join(FM, 't10k-images-idx3-ubyte.gz'), size: 32, limit: 16 },
      projector: { hiddenDims: [32], outputDim: 16 },
      augmentation: [{ size: 32 }],
      batchSize: 16,
      epochs: 1,
      checkpoint: { dir, every: 0 },
    });
    const cli = resolve(REPO_ROOT, 'dist', 'cli', 'index.js');
    const out = join(work, 'idx-feats.npy');
    const labelsOut = join(work, 'idx-labels.npy');
    execFileSync(
      process.execPath,
      [
        cli,
        'extract',
        '--checkpoint',
        r.checkpoint,
        '--input',
        join(FM, 't10k-images-idx3-ubyte.gz'),
        '--size',
        '32',
        '--fit',
        'pad',
        '--limit',
        '24',
        '--pool',
        'local',
        '--out',
        out,
        '--labels-out',
        labelsOut,
      ],
      { stdio: 'pipe' },
    );
    const f = await readNpyFile(out);
    expect(f.shape).toEqual([24, 2048]); // 32×32 padded: layer4 5×5 → 3×3/2 → 512×2×2
    const l = await readNpyFile(labelsOut);
    expect(Array.from(l.data as BigInt64Array, Number)).toEqual(Array.from((await expected('test-labels')).subarray(0, 24)));
  }, 120_000);
});
