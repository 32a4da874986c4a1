// Data-parallel training on this machine: 1 process vs 2 processes (`torch-ssl train --nproc 2`, c10d gloo on
// loopback), one intra-op thread per process, the same per-rank batch; torch-ssl vs PyTorch DDP with
// solo-learn's gathered VICReg, same run. For torch-ssl also the gradient all-reduce per step (first bucket
// launched → last one done) and the part of it backward did not hide (the wait after backward).
// BENCH_BATCH (per rank, 32), BENCH_STEPS (6; steps 2..N+1 are timed).
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { root, runPython, table } from './common.mjs';

const batch = Number.parseInt(process.env.BENCH_BATCH ?? '32', 10);
const steps = Number.parseInt(process.env.BENCH_STEPS ?? '6', 10);
const work = mkdtempSync(join(tmpdir(), 'tssl-bench-ddp-'));
const data = join(work, 'digits.npy'); // no labels beside: no online classifier on either side
copyFileSync(join(root, '.cache', 'datasets', 'digits-train.npy'), data);
const cli = join(root, 'dist', 'cli', 'index.js');
const view = (flip) => ({
  size: 32,
  scale: [1, 1],
  ratio: [1, 1],
  jitter: { p: 0, brightness: 0, contrast: 0, saturation: 0, hue: 0 },
  grayscale: 0,
  solarize: 0,
  flip,
});

function ours(nproc) {
  const dir = join(work, `run-${nproc}`);
  const config = join(work, `cfg-${nproc}.json`);
  writeFileSync(
    config,
    JSON.stringify({
      method: 'vicreg',
      data: { train: data },
      augmentation: [view(0), view(0.5)],
      batchSize: batch,
      epochs: 1000,
      maxSteps: steps + 1,
      scheduler: { warmupEpochs: 0 },
      threads: 1,
      checkpoint: { dir, every: 0 },
      logEvery: 1,
    }),
  );
  execFileSync(process.execPath, [cli, 'train', '--config', config, ...(nproc > 1 ? ['--nproc', String(nproc)] : [])], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, TORCH_SSL_LOG_INTERVAL: '3600' },
  });
  const [head, ...rows] = readFileSync(join(dir, 'metrics.csv'), 'utf8').trim().split('\n');
  const cols = head.split(',');
  const get = (r, k) => Number(r.split(',')[cols.indexOf(k)]);
  const timed = rows.filter((r) => r.split(',')[cols.indexOf('perf/step_ms')] !== '').slice(1);
  const mean = (k) => timed.reduce((s, r) => s + get(r, k), 0) / timed.length;
  // Each step's images/s covers the wall time since the previous step (agreement on stopping included).
  const wallMs = timed.reduce((s, r) => s + (1000 * batch) / get(r, 'perf/images_per_sec'), 0) / timed.length;
  return {
    stepMs: wallMs,
    imagesPerSec: (nproc * batch * 1000) / wallMs,
    commMs: nproc > 1 ? mean('perf/comm_ms') : 0,
    commWaitMs: nproc > 1 ? mean('perf/comm_wait_ms') : 0,
  };
}

try {
  const o1 = ours(1);
  const o2 = ours(2);
  const p1 = runPython('distributed.py', [1, batch, steps, data], 1);
  const p2 = runPython('distributed.py', [2, batch, steps, data], 1);
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  table(`Data-parallel VICReg, ResNet-18 CIFAR stem 32×32, ${batch} images per process, 1 thread per process (${cpu}, ${cpus().length} cores)`, [
    { name: '1 process: step ms', ours: o1.stepMs, reference: p1.stepMs, unit: 'ms, lower is better', higherIsBetter: false },
    { name: '2 processes: step ms', ours: o2.stepMs, reference: p2.stepMs, unit: 'ms, lower is better', higherIsBetter: false },
    { name: '1 process: images/s', ours: o1.imagesPerSec, reference: p1.imagesPerSec, unit: 'images/s' },
    { name: '2 processes: images/s (both ranks)', ours: o2.imagesPerSec, reference: p2.imagesPerSec, unit: 'images/s' },
  ]);
  console.log(
    `scaling 1 → 2 processes: torch-ssl ${(o2.imagesPerSec / o1.imagesPerSec).toFixed(2)}×, PyTorch DDP ${(p2.imagesPerSec / p1.imagesPerSec).toFixed(2)}×`,
  );
  console.log(
    `torch-ssl gradient all-reduce per step (2 processes): ${o2.commMs.toFixed(1)} ms from the first bucket to the last; ${o2.commWaitMs.toFixed(1)} ms of it after backward (${(100 * (1 - o2.commWaitMs / Math.max(1e-9, o2.commMs))).toFixed(0)} % hidden behind backward)`,
  );
} finally {
  rmSync(work, { recursive: true, force: true });
}
