/**
 * `exportCheckpoint`: models → a file Python reads.
 *
 * `.pth` (a zip `torch.save` file, `torch.load(path, weights_only=True)`):
 *   { "torch_ssl_version": str, "state_dict": OrderedDict(backbone.* / projector.* / classifier.*),
 *     "hyper_parameters": { method, dataset, num_classes, depth, stem }, "epoch"? }
 * The names are solo-learn's, so solo-learn's own `main_linear.py` loader (`["state_dict"]`, strip
 * `backbone.`) and `loadCheckpoint` both read it. Only strings and integers besides tensors: PyTorch 1.13's
 * weights-only unpickler has no float opcode.
 * `.safetensors`: the same flat names, `__metadata__` { format: "pt", torch_ssl_version, method, dataset,
 * num_classes, depth, stem, epoch } (strings, as the spec requires).
 * Both are written atomically: an error leaves no file (and an existing file untouched).
 */
import { PACKAGE } from '../version.js';
import { extname } from 'node:path';
import { invalidArg } from '../errors.js';
import { Module, ResNet } from '../models.js';
import { Tensor } from '../tensor.js';
import { writeSafetensors } from './safetensors.js';
import type { TensorData } from './tensor-data.js';
import { writeTorchFile, type WritableValue } from './torch-writer.js';
import { LinearClassifier, type LoadedCheckpoint } from './load.js';
import type { CheckpointInfo } from './solo-learn.js';
import { MODULE_NAMES } from './state-dict.js';

export type ExportFormat = 'pth' | 'safetensors';

export interface ExportOptions {
  /** Default: from the extension (.safetensors → safetensors; .pth / .pt / .ckpt → pth). */
  format?: ExportFormat;
  /** Recorded in the file (default: from a loaded checkpoint's info). */
  method?: string | null;
  dataset?: string | null;
  epoch?: number | null;
}

/** What can be exported: a backbone alone, or a backbone with its heads (e.g. what loadCheckpoint returns). */
export type ExportSource =
  | ResNet
  | {
      backbone: ResNet;
      projector?: Module | undefined;
      classifier?: LinearClassifier | { weight: Tensor; bias: Tensor } | undefined;
      info?: Partial<CheckpointInfo>;
    };

/** The package version, recorded as `torch_ssl_version` (the marker loadCheckpoint recognises). */
export function packageVersion(): string {
  return PACKAGE.version;
}

/** The format an export path asks for (its extension), or the explicit one; throws ERR_INVALID_ARG otherwise. */
export function exportFormatFor(path: string, format: ExportFormat | undefined): ExportFormat {
  if (format !== undefined) {
    if (format !== 'pth' && format !== 'safetensors') throw invalidArg('format', "'pth' or 'safetensors'", format);
    return format;
  }
  const ext = extname(path).toLowerCase();
  if (ext === '.safetensors') return 'safetensors';
  if (ext === '.pth' || ext === '.pt' || ext === '.ckpt' || ext === '.bin') return 'pth';
  throw invalidArg('path', 'a file name ending in .pth, .pt, .ckpt or .safetensors (or pass { format })', path);
}

function tensorData(t: Tensor): TensorData {
  const dtype = t.dtype;
  return { dtype, shape: t.shape, data: t.toTypedArray() };
}

/**
 * Writes `source` as a `.pth` (torch.load(weights_only=True)) or `.safetensors` file; returns the
 * tensor names written. Throws ERR_INVALID_ARG (bad path / format / source), ERR_DISPOSED, ERR_IO.
 */
export async function exportCheckpoint(path: string, source: ExportSource | LoadedCheckpoint, opts: ExportOptions = {}): Promise<string[]> {
  if (typeof path !== 'string' || path.length === 0) throw invalidArg('path', 'a file path', path);
  if (typeof opts !== 'object' || opts === null) throw invalidArg('options', 'an object', opts);
  const format = exportFormatFor(path, opts.format);
  const src = source instanceof ResNet ? { backbone: source } : source;
  if (src === null || typeof src !== 'object' || !(src.backbone instanceof ResNet)) {
    throw invalidArg('model', 'a ResNet or { backbone: ResNet, projector?, classifier? }', source);
  }
  const info = (src as { info?: Partial<CheckpointInfo> }).info ?? {};

  // Every tensor is copied out before anything is written, so a disposed model fails with no file.
  const sd = new Map<string, TensorData>();
  const add = (prefix: string, tensors: Record<string, Tensor>): void => {
    for (const [k, t] of Object.entries(tensors)) {
      sd.set(prefix + k, tensorData(t));
      t.dispose();
    }
  };
  add(`${MODULE_NAMES.backbone}.`, src.backbone.stateDict());
  if (src.projector !== undefined) {
    if (!(src.projector instanceof Module)) throw invalidArg('projector', 'a Projector', src.projector);
    add(`${MODULE_NAMES.projector}.`, src.projector.stateDict());
  }
  let numClasses: number | null = null;
  if (src.classifier !== undefined) {
    const c = src.classifier;
    if (!(c.weight instanceof Tensor) || !(c.bias instanceof Tensor)) throw invalidArg('classifier', '{ weight: Tensor, bias: Tensor }', c);
    sd.set(`${MODULE_NAMES.classifier}.weight`, tensorData(c.weight));
    sd.set(`${MODULE_NAMES.classifier}.bias`, tensorData(c.bias));
    numClasses = c.weight.shape[0]!;
  }

  const method = opts.method !== undefined ? opts.method : (info.method ?? null);
  const dataset = opts.dataset !== undefined ? opts.dataset : (info.dataset ?? null);
  const epoch = opts.epoch !== undefined ? opts.epoch : (info.epoch ?? null);
  if (method !== null && typeof method !== 'string') throw invalidArg('method', 'a string or null', method);
  if (dataset !== null && typeof dataset !== 'string') throw invalidArg('dataset', 'a string or null', dataset);
  if (epoch !== null && !(Number.isSafeInteger(epoch) && epoch >= 0)) throw invalidArg('epoch', 'a non-negative integer or null', epoch);
  const meta = {
    method,
    dataset,
    num_classes: numClasses ?? info.numClasses ?? null,
    depth: src.backbone.depth,
    stem: src.backbone.stem,
  };

  if (format === 'safetensors') {
    const md: Record<string, string> = { format: 'pt', torch_ssl_version: packageVersion() };
    for (const [k, v] of Object.entries({ ...meta, epoch })) if (v !== null && v !== undefined) md[k] = String(v);
    await writeSafetensors(path, sd, md);
  } else {
    const root: Record<string, WritableValue> = {
      torch_ssl_version: packageVersion(),
      state_dict: sd,
      hyper_parameters: meta,
    };
    if (epoch !== null) root.epoch = epoch;
    await writeTorchFile(path, root);
  }
  return [...sd.keys()];
}
