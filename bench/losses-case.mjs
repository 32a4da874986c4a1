// One torch-ssl loss case in a fresh process (bench/losses.mjs): forward+backward ms and peak RSS growth.
import { lib } from './common.mjs';

const [name, shapeArg, itersArg, threadsArg] = process.argv.slice(2);
const shape = shapeArg.split(',').map(Number);
const iters = Number(itersArg);
const { Tensor, losses, setNumThreads } = await lib();
setNumThreads(Number(threadsArg));
const numel = shape.reduce((a, b) => a * b, 1);
const inputs = Array.from({ length: name === 'vicreg' || name === 'barlow' ? 2 : 1 }, () => {
  const a = new Float32Array(numel);
  for (let i = 0; i < numel; i++) a[i] = Math.sqrt(-2 * Math.log(Math.random() + 1e-12)) * Math.cos(2 * Math.PI * Math.random());
  return Tensor.from(a, shape, { requiresGrad: true });
});
const run = async () => {
  for (const x of inputs) x.grad = null;
  const loss = name === 'vicreg' || name === 'barlow' ? await losses[name](inputs[0], inputs[1]) : await losses[name](inputs[0]);
  await loss.backward();
  loss.dispose();
};
const base = process.resourceUsage().maxRSS;
await run();
const peak = process.resourceUsage().maxRSS - base;
const t0 = performance.now();
for (let i = 0; i < iters; i++) await run();
console.log(JSON.stringify({ ms: (performance.now() - t0) / iters, peakMB: peak / 1024 }));
