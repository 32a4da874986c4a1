/// <reference types="node" preserve="true" />
/**
 * torch-ssl: self-supervised ResNet training, safe solo-learn / torchvision checkpoint loading and feature
 * extraction for Node.js, on a native LibTorch engine that never blocks the event loop.
 */
export { TorchSslError, type ErrorCode } from './errors.js';
export type { DType, TypedArray } from './dtype.js';
export { Tensor, readNpy, writeNpy, type TensorOptions } from './tensor.js';
export {
  preloadNative,
  setNumThreads,
  getNumThreads,
  manualSeed,
  buildInfo,
  describeBlas,
  describeBatchNorm,
  describeConv,
  cuda,
  cpuCacheInfo,
  releaseCpuCache,
} from './native.js';
export type { BlasInfo, BuildInfo, CpuCacheInfo, ProfiledOp, TrainProfile } from './native.js';
export {
  Module,
  ResNet,
  Projector,
  resnet,
  projector,
  PROJECTOR_PRESETS,
  type ResNetOptions,
  type ProjectorOptions,
  type ProjectorPreset,
  type StateDict,
  type ForwardOptions,
} from './models.js';
export { losses, LossTensor, LOSS_DEFAULTS, type VICRegOptions, type SimCLROptions, type TCROptions, type BarlowOptions } from './losses.js';
export {
  LARS,
  SGD,
  warmupCosine,
  LARS_DEFAULTS,
  SGD_DEFAULTS,
  type LARSOptions,
  type SGDOptions,
  type WarmupCosineOptions,
  type OptimizerState,
  type ParamGroup,
} from './optim.js';
export {
  extractFeatures,
  EXTRACT_DEFAULTS,
  type ExtractOptions,
  type ExtractResult,
  type ExtractResultInMemory,
  type ExtractResultStreamed,
  type ExtractProgress,
  type FeatureModel,
  type Pooling,
  type PatchSpec,
  type GridPatches,
  type RandomPatches,
  type NormalizeOption,
} from './features.js';
export {
  knn,
  knnGrid,
  linearProbe,
  KNN_DEFAULTS,
  LINEAR_PROBE_DEFAULTS,
  type KnnOptions,
  type KnnResult,
  type KnnGridOptions,
  type KnnGridResult,
  type KnnGridEntry,
  type LinearProbeOptions,
  type LinearProbeResult,
  type LinearProbeEpoch,
} from './eval.js';
export { readTorchFile, inspectCheckpoint, type CheckpointInfo, type InspectResult } from './checkpoint/index.js';
export { loadCheckpoint, LinearClassifier, type LoadCheckpointOptions, type LoadedCheckpoint } from './checkpoint/load.js';
export { exportCheckpoint, type ExportOptions, type ExportSource, type ExportFormat } from './checkpoint/export.js';
export {
  train,
  resolveTrainConfig,
  TRAIN_PRESETS,
  METHOD_DEFAULTS,
  AUGMENTATION_PRESETS,
  type TrainConfig,
  type TrainConfigInput,
  type TrainEvent,
  type TrainOptions,
  type TrainResult,
  type StepEvent,
  type EpochEvent,
  type KnnEvent,
  type CheckpointEvent,
  type WarningEvent,
} from './train.js';
export { augment, type ViewConfig } from './augment.js';
export {
  openImageSource,
  iterateBatches,
  NORMALIZATIONS,
  IdxImageSource,
  CifarSource,
  NpyImageSource,
  ImageFolderSource,
  FASHION_MNIST_CLASSES,
  type ImageSource,
  type ImageBatch,
  type OpenImageSourceOptions,
  type Normalization,
  type NormalizationName,
  type IdxOptions,
} from './data/index.js';
// Pictures and run logs (docs/viz.md): patch-similarity heatmaps, patch kNN grids, metrics.csv / TensorBoard, the HTML report.
export { patchHeatmap, type HeatmapOptions, type HeatmapResult, type HeatmapMap, type HeatmapQuery } from './viz/heatmap.js';
export { patchKnn, type PatchKnnOptions, type PatchKnnResult, type PatchKnnQuery, type PatchNeighbour, type PatchKnnSpaceResult } from './viz/patch-knn.js';
export { writeReport, type ReportOptions, type ReportResult } from './viz/report.js';
export { readMetricsCsv, METRICS_CSV, type MetricsRow } from './viz/run-log.js';
export { readImageFile, type RgbImage } from './viz/canvas.js';
export type { PatchSpace } from './viz/patches.js';
