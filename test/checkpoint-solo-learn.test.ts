import { writeFileSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { inspectCheckpoint, openCheckpoint, type CheckpointInfo } from '../lib/checkpoint/solo-learn.js';
import { writeTorchFile } from '../lib/checkpoint/torch-writer.js';
import { ZipReader } from '../lib/checkpoint/zip.js';
import { ensureCheckpointFixtures, expected, sha256 } from './helpers/checkpoint-fixtures.js';
import { fixturePath } from './helpers/fixtures.js';
import { makeTmpDir } from './helpers/tmp.js';

const dir = makeTmpDir('solo');
beforeAll(() => ensureCheckpointFixtures());

const CIFAR10 = { mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] };
const CIFAR100 = { mean: [0.5071, 0.4865, 0.4409], std: [0.2673, 0.2564, 0.2762] };
const IMAGENET = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
const VICREG_HEAD = (h: number, o: number): CheckpointInfo['projector'] => [
  { index: 0, type: 'Linear', inFeatures: 512, outFeatures: h, bias: true },
  { index: 1, type: 'BatchNorm1d', numFeatures: h, affine: true },
  { index: 2, type: 'ReLU' },
  { index: 3, type: 'Linear', inFeatures: h, outFeatures: h, bias: true },
  { index: 4, type: 'BatchNorm1d', numFeatures: h, affine: true },
  { index: 5, type: 'ReLU' },
  { index: 6, type: 'Linear', inFeatures: h, outFeatures: o, bias: true },
];

/** PyTorch's per-module parameter counts, with solo-learn's legacy `encoder` reported as `backbone`. */
function torchCounts(caseName: string): Record<string, number> {
  const c = expected(caseName).parameter_counts as Record<string, number>;
  return Object.fromEntries(Object.entries(c).map(([k, v]) => [k === 'encoder' ? 'backbone' : k, v]));
}

describe('inspectCheckpoint recognises every solo-learn era', () => {
  it('a Lightning 2 checkpoint with omegaconf hyper_parameters (VICReg, CIFAR-10)', async () => {
    const info = await inspectCheckpoint(fixturePath('checkpoints', 'vicreg_omegaconf', 'vicreg-cifar10-otu5cw89-ep=999.ckpt'));
    expect(info).toMatchObject({
      format: 'solo-learn-lightning',
      era: 'hparams-omegaconf',
      method: 'vicreg',
      methodSource: 'config',
      depth: 18,
      block: 'basic',
      layers: [2, 2, 2, 2],
      stem: 'cifar',
      featureDim: 512,
      dataset: 'cifar10',
      numClasses: 10,
      normalization: CIFAR10,
      epoch: 999,
      globalStep: 195000,
      lightningVersion: '2.1.2',
      projector: VICREG_HEAD(2048, 2048),
      predictor: null,
      configSource: 'hyper_parameters',
    });
    expect(info.parameterCounts).toEqual(torchCounts('vicreg_omegaconf'));
    expect((info.config as { method_kwargs: Record<string, number> }).method_kwargs.sim_loss_weight).toBe(25);
    expect(info.keys.modules).toEqual({ backbone: 120, projector: 16, classifier: 2 });
    expect(info.keys.otherTensors).toBe(72); // the optimizer's momentum buffers, never read
    expect(info.keys.topLevel).toContain('optimizer_states');
  });

  it('a pre-Dec-2021 checkpoint with encoder.* keys and a flat args.json beside it (SimCLR, CIFAR-100)', async () => {
    const info = await inspectCheckpoint(fixturePath('checkpoints', 'simclr_legacy_encoder', 'simclr-cifar100-1a2b3c4d-ep=399.ckpt'));
    expect(info).toMatchObject({
      format: 'solo-learn-lightning',
      era: 'legacy-encoder',
      method: 'simclr',
      depth: 18,
      stem: 'cifar',
      dataset: 'cifar100',
      numClasses: 100,
      normalization: CIFAR100,
      epoch: 399,
      lightningVersion: '1.4.9',
      configSource: 'args.json',
      projector: [
        { index: 0, type: 'Linear', inFeatures: 512, outFeatures: 2048, bias: true },
        { index: 1, type: 'ReLU' },
        { index: 2, type: 'Linear', inFeatures: 2048, outFeatures: 256, bias: true },
      ],
    });
    expect(info.parameterCounts).toEqual(torchCounts('simclr_legacy_encoder'));
  });

  it('a checkpoint with hyper_parameters as a plain dict (Barlow Twins, CIFAR-100)', async () => {
    const info = await inspectCheckpoint(fixturePath('checkpoints', 'barlow_hparams_dict', 'barlow_twins-cifar100-ep=49.ckpt'));
    expect(info).toMatchObject({
      era: 'hparams-dict',
      method: 'barlow_twins',
      dataset: 'cifar100',
      normalization: CIFAR100,
      epoch: 49,
      projector: VICREG_HEAD(256, 256),
      configSource: 'hyper_parameters',
    });
    expect(info.parameterCounts).toEqual(torchCounts('barlow_hparams_dict'));
  });

  it('a modern checkpoint with channels_last weights and only args.json for its config', async () => {
    const info = await inspectCheckpoint(fixturePath('checkpoints', 'vicreg_channels_last', 'vicreg-cifar10-q9w8e7r6-ep=999.ckpt'));
    expect(info).toMatchObject({ era: 'modern-args-json', method: 'vicreg', dataset: 'cifar10', depth: 18, stem: 'cifar', configSource: 'args.json' });
    expect(info.parameterCounts).toEqual(torchCounts('vicreg_channels_last'));
  });

  it('the same checkpoint without args.json: no config, dataset guessed from stem and classes, method unknown', async () => {
    const info = await inspectCheckpoint(fixturePath('checkpoints', 'vicreg_channels_last', 'vicreg-cifar10-q9w8e7r6-ep=999.ckpt'), { argsJson: false });
    expect(info).toMatchObject({ era: 'no-config', method: null, dataset: 'cifar10', datasetSource: 'layout', normalization: CIFAR10, config: null });
    expect(info.warnings.join('\n')).toMatch(/guessed/);
  });

  it('a BYOL checkpoint: momentum backbone and projector, predictor', async () => {
    const info = await inspectCheckpoint(fixturePath('checkpoints', 'byol', 'byol-cifar10-z1x2c3v4-ep=999.ckpt'));
    expect(info).toMatchObject({
      method: 'byol',
      projector: [
        { index: 0, type: 'Linear', inFeatures: 512, outFeatures: 256, bias: true },
        { index: 1, type: 'BatchNorm1d', numFeatures: 256, affine: true },
        { index: 2, type: 'ReLU' },
        { index: 3, type: 'Linear', inFeatures: 256, outFeatures: 64, bias: true },
      ],
      predictor: [
        { index: 0, type: 'Linear', inFeatures: 64, outFeatures: 256, bias: true },
        { index: 1, type: 'BatchNorm1d', numFeatures: 256, affine: true },
        { index: 2, type: 'ReLU' },
        { index: 3, type: 'Linear', inFeatures: 256, outFeatures: 64, bias: true },
      ],
    });
    expect(info.parameterCounts).toEqual(torchCounts('byol'));
    const noCfg = await inspectCheckpoint(fixturePath('checkpoints', 'byol', 'byol-cifar10-z1x2c3v4-ep=999.ckpt'), { argsJson: false });
    expect(noCfg).toMatchObject({ method: 'byol', methodSource: 'layout' });
  });

  it('a torchvision ResNet-50: depth 50 from Bottleneck blocks [3, 4, 6, 3], ImageNet stem and statistics', async () => {
    const info = await inspectCheckpoint(fixturePath('checkpoints', 'torchvision_resnet50', 'resnet50.pth'));
    expect(info).toMatchObject({
      format: 'torchvision',
      era: null,
      depth: 50,
      block: 'bottleneck',
      layers: [3, 4, 6, 3],
      stem: 'imagenet',
      featureDim: 2048,
      numClasses: 1000,
      dataset: 'imagenet',
      normalization: IMAGENET,
    });
    expect(info.parameterCounts).toEqual(torchCounts('torchvision_resnet50'));
    expect(info.keys.topLevel).toEqual([]);
  });

  it('a legacy-format torchvision ResNet-18 and a float16 plain state dict', async () => {
    const legacy = await inspectCheckpoint(fixturePath('checkpoints', 'legacy_resnet18', 'resnet18-legacy.pth'));
    expect(legacy).toMatchObject({ format: 'torchvision', depth: 18, stem: 'imagenet' });
    const fp16 = await inspectCheckpoint(fixturePath('checkpoints', 'fp16_state_dict', 'backbone-fp16.pth'));
    expect(fp16).toMatchObject({ format: 'state-dict', depth: 18, stem: 'cifar', numClasses: null, dataset: null });
    expect(fp16.keys.dtypes).toEqual(['float16', 'int64']);
    expect(fp16.parameterCounts).toEqual(torchCounts('fp16_state_dict'));
  });

  it('reads no tensor data while inspecting a 150 MB checkpoint', async () => {
    const spy = vi.spyOn(ZipReader.prototype, 'readAt');
    await inspectCheckpoint(fixturePath('checkpoints', 'vicreg_omegaconf', 'vicreg-cifar10-otu5cw89-ep=999.ckpt'));
    const bytes = spy.mock.calls.reduce((a, c) => a + (c[1] as number), 0);
    spy.mockRestore();
    expect(bytes).toBeLessThan(1 << 20);
  });

  it('recognises the project’s own files and ResNet-34 (BasicBlock [3, 4, 6, 3])', async () => {
    const sd = new Map<string, { dtype: 'float32'; shape: number[]; data: Float32Array }>();
    const t = (...shape: number[]): { dtype: 'float32'; shape: number[]; data: Float32Array } => ({
      dtype: 'float32',
      shape,
      data: new Float32Array(shape.reduce((a, b) => a * b, 1)),
    });
    sd.set('backbone.conv1.weight', t(64, 3, 7, 7));
    [3, 4, 6, 3].forEach((n, l) => {
      const c = 64 << l;
      for (let b = 0; b < n; b++) {
        sd.set(`backbone.layer${l + 1}.${b}.conv1.weight`, t(c, c, 3, 3));
        sd.set(`backbone.layer${l + 1}.${b}.bn2.weight`, t(c));
      }
    });
    const path = join(dir, 'own.pth');
    await writeTorchFile(path, { torch_ssl_version: '0.1.0', state_dict: sd, epoch: 3 });
    expect(await inspectCheckpoint(path)).toMatchObject({ format: 'torch-ssl', depth: 34, block: 'basic', stem: 'imagenet', featureDim: 512, epoch: 3 });
  });

  it('ignores an unreadable args.json beside a checkpoint with a warning, and refuses an explicit bad one', async () => {
    const sub = makeTmpDir('solo-args');
    const ckpt = join(sub, 'x.ckpt');
    copyFileSync(fixturePath('checkpoints', 'fp16_state_dict', 'backbone-fp16.pth'), ckpt);
    writeFileSync(join(sub, 'args.json'), '{ not json');
    const info = await inspectCheckpoint(ckpt);
    expect(info.warnings.join('\n')).toMatch(/args\.json/);
    await expect(inspectCheckpoint(ckpt, { argsJson: join(sub, 'args.json') })).rejects.toMatchObject({ code: 'ERR_CHECKPOINT_FORMAT' });
  });

  it('refuses a file that holds no state dict', async () => {
    const path = join(dir, 'nothing.pth');
    await writeTorchFile(path, { epoch: 1 });
    await expect(inspectCheckpoint(path)).rejects.toMatchObject({ code: 'ERR_CHECKPOINT_FORMAT', message: expect.stringMatching(/no state dict/) });
  });
});

describe('openCheckpoint hands the loader each module with prefixes stripped', () => {
  it('strips backbone. / projector. / classifier. and reads the backbone bit-exactly (channels_last)', async () => {
    const { file, info, modules } = await openCheckpoint(fixturePath('checkpoints', 'vicreg_channels_last', 'vicreg-cifar10-q9w8e7r6-ep=999.ckpt'));
    try {
      expect(info.depth).toBe(18);
      const exp = expected('vicreg_channels_last').tensors;
      expect(modules.backbone.size).toBe(120);
      for (const [k, t] of modules.backbone) expect({ k, sha: sha256(await t.read()) }).toEqual({ k, sha: exp[`backbone.${k}`]!.sha256 });
      expect([...modules.projector.keys()]).toContain('0.weight');
      expect([...modules.classifier.keys()].sort()).toEqual(['bias', 'weight']);
    } finally {
      await file.close();
    }
  });

  it('strips the legacy encoder. prefix', async () => {
    const { file, modules } = await openCheckpoint(fixturePath('checkpoints', 'simclr_legacy_encoder', 'simclr-cifar100-1a2b3c4d-ep=399.ckpt'));
    await file.close();
    expect(modules.backbone.has('layer4.1.bn2.running_var')).toBe(true);
    expect([...modules.backbone.keys()].some((k) => k.startsWith('encoder.'))).toBe(false);
  });

  it('separates BYOL’s momentum_backbone / momentum_projector / predictor', async () => {
    const { file, modules } = await openCheckpoint(fixturePath('checkpoints', 'byol', 'byol-cifar10-z1x2c3v4-ep=999.ckpt'));
    await file.close();
    expect(modules.momentumBackbone.size).toBe(120);
    expect(modules.momentumProjector.size).toBe(9);
    expect(modules.predictor.size).toBe(9);
    expect(modules.other.size).toBe(0);
  });

  it('gives a torchvision file’s fc as the classifier and the rest as the backbone', async () => {
    const { file, modules } = await openCheckpoint(fixturePath('checkpoints', 'torchvision_resnet50', 'resnet50.pth'));
    await file.close();
    expect(modules.classifier.get('weight')!.shape).toEqual([1000, 2048]);
    expect(modules.backbone.has('fc.weight')).toBe(false);
    expect(modules.backbone.has('layer4.2.conv3.weight')).toBe(true);
  });
});
