/** A one-line stderr progress bar on a TTY; plain log lines elsewhere (pipes, files, CI logs). */
export interface ProgressBar {
  update(done: number, total: number, detail?: string): void;
  finish(): void;
}

/**
 * Seconds between plain progress lines when the output is not a terminal: `TORCH_SSL_LOG_INTERVAL`
 * (seconds, default 30). A line is also printed at every 10 % of the work.
 */
export function logIntervalMs(): number {
  const v = Number(process.env.TORCH_SSL_LOG_INTERVAL ?? '30');
  return Number.isFinite(v) && v >= 0 ? v * 1000 : 30_000;
}

/** `1 h 02 min`, `3 min 05 s`, `42 s`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s >= 3600) return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
  if (s >= 60) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${s} s`;
}

/** Remaining time from the rate so far. */
export function eta(done: number, total: number, elapsedSeconds: number): string {
  if (done <= 0 || done >= total) return done >= total ? '0 s' : '?';
  return formatDuration((elapsedSeconds * (total - done)) / done);
}

/**
 * Progress for long work. On a TTY: a redrawn bar with the ETA. Otherwise: a plain line every
 * `logIntervalMs()` and at every 10 %, so that logs show the run is alive and how long it has left.
 */
export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr, intervalMs = logIntervalMs()): ProgressBar {
  const t0 = performance.now();
  if (!stream.isTTY) {
    let lastLine = t0;
    let lastDecile = 0;
    return {
      update(done, total, detail = '') {
        const now = performance.now();
        const decile = total > 0 ? Math.floor((10 * done) / total) : 10;
        if (now - lastLine < intervalMs && decile <= lastDecile) return;
        lastLine = now;
        lastDecile = decile;
        const pct = total > 0 ? ((100 * done) / total).toFixed(0) : '100';
        stream.write(
          `${label}: ${pct}% ${done}/${total}${detail ? `, ${detail}` : ''}, elapsed ${formatDuration((now - t0) / 1000)}, ETA ${eta(done, total, (now - t0) / 1000)}\n`,
        );
      },
      finish() {},
    };
  }
  let last = 0;
  let drawn = false;
  return {
    update(done, total, detail = '') {
      const now = performance.now();
      if (done < total && now - last < 100) return; // at most 10 redraws a second
      last = now;
      const tail = `${detail} ETA ${eta(done, total, (now - t0) / 1000)}`;
      const width = Math.max(10, Math.min(40, (stream.columns ?? 80) - label.length - tail.length - 24));
      const filled = total > 0 ? Math.round((width * done) / total) : width;
      const pct = total > 0 ? ((100 * done) / total).toFixed(0).padStart(3) : '100';
      stream.write(`\r${label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${pct}% ${done}/${total} ${tail}\x1b[K`);
      drawn = true;
    },
    finish() {
      if (drawn) stream.write('\n');
      drawn = false;
    },
  };
}

/** An AbortSignal raised by Ctrl-C (SIGINT) / SIGTERM while `run` is in flight; handlers are removed after. */
export async function withInterrupt<T>(run: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  const stop = () => ac.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    return await run(ac.signal);
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}
