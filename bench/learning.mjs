// Learning benchmark: the same SSL recipe trained by torch-ssl (native loop) and by a PyTorch loop written the
// way solo-learn trains (bench/py/learning.py: torchvision transforms in a DataLoader, composed losses,
// solo-learn's LARS and warm-up + cosine schedule), on the same Fashion-MNIST subset with the same model and
// epochs, in one run. After every epoch both compute solo-learn's weighted kNN (k 20, T 0.07, cosine) of the
// backbone's pooled features on the same held-out test subset; the table and two plots (kNN vs epoch, kNN vs
// wall time) go to docs/ (or --out).
//
//   node bench/learning.mjs [--epochs 3] [--methods vicreg,simclr,tcr] [--seeds 1] [--train-count 5000]
//                           [--test-count 1000] [--size 16] [--batch 128] [--views-tcr 8] [--out docs]
//
// The run's length is epochs × methods × seeds × 2 sides; the defaults take about 45 minutes on 2 cores.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { lib, python, root, threadsFromEnv } from './common.mjs';

const { values: a } = parseArgs({
  options: {
    epochs: { type: 'string', default: '3' },
    methods: { type: 'string', default: 'vicreg,simclr,tcr' },
    seeds: { type: 'string', default: '1' },
    'train-count': { type: 'string', default: '5000' },
    'test-count': { type: 'string', default: '1000' },
    size: { type: 'string', default: '16' },
    batch: { type: 'string', default: '128' },
    'views-tcr': { type: 'string', default: '8' },
    out: { type: 'string', default: join(root, 'docs') },
    sides: { type: 'string', default: 'torch-ssl,pytorch' },
  },
  strict: true,
});
const int = (k) => {
  const n = Number(a[k]);
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`--${k} must be a positive integer, got ${a[k]}`);
  return n;
};
const epochs = int('epochs');
const seeds = int('seeds');
const trainCount = int('train-count');
const testCount = int('test-count');
const size = int('size');
const batch = int('batch');
const tcrViews = int('views-tcr');
const methods = a.methods.split(',');
const sides = a.sides.split(',');
const threads = threadsFromEnv();
const cpu = (readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/) ?? [])[1] ?? cpus()[0]?.model ?? 'unknown CPU';
const FM = '/usr/share/datasets/fashion-mnist';

const { openImageSource, resolveTrainConfig, train, Tensor, writeNpy, setNumThreads, NORMALIZATIONS } = await lib();
setNumThreads(threads);
const work = mkdtempSync(join(tmpdir(), 'tssl-learning-'));

/** The same pixels for both sides: our IDX reader (tested against torchvision) → .npy. */
async function exportSplit(file, count, name) {
  const src = await openImageSource({ path: join(FM, file), size, fit: size < 28 ? 'resize' : 'pad', limit: count });
  try {
    const b = await src.readBatch(0, src.count);
    const images = join(work, `${name}.npy`);
    await writeNpy(images, Tensor.from(b.pixels, [src.count, size, size, 3], { dtype: 'uint8' }));
    await writeNpy(join(work, `${name}-labels.npy`), Tensor.from(BigInt64Array.from(b.labels, (v) => BigInt(v)), [src.count], { dtype: 'int64' }));
    return images;
  } finally {
    await src.close();
  }
}
const trainPath = await exportSplit('train-images-idx3-ubyte.gz', trainCount, 'train');
const testPath = await exportSplit('t10k-images-idx3-ubyte.gz', testCount, 'test');

/** The recipe per method: solo-learn's method defaults with augmentations fit for small gray images. */
function recipe(method, seed) {
  const gray = { p: 0.8, brightness: 0.4, contrast: 0.4, saturation: 0, hue: 0 };
  const view = { size, scale: [0.3, 1], jitter: gray, grayscale: 0, flip: 0.5 };
  const config = {
    method,
    data: { train: trainPath, val: testPath, normalization: 'fashion-mnist' },
    augmentation: method === 'tcr' ? [{ ...view, scale: [0.25, 0.25], ratio: [1, 1], interpolation: 'bilinear' }] : [view],
    ...(method === 'tcr' ? { views: tcrViews } : {}),
    batchSize: method === 'tcr' ? Math.max(2, Math.round((batch * 2) / tcrViews)) : batch,
    epochs,
    scheduler: { warmupEpochs: 1 },
    knn: { every: 1 },
    seed,
    threads,
    logEvery: 10,
  };
  return config;
}

function oursRun(config, dir) {
  const rows = [];
  const t0 = performance.now();
  return train({ ...config, checkpoint: { dir, every: 0 } }, {
    onProgress: (e) => {
      if (e.type === 'knn') rows.push({ epoch: e.epoch, top1: e.top1, top5: e.top5, seconds: (performance.now() - t0) / 1000 });
      if (e.type === 'knn' || e.type === 'epoch') console.log(`  torch-ssl ${e.type === 'knn' ? `epoch ${e.epoch}: kNN top-1 ${e.top1.toFixed(2)}%` : `epoch ${e.epoch}: loss ${e.loss.toFixed(4)}`} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    },
  }).then((r) => ({ rows, seconds: (performance.now() - t0) / 1000, imagesPerSec: r.imagesPerSec }));
}

function pythonRun(config) {
  const c = resolveTrainConfig(config);
  const norm = NORMALIZATIONS['fashion-mnist'];
  const r = {
    method: c.method,
    threads,
    workers: 1,
    seed: c.seed,
    train: trainPath,
    trainLabels: trainPath.replace(/\.npy$/, '-labels.npy'),
    test: testPath,
    testLabels: testPath.replace(/\.npy$/, '-labels.npy'),
    trainCount,
    testCount,
    mean: [...norm.mean],
    std: [...norm.std],
    views: c.resolvedViews,
    numViews: c.numViews,
    concatViews: c.concatViews,
    depth: c.backbone.depth,
    projector: c.projectorResolved,
    loss: c.loss,
    optimizer: c.optimizer,
    warmupEpochs: c.scheduler.warmupEpochs,
    warmupStartLr: c.scheduler.warmupStartLr,
    minLr: c.scheduler.minLr,
    batchSize: c.batchSize,
    epochs: c.epochs,
    knnK: c.knn.k,
    knnTemperature: c.knn.temperature,
  };
  const file = join(work, `recipe-${c.method}-${c.seed}.json`);
  writeFileSync(file, JSON.stringify(r));
  return new Promise((resolve, reject) => {
    // Python's threads: intra-op `threads` for the step, one DataLoader worker for the transforms (like the
    // native producer thread).
    const p = spawn(python, [join(root, 'bench', 'py', 'learning.py'), file], { env: { ...process.env, OMP_NUM_THREADS: String(threads) }, stdio: ['ignore', 'pipe', 'inherit'] });
    const rows = [];
    let done;
    let buf = '';
    p.stdout.on('data', (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const j = JSON.parse(line);
        if (j.done) done = j;
        else {
          rows.push({ epoch: j.epoch, top1: j.top1, top5: j.top5, seconds: j.seconds });
          console.log(`  PyTorch   epoch ${j.epoch}: kNN top-1 ${j.top1.toFixed(2)}%${j.loss != null ? `, loss ${j.loss.toFixed(4)}` : ''} (${j.seconds.toFixed(0)} s)`);
        }
      }
    });
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 && done ? resolve({ rows, seconds: done.seconds }) : reject(new Error(`bench/py/learning.py exited ${code}`))));
  });
}

const results = [];
console.log(`bench/learning: Fashion-MNIST ${trainCount} train / ${testCount} test images at ${size}×${size} (gray → RGB), ResNet-18 CIFAR stem, ${epochs} epochs, ${threads} threads; CPU: ${cpu}`);
for (const method of methods) {
  for (let s = 0; s < seeds; s++) {
    const seed = 5 + s;
    const config = recipe(method, seed);
    const entry = { method, seed, batch: config.batchSize, views: config.views ?? 2 };
    if (sides.includes('torch-ssl')) {
      console.log(`${method} seed ${seed}: torch-ssl`);
      const dir = join(work, `run-${method}-${seed}`);
      entry.ours = await oursRun(config, dir);
      rmSync(dir, { recursive: true, force: true });
    }
    if (sides.includes('pytorch')) {
      console.log(`${method} seed ${seed}: PyTorch`);
      entry.py = await pythonRun(config);
    }
    results.push(entry);
  }
}

// Table (markdown) and plots.
const fmt = (x) => (x === undefined ? '—' : x.toFixed(2));
const lines = [];
lines.push(`| method | seed | views × batch | side | ${Array.from({ length: epochs + 1 }, (_, e) => (e === 0 ? 'init' : `ep ${e}`)).join(' | ')} | wall s |`);
lines.push(`|${'---|'.repeat(5 + epochs + 1)}`);
for (const r of results) {
  for (const [side, run] of [['torch-ssl', r.ours], ['PyTorch', r.py]]) {
    if (!run) continue;
    lines.push(`| ${r.method} | ${r.seed} | ${r.views} × ${r.batch} | ${side} | ${run.rows.map((x) => fmt(x.top1)).join(' | ')} | ${run.seconds.toFixed(0)} |`);
  }
}
const summary = results
  .filter((r) => r.ours && r.py)
  .map((r) => {
    const o = r.ours.rows.at(-1).top1;
    const p = r.py.rows.at(-1).top1;
    return `${r.method} (seed ${r.seed}): torch-ssl ${o.toFixed(2)}% vs PyTorch ${p.toFixed(2)}% (Δ ${(o - p).toFixed(2)} points), wall ${r.ours.seconds.toFixed(0)} s vs ${r.py.seconds.toFixed(0)} s (${(r.py.seconds / r.ours.seconds).toFixed(2)}× faster)`;
  });
console.log(`\n${lines.join('\n')}\n\n${summary.join('\n')}`);
mkdirSync(a.out, { recursive: true });
const json = join(a.out, 'learning-bench.json');
writeFileSync(`${json}.tmp`, JSON.stringify({ cpu, threads, epochs, trainCount, testCount, size, batch, date: new Date().toISOString(), results }, null, 1));
renameSync(`${json}.tmp`, json);
try {
  execFileSync(python, [join(root, 'bench', 'py', 'learning_plot.py'), json, a.out], { stdio: 'inherit' });
} catch {
  console.log('plots skipped: bench/py/learning_plot.py needs python3-matplotlib (bash scripts/setup.sh installs it)');
}
rmSync(work, { recursive: true, force: true });
