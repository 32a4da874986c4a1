/**
 * `torch-ssl demo`: the README's main job, end to end on real data bundled at set-up (scikit-learn's
 * digits, exported by scripts/setup.sh into .cache/datasets; nothing is downloaded):
 * SimCLR training of a CIFAR-stem ResNet-18 on the digits at 16×16 (native loop, batched augmentation,
 * LARS, warmup-cosine) with online kNN before and after → solo-learn-layout checkpoint → loadCheckpoint →
 * local-aggregated 2048-d features at 32×32 (layer4 512×5×5 → avg-pool 3/2) → weighted kNN.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { TorchSslError } from '../errors.js';
import { buildInfo, getNumThreads } from '../native.js';
import { train, type TrainEvent } from '../train.js';
import { loadCheckpoint } from '../checkpoint/load.js';
import { extractFeatures } from '../features.js';
import { knn } from '../eval.js';

const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DATASETS_DIR = process.env.TORCH_SSL_DATASETS ?? join(packageRoot, '.cache', 'datasets');

export function datasetPath(name: string): string {
  const p = join(DATASETS_DIR, name);
  if (!existsSync(p)) {
    throw new TorchSslError('ERR_IO', `bundled dataset ${p} is missing: run \`bash scripts/setup.sh\` (exports scikit-learn's digits and photos)`);
  }
  return p;
}

export interface DemoOptions {
  epochs: number;
  batchSize: number;
  lr: number;
  out: string;
  log?: (line: string) => void;
}

export interface DemoSummary {
  trainImagesPerSec: number;
  augmentMsPerStep: number;
  stepMsPerStep: number;
  onlineKnn: { epoch: number; top1: number; top5: number }[];
  localKnnTrained: { top1: number; top5: number };
  extractImagesPerSec: number;
  featureDim: number;
  checkpoint: string;
  seconds: number;
}

/** Runs the demo pipeline; the CLI prints its log lines, tests call it directly. */
export async function runDemo(o: DemoOptions): Promise<DemoSummary> {
  const log = o.log ?? ((l: string) => console.log(l));
  const t0 = performance.now();
  const trainPath = datasetPath('digits-train.npy');
  const testPath = datasetPath('digits-test.npy');
  const info = buildInfo();
  log(`torch-ssl demo — LibTorch ${info.torchVersion}, ${getNumThreads()} threads${info.cudaAvailable ? ', CUDA available' : ''}`);
  log(`data: scikit-learn digits (real, 32×32 RGB): 1297 train / 500 test`);

  log(`training SimCLR, ResNet-18 (CIFAR stem), ${o.epochs} epochs, batch ${o.batchSize}, 2 views of 16×16 digits, LARS + warmup-cosine…`);
  const onProgress = (e: TrainEvent) => {
    if (e.type === 'epoch') log(`  epoch ${e.epoch}: loss ${e.loss.toFixed(3)}`);
    if (e.type === 'knn') log(`  online kNN (512-d pooled, 16×16) ${e.epoch === 0 ? 'of the random init' : `after epoch ${e.epoch}`}: top-1 ${e.top1.toFixed(2)}%`);
  };
  const result = await train(
    {
      method: 'simclr',
      data: { train: datasetPath('digits16-train.npy'), val: datasetPath('digits16-test.npy'), normalization: 'cifar10' },
      augmentation: [{ size: 16, scale: [0.5, 1], jitter: { p: 0.8, brightness: 0.4, contrast: 0.4, saturation: 0, hue: 0 }, grayscale: 0, flip: 0 }],
      batchSize: o.batchSize,
      epochs: o.epochs,
      optimizer: { lr: o.lr, eta: 0.002 },
      scheduler: { warmupEpochs: 1 },
      knn: { every: o.epochs },
      checkpoint: { dir: o.out, every: 0, name: 'demo-simclr' },
      logEvery: 5,
      seed: 5,
    },
    { onProgress },
  );
  log(`  ${result.imagesPerSec.toFixed(1)} images/s (2 views each); per step: augmentation ${result.augmentMsPerStep.toFixed(0)} ms on the producer thread, training ${result.stepMsPerStep.toFixed(0)} ms, waiting for data ${result.waitMsPerStep.toFixed(0)} ms`);
  log(`checkpoint (solo-learn layout): ${result.checkpoint}`);
  const localKnn = async (model: Parameters<typeof extractFeatures>[0]) => {
    const s0 = performance.now();
    const a = await extractFeatures(model, trainPath, { pooling: 'local', normalize: 'cifar10' });
    const b = await extractFeatures(model, testPath, { pooling: 'local', normalize: 'cifar10' });
    const seconds = (performance.now() - s0) / 1000;
    const r = await knn({ trainFeatures: a.features!, trainLabels: a.labels!, testFeatures: b.features!, testLabels: b.labels!, k: 20, temperature: 0.07 });
    return { ...r, dim: a.dim, imagesPerSec: (a.count + b.count) / seconds };
  };
  const loaded = await loadCheckpoint(result.checkpoint);
  log(`loaded: ${loaded.info.method ?? 'vicreg'}, ResNet-${loaded.info.depth} ${loaded.info.stem} stem, epoch ${loaded.info.epoch}`);
  const after = await localKnn(loaded);
  loaded.dispose();
  log(`local ${after.dim}-d features of the trained backbone at 32×32 (512×5×5 → avg-pool 3/2): kNN top-1 ${after.top1.toFixed(2)}%, top-5 ${after.top5.toFixed(2)}%`);
  const seconds = (performance.now() - t0) / 1000;
  log(`done in ${seconds.toFixed(0)} s; feature extraction ${after.imagesPerSec.toFixed(1)} images/s`);
  return {
    trainImagesPerSec: result.imagesPerSec,
    augmentMsPerStep: result.augmentMsPerStep,
    stepMsPerStep: result.stepMsPerStep,
    onlineKnn: result.knn,
    localKnnTrained: { top1: after.top1, top5: after.top5 },
    extractImagesPerSec: after.imagesPerSec,
    featureDim: after.dim,
    checkpoint: result.checkpoint,
    seconds,
  };
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('SimCLR on real bundled digits (online kNN vs random init), then local 2048-d features → kNN; nothing is downloaded')
    .option('--epochs <n>', 'training epochs', '4')
    .option('--batch-size <n>', 'images per step', '64')
    .option('--lr <lr>', 'LARS base learning rate', '0.3')
    .option('--out <dir>', 'where the checkpoint goes', join(packageRoot, '.cache', 'demo-run'))
    .action(async (opts: { epochs: string; batchSize: string; lr: string; out: string }) => {
      await runDemo({ epochs: Number.parseInt(opts.epochs, 10), batchSize: Number.parseInt(opts.batchSize, 10), lr: Number.parseFloat(opts.lr), out: opts.out });
    });
}
