// Fused losses: forward+backward time and peak memory (RSS growth in a fresh process per case) of
// torch-ssl vs composed PyTorch autograd in Python, same machine, same threads, same run.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { root, runPython, threadsFromEnv } from './common.mjs';

const threads = threadsFromEnv();
const cases = [
  ['vicreg', [256, 2048]],
  ['vicreg', [1024, 2048]],
  ['vicreg', [256, 8192]],
  ['vicreg', [1024, 8192]],
  ['simclr', [2, 256, 128]],
  ['simclr', [2, 1024, 128]],
  ['simclr', [2, 256, 2048]],
  ['simclr', [2, 1024, 2048]],
  ['tcr', [20, 100, 1024]],
  ['barlow', [256, 2048]],
];
const iters = (shape) => (shape.reduce((a, b) => a * b, 1) > 4e6 ? 1 : 3);
console.log(`\nbench/losses: forward+backward, ${threads} threads; peak = RSS growth during one forward+backward`);
console.log(
  `${'case'.padEnd(30)} ${'torch-ssl ms'.padStart(13)} ${'PyTorch ms'.padStart(11)} ${'speed-up'.padStart(9)}   ${'ours MB'.padStart(8)} ${'PyTorch MB'.padStart(11)} ${'mem ratio'.padStart(10)}`,
);
for (const [name, shape] of cases) {
  const n = iters(shape);
  const ours = JSON.parse(
    execFileSync(process.execPath, [join(root, 'bench', 'losses-case.mjs'), name, shape.join(','), String(n), String(threads)], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .pop(),
  );
  const py = runPython('losses.py', [name, shape.join(','), n, threads], threads);
  const label = `${name} [${shape.join('×')}]`;
  console.log(
    `${label.padEnd(30)} ${ours.ms.toFixed(1).padStart(13)} ${py.ms.toFixed(1).padStart(11)} ${(py.ms / ours.ms).toFixed(2).padStart(8)}x   ${ours.peakMB.toFixed(0).padStart(8)} ${py.peakMB.toFixed(0).padStart(11)} ${(ours.peakMB / Math.max(py.peakMB, 1)).toFixed(2).padStart(9)}x`,
  );
}
