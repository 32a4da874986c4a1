/**
 * Evaluation protocols on frozen features (docs/features.md):
 * - `knn`: solo-learn's WeightedKNNClassifier (docs/features.md, Weighted kNN), chunked over test rows;
 * - `knnGrid`: solo-learn's offline grid of k × T from one top-max(k) pass over the similarities;
 * - `linearProbe`: a linear classifier trained natively (SGD + momentum, cosine decay, standardised features).
 */
import { readLabelsNpy } from './data/index.js';
import { KNN_DEFAULTS } from './defaults.js';
import { invalidArg, TorchSslError } from './errors.js';
import { checkKeys, withDefaults } from './strict-keys.js';
import { native, type NativeKnnGrid, type NativeTensor } from './native.js';
import { awaitNative, readNpy, Tensor } from './tensor.js';

export type FeaturesInput = Tensor | string;
export type LabelsInput = Tensor | Int32Array | BigInt64Array | readonly number[] | string;

export interface KnnOptions {
  trainFeatures: FeaturesInput;
  trainLabels: LabelsInput;
  testFeatures: FeaturesInput;
  testLabels: LabelsInput;
  /** Neighbours. Default 20. */
  k?: number;
  /** Softmax temperature of the cosine weights exp(sim / T). Default 0.07. */
  temperature?: number;
  /** Default 'cosine'. 'euclidean' weighs neighbours by 1 / (distance + 1e-5), without temperature. */
  distance?: 'cosine' | 'euclidean';
  /** Test rows scored at once (memory ∝ chunkSize × train rows). Default: a 128 MiB similarity block. */
  chunkSize?: number;
}

export interface KnnResult {
  /** Percent. */
  top1: number;
  top5: number;
}

export interface KnnGridOptions extends Omit<KnnOptions, 'k' | 'temperature'> {
  /** Default solo-learn's [1, 2, 5, 10, 20, 50, 100, 200] (values above the bank size are dropped). */
  ks?: number[];
  /** Default solo-learn's [0.01, 0.02, 0.05, 0.07, 0.1, 0.2, 0.5, 1]. */
  temperatures?: number[];
}

export interface KnnGridEntry {
  k: number;
  temperature: number;
  top1: number;
  top5: number;
}

export interface KnnGridResult {
  distance: 'cosine' | 'euclidean';
  results: KnnGridEntry[];
  /** The entry with the highest top-1 (first on ties, in k-then-T order). */
  best: KnnGridEntry;
  numClasses: number;
}

export { KNN_DEFAULTS };

async function loadFeatures(v: unknown, name: string): Promise<Tensor> {
  if (v instanceof Tensor) return v;
  if (typeof v === 'string') return readNpy(v);
  throw invalidArg(name, 'a Tensor or a .npy path', v);
}

async function loadLabels(v: unknown, name: string): Promise<Tensor> {
  if (v instanceof Tensor) return v;
  if (typeof v === 'string') {
    const labels = await readLabelsNpy(v);
    return Tensor.from(labels, [labels.length]);
  }
  if (v instanceof Int32Array || v instanceof BigInt64Array) return Tensor.from(v, [v.length]);
  if (Array.isArray(v) && v.every((x) => Number.isInteger(x))) return Tensor.from(Int32Array.from(v as number[]), [v.length]);
  throw invalidArg(name, 'a Tensor, an Int32Array, an array of integers or a .npy path', v);
}

function checkDistance(d: unknown): 'cosine' | 'euclidean' {
  if (d !== 'cosine' && d !== 'euclidean') throw invalidArg('distance', "'cosine' or 'euclidean'", d);
  return d;
}

function checkPositive(name: string, v: unknown, integer: boolean): void {
  const ok = typeof v === 'number' && Number.isFinite(v) && v > 0 && (!integer || Number.isSafeInteger(v));
  if (!ok) throw invalidArg(name, integer ? 'a positive integer' : 'a finite number > 0', v);
}

async function loadAll(o: { trainFeatures: unknown; trainLabels: unknown; testFeatures: unknown; testLabels: unknown }) {
  if (typeof o !== 'object' || o === null) throw invalidArg('options', 'an object with trainFeatures, trainLabels, testFeatures, testLabels', o);
  return Promise.all([
    loadFeatures(o.trainFeatures, 'trainFeatures'),
    loadLabels(o.trainLabels, 'trainLabels'),
    loadFeatures(o.testFeatures, 'testFeatures'),
    loadLabels(o.testLabels, 'testLabels'),
  ]);
}

type NativeKnn = NativeKnnGrid;

async function runKnn(tensors: Tensor[], ks: number[], temperatures: number[], distance: string, chunkSize: number | undefined): Promise<NativeKnn> {
  const handles = tensors.map((t) => t.handle);
  const [a, b, c, d] = handles as [NativeTensor, NativeTensor, NativeTensor, NativeTensor];
  return awaitNative(() => native().knnGrid(a, b, c, d, { ks, temperatures, distance, chunkSize: chunkSize ?? 0 }));
}

const KNN_KEYS = ['trainFeatures', 'trainLabels', 'testFeatures', 'testLabels', 'k', 'temperature', 'distance', 'chunkSize'] as const;
const KNN_GRID_KEYS = ['trainFeatures', 'trainLabels', 'testFeatures', 'testLabels', 'ks', 'temperatures', 'distance', 'chunkSize'] as const;
const LINEAR_KEYS = [
  'trainFeatures',
  'trainLabels',
  'testFeatures',
  'testLabels',
  'epochs',
  'lr',
  'batchSize',
  'momentum',
  'weightDecay',
  'standardize',
  'seed',
  'evalEveryEpoch',
  'signal',
] as const;
// Compile-time: each list names every key of its options type.
const _keysComplete: [
  Exclude<keyof KnnOptions, (typeof KNN_KEYS)[number]>,
  Exclude<keyof KnnGridOptions, (typeof KNN_GRID_KEYS)[number]>,
  Exclude<keyof LinearProbeOptions, (typeof LINEAR_KEYS)[number]>,
] extends [never, never, never]
  ? true
  : never = true;
void _keysComplete;

function checkOptions(opts: unknown, keys: readonly string[], where: string): void {
  if (typeof opts !== 'object' || opts === null) throw invalidArg('options', 'an object with trainFeatures, trainLabels, testFeatures, testLabels', opts);
  checkKeys(opts, keys, where);
}

/** solo-learn's weighted kNN accuracy (percent) of the test features against the train bank. */
export async function knn(opts: KnnOptions): Promise<KnnResult> {
  checkOptions(opts, KNN_KEYS, 'knn options');
  const k = opts?.k ?? KNN_DEFAULTS.k;
  const temperature = opts?.temperature ?? KNN_DEFAULTS.temperature;
  checkPositive('k', k, true);
  checkPositive('temperature', temperature, false);
  const distance = checkDistance(opts?.distance ?? KNN_DEFAULTS.distance);
  if (opts?.chunkSize !== undefined) checkPositive('chunkSize', opts.chunkSize, true);
  const tensors = await loadAll(opts);
  const r = await runKnn(tensors, [k], [temperature], distance, opts.chunkSize);
  return { top1: r.top1[0]!, top5: r.top5[0]! };
}

/** Every (k, T) of a grid from one pass over the similarities (top-max(k) neighbours found once). */
export async function knnGrid(opts: KnnGridOptions): Promise<KnnGridResult> {
  checkOptions(opts, KNN_GRID_KEYS, 'knnGrid options');
  const distance = checkDistance(opts?.distance ?? KNN_DEFAULTS.distance);
  const explicitKs = opts?.ks !== undefined;
  let ks = [...(opts?.ks ?? KNN_DEFAULTS.gridKs)];
  const temperatures = [...(opts?.temperatures ?? KNN_DEFAULTS.gridTemperatures)];
  if (!Array.isArray(ks) || ks.length === 0) throw invalidArg('ks', 'a non-empty array of positive integers', opts.ks);
  if (!Array.isArray(temperatures) || temperatures.length === 0) throw invalidArg('temperatures', 'a non-empty array of numbers > 0', opts.temperatures);
  ks.forEach((k, i) => checkPositive(`ks[${i}]`, k, true));
  temperatures.forEach((t, i) => checkPositive(`temperatures[${i}]`, t, false));
  if (opts.chunkSize !== undefined) checkPositive('chunkSize', opts.chunkSize, true);
  const tensors = await loadAll(opts);
  if (!explicitKs) {
    // The default grid goes up to 200 neighbours; a smaller bank keeps the ks it can answer.
    const bank = tensors[0]!.shape[0] ?? 0;
    const usable = ks.filter((k) => k <= bank);
    ks = usable.length > 0 ? usable : [bank];
  }
  // Euclidean weights ignore T: score one temperature and report it.
  const temps = distance === 'euclidean' ? [temperatures[0]!] : temperatures;
  const r = await runKnn(tensors, ks, temps, distance, opts.chunkSize);
  const results: KnnGridEntry[] = [];
  ks.forEach((k, i) =>
    temps.forEach((temperature, j) => results.push({ k, temperature, top1: r.top1[i * temps.length + j]!, top5: r.top5[i * temps.length + j]! })),
  );
  const best = results.reduce((a, b) => (b.top1 > a.top1 ? b : a));
  return { distance, results, best, numClasses: r.numClasses };
}

export interface LinearProbeOptions {
  trainFeatures: FeaturesInput;
  trainLabels: LabelsInput;
  testFeatures: FeaturesInput;
  testLabels: LabelsInput;
  /** Default 100. */
  epochs?: number;
  /** Peak learning rate, decayed by a per-epoch cosine to 0. Default 0.1. */
  lr?: number;
  /** Default 256. */
  batchSize?: number;
  /** Default 0.9. */
  momentum?: number;
  /** L2 penalty on weight and bias (torch.optim.SGD's weight_decay). Default 5e-5. */
  weightDecay?: number;
  /** Standardise each dimension with the train mean / std. Default true. */
  standardize?: boolean;
  /** Seeds the per-epoch shuffles. Default 0. */
  seed?: number;
  /** Test accuracy after every epoch in `history` (the reported top1/top5 are always the last epoch's). Default true. */
  evalEveryEpoch?: boolean;
  /** Stops between epochs with ERR_ABORTED. */
  signal?: AbortSignal;
}

export interface LinearProbeEpoch {
  epoch: number;
  lr: number;
  loss: number;
  trainTop1: number;
  testTop1?: number;
}

export interface LinearProbeResult {
  /** Test accuracy (percent) after the last epoch — never the best epoch, which would select on the test set. */
  top1: number;
  top5: number;
  numClasses: number;
  history: LinearProbeEpoch[];
  /** The trained classifier, (C, D) and (C,), acting on standardised features when `standardize`. */
  weight: Tensor;
  bias: Tensor;
}

export const LINEAR_PROBE_DEFAULTS = {
  epochs: 100,
  lr: 0.1,
  batchSize: 256,
  momentum: 0.9,
  weightDecay: 5e-5,
  standardize: true,
  seed: 0,
  evalEveryEpoch: true,
} as const;

/** Trains a linear classifier on frozen train features and reports its test accuracy (docs/features.md). */
export async function linearProbe(opts: LinearProbeOptions): Promise<LinearProbeResult> {
  checkOptions(opts, LINEAR_KEYS, 'linearProbe options');
  const o = withDefaults(LINEAR_PROBE_DEFAULTS, opts);
  checkPositive('epochs', o.epochs, true);
  checkPositive('lr', o.lr, false);
  checkPositive('batchSize', o.batchSize, true);
  if (typeof o.momentum !== 'number' || !(o.momentum >= 0 && o.momentum < 1)) throw invalidArg('momentum', 'a number in [0, 1)', o.momentum);
  if (typeof o.weightDecay !== 'number' || !(o.weightDecay >= 0) || !Number.isFinite(o.weightDecay))
    throw invalidArg('weightDecay', 'a finite number >= 0', o.weightDecay);
  if (typeof o.standardize !== 'boolean') throw invalidArg('standardize', 'a boolean', o.standardize);
  if (!Number.isSafeInteger(o.seed) || o.seed < 0) throw invalidArg('seed', 'a non-negative integer', o.seed);
  if (opts.signal?.aborted) throw new TorchSslError('ERR_ABORTED', 'the linear probe was aborted');
  const tensors = await loadAll(opts);
  const handles = tensors.map((t) => t.handle);
  const addon = native();
  const stop = addon.newStopFlag();
  const onAbort = () => addon.raiseStopFlag(stop);
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const [a, b, c, d] = handles as [NativeTensor, NativeTensor, NativeTensor, NativeTensor];
    const r = await awaitNative(() =>
      addon.linearProbe(
        a,
        b,
        c,
        d,
        {
          epochs: o.epochs,
          lr: o.lr,
          batchSize: o.batchSize,
          momentum: o.momentum,
          weightDecay: o.weightDecay,
          standardize: o.standardize,
          seed: o.seed,
          evalEveryEpoch: o.evalEveryEpoch,
        },
        stop,
      ),
    );
    return { top1: r.top1, top5: r.top5, numClasses: r.numClasses, history: r.history, weight: new Tensor(r.weight), bias: new Tensor(r.bias) };
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
}
