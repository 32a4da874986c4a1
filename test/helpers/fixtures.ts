import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { readNpyFile } from '../../lib/npy.js';
import { Tensor } from '../../lib/tensor.js';
import { REPO_ROOT } from './paths.js';

/** Where scripts/fixtures.mjs writes the PyTorch references: .cache/fixtures, or $TORCH_SSL_FIXTURES (scripts/emulate-avx2.sh keeps its own). */
export const FIXTURES = process.env.TORCH_SSL_FIXTURES ? resolve(process.env.TORCH_SSL_FIXTURES) : join(REPO_ROOT, '.cache', 'fixtures');

/** Runs scripts/fixtures.mjs for the named fixture sets (a no-op for those that are up to date). */
export function ensureFixtures(...names: string[]): void {
  execFileSync(process.execPath, [join(REPO_ROOT, 'scripts', 'fixtures.mjs'), ...names], { stdio: 'ignore' });
}

/** The path of a fixture file or folder under FIXTURES; throws, naming it, when it does not exist. */
export function fixturePath(...parts: string[]): string {
  const p = join(FIXTURES, ...parts);
  if (!existsSync(p)) throw new Error(`missing fixture ${p}: run \`node scripts/fixtures.mjs\` (needs Debian python3-torch)`);
  return p;
}

export function fixtureJson<T>(...parts: string[]): T {
  return JSON.parse(readFileSync(fixturePath(...parts), 'utf8')) as T;
}

export async function fixtureTensor(...parts: string[]): Promise<Tensor> {
  const last = parts.length - 1;
  const a = await readNpyFile(fixturePath(...parts.slice(0, last), `${parts[last]}.npy`));
  return Tensor.from(a.data, a.shape, { dtype: a.dtype });
}

export async function fixtureArray(...parts: string[]): Promise<{ shape: number[]; data: Float32Array | Float64Array }> {
  const last = parts.length - 1;
  const a = await readNpyFile(fixturePath(...parts.slice(0, last), `${parts[last]}.npy`));
  return { shape: a.shape, data: a.data as Float32Array };
}

/**
 * max |a − b| / max |b|: the error relative to the reference's scale. `floor` bounds the scale from below,
 * for references that are zero up to rounding (e.g. gradients tangent to a 0-sphere).
 */
export function relError(actual: ArrayLike<number>, expected: ArrayLike<number>, floor = 0): number {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} vs ${expected.length}`);
  let maxDiff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(Number(actual[i]) - Number(expected[i])));
    scale = Math.max(scale, Math.abs(Number(expected[i])));
  }
  return maxDiff / (Math.max(scale, floor) || 1);
}
