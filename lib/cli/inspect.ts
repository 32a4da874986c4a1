/**
 * `torch-ssl inspect <file> [--json] [--args-json F]`: what a checkpoint is — format and era, method,
 * architecture, dataset, epoch, parameter counts per module, key summary — from metadata alone (no
 * tensor data is read, the native addon is not loaded).
 */
import type { Command } from 'commander';
import { TorchSslError } from '../errors.js';
import { inspectCheckpoint, type InspectResult, type KeySummary } from '../checkpoint/solo-learn.js';
import { isSafetensors, openAnyCheckpoint } from '../checkpoint/open.js';
import type { TensorRef } from '../checkpoint/tensor-ref.js';

/** inspectCheckpoint, also for .safetensors files (the project's exports). */
export async function inspectAny(path: string, argsJson?: string): Promise<InspectResult> {
  if (!(await isSafetensors(path))) return inspectCheckpoint(path, argsJson === undefined ? {} : { argsJson });
  const { info, modules, close } = await openAnyCheckpoint(path);
  try {
    const all = new Set<TensorRef>();
    const moduleCounts: Record<string, number> = {};
    for (const [name, m] of Object.entries(modules) as Array<[string, Map<string, TensorRef>]>) {
      if (m.size === 0) continue;
      moduleCounts[name] = m.size;
      for (const t of m.values()) all.add(t);
    }
    const bytes = [...all].reduce((a, t) => a + t.byteLength, 0);
    const keys: KeySummary = {
      topLevel: [],
      stateDictTensors: all.size,
      modules: moduleCounts,
      otherTensors: 0,
      stateDictBytes: bytes,
      totalTensorBytes: bytes,
      dtypes: [...new Set([...all].map((t) => t.dtype))].sort(),
    };
    return { ...info, keys };
  } finally {
    await close();
  }
}

const mb = (n: number): string => (n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${(n / 1e3).toFixed(1)} kB`);
const int = (n: number): string => n.toLocaleString('en-US');

function headText(layers: InspectResult['projector']): string {
  if (!layers) return '—';
  return layers
    .map((l) =>
      l.type === 'Linear' ? `Linear(${l.inFeatures}→${l.outFeatures}${l.bias ? '' : ', no bias'})` : l.type === 'BatchNorm1d' ? `BN(${l.numFeatures})` : 'ReLU',
    )
    .join(' · ');
}

/** The human-readable report: one `label  value` row per fact. */
export function formatInspect(r: InspectResult): string {
  const rows: Array<[string, string]> = [];
  const src = (v: string | null, s: string | null): string => (v === null ? '—' : s === 'layout' ? `${v} (guessed from the layout)` : v);
  rows.push(['file', r.path]);
  rows.push(['format', r.era ? `${r.format} (era: ${r.era})` : r.format]);
  rows.push(['method', src(r.method, r.methodSource)]);
  const arch = r.depth ? `ResNet-${r.depth}` : r.layers.length ? `ResNet with blocks [${r.layers.join(', ')}] (${r.block ?? '?'})` : '—';
  rows.push(['backbone', `${arch}, ${r.stem ?? '?'} stem${r.featureDim ? `, ${r.featureDim}-d features` : ''}`]);
  rows.push(['dataset', `${src(r.dataset, r.datasetSource)}${r.numClasses !== null ? `, ${r.numClasses} classes` : ''}`]);
  if (r.normalization) rows.push(['normalisation', `mean [${r.normalization.mean.join(', ')}], std [${r.normalization.std.join(', ')}]`]);
  const ep = r.epoch === null ? '—' : `${r.epoch}${r.globalStep !== null ? ` (global step ${r.globalStep})` : ''}`;
  rows.push(['epoch', ep]);
  if (r.lightningVersion) rows.push(['lightning', r.lightningVersion]);
  rows.push(['config', r.configSource ?? '—']);
  if (r.projector) rows.push(['projector', headText(r.projector)]);
  if (r.predictor) rows.push(['predictor', headText(r.predictor)]);
  const counts = Object.entries(r.parameterCounts);
  counts.forEach(([m, n], i) => rows.push([i === 0 ? 'parameters' : '', `${m.padEnd(20)} ${int(n).padStart(12)}`]));
  const k = r.keys;
  rows.push([
    'state_dict',
    `${k.stateDictTensors} tensors, ${mb(k.stateDictBytes)} (${Object.entries(k.modules)
      .map(([m, n]) => `${m} ${n}`)
      .join(', ')})`,
  ]);
  rows.push([
    'other tensors',
    k.otherTensors === 0 ? '0' : `${k.otherTensors} (${mb(k.totalTensorBytes - k.stateDictBytes)}; optimizer state etc., never read)`,
  ]);
  rows.push(['dtypes', k.dtypes.join(', ')]);
  if (k.topLevel.length) rows.push(['top-level keys', k.topLevel.join(', ')]);
  r.warnings.forEach((w, i) => rows.push([i === 0 ? 'warnings' : '', w]));
  const width = Math.max(...rows.map(([l]) => l.length));
  return rows.map(([l, v]) => `${l.padEnd(width)}  ${v}`).join('\n');
}

export function register(program: Command): void {
  program
    .command('inspect')
    .description('describe a checkpoint (format, era, method, depth, stem, dataset, epoch, parameters) without reading tensor data')
    .argument('<file>', 'a solo-learn .ckpt, torchvision / plain .pth, or torch-ssl .pth / .safetensors')
    .option('--json', 'print JSON instead of a table')
    .option('--args-json <file>', "solo-learn's args.json (default: args.json beside the checkpoint, if present)")
    .action(async (file: string, opts: { json?: boolean; argsJson?: string }) => {
      if (typeof file !== 'string' || file.length === 0) throw new TorchSslError('ERR_INVALID_ARG', 'inspect needs a checkpoint file');
      const r = await inspectAny(file, opts.argsJson);
      process.stdout.write(opts.json ? `${JSON.stringify(r, null, 2)}\n` : `${formatInspect(r)}\n`);
    });
}
