// Learning benchmark: the same SSL recipe trained by torch-ssl (native loop) and by a PyTorch loop written the
// way solo-learn trains (bench/py/learning.py: torchvision transforms in a DataLoader, composed losses,
// solo-learn's LARS and warm-up + cosine schedule), on the same Fashion-MNIST subset with the same model and
// epochs, in one run. After every epoch both compute solo-learn's weighted kNN (k 20, T 0.07, cosine) of the
// backbone's pooled features on the same held-out test subset; the table and two plots (kNN vs epoch, kNN vs
// wall time) go to docs/ (or --out).
//
//   node bench/learning.mjs [--recipe configs/learning-bench.yaml] [--epochs N] [--methods vicreg,simclr,tcr,byol,mocov3,simsiam,dino,swav,nnclr] [--seeds 1] [--first-seed 5]
//                           [--train-count N] [--test-count N] [--views-tcr 20] [--sides torch-ssl,pytorch] [--out docs]
//
// The recipe is configs/learning-bench.yaml's (or --recipe's): same model, augmentation, batch, optimizer and schedule;
// --epochs, --train-count and --test-count override its length and subsets. The run's length is
// epochs × methods × seeds × 2 sides.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import YAML from 'yaml';
import { lib, python, root, threadsFromEnv } from './common.mjs';

const { values: a } = parseArgs({
  options: {
    recipe: { type: 'string', default: join(root, 'configs', 'learning-bench.yaml') },
    epochs: { type: 'string' },
    methods: { type: 'string', default: 'vicreg,simclr,tcr' },
    seeds: { type: 'string', default: '1' },
    'first-seed': { type: 'string', default: '5' },
    'train-count': { type: 'string' },
    'test-count': { type: 'string' },
    'views-tcr': { type: 'string', default: '20' },
    out: { type: 'string', default: join(root, 'docs') },
    sides: { type: 'string', default: 'torch-ssl,pytorch' },
  },
  strict: true,
});
const base = YAML.parse(readFileSync(a.recipe, 'utf8'));
const int = (k, fallback) => {
  const n = Number(a[k] ?? fallback);
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`--${k} must be a positive integer, got ${a[k] ?? fallback}`);
  return n;
};
const epochs = int('epochs', base.epochs);
const seeds = int('seeds');
const firstSeed = int('first-seed');
const trainCount = int('train-count', base.data?.limit ?? 3000);
const testCount = int('test-count', base.data?.valLimit ?? 2000);
const size = Number(base.data?.size ?? 28);
const tcrViews = int('views-tcr');
const methods = a.methods.split(',');
const sides = a.sides.split(',');
const threads = threadsFromEnv();
const cpu = (readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/) ?? [])[1] ?? cpus()[0]?.model ?? 'unknown CPU';
const FM = '/usr/share/datasets/fashion-mnist';

const {
  openImageSource,
  resolveTrainConfig,
  train,
  Tensor,
  writeNpy,
  setNumThreads,
  NORMALIZATIONS,
  loadCheckpoint,
  extractFeatures,
  knn,
  linearProbe,
  resnet,
  manualSeed,
} = await lib();
setNumThreads(threads);
const work = mkdtempSync(join(tmpdir(), 'tssl-learning-'));

/** The same pixels for both sides: our IDX reader (tested against torchvision) → .npy. */
async function exportSplit(file, count, name) {
  const src = await openImageSource({ path: join(FM, file), size, fit: size < 28 ? 'resize' : 'pad', limit: count });
  try {
    const b = await src.readBatch(0, src.count);
    const images = join(work, `${name}.npy`);
    await writeNpy(images, Tensor.from(b.pixels, [src.count, size, size, 3], { dtype: 'uint8' }));
    await writeNpy(
      join(work, `${name}-labels.npy`),
      Tensor.from(
        BigInt64Array.from(b.labels, (v) => BigInt(v)),
        [src.count],
        { dtype: 'int64' },
      ),
    );
    return images;
  } finally {
    await src.close();
  }
}
const trainPath = await exportSplit('train-images-idx3-ubyte.gz', trainCount, 'train');
const testPath = await exportSplit('t10k-images-idx3-ubyte.gz', testCount, 'test');

/**
 * The recipe per method: configs/learning-bench.yaml's (or --recipe's) with the method swapped in. TCR takes
 * EMP-SSL's fixed-scale square patches (area 1/4, ratio 1, bilinear), `--views-tcr` of them per image, the
 * same images per step, no warm-up (its run is one or a few epochs), and as many epochs as make its compute
 * (views seen) equal to the 2-view methods' — the seed's fast-convergence claim, measured.
 */
function recipe(method, seed) {
  const { data: _data, checkpoint: _ck, knn: _knn, ...rest } = base;
  const view = base.augmentation?.[0] ?? {};
  const config = {
    ...rest,
    method,
    data: { train: trainPath, val: testPath, normalization: 'fashion-mnist' },
    ...(method === 'tcr'
      ? {
          views: tcrViews,
          augmentation: [{ ...view, scale: [0.25, 0.25], ratio: [1, 1], interpolation: 'bilinear' }],
          scheduler: { ...base.scheduler, warmupEpochs: 0 },
        }
      : {}),
    // DINO and SwAV: multi-crop, the recipe's view as 2 large crops and 4 small crops of half the side (together
    // the compute of one more large crop).
    ...(method === 'dino' || method === 'swav'
      ? {
          augmentation: [
            { ...view, crops: 2 },
            { ...view, size: Math.round((view.size ?? 32) / 2), scale: [0.2, 0.5], crops: 4 },
          ],
        }
      : {}),
    // TCR's epochs see `tcrViews` views per image: as many as keep the compute equal to the 2-view methods'.
    epochs: method === 'tcr' ? Math.max(1, Math.round((epochs * 2) / tcrViews)) : epochs,
    knn: { every: 1 },
    seed,
    threads,
    logEvery: 10, // epoch events carry the epoch's mean loss, as the PyTorch side prints
  };
  return config;
}

function oursRun(config, dir) {
  const rows = [];
  const t0 = performance.now();
  return train(
    { ...config, checkpoint: { dir, every: 0 } },
    {
      onProgress: (e) => {
        if (e.type === 'knn') rows.push({ epoch: e.epoch, top1: e.top1, top5: e.top5, seconds: (performance.now() - t0) / 1000 });
        if (e.type === 'knn' || e.type === 'epoch')
          console.log(
            `  torch-ssl ${e.type === 'knn' ? `epoch ${e.epoch}: kNN top-1 ${e.top1.toFixed(2)}%` : `epoch ${e.epoch}: loss ${e.loss.toFixed(4)}`} (${((performance.now() - t0) / 1000).toFixed(0)} s)`,
          );
      },
    },
  ).then(
    (r) => ({ rows, seconds: (performance.now() - t0) / 1000, imagesPerSec: r.imagesPerSec, checkpoint: r.checkpoint }),
    (err) => {
      if (err?.code !== 'ERR_TORCH_VALUE') throw err;
      console.log(`  torch-ssl diverged: ${err.message}`);
      return { rows, seconds: (performance.now() - t0) / 1000, diverged: err.message };
    },
  );
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
    predictor: c.predictorResolved,
    momentum: c.momentum ?? null,
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
    const p = spawn(python, [join(root, 'bench', 'py', 'learning.py'), file], {
      env: { ...process.env, OMP_NUM_THREADS: String(threads) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
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
        else if (j.diverged) {
          done = { seconds: j.seconds, diverged: `loss ${j.loss} at step ${j.step}` };
          console.log(`  PyTorch   diverged: loss ${j.loss} at step ${j.step}`);
        } else {
          rows.push({ epoch: j.epoch, top1: j.top1, top5: j.top5, seconds: j.seconds });
          console.log(
            `  PyTorch   epoch ${j.epoch}: kNN top-1 ${j.top1.toFixed(2)}%${j.loss != null ? `, loss ${j.loss.toFixed(4)}` : ''} (${j.seconds.toFixed(0)} s)`,
          );
        }
      }
    });
    p.on('error', reject);
    p.on('exit', (code) =>
      done && (code === 0 || done.diverged)
        ? resolve({ rows, seconds: done.seconds, ...(done.diverged && { diverged: done.diverged }) })
        : reject(new Error(`bench/py/learning.py exited ${code}`)),
    );
  });
}

/**
 * BagSSL's claim (b): global 512-d vs local-aggregated 2048-d features of the same backbone, by weighted kNN
 * and by a linear probe (100 epochs, SGD, standardised features). The layer4 map at 16×16 is 3×3, so the
 * local windows are 2×2 at stride 1 (BagSSL's 3×3/2 needs the 5×5 map of a 32×32 input).
 */
const mapSide = Math.ceil((size + 2) / 8);
const localPool = mapSide >= 5 ? { kernel: 3, stride: 2 } : { kernel: 2, stride: 1 };
async function globalVsLocal(model) {
  const out = {};
  for (const [name, pooling] of [
    ['global', 'global'],
    ['local', localPool],
  ]) {
    const tr = await extractFeatures(model, trainPath, { pooling, normalize: 'fashion-mnist' });
    const te = await extractFeatures(model, testPath, { pooling, normalize: 'fashion-mnist' });
    const k = await knn({ trainFeatures: tr.features, trainLabels: tr.labels, testFeatures: te.features, testLabels: te.labels, k: 20, temperature: 0.07 });
    const lp = await linearProbe({
      trainFeatures: tr.features,
      trainLabels: tr.labels,
      testFeatures: te.features,
      testLabels: te.labels,
      epochs: 100,
      evalEveryEpoch: false,
    });
    out[name] = { dim: tr.dim, knnTop1: k.top1, linearTop1: lp.top1 };
    tr.features.dispose();
    te.features.dispose();
    lp.weight.dispose();
    lp.bias.dispose();
  }
  return out;
}
const describeFeatures = (f) =>
  `global ${f.global.dim}-d kNN ${f.global.knnTop1.toFixed(2)}% / linear ${f.global.linearTop1.toFixed(2)}%; local ${f.local.dim}-d kNN ${f.local.knnTop1.toFixed(2)}% / linear ${f.local.linearTop1.toFixed(2)}%`;

const results = [];
manualSeed(5);
const fresh = resnet({ depth: 18, stem: 'cifar' }).eval();
const randomInit = await globalVsLocal({ backbone: fresh });
fresh.dispose();
console.log(`random initialisation: ${describeFeatures(randomInit)}`);
console.log(
  `bench/learning: Fashion-MNIST ${trainCount} train / ${testCount} test images at ${size}×${size} (gray → RGB), ResNet-18 CIFAR stem, recipe ${a.recipe}, ${epochs} epochs, ${threads} threads; CPU: ${cpu}`,
);
for (const method of methods) {
  for (let s = 0; s < seeds; s++) {
    const seed = firstSeed + s;
    const config = recipe(method, seed);
    const entry = { method, seed, batch: config.batchSize, views: config.views ?? 2 };
    if (sides.includes('torch-ssl')) {
      console.log(`${method} seed ${seed}: torch-ssl`);
      const dir = join(work, `run-${method}-${seed}`);
      entry.ours = await oursRun(config, dir);
      if (!entry.ours.diverged) {
        const ck = await loadCheckpoint(entry.ours.checkpoint);
        entry.features = await globalVsLocal(ck);
        ck.dispose();
        console.log(`  trained backbone: ${describeFeatures(entry.features)}`);
      }
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
  for (const [side, run] of [
    ['torch-ssl', r.ours],
    ['PyTorch', r.py],
  ]) {
    if (!run) continue;
    const cells = Array.from({ length: epochs + 1 }, (_, e) => fmt(run.rows.find((x) => x.epoch === e)?.top1));
    lines.push(
      `| ${r.method} | ${r.seed} | ${r.views} × ${r.batch} | ${side}${run.diverged ? ' (diverged)' : ''} | ${cells.join(' | ')} | ${run.seconds.toFixed(0)} |`,
    );
  }
}
const summary = results
  .filter((r) => r.ours?.rows.length && r.py?.rows.length)
  .map((r) => {
    const o = r.ours.rows.at(-1).top1;
    const p = r.py.rows.at(-1).top1;
    return `${r.method} (seed ${r.seed}): torch-ssl ${o.toFixed(2)}% vs PyTorch ${p.toFixed(2)}% (Δ ${(o - p).toFixed(2)} points), wall ${r.ours.seconds.toFixed(0)} s vs ${r.py.seconds.toFixed(0)} s (${(r.py.seconds / r.ours.seconds).toFixed(2)}× faster)`;
  });
const featLines = [
  `| backbone | global ${randomInit.global.dim}-d kNN | local ${randomInit.local.dim}-d kNN | global linear | local linear |`,
  '|---|---|---|---|---|',
];
featLines.push(
  `| random init | ${fmt(randomInit.global.knnTop1)} | ${fmt(randomInit.local.knnTop1)} | ${fmt(randomInit.global.linearTop1)} | ${fmt(randomInit.local.linearTop1)} |`,
);
for (const r of results) {
  if (r.features)
    featLines.push(
      `| ${r.method} seed ${r.seed} (torch-ssl) | ${fmt(r.features.global.knnTop1)} | ${fmt(r.features.local.knnTop1)} | ${fmt(r.features.global.linearTop1)} | ${fmt(r.features.local.linearTop1)} |`,
    );
}
console.log(`\n${lines.join('\n')}\n\n${summary.join('\n')}\n\n${featLines.join('\n')}`);
mkdirSync(a.out, { recursive: true });
const json = join(a.out, 'learning-bench.json');
writeFileSync(
  `${json}.tmp`,
  JSON.stringify(
    {
      cpu,
      threads,
      epochs,
      trainCount,
      testCount,
      size,
      recipe: base,
      date: new Date().toISOString(),
      randomInit,
      localPool,
      results,
      table: lines,
      features: featLines,
    },
    null,
    1,
  ),
);
renameSync(`${json}.tmp`, json);
try {
  execFileSync(python, [join(root, 'bench', 'py', 'learning_plot.py'), json, a.out], { stdio: 'inherit' });
} catch {
  console.log('plots skipped: bench/py/learning_plot.py needs python3-matplotlib (bash scripts/setup.sh installs it)');
}
rmSync(work, { recursive: true, force: true });
