import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { NpyImageSource } from '../lib/data/index.js';
import { knn, knnGrid, linearProbe } from '../lib/eval.js';
import { extractFeatures } from '../lib/features.js';
import { projector, resnet, type Projector, type ResNet } from '../lib/models.js';
import { readNpyFile } from '../lib/npy.js';
import { readNpy, Tensor } from '../lib/tensor.js';
import { fixtureArray, fixtureJson, fixturePath, fixtureTensor, relError } from './helpers/fixtures.js';
import { DATASETS } from './helpers/datasets.js';
import { makeTmpDir } from './helpers/tmp.js';

const FX = 'features';

async function loadModule(m: ResNet | Projector, dir: string): Promise<void> {
  const keys = Object.keys(m.stateDict());
  const sd: Record<string, Tensor> = {};
  for (const k of keys) sd[k] = await fixtureTensor(FX, dir, k);
  await m.loadStateDict(sd);
}

let net: ResNet;
let proj: Projector;
let images: Tensor;
const tmp = makeTmpDir('features');

beforeAll(async () => {
  net = resnet({ depth: 18, stem: 'cifar' });
  await loadModule(net, 'backbone');
  proj = projector({ inputDim: 512, preset: 'vicreg' });
  await loadModule(proj, 'projector');
  images = await fixtureTensor(FX, 'images');
});

async function expectClose(t: Tensor | undefined, ref: string, tol = 1e-4): Promise<void> {
  const expected = await fixtureArray(FX, ref);
  expect(t!.shape).toEqual(expected.shape);
  expect(relError(t!.toTypedArray() as Float32Array, expected.data)).toBeLessThan(tol);
}

describe('extractFeatures vs PyTorch (solo-learn CIFAR ResNet-18, real 32×32 digits, CIFAR-10 statistics)', () => {
  it("'local' gives 2048-d features equal to avg_pool2d(3, 2) of torchvision's layer4", async () => {
    const r = await extractFeatures(net, images, { pooling: 'local', normalize: 'cifar10', batchSize: 20 });
    expect(r.dim).toBe(2048);
    expect(r.count).toBe(48);
    await expectClose(r.features, 'local');
  });

  it("'global' equals torchvision's pooled output; { kernel: 3, stride: 2 } equals 'local'", async () => {
    await expectClose((await extractFeatures(net, images, { normalize: 'cifar10' })).features, 'global');
    await expectClose((await extractFeatures(net, images, { pooling: { kernel: 3, stride: 2 }, normalize: 'cifar10' })).features, 'local');
  });

  it("'none' returns the 512×5×5 layer4 map", async () => {
    const r = await extractFeatures(net, images, { pooling: 'none', normalize: 'cifar10', batchSize: 16 });
    expect(r.shape).toEqual([48, 512, 5, 5]);
    await expectClose(r.features, 'map');
  });

  it('defaults 32×32 uint8 inputs to the CIFAR-10 statistics; the module path (no BN folding, with or without channels_last) gives the same features', async () => {
    const r = await extractFeatures(net, images, { pooling: 'local', channelsLast: false, foldBatchNorm: false });
    expect(r.normalization).toEqual({ mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] });
    await expectClose(r.features, 'local');
    await expectClose((await extractFeatures(net, images, { pooling: 'local', foldBatchNorm: false })).features, 'local');
  });

  it('extraction leaves a model in training mode in training mode', async () => {
    net.train();
    await expectClose((await extractFeatures(net, images, { pooling: 'local' })).features, 'local');
    expect(net.training).toBe(true);
    net.eval();
  });

  it("space 'projection' equals the solo-learn VICReg projector's output", async () => {
    const r = await extractFeatures({ backbone: net, projector: proj }, images, { space: 'projection', normalize: 'cifar10', batchSize: 32 });
    expect(r.dim).toBe(2048);
    await expectClose(r.features, 'projection');
  });

  it('a grid bag of 16×16 patches (stride 8, resized to 32×32) equals the Python reference, global and local', async () => {
    const few = images.narrow(0, 0, 12);
    const g = await extractFeatures(net, few, { patches: { size: 16, stride: 8 }, normalize: 'cifar10', batchSize: 40 });
    await expectClose(g.features, 'bag_grid_global');
    const l = await extractFeatures(net, few, { pooling: 'local', patches: { size: 16, stride: 8 }, normalize: 'cifar10' });
    await expectClose(l.features, 'bag_grid_local');
  });

  it('random patches follow torch.Generator().manual_seed(seed + i) and do not depend on batching', async () => {
    const few = images.narrow(0, 0, 12);
    const a = await extractFeatures(net, few, { patches: { size: 16, count: 5, seed: 7 }, normalize: 'cifar10', batchSize: 10 });
    await expectClose(a.features, 'bag_random_global');
    const b = await extractFeatures(net, few, { patches: { size: 16, count: 5, seed: 7 }, normalize: 'cifar10', batchSize: 1000 });
    await expectClose(b.features, 'bag_random_global');
  });

  it('reads a .npy path with its labels file, and streams to .npy with the same values', async () => {
    const src = fixturePath(FX, 'images.npy');
    const out = join(tmp, 'local.npy');
    const progress: number[] = [];
    const r = await extractFeatures(net, src, { pooling: 'local', normalize: 'cifar10', batchSize: 7, out, onProgress: (p) => progress.push(p.done) });
    expect(r.features).toBeUndefined();
    expect(r.shape).toEqual([48, 2048]);
    expect(progress.at(-1)).toBe(48);
    expect(progress.length).toBe(7);
    const written = await readNpyFile(out);
    const ref = await fixtureArray(FX, 'local');
    expect(written.shape).toEqual([48, 2048]);
    expect(relError(written.data as Float32Array, ref.data)).toBeLessThan(1e-4);
    expect(readdirSync(tmp).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('takes an ImageSource and returns its labels', async () => {
    const digits = join(DATASETS, 'digits-test.npy');
    const source = await NpyImageSource.open(digits);
    try {
      const r = await extractFeatures(net, source, { batchSize: 128 });
      expect(r.count).toBe(500);
      expect(r.labels?.length).toBe(500);
    } finally {
      await source.close();
    }
  });

  it('float32 (N, 3, H, W) inputs are taken as already normalised', async () => {
    const u8 = images.toTypedArray() as Uint8Array;
    const mean = [0.4914, 0.4822, 0.4465];
    const std = [0.247, 0.2435, 0.2616];
    const f = new Float32Array(48 * 3 * 32 * 32);
    for (let n = 0; n < 48; n++)
      for (let c = 0; c < 3; c++) for (let p = 0; p < 1024; p++) f[(n * 3 + c) * 1024 + p] = (u8[(n * 1024 + p) * 3 + c]! / 255 - mean[c]!) / std[c]!;
    const r = await extractFeatures(net, Tensor.from(f, [48, 3, 32, 32]), { pooling: 'local' });
    await expectClose(r.features, 'local');
  });
});

describe('extractFeatures rejects bad input with typed errors', () => {
  it('wrong channel count', async () => {
    await expect(extractFeatures(net, Tensor.zeros([2, 32, 32, 4], { dtype: 'uint8' }))).rejects.toMatchObject({ code: 'ERR_TORCH_SHAPE' });
    await expect(extractFeatures(net, Tensor.zeros([2, 1, 32, 32]))).rejects.toMatchObject({ code: 'ERR_TORCH_SHAPE' });
  });
  it('empty input', async () => {
    await expect(extractFeatures(net, Tensor.zeros([0, 32, 32, 3], { dtype: 'uint8' }))).rejects.toMatchObject({ code: 'ERR_TORCH_SHAPE' });
  });
  it('bad options', async () => {
    await expect(extractFeatures(net, images, { pooling: 'max' as never })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
    await expect(extractFeatures(net, images, { space: 'projection' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
    await expect(extractFeatures({ backbone: net, projector: proj }, images, { space: 'projection', pooling: 'local' })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARG',
    });
    await expect(extractFeatures(net, images, { patches: { size: 40, stride: 8 } })).rejects.toMatchObject({ code: 'ERR_TORCH_SHAPE' });
    await expect(extractFeatures(net, images, { pooling: { kernel: 7, stride: 1 } })).rejects.toMatchObject({ code: 'ERR_TORCH_SHAPE' });
    await expect(extractFeatures(net, images, { batchSize: 0 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
  });
  it('an aborted signal stops with ERR_ABORTED and leaves no output file', async () => {
    const ac = new AbortController();
    const out = join(tmp, 'aborted.npy');
    const p = extractFeatures(net, images, { batchSize: 4, out, onProgress: () => ac.abort(), signal: ac.signal });
    await expect(p).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    expect(readdirSync(tmp).filter((f) => f.includes('aborted'))).toEqual([]);
  });
});

interface KnnCase {
  distance: 'cosine' | 'euclidean';
  k: number;
  temperature: number;
  /** How many test images a float32 rounding could flip (found in float64 by scripts/fixtures/features.py). */
  nearTies1: number;
  nearTies5: number;
  testCount: number;
  top1: number;
  top5: number;
  /** Test images PyTorch gets right at top-1 / top-5, and the near-tie images, by index. */
  right1: number[];
  right5: number[];
  ties1: number[];
  ties5: number[];
}

describe("knn equals solo-learn's WeightedKNNClassifier (transcribed, run by PyTorch)", () => {
  const results = fixtureJson<Record<string, KnnCase[]>>(FX, 'knn', 'results.json');
  for (const set of ['digits', 'clusters']) {
    it(`${set}: every distance × k × T, image by image`, async () => {
      const bank = {
        trainFeatures: fixturePath(FX, 'knn', `${set}_train.npy`),
        trainLabels: fixturePath(FX, 'knn', `${set}_train_labels.npy`),
        testFeatures: fixturePath(FX, 'knn', `${set}_test.npy`),
        testLabels: fixturePath(FX, 'knn', `${set}_test_labels.npy`),
      };
      const test = await fixtureArray(FX, 'knn', `${set}_test`);
      const testLabels = Array.from((await readNpyFile(bank.testLabels)).data as BigInt64Array, Number);
      const dim = test.shape[1]!;
      const rows = (idx: number[]) => {
        const f = new Float32Array(idx.length * dim);
        idx.forEach((i, r) => f.set(test.data.subarray(i * dim, (i + 1) * dim), r * dim));
        return { testFeatures: Tensor.from(f, [idx.length, dim]), testLabels: idx.map((i) => testLabels[i]!) };
      };
      const cases = results[set]!;
      expect(cases.some((c) => c.top1 < 99)).toBe(true);
      for (const c of cases) {
        const where = `${c.distance} k ${c.k} T ${c.temperature}`;
        // Near-ties are few (the digits features are centred for this), so what follows checks nearly every image.
        expect(c.ties1.length + c.ties5.length, where).toBeLessThanOrEqual(0.03 * c.testCount);
        const o = { trainFeatures: bank.trainFeatures, trainLabels: bank.trainLabels, k: c.k, temperature: c.temperature, distance: c.distance, chunkSize: 37 };
        // Image by image, wherever rounding cannot decide: the images PyTorch gets right we get right (100 %),
        // the ones it gets wrong we get wrong (0 %), at top-1 and at top-5.
        for (const [top, right, ties] of [
          ['top1', c.right1, c.ties1],
          ['top5', c.right5, c.ties5],
        ] as const) {
          const tie = new Set(ties);
          const ok = new Set(right);
          const all = Array.from({ length: c.testCount }, (_, i) => i).filter((i) => !tie.has(i));
          for (const [want, idx] of [
            [100, all.filter((i) => ok.has(i))],
            [0, all.filter((i) => !ok.has(i))],
          ] as const) {
            if (idx.length === 0) continue;
            const r = await knn({ ...o, ...rows(idx) });
            expect(r[top], `${where}: ${top} over the ${idx.length} images PyTorch gets ${want ? 'right' : 'wrong'}`).toBe(want);
          }
        }
        // All images at once: the same accuracy, up to the near-ties.
        const r = await knn({ ...bank, k: c.k, temperature: c.temperature, distance: c.distance, chunkSize: 37 });
        const per = 100 / c.testCount;
        expect(Math.round(Math.abs(r.top1 - c.top1) / per), `${where} top-1 ${r.top1} vs ${c.top1}`).toBeLessThanOrEqual(c.nearTies1);
        expect(Math.round(Math.abs(r.top5 - c.top5) / per), `${where} top-5 ${r.top5} vs ${c.top5}`).toBeLessThanOrEqual(c.nearTies5);
      }
      // knnGrid: every (k, T) from one pass gives the same numbers.
      for (const distance of ['cosine', 'euclidean'] as const) {
        const grid = await knnGrid({ ...bank, distance, ks: [1, 3, 5, 20, 50], temperatures: [0.02, 0.07, 0.5] });
        for (const c of cases.filter((x) => x.distance === distance)) {
          const e = grid.results.find((g) => g.k === c.k && (distance === 'euclidean' || g.temperature === c.temperature))!;
          const per = 100 / c.testCount;
          expect(
            Math.round(Math.abs(e.top1 - c.top1) / per) <= c.nearTies1 && Math.round(Math.abs(e.top5 - c.top5) / per) <= c.nearTies5,
            `k ${c.k} T ${c.temperature}`,
          ).toBe(true);
        }
      }
    });
  }

  it('the default grid is solo-learn’s 8 k × 8 T', async () => {
    const bank = {
      trainFeatures: fixturePath(FX, 'knn', 'digits_train.npy'),
      trainLabels: fixturePath(FX, 'knn', 'digits_train_labels.npy'),
      testFeatures: fixturePath(FX, 'knn', 'digits_test.npy'),
      testLabels: fixturePath(FX, 'knn', 'digits_test_labels.npy'),
    };
    const grid = await knnGrid(bank);
    expect(grid.results.length).toBe(64);
    expect(grid.numClasses).toBe(10);
    expect(grid.best.top1).toBeGreaterThan(90);
  });

  it('rejects bad input with typed errors', async () => {
    const f = Tensor.from(new Float32Array([1, 0, 0, 1, 1, 1]), [3, 2]);
    const l = Int32Array.from([0, 1, 1]);
    await expect(knn({ trainFeatures: f, trainLabels: l, testFeatures: f, testLabels: l, k: 4 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
    await expect(knn({ trainFeatures: f, trainLabels: [0, 1], testFeatures: f, testLabels: l, k: 1 })).rejects.toMatchObject({ code: 'ERR_TORCH_SHAPE' });
    await expect(knn({ trainFeatures: Tensor.zeros([0, 2]), trainLabels: [], testFeatures: f, testLabels: l })).rejects.toMatchObject({
      code: 'ERR_TORCH_SHAPE',
    });
    await expect(knn({ trainFeatures: f, trainLabels: l, testFeatures: Tensor.zeros([3, 5]), testLabels: l, k: 1 })).rejects.toMatchObject({
      code: 'ERR_TORCH_SHAPE',
    });
    const nan = Tensor.from(new Float32Array([1, NaN, 0, 1, 1, 1]), [3, 2]);
    await expect(knn({ trainFeatures: nan, trainLabels: l, testFeatures: f, testLabels: l, k: 1 })).rejects.toMatchObject({ code: 'ERR_TORCH_VALUE' });
    await expect(knn({ trainFeatures: f, trainLabels: l, testFeatures: f, testLabels: l, k: 1, temperature: 0 })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARG',
    });
    await expect(knn({ trainFeatures: f, trainLabels: l, testFeatures: f, testLabels: [0, -1, 1], k: 1 })).rejects.toMatchObject({ code: 'ERR_TORCH_VALUE' });
  });
});

describe('linearProbe', () => {
  it('learns the digits from frozen random-network features well above chance, with a falling loss', async () => {
    const r = await linearProbe({
      trainFeatures: await readNpy(fixturePath(FX, 'knn', 'digits_train.npy')),
      trainLabels: fixturePath(FX, 'knn', 'digits_train_labels.npy'),
      testFeatures: fixturePath(FX, 'knn', 'digits_test.npy'),
      testLabels: fixturePath(FX, 'knn', 'digits_test_labels.npy'),
      epochs: 30,
      lr: 0.05,
      batchSize: 128,
    });
    expect(r.history.length).toBe(30);
    expect(r.history.at(-1)!.loss).toBeLessThan(r.history[0]!.loss);
    expect(r.top1).toBeGreaterThan(90);
    expect(r.top5).toBeGreaterThanOrEqual(r.top1);
    expect(r.weight.shape).toEqual([10, 512]);
    expect(r.history.at(-1)!.testTop1).toBe(r.top1);
  });

  it('is reproducible for a seed and stops on abort', async () => {
    const f = await readNpy(fixturePath(FX, 'knn', 'clusters_train.npy'));
    const o = {
      trainFeatures: f,
      trainLabels: fixturePath(FX, 'knn', 'clusters_train_labels.npy'),
      testFeatures: f,
      testLabels: fixturePath(FX, 'knn', 'clusters_train_labels.npy'),
      epochs: 5,
      seed: 3,
    };
    const a = await linearProbe(o);
    const b = await linearProbe(o);
    expect(a.top1).toBe(b.top1);
    expect(a.history.map((h) => h.loss)).toEqual(b.history.map((h) => h.loss));
    const ac = new AbortController();
    ac.abort();
    await expect(linearProbe({ ...o, signal: ac.signal })).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    await expect(linearProbe({ ...o, testLabels: [1, 2] })).rejects.toMatchObject({ code: 'ERR_TORCH_SHAPE' });
  });

  it('an abort mid-run stops the native loop: it rejects long before the epochs it was asked for would end', async () => {
    const f = await readNpy(fixturePath(FX, 'knn', 'clusters_train.npy'));
    const labels = fixturePath(FX, 'knn', 'clusters_train_labels.npy');
    const o = { trainFeatures: f, trainLabels: labels, testFeatures: f, testLabels: labels, seed: 3, evalEveryEpoch: false };
    let t0 = performance.now();
    await linearProbe({ ...o, epochs: 200 });
    const per200 = performance.now() - t0;
    // 100× the work, aborted after a quarter of the 200-epoch time: the promise settles (the native loop has
    // returned) within a few 200-epoch times, not the ~100 a run to the end would take.
    const ac = new AbortController();
    t0 = performance.now();
    const p = linearProbe({ ...o, epochs: 20000, signal: ac.signal });
    setTimeout(() => ac.abort(), Math.max(20, per200 / 4));
    await expect(p).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    const elapsed = performance.now() - t0;
    console.log(`linear probe: 200 epochs ${per200.toFixed(0)} ms; 20000 epochs aborted after ${elapsed.toFixed(0)} ms`);
    expect(elapsed).toBeLessThan(Math.max(8 * per200, 200));
  });
});
