// Image data sources against references made by numpy, PIL and torchvision (scripts/fixtures/images.py).
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  CIFAR100_CLASSES,
  CIFAR100_COARSE_CLASSES,
  CifarSource,
  ImageFolderSource,
  NORMALIZATIONS,
  decodeImage,
  iterateBatches,
  openImageSource,
  readCifar,
  readImageFolder,
  scanImageFolder,
  type ImageSource,
} from '../lib/data/index.js';
import { expectError } from './helpers/errors.js';
import { readNpyFile } from '../lib/npy.js';
import { ensureFixtures, FIXTURES } from './helpers/fixtures.js';
import { PYTHON } from './helpers/python.js';
import { REPO_ROOT } from './helpers/paths.js';
import { makeTmpDir } from './helpers/tmp.js';

const fx = join(FIXTURES, 'images');
const work = makeTmpDir('data');

beforeAll(() => ensureFixtures('images'));

async function expected(name: string): Promise<{ data: Uint8Array; shape: number[] }> {
  const a = await readNpyFile(join(fx, 'expected', `${name}.npy`));
  return { data: a.data as Uint8Array, shape: a.shape };
}

async function expectedLabels(name: string): Promise<number[]> {
  const a = await readNpyFile(join(fx, 'expected', `${name}.npy`));
  return [...(a.data as BigInt64Array)].map(Number);
}

function maxAbsDiff(a: Uint8Array, b: Uint8Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('CIFAR binary folders', () => {
  it('reads CIFAR-10 train (all data_batch files, in order) as NHWC with labels, like numpy', async () => {
    const data = await readCifar(join(fx, 'cifar10'), { split: 'train' });
    const ref = await expected('cifar10-train');
    expect(data.variant).toBe('cifar10');
    expect(data.shape).toEqual([8, 32, 32, 3]);
    expect(ref.shape).toEqual(data.shape);
    expect(Buffer.from(data.images).equals(Buffer.from(ref.data))).toBe(true);
    expect([...data.labels]).toEqual(await expectedLabels('cifar10-train-labels'));
    expect(data.classes[0]).toBe('airplane');
    expect(data.classes).toHaveLength(10);
  });

  it('reads CIFAR-10 test and CIFAR-100 (fine / coarse) from the archive sub-folder', async () => {
    const test10 = await readCifar(join(fx, 'cifar10'), { split: 'test' });
    expect(Buffer.from(test10.images).equals(Buffer.from((await expected('cifar10-test')).data))).toBe(true);
    expect([...test10.labels]).toEqual([0, 9, 3, 3]);
    for (const split of ['train', 'test'] as const) {
      const c100 = await readCifar(join(fx, 'cifar100'), { split });
      expect(c100.variant).toBe('cifar100');
      expect(Buffer.from(c100.images).equals(Buffer.from((await expected(`cifar100-${split}`)).data))).toBe(true);
      expect([...c100.labels]).toEqual(await expectedLabels(`cifar100-${split}-labels`));
      expect([...c100.coarseLabels!]).toEqual(await expectedLabels(`cifar100-${split}-coarse`));
      expect(c100.classes).toBe(CIFAR100_CLASSES);
    }
    const coarse = await readCifar(join(fx, 'cifar100'), { labelKind: 'coarse' });
    expect([...coarse.labels]).toEqual(await expectedLabels('cifar100-train-coarse'));
    expect(coarse.classes).toBe(CIFAR100_COARSE_CLASSES);
    expect(CIFAR100_CLASSES).toHaveLength(100);
    expect(CIFAR100_COARSE_CLASSES).toHaveLength(20);
  });

  it('reads batches that straddle batch files', async () => {
    await using source = await CifarSource.open(join(fx, 'cifar10'));
    const ref = await expected('cifar10-train');
    const batch = await source.readBatch(3, 7);
    expect(batch.count).toBe(4);
    expect(batch.layout).toBe('NHWC-uint8');
    expect(Buffer.from(batch.pixels.buffer).equals(Buffer.from(ref.data.subarray(3 * 3072, 7 * 3072)))).toBe(true);
    expect([...batch.labels!]).toEqual((await expectedLabels('cifar10-train-labels')).slice(3, 7));
    expect((await source.readBatch(8, 8)).count).toBe(0);
    await expectError(source.readBatch(7, 9), 'ERR_INVALID_ARG', 'end');
  });

  it('a file of the wrong size is ERR_DATA_FORMAT naming it', async () => {
    const dir = join(work, 'cifar-bad-size');
    cpSync(join(fx, 'cifar10'), dir, { recursive: true });
    truncateSync(join(dir, 'data_batch_2.bin'), 3073 * 2 + 10);
    await expectError(readCifar(dir), 'ERR_DATA_FORMAT', join(dir, 'data_batch_2.bin'), '3073-byte');
    // The test split does not need the train files.
    expect((await readCifar(dir, { split: 'test' })).labels.length).toBe(4);
  });

  it('a CIFAR-100 file in a CIFAR-10 folder is named as such', async () => {
    const dir = join(work, 'cifar-mixed');
    mkdirSync(dir);
    copyFileSync(join(fx, 'cifar100', 'cifar-100-binary', 'train.bin'), join(dir, 'data_batch_1.bin'));
    await expectError(readCifar(dir), 'ERR_DATA_FORMAT', 'data_batch_1.bin', 'CIFAR-100 file?');
  });

  it('an out-of-range label is ERR_DATA_FORMAT naming file and record', async () => {
    const dir = join(work, 'cifar-bad-label');
    cpSync(join(fx, 'cifar10'), dir, { recursive: true });
    const f = join(dir, 'test_batch.bin');
    const b = readFileSync(f);
    b[3073 * 2] = 10;
    writeFileSync(f, b);
    await expectError(readCifar(dir, { split: 'test' }), 'ERR_DATA_FORMAT', f, 'record 2 has label 10');
  });

  it('a folder without the split file, or not CIFAR at all', async () => {
    const dir = join(work, 'cifar-test-only');
    mkdirSync(dir);
    copyFileSync(join(fx, 'cifar10', 'test_batch.bin'), join(dir, 'test_batch.bin'));
    await expectError(readCifar(dir, { split: 'train' }), 'ERR_DATA_FORMAT', 'data_batch_1..5.bin');
    await expectError(CifarSource.open(join(fx, 'folder')), 'ERR_DATA_FORMAT', 'not a CIFAR binary folder');
    await expectError(CifarSource.open(join(work, 'nope')), 'ERR_IO', 'nope');
    await expectError(CifarSource.open(dir, { split: 'val' as 'test' }), 'ERR_INVALID_ARG', 'split');
  });
});

describe('image folders', () => {
  it('indexes classes and files exactly as torchvision ImageFolder', async () => {
    const root = join(fx, 'folder');
    const index = await scanImageFolder(root);
    const files = readFileSync(join(fx, 'expected', 'folder-files.txt'), 'utf8')
      .trim()
      .split('\n');
    expect(index.classes).toEqual(
      readFileSync(join(fx, 'expected', 'folder-classes.txt'), 'utf8')
        .trim()
        .split('\n'),
    );
    expect(index.files.map((f) => relative(root, f))).toEqual(files);
    expect([...index.labels]).toEqual(await expectedLabels('folder-labels'));
  });

  it('decodes PNG (RGB, grey, RGBA, palette, upper-case extension) exactly as PIL convert("RGB"), JPEG within ±2 (decoder builds differ)', async () => {
    const data = await readImageFolder(join(fx, 'folder'));
    const ref = await expected('folder');
    expect(data.shape).toEqual(ref.shape);
    expect(data.shape).toEqual([8, 12, 16, 3]);
    const stride = 12 * 16 * 3;
    for (const [i, file] of data.files.entries()) {
      const ours = data.images.subarray(i * stride, (i + 1) * stride);
      const theirs = ref.data.subarray(i * stride, (i + 1) * stride);
      const tolerance = /\.jpe?g$/.test(file) ? 2 : 0;
      expect(maxAbsDiff(ours, theirs), relative(join(fx, 'folder'), file)).toBeLessThanOrEqual(tolerance);
    }
  });

  it('reads binary PGM / PPM exactly as PIL; BMP is refused naming the file', async () => {
    const data = await readImageFolder(join(fx, 'netpbm'));
    expect(data.classes).toEqual(['colour', 'grey']);
    const ref = await expected('netpbm');
    expect(data.shape).toEqual(ref.shape);
    expect(maxAbsDiff(data.images, ref.data)).toBe(0);
    const bmp = join(fx, 'bmp', 'only', 'x.bmp');
    await expectError(readImageFolder(join(fx, 'bmp'), { size: 4 }), 'ERR_DATA_FORMAT', bmp, 'convert BMP to PNG');
    await expectError(readImageFolder(join(fx, 'bmp')), 'ERR_DATA_FORMAT', bmp, 'convert BMP to PNG');
  });

  it('resizes like PIL bilinear (fit: fill) within ±2 levels', async () => {
    const out = await decodeImage(join(fx, 'resize', 'only', 'big.png'), { height: 16, width: 16, fit: 'fill', kernel: 'linear' });
    const ref = await expected('resize-16x16-bilinear');
    let sum = 0;
    for (let i = 0; i < out.length; i++) sum += Math.abs(out[i]! - ref.data[i]!);
    expect(sum / out.length).toBeLessThan(0.5);
    expect(maxAbsDiff(out, ref.data)).toBeLessThanOrEqual(2);
  });

  it('opens with a size, decodes batches concurrently, keeps labels per batch', async () => {
    await using source = await ImageFolderSource.open(join(fx, 'resize'), { size: [20, 10], concurrency: 3 });
    expect([source.count, source.height, source.width]).toEqual([1, 20, 10]);
    const folder = await ImageFolderSource.open(join(fx, 'folder'), { size: 8, concurrency: 2 });
    const batch = await folder.readBatch(2, 7);
    expect(batch.pixels.length).toBe(5 * 8 * 8 * 3);
    expect([...batch.labels!]).toEqual([...folder.labels.slice(2, 7)]);
  });

  it('a corrupt image is ERR_DATA_FORMAT naming the file; an empty class or no classes is refused', async () => {
    const root = join(work, 'folder-corrupt');
    cpSync(join(fx, 'folder'), root, { recursive: true });
    const bad = join(root, 'dog', 'palette.png');
    truncateSync(bad, 60);
    await expectError(readImageFolder(root), 'ERR_DATA_FORMAT', bad, 'cannot decode');
    const empty = join(work, 'folder-empty-class');
    cpSync(join(fx, 'folder'), empty, { recursive: true });
    mkdirSync(join(empty, 'aardvark'));
    writeFileSync(join(empty, 'aardvark', 'readme.txt'), 'x');
    await expectError(scanImageFolder(empty), 'ERR_DATA_FORMAT', 'no image file for the classes aardvark');
    const flat = join(work, 'folder-flat');
    mkdirSync(flat);
    copyFileSync(join(fx, 'folder', 'cat', 'a.png'), join(flat, 'a.png'));
    await expectError(scanImageFolder(flat), 'ERR_DATA_FORMAT', 'no class sub-folders');
    await expectError(ImageFolderSource.open(join(fx, 'folder'), { size: 0 }), 'ERR_INVALID_ARG', 'Expected positive integer for height');
    await expectError(ImageFolderSource.open(join(fx, 'folder'), { fit: 'stretch' as 'fill' }), 'ERR_INVALID_ARG', 'fit');
  });
});

describe('.npy image arrays', () => {
  it('uint8 NHWC with labels found beside it (<stem>-labels.npy)', async () => {
    await using source = await openImageSource(join(fx, 'arrays', 'nhwc.npy'));
    expect(source.kind).toBe('npy');
    expect([source.count, source.height, source.width, source.layout]).toEqual([10, 8, 6, 'NHWC-uint8']);
    const all = await readNpyFile(join(fx, 'arrays', 'nhwc.npy'));
    const labels = await readNpyFile(join(fx, 'arrays', 'nhwc-labels.npy'));
    expect([...source.labels!]).toEqual([...(labels.data as BigInt64Array)].map(Number));
    const batch = await source.readBatch(4, 9);
    expect(batch.pixels).toBeInstanceOf(Uint8Array);
    expect(Buffer.from(batch.pixels.buffer).equals(Buffer.from((all.data as Uint8Array).subarray(4 * 144, 9 * 144)))).toBe(true);
  });

  it('float32 NCHW with int32 labels (<stem>_labels.npy), or none when labels: false', async () => {
    await using source = await openImageSource(join(fx, 'arrays', 'nchw.npy'));
    expect([source.count, source.height, source.width, source.layout]).toEqual([4, 5, 7, 'NCHW-float32']);
    expect([...source.labels!]).toEqual([3, 1, 4, 1]);
    expect((await source.readBatch(0, 2)).pixels).toBeInstanceOf(Float32Array);
    await using unlabelled = await openImageSource({ path: join(fx, 'arrays', 'nchw.npy'), labels: false });
    expect(unlabelled.labels).toBeUndefined();
  });

  it('label/image count mismatch, wrong dtypes and shapes are ERR_DATA_FORMAT', async () => {
    const images = join(fx, 'arrays', 'nhwc.npy');
    await expectError(openImageSource({ path: images, labels: join(fx, 'arrays', 'short-labels.npy') }), 'ERR_DATA_FORMAT', 'has 9 labels', 'has 10 images');
    await expectError(openImageSource({ path: images, labels: join(fx, 'arrays', 'float-labels.npy') }), 'ERR_DATA_FORMAT', 'integer');
    await expectError(openImageSource(join(fx, 'arrays', 'int16-images.npy')), 'ERR_DATA_FORMAT', 'int16 (2, 4, 4, 3)');
    await expectError(openImageSource(join(fx, 'arrays', 'grey.npy')), 'ERR_DATA_FORMAT', 'uint8 (2, 4, 4)');
  });
});

describe('openImageSource', () => {
  it('detects each kind and gives the same interface', async () => {
    const cases: [string, string, number][] = [
      [join(fx, 'arrays', 'nhwc.npy'), 'npy', 10],
      [join(fx, 'cifar10'), 'cifar10', 8],
      [join(fx, 'cifar100'), 'cifar100', 6],
      [join(fx, 'folder'), 'image-folder', 8],
    ];
    for (const [path, kind, count] of cases) {
      const source: ImageSource = await openImageSource(path);
      expect(source.kind, path).toBe(kind);
      expect(source.count).toBe(count);
      expect(source.labels?.length).toBe(count);
      const b = await source.readBatch(0, 2);
      expect(b.pixels.length).toBe(2 * source.height * source.width * 3);
      await source.close();
    }
    const cifar = await openImageSource({ path: join(fx, 'cifar10'), split: 'test' });
    expect(cifar.count).toBe(4);
    expect(cifar.normalization).toBe('cifar10');
    expect(NORMALIZATIONS[cifar.normalization!].mean).toEqual([0.4914, 0.4822, 0.4465]);
  });

  it('iterates batches with prefetch, covering every image once in order', async () => {
    const source = await openImageSource(join(fx, 'cifar10'));
    const seen: number[] = [];
    for await (const b of iterateBatches(source, 3, { prefetch: 2 })) {
      seen.push(b.start, b.count);
    }
    expect(seen).toEqual([0, 3, 3, 3, 6, 2]);
    const controller = new AbortController();
    controller.abort();
    const it = iterateBatches(source, 3, { signal: controller.signal });
    await expectError(it.next(), 'ERR_ABORTED');
    await source.close();
  });

  it('refuses what it cannot read', async () => {
    await expectError(openImageSource(join(work, 'missing')), 'ERR_IO', 'missing');
    writeFileSync(join(work, 'images.csv'), '1,2,3');
    await expectError(openImageSource(join(work, 'images.csv')), 'ERR_DATA_FORMAT', 'unsupported input file');
    await expectError(openImageSource({ path: join(fx, 'folder'), kind: 'zip' as 'npy' }), 'ERR_INVALID_ARG', 'kind');
    await expectError(openImageSource(''), 'ERR_INVALID_ARG', 'path');
  });
});

describe('normalisation constants', () => {
  it('are the published values', () => {
    expect(NORMALIZATIONS.cifar10).toEqual({ mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] });
    expect(NORMALIZATIONS.cifar100).toEqual({ mean: [0.5071, 0.4865, 0.4409], std: [0.2673, 0.2564, 0.2762] });
    expect(NORMALIZATIONS.imagenet).toEqual({ mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
    expect(NORMALIZATIONS['emp-ssl']).toEqual({ mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] });
    expect(Object.isFrozen(NORMALIZATIONS)).toBe(true);
  });
});

describe('bundled real data (scripts/export-datasets.py)', () => {
  it('exports scikit-learn digits (1297/500 stratified, 32×32 RGB) and photos that open as labelled sources', async () => {
    const out = join(work, 'datasets');
    const python = process.env.TORCH_SSL_PYTHON ?? PYTHON;
    const script = resolve(REPO_ROOT, 'scripts', 'export-datasets.py');
    execFileSync(python, [script, out], { stdio: 'pipe', env: { ...process.env, OMP_NUM_THREADS: '1' } });
    const again = execFileSync(python, [script, out], { encoding: 'utf8' });
    expect(again).toContain('up to date');
    const counts: Record<string, number> = { 'digits-train.npy': 1297, 'digits-test.npy': 500 };
    for (const [file, count] of Object.entries(counts)) {
      await using source = await openImageSource(join(out, file));
      expect([source.count, source.height, source.width, source.layout]).toEqual([count, 32, 32, 'NHWC-uint8']);
      const perClass = new Array<number>(10).fill(0);
      for (const l of source.labels!) perClass[l]! += 1;
      expect(Math.min(...perClass)).toBeGreaterThan(count / 10 - 10);
    }
    await using photos = await openImageSource(join(out, 'photos.npy'));
    expect([photos.count, photos.height, photos.width, photos.labels]).toEqual([2, 224, 224, undefined]);
    const manifest = JSON.parse(readFileSync(join(out, 'datasets.json'), 'utf8')) as { photos: { files: string[] } };
    expect(manifest.photos.files).toEqual(['china.jpg', 'flower.jpg']);
  });
});
