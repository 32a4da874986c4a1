/**
 * `torch-ssl extract`: features of every image of an input (.npy, CIFAR binary folder, image folder) from a
 * checkpoint's backbone (or projector), streamed to a float32 (N, D) .npy; labels to `--labels-out`.
 * Both files are written to temporary names and renamed: an error or Ctrl-C leaves no partial output.
 */
import type { Command } from 'commander';
import { openImageSource } from '../data/index.js';
import { TorchSslError } from '../errors.js';
import { ioFailure } from '../io.js';
import { flagError, oneOf, outputFile, positiveInt } from './flags.js';
import { rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve as resolvePath } from 'node:path';
import { extractFeatures, type ExtractResult, type PatchSpec, type Pooling } from '../features.js';
import { writeNpyFile } from '../npy.js';
import { given, option, readOptions, withOptions, type ParsedOptions } from './cli-option.js';
import { CHECKPOINT, JSON_SUMMARY, loadFeatureModel, NORMALIZE, SPLIT } from './options.js';
import { progressBar, withInterrupt } from './progress.js';

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

const INPUT = option(
  '--input <path>',
  'images: uint8 (N,H,W,3) or float32 (N,3,H,W) .npy, MNIST-style *-images-idx3-ubyte[.gz] (gray → RGB), CIFAR-10/100 binary folder, folder of IDX files, or image folder',
  { required: true },
);
const OUT = option('--out <file>', 'features .npy to write', { required: true });
const POOL = option('--pool <mode>', 'global | local (= 3,2: 512×5×5 → 2048) | none | K,S (average pool kernel K, stride S)', {
  default: 'global',
  parse: (_flag, v) => parsePool(v),
});
const PATCHES = option('--patches <size,stride>', 'bag of patches on a grid: SIZE,STRIDE (each resized to the input size, averaged per image)');
const RANDOM_PATCHES = option('--random-patches <size,count>', 'bag of COUNT patches of SIZE at random positions per image (EMP-SSL style)');
const PATCH_SEED = option('--patch-seed <n>', 'seed of the random patch positions', { default: '0' });
const SPACE = option('--space <space>', 'embedding (backbone) | projection (projector output)', {
  default: 'embedding',
  parse: (flag, v) => oneOf(flag, v, ['embedding', 'projection'] as const),
});
const BATCH_SIZE = option('--batch-size <n>', 'backbone inputs per forward pass', { default: '256', parse: positiveInt });
const SIZE = option('--size <n>', 'image folders and IDX files: bring images to N×N (default: as stored)', { parse: positiveInt });
const FIT = option('--fit <mode>', 'IDX files: pad (zero border, 28 → 32) | resize (bilinear, antialiased); default pad when --size is larger', {
  parse: (flag, v) => oneOf(flag, v, ['pad', 'resize'] as const),
});
const LIMIT = option('--limit <n>', 'the first N images of the input only', { parse: positiveInt });
const LABELS_OUT = option('--labels-out <file>', 'write the input labels (int64 .npy) when it has them');
const DEVICE = option('--device <device>', 'cpu | cuda | cuda:N', { default: 'cpu' });

const OPTIONS = [
  CHECKPOINT,
  INPUT,
  OUT,
  POOL,
  PATCHES,
  RANDOM_PATCHES,
  PATCH_SEED,
  SPACE,
  BATCH_SIZE,
  NORMALIZE.withHelp("uint8 inputs: cifar10 | cifar100 | cifar-eval | imagenet | emp-ssl | none | 'm1,m2,m3/s1,s2,s3' (default: the checkpoint's dataset)"),
  SPLIT,
  SIZE,
  FIT,
  LIMIT,
  LABELS_OUT,
  DEVICE,
  JSON_SUMMARY,
];

/** `--patches SIZE,STRIDE` or `--random-patches SIZE,COUNT` (with `--patch-seed`): at most one of them. */
function readPatches(o: ParsedOptions): PatchSpec | undefined {
  const grid = PATCHES.read(o);
  const random = RANDOM_PATCHES.read(o);
  if (grid !== undefined && random !== undefined) {
    throw new TorchSslError('ERR_INVALID_ARG', '--patches and --random-patches are two ways to choose the bag of patches: give one of them', {
      flag: '--patches',
    });
  }
  if (grid !== undefined) {
    const [size, stride] = ints('--patches', grid, 2, 'SIZE,STRIDE (two positive integers)') as [number, number];
    return { size, stride };
  }
  if (random === undefined) return undefined;
  const [size, count] = ints('--random-patches', random, 2, 'SIZE,COUNT (two positive integers)') as [number, number];
  const seedText = PATCH_SEED.read(o);
  const seed = Number(seedText);
  if (!Number.isSafeInteger(seed) || seed < 0) throw flagError('--patch-seed', 'a non-negative integer', seedText);
  return { size, count, seed };
}

export function register(program: Command): void {
  const cmd = program.command('extract').description('extract global / local-aggregated / bag-of-patch features to a float32 (N, D) .npy');
  withOptions(cmd, OPTIONS).action(async (o: ParsedOptions) => {
    const patches = readPatches(o);
    const { space, split, pooling, batchSize, device } = readOptions(o, { space: SPACE, split: SPLIT, pooling: POOL, batchSize: BATCH_SIZE, device: DEVICE });

    // Outputs are checked before any work starts; both are committed together at the end.
    const out = await outputFile('--out', OUT.read(o));
    const labelsPath = LABELS_OUT.read(o);
    const labelsOut = labelsPath === undefined ? undefined : await outputFile('--labels-out', labelsPath);
    if (labelsOut !== undefined && resolvePath(labelsOut) === resolvePath(out))
      throw new TorchSslError('ERR_INVALID_ARG', `--labels-out ${labelsOut} is the same file as --out`, { flag: '--labels-out' });
    const t0 = performance.now();
    const model = await loadFeatureModel(CHECKPOINT.read(o), { device, projector: space === 'projection' });
    const { fit, size, limit } = readOptions(o, { fit: FIT, size: SIZE, limit: LIMIT });
    const input = INPUT.read(o);
    const source = await openImageSource({ path: input, split, ...given({ size, fit, limit }) });
    const normalize = NORMALIZE.read(o);
    const bar = progressBar('extract');
    // Features stream to a staging name beside --out; it becomes --out only once --labels-out is written.
    const staging = join(dirname(out), `.${basename(out)}.pending-${process.pid}.npy`);
    try {
      if (labelsOut !== undefined && source.labels === undefined) {
        throw new TorchSslError(
          'ERR_INVALID_ARG',
          `--labels-out: --input ${input} has no labels (they come from a labels .npy beside it, an IDX labels file, a CIFAR folder or an image folder)`,
          { flag: '--labels-out' },
        );
      }
      const r = await withInterrupt((signal) =>
        extractFeatures(model, source, {
          pooling,
          space,
          batchSize,
          device,
          ...given({ patches, normalize }),
          out: staging,
          signal,
          onProgress: (p) => bar.update(p.done, p.total, `${p.imagesPerSec.toFixed(0)} img/s`),
        }),
      );
      bar.finish();
      await commitOutputs(r, staging, out, labelsOut);
      printExtract(r, out, labelsOut, (performance.now() - t0) / 1000, JSON_SUMMARY.read(o));
    } finally {
      bar.finish();
      await rm(staging, { force: true });
      await source.close();
      model.dispose();
    }
  });
}

/** Writes `--labels-out`, then moves the staged features to `--out`: both files appear, or neither. */
async function commitOutputs(r: ExtractResult, staging: string, out: string, labelsOut: string | undefined): Promise<void> {
  if (labelsOut !== undefined) {
    try {
      await writeNpyFile(labelsOut, { dtype: 'int64', shape: [r.count], data: BigInt64Array.from(r.labels!, (v) => BigInt(v)) });
    } catch (err) {
      throw ioFailure(labelsOut, `--labels-out ${labelsOut}: cannot write the labels (${writeFailure(err)}); --out ${out} was not written either`, {
        flag: '--labels-out',
        cause: err,
      });
    }
  }
  try {
    await rename(staging, out);
  } catch (err) {
    if (labelsOut !== undefined) await rm(labelsOut, { force: true });
    throw ioFailure(out, `--out ${out}: cannot move the features into place (${(err as Error).message})`, { flag: '--out', cause: err });
  }
}

function printExtract(r: ExtractResult, out: string, labelsOut: string | undefined, seconds: number, json: boolean): void {
  const norm =
    r.normalization === undefined
      ? 'as-is (float input)'
      : r.normalization === 'none'
        ? '/255 only'
        : `mean ${r.normalization.mean.join(',')} std ${r.normalization.std.join(',')}`;
  console.log(
    `wrote ${out}: float32 [${r.shape.join(', ')}] (${r.count} images, normalisation ${norm}) in ${seconds.toFixed(2)} s, ${(r.count / seconds).toFixed(1)} images/s`,
  );
  if (labelsOut !== undefined) console.log(`wrote ${labelsOut}: int64 [${r.count}]`);
  if (json) console.log(JSON.stringify({ out, shape: r.shape, count: r.count, dim: r.dim, labelsOut: labelsOut ?? null, seconds }));
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
