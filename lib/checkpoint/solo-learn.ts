/**
 * Recognising what a checkpoint is — from metadata only, never reading tensor data.
 *
 * solo-learn Lightning `.ckpt` files of every era (docs/checkpoints.md): state_dict
 * keys `backbone.*` (or `encoder.*` before Dec 2021), `projector.*`, `classifier.*`, BYOL/MoCo's
 * `momentum_backbone.*` / `momentum_projector.*` / `predictor.*`; the config from `hyper_parameters`
 * (an omegaconf DictConfig or a dict) or from the `args.json` solo-learn writes beside the checkpoint.
 * Also torchvision `.pth` state dicts, plain state dicts (optionally `module.`-prefixed) and the
 * project's own files (a dict with `torch_ssl_version` and `state_dict`).
 * Architecture comes from tensor shapes: block counts per stage give the depth, conv1's kernel the stem.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { TorchSslError } from '../errors.js';
import { isNormalizationName, NORMALIZATIONS, normalizationForDataset } from '../data/normalization.js';
import { PyGlobal, PyObject, PySlice, dictGet, getPyState, isTuple, type PyValue } from './pyvalue.js';
import { TensorRef } from './tensor-ref.js';
import { findTensors, readTorchFile, type TorchFile } from './torch-file.js';

export type CheckpointFormat = 'solo-learn-lightning' | 'torchvision' | 'state-dict' | 'torch-ssl';
/**
 * legacy-encoder: `encoder.*` keys (solo-learn before 2021-12-01) · hparams-omegaconf / hparams-dict:
 * config pickled in `hyper_parameters` · modern-args-json: no config inside, `args.json` beside ·
 * no-config: a Lightning checkpoint with neither.
 */
export type CheckpointEra = 'legacy-encoder' | 'hparams-omegaconf' | 'hparams-dict' | 'modern-args-json' | 'no-config';

export interface HeadLayer {
  /** Index in the nn.Sequential (the `projector.<index>.` of the keys). */
  index: number;
  type: 'Linear' | 'BatchNorm1d' | 'ReLU';
  inFeatures?: number;
  outFeatures?: number;
  bias?: boolean;
  numFeatures?: number;
  /** BatchNorm1d without weight/bias (affine=False). */
  affine?: boolean;
}

export interface Normalization {
  mean: [number, number, number];
  std: [number, number, number];
}

export interface CheckpointInfo {
  path: string;
  format: CheckpointFormat;
  /** Only for solo-learn Lightning checkpoints. */
  era: CheckpointEra | null;
  method: string | null;
  /** Where `method` came from: the config, or a guess from the module layout. */
  methodSource: 'config' | 'layout' | null;
  depth: 18 | 34 | 50 | 101 | 152 | null;
  block: 'basic' | 'bottleneck' | null;
  /** Residual blocks per stage, e.g. [2, 2, 2, 2]. */
  layers: number[];
  /** 'cifar' = 3×3 conv1 (solo-learn's CIFAR surgery), 'imagenet' = 7×7. */
  stem: 'cifar' | 'imagenet' | null;
  /** Width of the backbone's pooled features (512 for ResNet-18/34, 2048 for ResNet-50). */
  featureDim: number | null;
  dataset: string | null;
  datasetSource: 'config' | 'layout' | null;
  numClasses: number | null;
  /** Pretraining normalisation of the dataset (docs/features.md, Normalisation), ImageNet's for ImageNet-like datasets. */
  normalization: Normalization | null;
  epoch: number | null;
  globalStep: number | null;
  lightningVersion: string | null;
  projector: HeadLayer[] | null;
  predictor: HeadLayer[] | null;
  /** Trainable parameter counts (BN running stats excluded) per state_dict module, e.g. backbone, projector. */
  parameterCounts: Record<string, number>;
  /** The run's config as plain JSON (args.json, or hyper_parameters converted from omegaconf). */
  config: Record<string, unknown> | null;
  configSource: 'args.json' | 'hyper_parameters' | null;
  /** Assumptions made (guessed dataset, ignored keys, unreadable args.json, …). */
  warnings: string[];
}

/** The state_dict split by module, prefixes stripped (`backbone.conv1.weight` → `conv1.weight`). */
export interface CheckpointModules {
  backbone: Map<string, TensorRef>;
  projector: Map<string, TensorRef>;
  classifier: Map<string, TensorRef>;
  momentumBackbone: Map<string, TensorRef>;
  momentumProjector: Map<string, TensorRef>;
  predictor: Map<string, TensorRef>;
  /** Everything else, full key (momentum_classifier.*, queue, …). */
  other: Map<string, TensorRef>;
}

export interface KeySummary {
  /** String keys of the checkpoint's top-level dict, other than tensors (a flat state dict lists none). */
  topLevel: string[];
  stateDictTensors: number;
  /** Tensors per module name (`backbone`, `projector`, …, `other`). */
  modules: Record<string, number>;
  /** Tensors outside the state_dict (optimizer momentum buffers, …): never read. */
  otherTensors: number;
  stateDictBytes: number;
  totalTensorBytes: number;
  dtypes: string[];
}

export type InspectResult = CheckpointInfo & { keys: KeySummary };

export interface RecognizeOptions {
  /** A parsed args.json (or any config object) to use instead of / before hyper_parameters. */
  config?: Record<string, unknown> | null;
}

export interface InspectOptions {
  /**
   * args.json to use: a path, an already parsed object, or false to ignore it. Default: `args.json` in the
   * checkpoint's folder when present (solo-learn writes it there).
   */
  argsJson?: string | Record<string, unknown> | false;
}


const DEPTHS: Array<{ block: 'basic' | 'bottleneck'; layers: number[]; depth: 18 | 34 | 50 | 101 | 152 }> = [
  { block: 'basic', layers: [2, 2, 2, 2], depth: 18 },
  { block: 'basic', layers: [3, 4, 6, 3], depth: 34 },
  { block: 'bottleneck', layers: [3, 4, 6, 3], depth: 50 },
  { block: 'bottleneck', layers: [3, 4, 23, 3], depth: 101 },
  { block: 'bottleneck', layers: [3, 8, 36, 3], depth: 152 },
];

const MODULE_PREFIXES: Array<[keyof Omit<CheckpointModules, 'other'>, string[]]> = [
  ['momentumBackbone', ['momentum_backbone.', 'momentum_encoder.']],
  ['momentumProjector', ['momentum_projector.']],
  ['backbone', ['backbone.', 'encoder.']],
  ['projector', ['projector.']],
  ['predictor', ['predictor.']],
  ['classifier', ['classifier.']],
];
const BUFFER_SUFFIXES = ['running_mean', 'running_var', 'num_batches_tracked'];

function formatError(path: string, what: string): TorchSslError {
  return new TorchSslError('ERR_CHECKPOINT_FORMAT', `${path}: ${what}`);
}

function stringKeyedTensors(d: PyValue | undefined): Map<string, TensorRef> | null {
  let m: Map<PyValue, PyValue> | null = null;
  if (d instanceof Map) m = d;
  else if (d instanceof PyObject && d.dictItems) m = d.dictItems;
  if (!m) return null;
  const out = new Map<string, TensorRef>();
  for (const [k, v] of m) if (typeof k === 'string' && v instanceof TensorRef) out.set(k, v);
  return out;
}

function isOmegaConf(v: PyValue | undefined): boolean {
  return v instanceof PyObject && v.$class.startsWith('omegaconf.');
}

/**
 * A JSON-friendly copy of an unpickled value: dicts → objects (non-string keys stringified), tuples and
 * sets → arrays, omegaconf DictConfig / ListConfig / value nodes → their content, tensors and other
 * records → `{ $tensor }` / `{ $class }` stubs. Depth- and cycle-bounded.
 */
export function toPlain(v: PyValue | undefined, depth = 0, seen: Set<object> = new Set(), budget: { nodes: number } = { nodes: 100_000 }): unknown {
  if (v === undefined || v === null || typeof v === 'boolean' || typeof v === 'string') return v ?? null;
  // Shared sub-objects are expanded at each use; the budget keeps a DAG of 2^60 paths from hanging us.
  if (--budget.nodes < 0) return '<truncated>';
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
  if (typeof v === 'bigint') return v.toString();
  if (depth > 64) return '<nested too deep>';
  if (seen.has(v)) return '<cycle>';
  if (v instanceof TensorRef) return { $tensor: v.dtype, shape: [...v.shape] };
  if (v instanceof Uint8Array) return { $bytes: v.length };
  if (v instanceof PyGlobal) return { $global: v.$global };
  if (v instanceof PySlice) return { $slice: [toPlain(v.start), toPlain(v.stop), toPlain(v.step)] };
  seen.add(v);
  try {
    if (Array.isArray(v)) return v.map((x) => toPlain(x, depth + 1, seen, budget));
    if (v instanceof Set) return [...v].map((x) => toPlain(x, depth + 1, seen, budget));
    if (v instanceof Map) {
      const o: Record<string, unknown> = {};
      for (const [k, x] of v) {
        // defineProperty: a "__proto__" key from a file must stay data, not become a prototype.
        Object.defineProperty(o, typeof k === 'string' ? k : String(toPlain(k, depth + 1, seen, budget)), {
          value: toPlain(x, depth + 1, seen, budget),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return o;
    }
    if (v instanceof PyObject) {
      if (isOmegaConf(v)) {
        const content = dictGet(v.state ?? null, '_content');
        if (content !== undefined && (content instanceof Map || Array.isArray(content))) return toPlain(content, depth + 1, seen, budget);
        const val = dictGet(v.state ?? null, '_val');
        if (val !== undefined) return toPlain(val, depth + 1, seen, budget);
        return content === undefined ? null : toPlain(content, depth + 1, seen, budget);
      }
      if (v.dictItems) return toPlain(v.dictItems, depth + 1, seen, budget);
      if (v.listItems) return toPlain(v.listItems, depth + 1, seen, budget);
      return { $class: v.$class };
    }
    if (v instanceof Object && 'key' in v && 'dtype' in v) return { $storage: (v as { key: string }).key };
    return null;
  } finally {
    seen.delete(v);
  }
}

function headLayout(m: Map<string, TensorRef>): HeadLayer[] | null {
  if (m.size === 0) return null;
  const byIndex = new Map<number, Map<string, TensorRef>>();
  for (const [k, t] of m) {
    const match = /^(\d+)\.(.+)$/.exec(k);
    if (!match) continue;
    const i = Number(match[1]);
    if (!byIndex.has(i)) byIndex.set(i, new Map());
    byIndex.get(i)!.set(match[2]!, t);
  }
  if (byIndex.size === 0) return null;
  const indices = [...byIndex.keys()].sort((a, b) => a - b);
  const layers: HeadLayer[] = [];
  // Parameterless indices between modules are activations; solo-learn's heads use ReLU there.
  for (let i = 0; i <= indices[indices.length - 1]!; i++) {
    const p = byIndex.get(i);
    if (!p) {
      layers.push({ index: i, type: 'ReLU' });
      continue;
    }
    const w = p.get('weight');
    if (p.has('running_mean') || p.has('running_var')) {
      const n = (p.get('running_mean') ?? p.get('running_var'))!.shape[0] ?? 0;
      layers.push({ index: i, type: 'BatchNorm1d', numFeatures: n, affine: w !== undefined });
    } else if (w && w.shape.length === 2) {
      layers.push({ index: i, type: 'Linear', inFeatures: w.shape[1]!, outFeatures: w.shape[0]!, bias: p.has('bias') });
    } else if (w && w.shape.length === 1) {
      // Normalisation without running stats (track_running_stats=False).
      layers.push({ index: i, type: 'BatchNorm1d', numFeatures: w.shape[0]!, affine: true });
    }
  }
  return layers;
}

function countParameters(m: Map<string, TensorRef>): number {
  let n = 0;
  for (const [k, t] of m) if (!BUFFER_SUFFIXES.some((s) => k.endsWith(`.${s}`) || k === s) && k !== 'queue' && !k.endsWith('_queue')) n += t.numel;
  return n;
}

function analyseBackbone(bb: Map<string, TensorRef>): Pick<CheckpointInfo, 'depth' | 'block' | 'layers' | 'stem' | 'featureDim'> {
  const layers: number[] = [];
  for (let l = 1; l <= 4; l++) {
    const blocks = new Set<number>();
    for (const k of bb.keys()) {
      const m = new RegExp(`^layer${l}\\.(\\d+)\\.`).exec(k);
      if (m) blocks.add(Number(m[1]));
    }
    layers.push(blocks.size);
  }
  const found = layers.some((n) => n > 0);
  const block = !found ? null : bb.has('layer1.0.conv3.weight') ? 'bottleneck' : 'basic';
  const depth = DEPTHS.find((d) => d.block === block && d.layers.every((n, i) => n === layers[i]))?.depth ?? null;
  const k = bb.get('conv1.weight')?.shape[2];
  const stem = k === 3 ? 'cifar' : k === 7 ? 'imagenet' : null;
  let featureDim: number | null = null;
  const last = layers[3]! - 1;
  if (last >= 0) {
    const bn = bb.get(`layer4.${last}.${block === 'bottleneck' ? 'bn3' : 'bn2'}.weight`) ?? bb.get(`layer4.${last}.${block === 'bottleneck' ? 'bn3' : 'bn2'}.running_mean`);
    featureDim = bn?.shape[0] ?? null;
  }
  return { depth, block, layers: found ? layers : [], stem, featureDim };
}

function explicitNormalization(v: unknown): Normalization | null {
  // A statistics name torch-ssl recorded (e.g. 'emp-ssl', 'cifar-eval'), else a dataset name.
  if (typeof v === 'string') return copyOf(isNormalizationName(v) ? NORMALIZATIONS[v] : normalizationForDataset(v));
  if (v !== null && typeof v === 'object') {
    const { mean, std } = v as { mean?: unknown; std?: unknown };
    const triple = (x: unknown): x is [number, number, number] => Array.isArray(x) && x.length === 3 && x.every((n) => typeof n === 'number' && Number.isFinite(n));
    if (triple(mean) && triple(std) && std.every((n) => n > 0)) return { mean: [...mean], std: [...std] };
  }
  return null;
}

function configValue(cfg: Record<string, unknown> | null, ...paths: string[]): unknown {
  if (!cfg) return undefined;
  for (const p of paths) {
    let cur: unknown = cfg;
    for (const part of p.split('.')) cur = cur !== null && typeof cur === 'object' && !Array.isArray(cur) ? (cur as Record<string, unknown>)[part] : undefined;
    if (cur !== undefined && cur !== null && cur !== '<not serializable>') return cur;
  }
  return undefined;
}

/**
 * Recognises an opened torch file. Reads no tensor data. Throws ERR_CHECKPOINT_FORMAT when the file
 * holds no state dict at all.
 */
const copyOf = (n: { mean: readonly number[]; std: readonly number[] } | null): Normalization | null => (n === null ? null : ({ mean: [...n.mean], std: [...n.std] } as Normalization));

/** The state dict: under `state_dict` (or `model`, `model_state_dict`, `module`), else the top level; DDP's `module.` stripped. */
function findStateDict(file: TorchFile, warnings: string[]): Map<string, TensorRef> {
  const root = file.root;
  let sd: Map<string, TensorRef> | null = null;
  for (const key of ['state_dict', 'model', 'model_state_dict', 'module']) {
    const m = stringKeyedTensors(dictGet(root, key));
    if (m && m.size > 0) {
      sd = m;
      if (key !== 'state_dict') warnings.push(`state dict taken from top-level key "${key}"`);
      break;
    }
  }
  if (!sd) sd = stringKeyedTensors(root);
  if (!sd || sd.size === 0) throw formatError(file.path, 'holds no state dict (no string-keyed tensors at the top level or under "state_dict")');
  if ([...sd.keys()].every((k) => k.startsWith('module.'))) {
    sd = new Map([...sd].map(([k, t]) => [k.slice('module.'.length), t]));
    warnings.push('stripped the DistributedDataParallel "module." prefix');
  }
  return sd;
}

/** The state dict split by module: solo-learn prefixes (backbone. / encoder. …), or torchvision's body and fc. */
function splitModules(sd: Map<string, TensorRef>): { modules: CheckpointModules; backbonePrefix: string | null; hasPrefixed: boolean } {
  const modules: CheckpointModules = {
    backbone: new Map(),
    projector: new Map(),
    classifier: new Map(),
    momentumBackbone: new Map(),
    momentumProjector: new Map(),
    predictor: new Map(),
    other: new Map(),
  };
  let backbonePrefix: string | null = null;
  const hasPrefixed = [...sd.keys()].some((k) => k.startsWith('backbone.') || k.startsWith('encoder.'));
  for (const [k, t] of sd) {
    let placed = false;
    if (hasPrefixed) {
      for (const [name, prefixes] of MODULE_PREFIXES) {
        const p = prefixes.find((x) => k.startsWith(x));
        if (p) {
          modules[name].set(k.slice(p.length), t);
          if (name === 'backbone') backbonePrefix = p;
          placed = true;
          break;
        }
      }
    } else if (k.startsWith('fc.')) {
      modules.classifier.set(k.slice(3), t);
      placed = true;
    } else if (/^(conv1|bn1|layer\d)\./.test(k)) {
      modules.backbone.set(k, t);
      placed = true;
    }
    if (!placed) modules.other.set(k, t);
  }
  return { modules, backbonePrefix, hasPrefixed };
}

/** The run's config: an explicit one (args.json), else hyper_parameters (omegaconf or a dict), as plain JSON. */
function readConfig(root: PyValue, explicit: Record<string, unknown> | undefined): { config: Record<string, unknown> | null; configSource: CheckpointInfo['configSource']; hpIsOmega: boolean; hasHp: boolean } {
  const hp = dictGet(root, 'hyper_parameters');
  const hasHp = hp !== undefined && hp !== null;
  const hpIsOmega = isOmegaConf(hp) || (hp instanceof Map && [...hp.values()].some((v) => isOmegaConf(v)));
  if (explicit) return { config: explicit, configSource: 'args.json', hpIsOmega, hasHp };
  if (!hasHp) return { config: null, configSource: null, hpIsOmega, hasHp };
  let plain = toPlain(hp) as Record<string, unknown> | null;
  if (!plain || typeof plain !== 'object' || Array.isArray(plain)) return { config: null, configSource: null, hpIsOmega, hasHp };
  // Lightning keeps save_hyperparameters(cfg) as {"cfg": DictConfig}; unwrap a lone config.
  const vals = Object.values(plain);
  if (vals.length === 1 && vals[0] !== null && typeof vals[0] === 'object' && !Array.isArray(vals[0]) && hp instanceof Map && isOmegaConf([...hp.values()][0])) {
    plain = vals[0] as Record<string, unknown>;
  }
  return { config: plain, configSource: 'hyper_parameters', hpIsOmega, hasHp };
}

/** solo-learn's checkpoint eras (docs/checkpoints.md). */
function eraOf(backbonePrefix: string | null, c: ReturnType<typeof readConfig>): CheckpointEra {
  if (backbonePrefix === 'encoder.') return 'legacy-encoder';
  if (c.hasHp) return c.hpIsOmega ? 'hparams-omegaconf' : 'hparams-dict';
  if (c.configSource === 'args.json') return 'modern-args-json';
  return 'no-config';
}

/** The method: the config's, else a guess from the module layout (BYOL, MoCo v2+, SimCLR), with a warning. */
function methodOf(config: Record<string, unknown> | null, format: CheckpointFormat, modules: CheckpointModules, projector: HeadLayer[] | null, warnings: string[]): { method: string | null; methodSource: CheckpointInfo['methodSource'] } {
  const m = configValue(config, 'method');
  if (typeof m === 'string') return { method: m, methodSource: 'config' };
  if (format !== 'solo-learn-lightning' && modules.projector.size === 0) return { method: null, methodSource: null };
  let method: string | null = null;
  if (modules.predictor.size > 0 && modules.momentumBackbone.size > 0) method = 'byol';
  else if (modules.other.has('queue')) method = 'mocov2plus';
  else if (projector && projector.length === 3 && projector.every((l, i) => l.type === (i === 1 ? 'ReLU' : 'Linear'))) method = 'simclr';
  if (method === null) return { method: null, methodSource: null };
  warnings.push(`method "${method}" guessed from the module layout (no config)`);
  return { method, methodSource: 'layout' };
}

/** The dataset: the config's, else a guess from the stem and the classifier's classes, with a warning. */
function datasetOf(config: Record<string, unknown> | null, format: CheckpointFormat, stem: CheckpointInfo['stem'], numClasses: unknown, warnings: string[]): { dataset: string | null; datasetSource: CheckpointInfo['datasetSource'] } {
  const d = configValue(config, 'data.dataset', 'dataset');
  if (typeof d === 'string') return { dataset: d, datasetSource: 'config' };
  let dataset: string | null = null;
  if (format === 'torchvision' && numClasses === 1000) dataset = 'imagenet';
  else if (stem === 'cifar' && numClasses === 10) dataset = 'cifar10';
  else if (stem === 'cifar' && numClasses === 100) dataset = 'cifar100';
  if (dataset === null) return { dataset: null, datasetSource: null };
  warnings.push(`dataset "${dataset}" guessed from the stem and ${String(numClasses)} classes (no config)`);
  return { dataset, datasetSource: 'layout' };
}

/** Trainable parameter counts per module, under the state dict's own module names. */
function parameterCountsOf(modules: CheckpointModules): Record<string, number> {
  const names: Record<keyof CheckpointModules, string> = {
    backbone: 'backbone',
    projector: 'projector',
    classifier: 'classifier',
    momentumBackbone: 'momentum_backbone',
    momentumProjector: 'momentum_projector',
    predictor: 'predictor',
    other: 'other',
  };
  const out: Record<string, number> = {};
  for (const [k, m] of Object.entries(modules) as Array<[keyof CheckpointModules, Map<string, TensorRef>]>) if (m.size > 0) out[names[k]] = countParameters(m);
  return out;
}

/**
 * What a checkpoint is, in named steps: find the state dict, split it by module, read the config, classify the
 * format and era, analyse the backbone and heads, then method, dataset and normalisation (config first,
 * layout guesses with warnings).
 */
export function recognizeCheckpoint(file: TorchFile, opts: RecognizeOptions = {}): { info: CheckpointInfo; modules: CheckpointModules } {
  const root = file.root;
  const warnings: string[] = [];
  const isLightning = dictGet(root, 'state_dict') !== undefined && ['pytorch-lightning_version', 'epoch', 'global_step', 'optimizer_states'].some((k) => dictGet(root, k) !== undefined);
  const isOwn = typeof dictGet(root, 'torch_ssl_version') === 'string';
  const { modules, backbonePrefix, hasPrefixed } = splitModules(findStateDict(file, warnings));
  const cfg = readConfig(root, opts.config ?? undefined);
  const { config, configSource } = cfg;

  const hasTorchvisionBody = !hasPrefixed && modules.backbone.size > 0;
  const format: CheckpointFormat = isOwn ? 'torch-ssl' : isLightning && hasPrefixed ? 'solo-learn-lightning' : hasTorchvisionBody && modules.classifier.size > 0 ? 'torchvision' : 'state-dict';
  const era = format === 'solo-learn-lightning' ? eraOf(backbonePrefix, cfg) : null;

  const arch = analyseBackbone(modules.backbone);
  if (modules.backbone.size > 0 && arch.depth === null) warnings.push(`backbone block counts [${arch.layers.join(', ')}] match no torchvision ResNet`);
  const projector = headLayout(modules.projector);
  const predictor = headLayout(modules.predictor);
  const { method, methodSource } = methodOf(config, format, modules, projector, warnings);

  const numClasses = (configValue(config, 'data.num_classes', 'num_classes') as number | undefined) ?? modules.classifier.get('weight')?.shape[0] ?? null;
  const { dataset, datasetSource } = datasetOf(config, format, arch.stem, numClasses, warnings);
  // torch-ssl's args.json records the statistics it trained with (data.normalization: a name or
  // { mean, std }); they win over the dataset name, which for a custom set says nothing about them.
  const trained = explicitNormalization(configValue(config, 'data.normalization'));
  const normalization = trained ?? (dataset === null ? null : copyOf(normalizationForDataset(dataset)));
  if (dataset !== null && normalization === null) warnings.push(`no known normalisation for dataset "${dataset.toLowerCase()}"`);
  const stem = arch.stem ?? (configValue(config, 'cifar') === true ? 'cifar' : null);

  const num = (v: PyValue | undefined): number | null => (typeof v === 'number' ? v : null);
  const lv = dictGet(root, 'pytorch-lightning_version');
  const info: CheckpointInfo = {
    path: file.path,
    format,
    era,
    method,
    methodSource,
    ...arch,
    stem,
    dataset,
    datasetSource,
    numClasses: typeof numClasses === 'number' ? numClasses : null,
    normalization,
    epoch: num(dictGet(root, 'epoch')),
    globalStep: num(dictGet(root, 'global_step')),
    lightningVersion: typeof lv === 'string' ? lv : null,
    projector,
    predictor,
    parameterCounts: parameterCountsOf(modules),
    config,
    configSource,
    warnings,
  };
  return { info, modules };
}

async function loadArgsJson(path: string, opt: InspectOptions['argsJson'], warnings: string[]): Promise<Record<string, unknown> | null> {
  if (opt === false) return null;
  if (opt !== undefined && typeof opt === 'object') return opt;
  const explicit = typeof opt === 'string';
  const p = explicit ? opt : join(dirname(path), 'args.json');
  if (!explicit && !existsSync(p)) return null;
  let text: string;
  try {
    text = await readFile(p, 'utf8');
  } catch (err) {
    throw new TorchSslError('ERR_IO', `${p}: cannot read (${(err as Error).message})`);
  }
  try {
    const v = JSON.parse(text) as unknown;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
    return v as Record<string, unknown>;
  } catch (err) {
    if (explicit) throw formatError(p, `args.json is not a JSON object (${(err as Error).message})`);
    warnings.push(`ignored ${p}: not a JSON object`);
    return null;
  }
}

/**
 * Opens a checkpoint and recognises it; the caller owns `file` (close it when the tensors are read).
 * This is what a model loader builds on: `modules.backbone` etc. are lazy TensorRefs.
 */
export async function openCheckpoint(
  path: string,
  opts: InspectOptions = {},
): Promise<{ file: TorchFile; info: CheckpointInfo; modules: CheckpointModules }> {
  const file = await readTorchFile(path);
  try {
    const warnings: string[] = [];
    const config = await loadArgsJson(path, opts.argsJson, warnings);
    const { info, modules } = recognizeCheckpoint(file, { config });
    info.warnings.unshift(...warnings);
    return { file, info, modules };
  } catch (err) {
    await file.close();
    throw err;
  }
}

/** What `torch-ssl inspect` prints: the recognised info and a key summary. Reads no tensor data. */
export async function inspectCheckpoint(path: string, opts: InspectOptions = {}): Promise<InspectResult> {
  const { file, info, modules } = await openCheckpoint(path, opts);
  try {
    const all = findTensors(file.root);
    const inSd = new Set<TensorRef>();
    const moduleCounts: Record<string, number> = {};
    let sdBytes = 0;
    for (const [name, m] of Object.entries(modules) as Array<[string, Map<string, TensorRef>]>) {
      if (m.size === 0) continue;
      moduleCounts[name] = m.size;
      for (const t of m.values()) {
        if (!inSd.has(t)) sdBytes += t.byteLength;
        inSd.add(t);
      }
    }
    const topLevel = file.root instanceof Map ? [...file.root].filter(([k, v]) => typeof k === 'string' && !(v instanceof TensorRef)).map(([k]) => k as string) : [];
    const keys: KeySummary = {
      topLevel,
      stateDictTensors: inSd.size,
      modules: moduleCounts,
      otherTensors: all.filter((f) => !inSd.has(f.tensor)).length,
      stateDictBytes: sdBytes,
      totalTensorBytes: all.reduce((a, f) => a + f.tensor.byteLength, 0),
      dtypes: [...new Set(all.map((f) => f.tensor.dtype))].sort(),
    };
    return { ...info, keys };
  } finally {
    await file.close();
  }
}

export { getPyState, isTuple };
