/** `torch-ssl linear`: a linear probe on frozen features (protocol: docs/features.md). */
import type { Command } from 'commander';
import { LINEAR_PROBE_DEFAULTS, linearProbe } from '../eval.js';
import { progressBar, withInterrupt } from './progress.js';
import { nonNegativeInt, oneNumber, positiveInt, positiveNumber } from './flags.js';
import { option, readOptions, switchOption, withOptions, type ParsedOptions } from './cli-option.js';
import { FEATURE_FILES, JSON_TOP1_TOP5, readFeatureFilesOf } from './options.js';

const d = LINEAR_PROBE_DEFAULTS;
/** The probe's hyper-parameters, by their names in linearProbe's options (and in this order in the help). */
const HYPER = {
  epochs: option('--epochs <n>', 'epochs', { default: String(d.epochs), parse: positiveInt }),
  lr: option('--lr <lr>', 'peak learning rate (cosine-decayed per epoch)', { default: String(d.lr), parse: positiveNumber }),
  batchSize: option('--batch-size <n>', 'mini-batch size', { default: String(d.batchSize), parse: positiveInt }),
  momentum: option('--momentum <m>', 'SGD momentum', {
    default: String(d.momentum),
    parse: (flag, v) => oneNumber(flag, v, false, (n) => n >= 0 && n < 1, 'a number in [0, 1)'),
  }),
  weightDecay: option('--weight-decay <wd>', 'L2 penalty', {
    default: String(d.weightDecay),
    parse: (flag, v) => oneNumber(flag, v, false, (n) => n >= 0, 'a number >= 0'),
  }),
  standardize: switchOption('--no-standardize', 'train on the raw features (default: per-dimension train mean / std)'),
  seed: option('--seed <n>', 'shuffle seed', { default: String(d.seed), parse: nonNegativeInt }),
};

const OPTIONS = [...FEATURE_FILES, ...Object.values(HYPER), JSON_TOP1_TOP5];

export function register(program: Command): void {
  const cmd = program
    .command('linear')
    .description('linear probe on frozen features: SGD + momentum, cosine decay, standardised features; test top-1 / top-5 %');
  withOptions(cmd, OPTIONS).action(async (o: ParsedOptions) => {
    const hyper = readOptions(o, HYPER);
    const files = await readFeatureFilesOf(o);
    const bar = progressBar('linear');
    bar.update(0, 1, 'training');
    const r = await withInterrupt((signal) => linearProbe({ ...files, ...hyper, signal }))
      .finally(() => bar.finish())
      .finally(() => {
        for (const t of Object.values(files)) t.dispose();
      });
    const last = r.history.at(-1)!;
    for (const h of r.history)
      if (h.epoch === 1 || h.epoch % 10 === 0 || h === last)
        console.log(
          `epoch ${String(h.epoch).padStart(4)}  lr ${h.lr.toFixed(5)}  loss ${h.loss.toFixed(4)}  train ${h.trainTop1.toFixed(2)} %${h.testTop1 !== undefined ? `  test ${h.testTop1.toFixed(2)} %` : ''}`,
        );
    console.log(`linear probe (${r.numClasses} classes, ${r.history.length} epochs): top-1 ${r.top1.toFixed(2)} %, top-5 ${r.top5.toFixed(2)} %`);
    if (JSON_TOP1_TOP5.read(o)) console.log(JSON.stringify({ top1: r.top1, top5: r.top5 }));
    r.weight.dispose();
    r.bias.dispose();
  });
}
