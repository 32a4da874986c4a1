/**
 * `torch-ssl heatmap`: the cosine similarity of a query patch to every patch of an image (the paper's Fig. 6),
 * drawn over the image as a PNG; optionally the similarity maps as .npy. Outputs are checked before the work
 * and written atomically.
 */
import type { Command } from 'commander';
import { writeFileAtomically } from '../io.js';
import { openImageSource } from '../data/index.js';
import { TorchSslError } from '../errors.js';
import { writeNpyFile } from '../npy.js';
import { patchHeatmap, type HeatmapQuery, type HeatmapResult } from '../viz/heatmap.js';
import type { RgbImage } from '../viz/canvas.js';
import { flagError, inputFile, nonNegativeInt, oneNumber, outputFile, positiveInt } from './flags.js';
import { given, option, readOptions, withOptions, type ParsedOptions } from './cli-option.js';
import { CHECKPOINT, JSON_SUMMARY, loadFeatureModel, NORMALIZE, OUT_PNG, PATCH_RESIZE, PICTURE_SPACE, SPLIT } from './options.js';

/** `x,y` or `x,y,size` (pixels). */
export function parseQuery(flag: string, value: string): HeatmapQuery {
  const parts = value.split(',').map((s) => Number(s.trim()));
  if ((parts.length !== 2 && parts.length !== 3) || !parts.every((n) => Number.isSafeInteger(n) && n >= 0) || parts[2] === 0) {
    throw flagError(flag, "X,Y or X,Y,SIZE (pixels: the query patch's top-left corner and side)", value);
  }
  return { x: parts[0]!, y: parts[1]!, ...(parts.length === 3 ? { size: parts[2]! } : {}) };
}

/** A number in [0, 1] (`lo` 0) or (0, 1] (`lo` just above 0). */
function fraction(flag: string, value: string, lo: number): number {
  return oneNumber(flag, value, false, (n) => n >= lo && n <= 1, `a number in ${lo === 0 ? '[0' : '(0'}, 1]`);
}

const IMAGE = option('--image <path>', 'an image file (PNG, JPEG, …), or with --index a data set (.npy, CIFAR folder, IDX file, image folder)', {
  required: true,
});
const QUERY = option('--query <x,y[,size]>', 'the query patch: top-left corner and side in pixels (side default: from --patch-scale)', {
  required: true,
  parse: parseQuery,
});
const INDEX = option('--index <n>', 'take image N of the data set given as --image', { parse: nonNegativeInt });
const SIZE = option('--size <n>', 'with --index: bring the images to N×N (image folders, IDX)', { parse: positiveInt });
const PATCH_SCALE = option('--patch-scale <f>', 'patch area as a fraction of the image, when --query has no size', {
  default: '0.1',
  parse: (flag, v) => fraction(flag, v, 1e-9),
});
const STRIDE = option('--stride <n>', 'pixels between sliding patches (default: size / 8)', { parse: positiveInt });
const ALPHA = option('--alpha <f>', 'weight of the colour map over the image', { default: '0.5', parse: (flag, v) => fraction(flag, v, 0) });
const SCALE = option('--scale <n>', 'integer upscaling of the picture (default: longer side ≥ 256 px)', {
  parse: (flag, v) => oneNumber(flag, v, true, (n) => n >= 1 && n <= 64, 'an integer from 1 to 64'),
});
const SIMILARITY_OUT = option('--similarity-out <file>', 'also write the similarity map(s) as float32 (spaces, rows, cols) .npy');

const OPTIONS = [
  CHECKPOINT,
  IMAGE,
  QUERY,
  OUT_PNG,
  INDEX,
  SPLIT.withHelp('with --index, CIFAR and IDX folders: train | test'),
  SIZE,
  PICTURE_SPACE,
  PATCH_SCALE,
  STRIDE,
  PATCH_RESIZE,
  NORMALIZE,
  ALPHA,
  SCALE,
  SIMILARITY_OUT,
  JSON_SUMMARY,
];

/** `--image` as an image file, or image `--index` of a data set (npy, CIFAR, IDX, image folder). */
export async function readQueryImage(o: ParsedOptions): Promise<RgbImage> {
  const path = IMAGE.read(o);
  const index = INDEX.read(o);
  if (index === undefined) {
    await inputFile('--image', path);
    const { readImageFile } = await import('../viz/canvas.js');
    return readImageFile(path);
  }
  const split = SPLIT.read(o);
  const size = SIZE.read(o);
  const source = await openImageSource({ path, split, ...(size !== undefined && { size }) });
  try {
    if (source.layout !== 'NHWC-uint8')
      throw new TorchSslError('ERR_DATA_FORMAT', `--image ${path}: the picture needs uint8 (N, H, W, 3) images, not normalised float32`, {
        file: path,
        flag: '--image',
      });
    if (index >= source.count) throw new TorchSslError('ERR_INVALID_ARG', `--index ${index}: --image ${path} has ${source.count} images`, { flag: '--index' });
    const b = await source.readBatch(index, index + 1);
    return { width: b.width, height: b.height, data: b.pixels as Uint8Array };
  } finally {
    await source.close();
  }
}

/** The similarity maps as one float32 (spaces, rows, cols) array. */
async function writeSimilarityMaps(path: string, r: HeatmapResult): Promise<void> {
  const cells = r.grid.rows * r.grid.cols;
  const data = new Float32Array(r.maps.length * cells);
  r.maps.forEach((m, i) => data.set(m.similarity.toTypedArray() as Float32Array, i * cells));
  await writeNpyFile(path, { dtype: 'float32', shape: [r.maps.length, r.grid.rows, r.grid.cols], data });
}

function printHeatmap(r: HeatmapResult, out: string, simOut: string | undefined, json: boolean): void {
  const q = r.query;
  console.log(
    `query patch x ${q.x}, y ${q.y}, size ${q.size} of a ${r.image.width}×${r.image.height} image; ${r.grid.rows}×${r.grid.cols} patches at stride ${r.grid.stride}, each resized to ${r.grid.resize}×${r.grid.resize}`,
  );
  for (const m of r.maps) console.log(`${m.space}: cosine similarity from ${m.min.toFixed(4)} (blue) to ${m.max.toFixed(4)} (red)`);
  console.log(`wrote ${out}${simOut ? ` and ${simOut}` : ''}`);
  if (json)
    console.log(
      JSON.stringify({
        out,
        similarityOut: simOut ?? null,
        query: q,
        grid: r.grid,
        scale: r.scale,
        maps: r.maps.map((m) => ({ space: m.space, min: m.min, max: m.max })),
      }),
    );
}

export function register(program: Command): void {
  const cmd = program.command('heatmap').description("cosine similarity of a query patch to every patch of an image, drawn over it (the paper's Fig. 6)");
  withOptions(cmd, OPTIONS).action(async (o: ParsedOptions) => {
    const view = readOptions(o, {
      space: PICTURE_SPACE,
      query: QUERY,
      patchScale: PATCH_SCALE,
      alpha: ALPHA,
      stride: STRIDE,
      resize: PATCH_RESIZE,
      scale: SCALE,
      normalize: NORMALIZE,
    });
    const out = await outputFile('--out', OUT_PNG.read(o));
    const simPath = SIMILARITY_OUT.read(o);
    const simOut = simPath === undefined ? undefined : await outputFile('--similarity-out', simPath);
    const checkpoint = await inputFile('--checkpoint', CHECKPOINT.read(o));
    const image = await readQueryImage(o);
    const model = await loadFeatureModel(checkpoint, { projector: view.space !== 'embedding' });
    try {
      const r = await patchHeatmap(model, image, given(view));
      await writeFileAtomically(out, r.png);
      if (simOut !== undefined) await writeSimilarityMaps(simOut, r);
      printHeatmap(r, out, simOut, JSON_SUMMARY.read(o));
      for (const m of r.maps) m.similarity.dispose();
    } finally {
      model.dispose();
    }
  });
}
