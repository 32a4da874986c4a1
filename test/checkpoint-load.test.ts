import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { loadCheckpoint, type LoadedCheckpoint } from '../lib/checkpoint/load.js';
import { exportCheckpoint } from '../lib/checkpoint/export.js';
import type { TensorRef as TensorRefType } from '../lib/checkpoint/tensor-ref.js';
import { TorchSslError } from '../lib/errors.js';
import { resnet } from '../lib/models.js';
import { Tensor } from '../lib/tensor.js';
import { ensureCheckpointFixtures, python } from './helpers/checkpoint-fixtures.js';
import { fixtureArray, fixturePath, fixtureTensor, relError } from './helpers/fixtures.js';
import { makeTmpDir } from './helpers/tmp.js';

const dir = makeTmpDir('load');
beforeAll(() => ensureCheckpointFixtures());

interface Case {
  name: string;
  file: string;
  what: string;
  expect: { format: string; depth: number; stem: string; projector: boolean; classifier: number | null };
}

const CASES: Case[] = [
  {
    name: 'vicreg_omegaconf',
    file: 'vicreg-cifar10-otu5cw89-ep=999.ckpt',
    what: 'a Lightning 2 VICReg checkpoint with omegaconf hyper_parameters and optimizer momentum buffers',
    expect: { format: 'solo-learn-lightning', depth: 18, stem: 'cifar', projector: true, classifier: 10 },
  },
  {
    name: 'simclr_legacy_encoder',
    file: 'simclr-cifar100-1a2b3c4d-ep=399.ckpt',
    what: 'a pre-Dec-2021 SimCLR checkpoint with legacy encoder.* keys (no BN in the projector)',
    expect: { format: 'solo-learn-lightning', depth: 18, stem: 'cifar', projector: true, classifier: 100 },
  },
  {
    name: 'barlow_hparams_dict',
    file: 'barlow_twins-cifar100-ep=49.ckpt',
    what: 'a Lightning 1.5 Barlow Twins checkpoint with hyper_parameters as a plain dict',
    expect: { format: 'solo-learn-lightning', depth: 18, stem: 'cifar', projector: true, classifier: 100 },
  },
  {
    name: 'vicreg_channels_last',
    file: 'vicreg-cifar10-q9w8e7r6-ep=999.ckpt',
    what: 'a modern solo-learn checkpoint whose conv weights are channels_last, config in args.json',
    expect: { format: 'solo-learn-lightning', depth: 18, stem: 'cifar', projector: true, classifier: 10 },
  },
  {
    name: 'byol',
    file: 'byol-cifar10-z1x2c3v4-ep=999.ckpt',
    what: 'a BYOL checkpoint (momentum_backbone, momentum_projector, predictor are not loaded)',
    expect: { format: 'solo-learn-lightning', depth: 18, stem: 'cifar', projector: true, classifier: 10 },
  },
  {
    name: 'fp16_state_dict',
    file: 'backbone-fp16.pth',
    what: 'a float16 plain state dict of a CIFAR ResNet-18',
    expect: { format: 'state-dict', depth: 18, stem: 'cifar', projector: false, classifier: null },
  },
  {
    name: 'torchvision_resnet50',
    file: 'resnet50.pth',
    what: 'a torchvision ResNet-50 .pth (fc becomes the classifier)',
    expect: { format: 'torchvision', depth: 50, stem: 'imagenet', projector: false, classifier: 1000 },
  },
  {
    name: 'legacy_resnet18',
    file: 'resnet18-legacy.pth',
    what: 'a legacy-format (pre-1.6 torch.save) torchvision ResNet-18',
    expect: { format: 'torchvision', depth: 18, stem: 'imagenet', projector: false, classifier: 1000 },
  },
  {
    name: 'torch_ssl_own',
    file: 'resnet34-simclr.pth',
    what: "the project's own format written by PyTorch (ImageNet-stem ResNet-34, SimCLR head)",
    expect: { format: 'torch-ssl', depth: 34, stem: 'imagenet', projector: true, classifier: 100 },
  },
];

// Where CUDA is available the missing-device case cannot happen: the test says so as skipped.
const cudaAvailable = (await import('../lib/native.js')).cuda.isAvailable();

const f32 = (t: Tensor): Float32Array => t.toTypedArray() as Float32Array;

/**
 * The loaded models' outputs on the case's fixed input equal PyTorch's within 1e-4 of scale: the backbone's
 * always, the projector's and the classifier's where the checkpoint has them (their reference fixtures must
 * then exist: a missing one fails the test).
 */
async function expectPyTorchFeatures(loaded: LoadedCheckpoint, caseName: string, heads: { projector: boolean; classifier: boolean }): Promise<void> {
  const x = await fixtureTensor('checkpoints', caseName, 'features', 'input');
  const pooled = await loaded.backbone.forward(x, { grad: false });
  const ref = await fixtureArray('checkpoints', caseName, 'features', 'pooled');
  expect(pooled.shape).toEqual(ref.shape);
  expect(relError(f32(pooled), ref.data)).toBeLessThan(1e-4);
  expect(loaded.projector !== undefined, 'projector loaded').toBe(heads.projector);
  expect(loaded.classifier !== undefined, 'classifier loaded').toBe(heads.classifier);
  if (heads.projector) {
    const z = await loaded.projector!.forward(pooled, { grad: false });
    const refZ = await fixtureArray('checkpoints', caseName, 'features', 'projected');
    expect(z.shape).toEqual(refZ.shape);
    expect(relError(f32(z), refZ.data)).toBeLessThan(1e-4);
  }
  if (heads.classifier) {
    const logits = loaded.classifier!.forward(pooled);
    const refL = await fixtureArray('checkpoints', caseName, 'features', 'logits');
    expect(logits.shape).toEqual(refL.shape);
    expect(relError(f32(logits), refL.data)).toBeLessThan(1e-4);
  }
}

describe('loadCheckpoint: features equal PyTorch for every era', () => {
  for (const c of CASES) {
    it(`loads ${c.what}`, async () => {
      const loaded = await loadCheckpoint(fixturePath('checkpoints', c.name, c.file));
      try {
        expect(loaded.info.format).toBe(c.expect.format);
        expect(loaded.backbone.depth).toBe(c.expect.depth);
        expect(loaded.backbone.stem).toBe(c.expect.stem);
        expect(loaded.backbone.training).toBe(false);
        expect(loaded.projector !== undefined).toBe(c.expect.projector);
        expect(loaded.classifier?.outFeatures ?? null).toBe(c.expect.classifier);
        await expectPyTorchFeatures(loaded, c.name, { projector: c.expect.projector, classifier: c.expect.classifier !== null });
      } finally {
        loaded.dispose();
      }
    });
  }

  it('builds projectors from their shapes: BN presence, widths, depth', async () => {
    const vic = await loadCheckpoint(fixturePath('checkpoints', 'vicreg_channels_last', 'vicreg-cifar10-q9w8e7r6-ep=999.ckpt'));
    expect([vic.projector!.hiddenDims, vic.projector!.outputDim, vic.projector!.batchNorm]).toEqual([[512, 512], 512, true]);
    vic.dispose();
    const sim = await loadCheckpoint(fixturePath('checkpoints', 'simclr_legacy_encoder', 'simclr-cifar100-1a2b3c4d-ep=399.ckpt'));
    expect([sim.projector!.hiddenDims, sim.projector!.outputDim, sim.projector!.batchNorm]).toEqual([[2048], 256, false]);
    sim.dispose();
    const byol = await loadCheckpoint(fixturePath('checkpoints', 'byol', 'byol-cifar10-z1x2c3v4-ep=999.ckpt'));
    expect([byol.projector!.hiddenDims, byol.projector!.outputDim, byol.projector!.batchNorm]).toEqual([[256], 64, true]);
    expect(byol.ignored).toEqual(['momentum_backbone (120 tensors)', 'momentum_projector (9 tensors)', 'predictor (9 tensors)']);
    expect(byol.info.warnings.join('\n')).toContain('not loaded: momentum_backbone');
    byol.dispose();
  });

  it('converts float16 weights to float32', async () => {
    const loaded = await loadCheckpoint(fixturePath('checkpoints', 'fp16_state_dict', 'backbone-fp16.pth'));
    const sd = loaded.backbone.stateDict();
    expect(sd['conv1.weight']!.dtype).toBe('float32');
    expect(sd['bn1.num_batches_tracked']!.dtype).toBe('int64');
    loaded.dispose();
  });

  it('reads no tensor outside the loaded modules (optimizer state stays on disk)', async () => {
    const { TensorRef } = await import('../lib/checkpoint/tensor-ref.js');
    const seen: number[] = [];
    const spies = (['read', 'readPhysical'] as const).map((m) => {
      const orig = TensorRef.prototype[m] as (this: TensorRefType) => Promise<unknown>;
      const spy = vi.spyOn(TensorRef.prototype, m).mockImplementation(function (this: TensorRefType) {
        seen.push(this.numel);
        return orig.call(this) as never;
      });
      return spy;
    });
    try {
      const loaded = await loadCheckpoint(fixturePath('checkpoints', 'vicreg_omegaconf', 'vicreg-cifar10-otu5cw89-ep=999.ckpt'), { heads: false });
      const params = Object.values(loaded.backbone.stateDict()).reduce((a, t) => a + t.numel, 0);
      expect(seen.reduce((a, b) => a + b, 0)).toBe(params);
      expect(loaded.projector).toBeUndefined();
      expect(loaded.ignored).toEqual(expect.arrayContaining(['projector (16 tensors)', 'classifier (2 tensors)']));
      loaded.dispose();
    } finally {
      for (const s of spies) s.mockRestore();
    }
  });

  it('reads channels_last weights in storage order and matches the strided read', async () => {
    const { openAnyCheckpoint } = await import('../lib/checkpoint/load.js');
    const o = await openAnyCheckpoint(fixturePath('checkpoints', 'vicreg_channels_last', 'vicreg-cifar10-q9w8e7r6-ep=999.ckpt'));
    try {
      const ref = o.modules.backbone.get('layer1.0.conv1.weight')!;
      expect(ref.isContiguous).toBe(false);
      const p = (await ref.readPhysical())!;
      expect(p.physicalShape).toEqual([64, 3, 3, 64]);
      expect(p.dims).toEqual([0, 3, 1, 2]);
      const t = Tensor.from(p.data, p.physicalShape).permute(p.dims);
      expect([...t.clone().toTypedArray()]).toEqual([...(await ref.read())]);
    } finally {
      await o.close();
    }
  });

  it('honours channelsLast and keeps the same features', async () => {
    const loaded = await loadCheckpoint(fixturePath('checkpoints', 'vicreg_channels_last', 'vicreg-cifar10-q9w8e7r6-ep=999.ckpt'), { channelsLast: true });
    await expectPyTorchFeatures(loaded, 'vicreg_channels_last', { projector: true, classifier: true });
    loaded.dispose();
  });

  it.skipIf(cudaAvailable)('device: a device this build lacks → ERR_TORCH_DEVICE, and no native tensor is left behind', async () => {
    const before = Tensor.liveCount();
    const byol = fixturePath('checkpoints', 'byol', 'byol-cifar10-z1x2c3v4-ep=999.ckpt');
    await expect(loadCheckpoint(byol, { device: 'cuda' })).rejects.toMatchObject({ code: 'ERR_TORCH_DEVICE' });
    expect(Tensor.liveCount()).toBeLessThanOrEqual(before);
  });

  it('takes args.json from an explicit path or ignores it', async () => {
    const sub = join(dir, 'no-args');
    mkdirSync(sub, { recursive: true });
    const p = join(sub, 'x.ckpt');
    copyFileSync(fixturePath('checkpoints', 'vicreg_channels_last', 'vicreg-cifar10-q9w8e7r6-ep=999.ckpt'), p);
    const without = await loadCheckpoint(p);
    expect(without.info.era).toBe('no-config');
    without.dispose();
    const withArgs = await loadCheckpoint(p, { argsJson: fixturePath('checkpoints', 'vicreg_channels_last', 'args.json') });
    expect([withArgs.info.era, withArgs.info.method, withArgs.info.dataset]).toEqual(['modern-args-json', 'vicreg', 'cifar10']);
    withArgs.dispose();
  });
});

describe('loadCheckpoint: strict keys', () => {
  async function keysError(file: string, opts = {}): Promise<TorchSslError> {
    const err = await loadCheckpoint(fixturePath('checkpoints', 'bad_keys', file), opts).then(
      (l) => {
        l.dispose();
        return null;
      },
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TorchSslError);
    return err as TorchSslError;
  }

  it('a missing key → ERR_CHECKPOINT_KEYS naming it', async () => {
    const e = await keysError('missing.pth');
    expect(e.code).toBe('ERR_CHECKPOINT_KEYS');
    expect(e.message).toContain('missing keys (1): layer2.0.bn1.running_var');
    expect(e.details).toMatchObject({ missing: ['layer2.0.bn1.running_var'], unexpected: [], mismatched: [] });
  });

  it('an unexpected key → ERR_CHECKPOINT_KEYS naming it', async () => {
    const e = await keysError('unexpected.pth');
    expect(e.code).toBe('ERR_CHECKPOINT_KEYS');
    expect(e.message).toContain('unexpected keys (1): layer4.1.conv3.weight');
  });

  it('a wrong shape → ERR_CHECKPOINT_KEYS naming the key and both shapes', async () => {
    const e = await keysError('wrong_shape.pth');
    expect(e.code).toBe('ERR_CHECKPOINT_KEYS');
    expect(e.message).toContain('layer3.1.conv2.weight: checkpoint [256, 256, 1, 1] vs model [256, 256, 3, 3]');
  });

  it('an unknown extra module in a plain state dict is unexpected', async () => {
    const e = await keysError('extra_module.pth');
    expect(e.code).toBe('ERR_CHECKPOINT_KEYS');
    expect(e.message).toContain('head.weight');
  });

  it('a solo-learn projector missing a key → named with its checkpoint prefix', async () => {
    const e = await keysError('projector_missing.ckpt');
    expect(e.code).toBe('ERR_CHECKPOINT_KEYS');
    expect(e.message).toContain('projector.4.running_mean');
  });

  it("a solo-learn checkpoint's method-specific extras (queues, other heads) are reported as not loaded", async () => {
    const { readTorchFile, tensorMap } = await import('../lib/checkpoint/torch-file.js');
    const { writeTorchFile } = await import('../lib/checkpoint/torch-writer.js');
    const src = await readTorchFile(fixturePath('checkpoints', 'fp16_state_dict', 'backbone-fp16.pth'));
    const sd = new Map<string, unknown>([...tensorMap(src.root)!].map(([k, t]) => [`backbone.${k}`, t]));
    sd.set('queue', { dtype: 'float32', shape: [2, 4], data: new Float32Array(8) });
    sd.set('dino_head.weight', { dtype: 'float32', shape: [3, 512], data: new Float32Array(1536) });
    sd.set('dino_head.bias', { dtype: 'float32', shape: [3], data: new Float32Array(3) });
    const p = join(dir, 'extras.ckpt');
    await writeTorchFile(p, { epoch: 1, global_step: 2, 'pytorch-lightning_version': '2.1.2', state_dict: sd as never });
    await src.close();
    const l = await loadCheckpoint(p);
    expect(l.ignored).toEqual(['queue', 'dino_head (2 tensors)']);
    expect(l.info.warnings).toContain('not loaded: queue, dino_head (2 tensors)');
    l.dispose();
  });

  it('strict: false loads what matches and lists the rest; shapes must still match', async () => {
    const l = await loadCheckpoint(fixturePath('checkpoints', 'bad_keys', 'missing.pth'), { strict: false });
    expect(l.missing).toEqual(['layer2.0.bn1.running_var']);
    l.dispose();
    const u = await loadCheckpoint(fixturePath('checkpoints', 'bad_keys', 'extra_module.pth'), { strict: false });
    expect(u.unexpected).toEqual(['head.weight']);
    u.dispose();
    expect((await keysError('wrong_shape.pth', { strict: false })).code).toBe('ERR_CHECKPOINT_KEYS');
  });

  it("strict: false keeps torchvision's initialisation for a missing weight (a strict load skips it: every weight is read)", async () => {
    const { readTorchFile, tensorMap } = await import('../lib/checkpoint/torch-file.js');
    const { writeTorchFile } = await import('../lib/checkpoint/torch-writer.js');
    const src = await readTorchFile(fixturePath('checkpoints', 'fp16_state_dict', 'backbone-fp16.pth'));
    const sd = new Map<string, unknown>(tensorMap(src.root)!);
    expect(sd.delete('layer1.0.conv1.weight')).toBe(true);
    const p = join(dir, 'no-layer1-conv1.pth');
    await writeTorchFile(p, sd as never);
    await src.close();
    const l = await loadCheckpoint(p, { strict: false });
    expect(l.missing).toEqual(['layer1.0.conv1.weight']);
    const w = l.backbone.stateDict()['layer1.0.conv1.weight']!.toTypedArray() as Float32Array;
    const mean = w.reduce((a, v) => a + v, 0) / w.length;
    const std = Math.sqrt(w.reduce((a, v) => a + (v - mean) ** 2, 0) / w.length);
    // torch.nn.init.kaiming_normal_(mode='fan_out', nonlinearity='relu') on a 64→64 3×3 conv: std √(2 / (64·9)) = 0.0589.
    // LibTorch's Conv2d default (kaiming_uniform_, a = √5) would give 1/√(3·576) = 0.0241.
    expect(Math.abs(std / Math.sqrt(2 / 576) - 1)).toBeLessThan(0.03);
    l.dispose();
  });

  it('files that hold no ResNet → ERR_CHECKPOINT_FORMAT', async () => {
    const err = await loadCheckpoint(fixturePath('checkpoints', 'dtypes', 'dtypes.pt')).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_CHECKPOINT_FORMAT' });
    const hostile = await loadCheckpoint(fixturePath('checkpoints', 'hostile', 'random.bin')).catch((e: unknown) => e);
    expect(hostile).toMatchObject({ code: 'ERR_CHECKPOINT_FORMAT' });
  });
});

/** Runs Python on our export and returns, per key, whether torch.equal holds against the original file's tensor. */
function pythonCompare(exported: string, original: string, prefixes: Record<string, string>, loader: 'torch' | 'safetensors'): Record<string, unknown> {
  const code = `
import json, struct, sys, torch, numpy as np
exported, original, prefixes, loader = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
if loader == "torch":
    obj = torch.load(exported, weights_only=True)
    sd, meta = obj["state_dict"], {k: v for k, v in obj.items() if k != "state_dict"}
else:
    NP = {"F32": np.float32, "I64": np.int64, "F16": np.float16}
    with open(exported, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__")
    sd = {k: torch.from_numpy(np.frombuffer(data[v["data_offsets"][0]:v["data_offsets"][1]], dtype=NP[v["dtype"]]).copy().reshape(v["shape"]))
          for k, v in header.items()}
ref = torch.load(original, map_location="cpu")
ref = ref.get("state_dict", ref) if isinstance(ref, dict) else ref
want = {}
for k, v in ref.items():
    for ours, theirs in prefixes.items():
        if k.startswith(theirs):
            want[ours + k[len(theirs):]] = v.float() if v.is_floating_point() else v
bad = [k for k in want if k not in sd or sd[k].dtype != want[k].dtype or not torch.equal(sd[k], want[k])]
print(json.dumps({"keys": sorted(sd), "want": sorted(want), "bad": bad, "meta": meta}, default=str))
`;
  return JSON.parse(
    execFileSync(python, ['-c', code, exported, original, JSON.stringify(prefixes), loader], { encoding: 'utf8', maxBuffer: 64 << 20 }),
  ) as Record<string, unknown>;
}

describe('exportCheckpoint', () => {
  const SOLO = { 'backbone.': 'backbone.', 'projector.': 'projector.', 'classifier.': 'classifier.' };
  const cases = [
    { name: 'vicreg_channels_last', file: 'vicreg-cifar10-q9w8e7r6-ep=999.ckpt', prefixes: SOLO },
    {
      name: 'simclr_legacy_encoder',
      file: 'simclr-cifar100-1a2b3c4d-ep=399.ckpt',
      prefixes: { 'backbone.': 'encoder.', 'projector.': 'projector.', 'classifier.': 'classifier.' },
    },
    { name: 'fp16_state_dict', file: 'backbone-fp16.pth', prefixes: { 'backbone.': '' } },
  ];
  for (const c of cases) {
    for (const ext of ['pth', 'safetensors'] as const) {
      it(`Python reads our .${ext} of ${c.name} with tensors equal to the original file's`, async () => {
        const original = fixturePath('checkpoints', c.name, c.file);
        const loaded = await loadCheckpoint(original);
        const out = join(dir, `${c.name}.${ext}`);
        const names = await exportCheckpoint(out, loaded);
        loaded.dispose();
        const r = pythonCompare(out, original, c.prefixes, ext === 'pth' ? 'torch' : 'safetensors') as {
          keys: string[];
          want: string[];
          bad: string[];
          meta: Record<string, unknown>;
        };
        expect(r.bad).toEqual([]);
        expect(r.keys).toEqual(r.want);
        expect([...names].sort()).toEqual(r.keys);
        expect(r.meta).toMatchObject({ torch_ssl_version: expect.any(String) });
      });
    }
  }

  it("our own export loads back (both formats) with PyTorch's features and metadata", async () => {
    const original = fixturePath('checkpoints', 'vicreg_omegaconf', 'vicreg-cifar10-otu5cw89-ep=999.ckpt');
    const loaded = await loadCheckpoint(original);
    for (const ext of ['pth', 'safetensors']) {
      const out = join(dir, `roundtrip.${ext}`);
      await exportCheckpoint(out, loaded);
      const back = await loadCheckpoint(out);
      expect(back.info).toMatchObject({ format: 'torch-ssl', method: 'vicreg', dataset: 'cifar10', numClasses: 10, epoch: 999, depth: 18, stem: 'cifar' });
      await expectPyTorchFeatures(back, 'vicreg_omegaconf', { projector: true, classifier: true });
      back.dispose();
    }
    loaded.dispose();
  });

  it('exports a bare ResNet as backbone.* only', async () => {
    const net = resnet({ depth: 18, stem: 'cifar' });
    const out = join(dir, 'bare.pth');
    const names = await exportCheckpoint(out, net);
    expect(names.every((n) => n.startsWith('backbone.'))).toBe(true);
    const back = await loadCheckpoint(out);
    expect(back.info.format).toBe('torch-ssl');
    back.dispose();
    net.dispose();
  });

  it('errors leave no file', async () => {
    const sub = join(dir, 'errors');
    mkdirSync(sub, { recursive: true });
    const net = resnet({ depth: 18, stem: 'cifar' });
    await expect(exportCheckpoint(join(sub, 'x.bin2'), net)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
    await expect(exportCheckpoint(join(sub, 'missing-dir', 'x.pth'), net)).rejects.toMatchObject({ code: 'ERR_IO' });
    await expect(exportCheckpoint(join(sub, 'x.pth'), { backbone: net, classifier: { weight: 1, bias: 2 } } as never)).rejects.toMatchObject({
      code: 'ERR_INVALID_ARG',
    });
    net.dispose();
    await expect(exportCheckpoint(join(sub, 'x.pth'), net)).rejects.toMatchObject({ code: 'ERR_DISPOSED' });
    await expect(exportCheckpoint(join(sub, 'x.safetensors'), net)).rejects.toMatchObject({ code: 'ERR_DISPOSED' });
    expect(readdirSync(sub)).toEqual([]);
  });
});
