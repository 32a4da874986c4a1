// Unknown keys are errors that name the key and the closest valid one (issue: a misspelt key trained with
// defaults and exited 0).
import { describe, expect, it } from 'vitest';
import { resolveTrainConfig } from '../lib/train-config.js';
import { applyOverrides } from '../lib/config-overrides.js';
import { closest } from '../lib/strict-keys.js';
import { knn, knnGrid, linearProbe } from '../lib/eval.js';
import { train } from '../lib/train.js';
import { openImageSource } from '../lib/data/index.js';
import { extractFeatures } from '../lib/features.js';
import { loadCheckpoint } from '../lib/checkpoint/load.js';
import { resnet } from '../lib/models.js';
import { Tensor } from '../lib/tensor.js';
import YAML from 'yaml';

const base = { method: 'vicreg', data: { train: 'x.npy' } };

describe('strict keys', () => {
  it('suggests the closest key', () => {
    expect(closest('optimiser', ['optimizer', 'scheduler'])).toBe('optimizer');
    expect(closest('learning_rate', ['lr', 'learningRate', 'eta'])).toBe('learningRate');
    expect(closest('lrr', ['lr', 'eta', 'momentum'])).toBe('lr');
    expect(closest('learning_rate', ['lr', 'classifierLr', 'weightDecay', 'eta', 'momentum'])).toBe('lr');
    expect(closest('zzzzzz', ['lr', 'eta'])).toBeUndefined();
  });

  it('a config with an unknown key at any depth is ERR_CONFIG naming it and the closest valid key', () => {
    expect(() => resolveTrainConfig({ ...base, optimiser: { lr: 0.1 } })).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIG', message: expect.stringMatching(/config\.optimiser: unknown key; did you mean config\.optimizer\?/) }),
    );
    expect(() => resolveTrainConfig({ ...base, optimizer: { learning_rate: 0.1 } })).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIG', message: expect.stringMatching(/config\.optimizer\.learning_rate: unknown key/) }),
    );
    expect(() => resolveTrainConfig({ ...base, data: { train: 'x.npy', valLabel: 'y.npy' } })).toThrow(
      expect.objectContaining({ message: expect.stringMatching(/config\.data\.valLabel: unknown key; did you mean config\.data\.valLabels\?/) }),
    );
    expect(() => resolveTrainConfig({ ...base, augmentation: [{ size: 16, hflip: 0.5 }] })).toThrow(
      expect.objectContaining({
        message: expect.stringMatching(/config\.augmentation\[0\]\.hflip: unknown key; did you mean config\.augmentation\[0\]\.flip\?/),
      }),
    );
    // Known keys still resolve, with presets.
    expect(resolveTrainConfig({ ...base, optimizer: { lr: 0.1 } }).optimizer.lr).toBe(0.1);
    expect(resolveTrainConfig({ ...base, preset: 'solo-cifar-vicreg' }).epochs).toBe(1000);
  });

  it('--set with an unknown key quotes the --set the user typed', () => {
    expect(() => applyOverrides(base, ['optimizer.lrr=0.1'], (s) => YAML.parse(s))).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIG', message: '--set optimizer.lrr=0.1: unknown config key "optimizer.lrr"; did you mean optimizer.lr?' }),
    );
    expect(applyOverrides(base, ['optimizer.lr=0.1'], (s) => YAML.parse(s))).toMatchObject({ optimizer: { lr: 0.1 } });
  });

  it('library functions refuse option keys they do not have (plain JS callers)', async () => {
    const net = resnet({ depth: 18, stem: 'cifar' });
    const x = Tensor.from(new Float32Array(2 * 3 * 32 * 32), [2, 3, 32, 32]);
    await expect(extractFeatures(net, x, { pool: 'local' } as never)).rejects.toMatchObject({
      code: 'ERR_INVALID_ARG',
      message: expect.stringMatching(/extractFeatures options: unknown key "pool"; did you mean "pooling"\?/),
    });
    await expect(loadCheckpoint('nonexistent.ckpt', { strictt: false } as never)).rejects.toMatchObject({
      code: 'ERR_INVALID_ARG',
      message: expect.stringMatching(/unknown key "strictt"; did you mean "strict"\?/),
    });
    const bank = { trainFeatures: x.reshape([2, 3072]), trainLabels: [0, 1], testFeatures: x.reshape([2, 3072]), testLabels: [0, 1] };
    await expect(knn({ ...bank, temp: 0.1 } as never)).rejects.toMatchObject({
      code: 'ERR_INVALID_ARG',
      message: expect.stringMatching(/knn options: unknown key "temp"; did you mean "temperature"\?/),
    });
    await expect(knnGrid({ ...bank, k: [1, 2] } as never)).rejects.toMatchObject({
      message: expect.stringMatching(/knnGrid options: unknown key "k"; did you mean "ks"\?/),
    });
    await expect(linearProbe({ ...bank, epoch: 3 } as never)).rejects.toMatchObject({
      message: expect.stringMatching(/linearProbe options: unknown key "epoch"; did you mean "epochs"\?/),
    });
    await expect(train({ method: 'vicreg', data: { train: 'x.npy' } }, { onprogress: () => undefined } as never)).rejects.toMatchObject({
      message: expect.stringMatching(/train options: unknown key "onprogress"; did you mean "onProgress"\?/),
    });
    await expect(openImageSource({ path: 'x.npy', limt: 3 } as never)).rejects.toMatchObject({
      message: expect.stringMatching(/openImageSource options: unknown key "limt"; did you mean "limit"\?/),
    });
  });
});
