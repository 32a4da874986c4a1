#!/usr/bin/env node
// Builds the native addon with cmake-js against a LibTorch found, in this order, at:
//   1. $LIBTORCH            an unpacked LibTorch (…/share/cmake/Torch/TorchConfig.cmake)
//   2. Python's torch       `python3 -c "import torch; print(torch.utils.cmake_prefix_path)"` (CUDA machines)
//   3. the system           Debian's libtorch-dev (/usr/lib/<multiarch>/cmake/Torch)
// Nothing is downloaded: package.json's binary.napi_versions makes cmake-js use node-api-headers.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const tried = [];

function torchConfigUnder(prefix) {
  for (const sub of ['share/cmake/Torch', 'lib/cmake/Torch', 'cmake/Torch', '']) {
    const dir = join(prefix, sub);
    if (existsSync(join(dir, 'TorchConfig.cmake'))) return dir;
  }
  return undefined;
}

function fromEnv() {
  const p = process.env.LIBTORCH;
  if (!p) return undefined;
  const dir = torchConfigUnder(p);
  tried.push(`LIBTORCH=${p}${dir ? '' : ' (no TorchConfig.cmake under it)'}`);
  return dir ? { source: `LIBTORCH (${p})`, prefix: p, torchDir: dir, system: false } : undefined;
}

function fromPython() {
  if (process.env.TORCH_SSL_NO_PYTHON_TORCH) return undefined;
  for (const py of ['python3', '/usr/bin/python3']) {
    const r = spawnSync(py, ['-c', 'import torch, torch.utils; print(torch.utils.cmake_prefix_path)'], { encoding: 'utf8' });
    if (r.status !== 0) {
      tried.push(`${py}: no importable torch`);
      continue;
    }
    const prefix = r.stdout.trim();
    const dir = torchConfigUnder(join(prefix, '..', '..')) ?? torchConfigUnder(prefix);
    if (!dir || dir.startsWith('/usr/lib/') && !dir.includes('python')) {
      tried.push(`${py}: torch at ${prefix} has no TorchConfig.cmake`);
      continue;
    }
    return { source: `Python torch (${py})`, prefix: resolve(dir, '..', '..', '..'), torchDir: dir, system: false };
  }
  return undefined;
}

function fromSystem() {
  const candidates = ['/usr/lib/x86_64-linux-gnu/cmake/Torch', '/usr/lib/aarch64-linux-gnu/cmake/Torch', '/usr/lib/cmake/Torch', '/usr/share/cmake/Torch'];
  try {
    for (const d of readdirSync('/usr/lib')) if (d.endsWith('-linux-gnu')) candidates.push(`/usr/lib/${d}/cmake/Torch`);
  } catch {}
  for (const dir of candidates) if (existsSync(join(dir, 'TorchConfig.cmake'))) return { source: 'system (libtorch-dev)', torchDir: dir, system: true };
  tried.push(`system: no TorchConfig.cmake in ${candidates.slice(0, 3).join(', ')}`);
  return undefined;
}

const found = fromEnv() ?? fromPython() ?? fromSystem();
if (!found) {
  console.error(`torch-ssl: no LibTorch found. Looked at:\n  - ${tried.join('\n  - ')}\nFixes:\n` +
    '  - Debian/Ubuntu: sudo apt-get install libtorch-dev libopenblas0-pthread (or run: bash scripts/setup.sh)\n' +
    '  - an unpacked LibTorch: LIBTORCH=/path/to/libtorch npm rebuild torch-ssl\n' +
    '  - a PyTorch install: make `python3 -c "import torch"` work, then npm rebuild torch-ssl');
  process.exit(1);
}
console.log(`torch-ssl: building against LibTorch from ${found.source}: ${found.torchDir}`);
const cmakeJs = join(root, 'node_modules', 'cmake-js', 'bin', 'cmake-js');
const args = [cmakeJs, 'compile', '--directory', root, `--CDTorch_DIR=${found.torchDir}`, `--CDTSSL_SYSTEM_TORCH=${found.system ? 'ON' : 'OFF'}`];
if (found.prefix) args.push(`--CDCMAKE_PREFIX_PATH=${found.prefix}`);
if (process.env.TORCH_SSL_DEBUG) args.push('--debug');
const jobs = process.env.CMAKE_BUILD_PARALLEL_LEVEL ?? '2';
try {
  execFileSync(process.execPath, args, { stdio: 'inherit', cwd: root, env: { ...process.env, CMAKE_BUILD_PARALLEL_LEVEL: jobs } });
} catch {
  console.error('torch-ssl: the native build failed (see above). Run `npm run build` to retry; `rm -rf build` for a clean one.');
  process.exit(1);
}
