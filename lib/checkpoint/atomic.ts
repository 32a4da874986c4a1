/** Atomic file output: write a temporary file beside the target, then rename it over the target. */
import { open, readdir, rename, rm, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { TorchSslError } from '../errors.js';

/**
 * Runs `write` on a temporary file in the target's directory and renames it into place. On any error
 * the temporary file is removed and no file appears at `path` (an existing one is left untouched).
 */
export async function writeAtomically(path: string, write: (fh: FileHandle) => Promise<void>): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  let fh: FileHandle;
  try {
    fh = await open(tmp, 'wx');
  } catch (err) {
    throw new TorchSslError('ERR_IO', `${path}: cannot create (${(err as Error).message})`);
  }
  try {
    try {
      await write(fh);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    if (err instanceof TorchSslError) throw err;
    throw new TorchSslError('ERR_IO', `${path}: write failed (${(err as Error).message})`);
  }
}

/** Writes all of `data` at the handle's current position. */
export async function writeAll(fh: FileHandle, data: Uint8Array): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await fh.write(data, done, data.length - done);
    done += bytesWritten;
  }
}

/** Temporary names this package writes: `.<name>.tmp-<pid>-<hex>` (here), `.<name>.<pid>.<hex>.tmp` (npy),
 *  `.<name>.pending-<pid>.npy` (extract's staged features), `args.json.tmp-<pid>` (the trainer). */
const TEMP_PATTERNS = [/^\..+\.tmp-(\d+)-[0-9a-f]{8}$/, /^\..+\.(\d+)\.[0-9a-f]{8}\.tmp$/, /^\..+\.pending-(\d+)\.npy$/, /^args\.json\.tmp-(\d+)$/];

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // alive, but someone else's
  }
}

/**
 * Removes the temporary files a killed run of this package left in `dir` (those whose writing process is
 * gone; a live writer's are kept). Returns the names removed.
 */
export async function removeStaleTemporaries(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = TEMP_PATTERNS.map((p) => p.exec(name)).find((x) => x !== null);
    if (!m || processAlive(Number(m[1]))) continue;
    await rm(join(dir, name), { force: true }).then(
      () => removed.push(name),
      () => undefined,
    );
  }
  return removed;
}
