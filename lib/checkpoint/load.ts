/**
 * `loadCheckpoint`: a recognised checkpoint (solo-learn `.ckpt` of every era, torchvision / plain state
 * dicts, the project's own `.pth` / `.safetensors`) → ready native models.
 *
 * Only the tensors of the modules being built are read (never optimizer state, never BYOL's momentum
 * copies); their reads start at once and overlap the addon's loading and the models' construction.
 * Keys are checked against the models, across all modules at once, before any data reaches a model, so
 * one ERR_CHECKPOINT_KEYS names every missing / unexpected / mis-shaped key with its full checkpoint name. float16 / bfloat16 / float64 weights become float32; channels_last-strided weights are
 * made contiguous by TensorRef.read().
 *
 * Unlike the rest of lib/checkpoint/ this file needs the native addon (it builds models).
 */
import { open } from 'node:fs/promises';
import { preloadNative } from '../native.js';
import { TorchSslError, invalidArg } from '../errors.js';
import { checkKeys } from '../strict-keys.js';
import { Projector, ResNet, projector as makeProjector, resnet, type ResNetDepth } from '../models.js';
import { Tensor } from '../tensor.js';
import { PyObject, dictGet, type PyValue } from './pyvalue.js';
import { readSafetensors } from './safetensors.js';
import { recognizeCheckpoint, openCheckpoint, type CheckpointInfo, type CheckpointModules, type HeadLayer, type InspectOptions } from './solo-learn.js';
import type { TensorRef } from './tensor-ref.js';
import type { TorchFile } from './torch-file.js';

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

/**
 * How the backbone's keys are prefixed in the file: 'backbone.' / 'encoder.' (solo-learn, own files, with
 * a DDP 'module.' before them if present), or '' for flat torchvision / plain state dicts.
 */
function backbonePrefix(root: PyValue): string {
  const candidates: PyValue[] = [];
  for (const key of ['state_dict', 'model', 'model_state_dict', 'module']) {
    const v = dictGet(root, key);
    if (v !== undefined) candidates.push(v);
  }
  candidates.push(root);
  for (const c of candidates) {
    const m = c instanceof Map ? c : c instanceof PyObject ? c.dictItems : undefined;
    if (!m) continue;
    for (const k of m.keys()) {
      const match = typeof k === 'string' ? /^(module\.)?(backbone|encoder)\./.exec(k) : null;
      if (match) return match[0];
    }
  }
  return '';
}

/** The head options a solo-learn head layout corresponds to (projector or predictor), or why it has none. */
export function projectorFromLayout(
  layers: HeadLayer[],
  inputDim: number,
):
  | { hiddenDims: number[]; outputDim: number; batchNorm: boolean; hiddenBias: boolean; outputBias: 'on' | 'off'; outputBatchNorm: boolean; outputBatchNormAffine: boolean }
  | string {
  const linears = layers.filter((l) => l.type === 'Linear');
  if (linears.length === 0) return 'it has no Linear layer';
  // A final BatchNorm1d after the output Linear: affine-free (MoCo v3, SimSiam) or affine (NNCLR).
  const last = layers[layers.length - 1]!;
  const outputBatchNorm = last.type === 'BatchNorm1d';
  const outputBatchNormAffine = outputBatchNorm && last.affine !== false;
  const body = outputBatchNorm ? layers.slice(0, -1) : layers;
  const batchNorm = body.some((l) => l.type === 'BatchNorm1d');
  const block = batchNorm ? ['Linear', 'BatchNorm1d', 'ReLU'] : ['Linear', 'ReLU'];
  const expected = [...Array.from({ length: linears.length - 1 }, () => block).flat(), 'Linear', ...(outputBatchNorm ? ['BatchNorm1d'] : [])];
  const got = layers.map((l) => l.type);
  const describe = (t: string[]): string => t.join('-');
  if (got.length !== expected.length || got.some((t, i) => t !== expected[i])) {
    return `its layout ${describe(got)} is not Linear(-BatchNorm1d)-ReLU blocks ending in a Linear [and a BatchNorm1d] (${describe(expected)})`;
  }
  const hidden = linears.slice(0, -1);
  const hiddenBias = hidden.length === 0 || hidden[0]!.bias !== false;
  if (hidden.some((l) => (l.bias !== false) !== hiddenBias)) return 'its hidden Linears differ in having a bias';
  if (body.some((l) => l.type === 'BatchNorm1d' && l.affine === false)) return 'it has a hidden BatchNorm1d without affine parameters';
  if (linears[0]!.inFeatures !== inputDim) return `its first Linear takes ${linears[0]!.inFeatures} features, the backbone gives ${inputDim}`;
  const out = linears[linears.length - 1]!;
  return {
    hiddenDims: hidden.map((l) => l.outFeatures!),
    outputDim: out.outFeatures!,
    batchNorm,
    hiddenBias,
    outputBias: out.bias === false ? 'off' : 'on',
    outputBatchNorm,
    outputBatchNormAffine,
  };
}

/** True when the file starts like a .safetensors file (8-byte header length, then a JSON object). */
export const isSafetensors = async (path: string): Promise<boolean> => {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch {
    return false;
  }
  try {
    const head = new Uint8Array(9);
    const { bytesRead } = await fh.read(head, 0, 9, 0);
    if (bytesRead < 9 || head[8] !== 0x7b /* '{' */) return false;
    const n = new DataView(head.buffer).getBigUint64(0, true);
    return n > 1n && n < 100_000_000n && n + 8n <= BigInt((await fh.stat()).size);
  } finally {
    await fh.close();
  }
};

/**
 * Opens a torch.save file or a `.safetensors` file and recognises it (no tensor data is read). A
 * safetensors file is presented as `{state_dict: …}`; its `__metadata__` (the project's own exports
 * write `torch_ssl_version`, `method`, `dataset`, `num_classes`, `epoch`) becomes the config.
 */
export async function openAnyCheckpoint(
  path: string,
  opts: InspectOptions = {},
): Promise<{ info: CheckpointInfo; modules: CheckpointModules; close(): Promise<void>; kind: 'torch' | 'safetensors'; root: PyValue }> {
  if (typeof path !== 'string' || path.length === 0) throw invalidArg('path', 'a file path', path);
  if (await isSafetensors(path)) {
    const st = await readSafetensors(path);
    try {
      const meta = st.metadata ?? {};
      const root = new Map<PyValue, PyValue>([['state_dict', new Map<PyValue, PyValue>(st.tensors as Map<string, TensorRef>)]]);
      if (typeof meta.torch_ssl_version === 'string') {
        root.set('torch_ssl_version', meta.torch_ssl_version);
        const hp = new Map<PyValue, PyValue>();
        for (const k of ['method', 'dataset']) if (typeof meta[k] === 'string') hp.set(k, meta[k]);
        for (const k of ['num_classes', 'epoch']) if (meta[k] !== undefined && /^\d+$/.test(meta[k])) hp.set(k, Number(meta[k]));
        root.set('hyper_parameters', hp);
        if (hp.has('epoch')) root.set('epoch', hp.get('epoch')!);
      }
      const file = { path, root } as unknown as TorchFile;
      const { info, modules } = recognizeCheckpoint(file, {});
      return { info, modules, close: () => st.close(), kind: 'safetensors', root };
    } catch (err) {
      await st.close();
      throw err;
    }
  }
  const { file, info, modules } = await openCheckpoint(path, opts);
  return { info, modules, close: () => file.close(), kind: 'torch', root: file.root };
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

const MOMENTUM_NAMES: Array<[keyof CheckpointModules, string]> = [
  ['momentumBackbone', 'momentum_backbone'],
  ['momentumProjector', 'momentum_projector'],
  ['predictor', 'predictor'],
];

/**
 * Loads a checkpoint into native models. See docs/checkpoints.md for the formats. Throws
 * ERR_CHECKPOINT_FORMAT (not a readable checkpoint, no ResNet backbone, a head layout the engine cannot
 * build), ERR_CHECKPOINT_KEYS (missing / unexpected / mis-shaped keys, all listed), ERR_IO.
 */
const LOAD_OPTION_KEYS = ['argsJson', 'device', 'strict', 'channelsLast', 'heads', 'teacher'] as const;
// Compile-time: the list names every LoadCheckpointOptions key.
const _loadKeysComplete: Exclude<keyof LoadCheckpointOptions, (typeof LOAD_OPTION_KEYS)[number]> extends never ? true : never = true;
void _loadKeysComplete;

export async function loadCheckpoint(path: string, opts: LoadCheckpointOptions = {}): Promise<LoadedCheckpoint> {
  if (typeof opts !== 'object' || opts === null) throw invalidArg('options', 'an object', opts);
  checkKeys(opts, LOAD_OPTION_KEYS, 'loadCheckpoint options');
  const strict = opts.strict ?? true;
  if (typeof strict !== 'boolean') throw invalidArg('strict', 'a boolean', opts.strict);
  if (opts.device !== undefined && typeof opts.device !== 'string') throw invalidArg('device', "a device string such as 'cpu' or 'cuda'", opts.device);
  const heads = opts.heads ?? true;
  const teacher = opts.teacher ?? false;
  if (typeof teacher !== 'boolean') throw invalidArg('teacher', 'a boolean', opts.teacher);
  // LibTorch loads on a worker thread the first time (~0.5 s) while this thread parses the file; awaited before
  // the first native call (building the models). preloadNative never rejects.
  const addonLoaded = preloadNative();
  const opened = await openAnyCheckpoint(path, opts.argsJson === undefined ? {} : { argsJson: opts.argsJson });
  const { info } = opened;
  if (teacher && opened.modules.momentumBackbone.size === 0) {
    await opened.close();
    throw new TorchSslError('ERR_CHECKPOINT_FORMAT', `${path}: { teacher: true } asks for the teacher, but the file has no momentum_backbone.* (method ${info.method ?? 'unknown'}: no momentum teacher)`, { file: path });
  }
  // The teacher in the student's place: same architecture, its own weights; the online modules are then the
  // ones reported as not loaded.
  const modules: CheckpointModules = teacher
    ? { ...opened.modules, backbone: opened.modules.momentumBackbone, projector: opened.modules.momentumProjector, momentumBackbone: opened.modules.backbone, momentumProjector: opened.modules.projector, classifier: new Map() }
    : opened.modules;
  const momentumNames: Array<[keyof CheckpointModules, string]> = teacher
    ? [
        ['momentumBackbone', 'backbone (the student)'],
        ['momentumProjector', 'projector (the student)'],
        ['predictor', 'predictor'],
      ]
    : MOMENTUM_NAMES;
  if (teacher && opened.modules.classifier.size > 0) info.warnings.push(`not loaded: classifier (${opened.modules.classifier.size} tensors; the student's)`);
  const built: Array<{ dispose(): void }> = [];
  // The tensors of the modules to load (and no others) are read now, on libuv's threads, while the
  // native addon loads and the models are built — both block this thread. Keys are still checked
  // before any of it reaches a model.
  const pending = new Map<TensorRef, Promise<Physical>>();
  for (const m of heads ? [modules.backbone, modules.projector, modules.classifier] : [modules.backbone]) {
    for (const ref of m.values()) {
      const p = ref.readPhysical();
      p.catch(() => undefined);
      pending.set(ref, p);
    }
  }
  try {
    if (modules.backbone.size === 0) {
      throw new TorchSslError('ERR_CHECKPOINT_FORMAT', `${path}: no ResNet backbone found (no backbone.*, encoder.* or torchvision conv1/bn1/layerN keys)`);
    }
    if (info.depth !== 18 && info.depth !== 34 && info.depth !== 50) {
      const what = info.depth ? `ResNet-${info.depth}` : `a backbone with block counts [${info.layers.join(', ')}]`;
      throw new TorchSslError('ERR_CHECKPOINT_FORMAT', `${path}: holds ${what}; the engine builds ResNet-18, 34 and 50`);
    }
    if (info.stem === null) throw new TorchSslError('ERR_CHECKPOINT_FORMAT', `${path}: conv1 is neither 3×3 (CIFAR stem) nor 7×7 (ImageNet stem)`);

    // Prefixed (solo-learn, own) files name modules; flat torchvision / plain files are all backbone + fc.
    const onlinePrefix = backbonePrefix(opened.root);
    const ddp = onlinePrefix.startsWith('module.') ? 'module.' : '';
    const bbPrefix = teacher ? `${ddp}${onlinePrefix.includes('encoder.') ? 'momentum_encoder.' : 'momentum_backbone.'}` : onlinePrefix;
    const flat = bbPrefix === '';
    const ignored: string[] = [];
    const plans: Plan[] = [];
    await addonLoaded;
    const backbone = resnet({ depth: info.depth as ResNetDepth, stem: info.stem });
    built.push(backbone);
    plans.push({ source: modules.backbone, target: modelShapes(backbone), prefix: bbPrefix });

    let proj: Projector | undefined;
    let projectorPlan: Plan | undefined;
    if (modules.projector.size > 0) {
      const layout = info.projector ? projectorFromLayout(info.projector, info.featureDim ?? backbone.featureDim) : 'it has no numbered layers';
      if (!heads) ignored.push(`projector (${modules.projector.size} tensors)`);
      else if (typeof layout === 'string') {
        if (strict) throw new TorchSslError('ERR_CHECKPOINT_FORMAT', `${path}: cannot build the projector: ${layout}; pass { heads: false } or { strict: false } to load the backbone alone`);
        ignored.push(`projector (${modules.projector.size} tensors; ${layout})`);
        info.warnings.push(`projector not loaded: ${layout}`);
      } else {
        proj = makeProjector({ inputDim: backbone.featureDim, ...layout });
        built.push(proj);
        projectorPlan = { source: modules.projector, target: modelShapes(proj), prefix: `${ddp}${teacher ? 'momentum_projector.' : 'projector.'}` };
        plans.push(projectorPlan);
      }
    }

    let classifierPlan: Plan | undefined;
    if (modules.classifier.size > 0) {
      if (!heads) ignored.push(`classifier (${modules.classifier.size} tensors)`);
      else {
        const w = modules.classifier.get('weight');
        const classes = w && w.shape.length === 2 ? w.shape[0]! : (info.numClasses ?? 0);
        classifierPlan = {
          source: modules.classifier,
          target: new Map([
            ['weight', [classes, backbone.featureDim]],
            ['bias', [classes]],
          ]),
          prefix: flat ? 'fc.' : `${ddp}classifier.`,
        };
        plans.push(classifierPlan);
      }
    }

    for (const [m, name] of momentumNames) if (modules[m].size > 0) ignored.push(`${name} (${modules[m].size} tensors)`);
    // solo-learn checkpoints carry method-specific state (queues, momentum classifiers, DINO heads):
    // reported, never loaded. In any other file a key outside the modules is unexpected.
    const otherKeys = [...modules.other.keys()];
    if (info.format === 'solo-learn-lightning') {
      const groups = new Map<string, number>();
      for (const k of otherKeys) groups.set(k.split('.')[0]!, (groups.get(k.split('.')[0]!) ?? 0) + 1);
      for (const [g, n] of groups) ignored.push(n === 1 && modules.other.has(g) ? g : `${g} (${n} tensors)`);
    }
    const result = compare(plans);
    if (info.format !== 'solo-learn-lightning') result.unexpected.push(...otherKeys);
    const err = keysError(path, result, strict);
    if (err) throw err;
    if (ignored.length > 0) info.warnings.push(`not loaded: ${ignored.join(', ')}`);

    // Only now read tensor data: the keys each model uses, nothing else.
    const read = async (plan: Plan): Promise<Map<string, Tensor>> => {
      const sd = new Map<string, Tensor>();
      try {
        for (const [k, ref] of plan.source) if (plan.target.has(k)) sd.set(k, await materialise(ref, pending.get(ref)));
      } catch (e) {
        for (const t of sd.values()) t.dispose();
        throw e;
      }
      return sd;
    };
    for (const [model, plan] of [[backbone, plans[0]!], ...(proj ? [[proj, projectorPlan!] as const] : [])] as const) {
      const sd = await read(plan);
      try {
        await model.loadStateDict(sd, { strict: false });
      } finally {
        for (const t of sd.values()) t.dispose();
      }
    }
    let classifier: LinearClassifier | undefined;
    if (classifierPlan) {
      const sd = await read(classifierPlan);
      const w = sd.get('weight');
      const b = sd.get('bias');
      if (w && b) classifier = new LinearClassifier(w, b);
      else for (const t of sd.values()) t.dispose();
    }
    if (classifier) built.push(classifier);

    backbone.eval();
    proj?.eval();
    if (opts.channelsLast) backbone.channelsLast(true);
    if (opts.device !== undefined && opts.device !== 'cpu') {
      await backbone.to(opts.device);
      if (proj) await proj.to(opts.device);
      if (classifier) {
        const moved = classifier.to(opts.device);
        classifier.dispose();
        classifier = moved;
      }
    }
    const loaded: LoadedCheckpoint = {
      backbone,
      info,
      ignored,
      missing: result.missing,
      unexpected: result.unexpected,
      dispose() {
        backbone.dispose();
        loaded.projector?.dispose();
        loaded.classifier?.dispose();
      },
    };
    if (proj) loaded.projector = proj;
    if (classifier) loaded.classifier = classifier;
    return loaded;
  } catch (err) {
    for (const m of built) m.dispose();
    throw err;
  } finally {
    await Promise.allSettled(pending.values());
    await opened.close();
  }
}
