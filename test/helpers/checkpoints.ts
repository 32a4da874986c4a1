import { readTorchFile, tensorMap } from '../../lib/checkpoint/index.js';

/**
 * The float32 entries of a training checkpoint's state_dict: the ones named, or every float32 entry when no names
 * are given (parameters and BatchNorm running statistics).
 */
export async function stateDictFloats(path: string, names?: readonly string[]): Promise<Map<string, Float32Array>> {
  const f = await readTorchFile(path);
  try {
    const sd = tensorMap((f.root as Map<string, unknown>).get('state_dict') as never)!;
    const out = new Map<string, Float32Array>();
    for (const [k, ref] of sd) {
      if (names ? names.includes(k) : ref.dtype === 'float32') out.set(k, Float32Array.from((await ref.read()) as ArrayLike<number>));
    }
    if (names) for (const n of names) if (!out.has(n)) throw new Error(`${path}: no ${n} in its state_dict`);
    return out;
  } finally {
    await f.close();
  }
}
