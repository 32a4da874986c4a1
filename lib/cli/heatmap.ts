/**
 * `torch-ssl heatmap`: the cosine similarity of a query patch to every patch of an image (the paper's Fig. 6),
 * drawn over the image as a PNG; optionally the similarity maps as .npy. Outputs are checked before the work
 * and written atomically.
 */
import type { Command } from 'commander';
import { writeAll, writeAtomically } from '../io.js';
import { openImageSource } from '../data/index.js';
import { TorchSslError } from '../errors.js';
import { writeNpyFile } from '../npy.js';
import { patchHeatmap, type HeatmapQuery } from '../viz/heatmap.js';
import type { RgbImage } from '../viz/canvas.js';
import { loadFeatureModel, parseNormalize } from './extract.js';
import { flagError, inputFile, oneNumber, outputFile } from './flags.js';

/** `x,y` or `x,y,size` (pixels). */
export function parseQuery(flag: string, value: string): HeatmapQuery {
  const parts = value.split(',').map((s) => Number(s.trim()));
  if ((parts.length !== 2 && parts.length !== 3) || !parts.every((n) => Number.isSafeInteger(n) && n >= 0) || parts[2] === 0) {
    throw flagError(flag, 'X,Y or X,Y,SIZE (pixels: the query patch\'s top-left corner and side)', value);
  }
  return { x: parts[0]!, y: parts[1]!, ...(parts.length === 3 ? { size: parts[2]! } : {}) };
}

export const positive = (flag: string, value: string) => oneNumber(flag, value, true, (n) => n > 0, 'a positive integer');
export const fraction = (flag: string, value: string, lo: number) => oneNumber(flag, value, false, (n) => n >= lo && n <= 1, `a number in ${lo === 0 ? '[0' : '(0'}, 1]`);

export async function writeFileAtomically(path: string, bytes: Uint8Array): Promise<void> {
  await writeAtomically(path, (fh) => writeAll(fh, bytes));
}

/** `--image` as an image file, or image `--index` of a data set (npy, CIFAR, IDX, image folder). */
export async function readQueryImage(o: Record<string, unknown>): Promise<RgbImage> {
  const path = o.image as string;
  if (o.index === undefined) {
    await inputFile('--image', path);
    const { readImageFile } = await import('../viz/canvas.js');
    return readImageFile(path);
  }
  const index = oneNumber('--index', o.index as string, true, (n) => n >= 0, 'a non-negative integer');
  const split = o.split as string;
  if (split !== 'train' && split !== 'test') throw flagError('--split', 'train | test', split);
  const size = o.size === undefined ? undefined : positive('--size', o.size as string);
  const source = await openImageSource({ path, split, ...(size !== undefined && { size }) });
  try {
    if (source.layout !== 'NHWC-uint8') throw new TorchSslError('ERR_DATA_FORMAT', `--image ${path}: the picture needs uint8 (N, H, W, 3) images, not normalised float32`, { file: path, flag: '--image' });
    if (index >= source.count) throw new TorchSslError('ERR_INVALID_ARG', `--index ${index}: --image ${path} has ${source.count} images`, { flag: '--index' });
    const b = await source.readBatch(index, index + 1);
    return { width: b.width, height: b.height, data: b.pixels as Uint8Array };
  } finally {
    await source.close();
  }
}

export function register(program: Command): void {
  program
    .command('heatmap')
    .description("cosine similarity of a query patch to every patch of an image, drawn over it (the paper's Fig. 6)")
    .requiredOption('--checkpoint <file>', 'solo-learn .ckpt, torchvision .pth or torch-ssl checkpoint')
    .requiredOption('--image <path>', 'an image file (PNG, JPEG, …), or with --index a data set (.npy, CIFAR folder, IDX file, image folder)')
    .requiredOption('--query <x,y[,size]>', "the query patch: top-left corner and side in pixels (side default: from --patch-scale)")
    .requiredOption('--out <file>', 'the PNG to write')
    .option('--index <n>', 'take image N of the data set given as --image')
    .option('--split <split>', 'with --index, CIFAR and IDX folders: train | test', 'train')
    .option('--size <n>', 'with --index: bring the images to N×N (image folders, IDX)')
    .option('--space <space>', 'embedding | projection | both (side by side)', 'embedding')
    .option('--patch-scale <f>', 'patch area as a fraction of the image, when --query has no size', '0.1')
    .option('--stride <n>', 'pixels between sliding patches (default: size / 8)')
    .option('--resize <n>', "side each patch is resized to for the model (default: the checkpoint's training crop, else 32 / 224)")
    .option('--normalize <stats>', "cifar10 | cifar100 | imagenet | fashion-mnist | … | none | 'm1,m2,m3/s1,s2,s3' (default: the checkpoint's)")
    .option('--alpha <f>', 'weight of the colour map over the image', '0.5')
    .option('--scale <n>', 'integer upscaling of the picture (default: longer side ≥ 256 px)')
    .option('--similarity-out <file>', 'also write the similarity map(s) as float32 (spaces, rows, cols) .npy')
    .option('--json', 'print a JSON summary as the last stdout line')
    .action(async (o: Record<string, string | boolean | undefined>) => {
      const space = o.space as string;
      if (space !== 'embedding' && space !== 'projection' && space !== 'both') throw flagError('--space', 'embedding | projection | both', space);
      const query = parseQuery('--query', o.query as string);
      const patchScale = fraction('--patch-scale', o.patchScale as string, 1e-9);
      const alpha = fraction('--alpha', o.alpha as string, 0);
      const stride = o.stride === undefined ? undefined : positive('--stride', o.stride as string);
      const resize = o.resize === undefined ? undefined : positive('--resize', o.resize as string);
      const scale = o.scale === undefined ? undefined : oneNumber('--scale', o.scale as string, true, (n) => n >= 1 && n <= 64, 'an integer from 1 to 64');
      const out = await outputFile('--out', o.out as string);
      const simOut = o.similarityOut === undefined ? undefined : await outputFile('--similarity-out', o.similarityOut as string);
      await inputFile('--checkpoint', o.checkpoint as string);
      const image = await readQueryImage(o);
      const model = await loadFeatureModel(o.checkpoint as string, { projector: space !== 'embedding' });
      try {
        const r = await patchHeatmap(model, image, {
          query,
          space,
          patchScale,
          alpha,
          ...(stride !== undefined && { stride }),
          ...(resize !== undefined && { resize }),
          ...(scale !== undefined && { scale }),
          ...(o.normalize !== undefined && { normalize: parseNormalize(o.normalize as string) }),
        });
        await writeFileAtomically(out, r.png);
        if (simOut !== undefined) {
          const data = new Float32Array(r.maps.length * r.grid.rows * r.grid.cols);
          r.maps.forEach((m, i) => data.set(m.similarity.toTypedArray() as Float32Array, i * r.grid.rows * r.grid.cols));
          await writeNpyFile(simOut, { dtype: 'float32', shape: [r.maps.length, r.grid.rows, r.grid.cols], data });
        }
        const q = r.query;
        console.log(`query patch x ${q.x}, y ${q.y}, size ${q.size} of a ${r.image.width}×${r.image.height} image; ${r.grid.rows}×${r.grid.cols} patches at stride ${r.grid.stride}, each resized to ${r.grid.resize}×${r.grid.resize}`);
        for (const m of r.maps) console.log(`${m.space}: cosine similarity from ${m.min.toFixed(4)} (blue) to ${m.max.toFixed(4)} (red)`);
        console.log(`wrote ${out}${simOut ? ` and ${simOut}` : ''}`);
        if (o.json) console.log(JSON.stringify({ out, similarityOut: simOut ?? null, query: q, grid: r.grid, scale: r.scale, maps: r.maps.map((m) => ({ space: m.space, min: m.min, max: m.max })) }));
        for (const m of r.maps) m.similarity.dispose();
      } finally {
        model.dispose();
      }
    });
}
