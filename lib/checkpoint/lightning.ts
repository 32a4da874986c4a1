/**
 * The solo-learn / PyTorch Lightning checkpoint layout of a training run, in both directions: what
 * `torch-ssl train` writes (state_dict under backbone.* / projector.* / classifier.*, LARS momentum in
 * optimizer_states, the warmup-cosine scheduler's state, the grad scaler's, parameter_names, a torch_ssl
 * entry, args.json beside it) and what `resume` and `backbone.init` read back. Files Python's
 * `torch.load(..., weights_only=True)` reads and solo-learn's own loaders accept (docs/training.md).
 */
import { join } from 'node:path';
import { LARS_DEFAULTS } from '../defaults.js';
import { TorchSslError } from '../errors.js';
import { writeFileAtomically } from '../io.js';
import type { NativeCheckpointEvent, NativeTensor } from '../native.js';
import { Tensor } from '../tensor.js';
import { DTYPE_BYTES, typedArrayFor } from '../dtype.js';
import type { TrainConfig } from '../train-config.js';
import { readTorchFile, tensorMap, writeTorchFile, type WritableValue } from './index.js';
import { dictGet, type PyValue } from './pyvalue.js';
import { MODULE_NAMES } from './state-dict.js';
import { TensorRef } from './tensor-ref.js';
import { loadCheckpoint } from './load.js';
import { methodModules, methodSpec } from '../methods/index.js';

/** A checkpoint event of the native trainer. */
/** What the engine sends at each checkpoint: the weights and the optimizer's state to write. */
export type RawCheckpoint = NativeCheckpointEvent;

/** A resolved training config (what resolveTrainConfig returns). */
type RunConfig = TrainConfig & { method: string };

/**
 * A checkpoint snapshot's elements, viewed in place (no copy on the JS thread) when the writer reaches
 * it. The trainer cloned these tensors for this event alone, so nothing mutates them.
 */
function tensorData(t: NativeTensor) {
  const w = new Tensor(t);
  const dtype = w.dtype;
  return {
    dtype,
    shape: w.shape,
    load: () => {
      const buf = t.toSharedBuffer();
      w.dispose();
      return typedArrayFor(dtype, buf, 0, buf.byteLength / DTYPE_BYTES[dtype]);
    },
  };
}

/** Writes one training checkpoint (solo-learn / Lightning layout) atomically at `path`. */
export async function writeTrainingCheckpoint(
  path: string,
  e: RawCheckpoint,
  c: RunConfig,
  stepsPerEpoch: number,
  version: string,
  worldSize = 1,
): Promise<void> {
  const stateDict = new Map<string, WritableValue>(e.stateDict.map(([k, t]) => [k, tensorData(t)]));
  const parameterNames = e.parameterNames;
  const momentumByName = new Map(e.momentum);
  const state = new Map<number, WritableValue>();
  parameterNames.forEach((n, i) => {
    const m = momentumByName.get(n);
    if (m) state.set(i, new Map([['momentum_buffer', tensorData(m)]]));
  });
  const groups = Object.entries(e.groupLrs).map(([groupName, lr]) => {
    const idx = parameterNames
      .map((n, i) => [n, i] as const)
      .filter(([n]) => n.startsWith(`${groupName}.`))
      .map(([, i]) => i);
    return {
      name: groupName,
      lr,
      momentum: c.optimizer.momentum,
      dampening: LARS_DEFAULTS.dampening,
      weight_decay: groupName === 'classifier' ? 0 : c.optimizer.weightDecay!,
      nesterov: LARS_DEFAULTS.nesterov,
      eta: c.optimizer.eta,
      eps: LARS_DEFAULTS.eps,
      clip_lr: c.optimizer.clipLr,
      exclude_bias_n_norm: c.optimizer.excludeBiasAndNorm,
      params: idx,
    };
  });
  await writeTorchFile(path, {
    epoch: e.epoch,
    global_step: e.globalStep,
    'pytorch-lightning_version': `torch-ssl ${version}`,
    state_dict: stateDict,
    optimizer_states: [{ state, param_groups: groups }],
    lr_schedulers: [
      {
        warmup_epochs: c.scheduler.warmupEpochs * stepsPerEpoch,
        max_epochs: c.epochs * stepsPerEpoch,
        warmup_start_lr: c.scheduler.warmupStartLr,
        eta_min: c.scheduler.minLr,
        base_lrs: groups.map((g) => (g.name === 'classifier' ? c.optimizer.classifierLr! : c.optimizer.lr!)),
        last_epoch: e.globalStep,
      },
    ],
    parameter_names: parameterNames,
    ...(e.gradScale
      ? {
          native_amp_scaling_state: {
            scale: e.gradScale,
            growth_factor: c.gradScaler.growthFactor,
            backoff_factor: c.gradScaler.backoffFactor,
            growth_interval: c.gradScaler.growthInterval,
            _growth_tracker: e.ampGrowthTracker ?? 0,
          },
        }
      : {}),
    // The modules this run trains (student, predictor, teacher) and the teacher's tau schedule (a function of
    // global_step, so resume continues it exactly).
    torch_ssl: {
      version,
      method: c.method,
      precision: c.precision,
      world_size: worldSize,
      optimizer: c.optimizer.name ?? 'lars',
      modules: [...new Set(e.stateDict.map(([k]) => k.slice(0, k.indexOf('.'))))],
      ...(c.momentum ? { momentum: { base_tau: c.momentum.baseTau!, final_tau: c.momentum.finalTau!, max_steps: c.epochs * stepsPerEpoch } } : {}),
    },
  });
}

/** Writes args.json (solo-learn's run description) atomically into `dir`; returns its path. */
export async function writeArgsJson(dir: string, args: Record<string, unknown>): Promise<string> {
  const path = join(dir, 'args.json');
  await writeFileAtomically(path, Buffer.from(JSON.stringify(args, null, 2), 'utf8'));
  return path;
}

/** optimizer_states[0] of a Lightning checkpoint, if any. */
function firstOptimizerState(root: PyValue): PyValue | undefined {
  const states = dictGet(root, 'optimizer_states');
  return Array.isArray(states) ? states[0] : undefined;
}

/**
 * What `resume` needs from a checkpoint, checked before anything trains: written by this trainer (its
 * `torch_ssl` entry), for the same method, with its head (projector), the optimizer state and the parameter
 * names; a backbone from elsewhere belongs in `backbone.init`.
 */
function checkResumable(path: string, root: PyValue, c: TrainConfig, sdKeys: string[], worldSize: number): void {
  const missing: string[] = [];
  const mark = dictGet(root, 'torch_ssl');
  if (mark === undefined || mark === null) missing.push('the torch_ssl entry (written by torch-ssl train)');
  // The method's head (projector; DINO's head): the engine then names any other module the file lacks.
  const head = methodModules(methodSpec(c.method)).find((m) => m !== MODULE_NAMES.backbone) ?? MODULE_NAMES.projector;
  if (!sdKeys.some((k) => k.startsWith(`${head}.`))) missing.push(`${head} weights`);
  if (!sdKeys.some((k) => k.startsWith(`${MODULE_NAMES.backbone}.`))) missing.push(`backbone weights under ${MODULE_NAMES.backbone}.*`);
  if (!(dictGet(firstOptimizerState(root), 'state') instanceof Map)) missing.push('the optimizer state (optimizer_states[0].state)');
  if (!Array.isArray(dictGet(root, 'parameter_names'))) missing.push('parameter_names');
  const step = dictGet(root, 'global_step');
  if (typeof step !== 'number' && typeof step !== 'bigint') missing.push('global_step');
  if (missing.length > 0) {
    throw new TorchSslError(
      'ERR_CHECKPOINT_FORMAT',
      `config.resume ${path} is not a training checkpoint of torch-ssl train: it lacks ${missing.join(', ')}. To start a new run from its backbone, use backbone.init instead`,
      { file: path, missing },
    );
  }
  const method = dictGet(mark ?? undefined, 'method');
  if (typeof method === 'string' && method !== c.method) {
    throw new TorchSslError('ERR_CONFIG', `config.resume ${path} was trained with method ${method}, but config.method is ${c.method}`, { file: path });
  }
  // The data each rank reads and the steps per epoch depend on the world size: resume with the same one.
  const savedWorld = Number(dictGet(mark ?? undefined, 'world_size') ?? 1);
  if (savedWorld !== worldSize) {
    throw new TorchSslError(
      'ERR_CONFIG',
      `config.resume ${path} was trained by ${savedWorld} process${savedWorld === 1 ? '' : 'es'}, but this run has ${worldSize} (world size): resume with the same number`,
      { file: path },
    );
  }
}

export async function readResume(path: string, c: TrainConfig, worldSize = 1) {
  const file = await readTorchFile(path);
  try {
    const root = file.root;
    const sd = tensorMap(dictGet(root, 'state_dict'));
    if (!sd)
      throw new TorchSslError('ERR_CHECKPOINT_FORMAT', `config.resume ${path}: no state_dict to resume from; to start from a backbone use backbone.init`, {
        file: path,
      });
    checkResumable(path, root, c, [...sd.keys()], worldSize);
    const stateDict: [string, NativeTensor][] = [];
    for (const [k, ref] of sd) stateDict.push([k, Tensor.from(await ref.read(), ref.shape, { dtype: ref.dtype }).handle]);
    const names = dictGet(root, 'parameter_names');
    const momentum: [string, NativeTensor][] = [];
    const state = dictGet(firstOptimizerState(root), 'state');
    if (Array.isArray(names) && state instanceof Map) {
      for (const [idx, s] of state) {
        const ref = dictGet(s, 'momentum_buffer');
        const name = names[Number(idx)];
        if (ref instanceof TensorRef && typeof name === 'string') momentum.push([name, Tensor.from(await ref.read(), ref.shape, { dtype: ref.dtype }).handle]);
      }
    }
    // GradScaler.state_dict() (scale, growth factors, _growth_tracker): Lightning 1.x's key, which this
    // trainer writes, or the precision plugin's class name that Lightning >= 1.6 / 2.x use.
    const amp = (['native_amp_scaling_state', 'MixedPrecision', 'MixedPrecisionPlugin', 'NativeMixedPrecisionPlugin'] as const)
      .map((k) => dictGet(root, k))
      .find((v) => v !== undefined && v !== null);
    const ampScale = amp ? Number(dictGet(amp, 'scale') ?? 0) : 0;
    const ampGrowthTracker = amp ? Number(dictGet(amp, '_growth_tracker') ?? 0) : 0;
    return {
      globalStep: Number(dictGet(root, 'global_step') ?? 0),
      backboneOnly: false,
      stateDict,
      momentum,
      ...(ampScale > 0 ? { ampScale, ampGrowthTracker } : {}),
    };
  } finally {
    await file.close();
  }
}

/**
 * `backbone.init`: any checkpoint loadCheckpoint reads (solo-learn, torchvision, torch-ssl); its backbone's
 * weights and BatchNorm buffers start a new run (epoch 0, step 0, fresh projector and momentum).
 */
export async function readBackboneInit(path: string, c: TrainConfig) {
  const loaded = await loadCheckpoint(path, { heads: false });
  try {
    const { depth, stem } = loaded.backbone;
    if (depth !== c.backbone.depth || stem !== c.backbone.stem) {
      throw new TorchSslError(
        'ERR_CONFIG',
        `config.backbone.init ${path} holds a ResNet-${depth} (${stem} stem), but config.backbone is ResNet-${c.backbone.depth} (${c.backbone.stem} stem)`,
        { file: path },
      );
    }
    const stateDict: [string, NativeTensor][] = Object.entries(loaded.backbone.stateDict()).map(([k, t]) => [
      `${MODULE_NAMES.backbone}.${k}`,
      t.clone().handle,
    ]);
    return { globalStep: 0, backboneOnly: true, stateDict, momentum: [] as [string, NativeTensor][] };
  } finally {
    loaded.dispose();
  }
}
