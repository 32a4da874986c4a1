import { expect } from 'vitest';
import { TorchSslError } from '../../lib/errors.js';

/** Awaits `p`, expects it to reject with a TorchSslError of `code` whose message contains every fragment. */
export async function expectError(p: Promise<unknown>, code: string, ...fragments: string[]): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'expected an error').toBeInstanceOf(TorchSslError);
  expect((err as TorchSslError).code, (err as Error).message).toBe(code);
  for (const f of fragments) expect((err as Error).message).toContain(f);
}
