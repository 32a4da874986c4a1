import { Command } from 'commander';
import { expect, vi } from 'vitest';
import { TorchSslError } from '../../lib/errors.js';

type Register = (program: Command) => void;

/** Runs `torch-ssl <args>` with the given subcommands registered; returns what it printed with console.log. */
export function cliRunner(...registers: Register[]) {
  const run = async (...args: string[]): Promise<string[]> => {
    const program = new Command().exitOverride();
    for (const register of registers) register(program);
    const lines: string[] = [];
    const spy = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void lines.push(a.join(' ')));
    try {
      await program.parseAsync(['node', 'torch-ssl', ...args]);
    } finally {
      spy.mockRestore();
    }
    return lines;
  };
  /** The TorchSslError the command fails with (the test fails if it succeeds). */
  const fails = async (...args: string[]): Promise<TorchSslError> => {
    const err = await run(...args).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err, `expected ${args.join(' ')} to fail`).toBeInstanceOf(TorchSslError);
    return err as TorchSslError;
  };
  return { run, fails };
}
