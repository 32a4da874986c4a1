// End-to-end training throughput (augmentation + step), torch-ssl vs a Python PyTorch loop with the same
// model, loss and LARS, torchvision transforms and a DataLoader with a worker, same thread budget, same run.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lib, root, runPython, table, threadsFromEnv } from './common.mjs';

const threads = threadsFromEnv();
const batch = Number.parseInt(process.env.BENCH_BATCH ?? '128', 10);
const steps = Number.parseInt(process.env.BENCH_STEPS ?? '5', 10);
const data = join(root, '.cache', 'datasets', 'digits-train.npy');
const labels = join(root, '.cache', 'datasets', 'digits-train-labels.npy');
const { train, setNumThreads } = await lib();
setNumThreads(threads);
const dir = mkdtempSync(join(tmpdir(), 'tssl-bench-train-'));
const cfg = (maxSteps) => ({
  method: 'vicreg',
  data: { train: data },
  batchSize: batch,
  epochs: 1000,
  maxSteps,
  scheduler: { warmupEpochs: 0 },
  checkpoint: { dir, every: 0 },
  logEvery: 1,
});
// One warm-up step, then timed steps (the result's figures cover the timed run only).
await train(cfg(1));
const ours = await train(cfg(steps));
rmSync(dir, { recursive: true, force: true });
const py = runPython('train.py', [threads, 1, batch, steps, data, labels], threads);
table(`bench/train: VICReg, ResNet-18 CIFAR stem, batch ${batch} × 2 views of 32×32, ${steps} steps, ${threads} threads (+1 augmentation thread / DataLoader worker)`, [
  { name: 'end-to-end training', ours: ours.imagesPerSec, reference: py.imagesPerSec, unit: 'images/s' },
  { name: 'step compute (forward+loss+backward+LARS)', ours: ours.stepMsPerStep, reference: py.stepMsPerStep, unit: 'ms/step, lower is better', higherIsBetter: false },
  { name: 'time the step waited for augmented data', ours: ours.waitMsPerStep, reference: py.waitMsPerStep, unit: 'ms/step', higherIsBetter: false },
]);
console.log(`torch-ssl augmentation on its producer thread: ${ours.augmentMsPerStep.toFixed(0)} ms/step (overlapped with the step)`);
