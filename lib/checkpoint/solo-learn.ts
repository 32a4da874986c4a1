/**
 * Recognising what a checkpoint is — from metadata only, never reading tensor data.
 *
 * solo-learn Lightning `.ckpt` files of every era (docs/checkpoints.md), torchvision `.pth` state dicts,
 * plain state dicts (optionally `module.`-prefixed) and the project's own files (a dict with
 * `torch_ssl_version` and `state_dict`). This file composes the steps, each in its own file:
 * state-dict.ts (finding the state dict, splitting it by module), format.ts (which kind of file),
 * architecture.ts (the ResNet and heads from tensor shapes), solo-config.ts (the config, era, method,
 * dataset and normalisation; args.json) and plain.ts (pickled values as JSON).
 */
import type { Normalization } from '../data/normalization.js';
import { analyseBackbone, headLayout, type BackboneArchitecture, type HeadLayer } from './architecture.js';
import { formatOf, type CheckpointFormat } from './format.js';
import { dictGet, getPyState, isTuple, type PyValue } from './pyvalue.js';
import {
  configValue,
  datasetOf,
  eraOf,
  loadArgsJson,
  methodOf,
  normalizationOf,
  numClassesOf,
  readConfig,
  type ArgsJsonOption,
  type CheckpointEra,
  type ConfigSource,
  type ValueSource,
} from './solo-config.js';
import { findStateDict, parameterCountsOf, splitModules, type CheckpointModules, type StateDictLayout } from './state-dict.js';
import { TensorRef } from './tensor-ref.js';
import { findTensors, readTorchFile, type TorchFile } from './torch-file.js';

export { toPlain } from './plain.js';
export type { CheckpointFormat, CheckpointEra, CheckpointModules, HeadLayer, Normalization };

/** What a checkpoint is. `depth`, `block`, `layers`, `stem` and `featureDim` describe its backbone (BackboneArchitecture). */
export interface CheckpointInfo extends BackboneArchitecture {
  path: string;
  format: CheckpointFormat;
  /** Only for solo-learn Lightning checkpoints. */
  era: CheckpointEra | null;
  method: string | null;
  /** Where `method` came from: the config, or a guess from the module layout. */
  methodSource: ValueSource | null;
  dataset: string | null;
  datasetSource: ValueSource | null;
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
  configSource: ConfigSource | null;
  /** Assumptions made (guessed dataset, ignored keys, unreadable args.json, …). */
  warnings: string[];
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
  argsJson?: ArgsJsonOption;
}

/** A recognised checkpoint, with how its state dict's keys are laid out (for messages naming full keys). */
export interface RecognizedCheckpoint {
  info: CheckpointInfo;
  modules: CheckpointModules;
  layout: StateDictLayout;
}

/** recognizeCheckpoint, and the state dict's layout. */
export function recognizeWithLayout(file: Pick<TorchFile, 'path' | 'root'>, opts: RecognizeOptions = {}): RecognizedCheckpoint {
  const root = file.root;
  const warnings: string[] = [];
  const layout = splitModules(findStateDict(file.path, root, warnings));
  const { modules } = layout;
  const cfg = readConfig(root, opts.config ?? undefined);
  const { config, configSource } = cfg;
  const format = formatOf(root, layout);
  const era = format === 'solo-learn-lightning' ? eraOf(layout.prefixes.backbone, cfg) : null;

  const arch = analyseBackbone(modules.backbone);
  if (modules.backbone.size > 0 && arch.depth === null) warnings.push(`backbone block counts [${arch.layers.join(', ')}] match no torchvision ResNet`);
  const projector = headLayout(modules.projector);
  const predictor = headLayout(modules.predictor);
  const { method, methodSource } = methodOf(config, format, modules, projector, warnings);
  const numClasses = numClassesOf(config, modules);
  const { dataset, datasetSource } = datasetOf(config, format, arch.stem, numClasses, warnings);
  const normalization = normalizationOf(config, dataset, warnings);
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
  return { info, modules, layout };
}

/**
 * Recognises an opened torch file, in named steps: find the state dict, split it by module, read the config,
 * classify the format and era, analyse the backbone and heads, then method, dataset and normalisation
 * (config first, layout guesses with warnings). Reads no tensor data. Throws ERR_CHECKPOINT_FORMAT when the
 * file holds no state dict at all.
 */
export function recognizeCheckpoint(file: TorchFile, opts: RecognizeOptions = {}): { info: CheckpointInfo; modules: CheckpointModules } {
  const { info, modules } = recognizeWithLayout(file, opts);
  return { info, modules };
}

/** openCheckpoint, and the state dict's layout. */
export async function openWithLayout(path: string, opts: InspectOptions = {}): Promise<RecognizedCheckpoint & { file: TorchFile }> {
  const file = await readTorchFile(path);
  try {
    const warnings: string[] = [];
    const config = await loadArgsJson(path, opts.argsJson, warnings);
    const recognized = recognizeWithLayout(file, { config });
    recognized.info.warnings.unshift(...warnings);
    return { file, ...recognized };
  } catch (err) {
    await file.close();
    throw err;
  }
}

/**
 * Opens a checkpoint and recognises it; the caller owns `file` (close it when the tensors are read).
 * This is what a model loader builds on: `modules.backbone` etc. are lazy TensorRefs.
 */
export async function openCheckpoint(path: string, opts: InspectOptions = {}): Promise<{ file: TorchFile; info: CheckpointInfo; modules: CheckpointModules }> {
  const { file, info, modules } = await openWithLayout(path, opts);
  return { file, info, modules };
}

/** The key summary of `inspect`: tensors per module, inside and outside the state dict, bytes and dtypes. */
function keySummary(root: PyValue, modules: CheckpointModules): KeySummary {
  const all = findTensors(root);
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
  const topLevel = root instanceof Map ? [...root].filter(([k, v]) => typeof k === 'string' && !(v instanceof TensorRef)).map(([k]) => k as string) : [];
  return {
    topLevel,
    stateDictTensors: inSd.size,
    modules: moduleCounts,
    otherTensors: all.filter((f) => !inSd.has(f.tensor)).length,
    stateDictBytes: sdBytes,
    totalTensorBytes: all.reduce((a, f) => a + f.tensor.byteLength, 0),
    dtypes: [...new Set(all.map((f) => f.tensor.dtype))].sort(),
  };
}

/** What `torch-ssl inspect` prints: the recognised info and a key summary. Reads no tensor data. */
export async function inspectCheckpoint(path: string, opts: InspectOptions = {}): Promise<InspectResult> {
  const { file, info, modules } = await openCheckpoint(path, opts);
  try {
    return { ...info, keys: keySummary(file.root, modules) };
  } finally {
    await file.close();
  }
}

export { getPyState, isTuple };
