/**
 * The state dict inside an unpickled checkpoint, split by module: solo-learn's prefixes (`backbone.*`, or
 * `encoder.*` before Dec 2021, `projector.*`, `classifier.*`, BYOL/MoCo's `momentum_backbone.*` /
 * `momentum_projector.*` / `predictor.*`) or torchvision's flat body (conv1 / bn1 / layerN) and fc.
 * MODULE_NAMES is the one table of solo-learn's module names.
 */
import { formatError } from './errors.js';
import { dictGet, type PyValue } from './pyvalue.js';
import type { TensorRef } from './tensor-ref.js';
import { tensorMap } from './torch-file.js';

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

/** A module of CheckpointModules that has a key prefix of its own (all but `other`). */
export type ModuleField = keyof Omit<CheckpointModules, 'other'>;

/**
 * solo-learn's name of each module (its state_dict keys' prefix, without the dot), by CheckpointModules field;
 * `other` (everything else) is listed under that word.
 */
export const MODULE_NAMES: Readonly<Record<keyof CheckpointModules, string>> = Object.freeze({
  backbone: 'backbone',
  projector: 'projector',
  classifier: 'classifier',
  momentumBackbone: 'momentum_backbone',
  momentumProjector: 'momentum_projector',
  predictor: 'predictor',
  other: 'other',
});

/** The names solo-learn used before 2021-12-01 (docs/checkpoints.md, legacy-encoder). */
const LEGACY_NAMES: Readonly<Partial<Record<ModuleField, string>>> = { backbone: 'encoder', momentumBackbone: 'momentum_encoder' };

/** Each module's key prefixes (current, then legacy); no prefix starts another, so the order of the fields does not matter. */
const MODULE_PREFIXES: ReadonlyArray<[ModuleField, string[]]> = (Object.keys(MODULE_NAMES) as Array<keyof CheckpointModules>)
  .filter((f): f is ModuleField => f !== 'other')
  .map((f) => [f, [MODULE_NAMES[f], LEGACY_NAMES[f]].filter((n) => n !== undefined).map((n) => `${n}.`)]);
const BACKBONE_PREFIXES = MODULE_PREFIXES.find(([f]) => f === 'backbone')![1];

/** Where a state dict may sit in a checkpoint's top-level dict, in the order they are tried. */
const STATE_DICT_KEYS = ['state_dict', 'model', 'model_state_dict', 'module'];
const DDP_PREFIX = 'module.';
/** torchvision's classifier; its body's keys (conv1, bn1, layerN) have no prefix. */
const TORCHVISION_FC = 'fc.';
const BUFFER_SUFFIXES = ['running_mean', 'running_var', 'num_batches_tracked'];

/** A found state dict; `ddpPrefix` is the DistributedDataParallel `module.` its keys had (stripped), or ''. */
export interface StateDict {
  tensors: Map<string, TensorRef>;
  ddpPrefix: string;
}

/**
 * The state dict: under `state_dict` (or `model`, `model_state_dict`, `module`), else the top level; DDP's
 * `module.` stripped. Throws ERR_CHECKPOINT_FORMAT when there is none.
 */
export function findStateDict(path: string, root: PyValue, warnings: string[]): StateDict {
  let sd: Map<string, TensorRef> | null = null;
  for (const key of STATE_DICT_KEYS) {
    const m = tensorMap(dictGet(root, key));
    if (m && m.size > 0) {
      sd = m;
      if (key !== 'state_dict') warnings.push(`state dict taken from top-level key "${key}"`);
      break;
    }
  }
  if (!sd) sd = tensorMap(root);
  if (!sd || sd.size === 0) throw formatError(path, 'holds no state dict (no string-keyed tensors at the top level or under "state_dict")');
  if ([...sd.keys()].every((k) => k.startsWith(DDP_PREFIX))) {
    warnings.push('stripped the DistributedDataParallel "module." prefix');
    return { tensors: new Map([...sd].map(([k, t]) => [k.slice(DDP_PREFIX.length), t])), ddpPrefix: DDP_PREFIX };
  }
  return { tensors: sd, ddpPrefix: '' };
}

/** A state dict split by module, and how the file spells each module's keys. */
export interface StateDictLayout {
  modules: CheckpointModules;
  /** The keys carry solo-learn module prefixes (`backbone.` / `encoder.`), not torchvision's flat names. */
  prefixed: boolean;
  /**
   * Each module's key prefix in the file (after `ddpPrefix`): the one its keys were found under ('encoder.',
   * 'momentum_encoder.'), torchvision's ('' for the body, 'fc.'), else solo-learn's name and a dot.
   */
  prefixes: Record<ModuleField, string>;
  ddpPrefix: string;
}

/** The full prefix of a module's keys in the file (`module.backbone.`, `fc.`, '' for torchvision's body), for messages. */
export function keyPrefix(layout: StateDictLayout, field: ModuleField): string {
  return layout.ddpPrefix + layout.prefixes[field];
}

/** The state dict split by module: solo-learn prefixes (backbone. / encoder. …), or torchvision's body and fc. */
export function splitModules({ tensors: sd, ddpPrefix }: StateDict): StateDictLayout {
  const modules: CheckpointModules = {
    backbone: new Map(),
    projector: new Map(),
    classifier: new Map(),
    momentumBackbone: new Map(),
    momentumProjector: new Map(),
    predictor: new Map(),
    other: new Map(),
  };
  const prefixes = Object.fromEntries(MODULE_PREFIXES.map(([f, p]) => [f, p[0]!])) as Record<ModuleField, string>;
  const prefixed = [...sd.keys()].some((k) => BACKBONE_PREFIXES.some((p) => k.startsWith(p)));
  if (!prefixed) Object.assign(prefixes, { backbone: '', classifier: TORCHVISION_FC });
  for (const [k, t] of sd) {
    let placed = false;
    if (prefixed) {
      for (const [name, candidates] of MODULE_PREFIXES) {
        const p = candidates.find((x) => k.startsWith(x));
        if (p) {
          modules[name].set(k.slice(p.length), t);
          prefixes[name] = p;
          placed = true;
          break;
        }
      }
    } else if (k.startsWith(TORCHVISION_FC)) {
      modules.classifier.set(k.slice(TORCHVISION_FC.length), t);
      placed = true;
    } else if (/^(conv1|bn1|layer\d)\./.test(k)) {
      modules.backbone.set(k, t);
      placed = true;
    }
    if (!placed) modules.other.set(k, t);
  }
  return { modules, prefixed, prefixes, ddpPrefix };
}

function countParameters(m: Map<string, TensorRef>): number {
  let n = 0;
  for (const [k, t] of m) if (!BUFFER_SUFFIXES.some((s) => k.endsWith(`.${s}`) || k === s) && k !== 'queue' && !k.endsWith('_queue')) n += t.numel;
  return n;
}

/** Trainable parameter counts (BN running stats and queues excluded) per module, under the state dict's own module names. */
export function parameterCountsOf(modules: CheckpointModules): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, m] of Object.entries(modules) as Array<[keyof CheckpointModules, Map<string, TensorRef>]>) {
    if (m.size > 0) out[MODULE_NAMES[k]] = countParameters(m);
  }
  return out;
}
