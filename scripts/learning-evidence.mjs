#!/usr/bin/env node
// Evidence of learning on real data: trains SimCLR on scikit-learn's digits and reports the online kNN
// accuracy of the backbone's pooled features before training (random init) and after each few epochs.
// The digits are 8×8 originals, so training and evaluation run at 16×16 (same resolution for both: BatchNorm
// statistics from 16×16 views do not transfer to 32×32 inputs). Usage: node scripts/learning-evidence.mjs [epochs]
// (EVIDENCE_PRECISION=bf16-mixed trains under autocast; EVIDENCE_KNN_EVERY, EVIDENCE_ETA as below)
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dir = join(root, '.cache', 'datasets');
const out = join(root, '.cache', 'learning-evidence');
mkdirSync(out, { recursive: true });
const epochs = Number.parseInt(process.argv[2] ?? '20', 10);
if (!existsSync(join(out, 'digits16-train.npy'))) {
  const py = `
import numpy as np, torch, torch.nn.functional as F
for split in ("train", "test"):
    x = torch.from_numpy(np.load("${dir}/digits-" + split + ".npy")).permute(0, 3, 1, 2).float()
    y = F.interpolate(x, size=(16, 16), mode="bilinear", align_corners=False, antialias=True)
    np.save("${out}/digits16-" + split + ".npy", y.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy())
    np.save("${out}/digits16-" + split + "-labels.npy", np.load("${dir}/digits-" + split + "-labels.npy"))
`;
  execFileSync('/usr/bin/python3', ['-c', py], { stdio: 'inherit' });
}
const { train } = await import(join(root, 'dist', 'index.js'));
const t0 = Date.now();
const result = await train(
  {
    method: 'simclr',
    data: { train: join(out, 'digits16-train.npy'), val: join(out, 'digits16-test.npy') },
    augmentation: [{ size: 16, scale: [0.5, 1], jitter: { p: 0.8, brightness: 0.4, contrast: 0.4, saturation: 0, hue: 0 }, grayscale: 0, flip: 0 }],
    batchSize: 64,
    epochs,
    optimizer: { lr: 0.3, eta: Number.parseFloat(process.env.EVIDENCE_ETA ?? '0.002') },
    scheduler: { warmupEpochs: 2 },
    knn: { every: Number.parseInt(process.env.EVIDENCE_KNN_EVERY ?? '2', 10) },
    checkpoint: { dir: join(out, 'run'), every: 0 },
    logEvery: 20,
    seed: 5,
    precision: process.env.EVIDENCE_PRECISION ?? '32',
  },
  {
    onProgress: (e) => {
      if (e.type === 'knn') console.log(`epoch ${e.epoch}: kNN top-1 ${e.top1.toFixed(2)}% top-5 ${e.top5.toFixed(2)}%`);
      if (e.type === 'epoch') console.log(`epoch ${e.epoch}: loss ${e.loss.toFixed(4)}`);
    },
  },
);
console.log(JSON.stringify({ knn: result.knn, imagesPerSec: result.imagesPerSec, seconds: (Date.now() - t0) / 1000 }));
