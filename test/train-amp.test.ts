import './helpers/direct-conv.js'; // before anything loads the addon: PyTorch's direct convolutions
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readTorchFile } from '../lib/checkpoint/index.js';
import { train, type StepEvent } from '../lib/train.js';
import { digitsSubset } from './helpers/datasets.js';
import { fixtureArray, fixtureJson, fixturePath, relError } from './helpers/fixtures.js';
import { stateDictFloats } from './helpers/checkpoints.js';
import { makeTmpDir } from './helpers/tmp.js';
import { trainStepConfig } from './helpers/train-step.js';

const work = makeTmpDir('amp');

const params = stateDictFloats;

// scripts/fixtures/train_step.py: the same VICReg step in PyTorch, float32 and under torch.autocast('cpu', bf16).
const stepConfig = (dir: string, precision: '32' | 'bf16-mixed', extra: Record<string, unknown> = {}) =>
  trainStepConfig(dir, precision, { logEvery: 1, ...extra });

// The grad-scaler tests compare our bf16 steps with each other, not with PyTorch: a quarter of the batch at
// 16×16 keeps them to seconds on CPUs that emulate bf16 (AVX2 only), where the full step takes minutes.
const small = {
  batchSize: 16,
  maxSteps: 1,
  augmentation: stepConfig('', '32').augmentation.map((v) => ({ ...v, size: 16 })),
};

describe('mixed precision training', () => {
  const ref = fixtureJson<{ fp32: number; fp32_16: number; bf16_16: number; probes: string[] }>('train_step', 'losses.json');

  async function ourStep(precision: '32' | 'bf16-mixed', extra: Record<string, unknown> = {}) {
    const steps: StepEvent[] = [];
    const r = await train(stepConfig(join(work, `${precision}-${Object.keys(extra).join('-')}`), precision, extra), {
      onProgress: (e) => e.type === 'step' && steps.push(e),
    });
    const init = await params(fixturePath('train_step', 'init.ckpt'), ref.probes);
    const after = await params(r.checkpoint, ref.probes);
    const deltas = new Map<string, Float32Array>();
    for (const n of ref.probes)
      deltas.set(
        n,
        after.get(n)!.map((v, i) => v - init.get(n)![i]!),
      );
    return { r, steps, deltas };
  }
  async function refDelta(mode: 'fp32' | 'fp32_16' | 'bf16_16', name: string) {
    return (await fixtureArray('train_step', mode, name)).data;
  }

  it("a float32 trainer step equals PyTorch's step (forward, VICReg, backward, LARS)", async () => {
    const { r, deltas } = await ourStep('32');
    expect(r.globalStep).toBe(1);
    expect(Math.abs(r.lastLoss - ref.fp32) / ref.fp32).toBeLessThan(1e-5);
    // The floor: projector.3.bias's update is zero up to rounding (VICReg is invariant to a shift of z).
    for (const n of ref.probes) expect(relError(deltas.get(n)!, await refDelta('fp32', n), 1e-5), n).toBeLessThan(2e-3);
  });

  // On the fixture's 16 images at 16×16 (the same initial model): bf16 emulated in software (AVX2-only CPUs)
  // takes ~90 s for the 64 × 32×32 step and seconds for this one.
  it('bf16-mixed runs the model under CPU autocast exactly as torch.autocast does, not in float32', async () => {
    const { r, deltas } = await ourStep('bf16-mixed', { ...small, data: { train: fixturePath('train_step', 'images16.npy'), shuffle: false } });
    expect(Math.abs(r.lastLoss - ref.bf16_16) / ref.bf16_16).toBeLessThan(1e-5);
    for (const n of ref.probes) {
      // The floor: projector.3.bias's update is rounding only (VICReg is invariant to a shift of z: 7e-5 here,
      // the other updates 3e-3 and more).
      const vsBf16 = relError(deltas.get(n)!, await refDelta('bf16_16', n), 1e-3);
      expect(vsBf16, n).toBeLessThan(1e-2);
      // bf16 moves these updates far from float32's: a float32 run could not pass the line above.
      if (n.startsWith('backbone.') && n.endsWith('.weight')) expect(relError(deltas.get(n)!, await refDelta('fp32_16', n)), n).toBeGreaterThan(0.1);
    }
  });

  it('a grad scaler (power-of-two scale) leaves the update unchanged, reports the scale and saves it for resume', async () => {
    const plain = await ourStep('bf16-mixed', small);
    const scaled = await ourStep('bf16-mixed', { ...small, gradScaler: { enabled: true, initScale: 1024, growthInterval: 1 } });
    expect(scaled.r.skippedSteps).toBe(0);
    for (const n of ref.probes) expect(relError(scaled.deltas.get(n)!, plain.deltas.get(n)!), n).toBeLessThan(1e-5);
    expect(scaled.steps[0]!.gradScale).toBe(2048); // grown after one good step (growthInterval 1)
    const f = await readTorchFile(scaled.r.checkpoint);
    try {
      const amp = (f.root as Map<string, unknown>).get('native_amp_scaling_state') as Map<string, unknown>;
      expect(amp.get('scale')).toBe(2048);
      expect(Number(amp.get('_growth_tracker'))).toBe(0);
    } finally {
      await f.close();
    }
    // Resuming continues from the saved scale (2048 → 4096 after the next good step), not from initScale.
    const next: StepEvent[] = [];
    const cfg = stepConfig(join(work, 'amp-resume'), 'bf16-mixed', {
      ...small,
      maxSteps: 1,
      gradScaler: { enabled: true, initScale: 1024, growthInterval: 1 },
      resume: scaled.r.checkpoint,
    });
    await train(cfg, { onProgress: (e) => e.type === 'step' && next.push(e) });
    expect(next.map((e) => e.gradScale)).toEqual([4096]);
  });

  it('skips the optimizer step and backs the scale off when scaled gradients overflow', async () => {
    // Loss weights ×100 make the largest gradient ≈ 200 (PyTorch: 2.26 at weight 1), so ×2^127 overflows float32.
    const { r, steps, deltas } = await ourStep('bf16-mixed', {
      ...small,
      gradScaler: { enabled: true, initScale: 2 ** 127 },
      loss: { simWeight: 2500, varWeight: 2500, covWeight: 100 },
    });
    expect(r.skippedSteps).toBe(1);
    expect(steps[0]!.skippedSteps).toBe(1);
    expect(steps[0]!.gradScale).toBe(2 ** 126);
    for (const n of ref.probes)
      expect(
        deltas.get(n)!.every((v) => v === 0),
        n,
      ).toBe(true);
  });

  it('refuses 16-mixed on CPU and unknown precisions, naming the field', async () => {
    const data = await digitsSubset(work, 16);
    await expect(train({ method: 'vicreg', data: { train: data }, precision: '16-mixed' })).rejects.toMatchObject({
      code: 'ERR_CONFIG',
      message: expect.stringContaining('config.precision'),
    });
    await expect(train({ method: 'vicreg', data: { train: data }, precision: 'fp8' })).rejects.toMatchObject({
      code: 'ERR_CONFIG',
      message: expect.stringContaining('config.precision'),
    });
    await expect(train({ method: 'vicreg', data: { train: data }, gradScaler: { backoffFactor: 2 } })).rejects.toMatchObject({
      code: 'ERR_CONFIG',
      message: expect.stringContaining('config.gradScaler.backoffFactor'),
    });
  });
});
