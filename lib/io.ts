/**
 * File I/O shared by every reader and writer of the package: reading a byte range fully, writing a file
 * atomically (a temporary file beside the target, renamed into place), the temporaries' names and their
 * clean-up after a killed run, and I/O errors in one message format.
 */
import { open, readdir, rename, rm, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { TorchSslError } from './errors.js';

/** The system error code (`ENOENT`, `EISDIR`, …) behind `err`, if any; a TorchSslError passes on the one it carries. */
function errnoOf(err: unknown): string | undefined {
  const code = err instanceof TorchSslError ? err.details?.errno : (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && !code.startsWith('ERR_') ? code : undefined;
}

/**
 * ERR_IO with an already composed `message` about `path`. Its details are `{ file: path, ...extra, errno }`,
 * errno when `cause` (the error behind it) is a system error; no `file` only when the failure is about no
 * file at all (`path` undefined, e.g. a package that failed to load).
 */
export function ioFailure(path: string | undefined, message: string, { cause, ...extra }: { cause?: unknown; [key: string]: unknown } = {}): TorchSslError {
  const errno = errnoOf(cause);
  return new TorchSslError('ERR_IO', message, { ...(path !== undefined ? { file: path } : {}), ...extra, ...(errno !== undefined ? { errno } : {}) });
}

/** `Cannot <action> <path>: <reason>` as ERR_IO (a TorchSslError passes through unchanged). */
export function ioError(path: string, err: unknown, action = 'read'): TorchSslError {
  if (err instanceof TorchSslError) return err;
  return ioFailure(path, `Cannot ${action} ${path}: ${(err as Error | undefined)?.message ?? String(err)}`, { cause: err });
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

/** A new temporary file beside `path` (see tempPathFor), opened exclusively for writing; throws open's own error. */
export async function createTemporary(path: string, mode?: number): Promise<{ tmp: string; fh: FileHandle }> {
  const tmp = tempPathFor(path);
  return { tmp, fh: await open(tmp, 'wx', mode) };
}

/** Flushes and closes a temporary file, then renames it over `path`; throws the failing step's own error. */
export async function commitTemporary(fh: FileHandle, tmp: string, path: string): Promise<void> {
  await fh.sync();
  await fh.close();
  await rename(tmp, path);
}

/** Closes (if still open) and removes a temporary file, ignoring errors: the write has failed already. */
export async function discardTemporary(fh: FileHandle | undefined, tmp: string): Promise<void> {
  await fh?.close().catch(() => undefined);
  await rm(tmp, { force: true }).catch(() => undefined);
}

/**
 * Runs `write` on a temporary file in the target's directory and renames it into place. On any error
 * the temporary file is removed and no file appears at `path` (an existing one is left untouched).
 */
export async function writeAtomically(path: string, write: (fh: FileHandle) => Promise<void>): Promise<void> {
  let created: { tmp: string; fh: FileHandle };
  try {
    created = await createTemporary(path);
  } catch (err) {
    throw ioFailure(path, `${path}: cannot create (${(err as Error).message})`, { cause: err });
  }
  const { tmp, fh } = created;
  try {
    await write(fh);
    await commitTemporary(fh, tmp, path);
  } catch (err) {
    await discardTemporary(fh, tmp);
    if (err instanceof TorchSslError) throw err;
    throw ioFailure(path, `${path}: write failed (${(err as Error).message})`, { cause: err });
  }
}

/** Writes `bytes` as the whole of the file `path`, atomically (see writeAtomically). */
export async function writeFileAtomically(path: string, bytes: Uint8Array): Promise<void> {
  await writeAtomically(path, (fh) => writeAll(fh, bytes));
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
