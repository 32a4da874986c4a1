/**
 * Reading command-line values in the user's words: every message names the flag (and the file) as typed,
 * never an API parameter, and says what would be accepted.
 */
import { constants as fsConstants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { TorchSslError } from '../errors.js';
import { ioFailure } from '../io.js';
import { readLabelsNpy } from '../data/npy-source.js';
import { readNpy, Tensor } from '../tensor.js';

/** `--k: expected a positive integer, got "5,10"`. */
export function flagError(flag: string, expected: string, value: unknown, hint = ''): TorchSslError {
  const shown = typeof value === 'string' ? JSON.stringify(value) : String(value);
  return new TorchSslError('ERR_INVALID_ARG', `${flag}: expected ${expected}, got ${shown}${hint ? `; ${hint}` : ''}`, { flag });
}

/** One number; a list (`5,10`) is refused with `listHint` when the command has a list form. */
export function oneNumber(flag: string, value: string, integer: boolean, check: (n: number) => boolean, expected: string, listHint = ''): number {
  if (value.includes(',')) throw flagError(flag, `one value (${expected})`, value, listHint);
  const n = Number(value.trim());
  if (value.trim() === '' || !Number.isFinite(n) || (integer && !Number.isSafeInteger(n)) || !check(n)) throw flagError(flag, expected, value);
  return n;
}

/** One integer > 0 (`--batch-size`, `--k`, …). */
export function positiveInt(flag: string, value: string, listHint = ''): number {
  return oneNumber(flag, value, true, (n) => n > 0, 'a positive integer', listHint);
}

/** One integer >= 0 (`--seed`, `--index`, …). */
export function nonNegativeInt(flag: string, value: string): number {
  return oneNumber(flag, value, true, (n) => n >= 0, 'a non-negative integer');
}

/** One number > 0 (`--lr`, `--temperature`). */
export function positiveNumber(flag: string, value: string, listHint = ''): number {
  return oneNumber(flag, value, false, (n) => n > 0, 'a number > 0', listHint);
}

/** One of a few words: `--space: expected embedding | projection, got "latent"`. */
export function oneOf<T extends string>(flag: string, value: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(value)) throw flagError(flag, choices.join(' | '), value);
  return value as T;
}

/** A comma-separated list of numbers > 0. */
export function numberList(flag: string, value: string, integer: boolean): number[] {
  const out = value.split(',').map((s) => Number(s.trim()));
  if (value.trim() === '' || !out.every((n) => Number.isFinite(n) && n > 0 && (!integer || Number.isSafeInteger(n)))) {
    throw flagError(flag, `comma-separated ${integer ? 'positive integers' : 'numbers > 0'}`, value);
  }
  return out;
}

/** A flag that only means something with another one. */
export function requiresFlag(flag: string, given: boolean, needed: string): void {
  if (given) throw new TorchSslError('ERR_INVALID_ARG', `${flag} applies only with ${needed}`, { flag });
}

/** An input file: missing or a directory is ERR_IO naming the flag and the path. */
export async function inputFile(flag: string, path: string): Promise<string> {
  let info;
  try {
    info = await stat(path);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw ioFailure(path, `${flag} ${path}: ${e.code === 'ENOENT' ? 'no such file' : (e.message ?? String(err))}`, { flag, cause: err });
  }
  if (info.isDirectory()) throw ioFailure(path, `${flag} ${path} is a directory, expected a file`, { flag });
  return path;
}

/** Like Promise.all, but when several fail the first in argument order is thrown (not the first to settle). */
async function settledInOrder<T extends readonly unknown[]>(ps: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const rs = await Promise.allSettled(ps);
  const failed = rs.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return rs.map((r) => (r as PromiseFulfilledResult<unknown>).value) as unknown as T;
}

export interface FeatureFiles {
  train: string;
  trainLabels: string;
  test: string;
  testLabels: string;
}

/**
 * Reads `--train`, `--train-labels`, `--test`, `--test-labels` and checks that they fit together, with
 * messages such as `--test-labels l.npy has 50 labels but --test f.npy has 200 rows`.
 */
export async function readFeatureFiles(f: FeatureFiles): Promise<{ trainFeatures: Tensor; trainLabels: Tensor; testFeatures: Tensor; testLabels: Tensor }> {
  // One after the other, so that the first flag at fault is the one reported (in parallel, whichever stat
  // failed first would win: a race).
  const train = await inputFile('--train', f.train);
  const trainLabelsPath = await inputFile('--train-labels', f.trainLabels);
  const test = await inputFile('--test', f.test);
  const testLabelsPath = await inputFile('--test-labels', f.testLabels);
  const [trainFeatures, testFeatures] = await settledInOrder([readNpy(train), readNpy(test)]);
  const [trainLabels, testLabels] = await settledInOrder([readLabelsNpy(trainLabelsPath), readLabelsNpy(testLabelsPath)]);
  const shape = (t: Tensor) => `(${t.shape.join(', ')})`;
  for (const [flag, path, t] of [
    ['--train', train, trainFeatures],
    ['--test', test, testFeatures],
  ] as const) {
    if (t.shape.length !== 2)
      throw new TorchSslError('ERR_TORCH_SHAPE', `${flag} ${path} has shape ${shape(t)}; expected (rows, dims) features`, { file: path, flag });
  }
  if (trainLabels.length !== trainFeatures.shape[0]) {
    throw new TorchSslError(
      'ERR_TORCH_SHAPE',
      `--train-labels ${trainLabelsPath} has ${trainLabels.length} labels but --train ${train} has ${trainFeatures.shape[0]} rows`,
      { file: trainLabelsPath, flag: '--train-labels' },
    );
  }
  if (testLabels.length !== testFeatures.shape[0]) {
    throw new TorchSslError(
      'ERR_TORCH_SHAPE',
      `--test-labels ${testLabelsPath} has ${testLabels.length} labels but --test ${test} has ${testFeatures.shape[0]} rows`,
      { file: testLabelsPath, flag: '--test-labels' },
    );
  }
  if (trainFeatures.shape[1] !== testFeatures.shape[1]) {
    throw new TorchSslError('ERR_TORCH_SHAPE', `--test ${test} has ${testFeatures.shape[1]} dims per row but --train ${train} has ${trainFeatures.shape[1]}`, {
      file: test,
      flag: '--test',
    });
  }
  return {
    trainFeatures,
    trainLabels: Tensor.from(trainLabels, [trainLabels.length]),
    testFeatures,
    testLabels: Tensor.from(testLabels, [testLabels.length]),
  };
}

/**
 * An output file the command will write: checked before any work starts. Its folder must exist and be
 * writable, and the path must not be a directory. Messages name the flag and the path as typed.
 */
export async function outputFile(flag: string, path: string): Promise<string> {
  const dir = dirname(path);
  let d;
  try {
    d = await stat(dir);
  } catch {
    throw ioFailure(path, `${flag} ${path}: the folder ${dir} does not exist`, { flag });
  }
  if (!d.isDirectory()) throw ioFailure(path, `${flag} ${path}: ${dir} is not a folder`, { flag });
  try {
    await access(dir, fsConstants.W_OK);
  } catch {
    throw ioFailure(path, `${flag} ${path}: the folder ${dir} is not writable`, { flag });
  }
  const existing = await stat(path).catch(() => undefined);
  if (existing?.isDirectory()) throw ioFailure(path, `${flag} ${path} is a directory, expected a file name`, { flag });
  return path;
}
