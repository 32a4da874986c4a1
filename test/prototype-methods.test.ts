// DINO, SwAV and NNCLR (issue 26) against PyTorch references written like solo-learn's method classes
// (scripts/fixtures/prototypes.py): the same initial weights and buffers, deterministic views (multi-crop for DINO
// and SwAV: two large crops of 16 and two small crops of 8), the schedules that change with the epoch (DINO's
// teacher temperature and frozen last layer, SwAV's frozen prototypes and queue start) changing within the run.
// Per-step losses; after the first step and after 8 steps every parameter and the method's buffers (DINO's centre,
// SwAV's and NNCLR's queues); 2-process data-parallel DINO (centre all-reduced) and SwAV (Sinkhorn sums
// all-reduced) against DistributedDataParallel; resume mid-run ends where the uninterrupted run ends; solo-learn's
// checkpoint layout; the config's defaults and errors.
import './helpers/direct-conv.js'; // before anything loads the addon: PyTorch's direct convolutions
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { estimateCheckpointBytes, train, type StepEvent, type TrainResult } from '../lib/train.js';
import { loadCheckpoint } from '../lib/checkpoint/load.js';
import { inspectCheckpoint } from '../lib/checkpoint/index.js';
import { resolveTrainConfig } from '../lib/train-config.js';
import { fixtureArray, fixtureJson, fixturePath, relError } from './helpers/fixtures.js';
import { stateDictFloats } from './helpers/checkpoints.js';
import { expectError } from './helpers/errors.js';
import { expectLossesMatch, relDev } from './helpers/training.js';
import { REPO_ROOT } from './helpers/paths.js';
import { makeTmpDir } from './helpers/tmp.js';

const cli = resolve(REPO_ROOT, 'dist', 'cli', 'index.js');
const work = makeTmpDir('prototypes');

type Name = 'dino' | 'swav' | 'nnclr';
interface Meta {
  images: number;
  batch: number;
  epochs: number;
  localBatch: number;
  lr: number;
  eta: number;
  baseTau: number;
  finalTau: number;
  small: number;
  dino: Record<string, number>;
  swav: Record<string, number>;
  nnclr: Record<string, number>;
  parameters: Record<Name, string[]>;
  buffers: Record<Name, string[]>;
}
const meta = () => fixtureJson<Meta>('prototypes', 'meta.json');

const view = (flip: number, size = 16) => ({
  size,
  scale: [1, 1],
  ratio: [1, 1],
  jitter: { p: 0, brightness: 0, contrast: 0, saturation: 0, hue: 0 },
  grayscale: 0,
  flip,
  crops: 1,
});

function methodPart(method: Name, multi: boolean): Record<string, unknown> {
  const m = meta();
  const views = [view(0), view(1), ...(multi ? [view(0, m.small), view(1, m.small)] : [])];
  if (method === 'dino') {
    const d = m.dino;
    return {
      projector: { hiddenDims: [d.hidden, d.hidden], outputDim: d.bottleneck },
      loss: {
        numPrototypes: d.prototypes,
        studentTemperature: d.studentTemperature,
        teacherTemperature: d.teacherTemperature,
        warmupTeacherTemperature: d.warmupTeacherTemperature,
        warmupTeacherTemperatureEpochs: d.warmupTeacherTemperatureEpochs,
        centerMomentum: d.centerMomentum,
        freezeLastLayerEpochs: d.freezeLastLayerEpochs,
        clipGrad: d.clipGrad,
        normLastLayer: true,
      },
      momentum: { baseTau: m.baseTau, finalTau: m.finalTau },
      augmentation: views,
      optimizer: { lr: m.lr, weightDecay: d.wd, eta: m.eta },
    };
  }
  if (method === 'swav') {
    const s = m.swav;
    return {
      projector: { hiddenDims: [s.hidden], outputDim: s.out },
      loss: {
        numPrototypes: s.prototypes,
        temperature: s.temperature,
        sinkhornIterations: s.sinkhornIterations,
        sinkhornEpsilon: s.sinkhornEpsilon,
        queueSize: multi ? s.queueSize : 0,
        queueStartEpoch: s.queueStartEpoch,
        freezePrototypesEpochs: s.freezePrototypesEpochs,
      },
      augmentation: views,
      optimizer: { lr: m.lr, weightDecay: s.wd, eta: m.eta },
    };
  }
  const n = m.nnclr;
  return {
    projector: { hiddenDims: [n.hidden, n.hidden], outputDim: n.out },
    predictor: { hiddenDims: [n.predHidden] },
    loss: { temperature: n.temperature, queueSize: n.queueSize },
    augmentation: views,
    optimizer: { lr: m.lr, weightDecay: n.wd, eta: m.eta },
  };
}

function config(method: Name, dir: string, extra: Record<string, unknown> = {}, multi = method !== 'nnclr'): Record<string, unknown> {
  const m = meta();
  return {
    method,
    data: { train: fixturePath('prototypes', 'images.npy'), shuffle: false },
    ...methodPart(method, multi),
    batchSize: m.batch,
    epochs: m.epochs,
    scheduler: { warmupEpochs: 0 },
    resume: fixturePath('prototypes', `init-${method}.ckpt`),
    checkpoint: { dir, every: 0 },
    logEvery: 1,
    threads: 1,
    ...extra,
  };
}

/** Float state the method's buffers hold (long buffers — NNCLR's labels and pointer — are checked apart). */
const floatBuffers = (method: Name) => meta().buffers[method].filter((b) => !b.endsWith('queue_y') && !b.endsWith('queue_ptr') && !b.includes('running_'));

/**
 * Parameters: the update (final − initial) against PyTorch t1's, relative to its largest entry; the method's float
 * buffers (centre, queue): their values. Each within max(floor, 2 × PyTorch's own t2-vs-t1 deviation).
 */
async function stateErrors(
  ckpt: string,
  method: Name,
  tag: 'single' | 'single1' | 'ddp',
  floor: number,
  init = fixturePath('prototypes', `init-${method}.ckpt`),
) {
  const params = meta().parameters[method];
  const buffers = tag === 'ddp' ? floatBuffers(method).filter((b) => b !== 'queue') : floatBuffers(method);
  const before = await stateDictFloats(init, params);
  const after = await stateDictFloats(ckpt, [...params, ...buffers]);
  const rows: { name: string; ours: number; torch: number; tolerance: number }[] = [];
  for (const n of [...params, ...buffers]) {
    const isParam = params.includes(n);
    const value = async (threads: number) => {
      const ref = (await fixtureArray('prototypes', tag, `t${threads}`, method, n)).data as Float32Array;
      return isParam ? ref.map((v, i) => v - before.get(n)![i]!) : ref;
    };
    const ref = await value(1);
    const mine = isParam ? after.get(n)!.map((v, i) => v - before.get(n)![i]!) : after.get(n)!;
    const ours = relError(mine, ref, 1e-6);
    const torch = relError(await value(2), ref, 1e-6);
    rows.push({ name: n, ours, torch, tolerance: Math.max(floor, 2 * torch) });
  }
  return rows;
}
async function expectStateMatches(ckpt: string, method: Name, tag: 'single' | 'single1' | 'ddp', floor = 3e-3, init?: string) {
  const rows = await stateErrors(ckpt, method, tag, floor, init);
  for (const r of rows) expect(r.ours, `${r.name} (PyTorch t2 vs t1: ${r.torch.toExponential(1)})`).toBeLessThanOrEqual(r.tolerance);
  const worst = (pick: (r: (typeof rows)[number]) => boolean) =>
    rows.filter(pick).reduce((a, b) => (b.ours / b.tolerance > a.ours / a.tolerance ? b : a), { name: '-', ours: 0, torch: 0, tolerance: 1 });
  const fmt = (r: { name: string; ours: number; torch: number }) => `${r.name} ${r.ours.toExponential(2)} (PyTorch t2 vs t1 ${r.torch.toExponential(2)})`;
  const own = new Set(floatBuffers(method));
  console.log(
    `${tag} ${method}: worst student ${fmt(worst((r) => !own.has(r.name) && !r.name.startsWith('momentum_')))}; worst teacher ${fmt(worst((r) => r.name.startsWith('momentum_')))}; worst buffer ${fmt(worst((r) => own.has(r.name)))}`,
  );
  return rows;
}

const runs = new Map<Name, TrainResult>();

describe('DINO, SwAV, NNCLR equal solo-learn-style PyTorch references (one process; DINO and SwAV multi-crop)', () => {
  for (const method of ['dino', 'swav', 'nnclr'] as const) {
    it(`${method}: per-step losses, and every parameter and the method's buffers after 1 and after 8 steps`, async () => {
      const steps: StepEvent[] = [];
      const r = await train(config(method, join(work, `single-${method}`)), { onProgress: (e) => e.type === 'step' && steps.push(e) });
      runs.set(method, r);
      expect(r.globalStep).toBe(8);
      const t1 = fixtureJson<number[]>('prototypes', `single-t1-${method}-losses.json`);
      const t2 = fixtureJson<number[]>('prototypes', `single-t2-${method}-losses.json`);
      expectLossesMatch(
        steps.map((e) => e.loss),
        t1,
        t2,
        2,
        3,
      ); // SwAV: exp(score / 0.05) amplifies float drift (LibTorch 2.6: 2.6× at step 4)
      await expectStateMatches(r.checkpoint, method, 'single');
      const one = await train(config(method, join(work, `single1-${method}`), { maxSteps: 1 }));
      await expectStateMatches(one.checkpoint, method, 'single1', 1e-4);
      expect(Object.keys(steps[0]!.terms)).toEqual([method]);
    });
  }

  it('the epoch schedules have teeth: DINO without the frozen last layer, SwAV with its queue never joining, leave the reference', async () => {
    const dino = await train(
      config('dino', join(work, 'teeth-dino'), { maxSteps: 1, loss: { ...(methodPart('dino', true).loss as object), freezeLastLayerEpochs: 0 } }),
    );
    const rows = await stateErrors(dino.checkpoint, 'dino', 'single1', 1e-4);
    expect(rows.find((x) => x.name === 'head.last_layer.weight_v')!.ours).toBeGreaterThan(0.5);
    const steps: StepEvent[] = [];
    await train(config('swav', join(work, 'teeth-swav'), { loss: { ...(methodPart('swav', true).loss as object), queueStartEpoch: 5 } }), {
      onProgress: (e) => e.type === 'step' && steps.push(e),
    });
    const t1 = fixtureJson<number[]>('prototypes', 'single-t1-swav-losses.json');
    expect(relDev(steps[4]!.loss, t1[4]!)).toBeGreaterThan(1e-3); // epoch 1: the reference's assignments see the queue
    expect(relDev(steps[3]!.loss, t1[3]!)).toBeLessThan(1e-2); // epoch 0: the same run
  });

  it('resume mid-run (at the epoch the schedules change) ends with the uninterrupted run’s weights and buffers', async () => {
    for (const method of ['dino', 'swav', 'nnclr'] as const) {
      const firstDir = join(work, `first-${method}`);
      const first = await train(config(method, firstDir, { maxSteps: 4, checkpoint: { dir: firstDir, every: 1 } }));
      expect(first.globalStep).toBe(4);
      const resumed = await train(config(method, join(work, `resumed-${method}`), { resume: first.checkpoint }));
      expect(resumed.globalStep).toBe(8);
      const names = [...meta().parameters[method], ...floatBuffers(method)];
      const a = await stateDictFloats(runs.get(method)!.checkpoint, names);
      const b = await stateDictFloats(resumed.checkpoint, names);
      for (const n of names) expect(relError(b.get(n)!, a.get(n)!, 1e-6), `${method} ${n}`).toBeLessThan(1e-4);
    }
  });
});

describe('data-parallel DINO (centre all-reduced) and SwAV (Sinkhorn across ranks) equal PyTorch DDP (2 processes, gloo)', () => {
  for (const method of ['dino', 'swav'] as const) {
    it(`${method}: per-step losses of rank 0, and weights and centre after 2 epochs`, () => {
      const dir = join(work, `ddp-${method}`);
      const path = join(work, `ddp-${method}.json`);
      writeFileSync(
        path,
        JSON.stringify(config(method, dir, { batchSize: meta().localBatch, resume: fixturePath('prototypes', `init-${method}-ddp.ckpt`) }, false)),
      );
      const r = spawnSync(process.execPath, [cli, 'train', '--config', path, '--nproc', '2', '--json'], { encoding: 'utf8', timeout: 240_000 });
      expect(r.status, r.stderr).toBe(0);
      const result = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { globalStep: number; worldSize: number; checkpoint: string };
      expect(result.worldSize).toBe(2);
      expect(result.globalStep).toBe(4);
      const [head, ...rows] = readFileSync(join(dir, 'metrics.csv'), 'utf8').trim().split('\n');
      const cols = head!.split(',');
      const loss = cols.indexOf('train/loss');
      const stepMs = cols.indexOf('perf/step_ms');
      const ours = rows
        .map((x) => x.split(','))
        .filter((f) => f[stepMs] !== '' && f[loss] !== '')
        .map((f) => Number(f[loss]));
      const t1 = fixtureJson<number[]>('prototypes', `ddp-t1-${method}-losses-rank0.json`);
      const t2 = fixtureJson<number[]>('prototypes', `ddp-t2-${method}-losses-rank0.json`);
      expectLossesMatch(ours, t1, t2, 2, 3);
      return expectStateMatches(result.checkpoint, method, 'ddp', 3e-3, fixturePath('prototypes', `init-${method}-ddp.ckpt`));
    });
  }
  it('the references differ between ranks, so the cross-rank sums are exercised', () => {
    for (const method of ['dino', 'swav']) {
      const r0 = fixtureJson<number[]>('prototypes', `ddp-t1-${method}-losses-rank0.json`);
      const r1 = fixtureJson<number[]>('prototypes', `ddp-t1-${method}-losses-rank1.json`);
      expect(r0[1]).not.toBe(r1[1]);
    }
  });
});

describe('DINO, SwAV, NNCLR: checkpoints and loading', () => {
  it('write solo-learn’s module names; loadCheckpoint gives the backbone (and NNCLR’s projector with its final affine BatchNorm)', async () => {
    const prefixes = async (p: string) => [...new Set([...(await stateDictFloats(p)).keys()].map((k) => (k.includes('.') ? k.slice(0, k.indexOf('.')) : k)))];
    expect(await prefixes(runs.get('dino')!.checkpoint)).toEqual(['backbone', 'momentum_backbone', 'head', 'momentum_head', 'dino_loss_func']);
    expect(await prefixes(runs.get('swav')!.checkpoint)).toEqual(['backbone', 'projector', 'prototypes', 'queue']);
    expect(await prefixes(runs.get('nnclr')!.checkpoint)).toEqual(['backbone', 'projector', 'predictor', 'queue']);
    const sd = await stateDictFloats(runs.get('dino')!.checkpoint);
    expect(sd.has('head.last_layer.weight_g') && sd.has('head.last_layer.weight_v') && sd.has('momentum_head.mlp.4.weight')).toBe(true);
    for (const method of ['dino', 'swav'] as const) {
      const loaded = await loadCheckpoint(runs.get(method)!.checkpoint, { heads: false });
      try {
        expect([...(loaded.backbone.stateDict()['conv1.weight']!.toTypedArray() as Float32Array)]).toEqual([
          ...(await stateDictFloats(runs.get(method)!.checkpoint, ['backbone.conv1.weight'])).get('backbone.conv1.weight')!,
        ]);
      } finally {
        loaded.dispose();
      }
    }
    const nn = await loadCheckpoint(runs.get('nnclr')!.checkpoint);
    try {
      expect(nn.projector?.outputDim).toBe(meta().nnclr.out);
    } finally {
      nn.dispose();
    }
    for (const method of ['dino', 'swav', 'nnclr'] as const) expect((await inspectCheckpoint(runs.get(method)!.checkpoint)).method).toBe(method);
  });

  it('NNCLR’s queue pointer and labels advance by whole batches (8 steps of 16 wrap a queue of 32)', async () => {
    const { readTorchFile, tensorMap } = await import('../lib/checkpoint/index.js');
    const f = await readTorchFile(runs.get('nnclr')!.checkpoint);
    try {
      const sd = tensorMap((f.root as Map<string, unknown>).get('state_dict') as never)!;
      expect(Number((await sd.get('queue_ptr')!.read())[0])).toBe((8 * meta().batch) % meta().nnclr.queueSize!);
      expect([...(await sd.get('queue_y')!.read())].every((v) => Number(v) === -1)).toBe(true); // no labels in this run
    } finally {
      await f.close();
    }
  });

  it('the checkpoint size estimate covers the prototypes, queues and centre (from above, within 5 %)', async () => {
    for (const method of ['dino', 'swav', 'nnclr'] as const) {
      const actual = statSync(runs.get(method)!.checkpoint).size;
      const est = estimateCheckpointBytes(resolveTrainConfig(config(method, work)), 0);
      expect(est, method).toBeGreaterThanOrEqual(actual);
      expect(est / actual, method).toBeLessThan(1.05);
    }
  });

  it('a resume file without the queue is an error naming it, before any step', async () => {
    const bad = join(work, 'bad-resume');
    await train(config('swav', bad, { maxSteps: 1, resume: undefined, loss: { ...(methodPart('swav', true).loss as object), queueSize: 0 } }));
    const ckpt = join(
      bad,
      (await import('node:fs')).readdirSync(bad).find((f) => f.endsWith('.ckpt'))!,
    );
    await expectError(train(config('swav', join(work, 'bad2'), { resume: ckpt })), 'ERR_CHECKPOINT_FORMAT', 'queue', 'swav');
  });
});

describe('DINO, SwAV, NNCLR: the config is strict', () => {
  const base = { data: { train: 'x.npy' } };
  it('solo-learn’s CIFAR defaults', () => {
    const d = resolveTrainConfig({ ...base, method: 'dino' });
    expect(d.projectorResolved).toMatchObject({ hiddenDims: [2048, 2048], outputDim: 256, batchNorm: false, activation: 'gelu' });
    expect(d.loss).toMatchObject({
      numPrototypes: 4096,
      normLastLayer: 1,
      studentTemperature: 0.1,
      teacherTemperature: 0.07,
      warmupTeacherTemperature: 0.04,
      freezeLastLayerEpochs: 1,
      clipGrad: 0,
    });
    expect(d.momentum).toEqual({ baseTau: 0.9995, finalTau: 1 });
    expect(d.optimizer).toMatchObject({ name: 'lars', lr: 0.3, weightDecay: 1e-6, classifierLr: 0.1 });
    const s = resolveTrainConfig({ ...base, method: 'swav' });
    expect(s.projectorResolved).toMatchObject({ hiddenDims: [2048], outputDim: 128, batchNorm: true });
    expect(s.loss).toEqual({
      numPrototypes: 3000,
      temperature: 0.1,
      sinkhornIterations: 3,
      sinkhornEpsilon: 0.05,
      queueSize: 3840,
      queueStartEpoch: 50,
      freezePrototypesEpochs: 2,
    });
    expect(s.optimizer).toMatchObject({ lr: 0.6, weightDecay: 1e-6 });
    const n = resolveTrainConfig({ ...base, method: 'nnclr', batchSize: 256 });
    expect(n.projectorResolved).toMatchObject({ hiddenDims: [2048, 2048], outputDim: 256, outputBatchNorm: true, outputBatchNormAffine: true });
    expect(n.predictorResolved).toMatchObject({ hiddenDims: [4096], outputDim: 256 });
    expect(n.loss).toEqual({ temperature: 0.2, queueSize: 65536 });
    expect(n.optimizer).toMatchObject({ lr: 0.4, weightDecay: 1e-5 });
  });
  it('multi-crop: pipelines with crops give that many views; the large crops first; methods without multi-crop refuse sizes that differ', () => {
    const mc = resolveTrainConfig({ ...base, method: 'dino', augmentation: 'dino-multicrop-cifar' });
    expect(mc.numViews).toBe(8);
    expect(mc.resolvedViews.map((v) => v.size)).toEqual([32, 32, 16, 16, 16, 16, 16, 16]);
    expect(() => resolveTrainConfig({ ...base, method: 'vicreg', augmentation: 'dino-multicrop-cifar' })).toThrow(
      /method vicreg takes exactly 2 views|vicreg uses exactly 2 views/,
    );
    expect(() => resolveTrainConfig({ ...base, method: 'simclr', augmentation: 'dino-multicrop-cifar' })).toThrow(
      /method simclr takes views of one size, got sizes 32, 32, 16.*multi-crop: dino, swav/,
    );
    expect(() =>
      resolveTrainConfig({
        ...base,
        method: 'swav',
        augmentation: [
          { size: 16, crops: 2 },
          { size: 32, crops: 2 },
        ],
      }),
    ).toThrow(/two large crops first.*view 2 has size 32/);
    expect(() =>
      resolveTrainConfig({
        ...base,
        method: 'swav',
        augmentation: [
          { size: 32, crops: 2 },
          { size: 16, crops: 2 },
        ],
        views: 3,
      }),
    ).toThrow(/config\.views: 3 given, but the crops of config\.augmentation add up to 4/);
  });
  it('options are checked by kind and bound, and NNCLR’s queue must take whole batches', () => {
    expect(() => resolveTrainConfig({ ...base, method: 'dino', loss: { normLastLayer: 'yes' } })).toThrow(/config\.loss\.normLastLayer/);
    expect(resolveTrainConfig({ ...base, method: 'dino', loss: { normLastLayer: false } }).loss.normLastLayer).toBe(0);
    expect(() => resolveTrainConfig({ ...base, method: 'swav', loss: { numPrototypes: 2.5 } })).toThrow(/config\.loss\.numPrototypes/);
    expect(() => resolveTrainConfig({ ...base, method: 'swav', loss: { sinkhornIteration: 3 } })).toThrow(
      /method swav has no loss option sinkhornIteration; did you mean sinkhornIterations\?/,
    );
    expect(() => resolveTrainConfig({ ...base, method: 'nnclr', batchSize: 100 })).toThrow(
      /config\.loss\.queueSize 65536 must be a multiple of config\.batchSize 100/,
    );
    expect(() => resolveTrainConfig({ ...base, method: 'dino', predictor: { hiddenDims: [8] } })).toThrow(/config\.predictor: method dino has no predictor/);
  });
});
