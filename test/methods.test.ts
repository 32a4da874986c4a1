// The method registry and the config contract (docs/methods.md): everything per-method is derived from
// lib/methods/*.ts, the engine resolves methods by name in native/methods/registry.cc, and the native side
// takes a complete config with no defaults of its own.
import { describe, expect, it } from 'vitest';
import { LOSS_DEFAULTS } from '../lib/losses.js';
import { METHOD_REGISTRY, METHODS } from '../lib/methods/index.js';
import { PROJECTOR_PRESETS } from '../lib/models.js';
import { native } from '../lib/native.js';
import { Tensor } from '../lib/tensor.js';
import { AUGMENTATION_PRESETS, METHOD_DEFAULTS, resolveTrainConfig } from '../lib/train-config.js';
import { toNativeConfig } from '../lib/train-wire.js';
import { NORMALIZATIONS } from '../lib/data/normalization.js';

const z = (n: number, d: number, seed: number) =>
  Tensor.from(
    Float32Array.from({ length: n * d }, (_, i) => Math.sin(i * 0.37 + seed)),
    [n, d],
  );

describe('method registry', () => {
  it('derives the training defaults, presets and loss defaults from each method file', () => {
    expect(METHODS).toEqual(['vicreg', 'simclr', 'tcr', 'barlow', 'byol', 'mocov3', 'simsiam', 'dino', 'swav', 'nnclr']);
    for (const name of METHODS) {
      const m = METHOD_REGISTRY[name];
      expect(METHOD_DEFAULTS[name]).toMatchObject({
        lr: m.train.lr,
        weightDecay: m.train.weightDecay,
        views: m.views.default,
        concatViews: m.concatViews,
        loss: m.train.loss,
      });
      expect(PROJECTOR_PRESETS[name]).toMatchObject({ outputDim: m.projector.outputDim, batchNorm: m.projector.batchNorm });
      expect(AUGMENTATION_PRESETS[m.augmentation.name]).toEqual(m.augmentation.views);
      expect(LOSS_DEFAULTS[name]).toEqual(m.lossDefaults);
      expect(Object.keys(m.train.loss).sort()).toEqual(Object.keys(m.lossOptions).sort());
    }
  });

  it('the engine gets exactly the method’s options, all of them (a preset may carry several methods’)', () => {
    const c = resolveTrainConfig({ preset: 'bagssl-c1-cifar10', method: 'vicreg', data: { train: 'x.npy' } });
    const n = toNativeConfig(c, NORMALIZATIONS.cifar10, 10);
    expect(Object.keys(n.loss).sort()).toEqual(['covWeight', 'simWeight', 'varWeight']);
    const t = toNativeConfig(resolveTrainConfig({ method: 'tcr', data: { train: 'x.npy' }, loss: { lambda: 12 } }), NORMALIZATIONS.cifar10, 0);
    expect(t.loss).toEqual({ eps: 0.2, lambda: 12 });
    expect(t.gradScaler).toBeNull();
    expect(t.views[0]).toMatchObject({ interpolation: 'bilinear', scaleMin: 0.25, mean: [...NORMALIZATIONS.cifar10.mean] });
  });

  it('native methods refuse a missing or unknown option and an unknown name with ERR_CONFIG naming it', async () => {
    const [a, b] = [z(8, 4, 1), z(8, 4, 2)];
    // Resolved before any work is queued: the call throws at once.
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return `${(e as { code?: string }).code}: ${(e as Error).message}`;
      }
      return 'no error';
    };
    expect(code(() => native().computeLoss('vicreg', [a.handle, b.handle], { simWeight: 25, varWeight: 25 }))).toContain(
      'ERR_CONFIG: method vicreg: option covWeight is missing',
    );
    expect(code(() => native().computeLoss('vicreg', [a.handle, b.handle], { simWeight: 25, varWeight: 25, covWeight: 1, temperature: 0.1 }))).toBe(
      'ERR_CONFIG: method vicreg has no option temperature',
    );
    expect(() => native().computeLoss('deepclusterv2', [a.handle, b.handle], {})).toThrow(
      /unknown method deepclusterv2 \(known: vicreg, simclr, tcr, barlow, byol, mocov3, simsiam, dino, swav, nnclr\)/,
    );
    // A method whose loss needs predictions, a teacher, prototypes or a queue has no loss on projections alone.
    await expect(native().computeLoss('byol', [a.handle, b.handle], { baseTau: 0.99, finalTau: 1 })).rejects.toThrow(
      /method byol: its loss needs more than projections/,
    );
    await expect(native().computeLoss('nnclr', [a.handle, b.handle], { temperature: 0.2, queueSize: 64 })).rejects.toThrow(
      /method nnclr: its loss needs more than projections/,
    );
    const r = await native().computeLoss('vicreg', [a.handle, b.handle], { simWeight: 25, varWeight: 25, covWeight: 1 });
    expect(Object.keys(r.terms)).toEqual(['sim', 'var', 'cov']);
    new Tensor(r.loss).dispose();
    a.dispose();
    b.dispose();
  });

  it('an option given as undefined keeps its default (it is not sent to the engine as missing)', async () => {
    const { losses } = await import('../lib/losses.js');
    const zs = Tensor.from(
      Float32Array.from({ length: 2 * 8 * 4 }, (_, i) => Math.cos(i * 0.7)),
      [2, 8, 4],
    );
    const a = await losses.simclr(zs, { temperature: undefined });
    const b = await losses.simclr(zs, {});
    expect(a.item()).toBe(b.item());
    a.dispose();
    b.dispose();
    zs.dispose();
  });

  it('the training binding requires every config field: a missing one is ERR_INVALID_ARG naming it', () => {
    const c = resolveTrainConfig({ method: 'vicreg', data: { train: 'x.npy' } });
    const full = toNativeConfig(c, NORMALIZATIONS.cifar10, 0) as unknown as Record<string, unknown>;
    const images = Tensor.from(new Uint8Array(4 * 8 * 8 * 3), [4, 8, 8, 3], { dtype: 'uint8' });
    for (const key of ['lr', 'epochs', 'precision', 'evalMean']) {
      const { [key]: _gone, ...partial } = full;
      expect(() => native().startTraining(partial as never, { images: images.handle }, null, () => {}), key).toThrow(
        new RegExp(`config\\.${key}: expected .*missing`),
      );
    }
    const { ratioMin: _r, ...view } = (full.views as Record<string, unknown>[])[0]!;
    expect(() => native().startTraining({ ...full, views: [view] } as never, { images: images.handle }, null, () => {})).toThrow(
      /view\.ratioMin: expected a number, but it is missing/,
    );
    images.dispose();
  });
});
