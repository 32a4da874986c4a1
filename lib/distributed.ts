/**
 * Data-parallel training over c10d (docs/distributed.md): where a rank stands in its job (the config's `dist`
 * and torchrun's environment variables), the digest every rank must agree on, and the local launcher behind
 * `torch-ssl train --nproc N`, which starts N workers and supervises them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { TorchSslError } from './errors.js';
import type { NativeDist, NativeTrainConfig } from './native.js';
import type { TrainConfig } from './train-config.js';

/** The rendezvous variables torchrun sets, by the config field they stand for. */
const ENV_NAMES = { worldSize: 'WORLD_SIZE', rank: 'RANK', localRank: 'LOCAL_RANK', masterAddr: 'MASTER_ADDR', masterPort: 'MASTER_PORT' } as const;
type Field = keyof typeof ENV_NAMES;

/** A rank's place in the job: the engine's NativeDist fields (times in seconds under config names), without the digest. */
export interface DistPlace extends Pick<
  NativeDist,
  'rank' | 'worldSize' | 'localRank' | 'masterAddr' | 'masterPort' | 'backend' | 'syncBatchNorm' | 'bucketMb'
> {
  timeout: number;
  rendezvousTimeout: number;
}

/**
 * This process's place in a data-parallel job, or null for a single-process run (no `dist` in the config and
 * no WORLD_SIZE / RANK in the environment). A value given both ways must agree; errors use the name the user
 * gave it (config.dist.rank or RANK).
 */
export function resolveDist(c: Pick<TrainConfig, 'dist' | 'device'>, env: NodeJS.ProcessEnv = process.env): DistPlace | null {
  const fromEnv = (f: Field): number | string | undefined => {
    const v = env[ENV_NAMES[f]];
    if (v === undefined || v === '') return undefined;
    if (f === 'masterAddr') return v;
    if (!/^\d+$/.test(v.trim())) throw new TorchSslError('ERR_CONFIG', `${ENV_NAMES[f]}=${v}: expected a non-negative integer`, { key: ENV_NAMES[f] });
    return Number(v);
  };
  const d = c.dist;
  if (!d && fromEnv('worldSize') === undefined && fromEnv('rank') === undefined) return null;
  const name = (f: Field, source: 'config' | 'env') => (source === 'config' ? `config.dist.${f}` : ENV_NAMES[f]);
  const pick = <T extends number | string>(f: Field): { value: T; from: string } | undefined => {
    const a = d?.[f] as T | undefined;
    const b = fromEnv(f) as T | undefined;
    if (a !== undefined && b !== undefined && a !== b)
      throw new TorchSslError('ERR_CONFIG', `config.dist.${f} is ${a} but ${ENV_NAMES[f]} is ${b}: give it once, or the same in both`, { key: `dist.${f}` });
    if (a !== undefined) return { value: a, from: name(f, 'config') };
    if (b !== undefined) return { value: b, from: name(f, 'env') };
    return undefined;
  };
  const world = pick<number>('worldSize');
  const rank = pick<number>('rank');
  if (!world)
    throw new TorchSslError(
      'ERR_CONFIG',
      `a data-parallel run needs its world size: config.dist.worldSize or WORLD_SIZE (${rank?.from ?? 'config.dist'} is set)`,
      { key: 'dist.worldSize' },
    );
  if (!rank)
    throw new TorchSslError('ERR_CONFIG', `a data-parallel run needs this process's rank: config.dist.rank or RANK (${world.from} is ${world.value})`, {
      key: 'dist.rank',
    });
  if (world.value < 1) throw new TorchSslError('ERR_CONFIG', `${world.from} must be at least 1, got ${world.value}`, { key: 'dist.worldSize' });
  if (rank.value >= world.value)
    throw new TorchSslError('ERR_CONFIG', `${rank.from} is ${rank.value}, but ranks run from 0 to ${world.value - 1} (${world.from} is ${world.value})`, {
      key: 'dist.rank',
    });
  const port = pick<number>('masterPort');
  if (port && (port.value < 1 || port.value > 65535))
    throw new TorchSslError('ERR_CONFIG', `${port.from} must be a TCP port (1–65535), got ${port.value}`, { key: 'dist.masterPort' });
  const cuda = c.device.startsWith('cuda');
  const backend = d?.backend ?? (cuda ? 'nccl' : 'gloo');
  if (backend === 'nccl' && !cuda)
    throw new TorchSslError('ERR_CONFIG', `config.dist.backend 'nccl' needs a CUDA device (config.device is '${c.device}'); on CPU use 'gloo'`, {
      key: 'dist.backend',
    });
  if (backend === 'gloo' && cuda)
    throw new TorchSslError('ERR_CONFIG', `config.dist.backend 'gloo' with config.device '${c.device}': use 'nccl' for CUDA tensors`, { key: 'dist.backend' });
  return {
    rank: rank.value,
    worldSize: world.value,
    localRank: pick<number>('localRank')?.value ?? rank.value,
    masterAddr: pick<string>('masterAddr')?.value ?? '127.0.0.1',
    masterPort: port?.value ?? 29500,
    backend,
    timeout: d?.timeout ?? 1800,
    rendezvousTimeout: d?.rendezvousTimeout ?? 300,
    syncBatchNorm: d?.syncBatchNorm ?? false,
    bucketMb: d?.bucketMb ?? 25,
  };
}

/** A rank's device: `cuda` alone means the local rank's GPU (torchrun's convention). */
export function deviceForRank(device: string, place: DistPlace | null): string {
  return place && device === 'cuda' ? `cuda:${place.localRank}` : device;
}

/**
 * What every rank must share: the engine config (every hyperparameter, the views, the seed) without the
 * rank's own fields, the world size and the training data's shape. Paths are left out (they may differ
 * between machines); a different data set of the same shape is not caught.
 */
export function configDigest(config: Omit<NativeTrainConfig, 'dist'>, place: DistPlace, dataShape: readonly number[]): string {
  const shared = {
    ...config,
    device: config.device.replace(/:\d+$/, ''),
    worldSize: place.worldSize,
    backend: place.backend,
    syncBatchNorm: place.syncBatchNorm,
    bucketMb: place.bucketMb,
    dataShape,
  };
  return createHash('sha256').update(JSON.stringify(shared)).digest('hex').slice(0, 16);
}

export function toNativeDist(place: DistPlace, digest: string): NativeDist {
  return {
    rank: place.rank,
    worldSize: place.worldSize,
    localRank: place.localRank,
    masterAddr: place.masterAddr,
    masterPort: place.masterPort,
    backend: place.backend,
    timeoutSec: place.timeout,
    rendezvousTimeoutSec: place.rendezvousTimeout,
    configDigest: digest,
    syncBatchNorm: place.syncBatchNorm,
    bucketMb: place.bucketMb,
  };
}

/** A TCP port nobody listens on now (the OS picks it), for a local job's rendezvous. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface LaunchOptions {
  /** Workers on this machine. */
  nproc: number;
  /** Machines in the job and this one's index (NNODES / NODE_RANK); one machine by default. */
  nnodes?: number;
  nodeRank?: number;
  /** The worker command: run with RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set. */
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  /** Lines a worker (other than rank 0, whose output is passed through) writes to stderr, with its rank. */
  onWorkerLine?: (rank: number, line: string) => void;
  /** Seconds between asking the other workers to stop (SIGTERM) and killing them, after one failed. */
  graceSec?: number;
}

export interface LaunchResult {
  /** 0 when every worker succeeded; 130 when the job was interrupted. */
  exitCode: number;
  interrupted: boolean;
}

/**
 * Starts `nproc` workers and supervises them: a worker that fails stops the others (SIGTERM, then SIGKILL
 * after `graceSec`) and the launch rejects with ERR_DISTRIBUTED naming its rank and exit status; SIGINT /
 * SIGTERM to the launcher are passed to every worker once (rank 0 then writes its checkpoint), a second one
 * kills them. Workers run in their own process group, so a terminal's Ctrl-C reaches them only through the
 * launcher, once; a worker whose launcher disappears stops itself (the IPC channel closes).
 */
export async function launchLocal(o: LaunchOptions): Promise<LaunchResult> {
  const nnodes = o.nnodes ?? 1;
  const nodeRank = o.nodeRank ?? 0;
  if (!Number.isInteger(o.nproc) || o.nproc < 1) throw new TorchSslError('ERR_INVALID_ARG', `--nproc: expected a positive integer, got ${o.nproc}`);
  if (!Number.isInteger(nnodes) || nnodes < 1) throw new TorchSslError('ERR_INVALID_ARG', `--nnodes: expected a positive integer, got ${nnodes}`);
  if (!Number.isInteger(nodeRank) || nodeRank < 0 || nodeRank >= nnodes)
    throw new TorchSslError('ERR_INVALID_ARG', `--node-rank: expected 0 to ${nnodes - 1}, got ${nodeRank}`);
  const env = o.env ?? process.env;
  const masterAddr = env.MASTER_ADDR || '127.0.0.1';
  if (nnodes > 1 && !env.MASTER_PORT)
    throw new TorchSslError('ERR_INVALID_ARG', 'several machines (--nnodes > 1) need MASTER_ADDR and MASTER_PORT set to the same values on each');
  const masterPort = env.MASTER_PORT ? Number(env.MASTER_PORT) : await freePort(masterAddr === 'localhost' ? '127.0.0.1' : masterAddr);
  const world = nnodes * o.nproc;
  const children: ChildProcess[] = [];
  const exited = new Map<number, { code: number | null; signal: NodeJS.Signals | null }>();
  let failure: { rank: number; code: number | null; signal: NodeJS.Signals | null } | undefined;
  let interrupts = 0;
  let killTimer: NodeJS.Timeout | undefined;

  const stopOthers = () => {
    for (const [i, ch] of children.entries()) if (!exited.has(i)) ch.kill('SIGTERM');
    killTimer ??= setTimeout(
      () => {
        for (const [i, ch] of children.entries()) if (!exited.has(i)) ch.kill('SIGKILL');
      },
      (o.graceSec ?? 5) * 1000,
    );
  };
  const onSignal = (sig: NodeJS.Signals) => {
    interrupts += 1;
    for (const [i, ch] of children.entries()) if (!exited.has(i)) ch.kill(interrupts > 1 ? 'SIGKILL' : sig);
  };
  const onInt = () => onSignal('SIGINT');
  const onTerm = () => onSignal('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);

  try {
    await new Promise<void>((resolve) => {
      for (let local = 0; local < o.nproc; local++) {
        const rank = nodeRank * o.nproc + local;
        const ch = spawn(o.command, o.args, {
          env: {
            ...env,
            RANK: String(rank),
            LOCAL_RANK: String(local),
            WORLD_SIZE: String(world),
            LOCAL_WORLD_SIZE: String(o.nproc),
            MASTER_ADDR: masterAddr,
            MASTER_PORT: String(masterPort),
            TORCH_SSL_LAUNCHED: '1',
          },
          stdio: ['ignore', rank === 0 ? 'inherit' : 'ignore', rank === 0 ? 'inherit' : 'pipe', 'ipc'],
          detached: true,
        });
        children.push(ch);
        if (ch.stderr) {
          const rl = createInterface({ input: ch.stderr });
          rl.on('line', (line) => (o.onWorkerLine ? o.onWorkerLine(rank, line) : process.stderr.write(`[rank ${rank}] ${line}\n`)));
        }
        ch.on('error', (err) => {
          if (exited.has(local)) return;
          exited.set(local, { code: 1, signal: null });
          failure ??= { rank, code: null, signal: null };
          process.stderr.write(`[rank ${rank}] could not start: ${err.message}\n`);
          stopOthers();
          if (exited.size === o.nproc) resolve();
        });
        ch.on('exit', (code, signal) => {
          exited.set(local, { code, signal });
          const failed = code !== 0 && !(interrupts > 0 && (code === 130 || signal === 'SIGINT' || signal === 'SIGTERM'));
          if (failed && !failure && interrupts === 0) {
            failure = { rank, code, signal };
            stopOthers();
          }
          if (exited.size === o.nproc) resolve();
        });
      }
    });
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
    if (killTimer) clearTimeout(killTimer);
  }
  if (failure) {
    const status = failure.signal ? `was killed by ${failure.signal}` : failure.code === null ? 'could not be started' : `exited with status ${failure.code}`;
    throw new TorchSslError('ERR_DISTRIBUTED', `rank ${failure.rank} of ${world} ${status}; the other workers were stopped`, {
      rank: failure.rank,
      exitCode: failure.code,
      signal: failure.signal,
    });
  }
  return { exitCode: interrupts > 0 ? 130 : 0, interrupted: interrupts > 0 };
}
