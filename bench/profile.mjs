// One training step broken down by op (config.profileSteps: LibTorch's profiler on the training thread), for
// float32 and bf16-mixed, each category with its share of the step and its achieved GFLOP/s (convolutions,
// GEMMs) or GB/s (memory-bound ops), beside the ceilings measured on the same machine in the same run
// (bench/py/ceilings.py: conv and GEMM in fp32 / bf16, memory bandwidth). Then the convolutions shape by shape.
// BENCH_BATCH (128), BENCH_PROFILE_STEPS (2), BENCH_PRECISIONS (32 and bf16-mixed where the CPU has bf16),
// BENCH_JSON=<file> also writes the figures as JSON. BENCH_CONFIG=<recipe.yaml> profiles that recipe's step instead
// (e.g. configs/demo.yaml: the demo's TCR step, 32 images × 20 patches of 16×16; its own batch size unless BENCH_BATCH).
import { readFileSync, rmSync, mkdtempSync, writeFileSync } from 'node:fs';
import YAML from 'yaml';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuName, fairBlas, lib, root, runPython, threadsFromEnv } from './common.mjs';

const threads = threadsFromEnv();
const recipePath = process.env.BENCH_CONFIG;
const recipe = recipePath ? YAML.parse(readFileSync(recipePath, 'utf8')) : null;
const batch = Number.parseInt(process.env.BENCH_BATCH ?? String(recipe?.batchSize ?? 128), 10);
const steps = Number.parseInt(process.env.BENCH_PROFILE_STEPS ?? '2', 10);
const hasBf16 = /\bavx512_bf16\b|\bamx_bf16\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
const precisions = (process.env.BENCH_PRECISIONS ?? (hasBf16 ? '32,bf16-mixed' : '32')).split(',');
const { train, setNumThreads, buildInfo } = await lib();
setNumThreads(threads);
const blas = await fairBlas();

// Categories in the order a row is matched (the first that matches takes it).
const fwd = (o) => o.phase === 'tssl::forward';
const bwd = (o) => o.phase === 'tssl::backward';
const CATEGORIES = [
  { name: 'waiting for data', test: (o) => o.name === 'tssl::wait_data' },
  { name: 'the loss (forward)', test: (o) => o.phase === 'tssl::loss' },
  { name: 'LARS (+ grad-scaler check)', test: (o) => o.phase === 'tssl::optimizer' || o.name === 'tssl::optimizer' },
  { name: 'conv forward', kind: 'conv', test: (o) => fwd(o) && /^aten::.*conv|^tssl_winograd::conv3x3_forward/.test(o.name) },
  {
    name: 'conv backward (data + weights)',
    kind: 'conv',
    test: (o) => bwd(o) && /convolution_backward|ConvolutionBackward|SmallMapConv|WinogradConv3x3|tssl_winograd::conv3x3_backward/.test(o.name),
  },
  {
    name: 'conv backward, weights as one GEMM (small maps)',
    kind: 'gemm',
    test: (o) => o.phase === 'tssl::conv_weight_grad' || o.name === 'tssl::conv_weight_grad',
  },
  // native/models/batch_norm_act.h: BatchNorm, the residual add and ReLU as one op, where the CPU has AVX-512.
  { name: 'fused BatchNorm + add + ReLU forward', kind: 'mem', test: (o) => fwd(o) && o.name === 'tssl_fused::batch_norm_act' },
  { name: 'fused BatchNorm + add + ReLU backward', kind: 'mem', test: (o) => bwd(o) && /tssl_fused::batch_norm_act_backward|FusedBatchNormAct/.test(o.name) },
  { name: 'BatchNorm forward', kind: 'mem', test: (o) => fwd(o) && /batch_norm/.test(o.name) },
  { name: 'BatchNorm backward', kind: 'mem', test: (o) => bwd(o) && /batch_norm_backward|BatchNormBackward/.test(o.name) },
  { name: 'ReLU forward', kind: 'mem', test: (o) => fwd(o) && /relu|clamp_min/.test(o.name) },
  { name: 'ReLU backward', kind: 'mem', test: (o) => bwd(o) && /threshold_backward|ReluBackward/.test(o.name) },
  { name: 'residual adds (fwd) / grad sums (bwd)', kind: 'mem', test: (o) => (fwd(o) || bwd(o)) && /^aten::add_?$/.test(o.name) },
  { name: 'pooling', kind: 'mem', test: (o) => /pool|aten::mean|MeanBackward|aten::flatten/.test(o.name) },
  { name: 'projector / classifier GEMMs', kind: 'gemm', test: (o) => /^aten::(addmm|mm|bmm|linear|matmul|t)$|AddmmBackward|MmBackward/.test(o.name) },
  { name: 'dtype casts and copies', kind: 'mem', test: (o) => /^aten::(_to_copy|to|copy_)$|ToCopyBackward/.test(o.name) },
  { name: 'layout reorders (contiguous / clone)', kind: 'mem', test: (o) => /^aten::(contiguous|clone)$/.test(o.name) },
  { name: 'allocation and zero-fill', test: (o) => /^aten::(empty|empty_strided|empty_like|zeros|zeros_like|zero_|fill_|resize_)$/.test(o.name) },
  { name: 'autograd engine (nodes, grad accumulation)', test: (o) => bwd(o) && !o.name.startsWith('aten::') },
  { name: 'other', test: () => true },
];

async function profile(precision) {
  const dir = mkdtempSync(join(tmpdir(), 'tssl-bench-profile-'));
  try {
    const data = join(root, '.cache', 'datasets', 'digits-train.npy');
    const base = recipe ?? { method: 'vicreg', data: { train: data }, scheduler: { warmupEpochs: 0 } };
    const r = await train({
      ...base,
      batchSize: batch,
      epochs: 1000,
      maxSteps: steps + 1,
      profileSteps: steps,
      precision,
      knn: { every: 0 },
      checkpoint: { dir, every: 0 },
      logEvery: 1000,
    });
    return r.profile;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const fmt = (v, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : '-');
const ceilings = runPython('ceilings.py', [threads], threads, blas.env);
const what = recipe
  ? `${recipePath} (${recipe.method}, ${recipe.views ?? 2} views of ${recipe.augmentation?.[0]?.size ?? '?'}×${recipe.augmentation?.[0]?.size ?? '?'} per image), batch ${batch}`
  : `VICReg, ResNet-18 CIFAR stem, batch ${batch} × 2 views of 32×32`;
console.log(`bench/profile: ${what}, ${steps} profiled steps after a warm-up step, ${threads} threads`);
console.log(`CPU: ${cpuName()}; LibTorch ${buildInfo().torchVersion}; ${buildInfo().conv.kernels}; BatchNorm: ${buildInfo().batchNorm.kernels}`);
console.log(
  `ceilings on this machine (bench/py/ceilings.py, same libraries): conv 3×3 64→64 128×32×32 channels_last fwd / bwd-data / bwd-weight: fp32 ${fmt(ceilings.conv_fwd_fp32, 0)} / ${fmt(ceilings.conv_bwd_data_fp32, 0)} / ${fmt(ceilings.conv_bwd_weight_fp32, 0)}, bf16 ${fmt(ceilings.conv_fwd_bf16, 0)} / ${fmt(ceilings.conv_bwd_data_bf16, 0)} / ${fmt(ceilings.conv_bwd_weight_bf16, 0)} GFLOP/s; GEMM 2048² fp32 ${fmt(ceilings.gemm_fp32, 0)}, bf16 ${fmt(ceilings.gemm_bf16, 0)} GFLOP/s; copy ${fmt(ceilings.copy_GBps)} GB/s`,
);
const report = { cpu: cpuName(), batch, threads, ceilings, precisions: {} };
for (const precision of precisions) {
  const p = await profile(precision);
  const perStep = p.wallMs / p.steps;
  const bf16 = precision === 'bf16-mixed';
  const ceilingConv = bf16 ? ceilings.conv_fwd_bf16 : ceilings.conv_fwd_fp32;
  const rows = CATEGORIES.map((c) => ({ ...c, ms: 0, flops: 0, elements: 0, calls: 0 }));
  for (const o of p.ops) {
    const row = rows.find((r) => r.test(o));
    row.ms += o.selfMs / p.steps;
    row.flops += o.flops / p.steps;
    row.elements += o.elements / p.steps;
    row.calls += o.calls / p.steps;
  }
  console.log(
    `\n[precision ${precision}] step ${perStep.toFixed(0)} ms (${(batch / (perStep / 1000)).toFixed(1)} images/s while profiled); rows are self time, so they add up to the step`,
  );
  console.log(`${'category'.padEnd(44)} ${'ms/step'.padStart(8)} ${'share'.padStart(6)} ${'calls'.padStart(6)}  achieved`);
  const bytesPerElement = bf16 ? 2 : 4;
  for (const r of rows.filter((x) => x.ms > 0.05).sort((a, b) => b.ms - a.ms)) {
    let achieved = '';
    if (r.flops > 0) {
      const g = r.flops / (r.ms / 1000) / 1e9;
      const ceiling = r.kind === 'gemm' ? (bf16 ? ceilings.gemm_bf16 : ceilings.gemm_fp32) : ceilingConv;
      achieved = `${g.toFixed(0)} GFLOP/s (${((100 * g) / ceiling).toFixed(0)}% of the ${bf16 ? 'bf16' : 'fp32'} ${r.kind === 'gemm' ? '2048² GEMM' : '64→64 conv forward'} above)`;
    } else if (r.kind === 'mem' && r.elements > 0) {
      const gbs = (r.elements * bytesPerElement) / (r.ms / 1000) / 1e9;
      achieved = `≥ ${gbs.toFixed(1)} GB/s read (${((100 * gbs) / ceilings.copy_GBps).toFixed(0)}% of copy bandwidth; inputs at ${bytesPerElement} B)`;
    }
    console.log(
      `${r.name.padEnd(44)} ${r.ms.toFixed(1).padStart(8)} ${`${((100 * r.ms) / perStep).toFixed(1)}%`.padStart(6)} ${r.calls.toFixed(0).padStart(6)}  ${achieved}`,
    );
  }
  console.log(`\n[precision ${precision}] convolutions by shape (input, weight; backward: grad_output, input, weight)`);
  const convs = p.ops.filter((o) => o.shapes !== '' && /conv/.test(o.name)).sort((a, b) => b.selfMs - a.selfMs);
  for (const o of convs.slice(0, 16)) {
    const ms = o.selfMs / p.steps;
    console.log(
      `${o.name.padEnd(32)} ${o.shapes.padEnd(58)} ${ms.toFixed(1).padStart(7)} ms ${(o.flops / p.steps / (ms / 1000) / 1e9).toFixed(0).padStart(6)} GFLOP/s`,
    );
  }
  report.precisions[precision] = {
    stepMs: perStep,
    rows: rows.map(({ name, ms, flops, elements, calls }) => ({ name, ms, flops, elements, calls })),
    convs: convs.map((o) => ({ name: o.name, shapes: o.shapes, ms: o.selfMs / p.steps, flops: o.flops / p.steps })),
  };
}
if (process.env.BENCH_JSON) writeFileSync(process.env.BENCH_JSON, `${JSON.stringify(report, null, 1)}\n`);
