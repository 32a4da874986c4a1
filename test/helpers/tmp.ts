import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, onTestFinished, TestRunner } from 'vitest';

/** What the name of every folder the tests make in the system temp folder starts with. */
const TMP_PREFIX = 'torch-ssl-test-';

/**
 * A fresh folder in the system temp folder, `torch-ssl-test-<label>-XXXXXX`, removed with all it holds after the
 * test file (or the describe block) when made at its top level, or when the test ends when made inside a test.
 * Not for beforeAll hooks: make the folder at the top level instead.
 */
export function makeTmpDir(label: string): string {
  const dir = mkdtempSync(join(tmpdir(), `${TMP_PREFIX}${label}-`));
  const remove = () => rmSync(dir, { recursive: true, force: true });
  if (TestRunner.getCurrentTest()) onTestFinished(remove);
  else afterAll(remove);
  return dir;
}
