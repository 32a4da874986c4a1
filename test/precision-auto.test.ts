// precision: 'auto' picks the fastest precision the device runs natively: bf16-mixed on a CPU with AVX512-BF16 or
// AMX, float32 on one without (bf16 would be emulated), 16-mixed on CUDA; the run, its result and its args.json
// say which and why.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { autoPrecision, resolveTrainConfig } from '../lib/train-config.js';
import { train } from '../lib/train.js';
import { TorchSslError } from '../lib/errors.js';
import { digitsSubset } from './helpers/datasets.js';
import { makeTmpDir } from './helpers/tmp.js';

const work = makeTmpDir('precision-auto');
let data: string;
beforeAll(async () => {
  data = await digitsSubset(work, 16);
});

// Read here, independently of lib/cpu.ts: does this CPU do bf16 natively?
const nativeBf16 = /^flags\s*:.*\b(avx512_bf16|amx_bf16)\b/m.test(readFileSync('/proc/cpuinfo', 'utf8'));

function withoutBf16<T>(f: () => T): T {
  const before = process.env.TORCH_SSL_ASSUME_NO_BF16;
  process.env.TORCH_SSL_ASSUME_NO_BF16 = '1';
  try {
    return f();
  } finally {
    if (before === undefined) delete process.env.TORCH_SSL_ASSUME_NO_BF16;
    else process.env.TORCH_SSL_ASSUME_NO_BF16 = before;
  }
}

async function withoutBf16Async<T>(f: () => Promise<T>): Promise<T> {
  const before = process.env.TORCH_SSL_ASSUME_NO_BF16;
  process.env.TORCH_SSL_ASSUME_NO_BF16 = '1';
  try {
    return await f();
  } finally {
    if (before === undefined) delete process.env.TORCH_SSL_ASSUME_NO_BF16;
    else process.env.TORCH_SSL_ASSUME_NO_BF16 = before;
  }
}

describe("precision: 'auto'", () => {
  it('resolves to bf16-mixed where the CPU has native bf16, to 32 where it has not, to 16-mixed on CUDA; explicit precisions are kept', () => {
    const base = { method: 'vicreg', data: { train: 'x.npy' } };
    const here = resolveTrainConfig({ ...base, precision: 'auto' });
    expect(here.precision).toBe(nativeBf16 ? 'bf16-mixed' : '32');
    expect(here.precisionReason).toMatch(nativeBf16 ? /^precision 'auto': bf16-mixed, since the CPU has native bf16/ : /no native bf16/);
    const none = withoutBf16(() => resolveTrainConfig({ ...base, precision: 'auto' }));
    expect(none.precision).toBe('32');
    expect(none.precisionReason).toMatch(/^precision 'auto': float32, since the CPU has no native bf16 .*bf16 would be emulated/);
    expect(autoPrecision('cuda:0').precision).toBe('16-mixed');
    for (const p of ['32', 'bf16-mixed'] as const) {
      const c = resolveTrainConfig({ ...base, precision: p });
      expect(c.precision).toBe(p);
      expect(c.precisionReason).toBeUndefined();
    }
    expect(resolveTrainConfig(base).precision).toBe('32');
  });

  it('a misspelt precision is ERR_CONFIG naming the valid values, auto among them', () => {
    let err: unknown;
    try {
      resolveTrainConfig({ method: 'vicreg', data: { train: 'x.npy' }, precision: 'Auto' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TorchSslError);
    expect((err as TorchSslError).code).toBe('ERR_CONFIG');
    expect((err as Error).message).toMatch(/config\.precision: .*"auto"/);
  });

  it('a run with auto trains in the resolved precision: the result and args.json say which, and the losses equal an explicit run of it', async () => {
    const cfg = (dir: string, precision: string) => ({
      method: 'vicreg' as const,
      data: { train: data },
      projector: { hiddenDims: [64], outputDim: 32 },
      augmentation: [{ size: 16 }],
      batchSize: 8,
      epochs: 1,
      maxSteps: 2,
      logEvery: 1,
      precision,
      checkpoint: { dir, name: 'run', every: 0 },
      seed: 3,
    });
    const auto = await train(cfg(join(work, 'auto'), 'auto'));
    const expected = nativeBf16 ? 'bf16-mixed' : '32';
    expect(auto.precision).toBe(expected);
    expect(auto.precisionReason).toMatch(/^precision 'auto'/);
    const args = JSON.parse(readFileSync(auto.argsJson, 'utf8')) as Record<string, unknown>;
    expect(JSON.stringify(args)).toContain(`"precision":"${expected}"`);
    const explicit = await train(cfg(join(work, 'explicit'), expected));
    expect(explicit.precision).toBe(expected);
    expect(explicit.precisionReason).toBeUndefined();
    expect(auto.losses.map((l) => l.loss)).toEqual(explicit.losses.map((l) => l.loss));
    // Without native bf16, auto is float32: the same losses as an explicit float32 run, and no emulation warning.
    const warnings: string[] = [];
    const f32 = await withoutBf16Async(() =>
      train(cfg(join(work, 'auto-f32'), 'auto'), { onProgress: (e) => e.type === 'warning' && warnings.push(e.message) }),
    );
    expect(f32.precision).toBe('32');
    expect(warnings).toEqual([]);
    const plain = expected === '32' ? explicit : await train(cfg(join(work, 'f32'), '32'));
    expect(f32.losses.map((l) => l.loss)).toEqual(plain.losses.map((l) => l.loss));
  }, 180_000);
});
