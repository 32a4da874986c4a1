// One LARS step over ResNet-50's parameters: torch-ssl (native C++ optimizer) vs a PyTorch loop over
// parameters in Python (solo-learn's LARS), same machine, same threads, same run.
import { lib, runPython, table, threadsFromEnv } from './common.mjs';

const threads = threadsFromEnv();
const iters = Number.parseInt(process.env.BENCH_ITERS ?? '20', 10);
const { resnet, LARS, Tensor, setNumThreads } = await lib();
setNumThreads(threads);
const net = resnet({ depth: 50, stem: 'imagenet' });
const params = net.parameters();
for (const p of params) {
  const n = p.shape.reduce((a, b) => a * b, 1);
  p.grad = Tensor.from(
    new Float32Array(n).map(() => (Math.random() - 0.5) * 2e-3),
    p.shape,
  );
}
const opt = new LARS(params, { lr: 0.3, weightDecay: 1e-4 });
await opt.step();
const t0 = performance.now();
for (let i = 0; i < iters; i++) await opt.step();
const ours = (performance.now() - t0) / iters;
const py = runPython('optim.py', [threads, iters], threads);
table(
  `bench/optim: one LARS step over ResNet-50 (${params.length} tensors, ${(net.parameterCount() / 1e6).toFixed(1)} M parameters), ${threads} threads, ${iters} steps`,
  [{ name: 'LARS step', ours, reference: py.ms, unit: 'ms/step, lower is better', higherIsBetter: false }],
);
