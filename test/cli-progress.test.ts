// Long CLI work reports progress in plain logs too (issue: `extract` printed nothing and `train` one line per
// epoch when the output was not a terminal).
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { eta, formatDuration, progressBar } from '../lib/cli/progress.js';
import { fixturePath } from './helpers/fixtures.js';
import { digitsSubset } from './helpers/datasets.js';
import { REPO_ROOT } from './helpers/paths.js';
import { makeTmpDir } from './helpers/tmp.js';

const cli = resolve(REPO_ROOT, 'dist', 'cli', 'index.js');
const work = makeTmpDir('progress');

function fakeStream(): { stream: NodeJS.WriteStream; lines: () => string[] } {
  let text = '';
  const stream = { isTTY: false, write: (s: string) => ((text += s), true) } as unknown as NodeJS.WriteStream;
  return { stream, lines: () => text.split('\n').filter((l) => l.length > 0) };
}

describe('progress in logs', () => {
  it('a non-terminal bar prints a plain line at every 10 % (and each interval) with elapsed time and ETA', () => {
    const { stream, lines } = fakeStream();
    const bar = progressBar('extract', stream, 60_000);
    for (let done = 1; done <= 100; done++) bar.update(done, 100, '50 img/s');
    bar.finish();
    expect(lines()).toHaveLength(10);
    expect(lines()[0]).toMatch(/^extract: 10% 10\/100, 50 img\/s, elapsed \d+ s, ETA \d+ s$/);
    expect(lines().at(-1)).toMatch(/^extract: 100% 100\/100, .*ETA 0 s$/);
  });

  it('ETA and durations read as a person would write them', () => {
    expect(eta(25, 100, 30)).toBe('1 min 30 s');
    expect(eta(0, 100, 30)).toBe('?');
    expect(formatDuration(3725)).toBe('1 h 02 min');
    expect(formatDuration(42.4)).toBe('42 s');
  });

  it('torch-ssl extract with output to a file prints progress lines with an ETA', () => {
    const r = spawnSync(
      process.execPath,
      [
        cli,
        'extract',
        '--checkpoint',
        fixturePath('checkpoints', 'vicreg_omegaconf', 'vicreg-cifar10-otu5cw89-ep=999.ckpt'),
        '--input',
        fixturePath('checkpoints', 'vicreg_omegaconf', 'features', 'input.npy'),
        '--batch-size',
        '2',
        '--out',
        join(work, 'f.npy'),
      ],
      {
        encoding: 'utf8',
        env: { ...process.env, TORCH_SSL_LOG_INTERVAL: '0' },
      },
    );
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('extract: '));
    expect(lines.length).toBeGreaterThan(1);
    expect(lines.at(-1)).toMatch(/^extract: 100% (\d+)\/\1, \d+ img\/s, elapsed .*, ETA 0 s$/);
  });

  it('torch-ssl train with output to a file prints step lines with an ETA between epochs', async () => {
    const data = await digitsSubset(work, 32);
    const config = join(work, 'cfg.json');
    writeFileSync(
      config,
      JSON.stringify({
        method: 'vicreg',
        data: { train: data },
        projector: { hiddenDims: [32], outputDim: 16 },
        augmentation: [{ size: 16 }],
        batchSize: 8,
        epochs: 1,
        checkpoint: { dir: join(work, 'run'), every: 0 },
        logEvery: 1,
      }),
    );
    const r = spawnSync(process.execPath, [cli, 'train', '--config', config, '--set', `checkpoint.dir=${join(work, 'run2')}`], {
      encoding: 'utf8',
      env: { ...process.env, TORCH_SSL_LOG_INTERVAL: '0' },
    });
    expect(r.status, r.stderr).toBe(0);
    const steps = r.stderr.split('\n').filter((l) => l.startsWith('step '));
    expect(steps.length).toBeGreaterThanOrEqual(3);
    expect(steps.at(-1)).toMatch(/^step 4\/4 \(100%\), epoch \d+: loss [\d.]+, lr [\d.e+-]+, [\d.]+ images\/s, ETA 0 s$/);
  }, 120_000);

  it('Ctrl-C during torch-ssl train stops after the step, writes the -aborted checkpoint and exits 130', async () => {
    const data = await digitsSubset(work, 32);
    const dir = join(work, 'sigint-run');
    const config = join(work, 'sigint.json');
    writeFileSync(
      config,
      JSON.stringify({
        method: 'vicreg',
        data: { train: data },
        projector: { hiddenDims: [32], outputDim: 16 },
        augmentation: [{ size: 16 }],
        batchSize: 8,
        epochs: 50,
        checkpoint: { dir, name: 'run', every: 0 },
        logEvery: 1,
      }),
    );
    const p = spawn(process.execPath, [cli, 'train', '--config', config], {
      env: { ...process.env, TORCH_SSL_LOG_INTERVAL: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let stdout = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (/^step 2\//m.test(stderr) && !p.killed) p.kill('SIGINT');
    });
    const code = await new Promise<number | null>((r) => p.on('close', (c) => r(c)));
    expect(code, stderr).toBe(130);
    const steps = Number(/^interrupted: (\d+) steps/m.exec(stdout)?.[1]);
    expect(steps, stdout).toBeGreaterThanOrEqual(2);
    expect(steps).toBeLessThan(50 * 4); // 50 epochs of 4 steps were asked for
    const files = readdirSync(dir);
    expect(files.filter((f) => f.endsWith('.ckpt'))).toEqual([expect.stringMatching(/^run-ep=\d+-aborted\.ckpt$/)]);
    expect(files.filter((f) => f.includes('.tmp'))).toEqual([]);
  }, 120_000);
});
