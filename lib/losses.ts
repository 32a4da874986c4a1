/**
 * Fused joint-embedding losses (VICReg, SimCLR, TCR, Barlow Twins) computed natively with hand-derived
 * backward (docs/losses.md). Each returns a differentiable scalar `LossTensor` whose `terms` hold the
 * unweighted components for logging. Defaults are solo-learn's (and the BagSSL seed's for TCR).
 */
import { withDefaults } from './strict-keys.js';
import { METHOD_REGISTRY } from './methods/index.js';
import { invalidArg } from './errors.js';
import { native, type NativeTensor } from './native.js';
import { awaitNative, Tensor } from './tensor.js';

export class LossTensor extends Tensor {
  /** Unweighted loss terms, e.g. { sim, var, cov } for VICReg. */
  readonly terms: Readonly<Record<string, number>>;
  /** @internal */
  constructor(handle: NativeTensor, terms: Record<string, number>) {
    super(handle);
    this.terms = Object.freeze({ ...terms });
  }
}

export interface VICRegOptions {
  /** Invariance (MSE) weight. Default 25. */
  simWeight?: number;
  /** Variance-hinge weight (solo-learn: summed over views, not halved). Default 25. */
  varWeight?: number;
  /** Covariance weight. Default 1. */
  covWeight?: number;
}
export interface SimCLROptions {
  /** Softmax temperature. Default 0.1 (solo-learn's function default; its CIFAR config uses 0.2). */
  temperature?: number;
}
export interface TCROptions {
  /** Coding-rate precision; enters un-squared as in EMP-SSL's code: α = D / (N·eps). Default 0.2. */
  eps?: number;
  /** Invariance weight λ. Default 30 (BagSSL seed, CIFAR; 1920 for ImageNet-100). */
  lambda?: number;
}
export interface BarlowOptions {
  /** Off-diagonal weight. Default 0.0051. */
  lambda?: number;
  /** Overall scale. Default 0.1 (solo-learn CIFAR config). */
  scale?: number;
}

/** Each loss function's defaults, from the method files (lib/methods/*.ts). */
export const LOSS_DEFAULTS = Object.fromEntries(Object.values(METHOD_REGISTRY).map((m) => [m.name, m.lossDefaults])) as {
  readonly [K in keyof typeof METHOD_REGISTRY]: (typeof METHOD_REGISTRY)[K]['lossDefaults'];
};

function checkNumber(name: string, v: unknown, positive: boolean): void {
  if (v === undefined) return;
  if (typeof v !== 'number' || !Number.isFinite(v) || (positive ? v <= 0 : v < 0)) {
    throw invalidArg(name, positive ? 'a finite number > 0' : 'a finite number >= 0', v);
  }
}
function checkTensor(name: string, t: unknown): Tensor {
  if (!(t instanceof Tensor)) throw invalidArg(name, 'a Tensor', t);
  return t;
}

async function run(name: string, tensors: Tensor[], opts: object): Promise<LossTensor> {
  const handles = tensors.map((t) => t.handle);
  return awaitNative(async () => {
    const r = await native().computeLoss(name, handles, opts as Record<string, number>);
    return new LossTensor(r.loss, r.terms);
  });
}

/** solo-learn VICReg on two (N, D) projections. */
function vicreg(z1: Tensor, z2: Tensor, opts: VICRegOptions = {}): Promise<LossTensor> {
  checkTensor('z1', z1);
  checkTensor('z2', z2);
  checkNumber('simWeight', opts.simWeight, false);
  checkNumber('varWeight', opts.varWeight, false);
  checkNumber('covWeight', opts.covWeight, false);
  return run('vicreg', [z1, z2], withDefaults(LOSS_DEFAULTS.vicreg, opts));
}

/** solo-learn NT-Xent over V views: zs is (V, N, D). */
function simclr(zs: Tensor, opts: SimCLROptions = {}): Promise<LossTensor> {
  checkTensor('zs', zs);
  checkNumber('temperature', opts.temperature, true);
  return run('simclr', [zs], withDefaults(LOSS_DEFAULTS.simclr, opts));
}

/** EMP-SSL total coding rate over V patches/views: zs is (V, N, D). */
function tcr(zs: Tensor, opts: TCROptions = {}): Promise<LossTensor> {
  checkTensor('zs', zs);
  checkNumber('eps', opts.eps, true);
  checkNumber('lambda', opts.lambda, false);
  return run('tcr', [zs], withDefaults(LOSS_DEFAULTS.tcr, opts));
}

/** solo-learn Barlow Twins on two (N, D) projections. */
function barlow(z1: Tensor, z2: Tensor, opts: BarlowOptions = {}): Promise<LossTensor> {
  checkTensor('z1', z1);
  checkTensor('z2', z2);
  checkNumber('lambda', opts.lambda, false);
  checkNumber('scale', opts.scale, true);
  return run('barlow', [z1, z2], withDefaults(LOSS_DEFAULTS.barlow, opts));
}

export const losses = { vicreg, simclr, tcr, barlow };
