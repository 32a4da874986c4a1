// Feature extraction, whole process (start, load checkpoint, read images, normalise, forward, local
// aggregation, write .npy, exit): `torch-ssl extract --pool local` vs the Python PyTorch equivalent
// (bench/py/extract.py), on the bundled real digits (32×32, ≥1000 images), same thread count, same run.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lib, python, root, table, threadsFromEnv } from './common.mjs';

const threads = threadsFromEnv();
const batch = Number.parseInt(process.env.BENCH_BATCH ?? '256', 10);
const runs = Number.parseInt(process.env.BENCH_RUNS ?? '3', 10);
const { resnet, exportCheckpoint, readNpy } = await lib();
const images = join(root, '.cache', 'datasets', 'digits-train.npy');
const count = (await readNpy(images)).shape[0];
if (count < 1000) throw new Error(`expected ≥1000 images in ${images}`);

const dir = mkdtempSync(join(tmpdir(), 'tssl-bench-extract-'));
try {
  const ckpt = join(dir, 'resnet18-cifar.pth');
  await exportCheckpoint(ckpt, resnet({ depth: 18, stem: 'cifar' }));
  const env = { ...process.env, OMP_NUM_THREADS: String(threads), BENCH_THREADS: String(threads) };
  const time = (cmd, args) => {
    const t0 = performance.now();
    const r = spawnSync(cmd, args, { env, encoding: 'utf8' });
    const s = (performance.now() - t0) / 1000;
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed:\n${r.stderr}`);
    return { s, stdout: r.stdout };
  };
  const ours = (extra = []) =>
    time(process.execPath, [
      join(root, 'bench', 'extract-job.mjs'),
      'extract',
      '--checkpoint',
      ckpt,
      '--input',
      images,
      '--out',
      join(dir, 'ours.npy'),
      '--pool',
      'local',
      '--normalize',
      'cifar10',
      '--batch-size',
      String(batch),
      ...extra,
    ]);
  const theirs = (cl) => time(python, [join(root, 'bench', 'py', 'extract.py'), threads, ckpt, images, join(dir, 'ref.npy'), batch, cl ? 1 : 0]);
  // Interleaved, best of `runs` each: a shared machine's background load hits both sides alike.
  let [a, b, c] = [Infinity, Infinity, Infinity];
  for (let i = 0; i < runs; i++) {
    a = Math.min(a, ours().s);
    b = Math.min(b, theirs(false).s);
    c = Math.min(c, theirs(true).s);
  }
  // Same features, as a sanity check of the comparison.
  const [f1, f2] = [await readNpy(join(dir, 'ours.npy')), await readNpy(join(dir, 'ref.npy'))];
  const x = f1.toTypedArray();
  const y = f2.toTypedArray();
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < y.length; i++) {
    diff = Math.max(diff, Math.abs(x[i] - y[i]));
    scale = Math.max(scale, Math.abs(y[i]));
  }
  table(
    `bench/extract: ${count} real digits 32×32, ResNet-18 CIFAR stem, --pool local (2048-d), batch ${batch}, ${threads} threads, best of ${runs}, whole process`,
    [
      { name: 'images/s vs PyTorch (contiguous, inference_mode)', ours: count / a, reference: count / b, unit: 'images/s' },
      { name: 'images/s vs PyTorch (channels_last)', ours: count / a, reference: count / c, unit: 'images/s' },
      { name: 'process seconds vs PyTorch (contiguous)', ours: a, reference: b, unit: 's', higherIsBetter: false },
    ],
  );
  console.log(`features agree: max |Δ| / max |ref| = ${(diff / scale).toExponential(2)}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
