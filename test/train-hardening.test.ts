// Runs that cannot be lost: stale temporaries of killed runs are cleaned, a checkpoint that cannot be written
// stops the run at once, and the disk space a checkpoint needs is known before step one.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkDiskSpace, estimateCheckpointBytes, train, resolveTrainConfig, type StepEvent } from '../lib/train.js';
import { TorchSslError } from '../lib/errors.js';
import { digitsSubset } from './helpers/datasets.js';

const work = mkdtempSync(join(tmpdir(), 'tssl-hard-'));
let data: string;
beforeAll(async () => {
  data = await digitsSubset(work, 32);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const tiny = (dir: string, extra: Record<string, unknown> = {}) => ({
  method: 'vicreg' as const,
  data: { train: data },
  projector: { hiddenDims: [64], outputDim: 32 },
  augmentation: [{ size: 16 }],
  batchSize: 8,
  epochs: 1,
  checkpoint: { dir, name: 'run' },
  seed: 3,
  ...extra,
});

describe('train() keeps runs safe', () => {
  it('removes the temporaries a killed run left (its process is gone) and keeps a live writer\'s', async () => {
    const dir = join(work, 'stale');
    mkdirSync(dir, { recursive: true });
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!; // exited: its pid names no process now
    const stale = [`.run-ep=1.ckpt.tmp-${dead}-0123abcd`, `.f.npy.${dead}.89abcdef.tmp`, `args.json.tmp-${dead}`];
    const live = `.run-ep=1.ckpt.tmp-${process.pid}-0123abcd`;
    for (const f of [...stale, live, 'notes.txt']) writeFileSync(join(dir, f), 'x');
    const r = await train(tiny(dir, { maxSteps: 1 }));
    expect(r.removedTemporaries.sort()).toEqual(stale.sort());
    const left = readdirSync(dir);
    for (const f of stale) expect(left).not.toContain(f);
    expect(left).toContain(live);
    expect(left).toContain('notes.txt');
  }, 120_000);

  it('a checkpoint that cannot be written stops the run at once with ERR_IO naming the epoch', async () => {
    const dir = join(work, 'blocked');
    mkdirSync(join(dir, 'run-ep=1.ckpt'), { recursive: true }); // a directory where epoch 1's file must go
    const steps: StepEvent[] = [];
    const err = await train(tiny(dir, { epochs: 20, checkpoint: { dir, name: 'run', every: 1 }, logEvery: 1 }), { onProgress: (e) => e.type === 'step' && steps.push(e) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TorchSslError);
    expect((err as TorchSslError).code).toBe('ERR_IO');
    expect((err as Error).message).toContain('checkpoint of epoch 1 could not be written, training stopped');
    expect(steps.length).toBeLessThan(20 * 4); // 4 steps per epoch: it did not train all 20 epochs first
    expect(readdirSync(dir).filter((f) => f.includes('.tmp'))).toEqual([]);
  }, 180_000);

  it('estimates a checkpoint\'s size from above within 5 % and refuses to start without that much space', async () => {
    const dir = join(work, 'size');
    const r = await train(tiny(dir, { maxSteps: 2 }));
    const actual = statSync(r.checkpoint).size;
    const c = resolveTrainConfig(tiny(dir));
    const est = estimateCheckpointBytes(c, 10);
    expect(est).toBeGreaterThanOrEqual(actual);
    expect(est / actual).toBeLessThan(1.05);
    const e = await checkDiskSpace(dir, 2 ** 60).catch((x: unknown) => x);
    expect((e as TorchSslError).code).toBe('ERR_IO');
    expect((e as Error).message).toMatch(/MiB free, a checkpoint of this model needs about \d+ MiB/);
    expect(existsSync(r.checkpoint)).toBe(true);
  }, 120_000);
});
