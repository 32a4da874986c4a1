// The published types as a user meets them: a fresh project made by `tsc --init` (strict,
// exactOptionalPropertyTypes, noUncheckedIndexedAccess, types: []), with skipLibCheck off so our .d.ts are
// checked too, and only what `npm install torch-ssl` would put in node_modules (dist, package.json and the
// runtime dependencies; no devDependencies).
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..');
const tsc = join(root, 'node_modules', '.bin', 'tsc');
const work = mkdtempSync(join(tmpdir(), 'tssl-consumer-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('published types', () => {
  it('compile in a fresh `tsc --init` project without skipLibCheck; results are typed without casts', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const nm = join(work, 'node_modules');
    mkdirSync(join(nm, 'torch-ssl'), { recursive: true });
    cpSync(join(root, 'dist'), join(nm, 'torch-ssl', 'dist'), { recursive: true });
    cpSync(join(root, 'package.json'), join(nm, 'torch-ssl', 'package.json'));
    for (const dep of Object.keys(pkg.dependencies)) {
      mkdirSync(join(nm, dep, '..'), { recursive: true });
      symlinkSync(join(root, 'node_modules', dep), join(nm, dep), 'dir');
    }
    writeFileSync(join(work, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    execFileSync(tsc, ['--init'], { cwd: work, stdio: 'ignore' });
    writeFileSync(
      join(work, 'index.ts'),
      [
        "import { extractFeatures, loadCheckpoint, knn, train, openImageSource, Tensor, type ImageSource, type TrainResult } from 'torch-ssl';",
        "const model = await loadCheckpoint('x.ckpt');",
        "const src: ImageSource = await openImageSource({ path: 't10k-images-idx3-ubyte.gz', size: 32, fit: 'pad', limit: 100 });",
        "const r = await extractFeatures(model, src, { pooling: 'local' });",
        'const t: Tensor = r.features; // in memory: a Tensor, not Tensor | undefined',
        "const s = await extractFeatures(model, 'images.npy', { out: 'f.npy' });",
        'const none: undefined = s.features;',
        'const k = await knn({ trainFeatures: t, trainLabels: r.labels!, testFeatures: t, testLabels: r.labels!, k: 20 });',
        "const run: TrainResult = await train({ method: 'vicreg', data: { train: 'x.npy', limit: 10 } });",
        'console.log(k.top1, none, run.knn.length);',
      ].join('\n'),
    );
    const r = spawnSync(tsc, ['--noEmit', '-p', '.', '--skipLibCheck', 'false'], { cwd: work, encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  }, 60_000);
});
