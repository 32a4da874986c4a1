/** `torch-ssl linear`: a linear probe on frozen features (protocol: docs/features.md). */
import type { Command } from 'commander';
import { LINEAR_PROBE_DEFAULTS, linearProbe } from '../eval.js';
import { progressBar, withInterrupt } from './progress.js';
import { oneNumber, readFeatureFiles } from './flags.js';

function num(flag: string, value: string, check: (n: number) => boolean, expected: string, integer = false): number {
  return oneNumber(flag, value, integer, check, expected);
}

export function register(program: Command): void {
  const d = LINEAR_PROBE_DEFAULTS;
  program
    .command('linear')
    .description('linear probe on frozen features: SGD + momentum, cosine decay, standardised features; test top-1 / top-5 %')
    .requiredOption('--train <file>', 'train features (N, D) .npy')
    .requiredOption('--train-labels <file>', 'train labels (N,) .npy')
    .requiredOption('--test <file>', 'test features (M, D) .npy')
    .requiredOption('--test-labels <file>', 'test labels (M,) .npy')
    .option('--epochs <n>', 'epochs', String(d.epochs))
    .option('--lr <lr>', 'peak learning rate (cosine-decayed per epoch)', String(d.lr))
    .option('--batch-size <n>', 'mini-batch size', String(d.batchSize))
    .option('--momentum <m>', 'SGD momentum', String(d.momentum))
    .option('--weight-decay <wd>', 'L2 penalty', String(d.weightDecay))
    .option('--no-standardize', 'train on the raw features (default: per-dimension train mean / std)')
    .option('--seed <n>', 'shuffle seed', String(d.seed))
    .option('--json', 'print {"top1":…,"top5":…} as the last stdout line')
    .action(async (o: Record<string, string | boolean | undefined>) => {
      const hyper = {
        epochs: num('--epochs', o.epochs as string, (n) => n > 0, 'a positive integer', true),
        lr: num('--lr', o.lr as string, (n) => n > 0, 'a number > 0'),
        batchSize: num('--batch-size', o.batchSize as string, (n) => n > 0, 'a positive integer', true),
        momentum: num('--momentum', o.momentum as string, (n) => n >= 0 && n < 1, 'a number in [0, 1)'),
        weightDecay: num('--weight-decay', o.weightDecay as string, (n) => n >= 0, 'a number >= 0'),
        standardize: o.standardize !== false,
        seed: num('--seed', o.seed as string, (n) => n >= 0, 'a non-negative integer', true),
      };
      const files = await readFeatureFiles({ train: o.train as string, trainLabels: o.trainLabels as string, test: o.test as string, testLabels: o.testLabels as string });
      const bar = progressBar('linear');
      bar.update(0, 1, 'training');
      const r = await withInterrupt((signal) => linearProbe({ ...files, ...hyper, signal }))
        .finally(() => bar.finish())
        .finally(() => {
          for (const t of Object.values(files)) t.dispose();
        });
      const last = r.history.at(-1)!;
      for (const h of r.history) if (h.epoch === 1 || h.epoch % 10 === 0 || h === last) console.log(`epoch ${String(h.epoch).padStart(4)}  lr ${h.lr.toFixed(5)}  loss ${h.loss.toFixed(4)}  train ${h.trainTop1.toFixed(2)} %${h.testTop1 !== undefined ? `  test ${h.testTop1.toFixed(2)} %` : ''}`);
      console.log(`linear probe (${r.numClasses} classes, ${r.history.length} epochs): top-1 ${r.top1.toFixed(2)} %, top-5 ${r.top5.toFixed(2)} %`);
      if (o.json) console.log(JSON.stringify({ top1: r.top1, top5: r.top5 }));
      r.weight.dispose();
      r.bias.dispose();
    });
}
