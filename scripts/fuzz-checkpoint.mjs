#!/usr/bin/env node
// Long fuzz run of the checkpoint reader: `node scripts/fuzz-checkpoint.mjs [cases=100000] [seed=random]`.
// Runs test/checkpoint-fuzz.test.ts with more cases and another seed; a failing variant is kept as
// failing.bin in the temporary folder the test names, and the seed in the message reproduces it.
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const cases = Number(process.argv[2] ?? 100_000);
const seed = Number(process.argv[3] ?? Math.floor(Math.random() * 2 ** 31));
if (!Number.isSafeInteger(cases) || cases < 1 || !Number.isSafeInteger(seed)) {
  console.error('usage: node scripts/fuzz-checkpoint.mjs [cases] [seed]');
  process.exit(2);
}
console.log(`fuzz-checkpoint: ${cases} cases, seed ${seed}`);
const r = spawnSync(process.execPath, [join(root, 'node_modules', 'vitest', 'vitest.mjs'), 'run', 'test/checkpoint-fuzz.test.ts'], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, TORCH_SSL_FUZZ_CASES: String(cases), TORCH_SSL_FUZZ_SEED: String(seed) },
});
process.exit(r.status ?? 1);
