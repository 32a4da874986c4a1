import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { beforeAll, describe, expect, it } from 'vitest';
import { train, resolveTrainConfig, type StepEvent } from '../lib/train.js';
import { readTorchFile } from '../lib/checkpoint/index.js';
import { digitsSubset } from './helpers/datasets.js';
import { fixtureJson } from './helpers/fixtures.js';
import { PYTHON } from './helpers/python.js';
import { makeTmpDir } from './helpers/tmp.js';

let data: string;
const work = makeTmpDir('train');
beforeAll(async () => {
  data = await digitsSubset(work, 32);
});

// A small but real run: ResNet-18 (CIFAR stem), 16×16 views of real digits, 2 steps per epoch.
const tiny = (dir: string, extra: Record<string, unknown> = {}) => ({
  method: 'vicreg' as const,
  data: { train: data },
  projector: { hiddenDims: [64], outputDim: 32 },
  augmentation: [{ size: 16 }],
  batchSize: 16,
  epochs: 2,
  logEvery: 1,
  scheduler: { warmupEpochs: 1 },
  optimizer: { lr: 0.05 },
  checkpoint: { dir },
  seed: 3,
  ...extra,
});

describe('train()', () => {
  it("resumes exactly: the losses after resuming equal an uninterrupted run's", async () => {
    const full: StepEvent[] = [];
    await train(tiny(join(work, 'full')), { onProgress: (e) => e.type === 'step' && full.push(e) });
    const first = await train(tiny(join(work, 'first'), { maxSteps: 2 }));
    expect(first.globalStep).toBe(2);
    expect(existsSync(first.checkpoint)).toBe(true);
    const resumed: StepEvent[] = [];
    await train(tiny(join(work, 'resumed'), { resume: first.checkpoint }), { onProgress: (e) => e.type === 'step' && resumed.push(e) });
    expect(full.map((e) => e.globalStep)).toEqual([1, 2, 3, 4]);
    expect(resumed.map((e) => e.globalStep)).toEqual([3, 4]);
    // The first resumed step is bit-identical; later ones agree to float32 rounding (restored tensors are
    // new allocations, so vectorised reductions may split differently).
    expect(resumed[0]!.loss).toBe(full[2]!.loss);
    resumed.forEach((e, i) => expect(Math.abs(e.loss - full[i + 2]!.loss) / Math.abs(full[i + 2]!.loss)).toBeLessThan(1e-5));
    expect(resumed.map((e) => e.lr)).toEqual(full.slice(2).map((e) => e.lr));
    for (const e of full) {
      expect(Number.isFinite(e.loss)).toBe(true);
      expect(Object.keys(e.terms).sort()).toEqual(['cov', 'sim', 'var']);
    }
  });

  it("warms up over a run shorter than its warm-up as solo-learn's scheduler does (total steps <= warm-up steps)", async () => {
    // 2 epochs of 2 steps with 3 warm-up epochs: 4 steps, all inside a 6-step warm-up (PyTorch's values in the fixture).
    const ref = fixtureJson<{ baseLr: number; warmupSteps: number; totalSteps: number; values: number[] }[]>('optim', 'schedules.json').find(
      (s) => s.baseLr === 0.05 && s.warmupSteps === 6 && s.totalSteps === 4,
    )!;
    const steps: StepEvent[] = [];
    await train(tiny(join(work, 'short-warmup'), { scheduler: { warmupEpochs: 3 }, checkpoint: { dir: join(work, 'short-warmup'), every: 0 } }), {
      onProgress: (e) => e.type === 'step' && steps.push(e),
    });
    expect(steps.map((e) => e.globalStep)).toEqual([1, 2, 3, 4]);
    steps.forEach((e, i) => expect(e.lr, `step ${i}`).toBeCloseTo(ref.values[i]!, 12));
  });

  it("writes solo-learn's checkpoint layout that Python torch.load reads", async () => {
    const r = await train(tiny(join(work, 'layout'), { epochs: 1 }));
    const script = [
      'import sys, json, torch',
      'ck = torch.load(sys.argv[1], map_location="cpu")',
      'sd = ck["state_dict"]',
      'print(json.dumps({"epoch": ck["epoch"], "step": ck["global_step"], "n": len(sd), "backbone": sum(k.startswith("backbone.") for k in sd),',
      '  "projector": sorted({k.split(".")[1] for k in sd if k.startswith("projector.")}), "classifier": sorted(k for k in sd if k.startswith("classifier.")),',
      '  "conv1": list(sd["backbone.conv1.weight"].shape), "momentum": len(ck["optimizer_states"][0]["state"]), "groups": [g["name"] for g in ck["optimizer_states"][0]["param_groups"]]}))',
    ].join('\n');
    const out = JSON.parse(execFileSync(PYTHON, ['-c', script, r.checkpoint], { encoding: 'utf8' }).trim().split('\n').pop()!);
    expect(out.epoch).toBe(1);
    expect(out.step).toBe(2);
    expect(out.backbone).toBe(120); // ResNet-18 without fc: 62 parameters + 58 BatchNorm buffers
    expect(out.projector).toEqual(['0', '1', '3']);
    expect(out.classifier).toEqual(['classifier.bias', 'classifier.weight']);
    expect(out.conv1).toEqual([64, 3, 3, 3]);
    expect(out.groups).toEqual(['backbone', 'projector', 'classifier']);
    expect(out.momentum).toBeGreaterThan(60);
    expect(existsSync(r.argsJson)).toBe(true);
  });

  // Timing on a shared machine: a retry absorbs a scheduler stall; code that blocks the loop fails every try.
  it('keeps the event loop responsive (max lag < 50 ms while steps run) and stops on AbortSignal with a checkpoint', { retry: 2 }, async () => {
    const h = monitorEventLoopDelay({ resolution: 5 });
    const ac = new AbortController();
    let steps = 0;
    // Measured while steps run (from the first step until the abort; loading the data and the addon
    // happens before).
    const r = await train(tiny(join(work, 'abort'), { epochs: 100, checkpoint: { dir: join(work, 'abort'), every: 0 } }), {
      signal: ac.signal,
      onProgress: (e) => {
        if (e.type !== 'step') return;
        if (++steps === 1) h.enable();
        if (steps === 6) {
          h.disable();
          ac.abort();
        }
      },
    });
    expect(r.aborted).toBe(true);
    expect(r.globalStep).toBeGreaterThanOrEqual(6);
    expect(r.globalStep).toBeLessThan(12);
    expect(r.checkpoint).toMatch(/aborted\.ckpt$/);
    const f = await readTorchFile(r.checkpoint);
    await f.close();
    console.log(`event-loop delay during training: p99 ${(h.percentile(99) / 1e6).toFixed(1)} ms, max ${(h.max / 1e6).toFixed(1)} ms`);
    expect(h.max / 1e6).toBeLessThan(50);
  });

  it('stays responsive while checkpoints (ResNet-18, ~90 MB with momentum) are written every epoch', { retry: 2 }, async () => {
    const h = monitorEventLoopDelay({ resolution: 5 });
    let steps = 0;
    // A checkpoint every 2 steps: the snapshot crosses into JS without a copy, the pickling, CRC and writes
    // are interleaved with the loop, and the training threads run below the JS thread's priority.
    await train(tiny(join(work, 'ckpt-lag'), { epochs: 3, checkpoint: { dir: join(work, 'ckpt-lag'), every: 1 } }), {
      onProgress: (e) => {
        if (e.type === 'step' && ++steps === 1) h.enable();
      },
    });
    h.disable();
    console.log(`event-loop delay with checkpoints: p99 ${(h.percentile(99) / 1e6).toFixed(1)} ms, max ${(h.max / 1e6).toFixed(1)} ms`);
    expect(h.max / 1e6).toBeLessThan(100);
  });

  it('validates the config and names the field at fault', async () => {
    expect(() => resolveTrainConfig({ method: 'vicreg', data: { train: 'x.npy' }, optimizer: { lr: -1 } })).toThrow(/config\.optimizer\.lr/);
    expect(() => resolveTrainConfig({ method: 'moco', data: { train: 'x.npy' } })).toThrow(/config\.method/);
    expect(() => resolveTrainConfig({ method: 'vicreg', data: { train: 'x.npy' }, views: 3 })).toThrow(/config\.views/);
    expect(() => resolveTrainConfig({ preset: 'nope', data: { train: 'x.npy' } })).toThrow(/config\.preset/);
    const c = resolveTrainConfig({ preset: 'bagssl-c1-cifar10', method: 'tcr', data: { train: 'x.npy' } });
    expect(c.backbone.depth).toBe(34);
    expect(c.batchSize).toBe(1024);
    expect(c.loss.lambda).toBe(30);
    expect(c.numViews).toBe(20);
    expect(c.projectorResolved).toEqual({
      hiddenDims: [4096],
      outputDim: 128,
      batchNorm: true,
      hiddenBias: true,
      outputBias: 'on',
      outputBatchNorm: false,
      outputBatchNormAffine: false,
      activation: 'relu',
    });
    await expect(train({ method: 'vicreg', data: { train: join(work, 'missing.npy') }, checkpoint: { dir: join(work, 'm') } })).rejects.toMatchObject({
      code: expect.stringMatching(/ERR_(IO|DATA_FORMAT)/),
    });
    await expect(train(tiny(join(work, 'big'), { batchSize: 64 }))).rejects.toMatchObject({ code: 'ERR_CONFIG' });
  });

  it('trains TCR (multi-patch, EMP-SSL-style patches), SimCLR with 3 views and Barlow Twins', async () => {
    // The preset itself: EMP-SSL's fixed-scale patches (area 0.25, ratio 1, bilinear), one pipeline for all views.
    const preset = resolveTrainConfig({ method: 'tcr', data: { train: 'x.npy' }, augmentation: 'emp-ssl-patches' });
    expect(preset.resolvedViews).toHaveLength(1);
    expect(preset.resolvedViews[0]).toMatchObject({ scale: [0.25, 0.25], ratio: [1, 1], interpolation: 'bilinear', solarize: 0.1 });
    expect(preset.concatViews).toBe(true);
    for (const [method, extra] of [
      ['tcr', { views: 4 }],
      ['simclr', { views: 3 }],
      ['barlow', {}],
    ] as const) {
      // Small views keep the test fast: the same kind of patches as the preset, at 16×16.
      const aug = method === 'tcr' ? [{ size: 16, scale: [0.25, 0.25], ratio: [1, 1], interpolation: 'bilinear' }] : [{ size: 16 }];
      const r = await train(tiny(join(work, method), { method, epochs: 1, ...extra, augmentation: aug }));
      expect(Number.isFinite(r.lastLoss)).toBe(true);
      expect(r.globalStep).toBe(2);
    }
  });
});
