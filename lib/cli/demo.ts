/**
 * `torch-ssl demo`: the README's main job on real data bundled at set-up (scikit-learn's digits and photos,
 * exported by scripts/setup.sh into .cache/datasets). Nothing is downloaded.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { TorchSslError } from '../errors.js';
import { getNumThreads, buildInfo } from '../native.js';
import { resnet } from '../models.js';
import { Tensor } from '../tensor.js';
import { readNpyFile } from '../npy.js';
import { NORMALIZATIONS } from '../data/normalization.js';

const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DATASETS_DIR = process.env.TORCH_SSL_DATASETS ?? join(packageRoot, '.cache', 'datasets');

export function datasetPath(name: string): string {
  const p = join(DATASETS_DIR, name);
  if (!existsSync(p)) {
    throw new TorchSslError('ERR_IO', `bundled dataset ${p} is missing: run \`bash scripts/setup.sh\` (exports scikit-learn's digits and photos)`);
  }
  return p;
}

/** uint8 (N, H, W, 3) → normalised float32 (N, 3, H, W). */
export function normaliseNHWC(pixels: Uint8Array, shape: number[], mean: readonly number[], std: readonly number[]): Tensor {
  const [n, h, w] = shape as [number, number, number];
  const out = new Float32Array(n * 3 * h * w);
  const plane = h * w;
  for (let i = 0; i < n; i++) {
    for (let p = 0; p < plane; p++) {
      const src = (i * plane + p) * 3;
      for (let c = 0; c < 3; c++) out[(i * 3 + c) * plane + p] = (pixels[src + c]! / 255 - mean[c]!) / std[c]!;
    }
  }
  return Tensor.from(out, [n, 3, h, w]);
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('run the main job on real data bundled at set-up (digits, photos); nothing is downloaded')
    .action(async () => {
      const info = buildInfo();
      console.log(`torch-ssl demo — LibTorch ${info.torchVersion}, ${getNumThreads()} threads${info.cudaAvailable ? ', CUDA available' : ''}`);
      const digits = await readNpyFile(datasetPath('digits-train.npy'));
      const norm = NORMALIZATIONS.cifar10;
      const x = normaliseNHWC(digits.data as Uint8Array, digits.shape, norm.mean, norm.std);
      const batch = x.narrow(0, 0, 256);
      const net = resnet({ depth: 18, stem: 'cifar' }).eval();
      await net.forward(batch.narrow(0, 0, 8), { grad: false });
      const t0 = performance.now();
      const feats = await net.featureMap(batch, { grad: false });
      const s = (performance.now() - t0) / 1000;
      console.log(`ResNet-18 (CIFAR stem) on ${batch.shape[0]} real digits: layer4 map [${feats.shape.join(', ')}], ${(batch.shape[0]! / s).toFixed(1)} images/s`);
    });
}
