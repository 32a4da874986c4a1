/** A one-line stderr progress bar, drawn only on a TTY (plain logs and pipes get nothing). */
export interface ProgressBar {
  update(done: number, total: number, detail?: string): void;
  finish(): void;
}

export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr): ProgressBar {
  if (!stream.isTTY) return { update: () => undefined, finish: () => undefined };
  let last = 0;
  let drawn = false;
  return {
    update(done, total, detail = '') {
      const now = performance.now();
      if (done < total && now - last < 100) return; // at most 10 redraws a second
      last = now;
      const width = Math.max(10, Math.min(40, (stream.columns ?? 80) - label.length - detail.length - 24));
      const filled = total > 0 ? Math.round((width * done) / total) : width;
      const pct = total > 0 ? ((100 * done) / total).toFixed(0).padStart(3) : '100';
      stream.write(`\r${label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${pct}% ${done}/${total} ${detail}\x1b[K`);
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
