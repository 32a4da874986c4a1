/**
 * File I/O shared by every reader and writer of the package: reading a byte range fully, writing a file
 * atomically (a temporary file beside the target, renamed into place), the temporaries' names and their
 * clean-up after a killed run, and I/O errors in one message format.
 */
import { open, readdir, rename, rm, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { TorchSslError } from './errors.js';

/** `Cannot <action> <path>: <reason>` as ERR_IO (a TorchSslError passes through unchanged). */
export function ioError(path: string, err: unknown, action = 'read'): TorchSslError {
  if (err instanceof TorchSslError) return err;
  const e = err as NodeJS.ErrnoException;
  return new TorchSslError('ERR_IO', `Cannot ${action} ${path}: ${e?.message ?? String(err)}`, { file: path, errno: e?.code });
}

/**
 * Reads `into.length` bytes at `position` (a short read continues where it stopped). When the file ends
 * first, `ended(atByte, missing)` makes the error; without it the count read so far is returned.
 */
export async function readFully(fh: FileHandle, into: Uint8Array, position: number, ended?: (atByte: number, missing: number) => Error): Promise<number> {
  let done = 0;
  while (done < into.length) {
    const { bytesRead } = await fh.read(into, done, into.length - done, position + done);
    if (bytesRead === 0) {
      if (ended) throw ended(position + done, into.length - done);
      break;
    }
    done += bytesRead;
  }
  return done;
}

/** `length` bytes at `position` in a new buffer (see readFully). */
export async function readBytes(fh: FileHandle, position: number, length: number, ended: (atByte: number, missing: number) => Error): Promise<Uint8Array> {
  const out = new Uint8Array(new ArrayBuffer(length));
  await readFully(fh, out, position, ended);
  return out;
}

/** A temporary name beside `path` (same directory, so the final rename is atomic): `.<name>.tmp-<pid>-<hex>`. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/**
 * Runs `write` on a temporary file in the target's directory and renames it into place. On any error
 * the temporary file is removed and no file appears at `path` (an existing one is left untouched).
 */
export async function writeAtomically(path: string, write: (fh: FileHandle) => Promise<void>): Promise<void> {
  const tmp = tempPathFor(path);
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
