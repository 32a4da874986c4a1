import { existsSync, mkdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { readNpyFile, writeNpyFile } from '../../lib/npy.js';
import { REPO_ROOT } from './paths.js';
import { PYTHON } from './python.js';

export const DATASETS = join(REPO_ROOT, '.cache', 'datasets');

/** The bundled real datasets (scikit-learn digits and photos), exported on demand like setup.sh does. */
export function datasets(): string {
  if (!existsSync(join(DATASETS, 'digits-train.npy'))) {
    execFileSync(PYTHON, [join(REPO_ROOT, 'scripts', 'export-datasets.py'), DATASETS], { stdio: 'inherit' });
  }
  return DATASETS;
}

/** The first `n` digits (and labels) as a small .npy pair in `dir`; returns the images path. */
export async function digitsSubset(dir: string, n: number, split: 'train' | 'test' = 'train'): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const images = await readNpyFile(join(datasets(), `digits-${split}.npy`));
  const labels = await readNpyFile(join(datasets(), `digits-${split}-labels.npy`));
  const per = images.shape.slice(1).reduce((a, b) => a * b, 1);
  const out = join(dir, `digits-${split}-${n}.npy`);
  await writeNpyFile(out, { dtype: 'uint8', shape: [n, ...images.shape.slice(1)], data: (images.data as Uint8Array).slice(0, n * per) });
  await writeNpyFile(join(dir, `digits-${split}-${n}-labels.npy`), { dtype: labels.dtype, shape: [n], data: (labels.data as BigInt64Array).slice(0, n) });
  return out;
}
