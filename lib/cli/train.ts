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
import { ioFailure } from '../io.js';
import { train, type StepEvent, type TrainEvent, type TrainResult } from '../train.js';
import { describeBatchNorm, describeBlas, describeConv, preloadNative } from '../native.js';
import { resolveTrainConfig } from '../train-config.js';
import { applyOverrides } from '../config-overrides.js';
import { launchLocal, resolveDist } from '../distributed.js';
import { nonNegativeInt, oneNumber, positiveInt } from './flags.js';
import { eta, logIntervalMs, withInterrupt } from './progress.js';

async function readConfig(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw ioFailure(path, `cannot read config ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const v = /\.json$/i.test(path) ? JSON.parse(text) : YAML.parse(text);
    if (typeof v !== 'object' || v === null) throw new Error('not a mapping');
    return v as Record<string, unknown>;
  } catch (err) {
    throw new TorchSslError('ERR_CONFIG', `${path}: not a valid ${/\.json$/i.test(path) ? 'JSON' : 'YAML'} config: ${(err as Error).message}`);
  }
}

/** The flags of `torch-ssl train`, as commander parses them. */
interface TrainFlags {
  config: string;
  set: string[];
  resume?: string;
  json?: boolean;
  nproc?: string;
  nnodes?: string;
  nodeRank?: string;
  masterAddr?: string;
  masterPort?: string;
}

/** The config file with the --set overrides and --resume applied. */
async function loadConfig(opts: TrainFlags): Promise<Record<string, unknown>> {
  let config = await readConfig(opts.config);
  config = applyOverrides(config, opts.set ?? [], (s) => YAML.parse(s));
  if (opts.resume) config.resume = opts.resume;
  return config;
}

/** The workers' environment: this one, with --master-addr / --master-port as MASTER_ADDR / MASTER_PORT. */
function workerEnv(opts: TrainFlags): NodeJS.ProcessEnv {
  const env = { ...process.env };
  if (opts.masterAddr !== undefined) {
    if (opts.masterAddr.trim() === '') throw new TorchSslError('ERR_INVALID_ARG', '--master-addr: expected a host name or address');
    env.MASTER_ADDR = opts.masterAddr;
  }
  if (opts.masterPort !== undefined)
    env.MASTER_PORT = String(oneNumber('--master-port', opts.masterPort, true, (n) => Number.isInteger(n) && n >= 1 && n <= 65535, 'a TCP port (1–65535)'));
  return env;
}

/** The workers' command-line arguments: this command's, less the launcher's flags. */
function workerArgs(argv: string[]): string[] {
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    // The launcher's own flags stay with it; the workers get the rest (and the rendezvous in their environment).
    if (['--nproc', '--nnodes', '--node-rank', '--master-addr', '--master-port'].includes(a)) i++;
    else if (!/^--(nproc|nnodes|node-rank|master-addr|master-port)=/.test(a)) args.push(a);
  }
  return args;
}

/** `--nproc`: starts this machine's workers (rank 0 reports) and exits with their status. */
async function launchWorkers(nprocFlag: string, opts: TrainFlags, config: Record<string, unknown>): Promise<void> {
  const nproc = positiveInt('--nproc', nprocFlag);
  const nnodes = opts.nnodes === undefined ? Number(process.env.NNODES ?? 1) : positiveInt('--nnodes', opts.nnodes);
  const nodeRank = opts.nodeRank === undefined ? Number(process.env.NODE_RANK ?? 0) : nonNegativeInt('--node-rank', opts.nodeRank);
  const env = workerEnv(opts);
  // The config is checked here, once, before any worker starts (a typo fails in the launcher, not N times).
  const resolved = resolveTrainConfig(config);
  resolveDist(resolved, { ...env, WORLD_SIZE: String(nproc * nnodes), RANK: String(nodeRank * nproc), LOCAL_RANK: '0' });
  const args = workerArgs(process.argv.slice(2));
  process.stderr.write(
    `launching ${nproc} worker${nproc > 1 ? 's' : ''}${nnodes > 1 ? ` on machine ${nodeRank} of ${nnodes}` : ''} (world size ${nproc * nnodes}); rank 0 reports\n`,
  );
  const r = await launchLocal({ nproc, nnodes, nodeRank, env, command: process.execPath, args: [...process.execArgv, process.argv[1]!, ...args] });
  process.exitCode = r.exitCode;
}

/** The progress bar, on a TTY only (stderr). */
function trainBar(tty: boolean): cliProgress.SingleBar | undefined {
  return tty
    ? new cliProgress.SingleBar(
        {
          format: 'train [{bar}] {percentage}% {value}/{total} steps | epoch {epoch} | loss {loss} | lr {lr} | {ips} img/s | ETA {eta_formatted}',
          hideCursor: true,
          stream: process.stderr,
        },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
}

/** Step events: the bar on a TTY, else a plain line every TORCH_SSL_LOG_INTERVAL seconds with the ETA. */
function stepReporter(tty: boolean, bar: cliProgress.SingleBar | undefined): (e: StepEvent) => void {
  let started = false;
  // Not on a terminal (logs, CI, nohup): a plain step line every TORCH_SSL_LOG_INTERVAL seconds (30).
  const interval = logIntervalMs();
  let firstStep: { at: number; step: number } | undefined;
  let lastLine = performance.now();
  return (e) => {
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
        process.stderr.write(
          `step ${e.globalStep}/${e.totalSteps} (${((100 * e.globalStep) / e.totalSteps).toFixed(0)}%), epoch ${e.epoch}: loss ${e.loss.toFixed(4)}, lr ${e.lr.toExponential(2)}, ${e.imagesPerSec.toFixed(1)} images/s, ETA ${left}\n`,
        );
      }
    }
  };
}

/** Training progress on stderr: steps (bar or log lines), epochs off a TTY, kNN results, warnings and checkpoints. */
function progressReporter(tty: boolean, bar: cliProgress.SingleBar | undefined): (e: TrainEvent) => void {
  const onStep = stepReporter(tty, bar);
  return (e) => {
    if (e.type === 'step') {
      onStep(e);
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
}

/** The run's summary on stdout (and the result as JSON with --json); exit status 130 when interrupted. */
function printSummary(result: TrainResult, config: Record<string, unknown>, json: boolean | undefined): void {
  const summary = `${result.aborted ? 'interrupted' : 'done'}: ${result.globalStep} steps, ${result.epochs} epochs, last loss ${result.lastLoss.toFixed(4)}, ${result.imagesPerSec.toFixed(1)} images/s in ${result.precision === '32' ? 'float32' : result.precision}${result.precisionReason !== undefined ? ` (${result.precisionReason})` : ''} (augment ${result.augmentMsPerStep.toFixed(0)} ms/step on the producer thread, step ${result.stepMsPerStep.toFixed(0)} ms, waited ${result.waitMsPerStep.toFixed(0)} ms)\ncheckpoint: ${result.checkpoint}`;
  if (result.removedTemporaries.length > 0)
    console.log(
      `removed ${result.removedTemporaries.length} temporary file(s) an interrupted earlier run left in ${String((config.checkpoint as { dir?: string } | undefined)?.dir ?? 'trained_models')}`,
    );
  console.log(summary);
  if (result.aborted) process.exitCode = 130;
  if (json) console.log(JSON.stringify({ ...result, losses: undefined }));
}

/** Trains in this process (alone, or as one worker of `--nproc`); Ctrl-C writes a checkpoint and ends the run. */
async function trainHere(config: Record<string, unknown>, opts: TrainFlags): Promise<void> {
  // A worker of `--nproc`: its launcher gone (killed), it stops as on Ctrl-C instead of training on alone.
  const orphaned = () => {
    process.kill(process.pid, 'SIGTERM');
    setTimeout(() => process.exit(1), 30_000).unref();
  };
  if (process.env.TORCH_SSL_LAUNCHED === '1' && process.connected) process.once('disconnect', orphaned);
  const tty = process.stderr.isTTY === true;
  const bar = trainBar(tty);
  const onProgress = progressReporter(tty, bar);
  await preloadNative();
  process.stderr.write(`${describeBlas()}\n${describeConv()}\n${describeBatchNorm()}\n`);
  const result = await withInterrupt((signal) => train(config, { onProgress, signal })).finally(() => {
    bar?.stop();
    process.off('disconnect', orphaned);
    if (process.connected) process.disconnect(); // a launched worker: let the process exit
  });
  printSummary(result, config, opts.json);
}

export function register(program: Command): void {
  program
    .command('train')
    .description('self-supervised training (VICReg, SimCLR, TCR, Barlow Twins, BYOL, MoCo v3, SimSiam) from a config file')
    .requiredOption('--config <file>', 'YAML or JSON config (see docs/training.md)')
    .option('--set <key=value...>', 'override config fields, e.g. --set optimizer.lr=0.1 epochs=5', [])
    .option('--resume <checkpoint>', 'continue a run from a checkpoint it wrote')
    .option('--json', 'print the result as JSON on the last line')
    .option('--nproc <n>', 'start N data-parallel workers on this machine (c10d; docs/distributed.md)')
    .option('--nnodes <n>', 'machines in the job (with --nproc; MASTER_ADDR / MASTER_PORT set on each)')
    .option('--node-rank <i>', "this machine's index in the job, 0 to nnodes-1 (with --nproc)")
    .option('--master-addr <host>', "rank 0's machine, reachable by every worker (MASTER_ADDR; default 127.0.0.1)")
    .option('--master-port <port>', 'the rendezvous port on it (MASTER_PORT; default: a free port on one machine)')
    .action(async (opts: TrainFlags) => {
      const config = await loadConfig(opts);
      if (
        opts.nproc === undefined &&
        (opts.nnodes !== undefined || opts.nodeRank !== undefined || opts.masterAddr !== undefined || opts.masterPort !== undefined)
      )
        throw new TorchSslError(
          'ERR_INVALID_ARG',
          '--nnodes, --node-rank, --master-addr and --master-port go with --nproc (workers per machine); a single worker reads MASTER_ADDR / MASTER_PORT or config.dist',
        );
      if (opts.nproc !== undefined) await launchWorkers(opts.nproc, opts, config);
      else await trainHere(config, opts);
    });
}
