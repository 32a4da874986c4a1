// End-to-end training throughput (augmentation + step), torch-ssl vs a Python PyTorch loop with the same
// model, loss and LARS, torchvision transforms and a DataLoader with a worker, same thread budget, same run.
// Both sides time steps 2..N+1 of one run (the first step is warm-up).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuName, fairBlas, lib, root, runPython, table, threadsFromEnv } from './common.mjs';

const threads = threadsFromEnv();
const batch = Number.parseInt(process.env.BENCH_BATCH ?? '128', 10);
const steps = Number.parseInt(process.env.BENCH_STEPS ?? '5', 10);
// BENCH_PRECISIONS=32,bf16-mixed (default: bf16-mixed too where the CPU has AVX512-BF16).
const data = join(root, '.cache', 'datasets', 'digits-train.npy');
const labels = join(root, '.cache', 'datasets', 'digits-train-labels.npy');
const { train, setNumThreads } = await lib();
const hasBf16 = /\bavx512_bf16\b|\bamx_bf16\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
const precisions = (process.env.BENCH_PRECISIONS ?? (hasBf16 ? '32,bf16-mixed' : '32')).split(',');
setNumThreads(threads);
const blas = await fairBlas();
console.log(`CPU: ${cpuName()}`);

async function ours(precision) {
  const dir = mkdtempSync(join(tmpdir(), 'tssl-bench-train-'));
  const events = [];
  try {
    await train(
      {
        method: 'vicreg',
        data: { train: data },
        batchSize: batch,
        epochs: 1000,
        maxSteps: steps + 1,
        precision,
        scheduler: { warmupEpochs: 0 },
        checkpoint: { dir, every: 0 },
        logEvery: 1,
      },
      { onProgress: (e) => e.type === 'step' && events.push(e) },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const timed = events.slice(1); // each event's imagesPerSec covers the time since the previous step ended
  const secs = timed.reduce((s, e) => s + batch / e.imagesPerSec, 0);
  const mean = (k) => timed.reduce((s, e) => s + e[k], 0) / timed.length;
  return { imagesPerSec: (timed.length * batch) / secs, stepMsPerStep: mean('stepMs'), waitMsPerStep: mean('waitMs'), augmentMsPerStep: mean('augmentMs') };
}

for (const precision of precisions) {
  const o = await ours(precision);
  const pyCl = runPython('train.py', [threads, 1, batch, steps, data, labels, 'channels_last', precision], threads, blas.env);
  const rows = [];
  if (blas.misread) {
    const pyInstalled = runPython('train.py', [threads, 1, batch, steps, data, labels, 'channels_last', precision], threads, {}, { blasAsInstalled: true });
    rows.push({ name: 'end-to-end vs Python CL, BLAS as installed', ours: o.imagesPerSec, reference: pyInstalled.imagesPerSec, unit: 'images/s' });
  }
  if (precision === '32') {
    const pyDefault = runPython('train.py', [threads, 1, batch, steps, data, labels, 'contiguous', precision], threads, blas.env);
    rows.push({ name: 'end-to-end vs Python default layout', ours: o.imagesPerSec, reference: pyDefault.imagesPerSec, unit: 'images/s' });
    // What the caching allocator buys, made visible: Python with glibc tuned by hand to keep freed memory
    // (no mmap per large block, one arena, no trimming) — not how PyTorch runs by default.
    const pyTuned = runPython('train.py', [threads, 1, batch, steps, data, labels, 'channels_last', precision], threads, {
      ...blas.env,
      GLIBC_TUNABLES: 'glibc.malloc.mmap_max=0:glibc.malloc.arena_max=1:glibc.malloc.trim_threshold=68719476736',
    });
    rows.push({ name: 'end-to-end vs Python CL + GLIBC_TUNABLES', ours: o.imagesPerSec, reference: pyTuned.imagesPerSec, unit: 'images/s' });
  }
  rows.push(
    { name: 'end-to-end vs Python channels_last', ours: o.imagesPerSec, reference: pyCl.imagesPerSec, unit: 'images/s' },
    {
      name: 'step compute (forward+loss+backward+LARS)',
      ours: o.stepMsPerStep,
      reference: pyCl.stepMsPerStep,
      unit: 'ms/step, lower is better',
      higherIsBetter: false,
    },
    { name: 'time the step waited for augmented data', ours: o.waitMsPerStep, reference: pyCl.waitMsPerStep, unit: 'ms/step', higherIsBetter: false },
  );
  table(
    `bench/train [precision ${precision}${precision === 'bf16-mixed' ? ': Python under torch.autocast("cpu", bfloat16)' : ''}]: VICReg, ResNet-18 CIFAR stem, batch ${batch} × 2 views of 32×32, ${steps} timed steps, ${threads} threads (+1 augmentation thread / DataLoader worker)`,
    rows,
  );
  console.log(`torch-ssl augmentation on its producer thread: ${o.augmentMsPerStep.toFixed(0)} ms/step (overlapped with the step)`);
}
