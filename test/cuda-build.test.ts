// What a build says about CUDA, and what asking for a CUDA device does where none can be used. Runs with
// every build: the CPU one here (Debian 12 and 13), and the CUDA variant in `scripts/debian13-lane.sh cuda`,
// which sets TSSL_EXPECT_CUDA_BUILD=1 so that a lane whose set-up silently built the CPU variant fails.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildInfo, cuda } from '../lib/native.js';
import { Tensor } from '../lib/tensor.js';
import { resnet } from '../lib/models.js';
import { train } from '../lib/train.js';
import { digitsSubset } from './helpers/datasets.js';
import { makeTmpDir } from './helpers/tmp.js';

const info = buildInfo();
const expectCudaBuild = process.env.TSSL_EXPECT_CUDA_BUILD;
// No GPU on this machine: only meaningful where none is visible (a GPU machine runs the CUDA suite instead).
const noGpu = !info.cudaAvailable;

describe('CUDA build information', () => {
  it('reports the LibTorch version and whether it is a CUDA build, as the lane expects', () => {
    expect(info.torchVersion).toMatch(/^\d+\.\d+\.\d+/);
    if (expectCudaBuild === '1') expect(info.cudaBuild).toBe(true);
    if (expectCudaBuild === '0') expect(info.cudaBuild).toBe(false);
    expect(cuda.isAvailable()).toBe(info.cudaAvailable);
    expect(cuda.deviceCount()).toBe(info.cudaDeviceCount);
    if (!info.cudaBuild) expect(info.cudaDeviceCount).toBe(0);
    // Data-parallel backends: gloo always; nccl compiled into the CUDA variant (ProcessGroupNCCL), even here.
    expect(info.distributedBackends).toContain('gloo');
    expect(info.distributedBackends.includes('nccl')).toBe(info.cudaBuild);
  });

  it.runIf(noGpu)('without a usable GPU: isAvailable() is false and every device: "cuda" is ERR_TORCH_DEVICE saying why', async () => {
    expect(cuda.isAvailable()).toBe(false);
    expect(cuda.deviceCount()).toBe(0);
    const why = info.cudaBuild ? /no CUDA GPU is visible/ : /without CUDA \(cpu only\)/;
    for (const device of ['cuda', 'cuda:0', 'cuda:1']) {
      expect(() => Tensor.from(new Float32Array(6), [2, 3], { device })).toThrow(
        expect.objectContaining({ code: 'ERR_TORCH_DEVICE', message: expect.stringMatching(why) }),
      );
    }
    const net = resnet({ depth: 18, stem: 'cifar' });
    await expect(net.to('cuda')).rejects.toMatchObject({ code: 'ERR_TORCH_DEVICE' });
    // A name that is no device at all is a different mistake.
    expect(() => Tensor.from(new Float32Array(6), [2, 3], { device: 'gpu' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG' }));
    // Training checks the device before any work, naming the config key.
    const work = makeTmpDir('cuda');
    const data = await digitsSubset(work, 16);
    await expect(
      train({
        method: 'vicreg',
        data: { train: data },
        projector: { hiddenDims: [32], outputDim: 16 },
        augmentation: [{ size: 16 }],
        batchSize: 8,
        epochs: 1,
        device: 'cuda',
        checkpoint: { dir: join(work, 'ckpt') },
      }),
    ).rejects.toMatchObject({ code: 'ERR_TORCH_DEVICE', message: expect.stringMatching(/config\.device/) });
  });
});
