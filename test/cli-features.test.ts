import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { exportCheckpoint } from '../lib/checkpoint/export.js';
import { register as registerExtract } from '../lib/cli/extract.js';
import { register as registerKnn } from '../lib/cli/knn.js';
import { register as registerLinear } from '../lib/cli/linear.js';
import { resnet } from '../lib/models.js';
import { readNpyFile, writeNpyFile } from '../lib/npy.js';
import { Tensor } from '../lib/tensor.js';
import { cliRunner } from './helpers/cli.js';
import { fixtureArray, fixtureJson, fixturePath, fixtureTensor, relError } from './helpers/fixtures.js';
import { makeTmpDir } from './helpers/tmp.js';

const { run: cli } = cliRunner(registerExtract, registerKnn, registerLinear);

const tmp = makeTmpDir('cli-features');

describe('torch-ssl extract', () => {
  const ckpt = () => fixturePath('checkpoints', 'vicreg_omegaconf', 'vicreg-cifar10-otu5cw89-ep=999.ckpt');
  const input = () => fixturePath('checkpoints', 'vicreg_omegaconf', 'features', 'input.npy');

  it('a solo-learn VICReg checkpoint: pooled and projected features equal PyTorch’s', async () => {
    const out = join(tmp, 'pooled.npy');
    await cli('extract', '--checkpoint', ckpt(), '--input', input(), '--out', out);
    const pooled = await readNpyFile(out);
    const ref = await fixtureArray('checkpoints', 'vicreg_omegaconf', 'features', 'pooled');
    expect(pooled.shape).toEqual(ref.shape);
    expect(relError(pooled.data as Float32Array, ref.data)).toBeLessThan(1e-4);
    const proj = join(tmp, 'projected.npy');
    const lines = await cli('extract', '--checkpoint', ckpt(), '--input', input(), '--out', proj, '--space', 'projection', '--json');
    const refProj = await fixtureArray('checkpoints', 'vicreg_omegaconf', 'features', 'projected');
    expect(relError((await readNpyFile(proj)).data as Float32Array, refProj.data)).toBeLessThan(1e-4);
    expect(JSON.parse(lines.at(-1)!)).toMatchObject({ shape: refProj.shape });
  });

  it('--pool local on real uint8 digits with labels: 2048-d features equal PyTorch’s, labels written', async () => {
    const net = resnet({ depth: 18, stem: 'cifar' });
    const sd: Record<string, Tensor> = {};
    for (const k of Object.keys(net.stateDict())) sd[k] = await fixtureTensor('features', 'backbone', k);
    await net.loadStateDict(sd);
    const model = join(tmp, 'r18.pth');
    await exportCheckpoint(model, net);
    const images = await readNpyFile(fixturePath('features', 'images.npy'));
    const imgs = join(tmp, 'digits.npy');
    await writeNpyFile(imgs, images);
    const labels = BigInt64Array.from({ length: images.shape[0]! }, (_, i) => BigInt(i % 10));
    await writeNpyFile(join(tmp, 'digits-labels.npy'), { dtype: 'int64', shape: [labels.length], data: labels });
    const out = join(tmp, 'local.npy');
    const labelsOut = join(tmp, 'labels-out.npy');
    await cli(
      'extract',
      '--checkpoint',
      model,
      '--input',
      imgs,
      '--out',
      out,
      '--pool',
      'local',
      '--normalize',
      'cifar10',
      '--batch-size',
      '10',
      '--labels-out',
      labelsOut,
    );
    const got = await readNpyFile(out);
    const ref = await fixtureArray('features', 'local');
    expect(got.shape).toEqual([48, 2048]);
    expect(relError(got.data as Float32Array, ref.data)).toBeLessThan(1e-4);
    expect(Array.from((await readNpyFile(labelsOut)).data as BigInt64Array)).toEqual(Array.from(labels));
    // K,S and a grid bag parse too.
    await cli('extract', '--checkpoint', model, '--input', imgs, '--out', join(tmp, 'bag.npy'), '--pool', '3,2', '--patches', '16,8', '--normalize', 'cifar10');
    expect((await readNpyFile(join(tmp, 'bag.npy'))).shape).toEqual([48, 2048]);
  });

  it('bad options fail with a typed error and leave no output', async () => {
    const out = join(tmp, 'never.npy');
    await expect(cli('extract', '--checkpoint', ckpt(), '--input', input(), '--out', out, '--pool', '3')).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
    await expect(cli('extract', '--checkpoint', ckpt(), '--input', input(), '--out', out, '--normalize', 'cifar10')).rejects.toMatchObject({
      code: 'ERR_INVALID_ARG',
    });
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(tmp).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});

describe('torch-ssl knn / linear', () => {
  const files = (set: string) => [
    '--train',
    fixturePath('features', 'knn', `${set}_train.npy`),
    '--train-labels',
    fixturePath('features', 'knn', `${set}_train_labels.npy`),
    '--test',
    fixturePath('features', 'knn', `${set}_test.npy`),
    '--test-labels',
    fixturePath('features', 'knn', `${set}_test_labels.npy`),
  ];
  const ref = fixtureJson<Record<string, { distance: string; k: number; temperature: number; top1: number; top5: number }[]>>(
    'features',
    'knn',
    'results.json',
  );

  it('--json prints PyTorch’s top1/top5 as the last line', async () => {
    const c = ref.clusters!.find((x) => x.distance === 'cosine' && x.k === 20 && x.temperature === 0.07)!;
    const lines = await cli('knn', ...files('clusters'), '--json');
    expect(JSON.parse(lines.at(-1)!)).toEqual({ top1: expect.closeTo(c.top1, 9), top5: expect.closeTo(c.top5, 9) });
    const e = ref.clusters!.find((x) => x.distance === 'euclidean' && x.k === 5)!;
    const el = await cli('knn', ...files('clusters'), '--distance', 'euclidean', '--k', '5', '--json');
    expect(JSON.parse(el.at(-1)!)).toEqual({ top1: expect.closeTo(e.top1, 9), top5: expect.closeTo(e.top5, 9) });
  });

  it('--grid reports the best (k, T) and the whole grid', async () => {
    const lines = await cli('knn', ...files('clusters'), '--grid', '--json');
    const j = JSON.parse(lines.at(-1)!) as { top1: number; grid: { top1: number }[] };
    expect(j.grid.length).toBe(64);
    expect(j.top1).toBe(Math.max(...j.grid.map((g) => g.top1)));
  });

  it('linear --json', async () => {
    const lines = await cli('linear', ...files('digits'), '--epochs', '10', '--lr', '0.05', '--json');
    const j = JSON.parse(lines.at(-1)!) as { top1: number; top5: number };
    expect(j.top1).toBeGreaterThan(85);
  });

  it('k larger than the bank is a typed error', async () => {
    await expect(cli('knn', ...files('clusters'), '--k', '100000')).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
  });
});
