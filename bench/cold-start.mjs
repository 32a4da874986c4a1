// Cold start, whole process: open a solo-learn-sized checkpoint (ResNet-18 CIFAR VICReg Lightning .ckpt
// with the optimizer's momentum buffers, ~165 MB) → model ready → first image's features.
// torch-ssl: a fresh `node` process running loadCheckpoint + one forward; PyTorch: a fresh python3 running
// torch.load + torchvision resnet18 (solo-learn's CIFAR surgery) + load_state_dict + one forward
// (bench/py/cold_start.py). Wall time of each child process, measured here, interleaved, same run.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { python, root, table, threadsFromEnv } from './common.mjs';

const threads = threadsFromEnv();
const reps = Number.parseInt(process.env.BENCH_REPS ?? '5', 10);
const dist = join(root, 'dist', 'index.js');
if (!existsSync(dist)) throw new Error('dist/ is missing: run `npm run build:ts` (or bash scripts/setup.sh)');

const dir = mkdtempSync(join(tmpdir(), 'torch-ssl-cold-'));
const ckpt = join(dir, 'vicreg-cifar10-offline-ab12cd34-ep=999.ckpt');
execFileSync(python, [join(root, 'bench', 'py', 'cold_start.py'), 'make', ckpt], { stdio: ['ignore', 'ignore', 'inherit'] });

// What a user's script does; threads are set once the addon is up (loadCheckpoint loads it).
const child = `
const { loadCheckpoint, Tensor, setNumThreads } = await import(${JSON.stringify(pathToFileURL(dist).href)});
const { backbone } = await loadCheckpoint(process.argv[1], { heads: false });
setNumThreads(${threads});
const feats = await backbone.forward(Tensor.from(new Float32Array(3 * 32 * 32).fill(0.5), [1, 3, 32, 32]), { grad: false });
if (feats.shape[1] !== 512) throw new Error('unexpected feature shape ' + feats.shape);
`;

function wall(cmd, args) {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { env: { ...process.env, OMP_NUM_THREADS: String(threads) }, encoding: 'utf8' });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${cmd} failed (${r.status}): ${r.stderr}`);
  return ms;
}

const ours = [];
const reference = [];
try {
  // One untimed run of each so both start from a warm page cache (the checkpoint was just written anyway).
  wall(process.execPath, ['--input-type=module', '-e', child, ckpt]);
  wall(python, [join(root, 'bench', 'py', 'cold_start.py'), 'run', ckpt, threads]);
  for (let i = 0; i < reps; i++) {
    ours.push(wall(process.execPath, ['--input-type=module', '-e', child, ckpt]));
    reference.push(wall(python, [join(root, 'bench', 'py', 'cold_start.py'), 'run', ckpt, threads]));
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
const min = (a) => Math.min(...a);
console.log(`torch-ssl runs (ms): ${ours.map((v) => v.toFixed(0)).join(', ')}`);
console.log(`PyTorch runs (ms):   ${reference.map((v) => v.toFixed(0)).join(', ')}`);
table(`bench/cold-start: 165 MB solo-learn VICReg ResNet-18 .ckpt → first image's features, whole process, ${threads} threads, ${reps} runs`, [
  { name: 'median wall time', ours: median(ours), reference: median(reference), unit: 'ms', higherIsBetter: false },
  { name: 'best wall time', ours: min(ours), reference: min(reference), unit: 'ms', higherIsBetter: false },
]);
