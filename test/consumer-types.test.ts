// The published types as a user meets them: a fresh project made by `tsc --init` (strict,
// exactOptionalPropertyTypes, noUncheckedIndexedAccess, types: []), with skipLibCheck off so our .d.ts are
// checked too, and only what `npm install torch-ssl @types/node` would put in node_modules (dist, package.json,
// the runtime dependencies and the peer @types/node, which README asks TypeScript users to install; no
// devDependencies).
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './helpers/paths.js';
import { makeTmpDir } from './helpers/tmp.js';

const tsc = join(REPO_ROOT, 'node_modules', '.bin', 'tsc');
const work = makeTmpDir('consumer');

describe('published types', () => {
  // The consumer project: made once, used by both tests.
  let made = false;
  function consumer(): void {
    if (made) return;
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
      peerDependencies: Record<string, string>;
    };
    const nm = join(work, 'node_modules');
    mkdirSync(join(nm, 'torch-ssl'), { recursive: true });
    cpSync(join(REPO_ROOT, 'dist'), join(nm, 'torch-ssl', 'dist'), { recursive: true });
    cpSync(join(REPO_ROOT, 'package.json'), join(nm, 'torch-ssl', 'package.json'));
    for (const dep of [...Object.keys(pkg.dependencies), ...Object.keys(pkg.peerDependencies)]) {
      mkdirSync(join(nm, dep, '..'), { recursive: true });
      symlinkSync(join(REPO_ROOT, 'node_modules', dep), join(nm, dep), 'dir');
    }
    writeFileSync(join(work, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    execFileSync(tsc, ['--init'], { cwd: work, stdio: 'ignore' });
    made = true;
  }

  it('compile in a fresh `tsc --init` project without skipLibCheck; results are typed without casts', () => {
    consumer();
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

  // A user copies the docs' imports as they are: each must name a path the package exports and names it
  // exports, and type-check under the same settings (type-only names need `import type` there).
  it('every import of torch-ssl in README.md and docs/*.md resolves and type-checks in that project', () => {
    consumer();
    const docs = [
      'README.md',
      ...readdirSync(join(REPO_ROOT, 'docs'))
        .filter((f) => f.endsWith('.md'))
        .map((f) => join('docs', f)),
    ];
    const imports: string[] = [];
    for (const doc of docs) {
      const text = readFileSync(join(REPO_ROOT, doc), 'utf8');
      for (const block of text.matchAll(/```(?:ts|js|mjs|typescript|javascript)\n([\s\S]*?)```/g)) {
        for (const m of block[1]!.matchAll(/^import\s[\s\S]*?\sfrom\s+['"]([^'"]+)['"];?/gm)) {
          const spec = m[1]!;
          if (spec.startsWith('node:')) continue;
          expect(spec, `${doc}: ${m[0]}`).toMatch(/^torch-ssl(\/|$)/); // not an internal path of this repository
          imports.push(`// ${doc}\n${m[0]}\n`);
        }
      }
    }
    expect(imports.length).toBeGreaterThanOrEqual(5);
    const dir = join(work, 'docs-imports');
    mkdirSync(dir, { recursive: true });
    imports.forEach((src, i) => writeFileSync(join(dir, `import-${i}.ts`), `${src}export {};\n`));
    const r = spawnSync(tsc, ['--noEmit', '-p', '.', '--skipLibCheck', 'false'], { cwd: work, encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
    // And Node resolves each path at run time (the exports map's "default" entries).
    for (const spec of new Set(imports.map((src) => /from\s+['"]([^'"]+)['"]/.exec(src)![1]!))) {
      const run = spawnSync(
        process.execPath,
        ['--input-type=module', '-e', `const m = await import(${JSON.stringify(spec)}); console.log(Object.keys(m).length);`],
        { cwd: work, encoding: 'utf8' },
      );
      expect(run.stderr, spec).toBe('');
      expect(Number(run.stdout.trim()), spec).toBeGreaterThan(0);
    }
  }, 60_000);
});
