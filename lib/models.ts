/**
 * Models: torchvision-exact ResNets (parameter names such as `layer3.1.bn2.running_var`) and solo-learn
 * projector heads (`<index>.weight`). The native module lives in C++; forward passes run on libuv threads.
 */
import { PROJECTOR_PRESETS, toNativeHead, type ProjectorLayout, type ProjectorPreset } from './methods/presets.js';
import { invalidArg, TorchSslError } from './errors.js';
import { native, type NativeModule } from './native.js';

export { PROJECTOR_PRESETS, type ProjectorPreset };
import { awaitNative, callNative, Tensor } from './tensor.js';

export type StateDict = Record<string, Tensor>;

export interface ForwardOptions {
  /** Record the autograd graph (default true, as in PyTorch). false runs in inference mode: faster, less memory. */
  grad?: boolean;
}

export class Module {
  /** @internal */
  protected readonly native: NativeModule;
  #disposed = false;

  /** @internal */
  constructor(handle: NativeModule) {
    this.native = handle;
  }

  /** @internal */
  get handle(): NativeModule {
    if (this.#disposed) throw new TorchSslError('ERR_DISPOSED', 'the model was used after dispose()');
    return this.native;
  }

  /** Forward pass on a native thread. */
  forward(x: Tensor, opts: ForwardOptions = {}): Promise<Tensor> {
    const h = this.handle;
    const xh = x.handle;
    return awaitNative(async () => new Tensor(await h.forward(xh, { grad: opts.grad ?? true })));
  }

  /** Training mode (BatchNorm uses and updates batch statistics). Returns this. */
  train(on = true): this {
    callNative(() => this.handle.setTraining(on));
    return this;
  }
  /** Evaluation mode (BatchNorm uses running statistics). Returns this. */
  eval(): this {
    return this.train(false);
  }
  get training(): boolean {
    return this.handle.training;
  }

  /** Parameters in registration order (they share storage with the model). */
  parameters(): Tensor[] {
    return this.handle.namedParameters().map(([, t]) => new Tensor(t));
  }
  namedParameters(): [string, Tensor][] {
    return this.handle.namedParameters().map(([n, t]) => [n, new Tensor(t)]);
  }
  namedBuffers(): [string, Tensor][] {
    return this.handle.namedBuffers().map(([n, t]) => [n, new Tensor(t)]);
  }
  /** Parameters and buffers by torchvision / solo-learn name, sharing storage with the model (as PyTorch). */
  stateDict(): StateDict {
    const sd: StateDict = {};
    for (const [n, t] of this.handle.namedParameters()) sd[n] = new Tensor(t).detach();
    for (const [n, t] of this.handle.namedBuffers()) sd[n] = new Tensor(t);
    return sd;
  }
  /** Number of parameter elements. */
  parameterCount(): number {
    return this.handle.namedParameters().reduce((acc, [, t]) => acc + t.shape.reduce((a, b) => a * b, 1), 0);
  }

  /**
   * Copies `sd` into the model. Every missing, unexpected or shape-mismatched key is listed in one
   * ERR_CHECKPOINT_KEYS error and nothing is changed. With `strict: false` missing / unexpected keys are
   * allowed (and returned); shape mismatches still fail.
   */
  loadStateDict(sd: StateDict | Map<string, Tensor>, opts: { strict?: boolean } = {}): Promise<{ missing: string[]; unexpected: string[] }> {
    const entries = sd instanceof Map ? [...sd.entries()] : Object.entries(sd);
    if (opts.strict !== undefined && typeof opts.strict !== 'boolean') throw invalidArg('strict', 'a boolean', opts.strict);
    const h = this.handle;
    const pairs = entries.map(([k, t]): [string, ReturnType<Tensor['handle']['to']>] => {
      if (!(t instanceof Tensor)) throw invalidArg(`stateDict["${k}"]`, 'a Tensor', t);
      return [k, t.handle];
    });
    return awaitNative(() => h.loadStateDict(pairs, opts.strict ?? true));
  }

  /** Moves parameters and buffers to a device ('cpu', 'cuda', 'cuda:1'). */
  async to(device: string): Promise<this> {
    if (typeof device !== 'string') throw invalidArg('device', "a device string such as 'cpu' or 'cuda'", device);
    const h = this.handle;
    await awaitNative(() => h.to(device));
    return this;
  }

  dispose(): void {
    if (!this.#disposed) this.native.dispose();
    this.#disposed = true;
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
}

export type ResNetDepth = 18 | 34 | 50;
export type Stem = 'cifar' | 'imagenet';

export interface ResNetOptions {
  depth: ResNetDepth;
  /** 'imagenet' = 7×7/2 conv + max-pool; 'cifar' = solo-learn's 3×3/1 conv, padding 2, no max-pool. Default 'imagenet'. */
  stem?: Stem;
  /** Adds torchvision's `fc` classifier with this many outputs; 0 (default) = backbone only, as solo-learn. */
  numClasses?: number;
  /** Zero-initialise the last BN γ of each residual branch (torchvision's zero_init_residual). */
  zeroInitResidual?: boolean;
  /** Store conv weights channels_last (NHWC): faster convolutions with oneDNN / cuDNN. Default false. */
  channelsLast?: boolean;
}

export class ResNet extends Module {
  readonly depth: ResNetDepth;
  readonly stem: Stem;
  /** Width of the pooled feature: 512 (ResNet-18/34) or 2048 (ResNet-50). */
  readonly featureDim: number;

  /** @internal */
  constructor(handle: NativeModule, depth: ResNetDepth, stem: Stem) {
    super(handle);
    this.depth = depth;
    this.stem = stem;
    this.featureDim = depth === 50 ? 2048 : 512;
  }

  /** The layer4 feature map (N, C, H, W): 512×5×5 for a CIFAR-stem ResNet-18 on 32×32 input. */
  featureMap(x: Tensor, opts: ForwardOptions = {}): Promise<Tensor> {
    const h = this.handle;
    const xh = x.handle;
    return awaitNative(async () => new Tensor(await h.featureMap(xh, { grad: opts.grad ?? true })));
  }

  /** Converts 4-D weights to channels_last (true) or back to contiguous (false). */
  channelsLast(on = true): this {
    callNative(() => this.handle.setChannelsLast(on));
    return this;
  }
}

export function resnet(opts: ResNetOptions): ResNet {
  return buildResNet(opts, true);
}

/**
 * @internal A ResNet whose weights are about to be overwritten (loadCheckpoint): skips torchvision's
 * initialisation pass (kaiming-normal over every conv weight), which the file's weights would overwrite.
 */
export function resnetForWeights(opts: ResNetOptions): ResNet {
  return buildResNet(opts, false);
}

function buildResNet(opts: ResNetOptions, init: boolean): ResNet {
  if (typeof opts !== 'object' || opts === null) throw invalidArg('options', 'an object such as { depth: 18 }', opts);
  if (![18, 34, 50].includes(opts.depth)) throw invalidArg('depth', '18, 34 or 50', opts.depth);
  const stem = opts.stem ?? 'imagenet';
  if (stem !== 'cifar' && stem !== 'imagenet') throw invalidArg('stem', "'cifar' or 'imagenet'", stem);
  const numClasses = opts.numClasses ?? 0;
  if (!Number.isInteger(numClasses) || numClasses < 0) throw invalidArg('numClasses', 'a non-negative integer', numClasses);
  const h = callNative(() => native().createResNet({ depth: opts.depth, stem, numClasses, zeroInitResidual: opts.zeroInitResidual ?? false, init }));
  const net = new ResNet(h, opts.depth, stem);
  if (opts.channelsLast) net.channelsLast(true);
  return net;
}

export interface ProjectorOptions {
  /** Input width: the backbone's featureDim (512 for ResNet-18/34, 2048 for ResNet-50). */
  inputDim: number;
  /** A preset supplies hiddenDims / outputDim / batchNorm; explicit options override it. */
  preset?: ProjectorPreset;
  hiddenDims?: number[];
  outputDim?: number;
  batchNorm?: boolean;
  /** The hidden Linears' bias (default: the preset's, else true). */
  hiddenBias?: boolean;
  /** The output Linear's bias: 'on', 'off', or 'frozen' (kept, requires_grad false). */
  outputBias?: 'on' | 'off' | 'frozen';
  /** A final BatchNorm1d (affine=False unless outputBatchNormAffine). */
  outputBatchNorm?: boolean;
  /** That final BatchNorm1d with weight and bias (NNCLR's projector). */
  outputBatchNormAffine?: boolean;
  /** The activation between layers: 'relu' (default) or 'gelu' (DINO's head). */
  activation?: 'relu' | 'gelu';
}

export class Projector extends Module {
  readonly inputDim: number;
  readonly hiddenDims: number[];
  readonly outputDim: number;
  readonly batchNorm: boolean;
  /** @internal */
  constructor(handle: NativeModule, o: { inputDim: number; hiddenDims: number[]; outputDim: number; batchNorm: boolean }) {
    super(handle);
    this.inputDim = o.inputDim;
    this.hiddenDims = o.hiddenDims;
    this.outputDim = o.outputDim;
    this.batchNorm = o.batchNorm;
  }
}

export function projector(opts: ProjectorOptions): Projector {
  if (typeof opts !== 'object' || opts === null) throw invalidArg('options', 'an object such as { inputDim: 512, preset: "vicreg" }', opts);
  if (opts.preset !== undefined && !(opts.preset in PROJECTOR_PRESETS))
    throw invalidArg('preset', `one of ${Object.keys(PROJECTOR_PRESETS).join(', ')}`, opts.preset);
  const base = PROJECTOR_PRESETS[opts.preset ?? 'vicreg'];
  const o = {
    inputDim: opts.inputDim,
    hiddenDims: [...(opts.hiddenDims ?? base.hiddenDims)],
    outputDim: opts.outputDim ?? base.outputDim,
    batchNorm: opts.batchNorm ?? base.batchNorm,
  };
  const posInt = (v: unknown) => Number.isInteger(v) && (v as number) > 0;
  if (!posInt(o.inputDim)) throw invalidArg('inputDim', 'a positive integer', opts.inputDim);
  if (!posInt(o.outputDim)) throw invalidArg('outputDim', 'a positive integer', o.outputDim);
  if (!o.hiddenDims.every(posInt)) throw invalidArg('hiddenDims', 'an array of positive integers', o.hiddenDims);
  if (typeof o.batchNorm !== 'boolean') throw invalidArg('batchNorm', 'a boolean', o.batchNorm);
  const b = base as ProjectorLayout;
  const head = toNativeHead({
    ...o,
    hiddenBias: opts.hiddenBias ?? b.hiddenBias,
    outputBias: opts.outputBias ?? b.outputBias,
    outputBatchNorm: opts.outputBatchNorm ?? b.outputBatchNorm,
    outputBatchNormAffine: opts.outputBatchNormAffine ?? b.outputBatchNormAffine,
    activation: opts.activation ?? b.activation,
  });
  if (!['on', 'off', 'frozen'].includes(head.outputBias)) throw invalidArg('outputBias', "'on', 'off' or 'frozen'", opts.outputBias);
  if (!['relu', 'gelu'].includes(head.activation)) throw invalidArg('activation', "'relu' or 'gelu'", opts.activation);
  return new Projector(
    callNative(() => native().createProjector({ inputDim: o.inputDim, ...head })),
    o,
  );
}
