/**
 * What a training run logs next to its checkpoints, for people and for TensorBoard:
 *
 * - `metrics.csv`: one row per logged event (as Lightning's CSVLogger): `epoch, step, wall_time`, then each
 *   metric in the order first seen; empty cells where a row has no value. Rewritten atomically after each
 *   epoch, online kNN and checkpoint, and when the run ends, so a reader never sees half a file.
 * - `events.out.tfevents.<time>.<host>.<pid>.0`: the same values as TensorBoard scalars, appended as they come.
 *
 * The epoch column: a step row's epoch is the 0-based epoch the step belongs to; an epoch-end row
 * (train/loss_epoch) and an online-kNN row give the number of epochs completed (kNN before training: 0).
 *
 * Metric names: train/loss, train/<loss term>, train/class_loss, train/lr, train/grad_scale, perf/images_per_sec,
 * perf/augment_ms, perf/step_ms, perf/wait_ms, perf/comm_ms and perf/comm_wait_ms (data-parallel runs) (step events); train/loss_epoch (epoch events); knn/top1,
 * knn/top5 (online kNN, percent).
 */
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomically } from '../io.js';
import { EventFileWriter } from './tfevents.js';

export const METRICS_CSV = 'metrics.csv';

/** The fields of a training event this logger reads (a structural subset of TrainEvent). */
export type LoggedEvent =
  | {
      type: 'step';
      epoch: number;
      globalStep: number;
      loss: number;
      classifierLoss?: number;
      terms?: Record<string, number>;
      lr: number;
      imagesPerSec: number;
      augmentMs: number;
      stepMs: number;
      waitMs: number;
      gradScale?: number | undefined;
      commMs?: number;
      commWaitMs?: number;
    }
  | { type: 'epoch'; epoch: number; globalStep: number; loss: number }
  | { type: 'knn'; epoch: number; globalStep: number; top1: number; top5: number }
  | { type: string; epoch?: number; globalStep?: number };

export interface MetricsRow {
  epoch: number;
  step: number;
  wall_time: number;
  values: Record<string, number>;
}

/** Parses a metrics.csv this logger wrote (numbers only; empty cells are absent values). */
export function readMetricsCsv(path: string): { columns: string[]; rows: MetricsRow[] } {
  const lines = readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0);
  if (lines.length === 0) return { columns: [], rows: [] };
  const header = lines[0]!.split(',');
  const columns = header.slice(3);
  const rows = lines.slice(1).map((line) => {
    const cells = line.split(',');
    const values: Record<string, number> = {};
    columns.forEach((c, i) => {
      const cell = cells[i + 3];
      if (cell !== undefined && cell !== '') values[c] = Number(cell);
    });
    return { epoch: Number(cells[0]), step: Number(cells[1]), wall_time: Number(cells[2]), values };
  });
  return { columns, rows };
}

export class RunLogger {
  readonly csvPath: string;
  readonly eventsPath: string;
  private readonly rows: MetricsRow[] = [];
  private readonly columns: string[] = [];
  private readonly events: EventFileWriter;
  private writing: Promise<void> = Promise.resolve();
  private error: unknown;
  private closing: Promise<void> | undefined;

  /** `resumeStep`: a resumed run keeps the rows of metrics.csv up to that step and continues it. */
  constructor(dir: string, opts: { resumeStep?: number | undefined } = {}) {
    this.csvPath = join(dir, METRICS_CSV);
    if (opts.resumeStep !== undefined && existsSync(this.csvPath)) {
      try {
        const old = readMetricsCsv(this.csvPath);
        this.columns.push(...old.columns);
        this.rows.push(...old.rows.filter((r) => r.step <= opts.resumeStep!));
      } catch {
        // An unreadable old log is replaced; the run itself must not fail for it.
      }
    }
    this.eventsPath = join(dir, `events.out.tfevents.${Math.floor(Date.now() / 1000)}.${hostname()}.${process.pid}.0`);
    this.events = new EventFileWriter(this.eventsPath);
  }

  private add(epoch: number, step: number, values: Record<string, number | undefined>): void {
    const kept: Record<string, number> = {};
    for (const [k, v] of Object.entries(values)) {
      if (typeof v !== 'number' || !Number.isFinite(v)) continue;
      kept[k] = v;
      if (!this.columns.includes(k)) this.columns.push(k);
    }
    const wallTime = Date.now() / 1000;
    this.rows.push({ epoch, step, wall_time: wallTime, values: kept });
    this.events.scalars(step, kept, wallTime);
  }

  onEvent(e: LoggedEvent): void {
    if (e.type === 'step') {
      const s = e as Extract<LoggedEvent, { type: 'step'; terms?: unknown }>;
      const terms = Object.fromEntries(Object.entries(s.terms ?? {}).map(([k, v]) => [`train/${k}`, v]));
      this.add(s.epoch, s.globalStep, {
        'train/loss': s.loss,
        ...terms,
        'train/class_loss': s.classifierLoss,
        'train/lr': s.lr,
        'train/grad_scale': s.gradScale,
        'perf/images_per_sec': s.imagesPerSec,
        'perf/augment_ms': s.augmentMs,
        'perf/step_ms': s.stepMs,
        'perf/wait_ms': s.waitMs,
        ...(s.commMs ? { 'perf/comm_ms': s.commMs, 'perf/comm_wait_ms': s.commWaitMs } : {}),
      });
    } else if (e.type === 'epoch') {
      const s = e as Extract<LoggedEvent, { type: 'epoch'; loss: number }>;
      this.add(s.epoch, s.globalStep, { 'train/loss_epoch': s.loss });
      this.flush();
    } else if (e.type === 'knn') {
      const s = e as Extract<LoggedEvent, { type: 'knn'; top1: number }>;
      this.add(s.epoch, s.globalStep, { 'knn/top1': s.top1, 'knn/top5': s.top5 });
      this.flush();
    } else if (e.type === 'checkpoint') {
      this.flush();
    }
  }

  private csv(): string {
    const lines = [['epoch', 'step', 'wall_time', ...this.columns].join(',')];
    for (const r of this.rows)
      lines.push([r.epoch, r.step, r.wall_time.toFixed(3), ...this.columns.map((c) => (c in r.values ? String(r.values[c]) : ''))].join(','));
    return `${lines.join('\n')}\n`;
  }

  /** Rewrites metrics.csv atomically (queued behind earlier writes). */
  flush(): Promise<void> {
    const text = this.csv();
    this.writing = this.writing
      .then(() => writeFileAtomically(this.csvPath, Buffer.from(text, 'utf8')))
      .catch((err) => {
        this.error ??= err;
      });
    return this.writing;
  }

  /** Writes metrics.csv a last time and closes the event file; rejects with the first write error. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.flush();
      await this.events.close();
      if (this.error) throw this.error;
    })();
    return this.closing;
  }
}
