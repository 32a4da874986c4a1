/**
 * `loadCheckpoint`: a recognised checkpoint (solo-learn `.ckpt` of every era, torchvision / plain state
 * dicts, the project's own `.pth` / `.safetensors`) → ready native models.
 *
 * Only the tensors of the modules being built are read (never optimizer state, never BYOL's momentum
 * copies); their reads start at once and overlap the addon's loading and the models' construction.
 * Keys are checked against the models, across all modules at once, before any data reaches a model, so
 * one ERR_CHECKPOINT_KEYS names every missing / unexpected / mis-shaped key with its full checkpoint name.
 * float16 / bfloat16 / float64 weights become float32; channels_last-strided weights are made contiguous by
 * TensorRef.read().
 *
 * This file needs the native addon (it builds models), as export.ts and lightning.ts do; the readers and
 * recognisers lib/checkpoint/index.ts exports, and open.ts, are pure TypeScript.
 */
import { preloadNative } from '../native.js';
import { TorchSslError, invalidArg } from '../errors.js';
import { checkKeys } from '../strict-keys.js';
import { Projector, ResNet, projector as makeProjector, resnet, resnetForWeights, type ResNetDepth } from '../models.js';
import { Tensor } from '../tensor.js';
import { projectorFromLayout } from './architecture.js';
import { formatError } from './errors.js';
import { openAnyCheckpoint, type OpenedCheckpoint } from './open.js';
import type { CheckpointInfo, InspectOptions } from './solo-learn.js';
import { MODULE_NAMES, keyPrefix, type CheckpointModules, type ModuleField } from './state-dict.js';
import type { TensorRef } from './tensor-ref.js';

export { projectorFromLayout } from './architecture.js';
export { isSafetensors, openAnyCheckpoint } from './open.js';

export interface LoadCheckpointOptions {
  /** args.json beside a modern solo-learn checkpoint: a path, a parsed object, or false to ignore it. */
  argsJson?: InspectOptions['argsJson'];
  /** Where the models end up ('cpu' default, 'cuda', 'cuda:1'). */
  device?: string;
  /**
   * Strict (default): every missing, unexpected or mis-shaped key of the loaded modules is an
   * ERR_CHECKPOINT_KEYS error. false: missing keys keep their initial values, unexpected ones are
   * skipped and listed in the result; shapes must still match.
   */
  strict?: boolean;
  /** Store the backbone's conv weights channels_last (faster convolutions). */
  channelsLast?: boolean;
  /** Build the projector and classifier too (default true); false reads the backbone only. */
  heads?: boolean;
  /**
   * Load the teacher (momentum_backbone.* and momentum_projector.*: BYOL, MoCo v3, …) instead of the online
   * backbone and projector (default false). The online classifier belongs to the student and is not loaded.
   */
  teacher?: boolean;
}

/** A Linear layer (solo-learn's online classifier, torchvision's fc): logits = x·Wᵀ + b. */
export class LinearClassifier {
  constructor(
    readonly weight: Tensor,
    readonly bias: Tensor,
  ) {}
  get inFeatures(): number {
    return this.weight.shape[1]!;
  }
  get outFeatures(): number {
    return this.weight.shape[0]!;
  }
  /** (N, inFeatures) → (N, outFeatures) logits. */
  forward(x: Tensor): Tensor {
    const wt = this.weight.permute([1, 0]);
    const xw = x.matmul(wt);
    const out = xw.add(this.bias);
    wt.dispose();
    xw.dispose();
    return out;
  }
  stateDict(): Record<string, Tensor> {
    return { weight: this.weight, bias: this.bias };
  }
  to(device: string): LinearClassifier {
    return new LinearClassifier(this.weight.to(device), this.bias.to(device));
  }
  dispose(): void {
    this.weight.dispose();
    this.bias.dispose();
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
}

export interface LoadedCheckpoint {
  backbone: ResNet;
  projector?: Projector;
  classifier?: LinearClassifier;
  info: CheckpointInfo;
  /**
   * What the file holds besides the loaded modules, by module (`momentum_backbone (122 tensors)`) or key
   * (`queue`): solo-learn's momentum copies, predictors, queues and other method-specific state.
   */
  ignored: string[];
  /** Non-strict loads only: keys the models expected and the file lacked (full checkpoint names). */
  missing: string[];
  /** Non-strict loads only: keys the file had and no model uses (full checkpoint names). */
  unexpected: string[];
  dispose(): void;
}

type Physical = Awaited<ReturnType<TensorRef['readPhysical']>>;

/**
 * A read tensor → a native tensor, float32 unless integral (num_batches_tracked stays int64). Dense
 * strided data (channels_last) arrives in storage order and is permuted natively: no JS reordering.
 */
async function materialise(ref: TensorRef, pending: Promise<Physical> | undefined): Promise<Tensor> {
  const physical = await (pending ?? ref.readPhysical());
  let t: Tensor;
  if (physical) {
    const base = Tensor.from(physical.data, physical.physicalShape, { dtype: ref.dtype });
    if (physical.dims.every((d, i) => d === i)) t = base;
    else {
      t = base.permute(physical.dims);
      base.dispose();
    }
  } else {
    t = Tensor.from(await ref.read(), [...ref.shape], { dtype: ref.dtype });
  }
  if (ref.dtype === 'float16' || ref.dtype === 'bfloat16' || ref.dtype === 'float64') {
    const f = t.to({ dtype: 'float32' });
    t.dispose();
    return f;
  }
  return t;
}

interface Plan {
  /** The file's tensors by model key. */
  source: Map<string, TensorRef>;
  /** Model keys → shapes. */
  target: Map<string, number[]>;
  /** Prefix of this module's keys in the file, for messages. */
  prefix: string;
}

function shapeOf(s: readonly number[]): string {
  return `[${s.join(', ')}]`;
}

function compare(plans: Plan[]): { missing: string[]; unexpected: string[]; mismatched: string[] } {
  const missing: string[] = [];
  const unexpected: string[] = [];
  const mismatched: string[] = [];
  for (const p of plans) {
    for (const [k, shape] of p.target) {
      const ref = p.source.get(k);
      if (!ref) missing.push(p.prefix + k);
      else if (ref.shape.length !== shape.length || ref.shape.some((n, i) => n !== shape[i])) {
        mismatched.push(`${p.prefix}${k}: checkpoint ${shapeOf(ref.shape)} vs model ${shapeOf(shape)}`);
      }
    }
    for (const k of p.source.keys()) if (!p.target.has(k)) unexpected.push(p.prefix + k);
  }
  return { missing, unexpected, mismatched };
}

function keysError(path: string, r: { missing: string[]; unexpected: string[]; mismatched: string[] }, strict: boolean): TorchSslError | null {
  if (r.mismatched.length === 0 && (!strict || (r.missing.length === 0 && r.unexpected.length === 0))) return null;
  const list = (v: string[]): string => (v.length <= 20 ? v.join(', ') : `${v.slice(0, 20).join(', ')}, … (${v.length - 20} more)`);
  let msg = `${path}: state_dict does not match the model:`;
  if (r.missing.length) msg += ` missing keys (${r.missing.length}): ${list(r.missing)};`;
  if (r.unexpected.length) msg += ` unexpected keys (${r.unexpected.length}): ${list(r.unexpected)};`;
  if (r.mismatched.length) msg += ` shape mismatches (${r.mismatched.length}): ${list(r.mismatched)};`;
  if (strict && r.mismatched.length === 0) msg += ' pass { strict: false } to load anyway';
  return new TorchSslError('ERR_CHECKPOINT_KEYS', msg, { missing: r.missing, unexpected: r.unexpected, mismatched: r.mismatched });
}

function modelShapes(m: ResNet | Projector): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const [n, t] of [...m.namedParameters(), ...m.namedBuffers()]) {
    out.set(n, t.shape);
    t.dispose();
  }
  return out;
}

/** The modules besides the backbone, projector and classifier: reported as not loaded, never read. */
const NOT_LOADED: ModuleField[] = ['momentumBackbone', 'momentumProjector', 'predictor'];

/** The modules a load builds from, as the options choose them. */
interface Selection {
  /** Under the online names; with { teacher } the teacher's weights are there and the student's are the momentum ones. */
  modules: CheckpointModules;
  /** The file's key prefix of each module built, for messages naming full keys. */
  prefixes: { backbone: string; projector: string; classifier: string };
  /** The modules reported as not loaded, with the names they are reported under. */
  notLoaded: Array<[ModuleField, string]>;
}

/** One load's state, shared by its steps. */
interface LoadContext extends Selection {
  path: string;
  info: CheckpointInfo;
  strict: boolean;
  heads: boolean;
  /** Models built so far, disposed if the load fails. */
  built: Array<{ dispose(): void }>;
  /** What the file holds besides the loaded modules (LoadedCheckpoint.ignored). */
  ignored: string[];
  /** The reads started for the modules to load. */
  pending: Map<TensorRef, Promise<Physical>>;
}

const LOAD_OPTION_KEYS = ['argsJson', 'device', 'strict', 'channelsLast', 'heads', 'teacher'] as const;
// Compile-time: the list names every LoadCheckpointOptions key.
const _loadKeysComplete: Exclude<keyof LoadCheckpointOptions, (typeof LOAD_OPTION_KEYS)[number]> extends never ? true : never = true;
void _loadKeysComplete;

/** The options, checked (ERR_INVALID_ARG), with their defaults. */
function loadSettings(opts: LoadCheckpointOptions): { strict: boolean; heads: boolean; teacher: boolean } {
  if (typeof opts !== 'object' || opts === null) throw invalidArg('options', 'an object', opts);
  checkKeys(opts, LOAD_OPTION_KEYS, 'loadCheckpoint options');
  const strict = opts.strict ?? true;
  if (typeof strict !== 'boolean') throw invalidArg('strict', 'a boolean', opts.strict);
  if (opts.device !== undefined && typeof opts.device !== 'string') throw invalidArg('device', "a device string such as 'cpu' or 'cuda'", opts.device);
  const heads = opts.heads ?? true;
  const teacher = opts.teacher ?? false;
  if (typeof teacher !== 'boolean') throw invalidArg('teacher', 'a boolean', opts.teacher);
  return { strict, heads, teacher };
}

/** The online modules, or with { teacher } the momentum teacher in the student's place (ERR_CHECKPOINT_FORMAT without one). */
function selectModules(path: string, { info, modules: m, layout }: OpenedCheckpoint, teacher: boolean): Selection {
  const prefixes = (backbone: ModuleField, projector: ModuleField): Selection['prefixes'] => ({
    backbone: keyPrefix(layout, backbone),
    projector: keyPrefix(layout, projector),
    classifier: keyPrefix(layout, 'classifier'),
  });
  if (!teacher) {
    return {
      modules: m,
      prefixes: prefixes('backbone', 'projector'),
      notLoaded: NOT_LOADED.map((f) => [f, MODULE_NAMES[f]]),
    };
  }
  if (m.momentumBackbone.size === 0) {
    const why = `the file has no momentum_backbone.* (method ${info.method ?? 'unknown'}: no momentum teacher)`;
    throw new TorchSslError('ERR_CHECKPOINT_FORMAT', `${path}: { teacher: true } asks for the teacher, but ${why}`, { file: path });
  }
  if (m.classifier.size > 0) info.warnings.push(`not loaded: classifier (${m.classifier.size} tensors; the student's)`);
  // The teacher in the student's place: same architecture, its own weights; the online modules are then the
  // ones reported as not loaded.
  const student = (f: 'backbone' | 'projector'): string => `${MODULE_NAMES[f]} (the student)`;
  return {
    modules: {
      ...m,
      backbone: m.momentumBackbone,
      projector: m.momentumProjector,
      momentumBackbone: m.backbone,
      momentumProjector: m.projector,
      classifier: new Map(),
    },
    prefixes: prefixes('momentumBackbone', 'momentumProjector'),
    notLoaded: [
      ['momentumBackbone', student('backbone')],
      ['momentumProjector', student('projector')],
      ['predictor', MODULE_NAMES.predictor],
    ],
  };
}

/**
 * Starts reading the tensors of the modules to load (and no others), on libuv's threads, while the native
 * addon loads and the models are built — both block this thread. Keys are still checked before any of it
 * reaches a model.
 */
function startReads(modules: CheckpointModules, heads: boolean): Map<TensorRef, Promise<Physical>> {
  const pending = new Map<TensorRef, Promise<Physical>>();
  for (const m of heads ? [modules.backbone, modules.projector, modules.classifier] : [modules.backbone]) {
    for (const ref of m.values()) {
      const p = ref.readPhysical();
      p.catch(() => undefined);
      pending.set(ref, p);
    }
  }
  return pending;
}

/** The ResNet the engine builds for the file's backbone; ERR_CHECKPOINT_FORMAT when there is none it can build. */
function backboneSpec(path: string, modules: CheckpointModules, info: CheckpointInfo): { depth: ResNetDepth; stem: 'cifar' | 'imagenet' } {
  if (modules.backbone.size === 0) throw formatError(path, 'no ResNet backbone found (no backbone.*, encoder.* or torchvision conv1/bn1/layerN keys)');
  if (info.depth !== 18 && info.depth !== 34 && info.depth !== 50) {
    const what = info.depth ? `ResNet-${info.depth}` : `a backbone with block counts [${info.layers.join(', ')}]`;
    throw formatError(path, `holds ${what}; the engine builds ResNet-18, 34 and 50`);
  }
  if (info.stem === null) throw formatError(path, 'conv1 is neither 3×3 (CIFAR stem) nor 7×7 (ImageNet stem)');
  return { depth: info.depth, stem: info.stem };
}

/** The projector the file's layout describes, built, and its plan; none without heads or (non-strict) a layout the engine cannot build. */
function planProjector(c: LoadContext, featureDim: number): { projector: Projector; plan: Plan } | undefined {
  const { modules, info } = c;
  if (modules.projector.size === 0) return undefined;
  if (!c.heads) {
    c.ignored.push(`projector (${modules.projector.size} tensors)`);
    return undefined;
  }
  const layout = info.projector ? projectorFromLayout(info.projector, info.featureDim ?? featureDim) : 'it has no numbered layers';
  if (typeof layout === 'string') {
    if (c.strict) throw formatError(c.path, `cannot build the projector: ${layout}; pass { heads: false } or { strict: false } to load the backbone alone`);
    c.ignored.push(`projector (${modules.projector.size} tensors; ${layout})`);
    info.warnings.push(`projector not loaded: ${layout}`);
    return undefined;
  }
  const projector = makeProjector({ inputDim: featureDim, ...layout });
  c.built.push(projector);
  return { projector, plan: { source: modules.projector, target: modelShapes(projector), prefix: c.prefixes.projector } };
}

/** The classifier's plan: a Linear from the backbone's features to the file's classes. */
function planClassifier(c: LoadContext, featureDim: number): Plan | undefined {
  const { classifier } = c.modules;
  if (classifier.size === 0) return undefined;
  if (!c.heads) {
    c.ignored.push(`classifier (${classifier.size} tensors)`);
    return undefined;
  }
  const w = classifier.get('weight');
  const classes = w && w.shape.length === 2 ? w.shape[0]! : (c.info.numClasses ?? 0);
  const target = new Map([
    ['weight', [classes, featureDim]],
    ['bias', [classes]],
  ]);
  return { source: classifier, target, prefix: c.prefixes.classifier };
}

/**
 * Checks the plans' keys against the file, all modules at once (ERR_CHECKPOINT_KEYS), and lists what is not
 * loaded: the momentum / predictor modules, and solo-learn's method-specific state (queues, momentum classifiers,
 * DINO heads), reported, never loaded. In any other file a key outside the modules is unexpected.
 */
function checkPlans(c: LoadContext, plans: Plan[]): { missing: string[]; unexpected: string[] } {
  const { modules } = c;
  for (const [m, name] of c.notLoaded) if (modules[m].size > 0) c.ignored.push(`${name} (${modules[m].size} tensors)`);
  const otherKeys = [...modules.other.keys()];
  if (c.info.format === 'solo-learn-lightning') {
    const groups = new Map<string, number>();
    for (const k of otherKeys) groups.set(k.split('.')[0]!, (groups.get(k.split('.')[0]!) ?? 0) + 1);
    for (const [g, n] of groups) c.ignored.push(n === 1 && modules.other.has(g) ? g : `${g} (${n} tensors)`);
  }
  const result = compare(plans);
  if (c.info.format !== 'solo-learn-lightning') result.unexpected.push(...otherKeys);
  const err = keysError(c.path, result, c.strict);
  if (err) throw err;
  return result;
}

/** The tensors of the plan's keys the model uses (nothing else); those read are disposed if one fails. */
async function readPlan(plan: Plan, pending: Map<TensorRef, Promise<Physical>>): Promise<Map<string, Tensor>> {
  const sd = new Map<string, Tensor>();
  try {
    for (const [k, ref] of plan.source) if (plan.target.has(k)) sd.set(k, await materialise(ref, pending.get(ref)));
  } catch (e) {
    for (const t of sd.values()) t.dispose();
    throw e;
  }
  return sd;
}

async function loadInto(model: ResNet | Projector, plan: Plan, pending: Map<TensorRef, Promise<Physical>>): Promise<void> {
  const sd = await readPlan(plan, pending);
  try {
    await model.loadStateDict(sd, { strict: false });
  } finally {
    for (const t of sd.values()) t.dispose();
  }
}

async function readClassifier(plan: Plan, pending: Map<TensorRef, Promise<Physical>>): Promise<LinearClassifier | undefined> {
  const sd = await readPlan(plan, pending);
  const w = sd.get('weight');
  const b = sd.get('bias');
  if (w && b) return new LinearClassifier(w, b);
  for (const t of sd.values()) t.dispose();
  return undefined;
}

/** The loaded models in eval mode, channels_last and on the device the options ask for. */
async function placeModels(
  backbone: ResNet,
  proj: Projector | undefined,
  classifier: LinearClassifier | undefined,
  opts: LoadCheckpointOptions,
): Promise<LinearClassifier | undefined> {
  backbone.eval();
  proj?.eval();
  if (opts.channelsLast) backbone.channelsLast(true);
  if (opts.device === undefined || opts.device === 'cpu') return classifier;
  await backbone.to(opts.device);
  if (proj) await proj.to(opts.device);
  if (!classifier) return undefined;
  const moved = classifier.to(opts.device);
  classifier.dispose();
  return moved;
}

/** Builds the models, checks the keys, then reads the weights into them. */
async function buildAndLoad(c: LoadContext, addonLoaded: Promise<void>, opts: LoadCheckpointOptions): Promise<LoadedCheckpoint> {
  const spec = backboneSpec(c.path, c.modules, c.info);
  await addonLoaded;
  // Strict: every weight and buffer is read from the file (or the load fails), so torchvision's
  // initialisation would be overwritten at once; non-strict keeps it for the keys the file lacks.
  const backbone = c.strict ? resnetForWeights(spec) : resnet(spec);
  c.built.push(backbone);
  const backbonePlan: Plan = { source: c.modules.backbone, target: modelShapes(backbone), prefix: c.prefixes.backbone };
  const proj = planProjector(c, backbone.featureDim);
  const classifierPlan = planClassifier(c, backbone.featureDim);
  const result = checkPlans(c, [backbonePlan, ...(proj ? [proj.plan] : []), ...(classifierPlan ? [classifierPlan] : [])]);
  if (c.ignored.length > 0) c.info.warnings.push(`not loaded: ${c.ignored.join(', ')}`);

  // Only now read tensor data: the keys each model uses, nothing else.
  await loadInto(backbone, backbonePlan, c.pending);
  if (proj) await loadInto(proj.projector, proj.plan, c.pending);
  const read = classifierPlan ? await readClassifier(classifierPlan, c.pending) : undefined;
  if (read) c.built.push(read);
  const classifier = await placeModels(backbone, proj?.projector, read, opts);
  const loaded: LoadedCheckpoint = {
    backbone,
    info: c.info,
    ignored: c.ignored,
    missing: result.missing,
    unexpected: result.unexpected,
    dispose() {
      backbone.dispose();
      loaded.projector?.dispose();
      loaded.classifier?.dispose();
    },
  };
  if (proj) loaded.projector = proj.projector;
  if (classifier) loaded.classifier = classifier;
  return loaded;
}

/**
 * Loads a checkpoint into native models. See docs/checkpoints.md for the formats. Throws
 * ERR_CHECKPOINT_FORMAT (not a readable checkpoint, no ResNet backbone, a head layout the engine cannot
 * build), ERR_CHECKPOINT_KEYS (missing / unexpected / mis-shaped keys, all listed), ERR_IO.
 */
export async function loadCheckpoint(path: string, opts: LoadCheckpointOptions = {}): Promise<LoadedCheckpoint> {
  const { strict, heads, teacher } = loadSettings(opts);
  // LibTorch loads on a worker thread the first time (~0.5 s) while this thread parses the file; awaited before
  // the first native call (building the models). preloadNative never rejects.
  const addonLoaded = preloadNative();
  const opened = await openAnyCheckpoint(path, opts.argsJson === undefined ? {} : { argsJson: opts.argsJson });
  let pending = new Map<TensorRef, Promise<Physical>>();
  try {
    const selection = selectModules(path, opened, teacher);
    pending = startReads(selection.modules, heads);
    const c: LoadContext = { ...selection, path, info: opened.info, strict, heads, built: [], ignored: [], pending };
    try {
      return await buildAndLoad(c, addonLoaded, opts);
    } catch (err) {
      for (const m of c.built) m.dispose();
      throw err;
    }
  } finally {
    await Promise.allSettled(pending.values());
    await opened.close();
  }
}
