import { describe, expect, it } from 'vitest';
import { losses, type LossTensor } from '../lib/losses.js';
import { Tensor } from '../lib/tensor.js';
import { fixtureArray, fixtureJson, relError } from './helpers/fixtures.js';

interface Case {
  name: string;
  loss: 'vicreg' | 'barlow' | 'simclr' | 'tcr';
  shape: number[];
  inputs: number;
  constant: boolean;
  options: Record<string, number>;
}
const cases = fixtureJson<Case[]>('losses', 'cases.json');

function call(c: Case, xs: Tensor[]): Promise<LossTensor> {
  const o = c.options;
  switch (c.loss) {
    case 'vicreg':
      return losses.vicreg(xs[0]!, xs[1]!, o);
    case 'barlow':
      return losses.barlow(xs[0]!, xs[1]!, o);
    case 'simclr':
      return losses.simclr(xs[0]!, o);
    case 'tcr':
      return losses.tcr(xs[0]!, o);
  }
}

async function inputs(c: Case, tag: 'f32' | 'f64') {
  const xs: Tensor[] = [];
  for (let j = 0; j < c.inputs; j++) {
    const a = await fixtureArray('losses', c.name, tag, `input${j}`);
    xs.push(Tensor.from(a.data, a.shape, { requiresGrad: true }));
  }
  return xs;
}

describe('fused losses equal composed PyTorch autograd', () => {
  for (const c of cases) {
    const label = `${c.loss} ${c.constant ? 'constant embeddings ' : ''}shape [${c.shape.join(', ')}] ${JSON.stringify(c.options)}`;
    for (const tag of ['f32', 'f64'] as const) {
      it(`${label}: value, terms and input gradients (${tag})`, async () => {
        const xs = await inputs(c, tag);
        const ref = fixtureJson<{ loss: number; terms: Record<string, number> }>('losses', c.name, tag, 'value.json');
        const loss = await call(c, xs);
        const tol = tag === 'f32' ? 2e-4 : 1e-9;
        expect(loss.shape).toEqual([]);
        expect(Math.abs(loss.item() - ref.loss)).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(ref.loss)));
        for (const [k, v] of Object.entries(ref.terms)) {
          expect(Math.abs(loss.terms[k]! - v), k).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(v)));
        }
        await loss.backward();
        for (let j = 0; j < xs.length; j++) {
          const g = xs[j]!.grad!;
          expect(g.isFinite()).toBe(true);
          const refGrad = await fixtureArray('losses', c.name, tag, `grad${j}`);
          const ours = g.toTypedArray() as Float64Array;
          // Unit-normalised losses with D = 1 or identical rows have an exactly-zero gradient (every
          // direction is radial): both sides must be rounding noise.
          if ((c.loss === 'simclr' || c.loss === 'tcr') && (c.shape[2] === 1 || c.constant)) {
            const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
            expect(maxAbs(ours)).toBeLessThan(tag === 'f32' ? 1e-4 : 1e-10);
            expect(maxAbs(refGrad.data)).toBeLessThan(tag === 'f32' ? 1e-4 : 1e-10);
          } else {
            expect(relError(ours, refGrad.data, tag === 'f32' ? 1e-4 : 1e-6), `grad${j}`).toBeLessThan(tag === 'f32' ? 1e-3 : 1e-8);
          }
        }
      });
    }
  }
});

// Central finite differences of the loss value against the hand-derived backward, in float64.
describe('gradcheck (float64, finite differences)', () => {
  const small = cases.filter((c) => c.shape.reduce((a, b) => a * b, 1) * c.inputs <= 200 && !c.constant);
  for (const c of small) {
    it(`${c.loss} shape [${c.shape.join(', ')}]`, async () => {
      const base: Float64Array[] = [];
      for (let j = 0; j < c.inputs; j++) base.push((await fixtureArray('losses', c.name, 'f64', `input${j}`)).data as Float64Array);
      const make = (arrs: Float64Array[], grad: boolean) => arrs.map((a) => Tensor.from(a, c.shape, { requiresGrad: grad }));
      const xs = make(base, true);
      const loss = await call(c, xs);
      await loss.backward();
      const analytic = xs.map((x) => x.grad!.toTypedArray() as Float64Array);
      const h = 1e-6;
      let worst = 0;
      for (let j = 0; j < c.inputs; j++) {
        for (let i = 0; i < base[j]!.length; i++) {
          const plus = base.map((a) => a.slice());
          const minus = base.map((a) => a.slice());
          plus[j]![i]! += h;
          minus[j]![i]! -= h;
          const fp = (await call(c, make(plus, false))).item();
          const fm = (await call(c, make(minus, false))).item();
          const numeric = (fp - fm) / (2 * h);
          worst = Math.max(worst, Math.abs(numeric - analytic[j]![i]!) / Math.max(1, Math.abs(numeric)));
        }
      }
      expect(worst).toBeLessThan(1e-5);
    });
  }
});

describe('loss input validation', () => {
  const t = (shape: number[]) =>
    Tensor.from(
      new Float32Array(shape.reduce((a, b) => a * b, 1)).map(() => Math.random()),
      shape,
    );
  it('rejects mismatched VICReg / Barlow shapes with ERR_TORCH_SHAPE', async () => {
    await expect(losses.vicreg(t([4, 3]), t([4, 5]))).rejects.toMatchObject({ code: 'ERR_TORCH_SHAPE' });
    await expect(losses.barlow(t([4, 3]), t([5, 3]))).rejects.toMatchObject({ code: 'ERR_TORCH_SHAPE' });
  });
  it('rejects N < 2 and V < 2', async () => {
    await expect(losses.vicreg(t([1, 3]), t([1, 3]))).rejects.toMatchObject({ code: 'ERR_TORCH_SHAPE' });
    await expect(losses.simclr(t([1, 4, 3]))).rejects.toMatchObject({ code: 'ERR_TORCH_SHAPE' });
    await expect(losses.tcr(t([3, 1, 3]))).rejects.toMatchObject({ code: 'ERR_TORCH_SHAPE' });
    await expect(losses.simclr(t([4, 3]))).rejects.toMatchObject({ code: 'ERR_TORCH_SHAPE' });
  });
  it('rejects bad options and non-tensors with ERR_INVALID_ARG', async () => {
    expect(() => losses.simclr(t([2, 4, 3]), { temperature: 0 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG' }));
    expect(() => losses.tcr(t([2, 4, 3]), { eps: -1 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG' }));
    expect(() => losses.vicreg(t([4, 3]), [1, 2] as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG' }));
  });
  it('rejects integer embeddings with ERR_TORCH_DTYPE', async () => {
    const i = Tensor.from(new Int32Array(12), [4, 3]);
    await expect(losses.vicreg(i, i)).rejects.toMatchObject({ code: 'ERR_TORCH_DTYPE' });
  });
  it('handles large D (N=32, D=4096) with finite values and gradients', async () => {
    const z1 = t([32, 4096]);
    z1.requiresGrad = true;
    const z2 = t([32, 4096]);
    const l = await losses.vicreg(z1, z2);
    await l.backward();
    expect(Number.isFinite(l.item())).toBe(true);
    expect(z1.grad!.isFinite()).toBe(true);
  });
});
