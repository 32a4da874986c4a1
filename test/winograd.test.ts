// float32 3×3 stride-1 convolutions as oneDNN's Winograd F(4×4, 3×3) (native/models/winograd.h) equal PyTorch's
// convolution on the same inputs: the output, the input gradient and the weight gradient, against PyTorch's float64
// sum (scripts/fixtures/winograd.py), in NCHW and channels_last, within a few times the error of PyTorch's own
// float32 (direct) convolution. Where the path is off (no AVX-512, a build without oneDNN 2.x headers,
// TORCH_SSL_WINOGRAD=0), buildInfo says so and the op refuses, naming the reason.
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
import { trainStepConfig } from './helpers/train-step.js';

interface Case {
  name: string;
  shape: [number, number, number, number, number];
}
const cases = fixtureJson<Case[]>('winograd', 'cases.json');
const info = buildInfo();

function channelsLast(t: Tensor): Tensor {
  const nhwc = new Tensor(new Tensor(t.handle.op('permute', [0, 2, 3, 1])).handle.op('contiguous'));
  return new Tensor(nhwc.handle.op('permute', [0, 3, 1, 2]));
}
function dense(h: NativeTensor): Float32Array {
  return new Tensor(h.op('contiguous')).toTypedArray() as Float32Array;
}

describe.runIf(info.conv.winograd)('Winograd 3×3 convolutions (oneDNN F(4×4, 3×3))', () => {
  for (const c of cases) {
    for (const layout of ['NCHW', 'channels_last'] as const) {
      it(`${c.name} ${JSON.stringify(c.shape)}, ${layout}: output and both gradients equal PyTorch's`, async () => {
        let x = await fixtureTensor('winograd', c.name, 'x');
        let w = await fixtureTensor('winograd', c.name, 'w');
        if (layout === 'channels_last') {
          x = channelsLast(x);
          w = channelsLast(w);
        }
        const g = await fixtureTensor('winograd', c.name, 'grad_output');
        const [y, gx, gw] = x.handle.op('winogradConv3x3', w.handle, g.handle);
        for (const [name, mine] of [
          ['y', dense(y)],
          ['gx', dense(gx)],
          ['gw', dense(gw)],
        ] as const) {
          const exact = (await fixtureArray('winograd', c.name, `${name}_f64`)).data;
          const torch32 = (await fixtureArray('winograd', c.name, `${name}_f32`)).data;
          const ours = relError(mine, exact);
          const theirs = relError(torch32, exact);
          // Winograd's transforms add rounding of their own: a few times float32's direct sum, never more than 2e-5.
          expect(ours, `${name}: ours ${ours.toExponential(2)}, PyTorch float32 ${theirs.toExponential(2)}`).toBeLessThan(Math.max(2e-5, 8 * theirs));
          expect(relError(mine, torch32)).toBeLessThan(3e-5);
          if (process.env.WINOGRAD_VERBOSE) console.log(`${c.name} ${layout} ${name}: ours ${ours.toExponential(2)}, PyTorch f32 ${theirs.toExponential(2)}`);
        }
      });
    }
  }

  // scripts/fixtures/train_step.py: test/train-amp.test.ts's VICReg step (ResNet-18 CIFAR stem, 64 images of 32×32
  // and their mirror images, LARS), in PyTorch float32 and float64. This step is ill-conditioned: PyTorch's own float32
  // update is 2-8 % away from float64's. Ours, on Winograd convolutions, must be about as close to float64 as that.
  it('a float32 training step on Winograd convolutions is as close to the float64 step as PyTorch float32 is', async () => {
    const ref = fixtureJson<{ fp32: number; fp64: number; probes: string[] }>('train_step', 'losses.json');
    const r = await train(trainStepConfig(makeTmpDir('winograd-step'), '32'));
    expect(Math.abs(r.lastLoss - ref.fp64) / ref.fp64).toBeLessThan(1e-5);
    const init = await stateDictFloats(fixturePath('train_step', 'init.ckpt'), ref.probes);
    const after = await stateDictFloats(r.checkpoint, ref.probes);
    let worst = 0;
    for (const n of ref.probes) {
      if (n === 'projector.3.bias') continue; // its update is rounding only (VICReg is invariant to a shift of z)
      const exact = (await fixtureArray('train_step', 'fp64', n)).data;
      const torch32 = (await fixtureArray('train_step', 'fp32', n)).data;
      const ours = relError(
        after.get(n)!.map((v, i) => v - init.get(n)![i]!),
        exact,
      );
      const theirs = relError(torch32, exact);
      if (process.env.WINOGRAD_VERBOSE) console.log(`step ${n}: ours ${ours.toExponential(2)}, PyTorch f32 ${theirs.toExponential(2)}`);
      expect(ours, `${n}: ours ${ours.toExponential(2)} from float64, PyTorch float32 ${theirs.toExponential(2)}`).toBeLessThan(Math.max(3 * theirs, 1e-3));
      worst = Math.max(worst, ours / theirs);
    }
    expect(worst).toBeGreaterThan(0); // the comparison ran
  });

  it('refuses a grad_output that does not fit the output, naming both shapes', () => {
    const x = Tensor.zeros([2, 16, 8, 8]);
    const w = Tensor.zeros([16, 16, 3, 3]);
    expect(() => x.handle.op('winogradConv3x3', w.handle, Tensor.zeros([2, 16, 4, 4]).handle)).toThrow(
      /grad_output \[2, 16, 4, 4\] does not match the output \[2, 16, 8, 8\]/,
    );
  });

  it('buildInfo names the kernels; TORCH_SSL_WINOGRAD=0 turns the path off', () => {
    expect(info.conv.kernels).toMatch(
      /^winograd for float32 3×3 stride-1 convolutions of ≥ \d+ output positions \((oneDNN 2\.\d+\.\d+, F\(4×4, 3×3\) on AVX-512|torch-ssl's F\(4×4, 3×3\) on AVX2 \+ FMA)\)/,
    );
    const script = `import { buildInfo } from ${JSON.stringify(resolve(REPO_ROOT, 'dist', 'index.js'))}; console.log(JSON.stringify(buildInfo().conv));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: REPO_ROOT,
      env: { ...process.env, TORCH_SSL_WINOGRAD: '0' },
      encoding: 'utf8',
    });
    const conv = JSON.parse(out.trim().split('\n').pop() as string) as { winograd: boolean; kernels: string };
    expect(conv.winograd).toBe(false);
    expect(conv.kernels).toMatch(/Winograd off: TORCH_SSL_WINOGRAD=0/);
  });
});

describe.runIf(!info.conv.winograd)('convolutions without the Winograd path', () => {
  it('buildInfo says why', () => {
    expect(info.conv.kernels).toMatch(/^direct /);
  });
});
