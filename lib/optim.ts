/**
 * Optimisers and schedules. LARS follows solo-learn (solo/utils/lars.py) exactly; SGD is LibTorch's
 * (PyTorch semantics). Both step natively on a worker thread. warmupCosine is solo-learn's per-step
 * LinearWarmupCosineAnnealingLR in closed form, computed by the engine's one schedule.
 */
import { LARS_DEFAULTS, SCHEDULE_DEFAULTS, SGD_DEFAULTS } from './defaults.js';
import { invalidArg, TorchSslError } from './errors.js';
import { native } from './native.js';
import type { Module } from './models.js';
import { awaitNative, callNative, Tensor } from './tensor.js';

export interface LARSOptions {
  lr: number;
  /** Default 0.9 (solo-learn fills it in for LARS). */
  momentum?: number;
  dampening?: number;
  /** Applied before the trust ratio, only on non-excluded parameters. Default 0. */
  weightDecay?: number;
  nesterov?: boolean;
  /** Trust coefficient. Default 0.02 (solo-learn CIFAR configs). */
  eta?: number;
  eps?: number;
  /** Step = min(eta·trust, lr). Default true. */
  clipLr?: boolean;
  /** 1-D parameters (biases, BN γ/β) get plain momentum SGD without weight decay. Default true. */
  excludeBiasAndNorm?: boolean;
}
export interface SGDOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

type GroupOptions<O> = Partial<O> & { name?: string };
export type ParamGroup<O> = { params: Tensor[] | Module } & GroupOptions<O>;
type ParamsInput<O> = Tensor[] | Module | ParamGroup<O>[];

export { LARS_DEFAULTS, SGD_DEFAULTS };

export interface OptimizerState {
  kind: 'lars' | 'sgd';
  groups: Record<string, number | boolean>[];
  /** Per group, per parameter: the momentum buffer (null before the first step). */
  momentumBuffers: (Tensor | null)[][];
}

const NUMERIC = ['lr', 'momentum', 'dampening', 'weightDecay', 'eta', 'eps'] as const;
const BOOLEAN = ['nesterov', 'clipLr', 'excludeBiasAndNorm'] as const;

function validate(where: string, o: Record<string, unknown>, requireLr: boolean): void {
  if (requireLr && o.lr === undefined) throw invalidArg(`${where}.lr`, 'a finite number >= 0', undefined);
  for (const k of NUMERIC) {
    const v = o[k];
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v < 0)) throw invalidArg(`${where}.${k}`, 'a finite number >= 0', v);
  }
  for (const k of BOOLEAN) {
    const v = o[k];
    if (v !== undefined && typeof v !== 'boolean') throw invalidArg(`${where}.${k}`, 'a boolean', v);
  }
}

function toParams(p: Tensor[] | Module, where: string): Tensor[] {
  const list = Array.isArray(p) ? p : typeof (p as Module)?.parameters === 'function' ? (p as Module).parameters() : undefined;
  if (!list) throw invalidArg(where, 'an array of Tensors or a Module', p);
  list.forEach((t, i) => {
    if (!(t instanceof Tensor)) throw invalidArg(`${where}[${i}]`, 'a Tensor', t);
  });
  return list;
}

abstract class Optimizer<O extends { lr: number }> {
  /** @internal */
  protected readonly native: ReturnType<ReturnType<typeof native>['createOptimizer']>;
  readonly kind: 'lars' | 'sgd';
  /** Live views of each group's hyper-parameters; assigning `paramGroups[i].lr` updates the optimiser. */
  readonly paramGroups: (O & { name?: string })[];
  #disposed = false;

  protected constructor(kind: 'lars' | 'sgd', params: ParamsInput<O>, defaults: O) {
    this.kind = kind;
    validate('options', defaults as unknown as Record<string, unknown>, true);
    const groupsIn: ParamGroup<O>[] =
      Array.isArray(params) && params.length > 0 && !(params[0] instanceof Tensor)
        ? (params as ParamGroup<O>[])
        : [{ params: params as Tensor[] | Module } as ParamGroup<O>];
    if (groupsIn.length === 0) throw invalidArg('params', 'a non-empty list of parameters or groups', params);
    const names: (string | undefined)[] = [];
    const groups = groupsIn.map((g, i) => {
      const { params: p, name, ...rest } = g;
      validate(`paramGroups[${i}]`, rest as Record<string, unknown>, false);
      names.push(name);
      return { params: toParams(p, `paramGroups[${i}].params`).map((t) => t.handle), options: rest };
    });
    this.native = callNative(() => native().createOptimizer(kind, groups, defaults));
    this.paramGroups = groups.map((_, i) => this.#groupView(i, names[i]));
  }

  #groupView(i: number, name: string | undefined): O & { name?: string } {
    const view = {} as Record<string, unknown>;
    const current = () => this.handle.getGroup(i) as Record<string, unknown>;
    for (const k of Object.keys(current())) {
      if (k === 'paramCount') continue;
      Object.defineProperty(view, k, {
        enumerable: true,
        get: () => current()[k],
        set: (v: unknown) => {
          validate(`paramGroups[${i}]`, { [k]: v }, false);
          callNative(() => this.handle.setGroup(i, { [k]: v }));
        },
      });
    }
    if (name !== undefined) view.name = name;
    return view as O & { name?: string };
  }

  /** @internal */
  get handle() {
    if (this.#disposed) throw new TorchSslError('ERR_DISPOSED', 'the optimizer was used after dispose()');
    return this.native;
  }

  /** One update of every parameter that has a gradient, on a native thread. */
  step(): Promise<void> {
    const h = this.handle;
    return awaitNative(() => h.step());
  }
  /** Clears gradients (set to none, as solo-learn's zero_grad(set_to_none=True)). */
  zeroGrad(): void {
    callNative(() => this.handle.zeroGrad());
  }
  /** Sets the learning rate of every group. */
  setLr(lr: number): void {
    if (typeof lr !== 'number' || !Number.isFinite(lr) || lr < 0) throw invalidArg('lr', 'a finite number >= 0', lr);
    for (let i = 0; i < this.paramGroups.length; i++) callNative(() => this.handle.setGroup(i, { lr }));
  }

  /** Hyper-parameters and momentum buffers, for resuming (the buffers are copies on load). */
  stateDict(): OptimizerState {
    const buffers = callNative(() => this.handle.momentumBuffers());
    return {
      kind: this.kind,
      groups: this.paramGroups.map((_, i) => {
        const { paramCount: _count, ...g } = this.handle.getGroup(i) as Record<string, number | boolean>;
        return g;
      }),
      momentumBuffers: buffers.map((g) => g.map((b) => (b === null ? null : new Tensor(b)))),
    };
  }
  loadStateDict(state: OptimizerState): void {
    if (state?.kind !== this.kind) throw invalidArg('state.kind', `'${this.kind}'`, state?.kind);
    if (!Array.isArray(state.groups) || state.groups.length !== this.paramGroups.length) {
      throw new TorchSslError(
        'ERR_INVALID_ARG',
        `optimizer state has ${state.groups?.length} parameter groups but this optimizer has ${this.paramGroups.length}`,
      );
    }
    state.groups.forEach((g, i) => callNative(() => this.handle.setGroup(i, g)));
    callNative(() => this.handle.setMomentumBuffers(state.momentumBuffers.map((g) => g.map((b) => (b === null ? null : b.handle)))));
  }

  dispose(): void {
    if (!this.#disposed) this.native.dispose();
    this.#disposed = true;
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** LARS with solo-learn semantics (trust ratio, clipping, bias/norm exclusion). */
export class LARS extends Optimizer<LARSOptions> {
  constructor(params: ParamsInput<LARSOptions>, options: LARSOptions) {
    if (typeof options !== 'object' || options === null) throw invalidArg('options', 'an object such as { lr: 0.3 }', options);
    super('lars', params, { ...LARS_DEFAULTS, ...options });
  }
}

/** Plain SGD (PyTorch semantics): linear probes and baselines. */
export class SGD extends Optimizer<SGDOptions> {
  constructor(params: ParamsInput<SGDOptions>, options: SGDOptions) {
    if (typeof options !== 'object' || options === null) throw invalidArg('options', 'an object such as { lr: 0.1 }', options);
    super('sgd', params, { ...SGD_DEFAULTS, ...options });
  }
}

export interface WarmupCosineOptions {
  baseLr: number;
  /** Steps of linear warm-up; the lr reaches baseLr at warmupSteps − 1. 0 starts at baseLr. */
  warmupSteps: number;
  /** Steps of the run; at or below warmupSteps the warm-up covers the run and the lr stays baseLr after it. */
  totalSteps: number;
  /** Default 3e-5 (solo-learn; SCHEDULE_DEFAULTS). */
  warmupStartLr?: number;
  /** Final lr (eta_min). Default 0. */
  minLr?: number;
}

/**
 * solo-learn's LinearWarmupCosineAnnealingLR (interval "step") in closed form, the trainer's own schedule
 * (native/optim/schedule.h, one implementation for both):
 * t < W: ws + t·(b − ws)/max(1, W − 1); else min + ½(b − min)(1 + cos(π(t − W)/(T − W))), b when T ≤ W.
 */
export function warmupCosine(opts: WarmupCosineOptions): (step: number) => number {
  const { baseLr, warmupSteps, totalSteps } = opts;
  const minLr = opts.minLr ?? SCHEDULE_DEFAULTS.minLr;
  const warmupStartLr = opts.warmupStartLr ?? SCHEDULE_DEFAULTS.warmupStartLr;
  for (const [k, v] of Object.entries({ baseLr, minLr, warmupStartLr })) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw invalidArg(k, 'a finite number >= 0', v);
  }
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0) throw invalidArg('warmupSteps', 'a non-negative integer', warmupSteps);
  if (!Number.isInteger(totalSteps) || totalSteps <= 0) throw invalidArg('totalSteps', 'a positive integer', totalSteps);
  const addon = native();
  return (step: number): number => {
    if (!Number.isInteger(step) || step < 0) throw invalidArg('step', 'a non-negative integer', step);
    return addon.warmupCosineLr(step, warmupSteps, totalSteps, baseLr, warmupStartLr, minLr);
  };
}
