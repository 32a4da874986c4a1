/**
 * Per-channel RGB statistics that images are normalised with, `(x / 255 - mean) / std`, in one place.
 * Values are the ones the reference code bases hard-code; each entry cites where.
 */
export interface Normalization {
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
}

export type NormalizationName = 'cifar10' | 'cifar100' | 'cifar-eval' | 'imagenet' | 'emp-ssl' | 'fashion-mnist' | 'mnist';

export const NORMALIZATIONS: Readonly<Record<NormalizationName, Normalization>> = Object.freeze({
  /** CIFAR-10 training-set statistics; solo-learn `solo/data/pretrain_dataloader.py` (pretraining). */
  cifar10: { mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] },
  /** CIFAR-100 training-set statistics; solo-learn `solo/data/pretrain_dataloader.py` (pretraining). */
  cifar100: { mean: [0.5071, 0.4865, 0.4409], std: [0.2673, 0.2564, 0.2762] },
  /**
   * What solo-learn's eval / online-val / linear / kNN loaders (`solo/data/classification_dataloader.py`)
   * use for both CIFAR-10 and CIFAR-100 (docs/features.md, Normalisation).
   */
  'cifar-eval': { mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.243, 0.261] },
  /** ImageNet statistics; torchvision's pretrained-weights transforms and solo-learn's ImageNet loaders. */
  imagenet: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
  /** EMP-SSL (`tsb0601/EMP-SSL`) normalises with mean = std = 0.5 (docs/features.md, Normalisation). */
  'emp-ssl': { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
  /**
   * Fashion-MNIST training-set pixel mean and std (0.2860, 0.3530; test/data-idx.test.ts recomputes them from
   * Debian's dataset-fashion-mnist), replicated to the three channels a gray image is copied to.
   */
  'fashion-mnist': { mean: [0.286, 0.286, 0.286], std: [0.353, 0.353, 0.353] },
  /** MNIST's (0.1307, 0.3081): the values of the PyTorch MNIST example, replicated to three channels. */
  mnist: { mean: [0.1307, 0.1307, 0.1307], std: [0.3081, 0.3081, 0.3081] },
});

export function isNormalizationName(name: unknown): name is NormalizationName {
  return typeof name === 'string' && Object.hasOwn(NORMALIZATIONS, name);
}

/** Data set names (as checkpoints' configs spell them, lower-cased) whose pretraining statistics are known. */
const DATASET_NORMALIZATION: Readonly<Record<string, NormalizationName>> = {
  cifar10: 'cifar10',
  cifar100: 'cifar100',
  imagenet: 'imagenet',
  'fashion-mnist': 'fashion-mnist',
  fashionmnist: 'fashion-mnist',
  mnist: 'mnist',
  // solo-learn normalises every non-CIFAR dataset (imagenet100, stl10, custom) with ImageNet statistics.
  imagenet100: 'imagenet',
  'imagenet-100': 'imagenet',
  stl10: 'imagenet',
  custom: 'imagenet',
};

/** The statistics a model pretrained on `dataset` expects (case-insensitive), or null when unknown. */
export function normalizationForDataset(dataset: string): Normalization | null {
  const name = DATASET_NORMALIZATION[dataset.toLowerCase()];
  return name === undefined ? null : NORMALIZATIONS[name];
}
