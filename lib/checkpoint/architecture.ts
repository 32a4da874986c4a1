/**
 * The architecture a state dict describes, from tensor shapes alone: the ResNet (block counts per stage
 * give the depth, conv1's kernel the stem, the last block's BatchNorm the feature width) and the layer
 * layout of the nn.Sequential heads (projector, predictor), and the projector options that layout is.
 */
import type { TensorRef } from './tensor-ref.js';

export interface HeadLayer {
  /** Index in the nn.Sequential (the `projector.<index>.` of the keys). */
  index: number;
  type: 'Linear' | 'BatchNorm1d' | 'ReLU';
  inFeatures?: number;
  outFeatures?: number;
  bias?: boolean;
  numFeatures?: number;
  /** BatchNorm1d without weight/bias (affine=False). */
  affine?: boolean;
}

/** A backbone's ResNet architecture, null where its keys do not say. */
export interface BackboneArchitecture {
  depth: 18 | 34 | 50 | 101 | 152 | null;
  block: 'basic' | 'bottleneck' | null;
  /** Residual blocks per stage, e.g. [2, 2, 2, 2]. */
  layers: number[];
  /** 'cifar' = 3×3 conv1 (solo-learn's CIFAR surgery), 'imagenet' = 7×7. */
  stem: 'cifar' | 'imagenet' | null;
  /** Width of the backbone's pooled features (512 for ResNet-18/34, 2048 for ResNet-50). */
  featureDim: number | null;
}

/** What projector() needs to build the head a layout describes (see lib/models.ts, ProjectorOptions). */
export interface ProjectorLayout {
  hiddenDims: number[];
  outputDim: number;
  batchNorm: boolean;
  hiddenBias: boolean;
  outputBias: 'on' | 'off';
  outputBatchNorm: boolean;
  outputBatchNormAffine: boolean;
}

const DEPTHS: Array<{ block: 'basic' | 'bottleneck'; layers: number[]; depth: 18 | 34 | 50 | 101 | 152 }> = [
  { block: 'basic', layers: [2, 2, 2, 2], depth: 18 },
  { block: 'basic', layers: [3, 4, 6, 3], depth: 34 },
  { block: 'bottleneck', layers: [3, 4, 6, 3], depth: 50 },
  { block: 'bottleneck', layers: [3, 4, 23, 3], depth: 101 },
  { block: 'bottleneck', layers: [3, 8, 36, 3], depth: 152 },
];

/** The torchvision ResNet a backbone's keys (prefix stripped) describe. */
export function analyseBackbone(bb: Map<string, TensorRef>): BackboneArchitecture {
  const layers: number[] = [];
  for (let l = 1; l <= 4; l++) {
    const blocks = new Set<number>();
    for (const k of bb.keys()) {
      const m = new RegExp(`^layer${l}\\.(\\d+)\\.`).exec(k);
      if (m) blocks.add(Number(m[1]));
    }
    layers.push(blocks.size);
  }
  const found = layers.some((n) => n > 0);
  const block = !found ? null : bb.has('layer1.0.conv3.weight') ? 'bottleneck' : 'basic';
  const depth = DEPTHS.find((d) => d.block === block && d.layers.every((n, i) => n === layers[i]))?.depth ?? null;
  const k = bb.get('conv1.weight')?.shape[2];
  const stem = k === 3 ? 'cifar' : k === 7 ? 'imagenet' : null;
  let featureDim: number | null = null;
  const last = layers[3]! - 1;
  if (last >= 0) {
    const bn = `layer4.${last}.${block === 'bottleneck' ? 'bn3' : 'bn2'}`;
    featureDim = (bb.get(`${bn}.weight`) ?? bb.get(`${bn}.running_mean`))?.shape[0] ?? null;
  }
  return { depth, block, layers: found ? layers : [], stem, featureDim };
}

/** The layers of an nn.Sequential head from its keys (`<index>.weight`, …), or null when it has no numbered layers. */
export function headLayout(m: Map<string, TensorRef>): HeadLayer[] | null {
  if (m.size === 0) return null;
  const byIndex = new Map<number, Map<string, TensorRef>>();
  for (const [k, t] of m) {
    const match = /^(\d+)\.(.+)$/.exec(k);
    if (!match) continue;
    const i = Number(match[1]);
    if (!byIndex.has(i)) byIndex.set(i, new Map());
    byIndex.get(i)!.set(match[2]!, t);
  }
  if (byIndex.size === 0) return null;
  const indices = [...byIndex.keys()].sort((a, b) => a - b);
  const layers: HeadLayer[] = [];
  // Parameterless indices between modules are activations; solo-learn's heads use ReLU there.
  for (let i = 0; i <= indices[indices.length - 1]!; i++) {
    const p = byIndex.get(i);
    if (!p) {
      layers.push({ index: i, type: 'ReLU' });
      continue;
    }
    const w = p.get('weight');
    if (p.has('running_mean') || p.has('running_var')) {
      const n = (p.get('running_mean') ?? p.get('running_var'))!.shape[0] ?? 0;
      layers.push({ index: i, type: 'BatchNorm1d', numFeatures: n, affine: w !== undefined });
    } else if (w && w.shape.length === 2) {
      layers.push({ index: i, type: 'Linear', inFeatures: w.shape[1]!, outFeatures: w.shape[0]!, bias: p.has('bias') });
    } else if (w && w.shape.length === 1) {
      // Normalisation without running stats (track_running_stats=False).
      layers.push({ index: i, type: 'BatchNorm1d', numFeatures: w.shape[0]!, affine: true });
    }
  }
  return layers;
}

/** The head options a solo-learn head layout corresponds to (projector or predictor), or why it has none. */
export function projectorFromLayout(layers: HeadLayer[], inputDim: number): ProjectorLayout | string {
  const linears = layers.filter((l) => l.type === 'Linear');
  if (linears.length === 0) return 'it has no Linear layer';
  // A final BatchNorm1d after the output Linear: affine-free (MoCo v3, SimSiam) or affine (NNCLR).
  const last = layers[layers.length - 1]!;
  const outputBatchNorm = last.type === 'BatchNorm1d';
  const outputBatchNormAffine = outputBatchNorm && last.affine !== false;
  const body = outputBatchNorm ? layers.slice(0, -1) : layers;
  const batchNorm = body.some((l) => l.type === 'BatchNorm1d');
  const block = batchNorm ? ['Linear', 'BatchNorm1d', 'ReLU'] : ['Linear', 'ReLU'];
  const expected = [...Array.from({ length: linears.length - 1 }, () => block).flat(), 'Linear', ...(outputBatchNorm ? ['BatchNorm1d'] : [])];
  const got = layers.map((l) => l.type);
  const describe = (t: string[]): string => t.join('-');
  if (got.length !== expected.length || got.some((t, i) => t !== expected[i])) {
    return `its layout ${describe(got)} is not Linear(-BatchNorm1d)-ReLU blocks ending in a Linear [and a BatchNorm1d] (${describe(expected)})`;
  }
  const hidden = linears.slice(0, -1);
  const hiddenBias = hidden.length === 0 || hidden[0]!.bias !== false;
  if (hidden.some((l) => (l.bias !== false) !== hiddenBias)) return 'its hidden Linears differ in having a bias';
  if (body.some((l) => l.type === 'BatchNorm1d' && l.affine === false)) return 'it has a hidden BatchNorm1d without affine parameters';
  if (linears[0]!.inFeatures !== inputDim) return `its first Linear takes ${linears[0]!.inFeatures} features, the backbone gives ${inputDim}`;
  const out = linears[linears.length - 1]!;
  return {
    hiddenDims: hidden.map((l) => l.outFeatures!),
    outputDim: out.outFeatures!,
    batchNorm,
    hiddenBias,
    outputBias: out.bias === false ? 'off' : 'on',
    outputBatchNorm,
    outputBatchNormAffine,
  };
}
