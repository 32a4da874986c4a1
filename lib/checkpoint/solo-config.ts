/**
 * A run's config and what it says: the config itself (the `args.json` solo-learn writes beside the
 * checkpoint, or `hyper_parameters`, an omegaconf DictConfig or a dict), solo-learn's checkpoint era, and
 * the method, dataset, classes and normalisation (the config's, else guesses from the layout, with a warning).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ioFailure } from '../io.js';
import { isNormalizationName, NORMALIZATIONS, normalizationForDataset, type Normalization } from '../data/normalization.js';
import type { HeadLayer } from './architecture.js';
import { formatError } from './errors.js';
import type { CheckpointFormat } from './format.js';
import { toPlain, isOmegaConf } from './plain.js';
import { dictGet, type PyValue } from './pyvalue.js';
import type { CheckpointModules } from './state-dict.js';

/**
 * legacy-encoder: `encoder.*` keys (solo-learn before 2021-12-01) · hparams-omegaconf / hparams-dict:
 * config pickled in `hyper_parameters` · modern-args-json: no config inside, `args.json` beside ·
 * no-config: a Lightning checkpoint with neither.
 */
export type CheckpointEra = 'legacy-encoder' | 'hparams-omegaconf' | 'hparams-dict' | 'modern-args-json' | 'no-config';

/** Where a run's config came from. */
export type ConfigSource = 'args.json' | 'hyper_parameters';

/** Where a recognised value came from: the config, or a guess from the module layout. */
export type ValueSource = 'config' | 'layout';

/** args.json to use: a path, an already parsed object, or false to ignore it. */
export type ArgsJsonOption = string | Record<string, unknown> | false;

/** A run's config as plain JSON, and what its checkpoint's `hyper_parameters` were. */
export interface RunConfig {
  config: Record<string, unknown> | null;
  configSource: ConfigSource | null;
  /** `hyper_parameters` is (or holds) an omegaconf object. */
  hpIsOmega: boolean;
  hasHp: boolean;
}

/** The first of `paths` (dotted, `data.dataset`) the config sets to something other than null / '<not serializable>'. */
export function configValue(cfg: Record<string, unknown> | null, ...paths: string[]): unknown {
  if (!cfg) return undefined;
  for (const p of paths) {
    let cur: unknown = cfg;
    for (const part of p.split('.')) cur = cur !== null && typeof cur === 'object' && !Array.isArray(cur) ? (cur as Record<string, unknown>)[part] : undefined;
    if (cur !== undefined && cur !== null && cur !== '<not serializable>') return cur;
  }
  return undefined;
}

/** The run's config: an explicit one (args.json), else hyper_parameters (omegaconf or a dict), as plain JSON. */
export function readConfig(root: PyValue, explicit: Record<string, unknown> | undefined): RunConfig {
  const hp = dictGet(root, 'hyper_parameters');
  const hasHp = hp !== undefined && hp !== null;
  const hpIsOmega = isOmegaConf(hp) || (hp instanceof Map && [...hp.values()].some((v) => isOmegaConf(v)));
  if (explicit) return { config: explicit, configSource: 'args.json', hpIsOmega, hasHp };
  if (!hasHp) return { config: null, configSource: null, hpIsOmega, hasHp };
  let plain = toPlain(hp) as Record<string, unknown> | null;
  if (!plain || typeof plain !== 'object' || Array.isArray(plain)) return { config: null, configSource: null, hpIsOmega, hasHp };
  // Lightning keeps save_hyperparameters(cfg) as {"cfg": DictConfig}; unwrap a lone config.
  const vals = Object.values(plain);
  const lone = vals.length === 1 && vals[0] !== null && typeof vals[0] === 'object' && !Array.isArray(vals[0]);
  if (lone && hp instanceof Map && isOmegaConf([...hp.values()][0])) plain = vals[0] as Record<string, unknown>;
  return { config: plain, configSource: 'hyper_parameters', hpIsOmega, hasHp };
}

/** solo-learn's checkpoint eras (docs/checkpoints.md); `backbonePrefix` is the one the backbone's keys carry. */
export function eraOf(backbonePrefix: string, c: RunConfig): CheckpointEra {
  if (backbonePrefix === 'encoder.') return 'legacy-encoder';
  if (c.hasHp) return c.hpIsOmega ? 'hparams-omegaconf' : 'hparams-dict';
  if (c.configSource === 'args.json') return 'modern-args-json';
  return 'no-config';
}

/** The method: the config's, else a guess from the module layout (BYOL, MoCo v2+, SimCLR), with a warning. */
export function methodOf(
  config: Record<string, unknown> | null,
  format: CheckpointFormat,
  modules: CheckpointModules,
  projector: HeadLayer[] | null,
  warnings: string[],
): { method: string | null; methodSource: ValueSource | null } {
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

/** The classes: the config's, else the classifier's rows (the value as the config has it, even if not a number). */
export function numClassesOf(config: Record<string, unknown> | null, modules: CheckpointModules): unknown {
  return (configValue(config, 'data.num_classes', 'num_classes') as number | undefined) ?? modules.classifier.get('weight')?.shape[0] ?? null;
}

/** The dataset: the config's, else a guess from the stem and the classifier's classes, with a warning. */
export function datasetOf(
  config: Record<string, unknown> | null,
  format: CheckpointFormat,
  stem: 'cifar' | 'imagenet' | null,
  numClasses: unknown,
  warnings: string[],
): { dataset: string | null; datasetSource: ValueSource | null } {
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

/** A copy, so that a checkpoint's info never aliases the shared NORMALIZATIONS entries. */
const copyOf = (n: Normalization | null): Normalization | null => (n === null ? null : { mean: [...n.mean], std: [...n.std] });

function explicitNormalization(v: unknown): Normalization | null {
  // A statistics name torch-ssl recorded (e.g. 'emp-ssl', 'cifar-eval'), else a dataset name.
  if (typeof v === 'string') return copyOf(isNormalizationName(v) ? NORMALIZATIONS[v] : normalizationForDataset(v));
  if (v !== null && typeof v === 'object') {
    const { mean, std } = v as { mean?: unknown; std?: unknown };
    const triple = (x: unknown): x is [number, number, number] =>
      Array.isArray(x) && x.length === 3 && x.every((n) => typeof n === 'number' && Number.isFinite(n));
    if (triple(mean) && triple(std) && std.every((n) => n > 0)) return { mean: [...mean], std: [...std] };
  }
  return null;
}

/**
 * The statistics the model was pretrained with: those torch-ssl's args.json records (data.normalization: a name
 * or { mean, std }; they win over the dataset name, which for a custom set says nothing about them), else the
 * dataset's, with a warning for a dataset whose statistics are unknown.
 */
export function normalizationOf(config: Record<string, unknown> | null, dataset: string | null, warnings: string[]): Normalization | null {
  const trained = explicitNormalization(configValue(config, 'data.normalization'));
  const normalization = trained ?? (dataset === null ? null : copyOf(normalizationForDataset(dataset)));
  if (dataset !== null && normalization === null) warnings.push(`no known normalisation for dataset "${dataset.toLowerCase()}"`);
  return normalization;
}

/** args.json as `opt` asks: none (false), the object given, the file named, else `args.json` beside `path` when present. */
export async function loadArgsJson(path: string, opt: ArgsJsonOption | undefined, warnings: string[]): Promise<Record<string, unknown> | null> {
  if (opt === false) return null;
  if (opt !== undefined && typeof opt === 'object') return opt;
  const explicit = typeof opt === 'string';
  const p = explicit ? opt : join(dirname(path), 'args.json');
  if (!explicit && !existsSync(p)) return null;
  let text: string;
  try {
    text = await readFile(p, 'utf8');
  } catch (err) {
    throw ioFailure(p, `${p}: cannot read (${(err as Error).message})`, { cause: err });
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
