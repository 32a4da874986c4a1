#!/usr/bin/env node
// Evidence of learning on real data: the demo's recipe (configs/demo.yaml: self-supervised training on the
// first 2000 Fashion-MNIST training images at 16×16, Debian's dataset-fashion-mnist) for N epochs, with the
// online kNN (k 20, T 0.07, cosine) of the backbone's pooled features on 2000 held-out test images before
// training (the random-init baseline) and after every epoch.
// Usage: node scripts/learning-evidence.mjs [epochs] [key=value ...]   (overrides as with `torch-ssl train --set`,
// e.g. method=simclr optimizer.lr=0.1 precision=bf16-mixed)
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const epochs = Number.parseInt(process.argv[2] ?? '20', 10);
if (!Number.isSafeInteger(epochs) || epochs <= 0) throw new Error(`epochs must be a positive integer, got ${process.argv[2]}`);
const { train } = await import(join(root, 'dist', 'index.js'));
const { applyOverrides } = await import(join(root, 'dist', 'config-overrides.js'));
const dir = mkdtempSync(join(tmpdir(), 'tssl-evidence-'));
const recipe = YAML.parse(readFileSync(join(root, 'configs', 'demo.yaml'), 'utf8'));
const config = applyOverrides({ ...recipe, epochs, knn: { every: 1 }, checkpoint: { dir, every: 0 } }, process.argv.slice(3), (s) => YAML.parse(s));
const t0 = Date.now();
try {
  const result = await train(config, {
    onProgress: (e) => {
      const at = `${((Date.now() - t0) / 1000).toFixed(0)} s`;
      if (e.type === 'knn') console.log(`epoch ${e.epoch}: kNN top-1 ${e.top1.toFixed(2)}% top-5 ${e.top5.toFixed(2)}% (${at})`);
      if (e.type === 'epoch') console.log(`epoch ${e.epoch}: loss ${e.loss.toFixed(4)} (${at})`);
    },
  });
  console.log(JSON.stringify({ method: config.method, knn: result.knn, imagesPerSec: result.imagesPerSec, seconds: (Date.now() - t0) / 1000 }));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
