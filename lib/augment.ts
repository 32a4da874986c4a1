/**
 * Batched data augmentation for manual training loops: the same native pipeline the trainer uses
 * (torchvision semantics, solo-learn order), on uint8 (N, H, W, 3) or float (N, 3, H, W) [0, 1] images.
 */
import { invalidArg } from './errors.js';
import { native } from './native.js';
import { awaitNative, Tensor } from './tensor.js';
import { schemas, type ViewConfig } from './train-config.js';
import { toNativeView } from './train-wire.js';
import { NORMALIZATIONS, type Normalization } from './data/normalization.js';

export type { ViewConfig };

/** One augmented, normalised view (float32 (N, 3, size, size)); the same seed gives the same view. */
export async function augment(images: Tensor, view: Partial<ViewConfig> = {}, opts: { seed?: number; normalization?: Normalization } = {}): Promise<Tensor> {
  if (!(images instanceof Tensor)) throw invalidArg('images', 'a Tensor', images);
  const parsed = schemas().ViewSchema.safeParse(view);
  if (!parsed.success) throw invalidArg('view', 'a view pipeline (see docs/training.md)', JSON.stringify(view));
  const v = parsed.data;
  const norm = opts.normalization ?? NORMALIZATIONS.cifar10;
  const seed = opts.seed ?? Math.floor(Math.random() * 2 ** 31);
  const h = images.handle;
  const cfg = toNativeView(v, norm);
  return awaitNative(async () => new Tensor(await native().augmentBatch(h, cfg, seed)));
}
