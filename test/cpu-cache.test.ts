import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resnet } from '../lib/models.js';
import { cpuCacheInfo, releaseCpuCache } from '../lib/native.js';
import { Tensor } from '../lib/tensor.js';
import { REPO_ROOT } from './helpers/paths.js';

const addon = join(REPO_ROOT, 'build', 'Release', 'torch_ssl.node');

describe('caching CPU allocator', () => {
  it('serves repeated activations from the cache, changes no result, and gives memory back on release', async () => {
    expect(cpuCacheInfo().installed).toBe(true);
    const model = resnet({ depth: 18, stem: 'cifar' });
    model.eval();
    const x = Tensor.from(
      Float32Array.from({ length: 16 * 3 * 32 * 32 }, (_, i) => Math.sin(i * 0.37)),
      [16, 3, 32, 32],
    );
    releaseCpuCache();
    const before = cpuCacheInfo();
    const a = await model.forward(x, { grad: false });
    const mid = cpuCacheInfo();
    expect(mid.cachedBytes).toBeGreaterThan(0); // the first pass's freed activations wait in the free lists
    const b = await model.forward(x, { grad: false });
    const after = cpuCacheInfo();
    expect(after.hits).toBeGreaterThan(mid.hits); // the second pass reused them
    expect(after.misses - mid.misses).toBeLessThan(mid.misses - before.misses);
    // Reused blocks hold the previous pass's bytes; nothing may depend on fresh memory being zero.
    expect(Array.from(b.toTypedArray() as Float32Array)).toEqual(Array.from(a.toTypedArray() as Float32Array));
    releaseCpuCache();
    expect(cpuCacheInfo().cachedBytes).toBe(0);
  });

  it("TORCH_SSL_CPU_CACHE_MB=0 keeps LibTorch's system allocator; a size sets the cap, and the cap holds", () => {
    const probe = `const a = require(${JSON.stringify(addon)}); const t = a.fromBuffer(new Float32Array(1 << 20), 'float32', [1 << 20]); console.log(JSON.stringify(a.cpuCacheInfo()))`;
    const off = JSON.parse(execFileSync(process.execPath, ['-e', probe], { env: { ...process.env, TORCH_SSL_CPU_CACHE_MB: '0' }, encoding: 'utf8' }));
    expect(off).toMatchObject({ installed: false, cachedBytes: 0, hits: 0 });
    const on = JSON.parse(execFileSync(process.execPath, ['-e', probe], { env: { ...process.env, TORCH_SSL_CPU_CACHE_MB: '64' }, encoding: 'utf8' }));
    expect(on).toMatchObject({ installed: true, capBytes: 64 * 2 ** 20 });
    // The cap holds: with 1 MiB, a freed 4 MiB block goes back to the system, a freed 512 KiB one is kept.
    const capped =
      `const a = require(${JSON.stringify(addon)}); const big = a.fromBuffer(new Float32Array(1 << 20), 'float32', [1 << 20]).op('mulScalar', 2); big.dispose(); const b = a.cpuCacheInfo().cachedBytes;` +
      ` const small = a.fromBuffer(new Float32Array(1 << 17), 'float32', [1 << 17]).op('mulScalar', 2); small.dispose(); console.log(JSON.stringify([b, a.cpuCacheInfo().cachedBytes]))`;
    const [afterBig, afterSmall] = JSON.parse(
      execFileSync(process.execPath, ['-e', capped], { env: { ...process.env, TORCH_SSL_CPU_CACHE_MB: '1' }, encoding: 'utf8' }),
    );
    expect(afterBig).toBe(0);
    expect(afterSmall).toBe(512 * 1024);
  });
});
