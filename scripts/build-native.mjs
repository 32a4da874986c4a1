#!/usr/bin/env node
// Builds the native addon (build/Release/torch_ssl.node) with cmake-js against a LibTorch found, in this order, at:
//   1. $LIBTORCH            an unpacked LibTorch (…/share/cmake/Torch/TorchConfig.cmake)
//   2. Python's torch       `python3 -c "import torch; print(torch.utils.cmake_prefix_path)"` (CUDA machines)
//   3. the system           Debian's libtorch-dev (/usr/lib/<multiarch>/cmake/Torch)
// Nothing is downloaded: package.json's binary.napi_versions makes cmake-js use node-api-headers.
//
// This is the package's install script, so it runs in two layouts: in this repository (npm ci), and inside a
// user's project, where npm, pnpm and yarn put torch-ssl's dependencies wherever their layout says (hoisted to
// the project's node_modules, or beside the package in pnpm's store). cmake-js and node-addon-api are therefore
// resolved the way Node resolves modules, from this package's folder, never by a path under it.
//
// TORCH_SSL_BUILD_CACHE=<dir>: keep each build under <dir>/<key>/, the key a hash of everything the addon is
// built from (the native sources, CMakeLists.txt, this script, the LibTorch found, the compiler), and copy a
// build with the same key instead of compiling again (CI caches, several projects on one machine).
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const addon = join(root, 'build', process.env.TORCH_SSL_DEBUG ? 'Debug' : 'Release', 'torch_ssl.node');
const tried = [];

function fail(message) {
  console.error(`torch-ssl: ${message}`);
  process.exit(1);
}

/** A package's folder as Node finds it from torch-ssl's own folder (hoisted, nested or pnpm's store). */
function packageDir(name, why) {
  const require = createRequire(join(root, 'package.json'));
  try {
    return dirname(require.resolve(`${name}/package.json`));
  } catch {
    fail(
      `cannot find the package ${name} (${why}) from ${root}. It is one of torch-ssl's dependencies, so the ` +
        'package manager should have installed it: reinstall without --no-optional / --omit settings that drop it, ' +
        `or add it to your project (npm install ${name}).`,
    );
  }
}

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
  // Set on purpose, so never passed over for another LibTorch.
  if (!dir) {
    fail(
      `LIBTORCH=${p} holds no TorchConfig.cmake (looked in share/cmake/Torch, lib/cmake/Torch, cmake/Torch and ` +
        'the folder itself). Point it at an unpacked LibTorch (the folder with include/, lib/ and share/), or unset it to ' +
        "use Python's torch or the system's libtorch-dev (sudo apt-get install libtorch-dev).",
    );
  }
  return { source: `LIBTORCH (${p})`, prefix: p, torchDir: dir, system: false };
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
    if (!dir || (dir.startsWith('/usr/lib/') && !dir.includes('python'))) {
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
  } catch {
    // no /usr/lib (not Linux): the fixed candidates only
  }
  for (const dir of candidates) if (existsSync(join(dir, 'TorchConfig.cmake'))) return { source: 'system (libtorch-dev)', torchDir: dir, system: true };
  tried.push(`system: no TorchConfig.cmake in ${candidates.slice(0, 3).join(', ')}`);
  return undefined;
}

/** Every file under dir, relative to root, sorted (the cache key must not depend on readdir's order). */
function filesUnder(dir) {
  const out = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else if (e.isFile()) out.push(relative(root, p));
  }
  return out.sort();
}

function cacheKey(found) {
  const h = createHash('sha256');
  for (const f of [...filesUnder(join(root, 'native')), 'CMakeLists.txt', 'scripts/build-native.mjs']) {
    h.update(`${f}\0`)
      .update(readFileSync(join(root, f)))
      .update('\0');
  }
  const version = join(found.torchDir, 'TorchConfigVersion.cmake');
  h.update(`${found.torchDir}\0${existsSync(version) ? readFileSync(version, 'utf8') : ''}\0`);
  const cxx = process.env.CXX || 'c++';
  const cv = spawnSync(cxx, ['--version'], { encoding: 'utf8' });
  h.update(`${cxx}\0${cv.stdout ?? ''}\0${process.platform}-${process.arch}\0${process.env.TORCH_SSL_DEBUG ? 'debug' : 'release'}`);
  return h.digest('hex').slice(0, 24);
}

const cmakeJsDir = packageDir('cmake-js', 'it drives the native build');
const cmakeJsPkg = JSON.parse(readFileSync(join(cmakeJsDir, 'package.json'), 'utf8'));
const cmakeJs = join(cmakeJsDir, typeof cmakeJsPkg.bin === 'string' ? cmakeJsPkg.bin : cmakeJsPkg.bin['cmake-js']);
// cmake-js finds node-addon-api's headers the same way; a missing one would surface as "napi.h: No such file".
const napiDir = packageDir('node-addon-api', 'the C++ headers of the addon');
if (!existsSync(join(napiDir, 'napi.h'))) fail(`${napiDir} has no napi.h: reinstall node-addon-api`);

const found = fromEnv() ?? fromPython() ?? fromSystem();
if (!found) {
  fail(
    `no LibTorch found. Looked at:\n  - ${tried.join('\n  - ')}\nFixes:\n` +
      '  - Debian/Ubuntu: sudo apt-get install libtorch-dev libopenblas0-pthread cmake g++\n' +
      '  - an unpacked LibTorch: LIBTORCH=/path/to/libtorch npm rebuild torch-ssl\n' +
      '  - a PyTorch install: make `python3 -c "import torch"` work, then npm rebuild torch-ssl',
  );
}
for (const [tool, pkg] of [
  ['cmake', 'cmake'],
  [process.env.CXX || 'c++', 'g++'],
]) {
  if (spawnSync(tool, ['--version'], { stdio: 'ignore' }).error) {
    fail(`\`${tool}\` is not on PATH; the addon is compiled from source. Debian/Ubuntu: sudo apt-get install ${pkg}`);
  }
}
console.log(`torch-ssl: building against LibTorch from ${found.source}: ${found.torchDir}`);

const cacheRoot = process.env.TORCH_SSL_BUILD_CACHE ? resolve(process.env.TORCH_SSL_BUILD_CACHE) : undefined;
const key = cacheRoot ? cacheKey(found) : undefined;
const cached = cacheRoot ? join(cacheRoot, key, 'torch_ssl.node') : undefined;
if (cached && existsSync(cached)) {
  mkdirSync(dirname(addon), { recursive: true });
  copyFileSync(cached, `${addon}.tmp`);
  renameSync(`${addon}.tmp`, addon);
  console.log(`torch-ssl: reused the addon built from these sources (key ${key}) in ${cacheRoot}`);
  process.exit(0);
}

const args = [cmakeJs, 'compile', '--directory', root, `--CDTorch_DIR=${found.torchDir}`, `--CDTSSL_SYSTEM_TORCH=${found.system ? 'ON' : 'OFF'}`];
if (found.prefix) args.push(`--CDCMAKE_PREFIX_PATH=${found.prefix}`);
if (process.env.TORCH_SSL_DEBUG) args.push('--debug');
const jobs = process.env.CMAKE_BUILD_PARALLEL_LEVEL ?? '2';
const t0 = Date.now();
try {
  execFileSync(process.execPath, args, { stdio: 'inherit', cwd: root, env: { ...process.env, CMAKE_BUILD_PARALLEL_LEVEL: jobs } });
} catch {
  fail('the native build failed (see above). Run `npm rebuild torch-ssl` to retry (in this repository: `npm run build`; `rm -rf build` for a clean one).');
}
console.log(`torch-ssl: built ${relative(process.cwd(), addon) || addon} in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
if (cached) {
  const staging = join(cacheRoot, `.${key}.${process.pid}`);
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  copyFileSync(addon, join(staging, 'torch_ssl.node'));
  try {
    renameSync(staging, join(cacheRoot, key));
  } catch {
    rmSync(staging, { recursive: true, force: true }); // another build stored the same key first
  }
  if (statSync(cached, { throwIfNoEntry: false })) console.log(`torch-ssl: stored the build as ${key} in ${cacheRoot}`);
}
