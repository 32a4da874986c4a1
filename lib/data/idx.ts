/**
 * MNIST-family IDX files (http://yann.lecun.com/exdb/mnist/, the format of MNIST, Fashion-MNIST, KMNIST and
 * EMNIST, which torchvision's `MNIST` / `FashionMNIST` loaders read): a big-endian header
 * `00 00 <type> <ndim>` then `ndim` uint32 dimensions, then the values row-major. Images are
 * `*-idx3-ubyte` (type 0x08 unsigned byte, 3 dims N×H×W, grayscale); labels `*-idx1-ubyte` (1 dim N).
 * Either may be gzipped (`.gz`, as distributed and as Debian's `dataset-fashion-mnist` installs them).
 *
 * The source gives what every other source gives, raw uint8 pixels (N, H, W, 3): the single gray channel is
 * replicated to RGB (`grayscale: 'replicate'`, the only choice: the engine's stems take 3 channels), and
 * images are zero-padded (`fit: 'pad'`, 28 → 32 for a CIFAR stem) or resized (`fit: 'resize'`, bilinear
 * with antialiasing, PIL's / torchvision's `Resize` on a PIL image) to `size`.
 */
import { createReadStream } from 'node:fs';
import { open, readdir, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { createGunzip } from 'node:zlib';
import { TorchSslError, invalidArg } from '../errors.js';
import type { NormalizationName } from './normalization.js';
import { ioFailure, readFully } from '../io.js';
import { checkRange, dataError, ioError, type ImageBatch, type ImageSource } from './source.js';

export type IdxSplit = 'train' | 'test';
export type IdxFit = 'pad' | 'resize';

export interface IdxOptions {
  /** Labels file (`*-idx1-ubyte[.gz]`). Default: the images file's name with `images-idx3` → `labels-idx1`
   *  when that file exists; `false` for none. */
  labels?: string | false;
  /** When `path` is a folder: which split (`train-*` or `t10k-*` / `test-*` files; default `'train'`). */
  split?: IdxSplit;
  /** Side of the images the source gives (default: the stored side, e.g. 28). */
  size?: number;
  /** How the stored images reach `size`: zero padding around them (default when `size` is larger) or
   *  resizing (bilinear, antialiased; the default when `size` is smaller). */
  fit?: IdxFit;
  /** Gray to RGB: the one value is copied to the three channels (the only mode; named so that it is explicit). */
  grayscale?: 'replicate';
  /** Use the first `limit` images only. */
  limit?: number;
}

/** Per-set classes of the MNIST family, indexed by label. */
export const FASHION_MNIST_CLASSES = Object.freeze(['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']);
export const MNIST_CLASSES = Object.freeze(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);

const IMAGES_RE = /-images[-.]idx3-ubyte(\.gz)?$/;

/** True when the name is an IDX file (`…-idx1-ubyte`, `…-idx3-ubyte`, optionally `.gz`). */
export function isIdxPath(path: string): boolean {
  return /-idx\d-ubyte(\.gz)?$/.test(basename(path));
}

/** The labels file conventionally beside an images file (`train-images-idx3-ubyte.gz` → `train-labels-idx1-ubyte.gz`). */
export async function findIdxLabels(imagesPath: string): Promise<string | undefined> {
  const name = basename(imagesPath);
  if (!IMAGES_RE.test(name)) return undefined;
  const base = name.replace(IMAGES_RE, '');
  const sep = /-images\.idx3/.test(name) ? '.' : '-';
  for (const gz of ['.gz', '']) {
    const candidate = join(dirname(imagesPath), `${base}-labels${sep}idx1-ubyte${gz}`);
    if (
      await stat(candidate).then(
        (s) => s.isFile(),
        () => false,
      )
    )
      return candidate;
  }
  return undefined;
}

/** The images file of `split` in a folder of IDX files, if there is one. */
export async function findIdxImages(dir: string, split: IdxSplit): Promise<string | undefined> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return undefined;
  }
  const prefixes = split === 'train' ? ['train'] : ['t10k', 'test'];
  for (const prefix of prefixes) {
    for (const name of [`${prefix}-images-idx3-ubyte.gz`, `${prefix}-images-idx3-ubyte`, `${prefix}-images.idx3-ubyte`]) {
      if (names.includes(name)) return join(dir, name);
    }
  }
  return undefined;
}

interface IdxHeader {
  dims: number[];
  /** Byte offset of the first value. */
  offset: number;
}

function parseHeader(path: string, head: Uint8Array, expectedDims: 1 | 3): IdxHeader {
  if (head.length < 4) throw dataError(path, `truncated IDX header: ${head.length} bytes`);
  if (head[0] !== 0 || head[1] !== 0) {
    const gz = head[0] === 0x1f && head[1] === 0x8b ? ' (it is gzip-compressed: name it *.gz)' : '';
    throw dataError(path, `not an IDX file: magic ${hex(head.subarray(0, 4))}, expected 00 00 08 0${expectedDims}${gz}`);
  }
  if (head[2] !== 0x08) throw dataError(path, `IDX value type 0x${head[2]!.toString(16).padStart(2, '0')} is not unsigned byte (0x08)`);
  const ndim = head[3]!;
  if (ndim !== expectedDims) {
    throw dataError(
      path,
      `IDX file has ${ndim} dimension(s), expected ${expectedDims} (${expectedDims === 3 ? 'images N×H×W: an *-idx3-ubyte file' : 'labels N: an *-idx1-ubyte file'})`,
    );
  }
  const offset = 4 + 4 * ndim;
  if (head.length < offset) throw dataError(path, `truncated IDX header: ${head.length} of ${offset} bytes`);
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const dims = Array.from({ length: ndim }, (_, i) => view.getUint32(4 + 4 * i, false));
  if (expectedDims === 3 && (dims[1] === 0 || dims[2] === 0)) throw dataError(path, `images have an empty side: ${dims.join('×')}`);
  return { dims, offset };
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');
}

/**
 * Reads a gzipped IDX file whole, decompressing as a stream and stopping as soon as the data exceed what
 * the header declares (memory is bounded by the declared size, never by a hostile inflation ratio).
 */
async function readGzipIdx(path: string, expectedDims: 1 | 3): Promise<{ header: IdxHeader; data: Uint8Array }> {
  const chunks: Buffer[] = [];
  let got = 0;
  let header: IdxHeader | undefined;
  let out: Uint8Array | undefined;
  let total = 0;
  const stream = createReadStream(path).pipe(createGunzip());
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (out === undefined) {
        chunks.push(chunk);
        got += chunk.length;
        const head = Buffer.concat(chunks);
        if (head.length < 4 + 4 * expectedDims) continue;
        header = parseHeader(path, head, expectedDims);
        total = header.offset + header.dims.reduce((a, b) => a * b, 1);
        if (total > 2 ** 32) throw dataError(path, `IDX header declares ${header.dims.join('×')} values, more than this reader holds (4 GiB)`);
        out = new Uint8Array(total);
        const n = Math.min(head.length, total);
        out.set(head.subarray(0, n));
        got = n;
        if (head.length > total) throw dataError(path, `holds more data than its header declares (${header.dims.join('×')})`);
        chunks.length = 0;
        continue;
      }
      if (got + chunk.length > total) throw dataError(path, `holds more data than its header declares (${header!.dims.join('×')})`);
      out.set(chunk, got);
      got += chunk.length;
    }
  } catch (err) {
    stream.destroy();
    if (err instanceof TorchSslError) throw err;
    const e = err as NodeJS.ErrnoException;
    if (e?.code === 'ENOENT' || e?.code === 'EISDIR' || e?.code === 'EACCES') throw ioError(path, err);
    throw dataError(path, `corrupt gzip stream: ${e?.message ?? String(err)}`);
  }
  if (header === undefined || out === undefined) parseHeader(path, Buffer.concat(chunks), expectedDims);
  if (got < total) throw dataError(path, `truncated: ${got - header!.offset} of ${total - header!.offset} data bytes (${header!.dims.join('×')})`);
  return { header: header!, data: out!.subarray(header!.offset) };
}

/** Reads an IDX labels file (`*-idx1-ubyte[.gz]`) as Int32Array. */
export async function readIdxLabels(path: string): Promise<Int32Array> {
  let bytes: Uint8Array;
  if (path.endsWith('.gz')) {
    bytes = (await readGzipIdx(path, 1)).data;
  } else {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (err) {
      throw ioError(path, err);
    }
    try {
      const size = (await fh.stat()).size;
      const buf = Buffer.alloc(size);
      await readAll(fh, path, buf, 0);
      const header = parseHeader(path, buf, 1);
      const n = header.dims[0]!;
      if (size - header.offset < n) throw dataError(path, `truncated: ${size - header.offset} of ${n} labels`);
      if (size - header.offset > n) throw dataError(path, `holds more data than its header declares (${n} labels)`);
      bytes = buf.subarray(header.offset);
    } finally {
      await fh.close();
    }
  }
  return Int32Array.from(bytes);
}

function readAll(fh: FileHandle, path: string, buf: Uint8Array, position: number): Promise<number> {
  return readFully(fh, buf, position, (_, missing) => dataError(path, `truncated: ended ${missing} bytes early`));
}

/**
 * An IDX images file (with its labels) opened for batched reads. Uncompressed files are read per batch
 * (memory bounded by the batch); gzipped ones are decompressed once at open (N×H×W bytes, 47 MB for the
 * 60 000 Fashion-MNIST training images).
 */
export class IdxImageSource implements ImageSource {
  readonly kind = 'idx' as const;
  readonly layout = 'NHWC-uint8' as const;
  readonly height: number;
  readonly width: number;
  readonly fit: IdxFit;
  private closed = false;

  private constructor(
    readonly path: string,
    readonly labelsPath: string | undefined,
    readonly storedHeight: number,
    readonly storedWidth: number,
    readonly count: number,
    readonly labels: Int32Array | undefined,
    readonly classes: readonly string[] | undefined,
    readonly normalization: NormalizationName | undefined,
    side: number | undefined,
    fit: IdxFit | undefined,
    private readonly data: Uint8Array | undefined,
    private readonly fh: FileHandle | undefined,
    private readonly dataOffset: number,
  ) {
    this.height = side ?? storedHeight;
    this.width = side ?? storedWidth;
    this.fit = fit ?? (side !== undefined && side < Math.max(storedHeight, storedWidth) ? 'resize' : 'pad');
  }

  static async open(pathIn: string, opts: IdxOptions = {}): Promise<IdxImageSource> {
    const split = opts.split ?? 'train';
    if (split !== 'train' && split !== 'test') throw invalidArg('split', "'train' or 'test'", split);
    if (opts.size !== undefined && (!Number.isSafeInteger(opts.size) || opts.size <= 0)) throw invalidArg('size', 'a positive integer', opts.size);
    if (opts.fit !== undefined && opts.fit !== 'pad' && opts.fit !== 'resize') throw invalidArg('fit', "'pad' or 'resize'", opts.fit);
    if (opts.grayscale !== undefined && opts.grayscale !== 'replicate') throw invalidArg('grayscale', "'replicate'", opts.grayscale);
    if (opts.limit !== undefined && (!Number.isSafeInteger(opts.limit) || opts.limit <= 0)) throw invalidArg('limit', 'a positive integer', opts.limit);
    let path = pathIn;
    let info;
    try {
      info = await stat(path);
    } catch (err) {
      throw ioError(path, err);
    }
    if (info.isDirectory()) {
      const found = await findIdxImages(path, split);
      if (found === undefined) throw dataError(path, `has no ${split === 'train' ? 'train' : 't10k / test'}-images-idx3-ubyte[.gz] file`);
      path = found;
    }
    const labelsPath = opts.labels === false ? undefined : (opts.labels ?? (await findIdxLabels(path)));

    let header: IdxHeader;
    let data: Uint8Array | undefined;
    let fh: FileHandle | undefined;
    if (path.endsWith('.gz')) {
      ({ header, data } = await readGzipIdx(path, 3));
    } else {
      try {
        fh = await open(path, 'r');
      } catch (err) {
        throw ioError(path, err);
      }
      try {
        const head = Buffer.alloc(16);
        const { bytesRead } = await fh.read(head, 0, 16, 0);
        header = parseHeader(path, head.subarray(0, bytesRead), 3);
        const size = (await fh.stat()).size;
        const want = header.dims.reduce((a, b) => a * b, 1);
        if (size - header.offset < want) throw dataError(path, `truncated: ${size - header.offset} of ${want} data bytes (${header.dims.join('×')})`);
        if (size - header.offset > want) throw dataError(path, `holds more data than its header declares (${header.dims.join('×')})`);
      } catch (err) {
        await fh.close();
        throw err;
      }
    }
    const [stored, h, w] = header.dims as [number, number, number];
    try {
      let labels: Int32Array | undefined;
      if (labelsPath !== undefined) {
        labels = await readIdxLabels(labelsPath);
        if (labels.length !== stored) throw dataError(labelsPath, `has ${labels.length} labels but ${path} has ${stored} images`);
      }
      const count = Math.min(stored, opts.limit ?? stored);
      if (labels !== undefined && count < labels.length) labels = labels.slice(0, count);
      const fashion = /fashion/i.test(path);
      const numClasses = labels === undefined ? 0 : labels.reduce((m, v) => Math.max(m, v), 0) + 1;
      const classes = fashion && numClasses <= 10 ? FASHION_MNIST_CLASSES : numClasses <= 10 && /(^|[^a-z])mnist/i.test(path) ? MNIST_CLASSES : undefined;
      const normalization: NormalizationName | undefined = fashion ? 'fashion-mnist' : /(^|[^a-z])mnist/i.test(path) ? 'mnist' : undefined;
      return new IdxImageSource(path, labelsPath, h, w, count, labels, classes, normalization, opts.size, opts.fit, data, fh, header.offset);
    } catch (err) {
      await fh?.close();
      throw err;
    }
  }

  async readBatch(start: number, end: number): Promise<ImageBatch> {
    checkRange(start, end, this.count);
    if (this.closed) throw ioFailure(this.path, `${this.path}: source is closed`);
    const n = end - start;
    const plane = this.storedHeight * this.storedWidth;
    let gray: Uint8Array;
    if (this.data !== undefined) {
      gray = this.data.subarray(start * plane, end * plane);
    } else {
      gray = Buffer.allocUnsafe(n * plane);
      await readAll(this.fh!, this.path, gray, this.dataOffset + start * plane);
    }
    const pixels = new Uint8Array(n * this.height * this.width * 3);
    const one = new Uint8Array(this.height * this.width);
    for (let i = 0; i < n; i++) {
      const src = gray.subarray(i * plane, (i + 1) * plane);
      if (this.fit === 'pad') padInto(src, this.storedHeight, this.storedWidth, one, this.height, this.width);
      else resizeBilinearAA(src, this.storedHeight, this.storedWidth, one, this.height, this.width);
      const base = i * one.length * 3;
      for (let p = 0; p < one.length; p++) {
        const v = one[p]!;
        pixels[base + 3 * p] = v;
        pixels[base + 3 * p + 1] = v;
        pixels[base + 3 * p + 2] = v;
      }
    }
    const batch: ImageBatch = { pixels, layout: this.layout, count: n, height: this.height, width: this.width };
    if (this.labels !== undefined) batch.labels = this.labels.slice(start, end);
    return batch;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh?.close().catch(() => undefined);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * Centres `src` (sh×sw) in a zero dst (dh×dw), as `torchvision.transforms.Pad` / `CenterCrop` do (extra
 * pixel of an odd difference on the bottom / right); a larger source is centre-cropped the same way.
 */
function padInto(src: Uint8Array, sh: number, sw: number, dst: Uint8Array, dh: number, dw: number): void {
  dst.fill(0);
  const top = Math.floor((dh - sh) / 2);
  const left = Math.floor((dw - sw) / 2);
  for (let y = 0; y < dh; y++) {
    const sy = y - top;
    if (sy < 0 || sy >= sh) continue;
    for (let x = 0; x < dw; x++) {
      const sx = x - left;
      if (sx >= 0 && sx < sw) dst[y * dw + x] = src[sy * sw + sx]!;
    }
  }
}

/**
 * Bilinear resize with antialiasing, PIL's `Image.resize(..., BILINEAR)` (the filter torchvision's `Resize`
 * applies to PIL images): a separable triangle filter whose support widens by the scale factor when
 * shrinking, normalised weights, horizontal pass then vertical, rounded to uint8.
 */
export function resizeBilinearAA(src: Uint8Array, sh: number, sw: number, dst: Uint8Array, dh: number, dw: number): void {
  const horiz = filterTaps(sw, dw);
  const vert = filterTaps(sh, dh);
  const tmp = new Float64Array(sh * dw);
  for (let y = 0; y < sh; y++) {
    for (let x = 0; x < dw; x++) {
      const { first, weights } = horiz[x]!;
      let acc = 0;
      for (let k = 0; k < weights.length; k++) acc += weights[k]! * src[y * sw + first + k]!;
      tmp[y * dw + x] = acc;
    }
  }
  for (let y = 0; y < dh; y++) {
    const { first, weights } = vert[y]!;
    for (let x = 0; x < dw; x++) {
      let acc = 0;
      for (let k = 0; k < weights.length; k++) acc += weights[k]! * tmp[(first + k) * dw + x]!;
      dst[y * dw + x] = Math.min(255, Math.max(0, Math.round(acc)));
    }
  }
}

function filterTaps(inSize: number, outSize: number): { first: number; weights: Float64Array }[] {
  const scale = inSize / outSize;
  const support = Math.max(scale, 1); // triangle filter of radius 1, stretched when shrinking
  const taps: { first: number; weights: Float64Array }[] = [];
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    const first = Math.max(0, Math.floor(center - support + 0.5));
    const last = Math.min(inSize, Math.floor(center + support + 0.5));
    const weights = new Float64Array(last - first);
    let sum = 0;
    for (let j = first; j < last; j++) {
      const w = Math.max(0, 1 - Math.abs((j - center + 0.5) / support));
      weights[j - first] = w;
      sum += w;
    }
    if (sum > 0) for (let k = 0; k < weights.length; k++) weights[k] = weights[k]! / sum;
    taps.push({ first, weights });
  }
  return taps;
}
