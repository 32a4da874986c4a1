/**
 * Embeddings of individual square patches, for the pictures (heatmaps, patch kNN). Each patch is cut from the
 * uint8 image, resized to the model's input side (bilinear, align_corners false, no antialiasing: the same
 * native path as `extractFeatures`' bags of patches), normalised with the checkpoint's statistics, and run
 * through the backbone (and the projector for the projection space). One patch per row, not averaged.
 */
import { invalidArg, TorchSslError } from '../errors.js';
import { extractFeatures, type FeatureModel, type NormalizeOption } from '../features.js';
import { Tensor } from '../tensor.js';
import type { RgbImage } from './canvas.js';

export type PatchSpace = 'embedding' | 'projection';

/** A square patch: top-left corner (x, y) and side `size`, in pixels of image `image`. */
export interface PatchBox {
  image: number;
  x: number;
  y: number;
}

export interface EmbedPatchesOptions {
  size: number;
  /** Side each patch is resized to before the backbone. */
  resize: number;
  space: PatchSpace;
  normalize?: NormalizeOption | undefined;
  /** Patches per forward pass (default 256). */
  batchSize?: number | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * Model input side for a checkpoint: its run's training crop when recorded (torch-ssl's args.json
 * resolvedViews / augmentation, solo-learn's augmentations[].crop_size), else the image side it trained on
 * (data.size), else 32 for the CIFAR stem and 224 otherwise.
 */
export function modelInputSize(model: FeatureModel & { info?: { config?: Record<string, unknown> | null; stem?: string | null } }): number {
  const cfg = model.info?.config as { data?: { size?: unknown }; resolvedViews?: { size?: unknown }[]; augmentation?: { size?: unknown }[]; augmentations?: { crop_size?: unknown }[] } | null | undefined;
  const first = <T>(v: T[] | undefined): T | undefined => (Array.isArray(v) ? v[0] : undefined);
  const fromRun = first(cfg?.resolvedViews)?.size ?? first(cfg?.augmentation)?.size ?? first(cfg?.augmentations)?.crop_size ?? cfg?.data?.size;
  if (typeof fromRun === 'number' && Number.isSafeInteger(fromRun) && fromRun > 0) return fromRun;
  return model.info?.stem === 'imagenet' ? 224 : 32;
}

/**
 * Embeds the `boxes` (all `size`×`size`) of `images` (one RgbImage each, indexed by `box.image`): a
 * (boxes.length × D) row-major Float32Array and D.
 */
export async function embedPatches(model: FeatureModel, images: readonly RgbImage[], boxes: readonly PatchBox[], opts: EmbedPatchesOptions): Promise<{ features: Float32Array; dim: number }> {
  const { size } = opts;
  if (boxes.length === 0) return { features: new Float32Array(0), dim: 0 };
  for (const b of boxes) {
    const img = images[b.image];
    if (img === undefined) throw invalidArg('patch image', `an index below ${images.length}`, b.image);
    if (b.x < 0 || b.y < 0 || b.x + size > img.width || b.y + size > img.height) {
      throw new TorchSslError('ERR_INVALID_ARG', `patch at x ${b.x}, y ${b.y}, size ${size} does not lie inside the ${img.width}×${img.height} image`);
    }
  }
  // Cut and embed PATCH_CHUNK patches at a time: the pixel copies stay bounded whatever the number of patches.
  let features: Float32Array | undefined;
  let dim = 0;
  for (let start = 0; start < boxes.length; start += PATCH_CHUNK) {
    const part = await embedChunk(model, images, boxes.slice(start, start + PATCH_CHUNK), opts);
    if (features === undefined) {
      dim = part.dim;
      features = new Float32Array(boxes.length * dim);
    }
    features.set(part.features, start * dim);
  }
  return { features: features!, dim };
}

/** Patches per extraction call. */
const PATCH_CHUNK = 1024;

async function embedChunk(model: FeatureModel, images: readonly RgbImage[], boxes: readonly PatchBox[], opts: EmbedPatchesOptions): Promise<{ features: Float32Array; dim: number }> {
  const { size, resize } = opts;
  const pixels = new Uint8Array(boxes.length * size * size * 3);
  boxes.forEach((b, i) => {
    const img = images[b.image]!;
    for (let row = 0; row < size; row++) {
      const from = ((b.y + row) * img.width + b.x) * 3;
      pixels.set(img.data.subarray(from, from + size * 3), (i * size + row) * size * 3);
    }
  });
  const t = Tensor.from(pixels, [boxes.length, size, size, 3]);
  try {
    // One patch per "image": a grid of one size×size patch at stride size, resized to `resize`.
    const r = await extractFeatures(model, t, {
      patches: { size, stride: size, resize },
      space: opts.space,
      ...(opts.normalize !== undefined ? { normalize: opts.normalize } : {}),
      batchSize: opts.batchSize ?? 256,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    const dim = r.features.shape[1]!;
    const features = r.features.toTypedArray() as Float32Array;
    r.features.dispose();
    return { features, dim };
  } finally {
    t.dispose();
  }
}

/** Rows scaled to unit L2 norm in place (a zero row stays zero, as F.normalize with its eps). */
export function normalizeRows(x: Float32Array, dim: number): Float32Array {
  for (let r = 0; r * dim < x.length; r++) {
    let s = 0;
    for (let d = 0; d < dim; d++) s += x[r * dim + d]! ** 2;
    const n = Math.max(Math.sqrt(s), 1e-12);
    for (let d = 0; d < dim; d++) x[r * dim + d]! /= n;
  }
  return x;
}
