// Shared helpers for the side-by-side benchmarks: run the Python PyTorch reference (Debian's python3,
// same thread count) and print project vs reference with their ratio.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const python = process.env.TORCH_SSL_PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');

export async function lib() {
  const dist = join(root, 'dist', 'index.js');
  if (!existsSync(dist)) throw new Error('dist/ is missing: run `npm run build:ts` (or bash scripts/setup.sh)');
  return import(dist);
}

export function runPython(script, args, threads, extraEnv = {}) {
  const out = execFileSync(python, [join(root, 'bench', 'py', script), ...args.map(String)], {
    encoding: 'utf8',
    env: { ...process.env, OMP_NUM_THREADS: String(threads), ...extraEnv },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = out.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
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
