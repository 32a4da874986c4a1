import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Tensor, readNpy, writeNpy } from '../lib/tensor.js';
import { resnet } from '../lib/models.js';
import { setNumThreads, getNumThreads, buildInfo } from '../lib/native.js';
import { PYTHON } from './helpers/python.js';
import { makeTmpDir } from './helpers/tmp.js';

const dir = makeTmpDir('tensor');

describe('Tensor bridge', () => {
  it('round-trips every dtype through native memory with shape, dtype and device', () => {
    const cases = [
      [new Float32Array([1.5, -2, 3, 4, 5, 6]), 'float32'],
      [new Float64Array([1.5, -2, 3, 4, 5, 6]), 'float64'],
      [new Int8Array([1, -2, 3, 4, 5, 6]), 'int8'],
      [new Int16Array([1, -2, 3, 4, 5, 6]), 'int16'],
      [new Int32Array([1, -2, 3, 4, 5, 6]), 'int32'],
      [new BigInt64Array([1n, -2n, 3n, 4n, 5n, 2n ** 40n]), 'int64'],
      [new Uint8Array([1, 2, 3, 4, 5, 255]), 'uint8'],
      [new Uint16Array([0x3c00, 0xc000, 0x4200, 0x4400, 0x4500, 0x4600]), 'float16'],
    ] as const;
    for (const [data, dtype] of cases) {
      const t = Tensor.from(data, [2, 3], { dtype });
      expect(t.shape).toEqual([2, 3]);
      expect(t.dtype).toBe(dtype);
      expect(t.device).toBe('cpu');
      expect(Array.from(t.toTypedArray() as ArrayLike<number | bigint>)).toEqual(Array.from(data as ArrayLike<number | bigint>));
    }
    const b = Tensor.from(new Uint8Array([1, 0, 1]), [3], { dtype: 'bool' });
    expect(b.dtype).toBe('bool');
    expect(
      Tensor.from(new Uint16Array([0x3c00]), [], { dtype: 'float16' })
        .to({ dtype: 'float32' })
        .item(),
    ).toBe(1);
    expect(Tensor.from([2.5], []).item()).toBe(2.5);
  });

  it('records autograd: backward() fills grad, grad is assignable and clearable', async () => {
    const x = Tensor.from(new Float64Array([1, -2, 3]), [3], { requiresGrad: true });
    expect(x.requiresGrad).toBe(true);
    expect(x.grad).toBeNull();
    const y = x.mul(x).sum(); // d/dx Σ x² = 2x
    await y.backward();
    expect(Array.from(x.grad!.toTypedArray() as Float64Array)).toEqual([2, -4, 6]);
    x.grad = Tensor.from(new Float64Array([7, 8, 9]), [3]);
    expect(Array.from(x.grad!.toTypedArray() as Float64Array)).toEqual([7, 8, 9]);
    x.grad = null;
    expect(x.grad).toBeNull();
    expect(() => (x.grad = Tensor.from(new Float64Array(2), [2]))).toThrow(expect.objectContaining({ code: 'ERR_TORCH_SHAPE' }));
    await expect(Tensor.from([1, 2], [2]).sum().backward()).rejects.toMatchObject({ code: 'ERR_TORCH_VALUE' });
  });

  it('dispose() is idempotent, use after dispose is ERR_DISPOSED, and the live-handle count follows', () => {
    const before = Tensor.liveCount();
    const t = Tensor.from(new Float32Array(1000), [10, 100]);
    expect(Tensor.liveCount()).toBe(before + 1);
    t.dispose();
    t.dispose();
    t[Symbol.dispose]();
    expect(Tensor.liveCount()).toBe(before);
    expect(t.disposed).toBe(true);
    expect(() => t.shape).toThrow(expect.objectContaining({ code: 'ERR_DISPOSED' }));
    expect(() => t.toTypedArray()).toThrow(expect.objectContaining({ code: 'ERR_DISPOSED' }));
  });

  it('rejects bad construction with typed errors', () => {
    expect(() => Tensor.from(new Float32Array(5), [2, 3])).toThrow(expect.objectContaining({ code: 'ERR_TORCH_SHAPE' }));
    expect(() => Tensor.from(new Float32Array(6), [2, -3])).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG' }));
    expect(() => Tensor.from(new Float32Array(6), [2, 3], { dtype: 'complex64' as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG' }));
    expect(() => Tensor.from(new Int32Array(6), [2, 3], { requiresGrad: true })).toThrow(expect.objectContaining({ code: 'ERR_TORCH_DTYPE' }));
    expect(() => Tensor.from(new Float32Array(6), [2, 3], { device: 'cuda' })).toThrow(
      expect.objectContaining({ code: buildInfo().cudaAvailable ? expect.any(String) : 'ERR_TORCH_DEVICE' }),
    );
    expect(() => Tensor.from(new Float32Array(6), [2, 3], { device: 'tpu:9' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG' }));
  });

  it('thread count is configurable (all cores by default)', () => {
    const n = getNumThreads();
    expect(n).toBeGreaterThanOrEqual(1);
    setNumThreads(1);
    expect(getNumThreads()).toBe(1);
    setNumThreads(0);
    expect(getNumThreads()).toBe(n);
    expect(() => setNumThreads(-1)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG' }));
  });
});

describe('readNpy / writeNpy with Tensors', () => {
  it('reads what numpy writes and numpy reads what we write (C order, several dtypes)', async () => {
    const src = join(dir, 'np.npy');
    execFileSync(PYTHON, ['-c', `import numpy as np; np.save(${JSON.stringify(src)}, (np.arange(24, dtype=np.float32).reshape(2,3,4) - 5) / 3)`]);
    const t = await readNpy(src);
    expect(t.shape).toEqual([2, 3, 4]);
    expect((t.toTypedArray() as Float32Array)[7]).toBeCloseTo((7 - 5) / 3, 6);
    for (const [dtype, arr] of [
      ['float32', new Float32Array([0.5, -1, 2, 3])],
      ['int64', new BigInt64Array([1n, -2n, 3n, 4n])],
      ['uint8', new Uint8Array([0, 1, 254, 255])],
      ['float64', new Float64Array([Math.PI, 1, 2, 3])],
    ] as const) {
      const out = join(dir, `ours-${dtype}.npy`);
      await writeNpy(out, Tensor.from(arr, [2, 2], { dtype }));
      const back = execFileSync(
        PYTHON,
        [
          '-c',
          `import numpy as np, json; a = np.load(${JSON.stringify(out)}); print(json.dumps({"dtype": str(a.dtype), "shape": list(a.shape), "v": [float(x) for x in a.ravel()]}))`,
        ],
        { encoding: 'utf8' },
      );
      const r = JSON.parse(back);
      expect(r.shape).toEqual([2, 2]);
      expect(r.v).toEqual(Array.from(arr as ArrayLike<number | bigint>, Number));
    }
  });
  it('refuses Fortran order and truncated files with ERR_NPY_FORMAT and leaves no partial output', async () => {
    const f = join(dir, 'fortran.npy');
    execFileSync(PYTHON, ['-c', `import numpy as np; np.save(${JSON.stringify(f)}, np.asfortranarray(np.ones((3, 2), dtype=np.float32)))`]);
    await expect(readNpy(f)).rejects.toMatchObject({ code: 'ERR_NPY_FORMAT' });
    const trunc = join(dir, 'trunc.npy');
    writeFileSync(trunc, Buffer.from("\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (100,), }", 'latin1'));
    await expect(readNpy(trunc)).rejects.toMatchObject({ code: 'ERR_NPY_FORMAT' });
    const t = Tensor.from(new Float32Array(4), [4]);
    t.dispose();
    await expect(writeNpy(join(dir, 'never.npy'), t)).rejects.toMatchObject({ code: 'ERR_DISPOSED' });
    expect(existsSync(join(dir, 'never.npy'))).toBe(false);
    expect(readdirSync(dir).some((n) => n.includes('.tmp'))).toBe(false);
  });
});

describe('model inputs are validated', () => {
  const net = resnet({ depth: 18, stem: 'cifar' }).eval();
  it('wrong rank, wrong channel count, integer dtype, NaN, disposed → typed errors, no crash', async () => {
    await expect(net.forward(Tensor.zeros([3, 32, 32]))).rejects.toMatchObject({ code: 'ERR_TORCH_SHAPE' });
    await expect(net.forward(Tensor.zeros([2, 1, 32, 32]))).rejects.toMatchObject({ code: 'ERR_TORCH_SHAPE' });
    await expect(net.forward(Tensor.zeros([2, 3, 32, 32], { dtype: 'int32' }))).rejects.toMatchObject({ code: 'ERR_TORCH_DTYPE' });
    const nan = new Float32Array(2 * 3 * 8 * 8);
    nan[5] = Number.NaN;
    await expect(net.forward(Tensor.from(nan, [2, 3, 8, 8]))).rejects.toMatchObject({ code: 'ERR_TORCH_VALUE' });
    const gone = Tensor.zeros([1, 3, 8, 8]);
    gone.dispose();
    expect(() => net.forward(gone)).toThrow(expect.objectContaining({ code: 'ERR_DISPOSED' }));
    await expect(net.loadStateDict({ 'conv1.weight': Tensor.zeros([64, 3, 7, 7]), bogus: Tensor.zeros([1]) })).rejects.toMatchObject({
      code: 'ERR_CHECKPOINT_KEYS',
      message: expect.stringMatching(
        /missing keys.*unexpected keys \(1\): bogus.*shape mismatches \(1\): conv1\.weight: checkpoint \[64, 3, 7, 7\] vs model \[64, 3, 3, 3\]/s,
      ),
    });
    const y = await net.forward(Tensor.zeros([2, 3, 32, 32]), { grad: false });
    expect(y.shape).toEqual([2, 512]);
  });
  it('non-strict loading reports missing / unexpected keys instead of failing', async () => {
    const r = await net.loadStateDict({ 'bn1.weight': Tensor.from(new Float32Array(64).fill(1), [64]), extra: Tensor.zeros([2]) }, { strict: false });
    expect(r.unexpected).toEqual(['extra']);
    expect(r.missing.length).toBeGreaterThan(100);
  });
  it('channels_last weights give the same features', async () => {
    const x = Tensor.from(
      new Float32Array(2 * 3 * 32 * 32).map((_, i) => Math.sin(i)),
      [2, 3, 32, 32],
    );
    const a = (await net.forward(x, { grad: false })).toTypedArray() as Float32Array;
    net.channelsLast(true);
    const b = (await net.forward(x, { grad: false })).toTypedArray() as Float32Array;
    net.channelsLast(false);
    let worst = 0;
    a.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - b[i]!))));
    expect(worst).toBeLessThan(1e-4);
  });
});
