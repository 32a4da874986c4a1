/**
 * A small random-access zip reader over a file descriptor.
 *
 * Only the central directory is read when a file is opened; entry data is read on demand with
 * positioned reads, so a caller that wants one tensor never touches the others. PyTorch writes its
 * entries stored (uncompressed) and 64-byte aligned, which lets a tensor be read straight from its byte
 * range; deflated entries (archives re-zipped by other tools) are inflated whole, bounded by their
 * declared size. Zip64 records are understood. Every size and offset is checked against the file.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { crc32, inflateRaw } from 'node:zlib';
import { promisify } from 'node:util';
import { TorchSslError } from '../errors.js';
import { ioFailure, readBytes } from '../io.js';
import { formatError } from './errors.js';

const inflateRawAsync = promisify(inflateRaw) as (buf: Uint8Array, opts: { maxOutputLength: number }) => Promise<Buffer>;

const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_LOCAL = 0x04034b50;
/** Deflate cannot expand data by more than ~1032:1; a larger declared ratio is a zip bomb or corruption. */
const MAX_DEFLATE_RATIO = 1100;

/**
 * Memory one compressed entry may inflate to: 512 MiB by default (torch.save stores entries uncompressed;
 * a deflated pickle of more is a decompression bomb, not a checkpoint), `TORCH_SSL_MAX_INFLATE_MB` to raise it.
 */
export function maxInflateBytes(): number {
  const mb = Number(process.env.TORCH_SSL_MAX_INFLATE_MB ?? '512');
  return (Number.isFinite(mb) && mb > 0 ? mb : 512) * 2 ** 20;
}

export interface ZipEntry {
  readonly name: string;
  /** 0 = stored, 8 = deflated. */
  readonly method: number;
  readonly compressedSize: number;
  readonly uncompressedSize: number;
  readonly crc32: number;
  readonly localHeaderOffset: number;
}

/** Reads 64-bit little-endian sizes as numbers, refusing values past 2^53. */
function u64(view: DataView, at: number, path: string): number {
  const v = view.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw formatError(path, 'zip64 size or offset too large');
  return Number(v);
}

export class ZipReader {
  readonly path: string;
  readonly size: number;
  readonly entries: ReadonlyMap<string, ZipEntry>;
  private fh: FileHandle | null;
  /** Offsets of entry data, resolved from local headers on first use. */
  private readonly dataOffsets = new Map<string, number>();
  private readonly centralStart: number;

  private constructor(path: string, fh: FileHandle, size: number, entries: Map<string, ZipEntry>, centralStart: number) {
    this.path = path;
    this.fh = fh;
    this.size = size;
    this.entries = entries;
    this.centralStart = centralStart;
  }

  /** Opens a zip file and reads its central directory. Throws ERR_CHECKPOINT_FORMAT if it is not a readable zip. */
  static async open(path: string): Promise<ZipReader> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (err) {
      throw ioFailure(path, `${path}: cannot open (${(err as Error).message})`, { cause: err });
    }
    try {
      const size = (await fh.stat()).size;
      const { entries, centralStart } = await readCentralDirectory(fh, path, size);
      return new ZipReader(path, fh, size, entries, centralStart);
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }
  }

  /** True when the first four bytes are a zip local-file or end-of-directory signature. */
  static looksLikeZip(head: Uint8Array): boolean {
    if (head.length < 4) return false;
    const sig = head[0]! | (head[1]! << 8) | (head[2]! << 16) | (head[3]! << 24);
    return sig === SIG_LOCAL || sig === SIG_EOCD;
  }

  get closed(): boolean {
    return this.fh === null;
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = null;
    if (fh) await fh.close();
  }

  /** Reads `length` bytes at absolute file offset `position` into a fresh (8-byte aligned) buffer. */
  async readAt(position: number, length: number): Promise<Uint8Array> {
    const fh = this.handle();
    if (position < 0 || length < 0 || position + length > this.size) {
      throw formatError(this.path, `read of ${length} bytes at ${position} is past the end of the ${this.size}-byte file`);
    }
    return readBytes(fh, position, length, (at) => formatError(this.path, `file ended early at byte ${at}`));
  }

  /** The whole (inflated) content of an entry, CRC-checked. */
  async read(entry: ZipEntry): Promise<Uint8Array> {
    const start = await this.dataOffset(entry);
    const raw = await this.readAt(start, entry.compressedSize);
    let data: Uint8Array;
    if (entry.method === 0) {
      data = raw;
    } else {
      const limit = maxInflateBytes();
      if (entry.uncompressedSize > limit) {
        throw new TorchSslError(
          'ERR_CHECKPOINT_FORMAT',
          `${this.path}: entry ${entry.name} would inflate to ${(entry.uncompressedSize / 2 ** 20).toFixed(0)} MiB from ${entry.compressedSize} bytes, above the limit of ${(limit / 2 ** 20).toFixed(0)} MiB per compressed entry; if the file is trusted, raise it with TORCH_SSL_MAX_INFLATE_MB`,
          { file: this.path, entry: entry.name, limit },
        );
      }
      try {
        data = await inflateRawAsync(raw, { maxOutputLength: Math.max(1, entry.uncompressedSize) });
      } catch (err) {
        throw formatError(this.path, `entry ${entry.name} does not inflate (${(err as Error).message})`);
      }
      if (data.length !== entry.uncompressedSize) {
        throw formatError(this.path, `entry ${entry.name} inflates to ${data.length} bytes, its header says ${entry.uncompressedSize}`);
      }
    }
    if (crc32(data) >>> 0 !== entry.crc32) throw formatError(this.path, `entry ${entry.name} fails its CRC-32 check (corrupt)`);
    return data;
  }

  /**
   * `length` bytes of an entry's content starting at `offset`. A stored entry is read in place (only those
   * bytes); a deflated one is inflated whole. A read that covers the whole entry is CRC-checked.
   */
  async readRange(entry: ZipEntry, offset: number, length: number): Promise<Uint8Array> {
    if (offset < 0 || length < 0 || offset + length > entry.uncompressedSize) {
      throw formatError(this.path, `range [${offset}, ${offset + length}) is outside entry ${entry.name} of ${entry.uncompressedSize} bytes`);
    }
    if (entry.method !== 0 || (offset === 0 && length === entry.uncompressedSize)) {
      const all = await this.read(entry);
      return offset === 0 && length === all.length ? all : all.slice(offset, offset + length);
    }
    const start = await this.dataOffset(entry);
    return this.readAt(start + offset, length);
  }

  private handle(): FileHandle {
    if (!this.fh) throw ioFailure(this.path, `${this.path}: the file was closed`);
    return this.fh;
  }

  private async dataOffset(entry: ZipEntry): Promise<number> {
    const known = this.dataOffsets.get(entry.name);
    if (known !== undefined) return known;
    const head = await this.readAt(entry.localHeaderOffset, Math.min(30, this.size - entry.localHeaderOffset));
    if (head.length < 30) throw formatError(this.path, `local header of ${entry.name} is truncated`);
    const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
    if (view.getUint32(0, true) !== SIG_LOCAL) throw formatError(this.path, `local header of ${entry.name} is missing (bad signature)`);
    const start = entry.localHeaderOffset + 30 + view.getUint16(26, true) + view.getUint16(28, true);
    if (start + entry.compressedSize > this.centralStart) {
      throw formatError(this.path, `data of ${entry.name} (${entry.compressedSize} bytes at ${start}) runs past the entries' area`);
    }
    this.dataOffsets.set(entry.name, start);
    return start;
  }
}

async function readCentralDirectory(fh: FileHandle, path: string, size: number): Promise<{ entries: Map<string, ZipEntry>; centralStart: number }> {
  const readAt = async (pos: number, len: number): Promise<DataView> => {
    const buf = new Uint8Array(len);
    const { bytesRead } = await fh.read(buf, 0, len, pos);
    if (bytesRead !== len) throw formatError(path, 'file ended early while reading the zip directory');
    return new DataView(buf.buffer);
  };
  if (size < 22) throw formatError(path, `not a zip archive (only ${size} bytes)`);
  // The end-of-central-directory record sits in the last 22 + up to 65535 (comment) bytes.
  const tailLen = Math.min(size, 22 + 65535);
  const tail = await readAt(size - tailLen, tailLen);
  let eocd = -1;
  for (let i = tailLen - 22; i >= 0; i--) {
    if (tail.getUint32(i, true) === SIG_EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw formatError(path, 'not a zip archive or truncated (no end-of-central-directory record)');
  const eocdPos = size - tailLen + eocd;
  let count = tail.getUint16(eocd + 10, true);
  let cdSize = tail.getUint32(eocd + 12, true);
  let cdOffset = tail.getUint32(eocd + 16, true);
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    if (eocdPos < 20) throw formatError(path, 'zip64 locator missing');
    const loc = await readAt(eocdPos - 20, 20);
    if (loc.getUint32(0, true) !== SIG_ZIP64_LOCATOR) throw formatError(path, 'zip64 locator missing');
    const z64Pos = u64(loc, 8, path);
    if (z64Pos + 56 > eocdPos) throw formatError(path, 'zip64 end record points outside the file');
    const z64 = await readAt(z64Pos, 56);
    if (z64.getUint32(0, true) !== SIG_ZIP64_EOCD) throw formatError(path, 'zip64 end record has a bad signature');
    count = u64(z64, 32, path);
    cdSize = u64(z64, 40, path);
    cdOffset = u64(z64, 48, path);
  }
  if (cdOffset + cdSize > eocdPos || cdSize > 1 << 30) {
    throw formatError(path, `central directory (${cdSize} bytes at ${cdOffset}) lies outside the file; truncated?`);
  }
  if (count * 46 > cdSize) throw formatError(path, `central directory too small for ${count} entries`);
  const cd = await readAt(cdOffset, cdSize);
  const bytes = new Uint8Array(cd.buffer);
  const decoder = new TextDecoder('utf-8', { fatal: false });
  const entries = new Map<string, ZipEntry>();
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cdSize || cd.getUint32(p, true) !== SIG_CENTRAL) throw formatError(path, `central directory entry ${i} is corrupt`);
    const flags = cd.getUint16(p + 8, true);
    const method = cd.getUint16(p + 10, true);
    const crc = cd.getUint32(p + 16, true);
    let compressedSize = cd.getUint32(p + 20, true);
    let uncompressedSize = cd.getUint32(p + 24, true);
    const nameLen = cd.getUint16(p + 28, true);
    const extraLen = cd.getUint16(p + 30, true);
    const commentLen = cd.getUint16(p + 32, true);
    let localHeaderOffset = cd.getUint32(p + 42, true);
    const end = p + 46 + nameLen + extraLen + commentLen;
    if (end > cdSize) throw formatError(path, `central directory entry ${i} runs past the directory`);
    const name = decoder.decode(bytes.subarray(p + 46, p + 46 + nameLen));
    // Zip64 extended information: only the fields whose 32-bit slot is saturated are present, in order.
    let e = p + 46 + nameLen;
    const extraEnd = e + extraLen;
    while (e + 4 <= extraEnd) {
      const id = cd.getUint16(e, true);
      const len = cd.getUint16(e + 2, true);
      if (e + 4 + len > extraEnd) break;
      if (id === 0x0001) {
        let q = e + 4;
        const take = (): number => {
          if (q + 8 > e + 4 + len) throw formatError(path, `zip64 field of ${name} is short`);
          const v = u64(cd, q, path);
          q += 8;
          return v;
        };
        if (uncompressedSize === 0xffffffff) uncompressedSize = take();
        if (compressedSize === 0xffffffff) compressedSize = take();
        if (localHeaderOffset === 0xffffffff) localHeaderOffset = take();
      }
      e += 4 + len;
    }
    if (flags & 0x1) throw formatError(path, `entry ${name} is encrypted`);
    if (method !== 0 && method !== 8) throw formatError(path, `entry ${name} uses unsupported compression method ${method}`);
    if (method === 0 && compressedSize !== uncompressedSize) {
      throw formatError(path, `stored entry ${name} has different compressed (${compressedSize}) and uncompressed (${uncompressedSize}) sizes`);
    }
    if (method === 8 && uncompressedSize > compressedSize * MAX_DEFLATE_RATIO + 1024) {
      throw formatError(path, `entry ${name} claims an impossible compression ratio (${uncompressedSize} from ${compressedSize} bytes)`);
    }
    if (localHeaderOffset + 30 + compressedSize > cdOffset) {
      throw formatError(path, `entry ${name} (${compressedSize} bytes at ${localHeaderOffset}) runs past the entries' area; truncated?`);
    }
    // Two entries of one name: PyTorch's reader takes the first, other zip tools the last, so one file would
    // hold two models. Refused.
    if (entries.has(name)) throw formatError(path, `has two entries named ${name}; refusing an archive whose readers disagree on its content`);
    entries.set(name, { name, method, compressedSize, uncompressedSize, crc32: crc, localHeaderOffset });
    p = end;
  }
  return { entries, centralStart: cdOffset };
}
