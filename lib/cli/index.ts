#!/usr/bin/env node
/**
 * The torch-ssl command line. Thin: parses arguments (commander), calls the library, prints results.
 * Every subcommand's logic lives in its own file; errors print `code: message` and exit 1; an interrupted
 * command (Ctrl-C / SIGTERM) exits 130.
 */
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { PACKAGE } from '../version.js';
import { registerDemo } from './demo.js';
import { register as registerInspect } from './inspect.js';
import { register as registerExport } from './export.js';
import { register as registerTrain } from './train.js';
import { register as registerExtract } from './extract.js';
import { register as registerKnn } from './knn.js';
import { register as registerLinear } from './linear.js';
import { register as registerHeatmap } from './heatmap.js';
import { register as registerPatchKnn } from './patch-knn.js';
import { register as registerReport } from './report.js';

const pkg = PACKAGE;

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
        const { positiveInt } = await import('./flags.js');
        setNumThreads(positiveInt('--threads', threads));
      }
    });
  registerDemo(program);
  registerInspect(program);
  registerExport(program);
  registerTrain(program);
  registerExtract(program);
  registerKnn(program);
  registerLinear(program);
  registerHeatmap(program);
  registerPatchKnn(program);
  registerReport(program);
  for (const cmd of program.commands) {
    // Required options say so in the help; defaults are shown as values by commander; the global --threads
    // is listed under each command it applies to.
    for (const opt of cmd.options) {
      if (opt.mandatory && !opt.description.startsWith('(required)')) opt.description = `(required) ${opt.description}`;
      if (typeof opt.defaultValue === 'string' && opt.defaultValueDescription === undefined) opt.defaultValueDescription = opt.defaultValue;
    }
    cmd.configureHelp({ showGlobalOptions: true });
    const examples = EXAMPLES[cmd.name()];
    if (examples) cmd.addHelpText('after', `\nExamples:\n${examples.map((e) => `  $ ${e}`).join('\n')}\n`);
  }
  return program;
}

/** One or two runnable examples per command, shown at the end of its --help. */
const EXAMPLES: Record<string, string[]> = {
  demo: ['torch-ssl demo', 'torch-ssl demo --seed 6 --epochs 8'],
  inspect: ['torch-ssl inspect barlow-cifar10-otu5cw89-ep=999.ckpt', 'torch-ssl inspect resnet18.pth --json'],
  export: ['torch-ssl export --checkpoint vicreg-ep=999.ckpt --out backbone.safetensors'],
  train: ['torch-ssl train --config configs/demo.yaml', 'torch-ssl train --config configs/demo.yaml --set method=simclr epochs=20 data.limit=10000'],
  extract: [
    'torch-ssl extract --checkpoint run/demo-ep=4.ckpt --input /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz --size 16 --out test.npy --labels-out test-labels.npy',
    'torch-ssl extract --checkpoint vicreg.ckpt --input cifar-10-batches-bin --split test --pool local --out local.npy',
  ],
  knn: [
    'torch-ssl knn --train train.npy --train-labels train-labels.npy --test test.npy --test-labels test-labels.npy',
    'torch-ssl knn --train train.npy --train-labels train-labels.npy --test test.npy --test-labels test-labels.npy --grid --ks 10,20',
  ],
  heatmap: [
    'torch-ssl heatmap --checkpoint .cache/demo-run/demo-ep=1.ckpt --image photo.png --query 80,40,71 --space both --out heat.png',
    'torch-ssl heatmap --checkpoint run/demo-ep=1.ckpt --image /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz --index 0 --query 7,7,14 --out heat.png',
  ],
  'patch-knn': [
    'torch-ssl patch-knn --checkpoint run/demo-ep=1.ckpt --dataset /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz --size 16 --limit 1000 --query 0:4,4,8 --k 119 --out grid.png',
  ],
  report: ['torch-ssl report .cache/demo-run --out report.html'],
  linear: ['torch-ssl linear --train train.npy --train-labels train-labels.npy --test test.npy --test-labels test-labels.npy --epochs 100'],
};

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
