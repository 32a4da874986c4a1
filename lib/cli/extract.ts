/**
 * `torch-ssl extract`: features of every image of an input (.npy, CIFAR binary folder, image folder) from a
 * checkpoint's backbone (or projector), streamed to a float32 (N, D) .npy; labels to `--labels-out`.
 * Both files are written to temporary names and renamed: an error or Ctrl-C leaves no partial output.
 */
import type { Command } from 'commander';
import { loadCheckpoint } from '../checkpoint/load.js';
import { openImageSource } from '../data/index.js';
import { TorchSslError } from '../errors.js';
import { flagError, oneNumber, outputFile } from './flags.js';
import { rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve as resolvePath } from 'node:path';
import { extractFeatures, type FeatureModel, type NormalizeOption, type PatchSpec, type Pooling } from '../features.js';
import { writeNpyFile } from '../npy.js';
import { progressBar, withInterrupt } from './progress.js';

/** The one place the CLI turns a checkpoint path into a backbone (+ projector) with its dataset facts. */
export async function loadFeatureModel(path: string, opts: { device?: string; projector: boolean }): Promise<FeatureModel & { dispose(): void }> {
  const ck = await loadCheckpoint(path, { device: opts.device ?? 'cpu', heads: opts.projector });
  return { backbone: ck.backbone, projector: ck.projector, info: ck.info, dispose: () => ck.dispose() };
}

function ints(flag: string, value: string, count: number, what: string): number[] {
  const parts = value.split(',').map((s) => Number(s.trim()));
  if (parts.length !== count || !parts.every((n) => Number.isSafeInteger(n) && n > 0)) throw flagError(flag, what, value);
  return parts;
}

export function parsePool(value: string): Pooling {
  if (value === 'global' || value === 'local' || value === 'none') return value;
  const [kernel, stride] = ints('--pool', value, 2, 'global | local | none | K,S (average-pool kernel K, stride S)') as [number, number];
  return { kernel, stride };
}

export function parseNormalize(value: string): NormalizeOption {
  // "m1,m2,m3/s1,s2,s3" or a name.
  if (value.includes('/')) {
    const [m, s] = value.split('/') as [string, string];
    const nums = (x: string) => x.split(',').map(Number);
    return { mean: nums(m) as [number, number, number], std: nums(s) as [number, number, number] };
  }
  return value as NormalizeOption;
}

function positive(flag: string, value: string): number {
  return oneNumber(flag, value, true, (n) => n > 0, 'a positive integer');
}

export function register(program: Command): void {
  program
    .command('extract')
    .description('extract global / local-aggregated / bag-of-patch features to a float32 (N, D) .npy')
    .requiredOption('--checkpoint <file>', 'solo-learn .ckpt, torchvision .pth or torch-ssl checkpoint')
    .requiredOption('--input <path>', 'images: uint8 (N,H,W,3) or float32 (N,3,H,W) .npy, MNIST-style *-images-idx3-ubyte[.gz] (gray → RGB), CIFAR-10/100 binary folder, folder of IDX files, or image folder')
    .requiredOption('--out <file>', 'features .npy to write')
    .option('--pool <mode>', "global | local (= 3,2: 512×5×5 → 2048) | none | K,S (average pool kernel K, stride S)", 'global')
    .option('--patches <size,stride>', 'bag of patches on a grid: SIZE,STRIDE (each resized to the input size, averaged per image)')
    .option('--random-patches <size,count>', 'bag of COUNT patches of SIZE at random positions per image (EMP-SSL style)')
    .option('--patch-seed <n>', 'seed of the random patch positions', '0')
    .option('--space <space>', 'embedding (backbone) | projection (projector output)', 'embedding')
    .option('--batch-size <n>', 'backbone inputs per forward pass', '256')
    .option('--normalize <stats>', "uint8 inputs: cifar10 | cifar100 | cifar-eval | imagenet | emp-ssl | none | 'm1,m2,m3/s1,s2,s3' (default: the checkpoint's dataset)")
    .option('--split <split>', 'CIFAR and IDX folders: train | test', 'train')
    .option('--size <n>', 'image folders and IDX files: bring images to N×N (default: as stored)')
    .option('--fit <mode>', 'IDX files: pad (zero border, 28 → 32) | resize (bilinear, antialiased); default pad when --size is larger')
    .option('--limit <n>', 'the first N images of the input only')
    .option('--labels-out <file>', 'write the input labels (int64 .npy) when it has them')
    .option('--device <device>', 'cpu | cuda | cuda:N', 'cpu')
    .option('--json', 'print a JSON summary as the last stdout line')
    .action(async (o: Record<string, string | boolean | undefined>) => {
      const patchesGrid = o.patches as string | undefined;
      const patchesRandom = o.randomPatches as string | undefined;
      if (patchesGrid !== undefined && patchesRandom !== undefined) {
        throw new TorchSslError('ERR_INVALID_ARG', '--patches and --random-patches are two ways to choose the bag of patches: give one of them', { flag: '--patches' });
      }
      let patches: PatchSpec | undefined;
      if (patchesGrid !== undefined) {
        const [size, stride] = ints('--patches', patchesGrid, 2, 'SIZE,STRIDE (two positive integers)') as [number, number];
        patches = { size, stride };
      } else if (patchesRandom !== undefined) {
        const [size, count] = ints('--random-patches', patchesRandom, 2, 'SIZE,COUNT (two positive integers)') as [number, number];
        const seed = Number(o.patchSeed);
        if (!Number.isSafeInteger(seed) || seed < 0) throw flagError('--patch-seed', 'a non-negative integer', o.patchSeed);
        patches = { size, count, seed };
      }
      const space = o.space as string;
      if (space !== 'embedding' && space !== 'projection') throw flagError('--space', 'embedding | projection', space);
      const split = o.split as string;
      if (split !== 'train' && split !== 'test') throw flagError('--split', 'train | test', split);
      const pooling = parsePool(o.pool as string);
      const batchSize = positive('--batch-size', o.batchSize as string);
      const device = o.device as string;

      // Outputs are checked before any work starts; both are committed together at the end.
      const out = await outputFile('--out', o.out as string);
      const labelsOut = o.labelsOut === undefined ? undefined : await outputFile('--labels-out', o.labelsOut as string);
      if (labelsOut !== undefined && resolvePath(labelsOut) === resolvePath(out)) throw new TorchSslError('ERR_INVALID_ARG', `--labels-out ${labelsOut} is the same file as --out`, { flag: '--labels-out' });
      const t0 = performance.now();
      const model = await loadFeatureModel(o.checkpoint as string, { device, projector: space === 'projection' });
      const fit = o.fit as string | undefined;
      if (fit !== undefined && fit !== 'pad' && fit !== 'resize') throw flagError('--fit', 'pad | resize', fit);
      const size = o.size === undefined ? undefined : positive('--size', o.size as string);
      const limit = o.limit === undefined ? undefined : positive('--limit', o.limit as string);
      const source = await openImageSource({ path: o.input as string, split, ...(size !== undefined && { size }), ...(fit !== undefined && { fit }), ...(limit !== undefined && { limit }) });
      const bar = progressBar('extract');
      // Features stream to a staging name beside --out; it becomes --out only once --labels-out is written.
      const staging = join(dirname(out), `.${basename(out)}.pending-${process.pid}.npy`);
      try {
        if (labelsOut !== undefined && source.labels === undefined) {
          throw new TorchSslError('ERR_INVALID_ARG', `--labels-out: --input ${String(o.input)} has no labels (they come from a labels .npy beside it, an IDX labels file, a CIFAR folder or an image folder)`, { flag: '--labels-out' });
        }
        const r = await withInterrupt((signal) =>
          extractFeatures(model, source, {
            pooling,
            space,
            ...(patches !== undefined && { patches }),
            batchSize,
            device,
            ...(o.normalize !== undefined && { normalize: parseNormalize(o.normalize as string) }),
            out: staging,
            signal,
            onProgress: (p) => bar.update(p.done, p.total, `${p.imagesPerSec.toFixed(0)} img/s`),
          }),
        );
        bar.finish();
        if (labelsOut !== undefined) {
          try {
            await writeNpyFile(labelsOut, { dtype: 'int64', shape: [r.count], data: BigInt64Array.from(r.labels!, (v) => BigInt(v)) });
          } catch (err) {
            throw new TorchSslError('ERR_IO', `--labels-out ${labelsOut}: cannot write the labels (${writeFailure(err)}); --out ${out} was not written either`, { file: labelsOut, flag: '--labels-out' });
          }
        }
        try {
          await rename(staging, out);
        } catch (err) {
          if (labelsOut !== undefined) await rm(labelsOut, { force: true });
          throw new TorchSslError('ERR_IO', `--out ${out}: cannot move the features into place (${(err as Error).message})`, { file: out, flag: '--out' });
        }
        const seconds = (performance.now() - t0) / 1000;
        const norm = r.normalization === undefined ? 'as-is (float input)' : r.normalization === 'none' ? '/255 only' : `mean ${r.normalization.mean.join(',')} std ${r.normalization.std.join(',')}`;
        console.log(`wrote ${out}: float32 [${r.shape.join(', ')}] (${r.count} images, normalisation ${norm}) in ${seconds.toFixed(2)} s, ${(r.count / seconds).toFixed(1)} images/s`);
        if (labelsOut !== undefined) console.log(`wrote ${labelsOut}: int64 [${r.count}]`);
        if (o.json) console.log(JSON.stringify({ out, shape: r.shape, count: r.count, dim: r.dim, labelsOut: labelsOut ?? null, seconds }));
      } finally {
        bar.finish();
        await rm(staging, { force: true });
        await source.close();
        model.dispose();
      }
    });
}

/** Why a write failed, in a person's words (the errno when there is one). */
function writeFailure(err: unknown): string {
  const errno = err instanceof TorchSslError ? (err.details?.errno as string | undefined) : (err as NodeJS.ErrnoException).code;
  switch (errno) {
    case 'EISDIR':
      return 'a folder of that name is in the way';
    case 'ENOSPC':
      return 'the disk is full';
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return 'permission denied';
    case 'ENOENT':
      return 'its folder no longer exists';
    default:
      return (err as Error).message;
  }
}
