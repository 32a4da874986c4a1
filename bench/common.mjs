// Shared helpers for the side-by-side benchmarks: run the Python PyTorch reference (Debian's python3,
// same thread count) and print project vs reference with their ratio.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const python = process.env.TORCH_SSL_PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');

export async function lib() {
  const dist = join(root, 'dist', 'index.js');
  if (!existsSync(dist)) throw new Error('dist/ is missing: run `npm run build:ts` (or bash scripts/setup.sh)');
  return import(dist);
}

/**
 * A fair reference: where OpenBLAS misreads this CPU (torch-ssl corrected its own copy: buildInfo().blas), the
 * Python side runs with OPENBLAS_CORETYPE set to the kernels the CPU should use, for that command only. A
 * setting the user or the machine made is left as it is. { env, note } for runPython and the tables.
 */
let fairCache;
export async function fairBlas() {
  fairCache ??= await computeFairBlas();
  return fairCache;
}
async function computeFairBlas() {
  const { buildInfo, describeBlas } = await lib();
  const b = buildInfo().blas;
  if (b.chosenBy === 'torch-ssl') {
    return {
      env: { OPENBLAS_CORETYPE: b.core },
      misread: true,
      note: `OpenBLAS reads this CPU as ${b.detected}: PyTorch runs with OPENBLAS_CORETYPE=${b.core} (as installed: ${b.detected}, printed beside). torch-ssl: ${describeBlas(b)}`,
    };
  }
  return { env: {}, misread: false, note: `${describeBlas(b)}; PyTorch runs on the same OpenBLAS as installed, which reads this CPU correctly` };
}

/** Runs bench/py/<script> with the fair BLAS setting (fairBlas()), unless { blasAsInstalled: true }. */
export function runPython(script, args, threads, extraEnv = {}, { blasAsInstalled = false } = {}) {
  const blasEnv = blasAsInstalled || !fairCache ? {} : fairCache.env;
  const out = execFileSync(python, [join(root, 'bench', 'py', script), ...args.map(String)], {
    encoding: 'utf8',
    env: { ...process.env, OMP_NUM_THREADS: String(threads), ...blasEnv, ...extraEnv },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = out.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

/** The CPU's model name, for every figure a bench prints. */
export function cpuName() {
  const m = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'));
  const flags = /flags\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '';
  const isa = /\bamx_bf16\b/.test(flags)
    ? 'AMX-BF16 + AVX-512'
    : /\bavx512_bf16\b/.test(flags)
      ? 'AVX-512 with BF16'
      : /\bavx512f\b/.test(flags)
        ? 'AVX-512'
        : /\bavx2\b/.test(flags)
          ? 'AVX2'
          : 'no AVX2';
  return `${m?.[1]?.trim() ?? 'unknown CPU'} (${isa})`;
}

/** Prints rows of { name, ours, reference, unit, higherIsBetter } with the speed-up ratio. */
export function table(title, rows) {
  console.log(`\n${title}`);
  console.log(`${'case'.padEnd(44)} ${'torch-ssl'.padStart(12)} ${'PyTorch'.padStart(12)}  ratio`);
  for (const r of rows) {
    const ratio = r.higherIsBetter === false ? r.reference / r.ours : r.ours / r.reference;
    console.log(`${r.name.padEnd(44)} ${r.ours.toFixed(2).padStart(12)} ${r.reference.toFixed(2).padStart(12)}  ${ratio.toFixed(2)}x  (${r.unit})`);
  }
}

export function threadsFromEnv() {
  return Number.parseInt(process.env.BENCH_THREADS ?? '', 10) || (globalThis.navigator?.hardwareConcurrency ?? 2);
}

// Every bench that imports this module runs its PyTorch side fairly (see fairBlas) and says so once.
console.log((await fairBlas()).note);
