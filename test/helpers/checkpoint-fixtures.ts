/** Locates (and, if stale, regenerates) the PyTorch-written checkpoint fixtures; reads their expected.json. */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TypedArray } from '../../lib/dtype.js';
import { FIXTURES } from './fixtures.js';
import { PYTHON } from './python.js';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const fixturesDir = join(FIXTURES, 'checkpoints');
export const python = process.env.TORCH_SSL_PYTHON ?? PYTHON;

let ensured = false;
/** Runs scripts/fixtures.mjs for the checkpoint fixtures (a no-op when they are up to date). */
export function ensureCheckpointFixtures(): void {
  if (ensured) return;
  execFileSync(process.execPath, [join(root, 'scripts', 'fixtures.mjs'), 'checkpoints'], { stdio: 'ignore' });
  ensured = true;
}

export function fixture(...parts: string[]): string {
  return join(fixturesDir, ...parts);
}

export interface ExpectedTensor {
  dtype: string;
  shape: number[];
  stride: number[];
  storage_offset: number;
  sum: number;
  sha256: string;
}

export interface Expected {
  tensors: Record<string, ExpectedTensor>;
  [k: string]: unknown;
}

export function expected(caseName: string): Expected {
  return JSON.parse(readFileSync(fixture(caseName, 'expected.json'), 'utf8')) as Expected;
}

export function sha256(a: TypedArray | Uint8Array): string {
  return createHash('sha256').update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)).digest('hex');
}
