/**
 * `torch-ssl train --config cfg.yaml|json [--set key=value …] [--resume ckpt]`: validates the config,
 * runs the native trainer with a progress bar (ETA, loss, lr, images/s) on a TTY; otherwise a plain step line
 * every TORCH_SSL_LOG_INTERVAL seconds (30) with the ETA and one line per epoch; Ctrl-C writes a checkpoint
 * and exits cleanly.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import YAML from 'yaml';
import { TorchSslError } from '../errors.js';
import { train, type TrainEvent } from '../train.js';
import { applyOverrides } from '../train-config.js';
import { eta, logIntervalMs, withInterrupt } from './progress.js';

async function readConfig(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new TorchSslError('ERR_IO', `cannot read config ${path}: ${(err as Error).message}`);
  }
  try {
    const v = /\.json$/i.test(path) ? JSON.parse(text) : YAML.parse(text);
    if (typeof v !== 'object' || v === null) throw new Error('not a mapping');
    return v as Record<string, unknown>;
  } catch (err) {
    throw new TorchSslError('ERR_CONFIG', `${path}: not a valid ${/\.json$/i.test(path) ? 'JSON' : 'YAML'} config: ${(err as Error).message}`);
  }
}

export function register(program: Command): void {
  program
    .command('train')
    .description('self-supervised training (VICReg, SimCLR, TCR, Barlow Twins) from a config file')
    .requiredOption('--config <file>', 'YAML or JSON config (see docs/training.md)')
    .option('--set <key=value...>', 'override config fields, e.g. --set optimizer.lr=0.1 epochs=5', [])
    .option('--resume <checkpoint>', 'continue a run from a checkpoint it wrote')
    .option('--json', 'print the result as JSON on the last line')
    .action(async (opts: { config: string; set: string[]; resume?: string; json?: boolean }) => {
      let config = await readConfig(opts.config);
      config = applyOverrides(config, opts.set ?? [], (s) => YAML.parse(s));
      if (opts.resume) config.resume = opts.resume;
      const tty = process.stderr.isTTY === true;
      const bar = tty
        ? new cliProgress.SingleBar(
            { format: 'train [{bar}] {percentage}% {value}/{total} steps | epoch {epoch} | loss {loss} | lr {lr} | {ips} img/s | ETA {eta_formatted}', hideCursor: true, stream: process.stderr },
            cliProgress.Presets.shades_classic,
          )
        : undefined;
      let started = false;
      // Not on a terminal (logs, CI, nohup): a plain step line every TORCH_SSL_LOG_INTERVAL seconds (30).
      const interval = logIntervalMs();
      let firstStep: { at: number; step: number } | undefined;
      let lastLine = performance.now();
      const onProgress = (e: TrainEvent) => {
        if (e.type === 'step') {
          if (bar && !started) {
            bar.start(e.totalSteps, e.globalStep, { epoch: e.epoch, loss: '-', lr: '-', ips: '-' });
            started = true;
          }
          bar?.update(e.globalStep, { epoch: e.epoch, loss: e.loss.toFixed(4), lr: e.lr.toExponential(2), ips: e.imagesPerSec.toFixed(1) });
          if (!tty) {
            const now = performance.now();
            firstStep ??= { at: now, step: e.globalStep };
            if (now - lastLine >= interval) {
              lastLine = now;
              const left = eta(e.globalStep - firstStep.step, e.totalSteps - firstStep.step, (now - firstStep.at) / 1000);
              process.stderr.write(`step ${e.globalStep}/${e.totalSteps} (${((100 * e.globalStep) / e.totalSteps).toFixed(0)}%), epoch ${e.epoch}: loss ${e.loss.toFixed(4)}, lr ${e.lr.toExponential(2)}, ${e.imagesPerSec.toFixed(1)} images/s, ETA ${left}\n`);
            }
          }
        } else if (e.type === 'epoch' && !tty) {
          process.stderr.write(`epoch ${e.epoch}: loss ${e.loss.toFixed(4)} (step ${e.globalStep}/${e.totalSteps})\n`);
        } else if (e.type === 'knn') {
          const line = `epoch ${e.epoch}: kNN top-1 ${e.top1.toFixed(2)}%, top-5 ${e.top5.toFixed(2)}%`;
          if (bar) bar.updateETA();
          process.stderr.write(tty ? `\r\x1b[K${line}\n` : `${line}\n`);
        } else if (e.type === 'warning') {
          process.stderr.write(tty ? `\r\x1b[Kwarning: ${e.message}\n` : `warning: ${e.message}\n`);
        } else if (e.type === 'checkpoint') {
          const line = `checkpoint: ${e.path}${e.aborted ? ' (interrupted)' : ''}`;
          process.stderr.write(tty ? `\r\x1b[K${line}\n` : `${line}\n`);
        }
      };
      const result = await withInterrupt((signal) => train(config, { onProgress, signal })).finally(() => bar?.stop());
      const summary = `${result.aborted ? 'interrupted' : 'done'}: ${result.globalStep} steps, ${result.epochs} epochs, last loss ${result.lastLoss.toFixed(4)}, ${result.imagesPerSec.toFixed(1)} images/s (augment ${result.augmentMsPerStep.toFixed(0)} ms/step on the producer thread, step ${result.stepMsPerStep.toFixed(0)} ms, waited ${result.waitMsPerStep.toFixed(0)} ms)\ncheckpoint: ${result.checkpoint}`;
      if (result.removedTemporaries.length > 0) console.log(`removed ${result.removedTemporaries.length} temporary file(s) an interrupted earlier run left in ${String((config.checkpoint as { dir?: string } | undefined)?.dir ?? 'trained_models')}`);
      console.log(summary);
      if (result.aborted) process.exitCode = 130;
      if (opts.json) console.log(JSON.stringify({ ...result, losses: undefined }));
    });
}
