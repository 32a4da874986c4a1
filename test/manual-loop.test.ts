import { describe, expect, it } from 'vitest';
import { augment } from '../lib/augment.js';
import { losses } from '../lib/losses.js';
import { projector, resnet } from '../lib/models.js';
import { LARS, warmupCosine } from '../lib/optim.js';
import { manualSeed } from '../lib/native.js';
import { readNpy } from '../lib/tensor.js';
import { join } from 'node:path';
import { datasets } from './helpers/datasets.js';

describe('projector heads', () => {
  it("use solo-learn's names and layouts per method", () => {
    const names = (p: ReturnType<typeof projector>) => Object.keys(p.stateDict());
    const v = projector({ inputDim: 512, preset: 'vicreg' });
    expect(names(v).filter((n) => n.endsWith('weight'))).toEqual(['0.weight', '1.weight', '3.weight', '4.weight', '6.weight']);
    expect(names(v)).toContain('4.running_var');
    expect(v.parameterCount()).toBe(512 * 2048 + 2048 + 2 * 2048 + 2048 * 2048 + 2048 + 2 * 2048 + 2048 * 2048 + 2048);
    const s = projector({ inputDim: 512, preset: 'simclr' });
    expect(names(s)).toEqual(['0.weight', '0.bias', '2.weight', '2.bias']);
    expect(s.outputDim).toBe(256);
    const b = projector({ inputDim: 512, preset: 'bagssl-cifar10' });
    expect(b.hiddenDims).toEqual([4096]);
    expect(b.outputDim).toBe(128);
    expect(() => projector({ inputDim: 0 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG' }));
  });
});

describe('manual training loop', () => {
  it('a few VICReg steps with LARS and warmup-cosine on real images reduce the loss', async () => {
    manualSeed(0);
    const images = (await readNpy(join(datasets(), 'digits-train.npy'))).narrow(0, 0, 64);
    const backbone = resnet({ depth: 18, stem: 'cifar' }).train();
    const head = projector({ inputDim: backbone.featureDim, hiddenDims: [512], outputDim: 512 }).train();
    const opt = new LARS(
      [
        { params: backbone, name: 'backbone' },
        { params: head, name: 'projector' },
      ],
      { lr: 0.05, weightDecay: 1e-4 },
    );
    const lrAt = warmupCosine({ baseLr: 0.05, warmupSteps: 2, totalSteps: 50 });
    const view = { size: 16, scale: [0.5, 1] as [number, number] };
    const x1 = await augment(images, view, { seed: 1 });
    const x2 = await augment(images, view, { seed: 2 });
    expect(x1.shape).toEqual([64, 3, 16, 16]);
    const lossesSeen: number[] = [];
    for (let step = 0; step < 8; step++) {
      const z1 = await head.forward(await backbone.forward(x1));
      const z2 = await head.forward(await backbone.forward(x2));
      const loss = await losses.vicreg(z1, z2);
      lossesSeen.push(loss.item());
      opt.setLr(lrAt(step));
      await loss.backward();
      await opt.step();
      opt.zeroGrad();
    }
    expect(lossesSeen.every(Number.isFinite)).toBe(true);
    expect(Math.min(...lossesSeen.slice(-3))).toBeLessThan(lossesSeen[0]! - 1);
  });
});
