import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../lib/cli/index.js';
import { TensorRef } from '../lib/checkpoint/tensor-ref.js';
import { ensureCheckpointFixtures, python } from './helpers/checkpoint-fixtures.js';
import { fixturePath } from './helpers/fixtures.js';
import { makeTmpDir } from './helpers/tmp.js';

const dir = makeTmpDir('cli');
beforeAll(() => ensureCheckpointFixtures());

/** Runs the CLI in-process; returns its exit code and what it printed. */
async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((out += String(s)), true));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((err += String(s)), true));
  try {
    const code = await main(['node', 'torch-ssl', ...args]);
    return { code, out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

const VICREG = () => fixturePath('checkpoints', 'vicreg_omegaconf', 'vicreg-cifar10-otu5cw89-ep=999.ckpt');

describe('torch-ssl inspect', () => {
  it('prints format, era, method, architecture, dataset, epoch, parameter counts and keys without reading tensor data', async () => {
    const read = vi.spyOn(TensorRef.prototype, 'read');
    const r = await cli('inspect', VICREG());
    expect(read).not.toHaveBeenCalled();
    read.mockRestore();
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/format\s+solo-learn-lightning \(era: hparams-omegaconf\)/);
    expect(r.out).toMatch(/method\s+vicreg/);
    expect(r.out).toMatch(/backbone\s+ResNet-18, cifar stem, 512-d features/);
    expect(r.out).toMatch(/dataset\s+cifar10, 10 classes/);
    expect(r.out).toMatch(/epoch\s+999 \(global step 195000\)/);
    expect(r.out).toMatch(/backbone\s+11,168,832/);
    expect(r.out).toMatch(/projector\s+9,451,520/);
    expect(r.out).toMatch(/state_dict\s+138 tensors/);
    expect(r.out).toMatch(/other tensors\s+72 /);
  });

  it('--json gives the same facts as JSON', async () => {
    const r = await cli('inspect', '--json', fixturePath('checkpoints', 'byol', 'byol-cifar10-z1x2c3v4-ep=999.ckpt'));
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as Record<string, unknown>;
    expect(j).toMatchObject({
      format: 'solo-learn-lightning',
      era: 'modern-args-json',
      method: 'byol',
      depth: 18,
      stem: 'cifar',
      dataset: 'cifar10',
      epoch: 999,
    });
    expect(j.parameterCounts).toMatchObject({ backbone: 11168832, momentum_backbone: 11168832 });
    expect(j.keys).toMatchObject({ stateDictTensors: 269, modules: { backbone: 120, predictor: 9 } });
  });

  it('--args-json takes the config from a given file', async () => {
    const args = fixturePath('checkpoints', 'vicreg_channels_last', 'args.json');
    const r = await cli('inspect', '--json', '--args-json', args, fixturePath('checkpoints', 'fp16_state_dict', 'backbone-fp16.pth'));
    expect(JSON.parse(r.out)).toMatchObject({ format: 'state-dict', method: 'vicreg', dataset: 'cifar10', configSource: 'args.json' });
  });

  it('a hostile or missing file → exit 1 with the error code', async () => {
    const r = await cli('inspect', fixturePath('checkpoints', 'hostile', 'random.bin'));
    expect(r.code).toBe(1);
    expect(r.err).toContain('ERR_CHECKPOINT_FORMAT');
    expect((await cli('inspect', join(dir, 'nope.ckpt'))).err).toContain('ERR_IO');
  });
});

describe('torch-ssl export', () => {
  it('writes a .pth Python loads with weights_only=True, and a .safetensors inspect recognises', async () => {
    const pth = join(dir, 'vicreg.pth');
    const r = await cli('export', '--checkpoint', VICREG(), '--out', pth);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('138 tensors (backbone 120, projector 16, classifier 2)');
    const keys = execFileSync(
      python,
      ['-c', 'import sys, torch; o = torch.load(sys.argv[1], weights_only=True); print(len(o["state_dict"]), o["hyper_parameters"]["method"])', pth],
      { encoding: 'utf8' },
    );
    expect(keys.trim()).toBe('138 vicreg');
    const st = join(dir, 'vicreg.safetensors');
    expect((await cli('export', '--checkpoint', VICREG(), '--out', st, '--backbone-only')).code).toBe(0);
    const i = JSON.parse((await cli('inspect', '--json', st)).out) as Record<string, unknown>;
    expect(i).toMatchObject({ format: 'torch-ssl', method: 'vicreg', dataset: 'cifar10', depth: 18, keys: { stateDictTensors: 120 } });
  });

  it('a failure leaves no file', async () => {
    const out = join(dir, 'bad.pth');
    const r = await cli('export', '--checkpoint', fixturePath('checkpoints', 'bad_keys', 'missing.pth'), '--out', out);
    expect(r.code).toBe(1);
    expect(r.err).toContain('ERR_CHECKPOINT_KEYS');
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.startsWith('.bad'))).toEqual([]);
    const bad = await cli('export', '--checkpoint', VICREG(), '--out', join(dir, 'x.txt'));
    expect(bad.err).toContain('ERR_INVALID_ARG');
    expect(existsSync(join(dir, 'x.txt'))).toBe(false);
  });
});
