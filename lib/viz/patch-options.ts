/**
 * Option checks the patch pictures (heatmaps, patch kNN) share: the spaces a picture is drawn in, the model's
 * input side and the integer checks on patch coordinates, each with the one message shape of `invalidArg`.
 */
import { invalidArg, TorchSslError } from '../errors.js';
import type { FeatureModel } from '../features.js';
import { modelInputSize, type PatchSpace } from './patches.js';

export const posInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;

/** Throws unless every named value is a non-negative integer (a patch corner, an image index). */
export function checkNonNegativeInts(named: readonly (readonly [string, unknown])[]): void {
  for (const [k, v] of named) {
    if (!(typeof v === 'number' && Number.isSafeInteger(v) && v >= 0)) throw invalidArg(k, 'a non-negative integer', v);
  }
}

/** Side each patch is resized to: `resize`, else the checkpoint's training crop (else 32 / 224). */
export function resolveResize(model: FeatureModel, resize: number | undefined): number {
  const side = resize ?? modelInputSize(model as Parameters<typeof modelInputSize>[0]);
  if (!posInt(side)) throw invalidArg('resize', 'a positive integer', side);
  return side;
}

/** The spaces `space` names, 'both' being embedding then projection; the projection space needs a projector. */
export function resolveSpaces(model: FeatureModel, space: PatchSpace | 'both' | undefined): PatchSpace[] {
  const name = space ?? 'embedding';
  if (name !== 'embedding' && name !== 'projection' && name !== 'both') throw invalidArg('space', "'embedding', 'projection' or 'both'", name);
  const spaces: PatchSpace[] = name === 'both' ? ['embedding', 'projection'] : [name];
  if (spaces.includes('projection') && model.projector === undefined) {
    throw new TorchSslError('ERR_INVALID_ARG', "space 'projection' needs a checkpoint with a projector (this one has none); use space 'embedding'");
  }
  return spaces;
}
