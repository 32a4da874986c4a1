/**
 * Opening any checkpoint file loadCheckpoint reads — a `torch.save` file or a `.safetensors` file — and
 * recognising it, without reading tensor data or needing the native addon.
 */
import { open } from 'node:fs/promises';
import { invalidArg } from '../errors.js';
import type { PyValue } from './pyvalue.js';
import { readSafetensors } from './safetensors.js';
import { openWithLayout, recognizeWithLayout, type InspectOptions, type RecognizedCheckpoint } from './solo-learn.js';
import type { TensorRef } from './tensor-ref.js';

/** An opened, recognised checkpoint; `close()` releases the file. */
export interface OpenedCheckpoint extends RecognizedCheckpoint {
  close(): Promise<void>;
  kind: 'torch' | 'safetensors';
  root: PyValue;
}

/** True when the file starts like a .safetensors file (8-byte header length, then a JSON object). */
export const isSafetensors = async (path: string): Promise<boolean> => {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch {
    return false;
  }
  try {
    const head = new Uint8Array(9);
    const { bytesRead } = await fh.read(head, 0, 9, 0);
    if (bytesRead < 9 || head[8] !== 0x7b /* '{' */) return false;
    const n = new DataView(head.buffer).getBigUint64(0, true);
    return n > 1n && n < 100_000_000n && n + 8n <= BigInt((await fh.stat()).size);
  } finally {
    await fh.close();
  }
};

/**
 * A safetensors file's tensors and metadata as the root of a torch.save file: `{state_dict: …}`, and for the
 * project's own exports (`torch_ssl_version` in `__metadata__`) `method`, `dataset`, `num_classes` and `epoch`
 * as `hyper_parameters`.
 */
function safetensorsRoot(tensors: ReadonlyMap<string, TensorRef>, meta: Readonly<Record<string, string>>): Map<PyValue, PyValue> {
  const root = new Map<PyValue, PyValue>([['state_dict', new Map<PyValue, PyValue>(tensors as Map<string, TensorRef>)]]);
  if (typeof meta.torch_ssl_version === 'string') {
    root.set('torch_ssl_version', meta.torch_ssl_version);
    const hp = new Map<PyValue, PyValue>();
    for (const k of ['method', 'dataset']) if (typeof meta[k] === 'string') hp.set(k, meta[k]);
    for (const k of ['num_classes', 'epoch']) if (meta[k] !== undefined && /^\d+$/.test(meta[k])) hp.set(k, Number(meta[k]));
    root.set('hyper_parameters', hp);
    if (hp.has('epoch')) root.set('epoch', hp.get('epoch')!);
  }
  return root;
}

/**
 * Opens a torch.save file or a `.safetensors` file and recognises it (no tensor data is read). A
 * safetensors file is presented as `{state_dict: …}`; its `__metadata__` (the project's own exports
 * write `torch_ssl_version`, `method`, `dataset`, `num_classes`, `epoch`) becomes the config.
 */
export async function openAnyCheckpoint(path: string, opts: InspectOptions = {}): Promise<OpenedCheckpoint> {
  if (typeof path !== 'string' || path.length === 0) throw invalidArg('path', 'a file path', path);
  if (await isSafetensors(path)) {
    const st = await readSafetensors(path);
    try {
      const root = safetensorsRoot(st.tensors, st.metadata ?? {});
      return { ...recognizeWithLayout({ path, root }, {}), close: () => st.close(), kind: 'safetensors', root };
    } catch (err) {
      await st.close();
      throw err;
    }
  }
  const { file, ...recognized } = await openWithLayout(path, opts);
  return { ...recognized, close: () => file.close(), kind: 'torch', root: file.root };
}
