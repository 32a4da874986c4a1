/**
 * The method registry: every SSL method the trainer knows, by name. The training schema, the projector and
 * augmentation presets and `losses.*` defaults are all derived from these entries (docs/methods.md).
 */
import { barlow } from './barlow.js';
import { simclr } from './simclr.js';
import { tcr } from './tcr.js';
import { vicreg } from './vicreg.js';
import type { MethodSpec } from './method.js';

export type { LossOption, MethodSpec, ViewPreset } from './method.js';
export { defineMethod } from './method.js';

export const METHOD_REGISTRY = { vicreg, simclr, tcr, barlow } as const;
export type Method = keyof typeof METHOD_REGISTRY;
export const METHODS = Object.keys(METHOD_REGISTRY) as [Method, ...Method[]];

export function methodSpec(name: Method): MethodSpec {
  return METHOD_REGISTRY[name] as MethodSpec;
}

/** Every loss option name any method has (the training config's `loss` may hold a preset's options for several). */
export const ALL_LOSS_OPTIONS = [...new Set(Object.values(METHOD_REGISTRY).flatMap((m) => Object.keys(m.lossOptions)))];
