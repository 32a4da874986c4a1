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
