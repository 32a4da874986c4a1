/** Regenerates the PyTorch-written checkpoint fixtures when stale; reads their expected.json. */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { TypedArray } from '../../lib/dtype.js';
import { ensureFixtures, fixturePath } from './fixtures.js';
import { PYTHON } from './python.js';

export const python = process.env.TORCH_SSL_PYTHON ?? PYTHON;

let ensured = false;
/** Runs scripts/fixtures.mjs for the checkpoint fixtures (a no-op when they are up to date). */
export function ensureCheckpointFixtures(): void {
  if (ensured) return;
  ensureFixtures('checkpoints');
  ensured = true;
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
  return JSON.parse(readFileSync(fixturePath('checkpoints', caseName, 'expected.json'), 'utf8')) as Expected;
}

export function sha256(a: TypedArray | Uint8Array): string {
  return createHash('sha256')
    .update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength))
    .digest('hex');
}
