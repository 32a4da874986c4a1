/**
 * A self-supervised method, in one place per language: this file's `MethodSpec` (TypeScript: its loss options,
 * their bounds and defaults, its heads — projector, predictor, teacher — its augmentation preset, its training
 * recipe and the checkpoint modules it trains) and its twin in native/methods/<name>.cc (C++: its forward, its
 * loss and what runs after each step). Adding a method: docs/methods.md.
 */
import type { z } from 'zod';
import { TorchSslError } from '../errors.js';
import { MODULE_NAMES } from '../checkpoint/state-dict.js';
import { closest } from '../strict-keys.js';
import { zod } from '../zod.js';

/** A view pipeline as a preset gives it (any field of the training config's `augmentation` entries). */
export type ViewPreset = Record<string, unknown>;

export interface LossOption {
  /** The smallest value allowed; `exclusive` makes it a strict bound (> min). */
  min: number;
  /** The largest value allowed (inclusive). */
  max?: number;
  exclusive?: boolean;
  /** 'int': a whole number; 'bool': true / false in a config (0 / 1 on the wire). Default: any number. */
  kind?: 'int' | 'bool';
  /** What the option means, for docs and error messages. */
  doc: string;
}

/** An MLP head as solo-learn builds it: Linear [BN] ReLU blocks, then a Linear [and an affine-free BN]. */
export interface HeadPreset {
  hiddenDims: readonly number[];
  outputDim: number;
  /** BatchNorm1d after each hidden Linear. */
  batchNorm: boolean;
  /** The hidden Linears' bias (default true; MoCo v3 / SimSiam: false, a BN follows). */
  hiddenBias?: boolean;
  /** The output Linear's bias: on (default), off, or present but frozen (SimSiam's projector). */
  outputBias?: 'on' | 'off' | 'frozen';
  /** A final BatchNorm1d (MoCo v3 / SimSiam projectors: affine=False). */
  outputBatchNorm?: boolean;
  /** That final BatchNorm1d with weight and bias (NNCLR's projector). */
  outputBatchNormAffine?: boolean;
  /** The activation between layers (default relu; DINO's head: gelu). */
  activation?: 'relu' | 'gelu';
  doc: string;
}

export interface MethodSpec<Name extends string = string, LossKeys extends string = string> {
  name: Name;
  /** One line for `inspect`, docs and errors. */
  title: string;
  /** The loss's options (every one is passed to the engine, which has no defaults of its own). */
  lossOptions: Record<LossKeys, LossOption>;
  /** `losses.<name>(…)`'s defaults when called directly (docs/losses.md); methods whose loss needs a predictor
   *  or teacher have no `losses.<name>`. */
  lossDefaults: Record<LossKeys, number>;
  /** Views per image: `exactly` for pairwise losses, else the default number; `multiCrop`: views of several sizes
   *  (the first two are the large crops), the backbone run once per size. */
  views: { default: number; exactly?: number; multiCrop?: boolean };
  /** Forward all views in one pass (EMP-SSL's patches share BatchNorm statistics) instead of one pass per view. */
  concatViews: boolean;
  /** The projector preset of the method's name (PROJECTOR_PRESETS[name]). */
  projector: HeadPreset;
  /** A predictor after the projector (its input and output width are the projector's output). */
  predictor?: HeadPreset & { staticLr?: boolean };
  /** A teacher (momentum_backbone + momentum_projector) following the student by EMA, tau from base to final
   *  on solo-learn's cosine schedule. */
  momentum?: { baseTau: number; finalTau: number };
  augmentation: { name: string; views: readonly ViewPreset[]; doc: string };
  /** Further augmentation presets of the method's (DINO's multi-crop). */
  moreAugmentations?: readonly { name: string; views: readonly ViewPreset[]; doc: string }[];
  /** The state-dict modules it trains when not the default backbone, projector [, predictor] [, teacher]. */
  modules?: readonly string[];
  /** Floats of the method's own state for the checkpoint size estimate: `params` trainable (saved with their
   *  momentum), `buffers` the rest (queues, a centre, the teacher's copies). */
  state?: (loss: Record<string, number>, projector: { outputDim: number }) => { params: number; buffers: number };
  /** A check of the resolved config beyond each option's bounds: the message of what is wrong, or undefined. */
  checkConfig?: (c: { loss: Record<string, number>; batchSize: number }) => string | undefined;
  /** The training recipe's defaults (solo-learn's CIFAR configs; EMP-SSL / the BagSSL seed for TCR). */
  train: { lr: number; weightDecay: number; classifierLr?: number; optimizer?: 'lars' | 'sgd'; loss: Record<LossKeys, number> };
}

export function defineMethod<const Name extends string, const LossKeys extends string>(spec: MethodSpec<Name, LossKeys>): MethodSpec<Name, LossKeys> {
  return spec;
}

/** The state-dict modules a method trains, in the order the engine registers them (solo-learn's names). */
export function methodModules(m: MethodSpec): string[] {
  if (m.modules) return [...m.modules];
  const n = MODULE_NAMES;
  return [n.backbone, n.projector, ...(m.predictor ? [n.predictor] : []), ...(m.momentum ? [n.momentumBackbone, n.momentumProjector] : [])];
}

/** The method's own schema for `config.loss`: its options and their bounds, nothing else. */
export function lossSchema(m: MethodSpec): z.ZodType<Partial<Record<string, number>>> {
  const z = zod();
  const shape: Record<string, z.ZodType<number | undefined>> = Object.fromEntries(
    Object.entries(m.lossOptions).map(([k, o]) => {
      if (o.kind === 'bool') return [k, z.union([z.boolean().transform((b) => (b ? 1 : 0)), z.literal(0), z.literal(1)]).optional()];
      let n = o.exclusive ? z.number().gt(o.min) : z.number().min(o.min);
      if (o.max !== undefined) n = n.max(o.max);
      if (o.kind === 'int') n = n.int();
      return [k, n.optional()];
    }),
  );
  return z.object(shape);
}

/**
 * Checks `loss` against the method's options: an option the method does not have is ERR_CONFIG naming the
 * method, the closest valid option and all of them; a bad value names the option and its bound.
 */
/** The options given (a subset of the method's), checked and as the engine reads them (booleans as 0 / 1). */
export function checkLossOptions(m: MethodSpec, loss: Record<string, unknown>, where = 'config.loss'): Partial<Record<string, number>> {
  const valid = Object.keys(m.lossOptions);
  for (const k of Object.keys(loss)) {
    if (valid.includes(k)) continue;
    const near = closest(k, valid);
    const list = valid.length > 0 ? `its options: ${valid.join(', ')}` : 'it has no loss options';
    throw new TorchSslError('ERR_CONFIG', `${where}.${k}: method ${m.name} has no loss option ${k}${near ? `; did you mean ${near}?` : ''} (${list})`, {
      key: `${where}.${k}`,
      method: m.name,
      ...(near ? { suggestion: near } : {}),
    });
  }
  const r = lossSchema(m).safeParse(loss);
  if (!r.success) throw new TorchSslError('ERR_CONFIG', r.error.issues.map((i) => `${where}.${i.path.join('.')}: ${i.message} (method ${m.name})`).join('; '));
  return r.data;
}
