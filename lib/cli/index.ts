#!/usr/bin/env node
/**
 * The torch-ssl command line. Thin: parses arguments (commander), calls the library, prints results.
 * Every subcommand's logic lives in its own file; errors print `code: message` and exit 1; an interrupted
 * command (Ctrl-C / SIGTERM) exits 130.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { registerDemo } from './demo.js';
import { register as registerInspect } from './inspect.js';
import { register as registerExport } from './export.js';
import { register as registerTrain } from './train.js';
import { register as registerExtract } from './extract.js';
import { register as registerKnn } from './knn.js';
import { register as registerLinear } from './linear.js';

const here = dirname(fileURLToPath(import.meta.url));
const pkg = JSON.parse(readFileSync(join(here, '..', '..', 'package.json'), 'utf8')) as { version: string; description: string };

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('torch-ssl')
    .description(pkg.description)
    .version(pkg.version)
    .option('--threads <n>', 'intra-op threads for LibTorch (default: all cores)')
    .showHelpAfterError()
    .hook('preAction', async (cmd) => {
      const threads = cmd.opts().threads as string | undefined;
      if (threads !== undefined) {
        const { setNumThreads } = await import('../native.js');
        setNumThreads(Number.parseInt(threads, 10));
      }
    });
  registerDemo(program);
  registerInspect(program);
  registerExport(program);
  registerTrain(program);
  registerExtract(program);
  registerKnn(program);
  registerLinear(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    // A command that was interrupted but ended cleanly (train writes its checkpoint) sets 130 itself.
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    const e = err as { code?: string; message?: string };
    process.stderr.write(`torch-ssl: ${e.code ? `${e.code}: ` : ''}${e.message ?? String(err)}\n`);
    // Ctrl-C (SIGINT) / SIGTERM: the shell convention 128 + signal number.
    return e.code === 'ERR_ABORTED' ? 130 : 1;
  }
}

// Run when executed directly (bin), not when imported by tests.
if (process.argv[1] && fileURLToPath(import.meta.url) === (await import('node:fs')).realpathSync(process.argv[1])) {
  process.exitCode = await main(process.argv);
}
