#!/usr/bin/env node
// Generates the reference fixtures that tests compare against, with Debian's Python PyTorch (the
// independent oracle), into the git-ignored cache .cache/fixtures/<name>/. Each scripts/fixtures/<name>.py
// is called as `python3 <script> <outDir>`; it is re-run only when the script's content changed.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const srcDir = join(root, 'scripts', 'fixtures');
// $TORCH_SSL_FIXTURES moves the cache (scripts/emulate-avx2.sh keeps references made under its emulation apart).
const cacheDir = process.env.TORCH_SSL_FIXTURES ? resolve(process.env.TORCH_SSL_FIXTURES) : join(root, '.cache', 'fixtures');
// Debian's python3 has python3-torch; a pyenv python first on PATH does not.
const python = process.env.TORCH_SSL_PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
const only = process.argv.slice(2);

mkdirSync(cacheDir, { recursive: true });
const scripts = readdirSync(srcDir)
  .filter((f) => f.endsWith('.py') && !f.startsWith('_'))
  .sort();
let made = 0;
for (const file of scripts) {
  const name = file.slice(0, -3);
  if (only.length > 0 && !only.includes(name)) continue;
  const script = join(srcDir, file);
  const helpers = readdirSync(srcDir).filter((f) => f.startsWith('_') && f.endsWith('.py'));
  const hash = createHash('sha256');
  hash.update(readFileSync(script));
  for (const h of helpers.sort()) hash.update(readFileSync(join(srcDir, h)));
  const digest = hash.digest('hex').slice(0, 16);
  const out = join(cacheDir, name);
  const stamp = join(out, '.stamp');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === digest) continue;
  const tmp = `${out}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const t0 = Date.now();
  try {
    execFileSync(python, [script, tmp], {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, OMP_NUM_THREADS: process.env.OMP_NUM_THREADS ?? '2' },
    });
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    console.error(`fixtures: ${file} failed (python: ${python}). Is python3-torch installed? Run: bash scripts/setup.sh`);
    process.exit(1);
  }
  writeFileSync(join(tmp, '.stamp'), digest);
  rmSync(out, { recursive: true, force: true });
  renameSync(tmp, out);
  made++;
  console.log(`fixtures: ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
}
if (made === 0) console.log('fixtures: up to date');
