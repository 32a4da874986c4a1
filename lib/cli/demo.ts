/**
 * `torch-ssl demo`: the README's main job on Debian's Fashion-MNIST (lib/demo.ts runs it); this command reads
 * its flags into recipe overrides and prints the demo's progress lines.
 */
import type { Command } from 'commander';
import { DEMO_CONFIG, runDemo } from '../demo.js';
import { nonNegativeInt, positiveInt } from './flags.js';

// Where tests and older callers import the demo from.
export {
  DEMO_CONFIG,
  localWindow,
  readDemoConfig,
  runDemo,
  type DemoOptions,
  type DemoPictures,
  type DemoSummary,
  type FeatureScore,
  type KnnPair,
} from '../demo.js';

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description(
      'self-supervised training on real Fashion-MNIST (configs/demo.yaml): kNN of the random and the trained backbone, global and local features; nothing is downloaded',
    )
    .option('--config <file>', 'the training recipe', DEMO_CONFIG)
    .option('--seed <n>', "seed of the initialisation, the order and the augmentations (default: the recipe's)")
    .option('--epochs <n>', "training epochs (default: the recipe's)")
    .option('--out <dir>', "where the checkpoint goes (default: the recipe's checkpoint.dir)")
    .option('--subset-seed <n>', "train on a seeded random subset of data.limit images instead of the first ones (the recipe's data.sampleSeed)")
    .option('--json', 'print the summary as JSON on the last line')
    .action(async (opts: { config: string; seed?: string; epochs?: string; out?: string; subsetSeed?: string; json?: boolean }) => {
      const overrides: Record<string, unknown> = {};
      if (opts.seed !== undefined) overrides.seed = nonNegativeInt('--seed', opts.seed);
      if (opts.subsetSeed !== undefined) overrides.data = { sampleSeed: nonNegativeInt('--subset-seed', opts.subsetSeed) };
      if (opts.epochs !== undefined) {
        const e = positiveInt('--epochs', opts.epochs);
        overrides.epochs = e;
        overrides.knn = { every: e };
      }
      if (opts.out !== undefined) overrides.checkpoint = { dir: opts.out };
      const summary = await runDemo({ config: opts.config, overrides, log: (line) => console.log(line) });
      if (opts.json) console.log(JSON.stringify(summary));
    });
}
