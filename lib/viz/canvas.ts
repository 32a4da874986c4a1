/**
 * The few raster operations the pictures need (docs/viz.md): an RGB canvas, matplotlib's "jet" colour map,
 * alpha blending, nearest-neighbour upscaling, dashed boxes and frames, panels side by side. PNG encoding and
 * image decoding are sharp's (libvips); what is drawn here is ours.
 */
import { readFile } from 'node:fs/promises';
import { TorchSslError } from '../errors.js';
import { ioFailure } from '../io.js';
import { loadSharp } from '../data/image-folder.js';

/** Interleaved RGB, row-major, `width * height * 3` bytes. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

export type Rgb = readonly [number, number, number];
export const RED: Rgb = [255, 0, 0];
export const GREEN: Rgb = [0, 200, 0];
export const WHITE: Rgb = [255, 255, 255];

export function blankImage(width: number, height: number, fill: Rgb = WHITE): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) data.set(fill, i * 3);
  return { width, height, data };
}

// matplotlib's "jet" (LinearSegmentedColormap, _cm.py): per channel, (x, value) breakpoints, linear between.
const JET: readonly (readonly [number, number][])[] = [
  [
    [0, 0],
    [0.35, 0],
    [0.66, 1],
    [0.89, 1],
    [1, 0.5],
  ],
  [
    [0, 0],
    [0.125, 0],
    [0.375, 1],
    [0.64, 1],
    [0.91, 0],
    [1, 0],
  ],
  [
    [0, 0.5],
    [0.11, 1],
    [0.34, 1],
    [0.65, 0],
    [1, 0],
  ],
];

/**
 * The 256-entry lookup table matplotlib builds (colors._create_lookup_table, N = 256): breakpoints scaled by
 * N − 1, sample i at (N − 1) · linspace(0, 1, N)[i], linear between the breakpoints around it (searchsorted,
 * side 'left'), in that floating-point order so that truncation to bytes agrees with matplotlib's.
 */
export const JET_LUT: readonly Rgb[] = Array.from({ length: 256 }, (_, i) => {
  const xind = 255 * (i * (1 / 255));
  return JET.map((points) => {
    if (i === 0) return points[0]![1];
    if (i === 255) return points[points.length - 1]![1];
    let k = 1;
    while (points[k]![0] * 255 < xind) k++;
    const [x0, y0] = points[k - 1]!;
    const [x1, y1] = points[k]!;
    return Math.min(1, Math.max(0, ((xind - x0 * 255) / (x1 * 255 - x0 * 255)) * (y1 - y0) + y0));
  }) as unknown as Rgb;
});

/** matplotlib's `Colormap.__call__(v, bytes=True)` for v in [0, 1]: entry floor(v · 256) clipped to 255, × 255 truncated. */
export function jet(v: number): Rgb {
  const i = Number.isFinite(v) ? Math.min(255, Math.max(0, Math.floor(v * 256))) : 0;
  const c = JET_LUT[i]!;
  return [Math.trunc(c[0] * 255), Math.trunc(c[1] * 255), Math.trunc(c[2] * 255)];
}

/** Each pixel becomes `(1 − alpha) · image + alpha · colour(value)`, rounded; `values` is height × width in [0, 1]. */
export function overlay(image: RgbImage, values: Float32Array | Float64Array, alpha: number): RgbImage {
  const out = new Uint8Array(image.data.length);
  for (let i = 0; i < image.width * image.height; i++) {
    const c = jet(values[i]!);
    for (let ch = 0; ch < 3; ch++) out[i * 3 + ch] = Math.round((1 - alpha) * image.data[i * 3 + ch]! + alpha * c[ch]!);
  }
  return { width: image.width, height: image.height, data: out };
}

export function upscale(image: RgbImage, factor: number): RgbImage {
  if (factor === 1) return image;
  const width = image.width * factor;
  const height = image.height * factor;
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const sy = Math.floor(y / factor);
    for (let x = 0; x < width; x++) {
      const s = (sy * image.width + Math.floor(x / factor)) * 3;
      data.set(image.data.subarray(s, s + 3), (y * width + x) * 3);
    }
  }
  return { width, height, data };
}

function setPixel(image: RgbImage, x: number, y: number, colour: Rgb): void {
  if (x < 0 || y < 0 || x >= image.width || y >= image.height) return;
  image.data.set(colour, (y * image.width + x) * 3);
}

/**
 * A rectangle outline `thickness` pixels wide inside [x, x + w) × [y, y + h). With `dash` > 0 the outline is
 * drawn in dashes of `dash` pixels separated by gaps of `dash` pixels, counted along each side from its start.
 */
export function drawBox(image: RgbImage, x: number, y: number, w: number, h: number, colour: Rgb, thickness: number, dash = 0): void {
  const on = (i: number) => dash <= 0 || Math.floor(i / dash) % 2 === 0;
  for (let t = 0; t < thickness; t++) {
    for (let i = 0; i < w; i++) {
      if (!on(i)) continue;
      setPixel(image, x + i, y + t, colour);
      setPixel(image, x + i, y + h - 1 - t, colour);
    }
    for (let i = 0; i < h; i++) {
      if (!on(i)) continue;
      setPixel(image, x + t, y + i, colour);
      setPixel(image, x + w - 1 - t, y + i, colour);
    }
  }
}

/** Copies `src` into `dst` with its top-left corner at (x, y); what falls outside `dst` is clipped. */
export function paste(dst: RgbImage, src: RgbImage, x: number, y: number): void {
  const skip = Math.max(0, -x);
  const cols = Math.min(src.width, dst.width - x) - skip;
  if (cols <= 0) return;
  for (let row = 0; row < src.height; row++) {
    const ty = y + row;
    if (ty < 0 || ty >= dst.height) continue;
    const from = (row * src.width + skip) * 3;
    dst.data.set(src.data.subarray(from, from + cols * 3), (ty * dst.width + x + skip) * 3);
  }
}

/** Panels left to right with `gap` white pixels between them (heights may differ; top-aligned). */
export function sideBySide(panels: readonly RgbImage[], gap: number): RgbImage {
  const width = panels.reduce((s, p) => s + p.width, 0) + gap * (panels.length - 1);
  const height = Math.max(...panels.map((p) => p.height));
  const out = blankImage(width, height);
  let x = 0;
  for (const p of panels) {
    paste(out, p, x, 0);
    x += p.width + gap;
  }
  return out;
}

/** PNG bytes (sharp, lossless, 8-bit RGB). */
export async function encodePng(image: RgbImage): Promise<Buffer> {
  const sharp = await loadSharp();
  return sharp(Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength), {
    raw: { width: image.width, height: image.height, channels: 3 },
  })
    .png({ compressionLevel: 6 })
    .toBuffer();
}

/** Any image sharp decodes (PNG, JPEG, WebP, TIFF, GIF…) as 8-bit sRGB without alpha, at its own size. */
export async function readImageFile(file: string): Promise<RgbImage> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EISDIR' ? 'is a folder, not an image file' : e.message;
    throw ioFailure(file, `${file}: ${why}`, { cause: err });
  }
  const sharp = await loadSharp();
  try {
    const { data, info } = await sharp(bytes).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels`);
    return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  } catch (err) {
    throw new TorchSslError('ERR_DATA_FORMAT', `${file}: not an image sharp can decode (${(err as Error).message})`, { file });
  }
}
