import { describe, expect, it } from 'vitest';
import { LARS, SGD, warmupCosine } from '../lib/optim.js';
import { Tensor } from '../lib/tensor.js';
import { fixtureArray, fixtureJson, relError } from './helpers/fixtures.js';

interface LarsCase {
  name: string;
  lr: number;
  weight_decay: number;
  eta: number;
  clip_lr: boolean;
  exclude_bias_n_norm: boolean;
  nesterov?: boolean;
  momentum?: number;
  schedule?: [number, number];
  keys: string[];
  steps: number;
  lrs: number[];
}
const cases = fixtureJson<LarsCase[]>('optim', 'lars-cases.json');

async function params(c: LarsCase) {
  const ps: Record<string, Tensor> = {};
  for (const k of c.keys) {
    const a = await fixtureArray('optim', 'lars', c.name, 'init', k);
    ps[k] = Tensor.from(a.data, a.shape, { requiresGrad: true });
  }
  return ps;
}
function makeLars(c: LarsCase, ps: Record<string, Tensor>) {
  return new LARS(Object.values(ps), {
    lr: c.lr,
    momentum: c.momentum ?? 0.9,
    weightDecay: c.weight_decay,
    eta: c.eta,
    clipLr: c.clip_lr,
    excludeBiasAndNorm: c.exclude_bias_n_norm,
    nesterov: c.nesterov ?? false,
  });
}
async function setGrads(c: LarsCase, ps: Record<string, Tensor>, step: number) {
  for (const k of c.keys) {
    const g = await fixtureArray('optim', 'lars', c.name, `step${step}`, 'grad', k);
    ps[k]!.grad = Tensor.from(g.data, g.shape);
  }
}

describe("LARS equals a PyTorch implementation of solo-learn's LARS", () => {
  for (const c of cases) {
    it(`${c.name}: ${c.steps} steps over 4-D, 2-D and 1-D parameters (incl. a zero gradient)`, async () => {
      const ps = await params(c);
      const opt = makeLars(c, ps);
      const schedule = c.schedule ? warmupCosine({ baseLr: c.lr, warmupSteps: c.schedule[0], totalSteps: c.schedule[1] }) : undefined;
      for (let step = 0; step < c.steps; step++) {
        await setGrads(c, ps, step);
        if (schedule) opt.setLr(schedule(step));
        expect(opt.paramGroups[0]!.lr).toBeCloseTo(c.lrs[step]!, 12);
        await opt.step();
        for (const k of c.keys) {
          const ref = await fixtureArray('optim', 'lars', c.name, `step${step}`, 'param', k);
          expect(relError(ps[k]!.toTypedArray() as Float32Array, ref.data), `${k} after step ${step}`).toBeLessThan(1e-5);
        }
      }
    });
  }

  it('stateDict()/loadStateDict() resume continues identically', async () => {
    const c = cases[0]!;
    const full = await params(c);
    const optFull = makeLars(c, full);
    const first = await params(c);
    const optFirst = makeLars(c, first);
    for (let step = 0; step < 3; step++) {
      await setGrads(c, full, step);
      await optFull.step();
      await setGrads(c, first, step);
      await optFirst.step();
    }
    const state = optFirst.stateDict();
    expect(state.momentumBuffers[0]!.every((b) => b !== null)).toBe(true);
    // A fresh optimiser over copies of the parameters, restored from the saved state.
    const resumed: Record<string, Tensor> = {};
    for (const k of c.keys) resumed[k] = Tensor.from(first[k]!.toTypedArray(), first[k]!.shape, { requiresGrad: true });
    const optResumed = makeLars(c, resumed);
    optResumed.loadStateDict(state);
    for (let step = 3; step < c.steps; step++) {
      await setGrads(c, full, step);
      await optFull.step();
      await setGrads(c, resumed, step);
      await optResumed.step();
    }
    for (const k of c.keys) expect(Array.from(resumed[k]!.toTypedArray() as Float32Array)).toEqual(Array.from(full[k]!.toTypedArray() as Float32Array));
  });

  it('param groups carry their own lr / weightDecay / exclusion; setLr sets every group; zeroGrad clears', async () => {
    const a = Tensor.from(new Float32Array([1, 2, 3, 4]), [2, 2], { requiresGrad: true });
    const b = Tensor.from(new Float32Array([1, 2]), [2], { requiresGrad: true });
    const opt = new LARS(
      [
        { params: [a], lr: 0.5, weightDecay: 1e-4, name: 'backbone' },
        { params: [b], lr: 0.1, excludeBiasAndNorm: false },
      ],
      { lr: 0.3 },
    );
    expect(opt.paramGroups[0]!.lr).toBe(0.5);
    expect(opt.paramGroups[0]!.name).toBe('backbone');
    expect(opt.paramGroups[1]!.lr).toBe(0.1);
    expect(opt.paramGroups[1]!.excludeBiasAndNorm).toBe(false);
    expect(opt.paramGroups[1]!.eta).toBe(0.02);
    opt.paramGroups[1]!.lr = 0.2;
    expect(opt.paramGroups[1]!.lr).toBe(0.2);
    opt.setLr(0.05);
    expect(opt.paramGroups.map((g) => g.lr)).toEqual([0.05, 0.05]);
    a.grad = Tensor.from(new Float32Array([1, 1, 1, 1]), [2, 2]);
    opt.zeroGrad();
    expect(a.grad).toBeNull();
    expect(() => new LARS([a], { lr: -1 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG' }));
    expect(() => (opt.paramGroups[0]!.lr = Number.NaN)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG' }));
  });

  it('SGD with momentum equals PyTorch SGD semantics on a quadratic', async () => {
    // PyTorch SGD: buf = g (first), buf = μ·buf + g; p -= lr·buf. f(p) = ½‖p‖² → g = p.
    const p = Tensor.from(new Float64Array([1, -2]), [2], { requiresGrad: true });
    const opt = new SGD([p], { lr: 0.1, momentum: 0.9 });
    let x = [1, -2];
    let buf: number[] | undefined;
    for (let i = 0; i < 4; i++) {
      p.grad = Tensor.from(Float64Array.from(x), [2]);
      await opt.step();
      buf = buf ? buf.map((v, j) => 0.9 * v + x[j]!) : [...x];
      x = x.map((v, j) => v - 0.1 * buf![j]!);
    }
    const got = Array.from(p.toTypedArray() as Float64Array);
    got.forEach((v, j) => expect(v).toBeCloseTo(x[j]!, 12));
  });
});

describe("warmupCosine equals solo-learn's LinearWarmupCosineAnnealingLR", () => {
  const scheds = fixtureJson<{ baseLr: number; warmupSteps: number; totalSteps: number; warmupStartLr: number; minLr: number; values: number[] }[]>(
    'optim',
    'schedules.json',
  );
  for (const s of scheds) {
    it(`base ${s.baseLr}, warmup ${s.warmupSteps}, total ${s.totalSteps}`, () => {
      const f = warmupCosine(s);
      s.values.forEach((v, t) => expect(f(t), `step ${t}`).toBeCloseTo(v, 10));
      if (s.warmupSteps > 1) expect(f(s.warmupSteps - 1)).toBeCloseTo(s.baseLr, 12);
      if (s.warmupSteps === 0) expect(f(0)).toBe(s.baseLr);
      if (s.totalSteps > s.warmupSteps) expect(f(s.totalSteps)).toBeCloseTo(s.minLr, 12);
      else expect(f(s.warmupSteps + 3)).toBe(s.baseLr); // past a warm-up that covers the run: the base lr
    });
  }
  it('covers runs no longer than the warm-up, as the trainer does', () => {
    expect(scheds.filter((s) => s.totalSteps <= s.warmupSteps).length).toBeGreaterThanOrEqual(2);
  });
  it('validates its options', () => {
    expect(() => warmupCosine({ baseLr: 0.1, warmupSteps: 10, totalSteps: 0 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG' }));
    expect(() => warmupCosine({ baseLr: 0.1, warmupSteps: 1.5, totalSteps: 5 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG' }));
    expect(() => warmupCosine({ baseLr: -1, warmupSteps: 0, totalSteps: 5 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG' }));
  });
});
