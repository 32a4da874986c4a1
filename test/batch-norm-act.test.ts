// The fused BatchNorm (training mode) + residual add + ReLU of native/models/batch_norm_act.h equals PyTorch's own
// F.batch_norm, add and relu on the same inputs (scripts/fixtures/batch_norm_act.py): the output, the gradients of
// the input, weight, bias and residual, and the updated running statistics, for ResNet's shapes (a block's tail, a
// BatchNorm + ReLU, a downsample's BatchNorm, a projector's BatchNorm1d + ReLU) in float32 (against PyTorch's float64
// result, within a few times PyTorch float32's own error) and in bfloat16 activations with float32 parameters (what
// torch.autocast runs on CPU: against PyTorch's bfloat16 result, within bfloat16 rounding). Whole training steps on
// it are checked against PyTorch by test/train-amp.test.ts (bf16) and test/winograd.test.ts (float32).
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildInfo, type NativeTensor } from '../lib/native.js';
import { Tensor } from '../lib/tensor.js';
import { train } from '../lib/train.js';
import { stateDictFloats } from './helpers/checkpoints.js';
import { fixtureArray, fixtureJson, fixturePath, fixtureTensor, relError } from './helpers/fixtures.js';
import { REPO_ROOT } from './helpers/paths.js';
import { makeTmpDir } from './helpers/tmp.js';
import { stillView, trainStepConfig } from './helpers/train-step.js';

interface Case {
  name: string;
  shape: number[];
  residual: boolean;
  relu: boolean;
  momentum: number;
  eps: number;
}
const cases = fixtureJson<Case[]>('batch_norm_act', 'cases.json');
const info = buildInfo();

function channelsLast(t: Tensor): Tensor {
  if (t.shape.length !== 4) return t;
  const nhwc = new Tensor(new Tensor(t.handle.op('permute', [0, 2, 3, 1])).handle.op('contiguous'));
  return new Tensor(nhwc.handle.op('permute', [0, 3, 1, 2]));
}
function floats(h: NativeTensor): Float32Array {
  return new Tensor(new Tensor(h.to('cpu', 'float32')).handle.op('contiguous')).toTypedArray() as Float32Array;
}
function as(t: Tensor, dtype: 'float32' | 'bfloat16'): Tensor {
  return dtype === 'float32' ? t : new Tensor(t.handle.to('cpu', dtype));
}

describe.runIf(info.batchNorm.fused)('fused BatchNorm + add + ReLU (training mode)', () => {
  for (const c of cases) {
    for (const dtype of ['float32', 'bfloat16'] as const) {
      const what = `${c.name} ${JSON.stringify(c.shape)}${c.residual ? ' + residual' : ''}${c.relu ? ' + ReLU' : ''}, ${dtype}`;
      it(`${what}: output, gradients and running statistics equal PyTorch's`, async () => {
        const x = as(channelsLast(await fixtureTensor('batch_norm_act', c.name, 'x')), dtype);
        const g = as(channelsLast(await fixtureTensor('batch_norm_act', c.name, 'grad_output')), dtype);
        const r = c.residual ? as(channelsLast(await fixtureTensor('batch_norm_act', c.name, 'residual')), dtype) : null;
        const w = await fixtureTensor('batch_norm_act', c.name, 'weight');
        const b = await fixtureTensor('batch_norm_act', c.name, 'bias');
        const rm = await fixtureTensor('batch_norm_act', c.name, 'running_mean');
        const rv = await fixtureTensor('batch_norm_act', c.name, 'running_var');
        const [y, gx, gw, gb, gr] = x.handle.op(
          'batchNormAct',
          w.handle,
          b.handle,
          r?.handle ?? null,
          rm.handle,
          rv.handle,
          c.momentum,
          c.eps,
          c.relu,
          g.handle,
        );
        expect(new Tensor(y).dtype).toBe(dtype);
        expect(new Tensor(gx).dtype).toBe(dtype);
        const mine: [string, Float32Array][] = [
          ['y', floats(y)],
          ['gx', floats(gx)],
          ['gw', floats(gw)],
          ['gb', floats(gb)],
          ['running_mean', floats(rm.handle)],
          ['running_var', floats(rv.handle)],
        ];
        if (c.residual) mine.push(['gr', floats(gr as NativeTensor)]);
        else expect(gr).toBeNull();
        for (const [name, ours] of mine) {
          const exact = (await fixtureArray('batch_norm_act', c.name, `${name}_f64`)).data;
          if (dtype === 'float32') {
            const torch32 = (await fixtureArray('batch_norm_act', c.name, `${name}_f32`)).data;
            const err = relError(ours, exact);
            const theirs = relError(torch32, exact);
            expect(err, `${name}: ours ${err.toExponential(2)} from float64, PyTorch float32 ${theirs.toExponential(2)}`).toBeLessThan(
              Math.max(4 * theirs, 2e-6),
            );
            expect(relError(ours, torch32), name).toBeLessThan(1e-5);
          } else {
            // PyTorch's bfloat16 result: the same inputs, the same rounding of BatchNorm's output before the add, and
            // the same ReLU mask; activations differ by at most a bfloat16 rounding, float32 results by far less.
            const torch16 = (await fixtureArray('batch_norm_act', c.name, `${name}_bf16`)).data;
            const activation = name === 'y' || name === 'gx' || name === 'gr';
            expect(relError(ours, torch16), name).toBeLessThan(activation ? 8e-3 : 2e-3);
            if (name === 'y') {
              expect(relError(ours, exact)).toBeLessThan(Math.max(1.5 * relError(torch16, exact), 4e-3));
              // PyTorch computing the fused op's arithmetic (float64 statistics, float32 scale and shift): the same
              // bfloat16 values but for rounding ties of the float32 multiply-add (PyTorch's is not fused).
              const same = (await fixtureArray('batch_norm_act', c.name, 'y_bf16_f64stats')).data;
              let differ = 0;
              for (let i = 0; i < same.length; i++) if (same[i] !== ours[i]) differ++;
              if (process.env.BN_ACT_VERBOSE) console.log(`${c.name}: ${differ} of ${same.length} outputs differ from the float64-statistics forward`);
              expect(differ).toBeLessThanOrEqual(Math.ceil(same.length * 1e-3));
              expect(relError(ours, same)).toBeLessThan(8e-3);
            }
          }
        }
      });
    }
  }

  // scripts/fixtures/train_step.py: test/train-amp.test.ts's VICReg step (ResNet-18 CIFAR stem, LARS), whose
  // PyTorch float32 update is 2-8 % from float64's (an ill-conditioned step: the statistics' rounding is amplified).
  // test/train-amp.test.ts runs it unfused, equal to PyTorch's own kernels; here every BatchNorm is fused.
  const step = (precision: '32' | 'bf16-mixed', extra: Record<string, unknown>) => trainStepConfig(makeTmpDir(`bn-act-step-${precision}`), precision, extra);
  const ref = fixtureJson<{ fp32: number; fp64: number; fp32_16: number; bf16_16_f64stats: number; probes: string[] }>('train_step', 'losses.json');
  async function deltas(checkpoint: string): Promise<Map<string, Float32Array>> {
    const init = await stateDictFloats(fixturePath('train_step', 'init.ckpt'), ref.probes);
    const after = await stateDictFloats(checkpoint, ref.probes);
    return new Map(ref.probes.map((n) => [n, after.get(n)!.map((v, i) => v - init.get(n)![i]!)]));
  }

  it('a float32 training step on it is closer to the float64 step than PyTorch float32 is, in every probed update', async () => {
    const r = await train(step('32', {}));
    expect(Math.abs(r.lastLoss - ref.fp64) / ref.fp64).toBeLessThan(1e-5);
    const d = await deltas(r.checkpoint);
    for (const n of ref.probes) {
      if (n === 'projector.3.bias') continue; // its update is rounding only (VICReg is invariant to a shift of z)
      const exact = (await fixtureArray('train_step', 'fp64', n)).data;
      const ours = relError(d.get(n)!, exact);
      const theirs = relError((await fixtureArray('train_step', 'fp32', n)).data, exact);
      expect(ours, `${n}: ours ${ours.toExponential(2)} from float64, PyTorch float32 ${theirs.toExponential(2)}`).toBeLessThan(theirs);
    }
  });

  it("a bf16-mixed training step on it equals PyTorch's autocast step with BatchNorm's statistics in float64", async () => {
    const r = await train(
      step('bf16-mixed', {
        batchSize: 16,
        maxSteps: 1,
        data: { train: fixturePath('train_step', 'images16.npy'), shuffle: false },
        augmentation: [
          { ...stillView, flip: 0, size: 16 },
          { ...stillView, flip: 1, size: 16 },
        ],
      }),
    );
    // This step is chaotic in BatchNorm's rounding: PyTorch's own bf16 step with float64 statistics (the fused op's
    // arithmetic, bf16_16_f64stats) has updates 20-40 % from its float32-statistics step (bf16_16), and so does the
    // same step with BatchNorm's float32 output jittered by 2e-7 before its rounding to bf16 (about one float32
    // rounding: bf16_16_f64stats_jitter). No other kernels can match it closer than that noise floor; the fused op's
    // own arithmetic is checked at bf16 rounding above, test/train-amp.test.ts checks LibTorch's unfused kernels
    // against bf16_16 to 1e-2, and the float32 step above checks the fused backward's wiring without the chaos.
    // The loss too: PyTorch's bf16 losses with BatchNorm in float32 statistics, float64 statistics (multiply then
    // add, or fused), and jittered, spread over 2.5e-4; a float32 forward is 7e-4 away. So: the loss within 4e-4, and
    // the updates within 1.5× the noise floor measured per parameter, which a lost, mis-masked or mis-routed gradient
    // (≥ 100 %) exceeds.
    const rel = (a: number) => Math.abs(a - ref.bf16_16_f64stats) / ref.bf16_16_f64stats;
    expect(rel(ref.fp32_16)).toBeGreaterThan(5e-4); // the loss check tells a bf16 forward from a float32 one
    expect(rel(r.lastLoss), 'loss').toBeLessThan(4e-4);
    const d = await deltas(r.checkpoint);
    for (const n of ref.probes) {
      const exact = (await fixtureArray('train_step', 'bf16_16_f64stats', n)).data;
      const ours = relError(d.get(n)!, exact, 1e-3);
      const noise = relError((await fixtureArray('train_step', 'bf16_16_f64stats_jitter', n)).data, exact, 1e-3);
      if (process.env.BN_ACT_VERBOSE) console.log(`${n}: ours ${ours.toExponential(2)} from the f64-statistics step, its jitter ${noise.toExponential(2)}`);
      expect(ours, `${n}: ours ${ours.toExponential(2)}, noise floor ${noise.toExponential(2)}`).toBeLessThan(1.5 * noise + 0.05);
      // bf16 moves these updates far from float32's.
      if (n.startsWith('backbone.') && n.endsWith('.weight'))
        expect(relError(d.get(n)!, (await fixtureArray('train_step', 'fp32_16', n)).data), n).toBeGreaterThan(0.1);
    }
  });

  it("refuses what its kernels do not take (NCHW, channels not a multiple of 16), so the layers keep LibTorch's path", () => {
    const w = Tensor.zeros([16]);
    const nchw = Tensor.zeros([2, 16, 3, 3]).handle;
    const odd = Tensor.zeros([4, 24]).handle;
    expect(() => nchw.op('batchNormAct', w.handle, w.handle, null, null, null, 0.1, 1e-5, true, nchw)).toThrow(
      /ERR_UNSUPPORTED|do not take input \[2, 16, 3, 3\]/,
    );
    const w24 = Tensor.zeros([24]);
    expect(() => odd.op('batchNormAct', w24.handle, w24.handle, null, null, null, 0.1, 1e-5, true, odd)).toThrow(/do not take input \[4, 24\]/);
  });

  it('buildInfo names the kernels; TORCH_SSL_FUSED_BN=0 turns them off', () => {
    expect(info.batchNorm.kernels).toMatch(/^fused BatchNorm \+ add \+ ReLU on CPU \(AVX-512/);
    const script = `import { buildInfo } from ${JSON.stringify(resolve(REPO_ROOT, 'dist', 'index.js'))}; console.log(JSON.stringify(buildInfo().batchNorm));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: REPO_ROOT,
      env: { ...process.env, TORCH_SSL_FUSED_BN: '0' },
      encoding: 'utf8',
    });
    const bn = JSON.parse(out.trim().split('\n').pop() as string) as { fused: boolean; kernels: string };
    expect(bn.fused).toBe(false);
    expect(bn.kernels).toMatch(/fused kernels off: TORCH_SSL_FUSED_BN=0/);
  });
});

describe.runIf(!info.batchNorm.fused)('BatchNorm without the fused kernels', () => {
  it('buildInfo says why', () => {
    expect(info.batchNorm.kernels).toMatch(/^LibTorch's BatchNorm, add and ReLU \(/);
  });
});
