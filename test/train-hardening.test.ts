// Runs that cannot be lost: stale temporaries of killed runs are cleaned, a checkpoint that cannot be written
// stops the run at once, and the disk space a checkpoint needs is known before step one.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { checkDiskSpace, estimateCheckpointBytes, train, resolveTrainConfig, type StepEvent } from '../lib/train.js';
import { TorchSslError } from '../lib/errors.js';
import { digitsSubset } from './helpers/datasets.js';
import { makeTmpDir } from './helpers/tmp.js';

const work = makeTmpDir('hard');
let data: string;
beforeAll(async () => {
  data = await digitsSubset(work, 32);
});

const tiny = (dir: string, extra: Record<string, unknown> = {}) => ({
  method: 'vicreg' as const,
  data: { train: data },
  projector: { hiddenDims: [64], outputDim: 32 },
  augmentation: [{ size: 16 }],
  batchSize: 8,
  epochs: 1,
  checkpoint: { dir, name: 'run' },
  seed: 3,
  ...extra,
});

describe('train() keeps runs safe', () => {
  it("removes the temporaries a killed run left (its process is gone) and keeps a live writer's", async () => {
    const dir = join(work, 'stale');
    mkdirSync(dir, { recursive: true });
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!; // exited: its pid names no process now
    const stale = [`.run-ep=1.ckpt.tmp-${dead}-0123abcd`, `.f.npy.${dead}.89abcdef.tmp`, `args.json.tmp-${dead}`];
    const live = `.run-ep=1.ckpt.tmp-${process.pid}-0123abcd`;
    for (const f of [...stale, live, 'notes.txt']) writeFileSync(join(dir, f), 'x');
    const r = await train(tiny(dir, { maxSteps: 1 }));
    expect(r.removedTemporaries.sort()).toEqual(stale.sort());
    const left = readdirSync(dir);
    for (const f of stale) expect(left).not.toContain(f);
    expect(left).toContain(live);
    expect(left).toContain('notes.txt');
  }, 120_000);

  it('a checkpoint that cannot be written stops the run at once with ERR_IO naming the epoch', async () => {
    const dir = join(work, 'blocked');
    mkdirSync(join(dir, 'run-ep=1.ckpt'), { recursive: true }); // a directory where epoch 1's file must go
    const steps: StepEvent[] = [];
    const err = await train(tiny(dir, { epochs: 20, checkpoint: { dir, name: 'run', every: 1 }, logEvery: 1 }), {
      onProgress: (e) => e.type === 'step' && steps.push(e),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TorchSslError);
    expect((err as TorchSslError).code).toBe('ERR_IO');
    expect((err as Error).message).toContain('checkpoint of epoch 1 could not be written, training stopped');
    expect(steps.length).toBeLessThan(20 * 4); // 4 steps per epoch: it did not train all 20 epochs first
    expect(readdirSync(dir).filter((f) => f.includes('.tmp'))).toEqual([]);
  }, 180_000);

  it("estimates a checkpoint's size from above within 5 % and refuses to start without that much space", async () => {
    const dir = join(work, 'size');
    const r = await train(tiny(dir, { maxSteps: 2 }));
    const actual = statSync(r.checkpoint).size;
    const c = resolveTrainConfig(tiny(dir));
    const est = estimateCheckpointBytes(c, 10);
    expect(est).toBeGreaterThanOrEqual(actual);
    expect(est / actual).toBeLessThan(1.05);
    const e = await checkDiskSpace(dir, 2 ** 60).catch((x: unknown) => x);
    expect((e as TorchSslError).code).toBe('ERR_IO');
    expect((e as Error).message).toMatch(/MiB free, a checkpoint of this model needs about \d+ MiB/);
    expect(existsSync(r.checkpoint)).toBe(true);
    // train() itself asks before it starts: a projector whose checkpoint (~35 TB) no disk holds is refused
    // before a model is built or a file written (the space check comes before args.json).
    const huge = join(work, 'huge');
    const t0 = performance.now();
    const h = (await train(tiny(huge, { projector: { hiddenDims: [2 ** 21], outputDim: 2 ** 21 } })).catch((x: unknown) => x)) as TorchSslError;
    expect(h).toBeInstanceOf(TorchSslError);
    expect(h.code).toBe('ERR_IO');
    expect(h.message).toMatch(new RegExp(`${huge.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}.* MiB free, a checkpoint of this model needs about \\d+ MiB`));
    expect(performance.now() - t0).toBeLessThan(20_000);
    expect(readdirSync(huge)).toEqual([]);
  }, 120_000);

  it('resume refuses a checkpoint this trainer did not write, or of another method, and says what is missing', async () => {
    const { exportCheckpoint } = await import('../lib/checkpoint/export.js');
    const { resnet } = await import('../lib/models.js');
    const net = resnet({ depth: 18, stem: 'cifar' });
    const pth = join(work, 'someone-else.pth');
    await exportCheckpoint(pth, net);
    net.dispose();
    let e = (await train(tiny(join(work, 'r1'), { resume: pth })).catch((x: unknown) => x)) as TorchSslError;
    expect(e.code).toBe('ERR_CHECKPOINT_FORMAT');
    expect(e.message).toContain(`config.resume ${pth} is not a training checkpoint of torch-ssl train`);
    expect(e.message).toContain('projector weights');
    expect(e.message).toContain('use backbone.init instead');
    const first = await train(tiny(join(work, 'r2'), { maxSteps: 1 }));
    e = (await train(tiny(join(work, 'r3'), { method: 'simclr', resume: first.checkpoint })).catch((x: unknown) => x)) as TorchSslError;
    expect(e.code).toBe('ERR_CONFIG');
    expect(e.message).toContain('was trained with method vicreg, but config.method is simclr');
    e = (await train(tiny(join(work, 'r4'), { resume: first.checkpoint, backbone: { init: pth } })).catch((x: unknown) => x)) as TorchSslError;
    expect(e.message).toContain('give one of them');
  }, 120_000);

  it("backbone.init starts a new run from another checkpoint's backbone (weights equal, epoch 0); a different depth is refused", async () => {
    const { exportCheckpoint } = await import('../lib/checkpoint/export.js');
    const { resnet } = await import('../lib/models.js');
    const { manualSeed } = await import('../lib/native.js');
    const { readTorchFile, tensorMap } = await import('../lib/checkpoint/index.js');
    const { dictGet } = await import('../lib/checkpoint/pyvalue.js');
    manualSeed(123);
    const net = resnet({ depth: 18, stem: 'cifar' });
    const want = net.stateDict()['layer3.1.conv2.weight']!.toTypedArray() as Float32Array;
    const pth = join(work, 'init.pth');
    await exportCheckpoint(pth, net);
    net.dispose();
    const knn: number[] = [];
    const r = await train(tiny(join(work, 'init'), { maxSteps: 1, optimizer: { lr: 1e-12 }, scheduler: { warmupEpochs: 0 }, backbone: { init: pth } }), {
      onProgress: (ev) => ev.type === 'knn' && knn.push(ev.epoch),
    });
    expect(r.globalStep).toBe(1);
    const f = await readTorchFile(r.checkpoint);
    try {
      const sd = tensorMap(dictGet(f.root as never, 'state_dict') as never)!;
      const got = (await sd.get('backbone.layer3.1.conv2.weight')!.read()) as Float32Array;
      let maxDiff = 0;
      for (let i = 0; i < want.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i]! - want[i]!));
      expect(maxDiff).toBeLessThan(1e-6);
    } finally {
      await f.close();
    }
    const e = (await train(tiny(join(work, 'init34'), { backbone: { depth: 34, init: pth } })).catch((x: unknown) => x)) as TorchSslError;
    expect(e.code).toBe('ERR_CONFIG');
    expect(e.message).toContain('holds a ResNet-18 (cifar stem), but config.backbone is ResNet-34 (cifar stem)');
  }, 120_000);

  it('a run on a custom .npy records dataset "custom" with the statistics it used (not "cifar10"), and loading uses them', async () => {
    const { readFileSync } = await import('node:fs');
    const { loadCheckpoint } = await import('../lib/checkpoint/load.js');
    const r = await train(tiny(join(work, 'custom'), { maxSteps: 1, data: { train: data, normalization: { mean: [0.1, 0.2, 0.3], std: [0.4, 0.5, 0.6] } } }));
    const args = JSON.parse(readFileSync(r.argsJson, 'utf8')) as { data: { dataset: string } };
    expect(args.data.dataset).toBe('custom');
    const ck = await loadCheckpoint(r.checkpoint);
    try {
      expect(ck.info.dataset).toBe('custom');
      expect(ck.info.normalization).toEqual({ mean: [0.1, 0.2, 0.3], std: [0.4, 0.5, 0.6] });
    } finally {
      ck.dispose();
    }
    const d = await train(tiny(join(work, 'custom2'), { maxSteps: 1 }));
    const ck2 = await loadCheckpoint(d.checkpoint);
    expect(ck2.info.dataset).toBe('custom');
    expect(ck2.info.normalization?.mean).toEqual([0.4914, 0.4822, 0.4465]); // the default it trained with
    ck2.dispose();
  }, 120_000);

  it('bf16-mixed on a CPU without native bf16 warns before training, with a measured slowdown; float32 does not', async () => {
    const before = process.env.TORCH_SSL_ASSUME_NO_BF16;
    process.env.TORCH_SSL_ASSUME_NO_BF16 = '1';
    try {
      const warnings: string[] = [];
      await train(tiny(join(work, 'bf16warn'), { maxSteps: 1, precision: 'bf16-mixed' }), {
        onProgress: (e) => e.type === 'warning' && warnings.push(e.message),
      });
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(
        /^precision 'bf16-mixed' on a CPU without native bf16 .* emulated, \d+\.\d× slower than float32 on a small matrix product measured now/,
      );
      const none: string[] = [];
      await train(tiny(join(work, 'f32nowarn'), { maxSteps: 1 }), { onProgress: (e) => e.type === 'warning' && none.push(e.message) });
      expect(none).toEqual([]);
    } finally {
      if (before === undefined) delete process.env.TORCH_SSL_ASSUME_NO_BF16;
      else process.env.TORCH_SSL_ASSUME_NO_BF16 = before;
    }
  }, 120_000);

  it("an epoch event's loss is the mean over the epoch's steps (as Lightning's train_loss_epoch)", async () => {
    const steps: StepEvent[] = [];
    const epochs: number[] = [];
    await train(tiny(join(work, 'epochmean'), { epochs: 2, logEvery: 1, checkpoint: { dir: join(work, 'epochmean'), every: 0 } }), {
      onProgress: (e) => {
        if (e.type === 'step') steps.push(e);
        if (e.type === 'epoch') epochs.push(e.loss);
      },
    });
    expect(steps).toHaveLength(8); // 32 images / batch 8, 2 epochs
    const mean = (xs: StepEvent[]) => xs.reduce((a, e) => a + e.loss, 0) / xs.length;
    expect(epochs[0]).toBeCloseTo(mean(steps.slice(0, 4)), 9);
    expect(epochs[1]).toBeCloseTo(mean(steps.slice(4)), 9);
    expect(epochs[1]).not.toBeCloseTo(steps[7]!.loss, 9);
  }, 120_000);
});
