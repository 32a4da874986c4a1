/**
 * `torch-ssl patch-knn`: the nearest patches of a query patch among a data set's patches (the paper's
 * Figs. 7–12), as a PNG grid framed by class, with the share of same-class neighbours.
 */
import type { Command } from 'commander';
import { openImageSource } from '../data/index.js';
import { patchKnn } from '../viz/patch-knn.js';
import { loadFeatureModel, parseNormalize } from './extract.js';
import { flagError, inputFile, oneNumber, outputFile } from './flags.js';
import { positive, writeFileAtomically } from './heatmap.js';
import { progressBar, withInterrupt } from './progress.js';

/** `INDEX:x,y,size`. */
export function parsePatchQuery(value: string): { image: number; x: number; y: number; size: number } {
  const m = /^\s*(\d+)\s*:\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*$/.exec(value);
  if (!m || Number(m[4]) === 0) throw flagError('--query', "INDEX:X,Y,SIZE (the query image's index in --dataset, then the patch's top-left corner and side in pixels)", value);
  return { image: Number(m[1]), x: Number(m[2]), y: Number(m[3]), size: Number(m[4]) };
}

export function register(program: Command): void {
  program
    .command('patch-knn')
    .description("a query patch's nearest patches from other images of a data set, framed green / red by class (the paper's Figs. 7–12)")
    .requiredOption('--checkpoint <file>', 'solo-learn .ckpt, torchvision .pth or torch-ssl checkpoint')
    .requiredOption('--dataset <path>', 'uint8 .npy (+ labels), CIFAR-10/100 binary folder, IDX file or folder, or image folder')
    .requiredOption('--query <index:x,y,size>', 'the query: image index in --dataset, top-left corner and side of the patch in pixels')
    .requiredOption('--out <file>', 'the PNG to write')
    .option('--k <n>', 'neighbours shown', '119')
    .option('--space <space>', 'embedding | projection | both (side by side)', 'embedding')
    .option('--stride <n>', 'pixels between the bank\'s grid patches (default: size / 2)')
    .option('--resize <n>', "side each patch is resized to for the model (default: the checkpoint's training crop, else 32 / 224)")
    .option('--limit <n>', 'the first N images of --dataset form the bank')
    .option('--memory-mb <n>', 'memory the patch bank may take (MiB)', '512')
    .option('--split <split>', 'CIFAR and IDX folders: train | test', 'train')
    .option('--size <n>', 'image folders and IDX files: bring images to N×N')
    .option('--normalize <stats>', "cifar10 | cifar100 | imagenet | fashion-mnist | … | none | 'm1,m2,m3/s1,s2,s3' (default: the checkpoint's)")
    .option('--tile <n>', 'side of each grid tile in pixels (default: max(48, 2 × size))')
    .option('--json', 'print a JSON summary (neighbours included) as the last stdout line')
    .action(async (o: Record<string, string | boolean | undefined>) => {
      const space = o.space as string;
      if (space !== 'embedding' && space !== 'projection' && space !== 'both') throw flagError('--space', 'embedding | projection | both', space);
      const split = o.split as string;
      if (split !== 'train' && split !== 'test') throw flagError('--split', 'train | test', split);
      const query = parsePatchQuery(o.query as string);
      const k = positive('--k', o.k as string);
      const memoryMb = oneNumber('--memory-mb', o.memoryMb as string, false, (n) => n > 0, 'a positive number');
      const opt = (flag: string, key: string) => (o[key] === undefined ? undefined : positive(flag, o[key] as string));
      const stride = opt('--stride', 'stride');
      const resize = opt('--resize', 'resize');
      const limit = opt('--limit', 'limit');
      const size = opt('--size', 'size');
      const tile = opt('--tile', 'tile');
      const out = await outputFile('--out', o.out as string);
      await inputFile('--checkpoint', o.checkpoint as string);
      const source = await openImageSource({ path: o.dataset as string, split, ...(size !== undefined && { size }) });
      const model = await loadFeatureModel(o.checkpoint as string, { projector: space !== 'embedding' });
      const bar = progressBar('patch bank (images embedded)');
      try {
        const r = await withInterrupt((signal) =>
          patchKnn(model, source, {
            query,
            k,
            space,
            memoryMb,
            signal,
            onProgress: (p) => bar.update(p.done, p.total),
            ...(stride !== undefined && { stride }),
            ...(resize !== undefined && { resize }),
            ...(limit !== undefined && { limit }),
            ...(tile !== undefined && { tile }),
            ...(o.normalize !== undefined && { normalize: parseNormalize(o.normalize as string) }),
          }),
        );
        bar.finish();
        await writeFileAtomically(out, r.png);
        const cls = (l: number | null) => (l === null ? 'unlabelled' : source.classes?.[l] ?? `class ${l}`);
        console.log(`bank: ${r.bank.patches} patches (${r.bank.images} images × ${r.bank.patchesPerImage}, stride ${r.bank.stride}, resized to ${r.bank.resize}), ${(r.bank.bytes / 2 ** 20).toFixed(1)} MiB`);
        console.log(`query: image ${query.image} (${cls(r.query.label)}), x ${query.x}, y ${query.y}, size ${query.size}`);
        for (const res of r.results) {
          const share = res.sameClassShare === null ? 'no labels' : `${(100 * res.sameClassShare).toFixed(1)} % of ${res.neighbours.length} neighbours share the query's class`;
          console.log(`${res.space}: ${share}; similarity ${res.neighbours[0]?.similarity.toFixed(4)} … ${res.neighbours.at(-1)?.similarity.toFixed(4)}`);
        }
        console.log(`wrote ${out}`);
        if (o.json) console.log(JSON.stringify({ out, query: r.query, bank: r.bank, results: r.results }));
      } finally {
        bar.finish();
        await source.close();
        model.dispose();
      }
    });
}
