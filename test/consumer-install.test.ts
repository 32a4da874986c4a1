// torch-ssl as a dependency of someone else's project, the way a new user meets it: `npm pack`, then a fresh
// folder with `npm install <tarball> typescript @types/node`, whose install script builds the addon there
// with the cmake-js and node-addon-api npm hoisted to the project's node_modules. Then a TypeScript file
// that imports `torch-ssl` and `torch-ssl/checkpoint`, type-checked with `strict` and `module: nodenext` and
// nothing else, builds a ResNet, extracts local features, loads a solo-learn checkpoint and compares its
// features with PyTorch's; and the CLI through `npx torch-ssl` from that project.
//
// The addon's compile is shared across runs through TORCH_SSL_BUILD_CACHE (keyed by a hash of the native
// sources, the LibTorch and the compiler; scripts/build-native.mjs), so a clean clone (CI) compiles it once,
// in the consumer's layout; the install step itself runs every time.
import { execFileSync, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureCheckpointFixtures } from './helpers/checkpoint-fixtures.js';
import { fixturePath } from './helpers/fixtures.js';
import { REPO_ROOT } from './helpers/paths.js';
import { makeTmpDir } from './helpers/tmp.js';

const work = makeTmpDir('install');
const app = join(work, 'app');
const buildCache = join(REPO_ROOT, '.cache', 'addon-builds');

const version = (pkg: string): string =>
  (JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;

function run(cmd: string, args: string[], cwd: string, env: Record<string, string> = {}): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 << 20 });
}

/** The files `npm pack` puts in the tarball (no scripts run: dist/ is the one setup built). */
function packedFiles(): string[] {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: REPO_ROOT, encoding: 'utf8' });
  return (JSON.parse(out) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
}

describe('the published package', () => {
  it('holds what the published commands need and nothing of the repository besides', () => {
    const files = packedFiles();
    for (const needed of [
      'package.json',
      'CMakeLists.txt',
      'scripts/build-native.mjs',
      'configs/demo.yaml',
      'dist/index.js',
      'dist/index.d.ts',
      'dist/checkpoint/index.js',
      'dist/cli/index.js',
      'native/bindings/addon.cc',
      'native/train/trainer.cc',
    ]) {
      expect(files, needed).toContain(needed);
    }
    const stray = files.filter(
      (f) =>
        /^(test|bench|docs|build|\.cache|scripts\/(?!build-native\.mjs$))\//.test(f) ||
        f.endsWith('.map') ||
        f.endsWith('.tgz') ||
        f === 'configs/learning-bench.yaml',
    );
    expect(stray).toEqual([]);
    // Node's own types are the user's choice of version: an optional peer, not a runtime dependency.
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
      peerDependenciesMeta?: Record<string, { optional?: boolean }>;
    };
    expect(Object.keys(pkg.dependencies).filter((d) => d.startsWith('@types/'))).toEqual([]);
    expect(pkg.peerDependenciesMeta?.['@types/node']?.optional).toBe(true);
  });

  it('the build script names LIBTORCH when it points at no LibTorch, before any work', () => {
    const r = run(process.execPath, [join(REPO_ROOT, 'scripts', 'build-native.mjs')], work, { LIBTORCH: join(work, 'no-libtorch-here') });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`LIBTORCH=${join(work, 'no-libtorch-here')} holds no TorchConfig.cmake`);
    expect(r.stderr).toContain('apt-get install libtorch-dev');
  });
});

describe('npm install <tarball> in a fresh project', () => {
  let install: SpawnSyncReturns<string>;
  let installSeconds = 0;
  beforeAll(() => {
    ensureCheckpointFixtures();
    execFileSync('npm', ['pack', '--ignore-scripts', '--pack-destination', work], { cwd: REPO_ROOT, stdio: 'ignore' });
    const tarball = join(work, `torch-ssl-${(JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version}.tgz`);
    mkdirSync(app, { recursive: true });
    execFileSync('npm', ['init', '-y'], { cwd: app, stdio: 'ignore' });
    execFileSync('npm', ['pkg', 'set', 'type=module'], { cwd: app });
    const t0 = performance.now();
    install = run(
      'npm',
      [
        'install',
        '--no-audit',
        '--no-fund',
        '--prefer-offline',
        '--foreground-scripts',
        tarball,
        `typescript@${version('typescript')}`,
        `@types/node@${version('@types/node')}`,
      ],
      app,
      {
        TORCH_SSL_BUILD_CACHE: buildCache,
      },
    );
    installSeconds = (performance.now() - t0) / 1000;
    console.log(`consumer install: ${installSeconds.toFixed(1)} s; tarball ${(readFileSync(tarball).length / 1024).toFixed(0)} KiB`);
  }, 900_000);

  it('runs the install script, which finds the hoisted cmake-js and leaves a loadable addon', () => {
    expect(install.status, install.stdout + install.stderr).toBe(0);
    expect(install.stdout).toMatch(/torch-ssl: building against LibTorch from /);
    expect(install.stdout).toMatch(/torch-ssl: (built build\/Release\/torch_ssl\.node in \d+ s|reused the addon built from these sources)/);
    // npm hoisted the build tools to the project's top level: the layout the old script could not build in.
    expect(existsSync(join(app, 'node_modules', 'cmake-js', 'package.json'))).toBe(true);
    expect(existsSync(join(app, 'node_modules', 'torch-ssl', 'node_modules', 'cmake-js'))).toBe(false);
    expect(existsSync(join(app, 'node_modules', 'torch-ssl', 'build', 'Release', 'torch_ssl.node'))).toBe(true);
  });

  it('a strict nodenext TypeScript file builds a ResNet, extracts local features and loads a solo-learn checkpoint', () => {
    expect(install.status).toBe(0);
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({ compilerOptions: { strict: true, module: 'nodenext' } }));
    writeFileSync(
      join(app, 'index.ts'),
      `import { resnet, extractFeatures, loadCheckpoint, readNpy, Tensor } from 'torch-ssl';
import { inspectCheckpoint, type InspectResult } from 'torch-ssl/checkpoint';

const [ckpt, input, pooledRef] = process.argv.slice(2) as [string, string, string];
const net = resnet({ depth: 18, stem: 'cifar' }).eval();
const images = Tensor.from(Float32Array.from({ length: 2 * 3 * 32 * 32 }, (_, i) => Math.sin(i)), [2, 3, 32, 32]);
const local = await extractFeatures(net, images, { pooling: 'local', normalize: 'none' });

const loaded = await loadCheckpoint(ckpt);
const x = await readNpy(input);
const pooled = await loaded.backbone.forward(x, { grad: false });
const ref = await readNpy(pooledRef);
const a = pooled.toTypedArray();
const b = ref.toTypedArray();
let num = 0;
let den = 0;
for (let i = 0; i < b.length; i++) {
  num += (Number(a[i]) - Number(b[i])) ** 2;
  den += Number(b[i]) ** 2;
}
const info: InspectResult = await inspectCheckpoint(ckpt);
console.log(JSON.stringify({ localShape: local.features.shape, method: loaded.info.method, pooledShape: pooled.shape, refShape: ref.shape, relError: Math.sqrt(num / den), inspected: info.method }));
`,
    );
    const tsc = run(join(app, 'node_modules', '.bin', 'tsc'), ['-p', '.'], app);
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.status).toBe(0);
    const dir = fixturePath('checkpoints', 'vicreg_omegaconf');
    const r = run(
      process.execPath,
      ['index.js', join(dir, 'vicreg-cifar10-otu5cw89-ep=999.ckpt'), join(dir, 'features', 'input.npy'), join(dir, 'features', 'pooled.npy')],
      app,
    );
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
      localShape: number[];
      method: string;
      pooledShape: number[];
      refShape: number[];
      relError: number;
      inspected: string;
    };
    expect(out.localShape).toEqual([2, 2048]); // 512×5×5 → 3×3 stride-2 pooling → 512×2×2
    expect(out.method).toBe('vicreg');
    expect(out.inspected).toBe('vicreg');
    expect(out.pooledShape).toEqual(out.refShape);
    expect(out.relError).toBeLessThan(1e-4); // PyTorch's features of the same file and images
  }, 300_000);

  it('npx torch-ssl --help and npx torch-ssl inspect <ckpt> run from the project', () => {
    expect(install.status).toBe(0);
    const help = run('npx', ['--no-install', 'torch-ssl', '--help'], app);
    expect(help.status, help.stderr).toBe(0);
    for (const cmd of ['train', 'extract', 'inspect', 'demo']) expect(help.stdout).toContain(cmd);
    const ckpt = fixturePath('checkpoints', 'vicreg_omegaconf', 'vicreg-cifar10-otu5cw89-ep=999.ckpt');
    const inspect = run('npx', ['--no-install', 'torch-ssl', 'inspect', ckpt], app);
    expect(inspect.status, inspect.stderr).toBe(0);
    expect(inspect.stdout).toMatch(/^method +vicreg$/m);
    expect(inspect.stdout).toMatch(/ResNet-18, cifar stem/);
    // The demo's recipe ships with the package, where the installed CLI looks for it.
    expect(existsSync(join(app, 'node_modules', 'torch-ssl', 'configs', 'demo.yaml'))).toBe(true);
  }, 120_000);
});
