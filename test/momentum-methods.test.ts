// BYOL, MoCo v3 and SimSiam (issue 25) against PyTorch references written like solo-learn's method classes
// (scripts/fixtures/momentum.py): the same initial student and teacher, deterministic views, each method's own
// optimizer and tau schedule. Per-step losses and, after 8 steps, every student and teacher parameter; a
// 2-process data-parallel run of BYOL and MoCo v3 against DistributedDataParallel; resume mid-run ends where the
// uninterrupted run ends; the checkpoint carries solo-learn's module names and loadCheckpoint gives the online
// backbone or, on request, the teacher.
import './helpers/direct-conv.js'; // before anything loads the addon: PyTorch's direct convolutions
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { estimateCheckpointBytes, train, type StepEvent } from '../lib/train.js';
import { loadCheckpoint } from '../lib/checkpoint/load.js';
import { inspectCheckpoint } from '../lib/checkpoint/index.js';
import { resolveTrainConfig } from '../lib/train-config.js';
import { fixtureArray, fixtureJson, fixturePath, relError } from './helpers/fixtures.js';
import { stateDictFloats } from './helpers/checkpoints.js';
import { expectError } from './helpers/errors.js';
import { expectLossesMatch } from './helpers/training.js';
import { REPO_ROOT } from './helpers/paths.js';
import { makeTmpDir } from './helpers/tmp.js';

const cli = resolve(REPO_ROOT, 'dist', 'cli', 'index.js');
const work = makeTmpDir('momentum');

type Name = 'byol' | 'mocov3' | 'simsiam';
interface Meta {
  images: number;
  batch: number;
  epochs: number;
  localBatch: number;
  projHidden: number;
  projOut: number;
  predHidden: number;
  baseTau: number;
  finalTau: number;
  eta: number;
  recipes: Record<Name, { lr: number; wd: number; optimizer: 'lars' | 'sgd'; temperature?: number }>;
  parameters: Record<Name, string[]>;
}
const meta = () => fixtureJson<Meta>('momentum', 'meta.json');

const view = (flip: number) => ({
  size: 16,
  scale: [1, 1],
  ratio: [1, 1],
  jitter: { p: 0, brightness: 0, contrast: 0, saturation: 0, hue: 0 },
  grayscale: 0,
  flip,
});

function config(method: Name, dir: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const m = meta();
  const r = m.recipes[method];
  return {
    method,
    data: { train: fixturePath('momentum', 'images.npy'), shuffle: false },
    projector: { hiddenDims: method === 'simsiam' ? [m.projHidden, m.projHidden] : [m.projHidden], outputDim: m.projOut },
    predictor: { hiddenDims: [m.predHidden] },
    ...(method !== 'simsiam' ? { momentum: { baseTau: m.baseTau, finalTau: m.finalTau } } : {}),
    ...(r.temperature !== undefined ? { loss: { temperature: r.temperature } } : {}),
    augmentation: [view(0), view(1)],
    batchSize: m.batch,
    epochs: m.epochs,
    scheduler: { warmupEpochs: 0 },
    optimizer: { lr: r.lr, weightDecay: r.wd, eta: m.eta },
    resume: fixturePath('momentum', `init-${method}.ckpt`),
    checkpoint: { dir, every: 0 },
    logEvery: 1,
    threads: 1,
    ...extra,
  };
}

/** Every parameter's update (final − initial) against PyTorch t1's, relative to its largest entry; the worst
 *  student and teacher parameter (error / its tolerance). */
async function weightErrors(ckpt: string, method: Name, tag: 'single' | 'single1' | 'ddp', floor = 3e-3) {
  const names = meta().parameters[method];
  const init = await stateDictFloats(fixturePath('momentum', `init-${method}.ckpt`), names);
  const after = await stateDictFloats(ckpt, names);
  const rows: { name: string; ours: number; torch: number; tolerance: number }[] = [];
  for (const n of names) {
    const delta = async (threads: number) =>
      ((await fixtureArray('momentum', tag, `t${threads}`, method, n)).data as Float32Array).map((v, i) => v - init.get(n)![i]!);
    const ref = await delta(1);
    const ours = relError(
      after.get(n)!.map((v, i) => v - init.get(n)![i]!),
      ref,
      1e-6,
    );
    const torch = relError(await delta(2), ref, 1e-6);
    rows.push({ name: n, ours, torch, tolerance: Math.max(floor, 2 * torch) });
  }
  return rows;
}
async function expectWeightsMatch(ckpt: string, method: Name, tag: 'single' | 'single1' | 'ddp', floor = 3e-3) {
  const rows = await weightErrors(ckpt, method, tag, floor);
  for (const r of rows) expect(r.ours, `${r.name} (PyTorch t2 vs t1: ${r.torch.toExponential(1)})`).toBeLessThanOrEqual(r.tolerance);
  const worst = (teacher: boolean) =>
    rows
      .filter((r) => r.name.startsWith('momentum_') === teacher)
      .reduce((a, b) => (b.ours / b.tolerance > a.ours / a.tolerance ? b : a), { name: '-', ours: 0, torch: 0, tolerance: 1 });
  if (method !== 'simsiam') expect(rows.filter((r) => r.name.startsWith('momentum_')).length).toBeGreaterThan(60); // the teacher is compared too
  const fmt = (r: { name: string; ours: number; torch: number }) => `${r.name} ${r.ours.toExponential(2)} (PyTorch t2 vs t1 ${r.torch.toExponential(2)})`;
  console.log(`${tag} ${method}: worst student ${fmt(worst(false))}; worst teacher ${fmt(worst(true))}`);
}

describe('BYOL, MoCo v3, SimSiam equal solo-learn-style PyTorch references (one process)', () => {
  for (const method of ['byol', 'mocov3', 'simsiam'] as const) {
    it(`${method}: per-step losses, and student and teacher weights after 8 steps`, async () => {
      const dir = join(work, `single-${method}`);
      const steps: StepEvent[] = [];
      const r = await train(config(method, dir), { onProgress: (e) => e.type === 'step' && steps.push(e) });
      expect(r.globalStep).toBe(8);
      const t1 = fixtureJson<number[]>('momentum', `single-t1-${method}-losses.json`);
      const t2 = fixtureJson<number[]>('momentum', `single-t2-${method}-losses.json`);
      expectLossesMatch(
        steps.map((e) => e.loss),
        t1,
        t2,
        2,
      );
      await expectWeightsMatch(r.checkpoint, method, 'single');
      // After the first update, where PyTorch agrees with itself closely, the comparison is tight: the student's
      // update, and the teacher's (EMA with tau(0) = baseTau towards the updated student).
      const one = await train(config(method, join(work, `single1-${method}`), { maxSteps: 1 }));
      await expectWeightsMatch(one.checkpoint, method, 'single1', 1e-4);
      // The logged term is the method's own.
      expect(Object.keys(steps[0]!.terms)).toEqual([{ byol: 'byol', mocov3: 'contrastive', simsiam: 'neg_cos_sim' }[method]]);
    });
  }

  it('the comparison has teeth: BYOL with tau starting at 0.95 instead of 0.9 leaves the teacher outside the tolerance', async () => {
    const dir = join(work, 'teeth');
    const r = await train(config('byol', dir, { momentum: { baseTau: 0.95, finalTau: 1 } }));
    const rows = await weightErrors(r.checkpoint, 'byol', 'single');
    expect(rows.filter((x) => x.name.startsWith('momentum_') && x.ours > x.tolerance).length).toBeGreaterThan(30);
  });

  it('SimSiam: the predictor keeps its base lr while the schedule anneals the rest (solo-learn static_lr)', async () => {
    const dir = join(work, 'simsiam-lr');
    const r = await train(config('simsiam', dir, { maxSteps: 3 }));
    const { root } = await readRoot(r.checkpoint);
    const groups = (root.optimizer_states as { param_groups: { name: string; lr: number }[] }[])[0]!.param_groups;
    const lr = Object.fromEntries(groups.map((g) => [g.name, g.lr]));
    expect(lr.predictor).toBe(meta().recipes.simsiam.lr);
    expect(lr.backbone).toBeLessThan(meta().recipes.simsiam.lr);
    expect(lr.projector).toBe(lr.backbone);
  });
});

async function readRoot(path: string): Promise<{ root: Record<string, unknown> }> {
  const { readTorchFile, toPlain } = await import('../lib/checkpoint/index.js');
  const f = await readTorchFile(path);
  try {
    return { root: toPlain(f.root as never) as Record<string, unknown> };
  } finally {
    await f.close();
  }
}

describe('momentum methods: checkpoints, resume and loading', () => {
  it('resume mid-run ends with the uninterrupted run’s student and teacher (the tau schedule continues from the step)', async () => {
    const full = await train(config('byol', join(work, 'full')));
    const firstDir = join(work, 'first');
    const first = await train(config('byol', firstDir, { maxSteps: 4, checkpoint: { dir: firstDir, every: 1 } }));
    expect(first.globalStep).toBe(4);
    const resumed = await train(config('byol', join(work, 'resumed'), { resume: first.checkpoint }));
    expect(resumed.globalStep).toBe(8);
    const names = meta().parameters.byol;
    const a = await stateDictFloats(full.checkpoint, names);
    const b = await stateDictFloats(resumed.checkpoint, names);
    for (const n of names) expect(relError(b.get(n)!, a.get(n)!, 1e-6), n).toBeLessThan(1e-4);
  });

  it('backbone.init starts the teacher as a copy of the loaded backbone (solo-learn initialize_momentum_params)', async () => {
    const src = await train(config('mocov3', join(work, 'init-src'), { maxSteps: 2 }));
    const dir = join(work, 'init-byol');
    const { resume: _r, ...fresh } = config('byol', dir);
    const r = await train({ ...fresh, backbone: { init: src.checkpoint }, maxSteps: 1 });
    const before = await stateDictFloats(src.checkpoint, ['backbone.conv1.weight']);
    const after = await stateDictFloats(r.checkpoint, ['backbone.conv1.weight', 'momentum_backbone.conv1.weight']);
    // One EMA step with tau(0) = 0.9: teacher = 0.9·teacher₀ + 0.1·student₁, so teacher₀ = (teacher − 0.1·student₁) / 0.9.
    const t0 = after.get('momentum_backbone.conv1.weight')!.map((t, i) => (t - 0.1 * after.get('backbone.conv1.weight')![i]!) / 0.9);
    expect(relError(t0, before.get('backbone.conv1.weight')!)).toBeLessThan(1e-5);
  });

  it('the checkpoint size estimate covers predictor and teacher (from above, within 5 %)', async () => {
    const dir = join(work, 'size');
    const r = await train(config('byol', dir, { maxSteps: 1 }));
    const actual = statSync(r.checkpoint).size;
    const est = estimateCheckpointBytes(resolveTrainConfig(config('byol', dir)), 0);
    expect(est).toBeGreaterThanOrEqual(actual);
    expect(est / actual).toBeLessThan(1.05);
  });

  it('loadCheckpoint { teacher: true } on a file without a teacher, or a teacher that is not a boolean, is an error naming it', async () => {
    await expectError(
      loadCheckpoint(fixturePath('momentum', 'init-byol-noteacher.ckpt'), { teacher: true }),
      'ERR_CHECKPOINT_FORMAT',
      'init-byol-noteacher.ckpt',
      'no momentum_backbone',
    );
    await expectError(loadCheckpoint(fixturePath('momentum', 'init-byol.ckpt'), { teacher: 'yes' as never }), 'ERR_INVALID_ARG', 'teacher');
    await expectError(loadCheckpoint(fixturePath('momentum', 'init-byol.ckpt'), { teachr: true } as never), 'ERR_INVALID_ARG', 'teacher');
  });

  it('a resume file without the teacher is an error naming it, before any step', async () => {
    await expectError(
      train(config('byol', join(work, 'noteacher'), { resume: fixturePath('momentum', 'init-byol-noteacher.ckpt') })),
      'ERR_CHECKPOINT_FORMAT',
      'momentum_backbone',
      'momentum_projector',
      'byol',
    );
  });

  it('writes solo-learn’s module names; loadCheckpoint gives the online backbone, or the teacher on request; inspect names the method and modules', async () => {
    const dir = join(work, 'layout');
    const r = await train(config('mocov3', dir, { maxSteps: 2 }));
    const sd = await stateDictFloats(r.checkpoint);
    const prefixes = [...new Set([...sd.keys()].map((k) => k.slice(0, k.indexOf('.'))))];
    expect(prefixes).toEqual(['backbone', 'projector', 'predictor', 'momentum_backbone', 'momentum_projector']);
    // MoCo v3's heads: bias-free Linears and a final affine-free BatchNorm (running statistics only).
    expect(sd.has('projector.0.bias')).toBe(false);
    expect(sd.has('projector.4.running_mean')).toBe(true);
    expect(sd.has('projector.4.weight')).toBe(false);
    const online = await loadCheckpoint(r.checkpoint, { heads: false });
    const teacher = await loadCheckpoint(r.checkpoint, { heads: false, teacher: true });
    try {
      const w = online.backbone.stateDict()['conv1.weight']!.toTypedArray() as Float32Array;
      const t = teacher.backbone.stateDict()['conv1.weight']!.toTypedArray() as Float32Array;
      expect([...w]).toEqual([...sd.get('backbone.conv1.weight')!]);
      expect([...t]).toEqual([...sd.get('momentum_backbone.conv1.weight')!]);
      expect(relError(t, w)).toBeGreaterThan(0); // after 2 EMA steps the teacher is not the student
    } finally {
      online.dispose();
      teacher.dispose();
    }
    const info = await inspectCheckpoint(r.checkpoint);
    expect(info.method).toBe('mocov3');
    const cliOut = spawnSync(process.execPath, [cli, 'inspect', r.checkpoint], { encoding: 'utf8' });
    expect(cliOut.status, cliOut.stderr).toBe(0);
    expect(cliOut.stdout).toMatch(/mocov3/);
    expect(cliOut.stdout).toMatch(/momentum_backbone/);
    expect(cliOut.stdout).toMatch(/predictor/);
  });
});

describe('momentum methods: the config is strict', () => {
  const base = { data: { train: 'x.npy' } };
  it('solo-learn’s CIFAR defaults', () => {
    const b = resolveTrainConfig({ ...base, method: 'byol' });
    expect(b.projectorResolved).toMatchObject({ hiddenDims: [4096], outputDim: 256, batchNorm: true, hiddenBias: true, outputBias: 'on' });
    expect(b.predictorResolved).toMatchObject({ hiddenDims: [4096], outputDim: 256, batchNorm: true });
    expect(b.momentum).toEqual({ baseTau: 0.99, finalTau: 1 });
    expect(b.optimizer).toMatchObject({ name: 'lars', lr: 1, weightDecay: 1e-5, classifierLr: 0.1 });
    const m = resolveTrainConfig({ ...base, method: 'mocov3' });
    expect(m.loss).toEqual({ temperature: 0.2 });
    expect(m.projectorResolved).toMatchObject({ hiddenBias: false, outputBias: 'off', outputBatchNorm: true });
    expect(m.optimizer).toMatchObject({ lr: 0.3, weightDecay: 1e-6, classifierLr: 0.3 });
    const s = resolveTrainConfig({ ...base, method: 'simsiam' });
    expect(s.optimizer).toMatchObject({ name: 'sgd', lr: 0.5, weightDecay: 1e-5 });
    expect(s.projectorResolved).toMatchObject({ hiddenDims: [2048, 2048], outputDim: 2048, outputBias: 'frozen', outputBatchNorm: true });
    expect(s.predictorResolved).toMatchObject({ hiddenDims: [512], outputDim: 2048 });
    expect(s.momentum).toBeUndefined();
  });
  it('options the method does not have are ERR_CONFIG naming the method and its options', () => {
    expect(() => resolveTrainConfig({ ...base, method: 'vicreg', loss: { temperature: 0.5 } })).toThrow(
      /config\.loss\.temperature: method vicreg has no loss option temperature \(its options: simWeight, varWeight, covWeight\)/,
    );
    expect(() => resolveTrainConfig({ ...base, method: 'mocov3', loss: { temprature: 0.5 } })).toThrow(/did you mean temperature\?/);
    expect(() => resolveTrainConfig({ ...base, method: 'byol', loss: { temperature: 0.5 } })).toThrow(
      /method byol has no loss option temperature \(it has no loss options\)/,
    );
    expect(() => resolveTrainConfig({ ...base, method: 'simclr', momentum: { baseTau: 0.9 } })).toThrow(/config\.momentum: method simclr has no teacher/);
    expect(() => resolveTrainConfig({ ...base, method: 'vicreg', predictor: { hiddenDims: [8] } })).toThrow(
      /config\.predictor: method vicreg has no predictor/,
    );
    expect(() => resolveTrainConfig({ ...base, method: 'byol', momentum: { baseTau: 1, finalTau: 0.9 } })).toThrow(/baseTau 1 is above finalTau 0.9/);
    expect(() => resolveTrainConfig({ ...base, method: 'byol', views: 4 })).toThrow(/byol uses exactly 2 views/);
  });
});

describe('data-parallel BYOL and MoCo v3 equal PyTorch DDP (2 processes, gloo on loopback)', () => {
  for (const method of ['byol', 'mocov3'] as const) {
    it(`${method}: per-step losses of rank 0 and student and teacher weights after 2 epochs`, () => {
      const dir = join(work, `ddp-${method}`);
      const path = join(work, `ddp-${method}.json`);
      writeFileSync(path, JSON.stringify(config(method, dir, { batchSize: meta().localBatch, resume: fixturePath('momentum', `init-${method}-ddp.ckpt`) })));
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
      const t1 = fixtureJson<number[]>('momentum', `ddp-t1-${method}-losses-rank0.json`);
      const t2 = fixtureJson<number[]>('momentum', `ddp-t2-${method}-losses-rank0.json`);
      expectLossesMatch(ours, t1, t2, 2);
      return expectWeightsMatch(result.checkpoint, method, 'ddp');
    });
  }
  it('MoCo v3’s negatives span both ranks: the references differ between ranks (local queries, gathered keys)', () => {
    const r0 = fixtureJson<number[]>('momentum', 'ddp-t1-mocov3-losses-rank0.json');
    const r1 = fixtureJson<number[]>('momentum', 'ddp-t1-mocov3-losses-rank1.json');
    expect(r0[0]).not.toBe(r1[0]);
  });
});
