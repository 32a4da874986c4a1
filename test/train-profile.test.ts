// config.profileSteps: an op-level profile of training steps (bench/profile.mjs prints it). The FLOPs it
// assigns to convolutions and GEMMs are checked against ResNet-18's own arithmetic, layer by layer, and its
// rows must add up to the steps they profile. Its op names also show which convolutions run on float32 Winograd:
// only those of at least 600 output positions (models/winograd.h).
import './helpers/no-grid-conv.js'; // before anything loads the addon: the layers' own shapes
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildInfo, train } from '../lib/index.js';
import type { TrainProfile } from '../lib/native.js';
import { digitsSubset } from './helpers/datasets.js';
import { makeTmpDir } from './helpers/tmp.js';

const work = makeTmpDir('profile');

/** 2 × multiply-adds of one forward pass of solo-learn's CIFAR ResNet-18 (conv1 3×3 s1 p2, no max-pool). */
function resnet18CifarConvFlops(n: number, side: number): number {
  const out = (h: number, k: number, s: number, p: number) => Math.floor((h + 2 * p - k) / s) + 1;
  let flops = 0;
  const conv = (h: number, cin: number, cout: number, k: number, s: number, p: number) => {
    const o = out(h, k, s, p);
    flops += 2 * n * o * o * cout * cin * k * k;
    return o;
  };
  let h = conv(side, 3, 64, 3, 1, 2);
  let c = 64;
  for (const [width, stride] of [
    [64, 1],
    [128, 2],
    [256, 2],
    [512, 2],
  ] as const) {
    for (let block = 0; block < 2; block++) {
      const s = block === 0 ? stride : 1;
      const h1 = conv(h, c, width, 3, s, 1);
      conv(h1, width, width, 3, 1, 1);
      if (s !== 1 || c !== width) conv(h, c, width, 1, s, 0);
      h = h1;
      c = width;
    }
  }
  return flops;
}

describe('train({ profileSteps })', () => {
  let profile: TrainProfile;
  const batch = 8;
  beforeAll(async () => {
    const data = await digitsSubset(work, 32);
    const r = await train({
      method: 'vicreg',
      data: { train: data },
      projector: { hiddenDims: [64], outputDim: 32 },
      augmentation: [{ size: 16 }],
      batchSize: batch,
      epochs: 1,
      maxSteps: 3,
      profileSteps: 2,
      logEvery: 1,
      checkpoint: { dir: join(work, 'run'), every: 0 },
    });
    profile = r.profile!;
  }, 120_000);

  it('profiles the steps after the first, and its rows add up to them', () => {
    expect(profile.steps).toBe(2);
    const self = profile.ops.reduce((s, o) => s + o.selfMs, 0);
    expect(Math.abs(self - profile.wallMs)).toBeLessThan(0.05 * profile.wallMs + 5);
    const phases = new Set(profile.ops.map((o) => (o.name.startsWith('tssl::') ? o.name : o.phase)));
    for (const p of ['tssl::wait_data', 'tssl::forward', 'tssl::loss', 'tssl::backward', 'tssl::optimizer']) expect(phases).toContain(p);
  });

  it("counts the convolutions' FLOPs as ResNet-18's layers do: forward once, backward (data + weights) twice", () => {
    const perStep = 2 * resnet18CifarConvFlops(batch, 16); // two views per step
    const sum = (phase: string, re: RegExp) => profile.ops.filter((o) => o.phase === phase && re.test(o.name)).reduce((s, o) => s + o.flops, 0) / profile.steps;
    expect(sum('tssl::forward', /conv/)).toBe(perStep);
    expect(sum('tssl::backward', /conv/)).toBe(2 * perStep);
  });

  it("counts each GEMM's FLOPs from its shapes: 2·M·K·N", () => {
    const gemms = profile.ops.filter((o) => o.name === 'aten::addmm' || o.name === 'aten::mm');
    expect(gemms.length).toBeGreaterThan(0);
    for (const g of gemms) {
      const dims = [...g.shapes.matchAll(/\[([\d, ]+)\]/g)].map((m) => m[1]!.split(', ').map(Number)).filter((d) => d.length === 2);
      const [a, b] = g.name === 'aten::addmm' ? dims.slice(-2) : dims;
      expect(g.flops / g.calls, `${g.name} ${g.shapes}`).toBe(2 * a![0]! * a![1]! * b![1]!);
    }
  });

  it('is off by default, and a negative count is a config error naming the key', async () => {
    await expect(train({ method: 'vicreg', data: { train: 'x.npy' }, profileSteps: -1 })).rejects.toMatchObject({
      code: 'ERR_CONFIG',
      message: expect.stringContaining('profileSteps'),
    });
  });
});

describe.runIf(buildInfo().conv.winograd)('float32 Winograd only from 600 output positions (batch × map)', () => {
  it("runs layer1's and layer2's 3×3 convolutions on Winograd, layer3's and layer4's (200 and 72 positions) direct", async () => {
    const data = await digitsSubset(work, 32);
    const r = await train({
      method: 'vicreg',
      data: { train: data },
      projector: { hiddenDims: [64], outputDim: 32 },
      augmentation: [{ size: 16 }], // maps 18, 9, 5, 3: at batch 8, 2592, 648, 200 and 72 positions
      batchSize: 8,
      epochs: 1,
      maxSteps: 2,
      profileSteps: 1,
      precision: '32',
      checkpoint: { dir: join(work, 'run-winograd'), every: 0 },
    });
    const channels = (name: RegExp) =>
      new Set(
        r
          .profile!.ops.filter((o) => o.phase === 'tssl::forward' && name.test(o.name))
          .map((o) => /\[\d+, (\d+), \d+, \d+\]/.exec(o.shapes)?.[1])
          .filter((c) => c !== undefined),
      );
    expect([...channels(/^tssl_winograd::conv3x3_forward$/)].sort()).toEqual(['128', '64']);
    const direct = channels(/^aten::(mkldnn_)?convolution$|^aten::_convolution$/);
    expect(direct).toContain('256');
    expect(direct).toContain('512');
  }, 120_000);
});
