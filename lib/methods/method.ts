/**
 * A self-supervised method, in one place per language: this file's `MethodSpec` (TypeScript: its loss options
 * and their defaults, its projector and augmentation presets, its training defaults) and its twin in
 * native/methods/<name>.cc (C++: how the loss is computed and what it logs). Adding a method: docs/methods.md.
 */

/** A view pipeline as a preset gives it (any field of the training config's `augmentation` entries). */
export type ViewPreset = Record<string, unknown>;

export interface LossOption {
  /** The smallest value allowed; `exclusive` makes it a strict bound (> min). */
  min: number;
  exclusive?: boolean;
  /** What the option means, for docs and error messages. */
  doc: string;
}

export interface MethodSpec<Name extends string = string, LossKeys extends string = string> {
  name: Name;
  /** The loss's options (every one is passed to the engine, which has no defaults of its own). */
  lossOptions: Record<LossKeys, LossOption>;
  /** `losses.<name>(…)`'s defaults when called directly (docs/losses.md). */
  lossDefaults: Record<LossKeys, number>;
  /** Views per image: `exactly` for pairwise losses, else the default number. */
  views: { default: number; exactly?: number };
  /** Forward all views in one pass (EMP-SSL's patches share BatchNorm statistics) instead of one pass per view. */
  concatViews: boolean;
  /** The projector preset of the method's name (PROJECTOR_PRESETS[name]). */
  projector: { hiddenDims: readonly number[]; outputDim: number; batchNorm: boolean; doc: string };
  augmentation: { name: string; views: readonly ViewPreset[]; doc: string };
  /** The training recipe's defaults (solo-learn's CIFAR configs; EMP-SSL / the BagSSL seed for TCR). */
  train: { lr: number; weightDecay: number; loss: Record<LossKeys, number> };
}

export function defineMethod<const Name extends string, const LossKeys extends string>(spec: MethodSpec<Name, LossKeys>): MethodSpec<Name, LossKeys> {
  return spec;
}
