/**
 * Projector presets: each method's head (lib/methods/*.ts) by the method's name, and the BagSSL seed's heads
 * (appendix C); and the mapping of a layout to the engine's head (every field filled).
 */
import type { NativeHead } from '../native.js';
import { METHOD_REGISTRY } from './index.js';
import type { HeadPreset } from './method.js';

/** A head's layout (a method's HeadPreset without its doc); the optional flags default to a plain head. */
export type ProjectorLayout = Omit<HeadPreset, 'doc'>;

export function toNativeHead(h: ProjectorLayout): NativeHead {
  return {
    hiddenDims: [...h.hiddenDims],
    outputDim: h.outputDim,
    batchNorm: h.batchNorm,
    hiddenBias: h.hiddenBias ?? true,
    outputBias: h.outputBias ?? 'on',
    outputBatchNorm: h.outputBatchNorm ?? false,
    outputBatchNormAffine: h.outputBatchNormAffine ?? false,
    activation: h.activation ?? 'relu',
  };
}
type MethodProjectors = { readonly [K in keyof typeof METHOD_REGISTRY]: ProjectorLayout };
export const PROJECTOR_PRESETS = {
  ...(Object.fromEntries(Object.values(METHOD_REGISTRY).map((m) => [m.name, projectorOf(m)])) as MethodProjectors),
  /** BagSSL seed C.1, CIFAR-10: 4096 hidden → 128, BN + ReLU between. */
  'bagssl-cifar10': { hiddenDims: [4096], outputDim: 128, batchNorm: true },
  /** BagSSL seed C.1, CIFAR-100: 4096 hidden → 512. */
  'bagssl-cifar100': { hiddenDims: [4096], outputDim: 512, batchNorm: true },
  /** BagSSL seed C.2/C.3, ImageNet(-100): three layers of 8192. */
  'bagssl-imagenet': { hiddenDims: [8192, 8192], outputDim: 8192, batchNorm: true },
} as const;
function projectorOf(m: { projector: ProjectorLayout }): ProjectorLayout {
  const { doc: _doc, ...layout } = m.projector as ProjectorLayout & { doc?: string };
  return layout;
}
export type ProjectorPreset = keyof typeof PROJECTOR_PRESETS;
