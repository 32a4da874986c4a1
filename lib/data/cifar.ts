/**
 * CIFAR-10 / CIFAR-100 in their "binary version" (https://www.cs.toronto.edu/~kriz/cifar.html):
 * fixed-size records of label byte(s) followed by 3072 pixel bytes, 1024 R then 1024 G then 1024 B,
 * each plane row-major 32×32. CIFAR-10 records are `<label> <pixels>` (3073 bytes) in
 * `data_batch_1..5.bin` / `test_batch.bin`; CIFAR-100 records are `<coarse> <fine> <pixels>` (3074 bytes) in
 * `train.bin` / `test.bin`.
 */
import { open, readdir, readFile, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { invalidArg } from '../errors.js';
import { ioFailure, readFully } from '../io.js';
import { checkRange, dataError, ioError, type ImageBatch, type ImageSource } from './source.js';

export type CifarVariant = 'cifar10' | 'cifar100';
export type CifarSplit = 'train' | 'test';

const SIDE = 32;
const PIXELS = SIDE * SIDE * 3;
const LABEL_BYTES: Record<CifarVariant, number> = { cifar10: 1, cifar100: 2 };
/** Folder names of the official archives, looked into when given their parent. */
const ARCHIVE_DIRS: Record<CifarVariant, string> = { cifar10: 'cifar-10-batches-bin', cifar100: 'cifar-100-binary' };

/** The binary archive's `batches.meta.txt` order. */
export const CIFAR10_CLASSES = Object.freeze(['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck']);

/** The binary archive's `fine_label_names.txt` order (alphabetical). */
export const CIFAR100_CLASSES = Object.freeze([
  'apple',
  'aquarium_fish',
  'baby',
  'bear',
  'beaver',
  'bed',
  'bee',
  'beetle',
  'bicycle',
  'bottle',
  'bowl',
  'boy',
  'bridge',
  'bus',
  'butterfly',
  'camel',
  'can',
  'castle',
  'caterpillar',
  'cattle',
  'chair',
  'chimpanzee',
  'clock',
  'cloud',
  'cockroach',
  'couch',
  'crab',
  'crocodile',
  'cup',
  'dinosaur',
  'dolphin',
  'elephant',
  'flatfish',
  'forest',
  'fox',
  'girl',
  'hamster',
  'house',
  'kangaroo',
  'keyboard',
  'lamp',
  'lawn_mower',
  'leopard',
  'lion',
  'lizard',
  'lobster',
  'man',
  'maple_tree',
  'motorcycle',
  'mountain',
  'mouse',
  'mushroom',
  'oak_tree',
  'orange',
  'orchid',
  'otter',
  'palm_tree',
  'pear',
  'pickup_truck',
  'pine_tree',
  'plain',
  'plate',
  'poppy',
  'porcupine',
  'possum',
  'rabbit',
  'raccoon',
  'ray',
  'road',
  'rocket',
  'rose',
  'sea',
  'seal',
  'shark',
  'shrew',
  'skunk',
  'skyscraper',
  'snail',
  'snake',
  'spider',
  'squirrel',
  'streetcar',
  'sunflower',
  'sweet_pepper',
  'table',
  'tank',
  'telephone',
  'television',
  'tiger',
  'tractor',
  'train',
  'trout',
  'tulip',
  'turtle',
  'wardrobe',
  'whale',
  'willow_tree',
  'wolf',
  'woman',
  'worm',
]);

/** The binary archive's `coarse_label_names.txt` order. */
export const CIFAR100_COARSE_CLASSES = Object.freeze([
  'aquatic_mammals',
  'fish',
  'flowers',
  'food_containers',
  'fruit_and_vegetables',
  'household_electrical_devices',
  'household_furniture',
  'insects',
  'large_carnivores',
  'large_man-made_outdoor_things',
  'large_natural_outdoor_scenes',
  'large_omnivores_and_herbivores',
  'medium_mammals',
  'non-insect_invertebrates',
  'people',
  'reptiles',
  'small_mammals',
  'trees',
  'vehicles_1',
  'vehicles_2',
]);

export interface CifarOptions {
  split?: CifarSplit;
  /** Detected from the file names when omitted. */
  variant?: CifarVariant;
  /** CIFAR-100 only: which label the source's `labels` are (default `'fine'`, 100 classes). */
  labelKind?: 'fine' | 'coarse';
}

export interface CifarData {
  variant: CifarVariant;
  split: CifarSplit;
  /** N×32×32×3 raw pixels, channels last. */
  images: Uint8Array;
  shape: [number, 32, 32, 3];
  labels: Int32Array;
  /** CIFAR-100: the 20 superclass labels, whatever `labelKind` chose for `labels`. */
  coarseLabels?: Int32Array;
  classes: readonly string[];
}

interface CifarFile {
  path: string;
  records: number;
  /** Index of this file's first record in the split. */
  first: number;
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    throw ioError(dir, err);
  }
}

function splitFiles(variant: CifarVariant, split: CifarSplit, names: readonly string[]): string[] {
  if (variant === 'cifar100') return names.includes(`${split}.bin`) ? [`${split}.bin`] : [];
  if (split === 'test') return names.includes('test_batch.bin') ? ['test_batch.bin'] : [];
  return names
    .map((n) => /^data_batch_(\d+)\.bin$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .sort((a, b) => Number(a[1]) - Number(b[1]))
    .map((m) => m[0]);
}

function variantsIn(names: readonly string[]): CifarVariant[] {
  const out: CifarVariant[] = [];
  if (names.includes('test_batch.bin') || names.some((n) => /^data_batch_\d+\.bin$/.test(n))) out.push('cifar10');
  if (names.includes('train.bin') || names.includes('test.bin')) out.push('cifar100');
  return out;
}

/**
 * Finds the CIFAR binary folder at `dir` (or in its `cifar-10-batches-bin` / `cifar-100-binary` sub-folder).
 * Returns undefined when `dir` holds neither.
 */
export async function detectCifar(dir: string, variant?: CifarVariant): Promise<{ dir: string; variant: CifarVariant } | undefined> {
  const candidates = [dir, ...(variant ? [ARCHIVE_DIRS[variant]] : Object.values(ARCHIVE_DIRS)).map((d) => join(dir, d))];
  for (const candidate of candidates) {
    let names: string[];
    try {
      names = await readdir(candidate);
    } catch {
      continue;
    }
    const found = variantsIn(names).filter((v) => variant === undefined || v === variant);
    if (found.length > 1) {
      throw dataError(candidate, 'holds both CIFAR-10 (data_batch_*.bin / test_batch.bin) and CIFAR-100 (train.bin / test.bin) files; pass variant');
    }
    if (found.length === 1) return { dir: candidate, variant: found[0]! };
  }
  return undefined;
}

async function readClassNames(dir: string, file: string, expected: number): Promise<string[] | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, file), 'utf8');
  } catch {
    return undefined;
  }
  const names = text
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  return names.length === expected ? names : undefined;
}

/**
 * A CIFAR split opened for batched reads. Labels are read (and range-checked) up front; pixels are read from
 * the files per batch and transposed to NHWC, so memory is bounded by the batch.
 */
export class CifarSource implements ImageSource {
  readonly height = SIDE;
  readonly width = SIDE;
  readonly layout = 'NHWC-uint8' as const;
  private handles = new Map<string, FileHandle>();
  private closed = false;

  private constructor(
    readonly path: string,
    readonly variant: CifarVariant,
    readonly split: CifarSplit,
    private readonly files: readonly CifarFile[],
    readonly count: number,
    readonly labels: Int32Array,
    readonly coarseLabels: Int32Array | undefined,
    readonly classes: readonly string[],
  ) {}

  get kind(): CifarVariant {
    return this.variant;
  }
  get normalization(): CifarVariant {
    return this.variant;
  }

  static async open(dir: string, opts: CifarOptions = {}): Promise<CifarSource> {
    const split = opts.split ?? 'train';
    if (split !== 'train' && split !== 'test') throw invalidArg('split', "'train' or 'test'", split);
    if (opts.variant !== undefined && opts.variant !== 'cifar10' && opts.variant !== 'cifar100') {
      throw invalidArg('variant', "'cifar10' or 'cifar100'", opts.variant);
    }
    const labelKind = opts.labelKind ?? 'fine';
    if (labelKind !== 'fine' && labelKind !== 'coarse') throw invalidArg('labelKind', "'fine' or 'coarse'", labelKind);
    const found = await detectCifar(dir, opts.variant);
    if (found === undefined) {
      await listDir(dir); // a missing folder is ERR_IO, not a format error
      throw dataError(
        dir,
        `not a CIFAR binary folder: expected ${opts.variant === 'cifar100' ? 'train.bin / test.bin' : opts.variant === 'cifar10' ? 'data_batch_1..5.bin / test_batch.bin' : 'data_batch_1..5.bin / test_batch.bin (CIFAR-10) or train.bin / test.bin (CIFAR-100)'}`,
      );
    }
    const variant = found.variant;
    const names = await listDir(found.dir);
    const fileNames = splitFiles(variant, split, names);
    if (fileNames.length === 0) {
      const wanted = variant === 'cifar100' ? `${split}.bin` : split === 'test' ? 'test_batch.bin' : 'data_batch_1..5.bin';
      throw dataError(found.dir, `has no ${wanted} for the ${split} split of ${variant === 'cifar10' ? 'CIFAR-10' : 'CIFAR-100'}`);
    }
    const labelBytes = LABEL_BYTES[variant];
    const recordBytes = labelBytes + PIXELS;
    const files: CifarFile[] = [];
    let count = 0;
    for (const name of fileNames) {
      const path = join(found.dir, name);
      let size: number;
      try {
        size = (await stat(path)).size;
      } catch (err) {
        throw ioError(path, err);
      }
      if (size === 0 || size % recordBytes !== 0) {
        const other = variant === 'cifar10' ? 3074 : 3073;
        const hint =
          size > 0 && size % other === 0 ? ` (it divides into ${other}-byte records: a ${variant === 'cifar10' ? 'CIFAR-100' : 'CIFAR-10'} file?)` : '';
        throw dataError(
          path,
          `size ${size} bytes is not a positive multiple of the ${recordBytes}-byte ${variant === 'cifar10' ? 'CIFAR-10' : 'CIFAR-100'} record${hint}`,
        );
      }
      files.push({ path, records: size / recordBytes, first: count });
      count += size / recordBytes;
    }

    const fine = new Int32Array(count);
    const coarse = variant === 'cifar100' ? new Int32Array(count) : undefined;
    const fineClasses = variant === 'cifar10' ? 10 : 100;
    for (const f of files) {
      let bytes: Buffer;
      try {
        bytes = await readFile(f.path);
      } catch (err) {
        throw ioError(f.path, err);
      }
      for (let r = 0; r < f.records; r++) {
        const at = r * recordBytes;
        const label = bytes[at + labelBytes - 1]!;
        if (label >= fineClasses) throw dataError(f.path, `record ${r} has label ${label}, outside 0..${fineClasses - 1}`);
        fine[f.first + r] = label;
        if (coarse !== undefined) {
          const c = bytes[at]!;
          if (c >= 20) throw dataError(f.path, `record ${r} has coarse label ${c}, outside 0..19`);
          coarse[f.first + r] = c;
        }
      }
    }

    let classes: readonly string[];
    if (variant === 'cifar10') classes = (await readClassNames(found.dir, 'batches.meta.txt', 10)) ?? CIFAR10_CLASSES;
    else if (labelKind === 'coarse') classes = (await readClassNames(found.dir, 'coarse_label_names.txt', 20)) ?? CIFAR100_COARSE_CLASSES;
    else classes = (await readClassNames(found.dir, 'fine_label_names.txt', 100)) ?? CIFAR100_CLASSES;
    const labels = variant === 'cifar100' && labelKind === 'coarse' ? coarse! : fine;
    return new CifarSource(found.dir, variant, split, files, count, labels, coarse, classes);
  }

  private async handle(path: string): Promise<FileHandle> {
    let fh = this.handles.get(path);
    if (fh === undefined) {
      try {
        fh = await open(path, 'r');
      } catch (err) {
        throw ioError(path, err);
      }
      this.handles.set(path, fh);
    }
    return fh;
  }

  async readBatch(start: number, end: number): Promise<ImageBatch> {
    checkRange(start, end, this.count);
    if (this.closed) throw ioFailure(this.path, `${this.path}: source is closed`);
    const n = end - start;
    const pixels = new Uint8Array(n * PIXELS);
    const labelBytes = LABEL_BYTES[this.variant];
    const recordBytes = labelBytes + PIXELS;
    for (const f of this.files) {
      const lo = Math.max(start, f.first);
      const hi = Math.min(end, f.first + f.records);
      if (lo >= hi) continue;
      const records = Buffer.allocUnsafe((hi - lo) * recordBytes);
      const fh = await this.handle(f.path);
      await readFully(fh, records, (lo - f.first) * recordBytes, () => dataError(f.path, 'file shrank while being read'));
      for (let r = 0; r < hi - lo; r++) {
        chwToHwc(records, r * recordBytes + labelBytes, pixels, (lo - start + r) * PIXELS);
      }
    }
    return { pixels, layout: this.layout, count: n, height: SIDE, width: SIDE, labels: this.labels.slice(start, end) };
  }

  async close(): Promise<void> {
    this.closed = true;
    const handles = [...this.handles.values()];
    this.handles.clear();
    await Promise.all(handles.map((h) => h.close().catch(() => undefined)));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** One 3×32×32 planar record → 32×32×3 interleaved. */
function chwToHwc(src: Uint8Array, from: number, dst: Uint8Array, to: number): void {
  const plane = SIDE * SIDE;
  for (let p = 0; p < plane; p++) {
    dst[to + 3 * p] = src[from + p]!;
    dst[to + 3 * p + 1] = src[from + plane + p]!;
    dst[to + 3 * p + 2] = src[from + 2 * plane + p]!;
  }
}

/** Reads a whole CIFAR split into memory (CIFAR-10 train: 150 MiB of pixels). */
export async function readCifar(dir: string, opts: CifarOptions = {}): Promise<CifarData> {
  const source = await CifarSource.open(dir, opts);
  try {
    const { pixels } = await source.readBatch(0, source.count);
    const out: CifarData = {
      variant: source.variant,
      split: source.split,
      images: pixels as Uint8Array,
      shape: [source.count, 32, 32, 3],
      labels: source.labels,
      classes: source.classes,
    };
    if (source.coarseLabels !== undefined) out.coarseLabels = source.coarseLabels;
    return out;
  } finally {
    await source.close();
  }
}
