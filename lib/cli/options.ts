/**
 * The options several commands share, each defined once (see cli-option.ts), with what the CLI does with
 * their values: the checkpoint a backbone is loaded from, the normalisation, the feature files of knn / linear.
 */
import { loadCheckpoint } from '../checkpoint/load.js';
import type { FeatureModel, NormalizeOption } from '../features.js';
import { option, switchOption, type CliOption, type ParsedOptions } from './cli-option.js';
import { oneOf, positiveInt, readFeatureFiles } from './flags.js';

/** `--checkpoint`: extract, heatmap and patch-knn read a backbone (and projector) from it. */
export const CHECKPOINT = option('--checkpoint <file>', 'solo-learn .ckpt, torchvision .pth or torch-ssl checkpoint', { required: true });

/** The one place the CLI turns a checkpoint path into a backbone (+ projector) with its dataset facts. */
export async function loadFeatureModel(path: string, opts: { device?: string; projector: boolean }): Promise<FeatureModel & { dispose(): void }> {
  const ck = await loadCheckpoint(path, { device: opts.device ?? 'cpu', heads: opts.projector });
  return { backbone: ck.backbone, projector: ck.projector, info: ck.info, dispose: () => ck.dispose() };
}

/** `--normalize`: a statistics name, `none`, or `m1,m2,m3/s1,s2,s3`. */
export function parseNormalize(value: string): NormalizeOption {
  if (value.includes('/')) {
    const [m, s] = value.split('/') as [string, string];
    const nums = (x: string) => x.split(',').map(Number);
    return { mean: nums(m) as [number, number, number], std: nums(s) as [number, number, number] };
  }
  return value as NormalizeOption;
}

/** `--normalize` of the picture commands (extract lists its own names). */
export const NORMALIZE = option(
  '--normalize <stats>',
  "cifar10 | cifar100 | imagenet | fashion-mnist | … | none | 'm1,m2,m3/s1,s2,s3' (default: the checkpoint's)",
  { parse: (_flag, value) => parseNormalize(value) },
);

/** `--split` of CIFAR and IDX folders. */
export const SPLIT = option('--split <split>', 'CIFAR and IDX folders: train | test', {
  default: 'train',
  parse: (flag, value) => oneOf(flag, value, ['train', 'test'] as const),
});

/** The picture commands' feature spaces: the backbone's, the projector's, or both side by side. */
export const PICTURE_SPACE = option('--space <space>', 'embedding | projection | both (side by side)', {
  default: 'embedding',
  parse: (flag, value) => oneOf(flag, value, ['embedding', 'projection', 'both'] as const),
});

/** `--resize` of the picture commands: the side a patch is brought to before the model sees it. */
export const PATCH_RESIZE = option('--resize <n>', "side each patch is resized to for the model (default: the checkpoint's training crop, else 32 / 224)", {
  parse: positiveInt,
});

/** `--out` of the picture commands. */
export const OUT_PNG = option('--out <file>', 'the PNG to write', { required: true });

/** `--json` of the commands that print a JSON summary last. */
export const JSON_SUMMARY = switchOption('--json', 'print a JSON summary as the last stdout line');

/** `knn` and `linear`: what they print last with `--json`. */
export const JSON_TOP1_TOP5 = switchOption('--json', 'print {"top1":…,"top5":…} as the last stdout line');

const TRAIN = option('--train <file>', 'train features (N, D) .npy', { required: true });
const TRAIN_LABELS = option('--train-labels <file>', 'train labels (N,) .npy', { required: true });
const TEST = option('--test <file>', 'test features (M, D) .npy', { required: true });
const TEST_LABELS = option('--test-labels <file>', 'test labels (M,) .npy', { required: true });

/** `--train`, `--train-labels`, `--test`, `--test-labels`: the feature files of `knn` and `linear`. */
export const FEATURE_FILES: readonly CliOption<string>[] = [TRAIN, TRAIN_LABELS, TEST, TEST_LABELS];

/** The four feature files read and checked against each other (see readFeatureFiles). */
export function readFeatureFilesOf(o: ParsedOptions): ReturnType<typeof readFeatureFiles> {
  return readFeatureFiles({ train: TRAIN.read(o), trainLabels: TRAIN_LABELS.read(o), test: TEST.read(o), testLabels: TEST_LABELS.read(o) });
}
