import { describe, expect, it } from 'vitest';
import { native } from '../lib/native.js';
import { Tensor } from '../lib/tensor.js';
import { fixtureArray, fixtureJson, fixtureTensor, relError } from './helpers/fixtures.js';

interface Params {
  boxes: number[][];
  brightness: number[];
  contrast: number[];
  saturation: number[];
  hue: number[];
  sigmas: number[];
  mean: number[];
  std: number[];
}
const params = fixtureJson<Params>('augment', 'params.json');

async function op(name: string, p: object = {}): Promise<Float32Array> {
  const images = await fixtureTensor('augment', 'images_u8');
  return new Tensor(native().augmentOp(name, images.handle, p as Record<string, unknown>)).toTypedArray() as Float32Array;
}
async function expectMatches(name: string, actual: Float32Array, tol = 1e-5) {
  const ref = await fixtureArray('augment', name);
  expect(relError(actual, ref.data)).toBeLessThan(tol);
}

describe('batched augmentation ops equal torchvision.transforms.functional (same parameters, real photos)', () => {
  it('resized_crop, bilinear', async () =>
    expectMatches('resizedCrop_bilinear', await op('resizedCrop', { boxes: params.boxes, size: 32, interpolation: 'bilinear' })));
  it('resized_crop, bicubic (saturated to [0, 1])', async () =>
    expectMatches('resizedCrop_bicubic', await op('resizedCrop', { boxes: params.boxes, size: 32, interpolation: 'bicubic' })));
  for (const size of [16, 8]) {
    it(`resized_crop, bicubic, to a multi-crop small crop of ${size}`, async () =>
      expectMatches(`resizedCrop_bicubic_${size}`, await op('resizedCrop', { boxes: params.boxes, size, interpolation: 'bicubic' })));
  }
  it('adjust_brightness per image', async () => expectMatches('brightness', await op('brightness', { factors: params.brightness })));
  it('adjust_contrast per image', async () => expectMatches('contrast', await op('contrast', { factors: params.contrast })));
  it('adjust_saturation per image', async () => expectMatches('saturation', await op('saturation', { factors: params.saturation })));
  it('adjust_hue per image', async () => expectMatches('hue', await op('hue', { factors: params.hue }), 1e-4));
  it('rgb_to_grayscale (3 channels)', async () => expectMatches('grayscale', await op('grayscale')));
  it('gaussian_blur per-image sigma, kernel 5', async () => expectMatches('gaussianBlur', await op('gaussianBlur', { kernel: 5, sigmas: params.sigmas })));
  it('solarize at 128/255', async () => expectMatches('solarize', await op('solarize', { threshold: 128 / 255 })));
  it('hflip', async () => expectMatches('hflip', await op('hflip')));
  it('normalize', async () => expectMatches('normalize', await op('normalize', { mean: params.mean, std: params.std })));
});

describe('sampled view pipeline', () => {
  // The complete view the engine requires (lib/train-wire.ts toNativeView fills the same fields).
  const view = {
    size: 24,
    scaleMin: 0.08,
    scaleMax: 1,
    ratioMin: 3 / 4,
    ratioMax: 4 / 3,
    jitterP: 0.8,
    brightness: 0.4,
    contrast: 0.4,
    saturation: 0.2,
    hue: 0.1,
    grayP: 0.2,
    blurP: 0.5,
    sigmaMin: 0.1,
    sigmaMax: 2,
    blurKernel: 0,
    solarizeP: 0.2,
    flipP: 0.5,
    interpolation: 'bicubic' as const,
    mean: params.mean,
    std: params.std,
  };
  it('is reproducible from its seed and differs across seeds', async () => {
    const images = await fixtureTensor('augment', 'images_u8');
    const a = new Tensor(await native().augmentBatch(images.handle, view, 42));
    const b = new Tensor(await native().augmentBatch(images.handle, view, 42));
    const c = new Tensor(await native().augmentBatch(images.handle, view, 43));
    expect(a.shape).toEqual([6, 3, 24, 24]);
    expect(a.isFinite()).toBe(true);
    expect(Array.from(a.toTypedArray() as Float32Array)).toEqual(Array.from(b.toTypedArray() as Float32Array));
    expect(relError(a.toTypedArray() as Float32Array, c.toTypedArray() as Float32Array)).toBeGreaterThan(1e-3);
  });
  it('rejects images that are not (N, H, W, 3) uint8 or (N, 3, H, W) float', async () => {
    const bad = Tensor.from(new Uint8Array(4 * 8 * 8), [4, 8, 8, 1], { dtype: 'uint8' });
    await expect(native().augmentBatch(bad.handle, view, 1)).rejects.toMatchObject({ code: 'ERR_TORCH_SHAPE' });
  });
});
