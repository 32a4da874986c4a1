// Weighted kNN, 50 000 × 2048 train bank vs 10 000 queries (100 noisy Gaussian clusters, so accuracy is
// neither 0 nor 100 %): torch-ssl `knn` vs solo-learn's WeightedKNNClassifier run by Python PyTorch
// (bench/py/knn.py), same features, same thread count, same run; compute time only, best of BENCH_RUNS.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lib, runPython, table, threadsFromEnv } from './common.mjs';

const threads = threadsFromEnv();
const nTrain = Number.parseInt(process.env.BENCH_TRAIN ?? '50000', 10);
const nTest = Number.parseInt(process.env.BENCH_TEST ?? '10000', 10);
const dim = Number.parseInt(process.env.BENCH_DIM ?? '2048', 10);
const runs = Number.parseInt(process.env.BENCH_RUNS ?? '2', 10);
const distances = (process.env.BENCH_DISTANCES ?? 'cosine,euclidean').split(',');
const classes = 100;
const { Tensor, writeNpy, knn, knnGrid, setNumThreads } = await lib();
setNumThreads(threads);

// Deterministic pseudo-random clusters (xorshift + Box–Muller): 0.15 · centre[label] + noise.
let state = 0x9e3779b9;
const uniform = () => {
  state ^= state << 13;
  state ^= state >>> 17;
  state ^= state << 5;
  return ((state >>> 0) + 0.5) / 4294967296;
};
const gauss = () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
const centres = Float32Array.from({ length: classes * dim }, () => 0.15 * gauss());
function make(n) {
  const f = new Float32Array(n * dim);
  const l = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = Math.floor(uniform() * classes);
    l[i] = c;
    for (let j = 0; j < dim; j++) f[i * dim + j] = centres[c * dim + j] + gauss();
  }
  return { f: Tensor.from(f, [n, dim]), l: Tensor.from(l, [n]) };
}
const train = make(nTrain);
const test = make(nTest);
const dir = mkdtempSync(join(tmpdir(), 'tssl-bench-knn-'));
try {
  const files = ['train', 'train_labels', 'test', 'test_labels'].map((n) => join(dir, `${n}.npy`));
  await Promise.all([writeNpy(files[0], train.f), writeNpy(files[1], train.l), writeNpy(files[2], test.f), writeNpy(files[3], test.l)]);
  const rows = [];
  for (const distance of distances) {
    let ours = Infinity;
    let theirs = Infinity;
    let a;
    let b;
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      a = await knn({ trainFeatures: train.f, trainLabels: train.l, testFeatures: test.f, testLabels: test.l, k: 20, temperature: 0.07, distance });
      ours = Math.min(ours, (performance.now() - t0) / 1000);
      b = runPython('knn.py', [threads, ...files, 20, 0.07, distance], threads)[distance];
      theirs = Math.min(theirs, b.seconds);
    }
    console.log(`${distance}: torch-ssl top-1 ${a.top1.toFixed(2)} / top-5 ${a.top5.toFixed(2)}; PyTorch ${b.top1.toFixed(2)} / ${b.top5.toFixed(2)}`);
    rows.push({ name: `${distance}, k=20, T=0.07`, ours, reference: theirs, unit: 's', higherIsBetter: false });
  }
  const t0 = performance.now();
  const grid = await knnGrid({ trainFeatures: train.f, trainLabels: train.l, testFeatures: test.f, testLabels: test.l });
  const gridS = (performance.now() - t0) / 1000;
  table(`bench/knn: ${nTrain} × ${dim} bank vs ${nTest} queries, ${classes} classes, ${threads} threads, best of ${runs}, compute seconds`, rows);
  console.log(
    `knnGrid (8 k × 8 T, cosine, one pass): ${gridS.toFixed(2)} s; best k=${grid.best.k} T=${grid.best.temperature} top-1 ${grid.best.top1.toFixed(2)} %`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
