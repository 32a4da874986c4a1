/**
 * Patch-similarity heatmaps (the paper's appendix D, Fig. 6): a query patch of an image is embedded, every
 * patch of the same size on a sliding grid over the image is embedded the same way, and the cosine
 * similarity of each to the query is drawn as a colour-mapped overlay on the image, with the query's box
 * dashed in red. In the embedding space (backbone) or the projection space (projector output), or both
 * side by side.
 */
import { invalidArg, TorchSslError } from '../errors.js';
import { checkKeys } from '../strict-keys.js';
import type { FeatureModel, NormalizeOption } from '../features.js';
import { Tensor } from '../tensor.js';
import { blankImage, drawBox, encodePng, overlay, RED, readImageFile, sideBySide, upscale, type RgbImage } from './canvas.js';
import { embedPatches, normalizeRows, type PatchBox, type PatchSpace } from './patches.js';
import { checkNonNegativeInts, posInt, resolveResize, resolveSpaces } from './patch-options.js';

export interface HeatmapQuery {
  /** Top-left corner of the query patch, in pixels. */
  x: number;
  y: number;
  /** Side of the query patch (and of every sliding patch); default from `patchScale`. */
  size?: number;
}

export interface HeatmapOptions {
  query: HeatmapQuery;
  /** 'embedding' (default), 'projection', or 'both' (two panels: embedding left, projection right). */
  space?: PatchSpace | 'both';
  /** Patch area as a fraction of the image's, when `query.size` is not given (default 0.1, as Fig. 6). */
  patchScale?: number;
  /** Pixels between sliding patches (default max(1, round(size / 8))). */
  stride?: number;
  /** Side each patch is resized to for the model (default: the checkpoint's training crop, else 32 / 224). */
  resize?: number;
  normalize?: NormalizeOption;
  /** Weight of the colour map over the image (default 0.5). */
  alpha?: number;
  /** Integer upscaling of the picture (default: the smallest that makes its longer side ≥ 256 px, at most 16). */
  scale?: number;
  /** Similarity mapped to the colour map's ends (default: each map's own minimum and maximum). */
  range?: [number, number];
  batchSize?: number;
  signal?: AbortSignal;
}

export interface HeatmapMap {
  space: PatchSpace;
  /** (rows, cols) cosine similarities; entry (r, c) is the patch at x = c·stride, y = r·stride. */
  similarity: Tensor;
  /** The range mapped to the colour map (blue → red). */
  min: number;
  max: number;
}

export interface HeatmapResult {
  maps: HeatmapMap[];
  /** The picture: one panel per map, left to right, as PNG bytes. */
  png: Buffer;
  query: Required<HeatmapQuery>;
  grid: { rows: number; cols: number; stride: number; size: number; resize: number };
  /** Pixels of the picture per image pixel. */
  scale: number;
  image: { width: number; height: number };
}

const HEATMAP_KEYS = ['query', 'space', 'patchScale', 'stride', 'resize', 'normalize', 'alpha', 'scale', 'range', 'batchSize', 'signal'] as const;
const _heatmapKeysComplete: Exclude<keyof HeatmapOptions, (typeof HEATMAP_KEYS)[number]> extends never ? true : never = true;
void _heatmapKeysComplete;

/** The default integer upscaling: the picture's longer side reaches 256 px (1 for large images, at most 16). */
export function defaultScale(width: number, height: number): number {
  return Math.min(16, Math.max(1, Math.ceil(256 / Math.max(width, height))));
}

/**
 * The value drawn at each image pixel: the similarity of the nearest patch centres, bilinearly interpolated.
 * Patch (r, c) has its centre at pixel (c·stride + ⌊size/2⌋, r·stride + ⌊size/2⌋), where the drawn value is
 * exactly its similarity; outside the centres' hull the nearest edge value is kept.
 */
export function heatAtPixels(sim: Float32Array, rows: number, cols: number, stride: number, size: number, width: number, height: number): Float64Array {
  const out = new Float64Array(width * height);
  const half = Math.floor(size / 2);
  const axis = (p: number, n: number): [number, number, number] => {
    const u = Math.min(n - 1, Math.max(0, (p - half) / stride));
    const i0 = Math.floor(u);
    const i1 = Math.min(n - 1, i0 + 1);
    return [i0, i1, u - i0];
  };
  for (let py = 0; py < height; py++) {
    const [r0, r1, ty] = axis(py, rows);
    for (let px = 0; px < width; px++) {
      const [c0, c1, tx] = axis(px, cols);
      const top = sim[r0 * cols + c0]! * (1 - tx) + sim[r0 * cols + c1]! * tx;
      const bottom = sim[r1 * cols + c0]! * (1 - tx) + sim[r1 * cols + c1]! * tx;
      out[py * width + px] = top * (1 - ty) + bottom * ty;
    }
  }
  return out;
}

/** One panel: the overlay at image resolution, upscaled, with the query box dashed in red. */
export function renderHeatmapPanel(
  image: RgbImage,
  heat: Float64Array,
  min: number,
  max: number,
  alpha: number,
  scale: number,
  query: Required<HeatmapQuery>,
): RgbImage {
  const span = max - min;
  const unit = heat.map((v) => (span > 0 ? Math.min(1, Math.max(0, (v - min) / span)) : 0.5));
  const panel = upscale(overlay(image, unit, alpha), scale);
  const thickness = Math.max(2, Math.ceil(scale / 4));
  drawBox(panel, query.x * scale, query.y * scale, query.size * scale, query.size * scale, RED, thickness, Math.max(4, 2 * thickness));
  return panel;
}

/** The options checked, with their defaults filled in. */
interface HeatmapPlan {
  query: Required<HeatmapQuery>;
  stride: number;
  resize: number;
  alpha: number;
  scale: number;
  spaces: PatchSpace[];
  /** The sliding grid: patch (r, c) at x = c·stride, y = r·stride. */
  rows: number;
  cols: number;
}

async function loadImage(image: RgbImage | string): Promise<RgbImage> {
  const img = typeof image === 'string' ? await readImageFile(image) : image;
  if (typeof img !== 'object' || img === null || !(img.data instanceof Uint8Array) || img.data.length !== img.width * img.height * 3) {
    throw invalidArg('image', 'an image file path or { width, height, data: Uint8Array RGB }', image);
  }
  return img;
}

/** The query patch, its side defaulting to `patchScale` of the image's area; it must lie inside the image. */
function resolveQuery(opts: HeatmapOptions, img: RgbImage): Required<HeatmapQuery> {
  const q = opts.query;
  if (typeof q !== 'object' || q === null) throw invalidArg('query', '{ x, y, size? }', q);
  checkKeys(q, ['x', 'y', 'size'], 'patchHeatmap query');
  const patchScale = opts.patchScale ?? 0.1;
  if (!(typeof patchScale === 'number' && patchScale > 0 && patchScale <= 1)) throw invalidArg('patchScale', 'a number in (0, 1]', patchScale);
  const size = q.size ?? Math.max(1, Math.round(Math.sqrt(patchScale * img.width * img.height)));
  checkNonNegativeInts([
    ['query.x', q.x],
    ['query.y', q.y],
  ]);
  if (!posInt(size)) throw invalidArg('query.size', 'a positive integer', size);
  if (q.x + size > img.width || q.y + size > img.height) {
    throw new TorchSslError(
      'ERR_INVALID_ARG',
      `the query patch (x ${q.x}, y ${q.y}, size ${size}) does not fit in the ${img.width}×${img.height} image: x + size must be ≤ ${img.width} and y + size ≤ ${img.height}`,
    );
  }
  return { x: q.x, y: q.y, size };
}

function resolveOptions(model: FeatureModel, opts: HeatmapOptions, img: RgbImage): HeatmapPlan {
  const query = resolveQuery(opts, img);
  const stride = opts.stride ?? Math.max(1, Math.round(query.size / 8));
  if (!posInt(stride)) throw invalidArg('stride', 'a positive integer', stride);
  const resize = resolveResize(model, opts.resize);
  const alpha = opts.alpha ?? 0.5;
  if (!(typeof alpha === 'number' && alpha >= 0 && alpha <= 1)) throw invalidArg('alpha', 'a number in [0, 1]', alpha);
  const scale = opts.scale ?? defaultScale(img.width, img.height);
  if (!posInt(scale) || scale > 64) throw invalidArg('scale', 'an integer from 1 to 64', scale);
  if (
    opts.range !== undefined &&
    !(Array.isArray(opts.range) && opts.range.length === 2 && opts.range.every(Number.isFinite) && opts.range[0] < opts.range[1])
  ) {
    throw invalidArg('range', '[low, high] with low < high', opts.range);
  }
  const spaces = resolveSpaces(model, opts.space);
  const rows = Math.floor((img.height - query.size) / stride) + 1;
  const cols = Math.floor((img.width - query.size) / stride) + 1;
  return { query, stride, resize, alpha, scale, spaces, rows, cols };
}

/** Cosine similarity of the query (row 0, unit length) to each sliding patch (rows 1…): (rows · cols) values. */
function querySimilarities(features: Float32Array, dim: number, patches: number): Float32Array {
  const sim = new Float32Array(patches);
  for (let p = 0; p < patches; p++) {
    let dot = 0;
    for (let d = 0; d < dim; d++) dot += features[d]! * features[(p + 1) * dim + d]!;
    sim[p] = dot;
  }
  return sim;
}

/** Embeds the query and every sliding patch, and draws one similarity map and panel per space. */
async function similarityMaps(
  model: FeatureModel,
  img: RgbImage,
  plan: HeatmapPlan,
  opts: HeatmapOptions,
): Promise<{ maps: HeatmapMap[]; panels: RgbImage[] }> {
  const { query, stride, resize, spaces, rows, cols } = plan;
  const { size } = query;
  const boxes: PatchBox[] = [{ image: 0, x: query.x, y: query.y }];
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) boxes.push({ image: 0, x: c * stride, y: r * stride });
  const maps: HeatmapMap[] = [];
  const panels: RgbImage[] = [];
  try {
    const embedded = await embedPatches(model, [img], boxes, {
      size,
      resize,
      spaces,
      normalize: opts.normalize,
      batchSize: opts.batchSize,
      signal: opts.signal,
    });
    for (const s of spaces) {
      const { features, dim } = embedded[s]!;
      normalizeRows(features, dim);
      const sim = querySimilarities(features, dim, rows * cols);
      let [min, max] = opts.range ?? [Infinity, -Infinity];
      if (opts.range === undefined) for (const v of sim) [min, max] = [Math.min(min, v), Math.max(max, v)];
      maps.push({ space: s, similarity: Tensor.from(sim, [rows, cols]), min, max });
      panels.push(renderHeatmapPanel(img, heatAtPixels(sim, rows, cols, stride, size, img.width, img.height), min, max, plan.alpha, plan.scale, query));
    }
  } catch (err) {
    for (const m of maps) m.similarity.dispose();
    throw err;
  }
  return { maps, panels };
}

/**
 * Similarity of a query patch of `image` to every patch on a sliding grid over it, in each space asked for,
 * with the colour-mapped pictures side by side.
 */
export async function patchHeatmap(model: FeatureModel, image: RgbImage | string, opts: HeatmapOptions): Promise<HeatmapResult> {
  if (typeof opts !== 'object' || opts === null) throw invalidArg('options', 'an object', opts);
  checkKeys(opts, HEATMAP_KEYS, 'patchHeatmap options');
  const img = await loadImage(image);
  const plan = resolveOptions(model, opts, img);
  const { query, stride, resize, scale, rows, cols } = plan;
  const { maps, panels } = await similarityMaps(model, img, plan, opts);
  const picture = panels.length === 1 ? panels[0]! : sideBySide(panels, Math.max(4, scale));
  return {
    maps,
    png: await encodePng(picture.width > 0 ? picture : blankImage(1, 1)),
    query,
    grid: { rows, cols, stride, size: query.size, resize },
    scale,
    image: { width: img.width, height: img.height },
  };
}
