/**
 * The method registry: every SSL method the trainer knows, by name. The training schema, the projector and
 * augmentation presets and `losses.*` defaults are all derived from these entries (docs/methods.md).
 */
import { barlow } from './barlow.js';
import { byol } from './byol.js';
import { dino } from './dino.js';
import { mocov3 } from './mocov3.js';
import { nnclr } from './nnclr.js';
import { simsiam } from './simsiam.js';
import { simclr } from './simclr.js';
import { swav } from './swav.js';
import { tcr } from './tcr.js';
import { vicreg } from './vicreg.js';
import type { MethodSpec } from './method.js';

export type { HeadPreset, LossOption, MethodSpec, ViewPreset } from './method.js';
export { checkLossOptions, defineMethod, lossSchema, methodModules } from './method.js';

export const METHOD_REGISTRY = { vicreg, simclr, tcr, barlow, byol, mocov3, simsiam, dino, swav, nnclr } as const;
export type Method = keyof typeof METHOD_REGISTRY;
export const METHODS = Object.keys(METHOD_REGISTRY) as [Method, ...Method[]];

export function methodSpec(name: Method): MethodSpec {
  return METHOD_REGISTRY[name] as MethodSpec;
}

/** Every loss option name any method has (a whole-recipe preset may carry options for several methods). */
export const ALL_LOSS_OPTIONS = [...new Set(Object.values(METHOD_REGISTRY).flatMap((m) => Object.keys(m.lossOptions)))];
