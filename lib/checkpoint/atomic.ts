/** Atomic file output: write a temporary file beside the target, then rename it over the target. */
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
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
