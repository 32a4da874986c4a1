/**
 * Image folders with one sub-folder per class, with torchvision `ImageFolder` semantics: classes are the
 * sorted sub-folder names, label = index in that list, files are found recursively (following links) and
 * ordered as torchvision orders them (directories by path, then file names), and only torchvision's image
 * extensions count. Decoding and resizing use sharp (libvips), several images in flight at once (sharp runs
 * each on the libuv thread pool, so decoding never blocks the JS thread). PIL-compatible choices: no EXIF
 * auto-rotation, alpha dropped (not composited), grey replicated to RGB.
 */
import { availableParallelism } from 'node:os';
import { readFile, readdir, realpath, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { Sharp, SharpOptions } from 'sharp';
import { invalidArg, TorchSslError } from '../errors.js';
import { ioFailure } from '../io.js';
import { checkRange, type ImageBatch, type ImageSource, dataError, ioError } from './source.js';

/** torchvision.datasets.folder.IMG_EXTENSIONS (matched case-insensitively). */
export const IMG_EXTENSIONS = Object.freeze(['.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp']);

export type ResizeFit = 'fill' | 'cover' | 'contain';
export type ResizeKernel = 'nearest' | 'linear' | 'cubic' | 'lanczos3';

export interface DecodeOptions {
  height: number;
  width: number;
  /**
   * How an image of another aspect ratio reaches `height`×`width`: `'cover'` (default: scale the shorter side,
   * centre-crop, like Resize + CenterCrop), `'fill'` (stretch, like Resize((h, w))), `'contain'` (letterbox
   * with black).
   */
  fit?: ResizeFit;
  /** Resampling filter (default `'linear'`, torchvision Resize's bilinear; sharp antialiases when shrinking). */
  kernel?: ResizeKernel;
  /** Images decoded at once (default: the number of CPU cores). */
  concurrency?: number;
}

export interface ImageFolderOptions extends Partial<DecodeOptions> {
  /** `[height, width]` or one side for square output; default: the first image's size. */
  size?: number | readonly [number, number];
}

export interface ImageFolderIndex {
  root: string;
  classes: string[];
  /** Absolute paths in torchvision's order. */
  files: string[];
  labels: Int32Array;
}

export type SharpFactory = (input?: string | Buffer | Uint8Array, options?: SharpOptions) => Sharp;
let sharpLoader: Promise<SharpFactory> | undefined;

/** sharp is loaded on first use so that .npy and CIFAR sources work even where its binary is missing. */
export function loadSharp(): Promise<SharpFactory> {
  sharpLoader ??= import('sharp').then(
    (m) => m.default as unknown as SharpFactory,
    (err: unknown) => {
      sharpLoader = undefined;
      throw ioFailure(
        undefined,
        `Image folders need the 'sharp' package, which failed to load: ${(err as Error)?.message ?? String(err)}\n` +
          'Possible fixes:\n- npm install (sharp ships its libvips binaries as npm packages: @img/sharp-<platform>)\n' +
          '- convert the images to a uint8 (N, H, W, 3) .npy and pass that instead',
        { cause: err },
      );
    },
  );
  return sharpLoader;
}

function hasImageExtension(name: string): boolean {
  const lower = name.toLowerCase();
  return IMG_EXTENSIONS.some((ext) => lower.endsWith(ext));
}

/** Python's sort order for str (code points) — equal to UTF-16 order except for astral characters. */
function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** torchvision's os.walk(followlinks=True), sorted by directory path; guarded against link cycles. */
async function walkImages(classDir: string): Promise<string[]> {
  const dirs: { path: string; files: string[] }[] = [];
  const seen = new Set<string>();
  const visit = async (dir: string): Promise<void> => {
    const real = await realpath(dir).catch(() => dir);
    if (seen.has(real)) return;
    seen.add(real);
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      throw ioError(dir, err);
    }
    const files: string[] = [];
    for (const e of entries) {
      const full = join(dir, e.name);
      if (e.isDirectory() || (e.isSymbolicLink() && (await isDirectory(full)))) await visit(full);
      else if (hasImageExtension(e.name)) files.push(e.name);
    }
    dirs.push({ path: dir, files: files.sort(byCodePoint) });
  };
  await visit(classDir);
  dirs.sort((a, b) => byCodePoint(a.path, b.path));
  return dirs.flatMap((d) => d.files.map((f) => join(d.path, f)));
}

/** Lists classes and image files as torchvision's ImageFolder would. */
export async function scanImageFolder(root: string): Promise<ImageFolderIndex> {
  let entries;
  try {
    entries = await readdir(root, { withFileTypes: true });
  } catch (err) {
    throw ioError(root, err);
  }
  const classes: string[] = [];
  for (const e of entries) {
    if (e.isDirectory() || (e.isSymbolicLink() && (await isDirectory(join(root, e.name))))) classes.push(e.name);
  }
  classes.sort(byCodePoint);
  if (classes.length === 0) throw dataError(root, 'has no class sub-folders (an image folder is <root>/<class>/<image>)');
  const files: string[] = [];
  const labels: number[] = [];
  const empty: string[] = [];
  for (const [label, cls] of classes.entries()) {
    const found = await walkImages(join(root, cls));
    if (found.length === 0) empty.push(cls);
    for (const f of found) {
      files.push(f);
      labels.push(label);
    }
  }
  if (empty.length > 0) {
    throw dataError(root, `found no image file for the classes ${empty.join(', ')} (extensions: ${IMG_EXTENSIONS.join(' ')})`);
  }
  return { root, classes, files, labels: Int32Array.from(labels) };
}

function checkDecodeOptions(opts: DecodeOptions): Required<DecodeOptions> {
  const positive = (name: string, v: unknown): number => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) throw invalidArg(name, 'positive integer', v);
    return v;
  };
  const fit = opts.fit ?? 'cover';
  if (!['fill', 'cover', 'contain'].includes(fit)) throw invalidArg('fit', "one of 'fill', 'cover', 'contain'", fit);
  const kernel = opts.kernel ?? 'linear';
  if (!['nearest', 'linear', 'cubic', 'lanczos3'].includes(kernel)) throw invalidArg('kernel', "one of 'nearest', 'linear', 'cubic', 'lanczos3'", kernel);
  return {
    height: positive('height', opts.height),
    width: positive('width', opts.width),
    fit,
    kernel,
    concurrency: positive('concurrency', opts.concurrency ?? availableParallelism()),
  };
}

/**
 * Binary PGM / PPM (P5 / P6, maxval 255), which torchvision accepts and libvips-in-sharp does not read:
 * parsed here and handed to sharp as raw pixels.
 */
export function parseNetpbm(bytes: Uint8Array, file: string): { data: Uint8Array; width: number; height: number; channels: 1 | 3 } {
  let pos = 0;
  const token = (): string => {
    for (;;) {
      while (pos < bytes.length && /\s/.test(String.fromCharCode(bytes[pos]!))) pos++;
      if (bytes[pos] !== 0x23) break; // '#' comment to end of line
      while (pos < bytes.length && bytes[pos] !== 0x0a) pos++;
    }
    const start = pos;
    while (pos < bytes.length && !/\s/.test(String.fromCharCode(bytes[pos]!))) pos++;
    return String.fromCharCode(...bytes.subarray(start, pos));
  };
  const magic = token();
  if (magic !== 'P5' && magic !== 'P6') throw dataError(file, `unsupported Netpbm variant ${JSON.stringify(magic)} (binary P5 / P6 only)`);
  const [width, height, maxval] = [Number(token()), Number(token()), Number(token())];
  if (![width, height].every((v) => Number.isSafeInteger(v) && v > 0)) throw dataError(file, 'bad Netpbm size');
  if (maxval !== 255) throw dataError(file, `Netpbm maxval ${maxval} is not supported (only 255)`);
  pos++; // the single whitespace before the raster
  const channels = magic === 'P5' ? 1 : 3;
  const size = width * height * channels;
  if (bytes.length - pos < size) throw dataError(file, `truncated Netpbm raster (needs ${size} bytes, has ${bytes.length - pos})`);
  return { data: bytes.subarray(pos, pos + size), width, height, channels };
}

async function openInput(sharp: SharpFactory, file: string): Promise<Sharp> {
  if (!/\.p[gp]m$/i.test(file)) return sharp(file);
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw ioError(file, err);
  }
  const { data, width, height, channels } = parseNetpbm(bytes, file);
  return sharp(data, { raw: { width, height, channels } });
}

function decodeFailure(file: string, err: unknown): TorchSslError {
  if (err instanceof TorchSslError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ENOENT' || /Input file is missing/.test(e?.message ?? '')) return ioError(file, err);
  return dataError(file, `cannot decode image (${e?.message ?? String(err)}); JPEG, PNG, WebP, TIFF, GIF and binary PGM/PPM are read; convert BMP to PNG`);
}

async function decodeInto(sharp: SharpFactory, file: string, o: Required<DecodeOptions>, out: Uint8Array, offset: number): Promise<void> {
  let data: Buffer;
  let info: { width: number; height: number; channels: number };
  try {
    // No EXIF auto-rotation: PIL (and so torchvision) does not apply it either.
    ({ data, info } = await (
      await openInput(sharp, file)
    )
      .removeAlpha()
      .toColourspace('srgb')
      .resize(o.width, o.height, { fit: o.fit, kernel: o.kernel, position: 'centre', background: { r: 0, g: 0, b: 0 } })
      .raw()
      .toBuffer({ resolveWithObject: true }));
  } catch (err) {
    throw decodeFailure(file, err);
  }
  if (info.width !== o.width || info.height !== o.height || info.channels !== 3 || data.length !== o.width * o.height * 3) {
    throw dataError(file, `decoded to ${info.width}×${info.height}×${info.channels}, expected ${o.width}×${o.height}×3`);
  }
  out.set(data, offset);
}

/** Decodes one image to `height*width*3` RGB bytes (HWC). */
export async function decodeImage(file: string, opts: DecodeOptions): Promise<Uint8Array> {
  const o = checkDecodeOptions(opts);
  const out = new Uint8Array(o.height * o.width * 3);
  await decodeInto(await loadSharp(), file, o, out, 0);
  return out;
}

/** Decodes `files` into one N×H×W×3 buffer, `concurrency` images at a time. */
export async function decodeImages(files: readonly string[], opts: DecodeOptions): Promise<Uint8Array> {
  const o = checkDecodeOptions(opts);
  const sharp = await loadSharp();
  const stride = o.height * o.width * 3;
  const out = new Uint8Array(files.length * stride);
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < files.length) {
      const i = next++;
      try {
        await decodeInto(sharp, files[i]!, o, out, i * stride);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  const results = await Promise.allSettled(Array.from({ length: Math.min(o.concurrency, files.length) }, worker));
  const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (rejected !== undefined) throw rejected.reason;
  return out;
}

/** An image folder opened for batched decoding: the index is built at open, pixels are decoded per batch. */
export class ImageFolderSource implements ImageSource {
  readonly kind = 'image-folder' as const;
  readonly layout = 'NHWC-uint8' as const;

  private constructor(
    readonly path: string,
    readonly index: ImageFolderIndex,
    private readonly decode: Required<DecodeOptions>,
  ) {}

  get count(): number {
    return this.index.files.length;
  }
  get height(): number {
    return this.decode.height;
  }
  get width(): number {
    return this.decode.width;
  }
  get labels(): Int32Array {
    return this.index.labels;
  }
  get classes(): readonly string[] {
    return this.index.classes;
  }
  get files(): readonly string[] {
    return this.index.files;
  }

  static async open(root: string, opts: ImageFolderOptions = {}): Promise<ImageFolderSource> {
    const index = await scanImageFolder(root);
    let height: number;
    let width: number;
    if (opts.size !== undefined) {
      if (typeof opts.size === 'number') height = width = opts.size;
      else if (Array.isArray(opts.size) && opts.size.length === 2) [height, width] = opts.size as [number, number];
      else throw invalidArg('size', 'a positive integer or [height, width]', opts.size);
    } else {
      const first = index.files[0]!;
      const sharp = await loadSharp();
      try {
        const meta = await (await openInput(sharp, first)).metadata();
        [height, width] = [meta.height, meta.width];
      } catch (err) {
        throw decodeFailure(first, err);
      }
    }
    const decode = checkDecodeOptions({ ...opts, height, width });
    return new ImageFolderSource(root, index, decode);
  }

  async readBatch(start: number, end: number): Promise<ImageBatch> {
    checkRange(start, end, this.count);
    const pixels = await decodeImages(this.index.files.slice(start, end), this.decode);
    return { pixels, layout: this.layout, count: end - start, height: this.height, width: this.width, labels: this.labels.slice(start, end) };
  }

  /** The file of image `i`, relative to the root (for error messages and reports). */
  relativeFile(i: number): string {
    return relative(this.path, this.index.files[i]!);
  }

  async close(): Promise<void> {}

  async [Symbol.asyncDispose](): Promise<void> {}
}

/** Decodes a whole image folder into memory. */
export async function readImageFolder(
  root: string,
  opts: ImageFolderOptions = {},
): Promise<{ images: Uint8Array; shape: [number, number, number, 3]; labels: Int32Array; classes: string[]; files: string[] }> {
  const source = await ImageFolderSource.open(root, opts);
  const { pixels } = await source.readBatch(0, source.count);
  return {
    images: pixels as Uint8Array,
    shape: [source.count, source.height, source.width, 3],
    labels: source.labels,
    classes: [...source.classes],
    files: [...source.files],
  };
}
