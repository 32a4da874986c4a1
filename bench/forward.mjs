// ResNet-18 (CIFAR stem) forward and forward+backward images/s at batch 128: torch-ssl vs Python
// torchvision, same machine, same thread count, same run.
import { lib, runPython, table, threadsFromEnv } from './common.mjs';

const threads = threadsFromEnv();
const batch = Number.parseInt(process.env.BENCH_BATCH ?? '128', 10);
const iters = Number.parseInt(process.env.BENCH_ITERS ?? '3', 10);
const { resnet, Tensor, setNumThreads } = await lib();
setNumThreads(threads);

async function ours(channelsLast) {
  const net = resnet({ depth: 18, stem: 'cifar', channelsLast });
  const data = new Float32Array(batch * 3 * 32 * 32).map(() => Math.random() * 2 - 1);
  const x = Tensor.from(data, [batch, 3, 32, 32]);
  const timed = async (fn) => {
    await fn();
    const t0 = performance.now();
    for (let i = 0; i < iters; i++) await fn();
    return (batch * iters) / ((performance.now() - t0) / 1000);
  };
  net.eval();
  const forward = await timed(async () => (await net.forward(x, { grad: false })).dispose());
  net.train();
  const params = net.parameters();
  const forwardBackward = await timed(async () => {
    for (const p of params) p.grad = null;
    const y = await net.forward(x);
    const s = y.sum();
    await s.backward();
    s.dispose();
    y.dispose();
  });
  return { forward, forwardBackward };
}

const rows = [];
for (const cl of [false, true]) {
  const a = await ours(cl);
  const b = runPython('forward.py', [threads, batch, iters, cl ? 1 : 0], threads);
  const tag = cl ? 'channels_last' : 'contiguous';
  rows.push({ name: `forward (inference), ${tag}`, ours: a.forward, reference: b.forward, unit: 'images/s' });
  rows.push({ name: `forward+backward (train), ${tag}`, ours: a.forwardBackward, reference: b.forwardBackward, unit: 'images/s' });
}
table(`bench/forward: ResNet-18 CIFAR stem, batch ${batch}, ${threads} threads, ${iters} iterations`, rows);
