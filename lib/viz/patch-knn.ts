/**
 * Nearest patches (the paper's appendix E, Figs. 7–12): a bank of grid patches from a data set, each embedded
 * (backbone, or projector output), and for one query patch its k most cosine-similar patches from the other
 * images, drawn as a grid (the query first, framed blue), each neighbour framed green when its image's class
 * equals the query image's and red otherwise. The share of same-class neighbours is returned.
 *
 * The bank lives in memory as (patches × D) float32; its size is checked against `memoryMb` before any
 * work starts. Neighbours from the query's own image are excluded, as in the paper.
 */
import { openImageSource, type ImageSource } from '../data/index.js';
import { invalidArg, TorchSslError } from '../errors.js';
import { checkKeys } from '../strict-keys.js';
import type { FeatureModel, NormalizeOption } from '../features.js';
import { blankImage, drawBox, encodePng, GREEN, paste, RED, sideBySide, upscale, type Rgb, type RgbImage } from './canvas.js';
import { embedPatches, normalizeRows, type PatchBox, type PatchSpace } from './patches.js';
import { checkNonNegativeInts, posInt, resolveResize, resolveSpaces } from './patch-options.js';

export interface PatchKnnQuery {
  /** Index of the query's image in the data set. */
  image: number;
  x: number;
  y: number;
  size: number;
}

export interface PatchKnnOptions {
  query: PatchKnnQuery;
  /** Neighbours shown (default 119: with the query, a 12 × 10 grid as in Fig. 7). */
  k?: number;
  space?: PatchSpace | 'both';
  /** Pixels between the bank's grid patches (default size / 2, rounded down, at least 1). */
  stride?: number;
  /** Side each patch is resized to for the model (default: the checkpoint's training crop, else 32 / 224). */
  resize?: number;
  /** The first `limit` images of the data set form the bank (default all). */
  limit?: number;
  /** Memory the bank may take, in MiB (default 512). */
  memoryMb?: number;
  normalize?: NormalizeOption;
  /** Side of each grid tile in pixels (default max(48, 2·size)). */
  tile?: number;
  batchSize?: number;
  onProgress?: (p: { done: number; total: number }) => void;
  signal?: AbortSignal;
}

export interface PatchNeighbour {
  image: number;
  x: number;
  y: number;
  similarity: number;
  label: number | null;
  sameClass: boolean | null;
}

export interface PatchKnnSpaceResult {
  space: PatchSpace;
  neighbours: PatchNeighbour[];
  /** Share of neighbours whose image has the query image's class (null without labels). */
  sameClassShare: number | null;
}

export interface PatchKnnResult {
  results: PatchKnnSpaceResult[];
  /** The grids, one per space left to right, as PNG bytes. */
  png: Buffer;
  query: PatchKnnQuery & { label: number | null };
  bank: { images: number; patches: number; patchesPerImage: number; stride: number; resize: number; bytes: number };
}

const KEYS = ['query', 'k', 'space', 'stride', 'resize', 'limit', 'memoryMb', 'normalize', 'tile', 'batchSize', 'onProgress', 'signal'] as const;
const _keysComplete: Exclude<keyof PatchKnnOptions, (typeof KEYS)[number]> extends never ? true : never = true;
void _keysComplete;

const BLUE: Rgb = [40, 90, 255];
const GRAY: Rgb = [128, 128, 128];

function batchImages(pixels: Uint8Array, count: number, width: number, height: number): RgbImage[] {
  const n = width * height * 3;
  return Array.from({ length: count }, (_, i) => ({ width, height, data: pixels.subarray(i * n, (i + 1) * n) }));
}

async function readImage(source: ImageSource, index: number): Promise<RgbImage> {
  const b = await source.readBatch(index, index + 1);
  return batchImages(b.pixels as Uint8Array, 1, b.width, b.height)[0]!;
}

function crop(img: RgbImage, x: number, y: number, size: number): RgbImage {
  const data = new Uint8Array(size * size * 3);
  for (let r = 0; r < size; r++) data.set(img.data.subarray(((y + r) * img.width + x) * 3, ((y + r) * img.width + x + size) * 3), r * size * 3);
  return { width: size, height: size, data };
}

/** A tile: the patch upscaled (nearest) to fill `tile` pixels, with a frame of `border` pixels. */
function tileOf(patch: RgbImage, tile: number, border: number, colour: Rgb): RgbImage {
  const inner = tile - 2 * border;
  const factor = Math.max(1, Math.floor(inner / patch.width));
  const big = upscale(patch, factor);
  const out = blankImage(tile, tile);
  paste(out, big, border + Math.floor((inner - big.width) / 2), border + Math.floor((inner - big.height) / 2));
  drawBox(out, 0, 0, tile, tile, colour, border);
  return out;
}

/** The options checked, with their defaults filled in. */
interface KnnPlan {
  query: PatchKnnQuery;
  k: number;
  stride: number;
  resize: number;
  memoryMb: number;
  tile: number;
  spaces: PatchSpace[];
}

/** The bank's grid: rows × cols patches in each of the first `count` images. */
interface BankLayout {
  count: number;
  width: number;
  height: number;
  rows: number;
  cols: number;
  perImage: number;
  patches: number;
}

/** One space's bank: (patches × dim) unit rows, and the query's unit row. */
interface PatchBank {
  features: Float32Array;
  dim: number;
  query: Float32Array;
}

function checkQuery(q: PatchKnnQuery): PatchKnnQuery {
  if (typeof q !== 'object' || q === null) throw invalidArg('query', '{ image, x, y, size }', q);
  checkKeys(q, ['image', 'x', 'y', 'size'], 'patchKnn query');
  checkNonNegativeInts([
    ['query.image', q.image],
    ['query.x', q.x],
    ['query.y', q.y],
  ]);
  if (!posInt(q.size)) throw invalidArg('query.size', 'a positive integer', q.size);
  return q;
}

function resolveOptions(model: FeatureModel, opts: PatchKnnOptions): KnnPlan {
  if (typeof opts !== 'object' || opts === null) throw invalidArg('options', 'an object', opts);
  checkKeys(opts, KEYS, 'patchKnn options');
  const q = checkQuery(opts.query);
  const k = opts.k ?? 119;
  if (!posInt(k)) throw invalidArg('k', 'a positive integer', k);
  const stride = opts.stride ?? Math.max(1, Math.floor(q.size / 2));
  if (!posInt(stride)) throw invalidArg('stride', 'a positive integer', stride);
  const resize = resolveResize(model, opts.resize);
  const memoryMb = opts.memoryMb ?? 512;
  if (!(typeof memoryMb === 'number' && memoryMb > 0)) throw invalidArg('memoryMb', 'a positive number', memoryMb);
  if (opts.limit !== undefined && !posInt(opts.limit)) throw invalidArg('limit', 'a positive integer', opts.limit);
  const tile = opts.tile ?? Math.max(48, 2 * q.size);
  const minTile = q.size + 2 * Math.max(2, Math.round(tile / 24));
  if (!posInt(tile) || tile < minTile) throw invalidArg('tile', `an integer ≥ ${minTile} (the patch side plus its frame)`, tile);
  return { query: q, k, stride, resize, memoryMb, tile, spaces: resolveSpaces(model, opts.space) };
}

/** The bank's grid over the first `limit` images, once the source is known to hold the query patch. */
function layOutBank(source: ImageSource, q: PatchKnnQuery, stride: number, limit: number | undefined): BankLayout {
  if (source.layout !== 'NHWC-uint8')
    throw new TorchSslError('ERR_DATA_FORMAT', `${source.path}: patch kNN draws patches and needs uint8 (N, H, W, 3) images, not normalised float32`, {
      file: source.path,
    });
  const count = Math.min(source.count, limit ?? source.count);
  const { width, height } = source;
  if (q.image >= count)
    throw new TorchSslError('ERR_INVALID_ARG', `query image ${q.image} is not among the ${count} images of ${source.path}${limit ? ` (limit ${limit})` : ''}`);
  if (q.x + q.size > width || q.y + q.size > height) {
    throw new TorchSslError(
      'ERR_INVALID_ARG',
      `the query patch (x ${q.x}, y ${q.y}, size ${q.size}) does not fit in the ${width}×${height} images of ${source.path}`,
    );
  }
  const rows = Math.floor((height - q.size) / stride) + 1;
  const cols = Math.floor((width - q.size) / stride) + 1;
  return { count, width, height, rows, cols, perImage: rows * cols, patches: count * rows * cols };
}

/** Refuses, before any work, a bank whose float32 rows (one bank per space) would take more than memoryMb. */
function checkBankMemory(model: FeatureModel, plan: KnnPlan, layout: BankLayout): void {
  // One bank per space: the backbone's width for embedding, the projector's output for projection.
  const dims = plan.spaces.map((s) => (s === 'embedding' ? model.backbone.featureDim : model.projector!.outputDim));
  const totalDim = dims.reduce((a, b) => a + b, 0);
  const bytes = layout.patches * totalDim * 4;
  if (bytes > plan.memoryMb * 2 ** 20) {
    throw new TorchSslError(
      'ERR_INVALID_ARG',
      `the patch bank (${layout.count} images × ${layout.perImage} patches × ${dims.join(' + ')} dims, float32) needs ${(bytes / 2 ** 20).toFixed(bytes < 10 * 2 ** 20 ? 1 : 0)} MiB, more than memoryMb ${plan.memoryMb}: raise it, or take fewer images (limit) or a larger stride`,
    );
  }
}

/** Embeds the query patch and every grid patch of the bank's images, a chunk of images at a time, as unit rows. */
async function embedBanks(
  model: FeatureModel,
  source: ImageSource,
  queryImage: RgbImage,
  plan: KnnPlan,
  layout: BankLayout,
  opts: PatchKnnOptions,
): Promise<Map<PatchSpace, PatchBank>> {
  const { query: q, stride, spaces } = plan;
  const { count, width, height, rows, cols, perImage, patches } = layout;
  const embedOpts = { size: q.size, resize: plan.resize, spaces, normalize: opts.normalize, batchSize: opts.batchSize, signal: opts.signal };
  const banks = new Map<PatchSpace, PatchBank>();
  const qe = await embedPatches(model, [queryImage], [{ image: 0, x: q.x, y: q.y }], embedOpts);
  for (const s of spaces) {
    const { features, dim } = qe[s]!;
    banks.set(s, { features: new Float32Array(patches * dim), dim, query: normalizeRows(features, dim) });
  }
  const imagesPerChunk = Math.max(1, Math.floor(2048 / perImage));
  for (let start = 0; start < count; start += imagesPerChunk) {
    const end = Math.min(count, start + imagesPerChunk);
    const b = await source.readBatch(start, end);
    const imgs = batchImages(b.pixels as Uint8Array, b.count, width, height);
    const boxes: PatchBox[] = [];
    for (let i = 0; i < imgs.length; i++) for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) boxes.push({ image: i, x: c * stride, y: r * stride });
    const e = await embedPatches(model, imgs, boxes, embedOpts);
    for (const s of spaces) {
      const bank = banks.get(s)!;
      bank.features.set(normalizeRows(e[s]!.features, bank.dim), start * perImage * bank.dim);
    }
    opts.onProgress?.({ done: end, total: count });
  }
  return banks;
}

/** Cosine similarity of the query to every patch of the bank (both sides are unit rows). */
function similarities({ features, dim, query }: PatchBank, patches: number): Float32Array {
  const sims = new Float32Array(patches);
  for (let p = 0; p < patches; p++) {
    let dot = 0;
    for (let d = 0; d < dim; d++) dot += query[d]! * features[p * dim + d]!;
    sims[p] = dot;
  }
  return sims;
}

/** The k most similar patches of the other images (ties to the lower index), and their same-class share. */
function nearestPatches(
  space: PatchSpace,
  bank: PatchBank,
  plan: KnnPlan,
  layout: BankLayout,
  labels: Int32Array | undefined,
  queryLabel: number | null,
): PatchKnnSpaceResult {
  const { perImage, cols, patches } = layout;
  const sims = similarities(bank, patches);
  const order = Array.from({ length: patches }, (_, i) => i).filter((p) => Math.floor(p / perImage) !== plan.query.image);
  order.sort((a, b) => sims[b]! - sims[a]! || a - b);
  const neighbours = order.slice(0, plan.k).map((p): PatchNeighbour => {
    const image = Math.floor(p / perImage);
    const cell = p % perImage;
    const label = labels ? labels[image]! : null;
    return {
      image,
      x: (cell % cols) * plan.stride,
      y: Math.floor(cell / cols) * plan.stride,
      similarity: sims[p]!,
      label,
      sameClass: label === null ? null : label === queryLabel,
    };
  });
  const share = labels && neighbours.length > 0 ? neighbours.filter((n) => n.sameClass).length / neighbours.length : null;
  return { space, neighbours, sameClassShare: share };
}

/** One space's grid: the query framed blue, then its neighbours framed by class (green same, red other, gray unknown). */
async function drawGrid(source: ImageSource, result: PatchKnnSpaceResult, cache: Map<number, RgbImage>, plan: KnnPlan, border: number): Promise<RgbImage> {
  const { query: q, tile } = plan;
  const n = result.neighbours.length + 1;
  const gridCols = Math.ceil(Math.sqrt(n));
  const gridRows = Math.ceil(n / gridCols);
  const gap = 2;
  const panel = blankImage(gridCols * (tile + gap) - gap, gridRows * (tile + gap) - gap);
  const items: [number, number, number, Rgb][] = [
    [q.image, q.x, q.y, BLUE],
    ...result.neighbours.map((nb): [number, number, number, Rgb] => [nb.image, nb.x, nb.y, nb.sameClass === null ? GRAY : nb.sameClass ? GREEN : RED]),
  ];
  for (let i = 0; i < items.length; i++) {
    const [image, x, y, colour] = items[i]!;
    if (!cache.has(image)) cache.set(image, await readImage(source, image));
    const t = tileOf(crop(cache.get(image)!, x, y, q.size), tile, border, colour);
    paste(panel, t, (i % gridCols) * (tile + gap), Math.floor(i / gridCols) * (tile + gap));
  }
  return panel;
}

/** The grids, one per space left to right, as PNG bytes. */
async function drawGrids(source: ImageSource, results: PatchKnnSpaceResult[], queryImage: RgbImage, plan: KnnPlan): Promise<Buffer> {
  const { query: q, tile } = plan;
  // Tiles of the query and its neighbours, re-read from the source (k images at most).
  const cache = new Map<number, RgbImage>([[q.image, queryImage]]);
  const border = Math.max(2, Math.round(tile / 24));
  const panels: RgbImage[] = [];
  for (const r of results) panels.push(await drawGrid(source, r, cache, plan, border));
  const picture = panels.length === 1 ? panels[0]! : sideBySide(panels, Math.max(8, Math.round(tile / 3)));
  return encodePng(picture);
}

/**
 * The k patches of `dataset` nearest to the query patch, in each space asked for, and the grids that show them.
 * The options are all checked, and the bank's memory bounded, before any image is read.
 */
export async function patchKnn(model: FeatureModel, dataset: string | ImageSource, opts: PatchKnnOptions): Promise<PatchKnnResult> {
  const plan = resolveOptions(model, opts);
  const q = plan.query;
  const source = typeof dataset === 'string' ? await openImageSource(dataset) : dataset;
  try {
    const layout = layOutBank(source, q, plan.stride, opts.limit);
    checkBankMemory(model, plan, layout);
    const labels = source.labels ? source.labels.subarray(0, layout.count) : undefined;
    const queryLabel = labels ? labels[q.image]! : null;
    const queryImage = await readImage(source, q.image);
    const banks = await embedBanks(model, source, queryImage, plan, layout, opts);
    const results = plan.spaces.map((s) => nearestPatches(s, banks.get(s)!, plan, layout, labels, queryLabel));
    return {
      results,
      png: await drawGrids(source, results, queryImage, plan),
      query: { ...q, label: queryLabel },
      bank: {
        images: layout.count,
        patches: layout.patches,
        patchesPerImage: layout.perImage,
        stride: plan.stride,
        resize: plan.resize,
        bytes: [...banks.values()].reduce((s, b) => s + b.features.byteLength, 0),
      },
    };
  } finally {
    if (typeof dataset === 'string') await source.close();
  }
}
