// Multi-crop augmentation throughput (issue 26): DINO's 2 global crops of 32 and 6 local crops of 16 (the
// dino-multicrop-cifar preset on solo-learn's asymmetric pipeline) for batches of Fashion-MNIST images, on one
// thread, as the trainer's producer thread makes them (native, batched, one pass per view), against torchvision
// transforms on PIL images in a DataLoader with one worker (solo-learn's NCropAugmentation). Views per second.
import { join } from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { cpuName, lib, runPython, table } from './common.mjs';

const n = Number.parseInt(process.env.BENCH_IMAGES ?? '2048', 10);
const batch = 256;
const dir = mkdtempSync(join(tmpdir(), 'tssl-multicrop-'));
try {
  const npy = join(dir, 'images.npy');
  const py = runPython('multicrop.py', [n, batch, npy], 1);
  const { augment, readNpy, setNumThreads, resolveTrainConfig } = await lib();
  setNumThreads(1);
  const images = await readNpy(npy);
  const views = resolveTrainConfig({
    method: 'dino',
    data: { train: npy },
    augmentation: [
      { size: 32, scale: [0.4, 1], crops: 1 },
      { size: 32, scale: [0.4, 1], solarize: 0.2, crops: 1 },
      { size: 16, scale: [0.05, 0.4], crops: 6 },
    ],
  }).resolvedViews;
  const run = async () => {
    const t0 = performance.now();
    let seen = 0;
    for (let s = 0; s + batch <= n; s += batch) {
      const x = images.narrow(0, s, batch);
      for (let v = 0; v < views.length; v++) {
        const { crops: _c, ...view } = views[v];
        const y = await augment(x, view, { seed: s * 31 + v });
        seen += y.shape[0];
        y.dispose();
      }
      x.dispose();
    }
    return seen / ((performance.now() - t0) / 1000);
  };
  await run();
  const ours = await run();
  console.log(`CPU: ${cpuName()}; ${n} images, batches of ${batch}, ${views.length} views each (2 × 32 px, 6 × 16 px), 1 thread; PyTorch ${py.torch}`);
  table('bench/multicrop: DINO multi-crop views per second', [
    { name: 'multi-crop views (native batch vs DataLoader)', ours, reference: py.viewsPerSec, unit: 'views/s, higher is better' },
  ]);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
