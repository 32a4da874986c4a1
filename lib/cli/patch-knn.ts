/**
 * `torch-ssl patch-knn`: the nearest patches of a query patch among a data set's patches (the paper's
 * Figs. 7–12), as a PNG grid framed by class, with the share of same-class neighbours.
 */
import type { Command } from 'commander';
import { openImageSource, type ImageSource } from '../data/index.js';
import { writeFileAtomically } from '../io.js';
import { patchKnn, type PatchKnnResult } from '../viz/patch-knn.js';
import { flagError, inputFile, oneNumber, outputFile, positiveInt } from './flags.js';
import { given, option, readOptions, withOptions, type ParsedOptions } from './cli-option.js';
import { CHECKPOINT, JSON_SUMMARY, loadFeatureModel, NORMALIZE, OUT_PNG, PATCH_RESIZE, PICTURE_SPACE, SPLIT } from './options.js';
import { progressBar, withInterrupt } from './progress.js';

/** `INDEX:x,y,size`. */
export function parsePatchQuery(value: string): { image: number; x: number; y: number; size: number } {
  const m = /^\s*(\d+)\s*:\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*$/.exec(value);
  if (!m || Number(m[4]) === 0)
    throw flagError('--query', "INDEX:X,Y,SIZE (the query image's index in --dataset, then the patch's top-left corner and side in pixels)", value);
  return { image: Number(m[1]), x: Number(m[2]), y: Number(m[3]), size: Number(m[4]) };
}

const DATASET = option('--dataset <path>', 'uint8 .npy (+ labels), CIFAR-10/100 binary folder, IDX file or folder, or image folder', { required: true });
const QUERY = option('--query <index:x,y,size>', 'the query: image index in --dataset, top-left corner and side of the patch in pixels', {
  required: true,
  parse: (_flag, value) => parsePatchQuery(value),
});
const K = option('--k <n>', 'neighbours shown', { default: '119', parse: positiveInt });
const STRIDE = option('--stride <n>', "pixels between the bank's grid patches (default: size / 2)", { parse: positiveInt });
const LIMIT = option('--limit <n>', 'the first N images of --dataset form the bank', { parse: positiveInt });
const MEMORY_MB = option('--memory-mb <n>', 'memory the patch bank may take (MiB)', {
  default: '512',
  parse: (flag, value) => oneNumber(flag, value, false, (n) => n > 0, 'a positive number'),
});
const SIZE = option('--size <n>', 'image folders and IDX files: bring images to N×N', { parse: positiveInt });
const TILE = option('--tile <n>', 'side of each grid tile in pixels (default: max(48, 2 × size))', { parse: positiveInt });

const OPTIONS = [
  CHECKPOINT,
  DATASET,
  QUERY,
  OUT_PNG,
  K,
  PICTURE_SPACE,
  STRIDE,
  PATCH_RESIZE,
  LIMIT,
  MEMORY_MB,
  SPLIT,
  SIZE,
  NORMALIZE,
  TILE,
  JSON_SUMMARY.withHelp('print a JSON summary (neighbours included) as the last stdout line'),
];

function printPatchKnn(r: PatchKnnResult, source: ImageSource, out: string, json: boolean): void {
  const cls = (l: number | null) => (l === null ? 'unlabelled' : (source.classes?.[l] ?? `class ${l}`));
  const q = r.query;
  console.log(
    `bank: ${r.bank.patches} patches (${r.bank.images} images × ${r.bank.patchesPerImage}, stride ${r.bank.stride}, resized to ${r.bank.resize}), ${(r.bank.bytes / 2 ** 20).toFixed(1)} MiB`,
  );
  console.log(`query: image ${q.image} (${cls(q.label)}), x ${q.x}, y ${q.y}, size ${q.size}`);
  for (const res of r.results) {
    const share =
      res.sameClassShare === null ? 'no labels' : `${(100 * res.sameClassShare).toFixed(1)} % of ${res.neighbours.length} neighbours share the query's class`;
    console.log(`${res.space}: ${share}; similarity ${res.neighbours[0]?.similarity.toFixed(4)} … ${res.neighbours.at(-1)?.similarity.toFixed(4)}`);
  }
  console.log(`wrote ${out}`);
  if (json) console.log(JSON.stringify({ out, query: r.query, bank: r.bank, results: r.results }));
}

export function register(program: Command): void {
  const cmd = program
    .command('patch-knn')
    .description("a query patch's nearest patches from other images of a data set, framed green / red by class (the paper's Figs. 7–12)");
  withOptions(cmd, OPTIONS).action(async (o: ParsedOptions) => {
    const { split, size, ...search } = readOptions(o, {
      space: PICTURE_SPACE,
      split: SPLIT,
      query: QUERY,
      k: K,
      memoryMb: MEMORY_MB,
      stride: STRIDE,
      resize: PATCH_RESIZE,
      limit: LIMIT,
      size: SIZE,
      tile: TILE,
      normalize: NORMALIZE,
    });
    const out = await outputFile('--out', OUT_PNG.read(o));
    const checkpoint = await inputFile('--checkpoint', CHECKPOINT.read(o));
    const source = await openImageSource({ path: DATASET.read(o), split, ...given({ size }) });
    const model = await loadFeatureModel(checkpoint, { projector: search.space !== 'embedding' });
    const bar = progressBar('patch bank (images embedded)');
    try {
      const r = await withInterrupt((signal) => patchKnn(model, source, { ...given(search), signal, onProgress: (p) => bar.update(p.done, p.total) }));
      bar.finish();
      await writeFileAtomically(out, r.png);
      printPatchKnn(r, source, out, JSON_SUMMARY.read(o));
    } finally {
      bar.finish();
      await source.close();
      model.dispose();
    }
  });
}
