// extractFeatures at its edges: 'local' on a map too small for it is an error (never a silent 512-d), and an
// extraction gives its cached CPU blocks back when it ends.
import { describe, expect, it } from 'vitest';
import { extractFeatures } from '../lib/features.js';
import { resnet } from '../lib/models.js';
import { cpuCacheInfo } from '../lib/native.js';
import { Tensor } from '../lib/tensor.js';
import { TorchSslError } from '../lib/errors.js';

const images = (side: number, n = 4) => Tensor.from(Uint8Array.from({ length: n * side * side * 3 }, (_, i) => (i * 37) % 256), [n, side, side, 3], { dtype: 'uint8' });

describe('extractFeatures edges', () => {
  it("pooling 'local' on 16×16 images (a 3×3 layer4 map) is ERR_TORCH_SHAPE naming the fix; 2×2/1 windows give 2048-d", async () => {
    const net = resnet({ depth: 18, stem: 'cifar' }).eval();
    const x = images(16);
    try {
      const e = await extractFeatures(net, x, { pooling: 'local' }).catch((err: unknown) => err);
      expect(e).toBeInstanceOf(TorchSslError);
      expect((e as TorchSslError).code).toBe('ERR_TORCH_SHAPE');
      expect((e as Error).message).toContain('these 16×16 images give one window only');
      const r = await extractFeatures(net, x, { pooling: { kernel: 2, stride: 1 } });
      expect(r.dim).toBe(2048);
      r.features.dispose();
      const at32 = await extractFeatures(net, images(32), { pooling: 'local' });
      expect(at32.dim).toBe(2048); // 5×5 → 2×2 windows
      at32.features.dispose();
    } finally {
      x.dispose();
      net.dispose();
    }
  });

  it('gives its cached CPU blocks back when it ends', async () => {
    const net = resnet({ depth: 18, stem: 'cifar' }).eval();
    const x = images(32, 64);
    try {
      const r = await extractFeatures(net, x, { batchSize: 32 });
      expect(cpuCacheInfo().cachedBytes).toBe(0); // was ~1 GB after a large extraction
      r.features.dispose();
    } finally {
      x.dispose();
      net.dispose();
    }
  });
});

describe('the first native call', () => {
  it('loadCheckpoint in a fresh process loads LibTorch on a worker thread: the event loop stays responsive', async () => {
    const { execFileSync } = await import('node:child_process');
    const { fixturePath } = await import('./helpers/fixtures.js');
    const { resolve } = await import('node:path');
    const dist = resolve(import.meta.dirname, '..', 'dist', 'index.js');
    const script = `
      const { loadCheckpoint } = await import(${JSON.stringify(dist)});
      let max = 0, last = performance.now();
      const iv = setInterval(() => { const now = performance.now(); max = Math.max(max, now - last - 5); last = now; }, 5);
      const ck = await loadCheckpoint(process.argv[1]);
      clearInterval(iv); ck.dispose();
      console.log(Math.round(max));`;
    const lag = (preload: boolean) =>
      Number(
        execFileSync(process.execPath, ['--input-type=module', '-e', script, fixturePath('checkpoints', 'vicreg_omegaconf', 'vicreg-cifar10-otu5cw89-ep=999.ckpt')], {
          encoding: 'utf8',
          env: { ...process.env, TORCH_SSL_PRELOAD: preload ? '1' : '0' },
        }).trim(),
      );
    // Loading LibTorch on the JS thread blocks it (~1 s here); on a worker it does not, and what remains is
    // building the modules (~0.2 s). Compared in the same conditions, as other tests may load the CPU.
    const off = lag(false);
    const on = lag(true);
    expect(on, `max lag ${on} ms with the preload vs ${off} ms without`).toBeLessThan(0.6 * off);
  }, 60_000);
});
