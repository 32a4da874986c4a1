// The weight gradient the engine computes as one GEMM for convolutions with small output maps (bf16 training on
// AMX CPUs, native/models/conv.h), or with the output 2 columns wider (34-wide outputs), equals PyTorch's own
// convolution backward on the same inputs: scripts/fixtures/conv_grad.py (layer4's 3×3 at 5×5, the stride-2 3×3
// and 1×1 convolutions into it, a 3×3 map; layer1's 3×3 and the CIFAR stem at 34 wide).
import { describe, expect, it } from 'vitest';
import { Tensor } from '../lib/tensor.js';
import { fixtureArray, fixtureJson, fixtureTensor, relError } from './helpers/fixtures.js';

interface Case {
  name: string;
  kernel: number;
  stride: number;
  padding: number;
  path: 'gemm' | 'padded';
}
const cases = fixtureJson<Case[]>('conv_grad', 'cases.json');

/** Our dW for one case, in `dtype`, as a contiguous float32 array in PyTorch's (O, C, kh, kw) order. */
async function ours(c: Case, dtype: 'float32' | 'bfloat16'): Promise<Float32Array> {
  const x = (await fixtureTensor('conv_grad', c.name, 'x')).to({ dtype });
  const g = (await fixtureTensor('conv_grad', c.name, 'grad_output')).to({ dtype });
  const dw =
    c.path === 'gemm'
      ? new Tensor(g.handle.op('convWeightGradByGemm', x.handle, [c.kernel, c.kernel], [c.stride, c.stride], [c.padding, c.padding]))
      : new Tensor(
          g.handle.op('convWeightGradPaddedWidth', x.handle, Tensor.zeros([g.shape[1]!, x.shape[1]!, c.kernel, c.kernel], { dtype }).handle, [
            c.padding,
            c.padding,
          ]),
        );
  return new Tensor(dw.to({ dtype: 'float32' }).handle.op('contiguous')).toTypedArray() as Float32Array;
}

describe('convolution weight gradients as one GEMM (small output maps) or 2 columns wider (34-wide outputs)', () => {
  for (const c of cases) {
    it(`${c.name} (${c.path}): ${c.kernel}×${c.kernel}, stride ${c.stride}: equals PyTorch's backward, exactly in float32 and to bf16 rounding in bf16`, async () => {
      const exact = await fixtureArray('conv_grad', c.name, 'dw_f64');
      expect(relError(await ours(c, 'float32'), exact.data)).toBeLessThan(1e-5);
      const torchBf16 = await fixtureArray('conv_grad', c.name, 'dw_bf16');
      const mine = await ours(c, 'bfloat16');
      // Both round float32 sums to bf16 (8 bits): each within bf16's rounding of the exact sum, as PyTorch's is.
      const torchError = relError(torchBf16.data, exact.data);
      expect(relError(mine, exact.data)).toBeLessThan(Math.max(8e-3, 2 * torchError));
      expect(relError(mine, torchBf16.data)).toBeLessThan(1.6e-2);
    });
  }

  // The bf16 small-map path's forward and input gradient run on four images at a time in a 2×2 grid with zero
  // separators (a 3×3 padding-1 convolution reads exactly the zeros padding would there); whole bf16 steps through it
  // are compared with torch.autocast's in test/train-amp.test.ts and test/batch-norm-act.test.ts.
  it('packGrid lays four images out in a 2×2 grid with zero separators, and unpackGrid takes them back exactly', () => {
    const [N, C, H, W] = [8, 3, 5, 4];
    const data = Float32Array.from({ length: N * C * H * W }, (_, i) => 1 + i);
    const x = Tensor.from(data, [N, C, H, W]);
    const grid = new Tensor(x.handle.op('packGrid'));
    expect(grid.shape).toEqual([N / 4, C, 2 * H + 1, 2 * W + 1]);
    const g = new Tensor(grid.handle.op('contiguous')).toTypedArray() as Float32Array;
    const at = (m: number, c: number, r: number, q: number) => g[((m * C + c) * (2 * H + 1) + r) * (2 * W + 1) + q]!;
    for (let n = 0; n < N; n++)
      for (let c = 0; c < C; c++)
        for (let h = 0; h < H; h++)
          for (let w = 0; w < W; w++) {
            const [m, a, b] = [Math.floor(n / 4), Math.floor((n % 4) / 2), n % 2];
            expect(at(m, c, a * (H + 1) + h, b * (W + 1) + w)).toBe(data[((n * C + c) * H + h) * W + w]!);
          }
    for (let q = 0; q < 2 * W + 1; q++) expect(at(1, 2, H, q)).toBe(0); // the separator row
    for (let r = 0; r < 2 * H + 1; r++) expect(at(0, 1, r, W)).toBe(0); // the separator column
    const back = new Tensor(new Tensor(grid.handle.op('unpackGrid', [H, W])).handle.op('contiguous')).toTypedArray() as Float32Array;
    expect(Array.from(back)).toEqual(Array.from(data));
    expect(() => Tensor.zeros([6, 2, 5, 5]).handle.op('packGrid')).toThrow(/N a multiple of 4, got \[6, 2, 5, 5\]/);
  });

  it('refuses a grad_output that does not fit the input, naming both shapes', () => {
    const g = Tensor.zeros([2, 4, 3, 3]);
    const x = Tensor.zeros([2, 4, 9, 9]);
    expect(() => g.handle.op('convWeightGradByGemm', x.handle, [3, 3], [1, 1], [1, 1])).toThrow(
      /grad_output \[2, 4, 3, 3\] does not match input \[2, 4, 9, 9\]/,
    );
  });
});
