/**
 * The training configuration schema (zod): the one place where defaults live. Per-method defaults follow
 * solo-learn's CIFAR configs (scripts/pretrain/cifar/*.yaml) and the BagSSL seed (appendix C); presets
 * bundle whole recipes. Validation errors name the field at fault.
 */
import type { z } from 'zod';
import { zod } from './zod.js';
import { KNN_DEFAULTS, LARS_DEFAULTS, SCHEDULE_DEFAULTS } from './defaults.js';
import { TorchSslError } from './errors.js';
import { cpuHasNativeBf16, cpuIsa } from './cpu.js';
import { findUnknownKey, isPlainObject, joinPath } from './strict-keys.js';
import type { NativeHead } from './native.js';
import { PROJECTOR_PRESETS, toNativeHead } from './methods/presets.js';
import { checkLossOptions, METHOD_REGISTRY, METHODS, methodSpec, type Method, type MethodSpec } from './methods/index.js';

export { METHODS, type Method };

/** zod's namespace, as lib/zod.ts loads it on first use. */
type Zod = typeof z;

/** One view's augmentation pipeline (solo-learn order: crop, jitter, gray, blur, solarize, flip). */
function buildViewSchema(z: Zod) {
  const prob = z.number().min(0).max(1);
  const positive = z.number().positive();
  return z.object({
    size: z.number().int().positive().default(32),
    scale: z.tuple([positive, positive]).default([0.08, 1]),
    ratio: z.tuple([positive, positive]).default([3 / 4, 4 / 3]),
    interpolation: z.enum(['bicubic', 'bilinear']).default('bicubic'),
    jitter: z
      .object({ p: prob, brightness: z.number().min(0), contrast: z.number().min(0), saturation: z.number().min(0), hue: z.number().min(0).max(0.5) })
      .default({ p: 0.8, brightness: 0.4, contrast: 0.4, saturation: 0.2, hue: 0.1 }),
    grayscale: prob.default(0.2),
    blur: z.object({ p: prob.default(0), sigma: z.tuple([positive, positive]).default([0.1, 2]), kernel: z.number().int().min(0).default(0) }).prefault({}),
    solarize: prob.default(0),
    flip: prob.default(0.5),
    /** Views this pipeline gives per image (solo-learn's num_crops; multi-crop: e.g. 2 crops of 32, 6 of 16). */
    crops: z.number().int().positive().optional(),
  });
}

/** The schemas, built on first use from the lazily loaded zod (lib/zod.ts). */
function buildSchemas(z: Zod) {
  const prob = z.number().min(0).max(1);
  const positive = z.number().positive();

  const ViewSchema = buildViewSchema(z);

  /** `config.loss`: any method's options here; each method's own schema checks them (lib/methods/method.ts). */
  const LossSchema = z.record(z.string(), z.union([z.number(), z.boolean()]));

  const NormalizationSchema = z.union([
    z.enum(['cifar10', 'cifar100', 'imagenet', 'emp-ssl', 'fashion-mnist', 'mnist']),
    z.object({ mean: z.tuple([z.number(), z.number(), z.number()]), std: z.tuple([positive, positive, positive]) }),
  ]);

  const TrainConfigSchema = z.object({
    method: z.enum(METHODS),
    data: z.object({
      /** .npy (uint8 N×H×W×3), MNIST-family IDX images (`*-images-idx3-ubyte[.gz]`), CIFAR binary folder or image folder. */
      train: z.string().min(1),
      /** Labels .npy for the online classifier / kNN (auto-detected beside .npy inputs, from folders). */
      labels: z.string().optional(),
      /** A labelled validation set for online kNN. */
      val: z.string().optional(),
      valLabels: z.string().optional(),
      /**
       * Per-channel statistics the views and the kNN inputs are normalised with. Default: the data set's own
       * when the source knows it (CIFAR-10/100 folders, Fashion-MNIST / MNIST IDX files), else cifar10.
       */
      normalization: NormalizationSchema.optional(),
      /** Bring image-folder and IDX inputs to this side (IDX: see `fit`). */
      size: z.number().int().positive().optional(),
      /** IDX inputs: zero-pad (default when `size` is larger than the stored side) or resize (bilinear, antialiased) to `size`. */
      fit: z.enum(['pad', 'resize']).optional(),
      /** Train on the first `limit` images of `train` only. */
      limit: z.number().int().positive().optional(),
      /** With `limit`: train on a seeded random sample of `limit` images of `train` instead of the first ones. */
      sampleSeed: z.number().int().min(0).optional(),
      /** Evaluate online kNN on the first `valLimit` images of `val` only. */
      valLimit: z.number().int().positive().optional(),
      /** A seeded permutation per epoch (default); false keeps the dataset's order (comparisons with other tools). */
      shuffle: z.boolean().default(true),
    }),
    backbone: z
      .object({
        depth: z.union([z.literal(18), z.literal(34), z.literal(50)]).default(18),
        stem: z.enum(['cifar', 'imagenet']).default('cifar'),
        zeroInitResidual: z.boolean().default(false),
        /** Start from this checkpoint's backbone weights (solo-learn, torchvision, torch-ssl): a new run (epoch 0,
         *  fresh projector and optimizer), unlike `resume`, which continues a run this trainer wrote. */
        init: z.string().min(1).optional(),
      })
      .prefault({}),
    projector: z
      .object({
        preset: z.enum(Object.keys(PROJECTOR_PRESETS) as [string, ...string[]]).optional(),
        hiddenDims: z.array(z.number().int().positive()).optional(),
        outputDim: z.number().int().positive().optional(),
        batchNorm: z.boolean().optional(),
      })
      .default({}),
    /** Number of views (SimCLR may use more than 2); for TCR the number of patches per image. */
    views: z.number().int().min(2).optional(),
    augmentation: z.union([z.enum(Object.keys(AUGMENTATION_PRESETS) as [string, ...string[]]), z.array(ViewSchema.partial())]).optional(),
    /** The method's loss options (lib/methods/<method>.ts); an option the method does not have is an error. */
    loss: LossSchema.default({}),
    /** Methods with a predictor (BYOL, MoCo v3, SimSiam): override its preset's hidden layers / BatchNorm. */
    predictor: z.object({ hiddenDims: z.array(z.number().int().positive()).optional(), batchNorm: z.boolean().optional() }).optional(),
    /** Methods with a teacher (BYOL, MoCo v3): the EMA's tau, from baseTau at step 0 to finalTau at the last step (cosine). */
    momentum: z.object({ baseTau: prob.optional(), finalTau: prob.optional() }).optional(),
    optimizer: z
      .object({
        /** lars (default), or momentum SGD (solo-learn's SimSiam recipe); default: the method's. */
        name: z.enum(['lars', 'sgd']).optional(),
        lr: positive.optional(),
        /** The online classifier's lr; default: the method's (0.1; MoCo v3 0.3). */
        classifierLr: positive.optional(),
        weightDecay: z.number().min(0).optional(),
        eta: positive.default(LARS_DEFAULTS.eta),
        momentum: z.number().min(0).max(1).default(LARS_DEFAULTS.momentum),
        clipLr: z.boolean().default(LARS_DEFAULTS.clipLr),
        excludeBiasAndNorm: z.boolean().default(LARS_DEFAULTS.excludeBiasAndNorm),
      })
      .prefault({}),
    scheduler: z
      .object({
        warmupEpochs: z.number().min(0).default(SCHEDULE_DEFAULTS.warmupEpochs),
        warmupStartLr: z.number().min(0).default(SCHEDULE_DEFAULTS.warmupStartLr),
        minLr: z.number().min(0).default(SCHEDULE_DEFAULTS.minLr),
      })
      .prefault({}),
    batchSize: z.number().int().min(2).default(256),
    epochs: z.number().int().positive().default(1000),
    /** Stop after this many steps (0: run all epochs). */
    maxSteps: z.number().int().min(0).default(0),
    /**
     * Profile this many steps after the first (0: off): LibTorch's profiler on the training thread, op by op
     * within each phase of the step, in the result's `profile` (bench/profile.mjs prints it). Slows those steps
     * by the profiler's overhead.
     */
    profileSteps: z.number().int().min(0).default(0),
    device: z.string().default('cpu'),
    /**
     * '32'; 'bf16-mixed' (CUDA, or CPU — fast where the CPU has AVX512-BF16/AMX); '16-mixed' (CUDA only,
     * with a grad scaler); 'auto': the fastest of these the device runs natively — on CPU 'bf16-mixed' where it
     * has AVX512-BF16 or AMX, else '32'; on CUDA '16-mixed' (every CUDA GPU has fp16 tensor cores; bf16 needs
     * Ampere or later). The resolved config (and the checkpoint's args.json) holds the choice, with its reason in
     * `precisionReason`. Backbone, projector and classifier run under autocast; losses and the LARS update stay
     * float32 on float32 master weights.
     */
    precision: z.enum(['32', '16-mixed', 'bf16-mixed', 'auto']).default('32'),
    /** Dynamic loss scaling (torch.cuda.amp.GradScaler's defaults); enabled defaults to precision === '16-mixed'. */
    gradScaler: z
      .object({
        enabled: z.boolean().optional(),
        initScale: positive.default(65536),
        growthFactor: z.number().gt(1).default(2),
        backoffFactor: z.number().gt(0).lt(1).default(0.5),
        growthInterval: z.number().int().positive().default(2000),
      })
      .prefault({}),
    /** channels_last activations and conv weights: 1.3–1.8× faster steps with oneDNN (bench/forward). */
    channelsLast: z.boolean().default(true),
    seed: z.number().int().min(0).default(5),
    /** Intra-op threads (0: all cores). */
    threads: z.number().int().min(0).default(0),
    checkpoint: z.object({ dir: z.string().default('trained_models'), every: z.number().int().min(0).default(1), name: z.string().optional() }).prefault({}),
    knn: z
      .object({
        every: z.number().int().min(0).default(0),
        k: z.number().int().positive().default(KNN_DEFAULTS.k),
        temperature: positive.default(KNN_DEFAULTS.temperature),
      })
      .prefault({}),
    logEvery: z.number().int().positive().default(10),
    /** A checkpoint written by torch-ssl train to continue from. */
    resume: z.string().optional(),
    /**
     * This run is one rank of a c10d data-parallel job (docs/distributed.md). torchrun's environment variables
     * (WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) fill what is not given here; `torch-ssl train
     * --nproc N` sets them for its workers. `batchSize` is per rank, as under DDP.
     */
    dist: z
      .object({
        worldSize: z.number().int().positive().optional(),
        rank: z.number().int().min(0).optional(),
        localRank: z.number().int().min(0).optional(),
        masterAddr: z.string().min(1).optional(),
        masterPort: z.number().int().min(1).max(65535).optional(),
        /** gloo (CPU) or nccl (CUDA); default: nccl on a CUDA device, else gloo. */
        backend: z.enum(['gloo', 'nccl']).optional(),
        /** Seconds a collective may wait for a peer (PyTorch's default, 30 min: rank 0's kNN runs while the others wait). */
        timeout: positive.default(1800),
        /** Seconds every rank has to arrive at the rendezvous. */
        rendezvousTimeout: positive.default(300),
        /** BatchNorm statistics over the global batch (nn.SyncBatchNorm). */
        syncBatchNorm: z.boolean().default(false),
        /** Gradient buckets of about this many MB, all-reduced while backward runs (DDP's bucket_cap_mb). */
        bucketMb: z.number().int().positive().default(25),
      })
      .optional(),
  });
  return { ViewSchema, TrainConfigSchema };
}

let built: ReturnType<typeof buildSchemas> | undefined;
export function schemas(): ReturnType<typeof buildSchemas> {
  built ??= buildSchemas(zod());
  return built;
}
type ViewSchema = ReturnType<typeof buildViewSchema>;
type TrainConfigSchema = ReturnType<typeof buildSchemas>['TrainConfigSchema'];
export type ViewConfig = z.infer<ViewSchema>;

/** Augmentation recipes: each method's (lib/methods/*.ts: solo-learn CIFAR augmentations/*.yaml, EMP-SSL's patches). */
export const AUGMENTATION_PRESETS: Record<string, Partial<z.input<ViewSchema>>[]> = Object.fromEntries(
  Object.values(METHOD_REGISTRY as Record<string, MethodSpec>)
    .flatMap((m) => [m.augmentation, ...(m.moreAugmentations ?? [])])
    .map((a) => [a.name, a.views as Partial<z.input<ViewSchema>>[]]),
);

export type TrainConfigInput = z.input<TrainConfigSchema>;
export type TrainConfig = z.output<TrainConfigSchema>;

/** Per-method training defaults, from the method files (lib/methods/*.ts). */
export interface MethodDefaults {
  lr: number;
  weightDecay: number;
  classifierLr: number;
  optimizer: 'lars' | 'sgd';
  views: number;
  augmentation: string;
  projector: keyof typeof PROJECTOR_PRESETS;
  loss: Record<string, number>;
  concatViews: boolean;
  momentum: { baseTau: number; finalTau: number } | null;
}
export const METHOD_DEFAULTS: Record<Method, MethodDefaults> = Object.fromEntries(
  METHODS.map((name) => {
    const m = methodSpec(name);
    const d: MethodDefaults = {
      lr: m.train.lr,
      weightDecay: m.train.weightDecay,
      classifierLr: m.train.classifierLr ?? 0.1,
      optimizer: m.train.optimizer ?? 'lars',
      views: m.views.default,
      augmentation: m.augmentation.name,
      projector: name,
      loss: { ...m.train.loss },
      concatViews: m.concatViews,
      momentum: m.momentum ? { ...m.momentum } : null,
    };
    return [name, d];
  }),
) as Record<Method, MethodDefaults>;

/** BagSSL seed C.1: CIFAR ResNet-34, 600 epochs, batch 1024, LARS lr 0.3, wd 1e-4, 10 warm-up epochs. */
const bagsslC1 = (projector: 'bagssl-cifar10' | 'bagssl-cifar100'): Partial<TrainConfigInput> => ({
  backbone: { depth: 34, stem: 'cifar' },
  epochs: 600,
  batchSize: 1024,
  optimizer: { lr: 0.3, weightDecay: 1e-4 },
  projector: { preset: projector },
  loss: { temperature: 0.1, lambda: 30, eps: 0.2 },
});

/** Whole recipes; a config's own fields override the preset's. */
export const TRAIN_PRESETS: Record<string, Partial<TrainConfigInput>> = {
  'bagssl-c1-cifar10': bagsslC1('bagssl-cifar10'),
  'bagssl-c1-cifar100': bagsslC1('bagssl-cifar100'),
  /** BagSSL seed C.2: ImageNet-100 ResNet-50, 400 epochs, batch 1024, lr 0.1, 3×8192 projector, TCR λ 1920. */
  'bagssl-c2-imagenet100': {
    backbone: { depth: 50, stem: 'imagenet' },
    epochs: 400,
    batchSize: 1024,
    optimizer: { lr: 0.1, weightDecay: 1e-4 },
    projector: { preset: 'bagssl-imagenet' },
    loss: { temperature: 0.1, lambda: 1920, eps: 0.2 },
    data: { train: '', normalization: 'imagenet' },
  },
  /** solo-learn's CIFAR recipes (1000 epochs, batch 256). */
  'solo-cifar-vicreg': { method: 'vicreg', epochs: 1000, batchSize: 256 },
  'solo-cifar-barlow': { method: 'barlow', epochs: 1000, batchSize: 256 },
  'solo-cifar-simclr': { method: 'simclr', epochs: 1000, batchSize: 256 },
  /** EMP-SSL-style TCR on CIFAR: 20 fixed-scale patches, batch 100. */
  'emp-ssl-cifar': { method: 'tcr', views: 20, batchSize: 100, epochs: 30, data: { train: '', normalization: 'emp-ssl' } },
};

export function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    out[k] = isPlainObject(v) && isPlainObject(out[k]) ? deepMerge(out[k] as Record<string, unknown>, v) : v;
  }
  return out;
}

/** Validates a config (with an optional `preset` key) and fills every default. Errors name the field. */
/** A precision the engine runs ('auto' resolved). */
export type Precision = Exclude<TrainConfig['precision'], 'auto'>;

/** What `precision: 'auto'` means on `device`: the precision and why, in words for the logs. */
export function autoPrecision(device: string): { precision: Precision; reason: string } {
  if (device.startsWith('cuda')) return { precision: '16-mixed', reason: "precision 'auto' on CUDA: fp16 autocast with a grad scaler" };
  if (cpuHasNativeBf16()) return { precision: 'bf16-mixed', reason: `precision 'auto': bf16-mixed, since the CPU has native bf16 (${cpuIsa()})` };
  return { precision: '32', reason: `precision 'auto': float32, since the CPU has no native bf16 (${cpuIsa() ?? 'unknown ISA'}; bf16 would be emulated)` };
}

export type ResolvedTrainConfig = Omit<TrainConfig, 'loss' | 'precision'> & {
  precision: Precision;
  /** Set when the config said precision 'auto': what it chose and why. */
  precisionReason?: string;
  /** Every option of the method's loss, booleans as 0 / 1 (what the engine reads). */
  loss: Record<string, number>;
  resolvedViews: ViewConfig[];
  numViews: number;
  concatViews: boolean;
  projectorResolved: NativeHead;
  /** The predictor of methods that have one (BYOL, MoCo v3, SimSiam), else null. */
  predictorResolved: NativeHead | null;
};
export function resolveTrainConfig(input: unknown): ResolvedTrainConfig {
  if (!isPlainObject(input)) throw new TorchSslError('ERR_CONFIG', 'config must be an object');
  let raw: Record<string, unknown> = input;
  if (typeof raw.preset === 'string') {
    const preset = TRAIN_PRESETS[raw.preset];
    if (!preset) throw new TorchSslError('ERR_CONFIG', `config.preset: unknown preset "${raw.preset}" (known: ${Object.keys(TRAIN_PRESETS).join(', ')})`);
    const { preset: _p, ...rest } = raw;
    raw = deepMerge(preset as Record<string, unknown>, rest);
  }
  const unknown = findUnknownKey(raw, schemas().TrainConfigSchema, ['config']);
  if (unknown) {
    const { parent, key, allowed, suggestion } = unknown;
    const near = suggestion !== undefined ? `; did you mean ${joinPath([...parent, suggestion])}?` : '';
    throw new TorchSslError('ERR_CONFIG', `${joinPath([...parent, key])}: unknown key${near} (valid: ${allowed.join(', ')})`, {
      key: joinPath([...parent, key]),
      suggestion,
    });
  }
  const parsed = schemas().TrainConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `config.${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new TorchSslError('ERR_CONFIG', `invalid training config:\n  ${lines.join('\n  ')}`, { issues: parsed.error.issues });
  }
  const { precision: asked, ...rest } = parsed.data;
  const auto = asked === 'auto' ? autoPrecision(rest.device) : undefined;
  const c = { ...rest, precision: auto?.precision ?? (asked as Precision), ...(auto && { precisionReason: auto.reason }) };
  const m = METHOD_DEFAULTS[c.method];
  c.optimizer.lr ??= m.lr;
  c.optimizer.weightDecay ??= m.weightDecay;
  c.optimizer.classifierLr ??= m.classifierLr;
  c.optimizer.name ??= m.optimizer;
  // The method's own options, checked by its schema: an option of another method in the config is an error;
  // in a whole-recipe preset (which may carry several methods' options) it is left out. The engine gets every one.
  const spec = methodSpec(c.method);
  const ownLoss = isPlainObject(input.loss) ? input.loss : {};
  const given = Object.fromEntries(Object.entries(c.loss).filter(([k]) => k in spec.lossOptions || k in ownLoss));
  const checked = checkLossOptions(spec, given);
  const merged: Record<string, number | undefined> = { ...m.loss, ...checked };
  c.loss = Object.fromEntries(Object.keys(spec.lossOptions).map((k) => [k, merged[k]!]));
  const problem = spec.checkConfig?.({ loss: c.loss as Record<string, number>, batchSize: c.batchSize });
  if (problem) throw new TorchSslError('ERR_CONFIG', problem, { key: 'config.loss' });
  if (c.momentum !== undefined && !spec.momentum)
    throw new TorchSslError(
      'ERR_CONFIG',
      `config.momentum: method ${c.method} has no teacher to update (momentum applies to ${METHODS.filter((n) => methodSpec(n).momentum).join(', ')})`,
      { key: 'config.momentum' },
    );
  if (spec.momentum) {
    c.momentum = { baseTau: c.momentum?.baseTau ?? spec.momentum.baseTau, finalTau: c.momentum?.finalTau ?? spec.momentum.finalTau };
    if (c.momentum.baseTau! > c.momentum.finalTau!)
      throw new TorchSslError('ERR_CONFIG', `config.momentum: baseTau ${c.momentum.baseTau} is above finalTau ${c.momentum.finalTau}`, {
        key: 'config.momentum',
      });
  }
  if (c.predictor !== undefined && !spec.predictor)
    throw new TorchSslError(
      'ERR_CONFIG',
      `config.predictor: method ${c.method} has no predictor (predictors: ${METHODS.filter((n) => methodSpec(n).predictor).join(', ')})`,
      { key: 'config.predictor' },
    );
  const aug = c.augmentation ?? m.augmentation;
  const partials = typeof aug === 'string' ? AUGMENTATION_PRESETS[aug]! : aug;
  if (partials.length === 0) throw new TorchSslError('ERR_CONFIG', 'config.augmentation: at least one view pipeline is needed');
  const pipelines = partials.map((p, i) => {
    const r = schemas().ViewSchema.safeParse(p);
    if (!r.success)
      throw new TorchSslError('ERR_CONFIG', `config.augmentation[${i}]: ${r.error.issues.map((x) => `${x.path.join('.')}: ${x.message}`).join('; ')}`);
    return r.data;
  });
  // Pipelines with `crops` give that many views each (multi-crop); otherwise `views` cycles through them.
  const counted = pipelines.some((p) => p.crops !== undefined);
  const resolvedViews = counted ? pipelines.flatMap((p) => Array.from({ length: p.crops ?? 1 }, () => p)) : pipelines;
  if (counted && c.views !== undefined && c.views !== resolvedViews.length) {
    throw new TorchSslError('ERR_CONFIG', `config.views: ${c.views} given, but the crops of config.augmentation add up to ${resolvedViews.length}`, {
      key: 'config.views',
    });
  }
  const numViews = counted ? resolvedViews.length : (c.views ?? m.views);
  if (spec.views.exactly !== undefined && numViews !== spec.views.exactly)
    throw new TorchSslError('ERR_CONFIG', `config.views: ${c.method} uses exactly ${spec.views.exactly} views, got ${numViews}`);
  checkCropSizes(spec, counted ? resolvedViews : Array.from({ length: numViews }, (_, v) => resolvedViews[v % resolvedViews.length]!));
  const pp = PROJECTOR_PRESETS[(c.projector.preset ?? m.projector) as keyof typeof PROJECTOR_PRESETS];
  const projectorResolved = toNativeHead({
    ...pp,
    hiddenDims: c.projector.hiddenDims ?? pp.hiddenDims,
    outputDim: c.projector.outputDim ?? pp.outputDim,
    batchNorm: c.projector.batchNorm ?? pp.batchNorm,
  });
  // The predictor maps the projection back to its own width.
  const predictorResolved = spec.predictor
    ? toNativeHead({
        ...spec.predictor,
        hiddenDims: c.predictor?.hiddenDims ?? spec.predictor.hiddenDims,
        batchNorm: c.predictor?.batchNorm ?? spec.predictor.batchNorm,
        outputDim: projectorResolved.outputDim,
      })
    : null;
  if (c.precision === '16-mixed' && !c.device.startsWith('cuda'))
    throw new TorchSslError('ERR_CONFIG', `config.precision: '16-mixed' needs a CUDA device (config.device is '${c.device}'); on CPU use 'bf16-mixed'`);
  if (c.maxSteps === 0 && c.epochs <= 0) throw new TorchSslError('ERR_CONFIG', 'config.epochs must be positive');
  if (c.resume !== undefined && c.backbone.init !== undefined) {
    throw new TorchSslError(
      'ERR_CONFIG',
      'config.resume continues a run of this trainer and config.backbone.init starts a new run from a backbone: give one of them',
    );
  }
  return { ...c, loss: c.loss as Record<string, number>, resolvedViews, numViews, concatViews: m.concatViews, projectorResolved, predictorResolved };
}

/**
 * Views of several sizes are multi-crop: only for methods that take it (DINO, SwAV), with the two large crops
 * first and every other view smaller.
 */
function checkCropSizes(spec: MethodSpec, views: readonly ViewConfig[]): void {
  const sizes = views.map((v) => v.size);
  if (sizes.every((s) => s === sizes[0])) return;
  const multi = METHODS.filter((n) => methodSpec(n).views.multiCrop);
  if (!spec.views.multiCrop)
    throw new TorchSslError(
      'ERR_CONFIG',
      `config.augmentation: method ${spec.name} takes views of one size, got sizes ${sizes.join(', ')} (multi-crop: ${multi.join(', ')})`,
      { key: 'config.augmentation' },
    );
  const large = sizes[0]!;
  const bad = sizes.findIndex((s, i) => (i < 2 ? s !== large : s >= large));
  if (bad >= 0) {
    throw new TorchSslError(
      'ERR_CONFIG',
      `config.augmentation: multi-crop needs the two large crops first and every other view smaller; view ${bad} has size ${sizes[bad]} (sizes: ${sizes.join(', ')})`,
      {
        key: 'config.augmentation',
      },
    );
  }
}
