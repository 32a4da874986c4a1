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
  /** The spaces wanted; the backbone runs once, the projector on its output when 'projection' is asked for. */
  spaces: readonly PatchSpace[];
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
  const cfg = model.info?.config as
    | { data?: { size?: unknown }; resolvedViews?: { size?: unknown }[]; augmentation?: { size?: unknown }[]; augmentations?: { crop_size?: unknown }[] }
    | null
    | undefined;
  const first = <T>(v: T[] | undefined): T | undefined => (Array.isArray(v) ? v[0] : undefined);
  const fromRun = first(cfg?.resolvedViews)?.size ?? first(cfg?.augmentation)?.size ?? first(cfg?.augmentations)?.crop_size ?? cfg?.data?.size;
  if (typeof fromRun === 'number' && Number.isSafeInteger(fromRun) && fromRun > 0) return fromRun;
  return model.info?.stem === 'imagenet' ? 224 : 32;
}

/**
 * Embeds the `boxes` (all `size`×`size`) of `images` (one RgbImage each, indexed by `box.image`): a
 * (boxes.length × D) row-major Float32Array and D.
 */
export type PatchEmbeddings = Partial<Record<PatchSpace, { features: Float32Array; dim: number }>>;

export async function embedPatches(
  model: FeatureModel,
  images: readonly RgbImage[],
  boxes: readonly PatchBox[],
  opts: EmbedPatchesOptions,
): Promise<PatchEmbeddings> {
  const { size } = opts;
  for (const b of boxes) {
    const img = images[b.image];
    if (img === undefined) throw invalidArg('patch image', `an index below ${images.length}`, b.image);
    if (b.x < 0 || b.y < 0 || b.x + size > img.width || b.y + size > img.height) {
      throw new TorchSslError('ERR_INVALID_ARG', `patch at x ${b.x}, y ${b.y}, size ${size} does not lie inside the ${img.width}×${img.height} image`);
    }
  }
  const out: PatchEmbeddings = {};
  // Cut and embed PATCH_CHUNK patches at a time: the pixel copies stay bounded whatever the number of patches.
  for (let start = 0; start < boxes.length; start += PATCH_CHUNK) {
    const part = await embedChunk(model, images, boxes.slice(start, start + PATCH_CHUNK), opts);
    for (const [space, e] of Object.entries(part) as [PatchSpace, { features: Float32Array; dim: number }][]) {
      const into = (out[space] ??= { features: new Float32Array(boxes.length * e.dim), dim: e.dim });
      into.features.set(e.features, start * e.dim);
    }
  }
  return out;
}

/** Patches per extraction call. */
const PATCH_CHUNK = 1024;

async function embedChunk(model: FeatureModel, images: readonly RgbImage[], boxes: readonly PatchBox[], opts: EmbedPatchesOptions): Promise<PatchEmbeddings> {
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
      ...(opts.normalize !== undefined ? { normalize: opts.normalize } : {}),
      batchSize: opts.batchSize ?? 256,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    const out: PatchEmbeddings = {};
    try {
      const embedding = { features: r.features.toTypedArray() as Float32Array, dim: r.features.shape[1]! };
      if (opts.spaces.includes('embedding')) out.embedding = embedding;
      if (opts.spaces.includes('projection')) {
        // The projector on the pooled vectors, as extractFeatures' projection space does: no second backbone pass.
        const z = await model.projector!.forward(r.features, { grad: false });
        out.projection = { features: z.toTypedArray() as Float32Array, dim: z.shape[1]! };
        z.dispose();
      }
    } finally {
      r.features.dispose();
    }
    return out;
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
