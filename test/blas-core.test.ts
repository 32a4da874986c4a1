// The BLAS under the engine's GEMMs never runs on kernels older than the CPU (Debian 12's OpenBLAS 0.3.21
// takes some AVX-512 Xeons for "Prescott", a 6-7× slower sgemm), and a setting the user or the machine made
// is always honoured. Each case is a fresh Node process: OpenBLAS chooses its kernels once, when it loads.
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './helpers/paths.js';

const machineSetting = process.env.OPENBLAS_CORETYPE;

interface Probe {
  blas: { library: string; core: string; detected: string; chosenBy: string; cpuIsa: string };
  envAfterLoad: string | null;
  maxError: number;
  line: string;
}

/** Loads the addon in a child with `env` added, and multiplies two matrices against a float64 product in JS. */
function probe(env: Record<string, string>): Probe {
  const script = `
    import { buildInfo, describeBlas, Tensor } from ${JSON.stringify(resolve(REPO_ROOT, 'dist', 'index.js'))};
    const n = 67, k = 129, m = 35;
    const a = Float32Array.from({ length: n * k }, (_, i) => Math.sin(i * 0.37));
    const b = Float32Array.from({ length: k * m }, (_, i) => Math.cos(i * 0.11));
    const c = Tensor.from(a, [n, k]).matmul(Tensor.from(b, [k, m])).toTypedArray();
    let maxError = 0;
    for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a[i * k + p] * b[p * m + j];
      maxError = Math.max(maxError, Math.abs(s - c[i * m + j]));
    }
    const blas = buildInfo().blas;
    console.log(JSON.stringify({ blas, envAfterLoad: process.env.OPENBLAS_CORETYPE ?? null, maxError, line: describeBlas(blas) }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: REPO_ROOT, encoding: 'utf8', env: { ...process.env, ...env } });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Probe;
}

const rank = (core: string): number =>
  /^(skylakex|cooperlake|sapphirerapids)$/i.test(core)
    ? 3
    : /^(haswell|zen|excavator|steamroller|skylake)$/i.test(core)
      ? 2
      : /^(sandybridge|bulldozer|piledriver)$/i.test(core)
        ? 1
        : 0;

describe('the BLAS kernels the engine runs on', () => {
  it('as this machine runs it: kernels for its CPU, or the OPENBLAS_CORETYPE it set, untouched', () => {
    const p = probe({});
    expect(p.blas.library).toBe('OpenBLAS');
    if (machineSetting) {
      expect(p.blas.chosenBy).toBe('OPENBLAS_CORETYPE');
      expect(p.envAfterLoad).toBe(machineSetting);
    } else {
      expect(['OpenBLAS', 'torch-ssl']).toContain(p.blas.chosenBy);
      if (p.blas.cpuIsa === 'avx512' || p.blas.cpuIsa === 'avx2') expect(rank(p.blas.core)).toBeGreaterThanOrEqual(2);
      expect(p.envAfterLoad).toBeNull(); // children of the process get the environment it was given
    }
    expect(p.maxError).toBeLessThan(1e-4);
    expect(p.line).toMatch(/^BLAS: OpenBLAS [\d.]+, \w+ kernels \(/);
  }, 60_000);

  it.skipIf(machineSetting !== undefined)(
    'corrects an OpenBLAS that took the CPU for Prescott, and its GEMMs stay right',
    () => {
      const p = probe({ TORCH_SSL_SIMULATE_BLAS_MISREAD: 'Prescott' });
      expect(p.blas.detected).toBe('Prescott');
      if (p.blas.cpuIsa === 'avx512' || p.blas.cpuIsa === 'avx2') {
        expect(p.blas.chosenBy).toBe('torch-ssl');
        expect(rank(p.blas.core)).toBe(p.blas.cpuIsa === 'avx512' ? 3 : 2);
        expect(p.line).toContain(`OpenBLAS read this ${p.blas.cpuIsa.toUpperCase()} CPU as Prescott`);
      }
      expect(p.envAfterLoad).toBeNull();
      expect(p.maxError).toBeLessThan(1e-4);
    },
    60_000,
  );

  it.skipIf(machineSetting !== undefined)(
    'honours OPENBLAS_CORETYPE when the user set it, even to slower kernels',
    () => {
      const p = probe({ OPENBLAS_CORETYPE: 'Prescott' });
      expect(p.blas.core).toBe('Prescott');
      expect(p.blas.chosenBy).toBe('OPENBLAS_CORETYPE');
      expect(p.envAfterLoad).toBe('Prescott');
      expect(p.line).toContain('OPENBLAS_CORETYPE=Prescott, as set');
      expect(p.maxError).toBeLessThan(1e-4);
    },
    60_000,
  );
});
