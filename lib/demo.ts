/**
 * The README's main job, end to end on real data installed by scripts/setup.sh (Debian's
 * dataset-fashion-mnist; nothing is downloaded). The training recipe is `configs/demo.yaml`:
 *
 *   random init → kNN (global 512-d and local-aggregated 2048-d features) on a fixed held-out subset
 *   → self-supervised training (native loop, batched augmentation, LARS, warmup-cosine; TCR with EMP-SSL
 *     patches by default) → solo-learn-layout checkpoint → loadCheckpoint
 *   → the same two kNN measurements on the trained backbone, and the gain.
 *
 * Local aggregation (BagSSL) averages the layer4 map over overlapping windows and keeps their layout: 3×3
 * windows at stride 2 on the 5×5 map of a 32×32 input (→ 512×2×2 = 2048-d); at 16×16 the map is 3×3, so the
 * windows are 2×2 at stride 1 (→ 512×2×2 = 2048-d as well).
 *
 * `torch-ssl demo` prints its progress lines; tests call runDemo directly.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { TorchSslError } from './errors.js';
import { cpuName } from './cpu.js';
import { ioFailure, writeFileAtomically } from './io.js';
import { buildInfo, describeBatchNorm, describeBlas, describeConv, getNumThreads, manualSeed } from './native.js';
import { dataSourceOptions, train, type TrainEvent } from './train.js';
import { resolveTrainConfig, deepMerge, type ResolvedTrainConfig } from './train-config.js';
import { loadCheckpoint } from './checkpoint/load.js';
import { extractFeatures, type FeatureModel, type NormalizeOption, type Pooling } from './features.js';
import { knn, linearProbe } from './eval.js';
import { resnet } from './models.js';
import { openImageSource, type ImageSource } from './data/index.js';
import { patchHeatmap } from './viz/heatmap.js';
import { patchKnn } from './viz/patch-knn.js';
import { writeReport } from './viz/report.js';

const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** The demo's training recipe, shipped with the package. */
export const DEMO_CONFIG = join(packageRoot, 'configs', 'demo.yaml');

export interface DemoOptions {
  /** The recipe (default configs/demo.yaml). */
  config?: string;
  /** Overrides merged into the recipe (tests shrink it; the CLI's --seed / --epochs / --out). */
  overrides?: Record<string, unknown>;
  /** Receives each progress line (measurements, training epochs, where the pictures and report went); default: none. */
  log?: (line: string) => void;
}

/** kNN top-1/top-5 and a linear probe's top-1 (100 epochs, SGD, standardised features) of one feature kind. */
export interface FeatureScore {
  top1: number;
  top5: number;
  linearTop1: number;
  dim: number;
}
export interface KnnPair {
  global: FeatureScore;
  local: FeatureScore;
}

export interface DemoSummary {
  method: string;
  seed: number;
  random: KnnPair;
  trained: KnnPair;
  onlineKnn: { epoch: number; top1: number; top5: number }[];
  trainSeconds: number;
  trainImagesPerSec: number;
  checkpoint: string;
  pictures: DemoPictures;
  seconds: number;
  cpu: string;
}

/** What the demo draws from its trained checkpoint (docs/viz.md), and the run's HTML report. */
export interface DemoPictures {
  heatmap: string;
  patchKnn: string;
  report: string;
  /** Share of a test patch's 119 nearest patches (other images) whose image has the query's class. */
  sameClassShare: { embedding: number | null; projection: number | null };
}

/** The images and settings every measurement of a backbone shares, random and trained alike. */
interface Measurement {
  trainSrc: ImageSource;
  testSrc: ImageSource;
  poolings: [keyof KnnPair, Pooling][];
  /** The statistics training normalised with. */
  normalize: NormalizeOption;
  knn: { k: number; temperature: number };
}

/** kNN and a linear probe of the global and the local-aggregated features of `model`. */
async function scoreFeatures(model: FeatureModel, m: Measurement): Promise<KnnPair> {
  const out: Partial<KnnPair> = {};
  for (const [name, pooling] of m.poolings) {
    const a = await extractFeatures(model, m.trainSrc, { pooling, normalize: m.normalize });
    const b = await extractFeatures(model, m.testSrc, { pooling, normalize: m.normalize });
    try {
      const r = await knn({
        trainFeatures: a.features,
        trainLabels: a.labels!,
        testFeatures: b.features,
        testLabels: b.labels!,
        k: m.knn.k,
        temperature: m.knn.temperature,
      });
      const lp = await linearProbe({
        trainFeatures: a.features,
        trainLabels: a.labels!,
        testFeatures: b.features,
        testLabels: b.labels!,
        epochs: 100,
        evalEveryEpoch: false,
      });
      lp.weight.dispose();
      lp.bias.dispose();
      out[name] = { top1: r.top1, top5: r.top5, linearTop1: lp.top1, dim: a.dim };
    } finally {
      a.features?.dispose();
      b.features?.dispose();
    }
  }
  return out as KnnPair;
}

/**
 * The pictures of the paper's appendices D and E for the trained checkpoint, on the held-out images: a
 * heatmap of test image 0 (query: its central quarter, the training patch size) in both spaces, and the 119
 * nearest patches among the first 1000 held-out images (at most); then the run's report.
 */
async function makePictures(
  model: FeatureModel,
  dataPath: string,
  o: { size?: number | undefined; fit?: 'pad' | 'resize' | undefined; limit: number; normalize: NormalizeOption; dir: string; log: (l: string) => void },
): Promise<DemoPictures> {
  const source = await openImageSource({
    path: dataPath,
    ...(o.size !== undefined && { size: o.size }),
    ...(o.fit !== undefined && { fit: o.fit }),
    limit: o.limit,
  });
  try {
    const side = source.height;
    const size = Math.max(1, Math.round(side / 2));
    const at = Math.floor((side - size) / 2);
    const spaces = model.projector ? 'both' : 'embedding';
    const b = await source.readBatch(0, 1);
    const heat = await patchHeatmap(
      model,
      { width: b.width, height: b.height, data: b.pixels as Uint8Array },
      { query: { x: at, y: at, size }, stride: 1, resize: side, space: spaces, normalize: o.normalize },
    );
    const heatmap = join(o.dir, 'heatmap.png');
    await writeFileAtomically(heatmap, heat.png);
    for (const m of heat.maps) m.similarity.dispose();
    const cls = (l: number | null) => (l === null ? '?' : (source.classes?.[l] ?? String(l)));
    const knnResult = await patchKnn(model, source, {
      query: { image: 0, x: at, y: at, size },
      k: 119,
      stride: Math.max(1, Math.floor(size / 2)),
      resize: side,
      space: spaces,
      normalize: o.normalize,
    });
    const patchKnnPng = join(o.dir, 'patch-knn.png');
    await writeFileAtomically(patchKnnPng, knnResult.png);
    const share = (space: string) => knnResult.results.find((r) => r.space === space)?.sameClassShare ?? null;
    const pct = (v: number | null) => (v === null ? 'n/a' : `${(100 * v).toFixed(1)} %`);
    o.log(
      `pictures: ${heatmap} (test image 0, ${cls(knnResult.query.label)}: similarity of its central ${size}×${size} patch to every patch); ${patchKnnPng} (its 119 nearest patches among ${knnResult.bank.images} test images)`,
    );
    o.log(`  same-class share of the 119 nearest patches: embedding ${pct(share('embedding'))}, projection ${pct(share('projection'))}`);
    const report = join(o.dir, 'report.html');
    await writeReport(o.dir, { out: report });
    return { heatmap, patchKnn: patchKnnPng, report, sameClassShare: { embedding: share('embedding'), projection: share('projection') } };
  } finally {
    await source.close();
  }
}

/** The local-aggregation window for a layer4 map of side `side` (BagSSL's 3/2 on 5×5; 2/1 on 3×3 and 4×4). */
export function localWindow(side: number): { kernel: number; stride: number } {
  if (side >= 5) return { kernel: 3, stride: 2 };
  if (side >= 2) return { kernel: 2, stride: 1 };
  throw new TorchSslError('ERR_TORCH_SHAPE', `a ${side}×${side} layer4 map has no local windows to aggregate`);
}

/** Reads the recipe file (YAML) and resolves relative paths in it against the current directory. */
export function readDemoConfig(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw ioFailure(path, `cannot read the demo recipe ${path}: ${(err as Error).message}`, { cause: err });
  }
  // Required here, not imported at the top: importing the package (a cold start to the first feature) then
  // does not pay for the YAML parser.
  const YAML = createRequire(import.meta.url)('yaml') as typeof import('yaml');
  const v: unknown = YAML.parse(text);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new TorchSslError('ERR_CONFIG', `${path}: not a mapping`);
  return v as Record<string, unknown>;
}

/** The training line: method, backbone, epochs, batch and views, optimiser, seed, precision. */
function describeTraining(c: ResolvedTrainConfig): string {
  const side = c.resolvedViews[0]!.size;
  const views = c.numViews;
  const patches = c.concatViews
    ? `${views} patches (${(c.resolvedViews[0]!.scale[0] * 100).toFixed(0)} % of the area) per image, upsampled to ${side}×${side}`
    : `${views} views of ${side}×${side}`;
  return `training ${c.method} on ResNet-${c.backbone.depth} (${c.backbone.stem} stem): ${c.epochs} epoch${c.epochs > 1 ? 's' : ''}, ${c.batchSize} images per step × ${patches}, LARS lr ${c.optimizer.lr} + ${c.scheduler.warmupEpochs > 0 ? 'warmup-' : ''}cosine, seed ${c.seed}, ${c.precision === '32' ? 'float32' : c.precision}${c.precisionReason !== undefined ? ` (${c.precisionReason})` : ''}…`;
}

/** Training events as progress lines: each epoch and online kNN, and a step line at most every 30 s. */
function trainingLog(c: ResolvedTrainConfig, startedAt: number, log: (line: string) => void): (e: TrainEvent) => void {
  let lastPrint = startedAt;
  return (e) => {
    const at = `${((performance.now() - startedAt) / 1000).toFixed(0)} s`;
    if (e.type === 'epoch') log(`  epoch ${e.epoch}/${c.epochs}: loss ${e.loss.toFixed(3)} (${at})`);
    else if (e.type === 'knn') log(`  online kNN ${e.epoch === 0 ? 'before the first step' : `after epoch ${e.epoch}`}: top-1 ${e.top1.toFixed(2)}% (${at})`);
    else if (e.type === 'step' && performance.now() - lastPrint > 30_000) {
      lastPrint = performance.now();
      log(`  step ${e.globalStep}/${e.totalSteps}: loss ${e.loss.toFixed(3)}, ${e.imagesPerSec.toFixed(0)} images/s (${at})`);
    }
  };
}

/** The gain of the trained over the random backbone, kNN and linear probe, global and local. */
function logGain(random: KnnPair, trained: KnnPair, log: (line: string) => void): void {
  const gain = (k: keyof KnnPair) => trained[k].top1 - random[k].top1;
  const sign = (x: number) => `${x >= 0 ? '+' : ''}${x.toFixed(2)}`;
  const lgain = (k: keyof KnnPair) => trained[k].linearTop1 - random[k].linearTop1;
  log(
    `gain over the random initialisation, kNN top-1: global ${sign(gain('global'))} points, local ${sign(gain('local'))} points; linear probe: global ${sign(lgain('global'))}, local ${sign(lgain('local'))}`,
  );
  if (gain('global') <= 0 && gain('local') <= 0) {
    log(
      'kNN: this short run did not beat the random initialisation (its features are already close to raw-pixel kNN on Fashion-MNIST); docs/learning.md has longer side-by-side runs against PyTorch (bench/learning.mjs)',
    );
  }
}

/**
 * Runs the demo: measures a random backbone, trains, measures the trained one loaded from its checkpoint,
 * draws its pictures and the run's report. Progress goes to `log` line by line; the figures come back.
 */
export async function runDemo(o: DemoOptions = {}): Promise<DemoSummary> {
  const log = o.log ?? (() => undefined);
  const t0 = performance.now();
  const recipePath = o.config ?? DEMO_CONFIG;
  // The demo measures the random and the trained backbone itself (same init, same images), so the
  // trainer's online kNN is off unless asked for.
  const config = deepMerge(deepMerge(readDemoConfig(recipePath), { knn: { every: 0 } }), o.overrides ?? {});
  const c = resolveTrainConfig(config); // validated before any work starts
  if (!c.data.val) throw new TorchSslError('ERR_CONFIG', `${recipePath}: the demo needs data.val (a labelled held-out set)`);
  for (const p of [c.data.train, c.data.val]) {
    if (!existsSync(p)) {
      throw ioFailure(
        p,
        `${p} is missing: the demo trains on Debian's dataset-fashion-mnist; run \`bash scripts/setup.sh\` (or apt-get install dataset-fashion-mnist)`,
      );
    }
  }
  const info = buildInfo();
  const cpu = cpuName();
  const threads = c.threads > 0 ? c.threads : getNumThreads();
  log(`torch-ssl demo — LibTorch ${info.torchVersion}, ${threads} threads on ${cpu}${info.cudaAvailable ? ', CUDA available' : ''}`);
  log(describeBlas(info.blas));
  log(describeConv(info));
  log(describeBatchNorm(info));
  log(`recipe: ${isAbsolute(recipePath) ? recipePath : resolve(recipePath)}`);

  const open = (path: string, limit: number | undefined, sampleSeed?: number): Promise<ImageSource> =>
    openImageSource(dataSourceOptions(path, c.data, limit, sampleSeed));
  // The same images the trainer reads (data.sampleSeed: a seeded random subset instead of the first `limit`).
  const trainSrc = await open(c.data.train, c.data.limit, c.data.sampleSeed);
  const testSrc = await open(c.data.val, c.data.valLimit);
  try {
    const which = c.data.sampleSeed !== undefined ? `a random subset (seed ${c.data.sampleSeed}) of ` : '';
    log(
      `data: ${trainSrc.count} training images (${which}${c.data.train}), ${testSrc.count} held-out test images (${c.data.val}), ${trainSrc.height}×${trainSrc.width}${trainSrc.kind === 'idx' ? ' (gray → RGB)' : ''}`,
    );
    // layer4's side for a CIFAR-stem ResNet (3×3 stride-1 conv with padding 2, then three stride-2 stages).
    const mapSide = c.backbone.stem === 'cifar' ? Math.ceil((trainSrc.height + 2) / 8) : Math.ceil(trainSrc.height / 32);
    const window = localWindow(mapSide);
    // The statistics training normalised with, for the random and the trained backbone alike.
    const normalize = c.data.normalization ?? trainSrc.normalization ?? 'cifar10';
    const poolings: Measurement['poolings'] = [
      ['global', 'global'],
      ['local', window],
    ];
    const measurement: Measurement = { trainSrc, testSrc, poolings, normalize, knn: c.knn };
    const describe = (p: KnnPair) =>
      `global ${p.global.dim}-d: kNN top-1 ${p.global.top1.toFixed(2)}% (linear probe ${p.global.linearTop1.toFixed(2)}%) | local ${p.local.dim}-d (layer4 ${mapSide}×${mapSide} → ${window.kernel}×${window.kernel}/${window.stride} windows): kNN top-1 ${p.local.top1.toFixed(2)}% (linear probe ${p.local.linearTop1.toFixed(2)}%)`;

    manualSeed(c.seed);
    const fresh = resnet({ depth: c.backbone.depth, stem: c.backbone.stem }).eval();
    const random = await scoreFeatures({ backbone: fresh }, measurement).finally(() => fresh.dispose());
    log(`random initialisation (seed ${c.seed}): ${describe(random)}`);

    log(describeTraining(c));
    const ts = performance.now();
    const result = await train(config, { onProgress: trainingLog(c, ts, log) });
    const trainSeconds = (performance.now() - ts) / 1000;
    log(
      `  ${trainSeconds.toFixed(0)} s, ${result.imagesPerSec.toFixed(1)} images/s (${c.numViews} views each); checkpoint (solo-learn layout): ${result.checkpoint}`,
    );

    const loaded = await loadCheckpoint(result.checkpoint);
    let trained: KnnPair;
    let pictures: DemoPictures;
    try {
      trained = await scoreFeatures(loaded, measurement);
      log(`trained backbone (loaded from the checkpoint): ${describe(trained)}`);
      pictures = await makePictures(loaded, c.data.val, {
        size: c.data.size,
        fit: c.data.fit,
        limit: Math.min(1000, c.data.valLimit ?? 1000),
        normalize,
        dir: c.checkpoint.dir,
        log,
      });
    } finally {
      loaded.dispose();
    }
    const seconds = (performance.now() - t0) / 1000;
    logGain(random, trained, log);
    log(`done in ${seconds.toFixed(0)} s`);
    log(`report: ${pictures.report} (curves, config, pictures; open it in a browser)`);
    return {
      method: c.method,
      seed: c.seed,
      random,
      trained,
      onlineKnn: result.knn,
      trainSeconds,
      trainImagesPerSec: result.imagesPerSec,
      checkpoint: result.checkpoint,
      pictures,
      seconds,
      cpu,
    };
  } finally {
    await trainSrc.close();
    await testSrc.close();
  }
}
