// CLI errors in the user's words: the flag and the file as typed, what would be accepted, no API parameter
// names and no "of type string" tails; Ctrl-C exits 130 without partial output.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import { register as registerExtract } from '../lib/cli/extract.js';
import { register as registerKnn } from '../lib/cli/knn.js';
import { register as registerLinear } from '../lib/cli/linear.js';
import { TorchSslError } from '../lib/errors.js';
import { writeNpyFile } from '../lib/npy.js';
import { datasets } from './helpers/datasets.js';
import { fixturePath } from './helpers/fixtures.js';
import { REPO_ROOT } from './helpers/paths.js';
import { makeTmpDir } from './helpers/tmp.js';

const cli = resolve(REPO_ROOT, 'dist', 'cli', 'index.js');
const work = makeTmpDir('cli-msg');
// A run stopped between chattr +i and -i below would leave an immutable folder that rm cannot remove; this hook,
// registered after makeTmpDir's, runs before it.
afterAll(() => {
  if (process.getuid?.() === 0) spawnSync('chattr', ['-R', '-i', work], { stdio: 'ignore' });
});

async function cliError(...args: string[]): Promise<TorchSslError> {
  const program = new Command().exitOverride();
  registerExtract(program);
  registerKnn(program);
  registerLinear(program);
  const err = await program.parseAsync(['node', 'torch-ssl', ...args]).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected ${args.join(' ')} to fail`).toBeInstanceOf(TorchSslError);
  expect((err as Error).message).not.toMatch(/of type \w+/);
  return err as TorchSslError;
}

async function features(name: string, rows: number, dims: number): Promise<string> {
  const p = join(work, `${name}.npy`);
  await writeNpyFile(p, { dtype: 'float32', shape: [rows, dims], data: Float32Array.from({ length: rows * dims }, (_, i) => Math.sin(i)) });
  return p;
}
async function labels(name: string, n: number): Promise<string> {
  const p = join(work, `${name}.npy`);
  await writeNpyFile(p, { dtype: 'int64', shape: [n], data: BigInt64Array.from({ length: n }, (_, i) => BigInt(i % 3)) });
  return p;
}

describe('CLI messages', () => {
  it('knn / linear: label counts, rows and dims are checked and reported with the flags and files', async () => {
    const tr = await features('tr', 6, 4);
    const trl = await labels('trl', 6);
    const te = await features('te', 4, 4);
    const tel = await labels('tel-short', 3);
    for (const cmd of ['knn', 'linear']) {
      const e = await cliError(cmd, '--train', tr, '--train-labels', trl, '--test', te, '--test-labels', tel);
      expect(e.code).toBe('ERR_TORCH_SHAPE');
      expect(e.message).toBe(`--test-labels ${tel} has 3 labels but --test ${te} has 4 rows`);
    }
    const te8 = await features('te8', 4, 8);
    const e = await cliError('knn', '--train', tr, '--train-labels', trl, '--test', te8, '--test-labels', await labels('tel', 4));
    expect(e.message).toBe(`--test ${te8} has 8 dims per row but --train ${tr} has 4`);
  });

  it('knn: one value for single-value flags; --ks / --temperatures only with --grid', async () => {
    const args = ['--train', 'a.npy', '--train-labels', 'b.npy', '--test', 'c.npy', '--test-labels', 'd.npy'];
    let e = await cliError('knn', ...args, '--k', '5,10');
    expect(e.message).toBe('--k: expected one value (a positive integer), got "5,10"; for several ks use --grid --ks 5,10');
    e = await cliError('knn', ...args, '--ks', '5,10');
    expect(e.message).toContain('--ks applies only with --grid');
    e = await cliError('knn', ...args, '--temperatures', '0.1');
    expect(e.message).toContain('--temperatures applies only with --grid');
    e = await cliError('knn', ...args, '--distance', 'manhattan');
    expect(e.message).toBe('--distance: expected cosine | euclidean, got "manhattan"');
  });

  it('a directory where a file is expected is ERR_IO naming the flag and the path', async () => {
    const dir = join(work, 'a-dir');
    mkdirSync(dir, { recursive: true });
    const e = await cliError('knn', '--train', dir, '--train-labels', 'b.npy', '--test', 'c.npy', '--test-labels', 'd.npy');
    expect(e.code).toBe('ERR_IO');
    expect(e.message).toBe(`--train ${dir} is a directory, expected a file`);
    const missing = await cliError('linear', '--train', join(work, 'nope.npy'), '--train-labels', 'b.npy', '--test', 'c.npy', '--test-labels', 'd.npy');
    expect(missing.message).toBe(`--train ${join(work, 'nope.npy')}: no such file`);
  });

  it('extract: --pool lists its forms; --patches with --random-patches reads cleanly', async () => {
    const base = ['extract', '--checkpoint', 'x.ckpt', '--input', 'x.npy', '--out', join(work, 'o.npy')];
    let e = await cliError(...base, '--pool', 'bogus');
    expect(e.message).toBe('--pool: expected global | local | none | K,S (average-pool kernel K, stride S), got "bogus"');
    e = await cliError(...base, '--patches', '8,4', '--random-patches', '8,10');
    expect(e.message).toBe('--patches and --random-patches are two ways to choose the bag of patches: give one of them');
    e = await cliError(...base, '--batch-size', '64,128');
    expect(e.message).toContain('--batch-size: expected one value');
  });

  it('outputs are checked before any work: a missing folder, a directory as --out, a folder not writable, export too', async () => {
    const base = ['extract', '--checkpoint', join(work, 'not-read.ckpt'), '--input', 'x.npy'];
    let e = await cliError(...base, '--out', join(work, 'no-such-folder', 'f.npy'));
    expect(e.message).toBe(`--out ${join(work, 'no-such-folder', 'f.npy')}: the folder ${join(work, 'no-such-folder')} does not exist`);
    e = await cliError(...base, '--out', work);
    expect(e.message).toBe(`--out ${work} is a directory, expected a file name`);
    e = await cliError(...base, '--out', join(work, 'f.npy'), '--labels-out', join(work, 'nowhere', 'l.npy'));
    expect(e.message).toContain('--labels-out');
    const { register: registerExport } = await import('../lib/cli/export.js');
    const program = new Command().exitOverride();
    registerExport(program);
    const err = await program
      .parseAsync(['node', 'torch-ssl', 'export', '--checkpoint', join(work, 'not-read.ckpt'), '--out', join(work, 'none', 'x.pth')])
      .catch((x: unknown) => x);
    expect((err as Error).message).toContain(`the folder ${join(work, 'none')} does not exist`);
    // A folder nobody may write to: read-only by mode, or for root (whom modes do not stop) immutable.
    const locked = join(work, 'locked');
    mkdirSync(locked);
    const root = process.getuid?.() === 0;
    let why = '';
    if (root) {
      const r = spawnSync('chattr', ['+i', locked], { encoding: 'utf8' });
      if (r.status !== 0) why = String(r.error ?? (r.stderr || `exit status ${r.status}`));
    } else chmodSync(locked, 0o555);
    if (why) {
      console.warn(`chattr +i did not work here (${why}): the read-only folder case is not checked`);
    } else {
      try {
        e = await cliError(...base, '--out', join(locked, 'f.npy'));
        expect(e.message).toBe(`--out ${join(locked, 'f.npy')}: the folder ${locked} is not writable`);
      } finally {
        if (root) spawnSync('chattr', ['-i', locked]);
        else chmodSync(locked, 0o755);
      }
    }
  });

  it('--labels-out on an input without labels fails before extracting and leaves no features file', async () => {
    const dir = join(work, 'nolabels');
    mkdirSync(dir, { recursive: true });
    const input = join(dir, 'images.npy');
    await writeNpyFile(input, { dtype: 'uint8', shape: [2, 8, 8, 3], data: new Uint8Array(2 * 8 * 8 * 3) });
    const e = await cliError(
      'extract',
      '--checkpoint',
      fixturePath('checkpoints', 'vicreg_omegaconf', 'vicreg-cifar10-otu5cw89-ep=999.ckpt'),
      '--input',
      input,
      '--out',
      join(dir, 'f.npy'),
      '--labels-out',
      join(dir, 'l.npy'),
    );
    expect(e.message).toContain(`--labels-out: --input ${input} has no labels`);
    expect(readdirSync(dir)).toEqual(['images.npy']);
  });

  it('--labels-out that cannot be written after extracting: ERR_IO naming it, and neither file is left (nor a temporary)', async () => {
    const dir = join(work, 'labels-fail');
    mkdirSync(dir, { recursive: true });
    const out = join(dir, 'f.npy');
    const labelsOut = join(dir, 'l.npy');
    // digits-train.npy has its labels beside it. Once extraction has started (its staging file exists, so the
    // checks before the work have passed), a folder takes the labels' name: their write fails at the end.
    const p = spawn(
      process.execPath,
      [
        cli,
        'extract',
        '--checkpoint',
        fixturePath('checkpoints', 'vicreg_omegaconf', 'vicreg-cifar10-otu5cw89-ep=999.ckpt'),
        '--input',
        join(datasets(), 'digits-train.npy'),
        '--limit',
        '256',
        '--batch-size',
        '16',
        '--out',
        out,
        '--labels-out',
        labelsOut,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const watch = setInterval(() => {
      if (!existsSync(labelsOut) && readdirSync(dir).some((f) => f.includes('.pending-'))) {
        mkdirSync(join(labelsOut, 'occupied'), { recursive: true });
        clearInterval(watch);
      }
    }, 5);
    const code = await new Promise<number | null>((r) => p.on('close', (c) => r(c)));
    clearInterval(watch);
    expect(existsSync(join(labelsOut, 'occupied')), 'the folder was put in the way during extraction').toBe(true);
    expect(code, stderr).toBe(1);
    expect(stderr).toContain(
      `ERR_IO: --labels-out ${labelsOut}: cannot write the labels (a folder of that name is in the way); --out ${out} was not written either`,
    );
    expect(existsSync(out)).toBe(false); // the features were not committed without their labels
    expect(readdirSync(dir).sort()).toEqual(['l.npy']); // only the folder the test made: no staging file, no temporary
  }, 60_000);

  it('help: every command has examples, marks required options, shows defaults as values and lists --threads', async () => {
    const { buildProgram } = await import('../lib/cli/index.js');
    const program = buildProgram();
    for (const cmd of program.commands) {
      let help = '';
      cmd.configureOutput({ writeOut: (s) => (help += s) });
      cmd.outputHelp();
      expect(help, cmd.name()).toContain('Examples:\n  $ torch-ssl ' + cmd.name());
      expect(help, cmd.name()).toContain('--threads <n>');
      expect(help, cmd.name()).not.toMatch(/\(default: "/);
      for (const opt of cmd.options) if (opt.mandatory) expect(help).toMatch(new RegExp(`${opt.long}\\b.*\\(required\\)`));
    }
  });

  it('Ctrl-C during extract exits 130 and leaves no output', async () => {
    const out = join(work, 'sigint', 'f.npy');
    mkdirSync(join(work, 'sigint'), { recursive: true });
    const p = spawn(
      process.execPath,
      [
        cli,
        'extract',
        '--checkpoint',
        fixturePath('checkpoints', 'vicreg_omegaconf', 'vicreg-cifar10-otu5cw89-ep=999.ckpt'),
        '--input',
        join(datasets(), 'digits-train.npy'),
        '--batch-size',
        '16',
        '--out',
        out,
      ],
      {
        env: { ...process.env, TORCH_SSL_LOG_INTERVAL: '0' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (stderr.includes('extract: ') && !p.killed) p.kill('SIGINT');
    });
    const code = await new Promise<number | null>((r) => p.on('close', (c) => r(c)));
    expect(code, stderr).toBe(130);
    expect(stderr).toContain('ERR_ABORTED');
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(join(work, 'sigint'))).toEqual([]); // no temporary left either
  }, 60_000);
});
