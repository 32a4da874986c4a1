// The pictures (lib/viz): patch-similarity heatmaps and patch kNN against PyTorch on the same checkpoint and
// images (scripts/fixtures/viz.py), the colour map against matplotlib's, and the drawn PNGs decoded back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { loadCheckpoint, type LoadedCheckpoint } from '../lib/checkpoint/load.js';
import { jet } from '../lib/viz/canvas.js';
import { patchHeatmap } from '../lib/viz/heatmap.js';
import { patchKnn } from '../lib/viz/patch-knn.js';
import { expectError } from './helpers/errors.js';
import { fixtureArray, fixtureJson, fixturePath, relError } from './helpers/fixtures.js';
import { makeTmpDir } from './helpers/tmp.js';

interface Meta {
  heatmap: { x: number; y: number; size: number; stride: number; rows: number; cols: number; resize: number };
  knn: { image: number; x: number; y: number; size: number; stride: number; perImage: number; images: number };
}

let ck: LoadedCheckpoint;
let meta: Meta;
beforeAll(async () => {
  ck = await loadCheckpoint(fixturePath('viz', 'model.ckpt'));
  meta = fixtureJson<Meta>('viz', 'meta.json');
});
afterAll(() => ck?.dispose());

async function decode(png: Buffer): Promise<{ width: number; height: number; px: (x: number, y: number) => [number, number, number] }> {
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  expect(info.channels).toBe(3);
  return {
    width: info.width,
    height: info.height,
    px: (x, y) => [data[(y * info.width + x) * 3]!, data[(y * info.width + x) * 3 + 1]!, data[(y * info.width + x) * 3 + 2]!],
  };
}

describe('colour map', () => {
  it("jet equals matplotlib's cm.jet(..., bytes=True) at all 256 entries", async () => {
    const ref = await fixtureArray('viz', 'jet');
    for (let i = 0; i < 256; i++) expect(jet(i / 255), `entry ${i}`).toEqual([ref.data[i * 4], ref.data[i * 4 + 1], ref.data[i * 4 + 2]]);
  });
});

describe('patchHeatmap', () => {
  it('similarities equal PyTorch in both spaces; the PNG has the colour map at patch centres and the dashed query box', async () => {
    const h = meta.heatmap;
    const r = await patchHeatmap(ck, fixturePath('viz', 'photo64.png'), { query: { x: h.x, y: h.y, size: h.size }, stride: h.stride, space: 'both', scale: 4 });
    expect(r.grid).toEqual({ rows: h.rows, cols: h.cols, stride: h.stride, size: h.size, resize: h.resize });
    for (const m of r.maps) {
      const ref = await fixtureArray('viz', `heat_${m.space}`);
      expect(m.similarity.shape).toEqual(ref.shape);
      expect(relError(m.similarity.toTypedArray() as Float32Array, ref.data), m.space).toBeLessThan(1e-4);
    }
    const pic = await decode(r.png);
    const gap = 4;
    expect(pic.width).toBe(64 * 4 * 2 + gap);
    expect(pic.height).toBe(64 * 4);
    const photo = await fixtureArray('viz', 'photo64');
    // At a patch centre (c·stride + size/2, r·stride + size/2) the drawn value is that patch's similarity:
    // colour = round(0.5 · image + 0.5 · jet((sim − min) / (max − min))), up to one colour-map step.
    for (const [panel, m] of r.maps.entries()) {
      const ref = (await fixtureArray('viz', `heat_${m.space}`)).data;
      let min = Infinity;
      let max = -Infinity;
      for (const v of ref) [min, max] = [Math.min(min, v), Math.max(max, v)];
      for (const [row, col] of [
        [0, 0],
        [5, 7],
        [11, 11],
        [3, 9],
      ] as const) {
        const ix = col * h.stride + h.size / 2;
        const iy = row * h.stride + h.size / 2;
        const v = (ref[row * h.cols + col]! - min) / (max - min);
        const got = pic.px(panel * (64 * 4 + gap) + ix * 4 + 1, iy * 4 + 1);
        const near = [-1 / 256, 0, 1 / 256].map((d) =>
          jet(Math.min(1, Math.max(0, v + d))).map((c, ch) => Math.round(0.5 * photo.data[(iy * 64 + ix) * 3 + ch]! + 0.5 * c)),
        );
        expect(
          near.some((e) => e.every((c, ch) => Math.abs(c - got[ch]!) <= 1)),
          `${m.space} patch (${row}, ${col}): ${got} vs ${JSON.stringify(near)}`,
        ).toBe(true);
      }
      // The query box: red dashes (thickness 2, dash 4) along the top edge, starting at its corner.
      const x0 = panel * (64 * 4 + gap) + h.x * 4;
      const y0 = h.y * 4;
      for (let i = 0; i < h.size * 4 - 2; i++) {
        const p = pic.px(x0 + i, y0); // the last 2 columns belong to the right side
        const red = p[0] === 255 && p[1] === 0 && p[2] === 0;
        expect(red, `top edge pixel ${i}`).toBe(Math.floor(i / 4) % 2 === 0);
      }
      expect(pic.px(x0, y0 + h.size * 4 - 1)).toEqual([255, 0, 0]); // bottom-left corner
    }
    for (const m of r.maps) m.similarity.dispose();
  });

  it('refuses a query outside the image, a projection without projector, and unknown options, naming them', async () => {
    await expectError(patchHeatmap(ck, fixturePath('viz', 'photo64.png'), { query: { x: 50, y: 0, size: 20 } }), 'ERR_INVALID_ARG', 'x + size must be ≤ 64');
    await expectError(
      patchHeatmap({ backbone: ck.backbone }, fixturePath('viz', 'photo64.png'), { query: { x: 0, y: 0 }, space: 'projection' }),
      'ERR_INVALID_ARG',
      'projector',
    );
    await expectError(patchHeatmap(ck, fixturePath('viz', 'photo64.png'), { query: { x: 0, y: 0 }, strde: 2 } as never), 'ERR_INVALID_ARG', 'strde', 'stride');
    await expectError(patchHeatmap(ck, fixturePath('viz', 'photo64.png').replace('photo64', 'missing'), { query: { x: 0, y: 0 } }), 'ERR_IO', 'missing.png');
    await expectError(patchHeatmap(ck, fixturePath('viz', 'meta.json'), { query: { x: 0, y: 0 } }), 'ERR_DATA_FORMAT', 'meta.json');
  });
});

describe('patchKnn', () => {
  it('neighbours equal a PyTorch brute-force search (own image excluded); frames say whether the class matches', async () => {
    const q = meta.knn;
    const k = 20;
    const r = await patchKnn(ck, fixturePath('viz', 'digits60.npy'), {
      query: { image: q.image, x: q.x, y: q.y, size: q.size },
      k,
      stride: q.stride,
      space: 'both',
      tile: 40,
    });
    const labels = { data: Array.from((await fixtureArray('viz', 'digits60-labels')).data as unknown as ArrayLike<bigint>, Number) };
    expect(r.bank).toMatchObject({ images: 60, patches: 60 * q.perImage, patchesPerImage: q.perImage, stride: q.stride, resize: 32 });
    expect(r.query.label).toBe(labels.data[q.image]);
    for (const res of r.results) {
      const sims = (await fixtureArray('viz', `knn_sims_${res.space}`)).data;
      const order = Array.from(sims.keys())
        .filter((p) => Math.floor(p / q.perImage) !== q.image)
        .sort((a, b) => sims[b]! - sims[a]!);
      const kth = sims[order[k - 1]!]!;
      expect(res.neighbours).toHaveLength(k);
      for (const [i, nb] of res.neighbours.entries()) {
        const p = nb.image * q.perImage + (nb.y / q.stride) * 3 + nb.x / q.stride;
        expect(nb.image).not.toBe(q.image);
        expect(Math.abs(nb.similarity - sims[p]!), `${res.space} neighbour ${i}`).toBeLessThan(1e-4);
        // PyTorch's top-k, except patches tied with the k-th within float32 rounding.
        if (Math.abs(sims[p]! - kth) > 1e-5) expect(order.slice(0, k)).toContain(p);
        expect(nb.label).toBe(labels.data[nb.image]);
        expect(nb.sameClass).toBe(labels.data[nb.image] === labels.data[q.image]);
      }
      expect(res.sameClassShare).toBeCloseTo(res.neighbours.filter((n) => n.sameClass).length / k, 10);
    }
    // Two 5 × 5 grids (query + 20, 40-px tiles, 2-px gaps) side by side, 13 px apart.
    const pic = await decode(r.png);
    const grid = 5 * 42 - 2;
    expect(pic.width).toBe(2 * grid + 13);
    expect(pic.height).toBe(grid);
    for (const [panel, res] of r.results.entries()) {
      const ox = panel * (grid + 13);
      expect(pic.px(ox, 0)).toEqual([40, 90, 255]); // the query's frame
      for (const [i, nb] of res.neighbours.entries()) {
        const t = i + 1;
        expect(pic.px(ox + (t % 5) * 42, Math.floor(t / 5) * 42), `${res.space} tile ${t}`).toEqual(nb.sameClass ? [0, 200, 0] : [255, 0, 0]);
      }
    }
  });

  it('a CIFAR-10 binary folder and an image folder of the same images give the same neighbours as the .npy', async () => {
    const { mkdirSync, writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const pixels = (await fixtureArray('viz', 'digits60')).data as unknown as Uint8Array;
    const labels = Array.from((await fixtureArray('viz', 'digits60-labels')).data as unknown as ArrayLike<bigint>, Number);
    const dir = makeTmpDir('viz');
    // CIFAR-10: records of <label> <1024 R> <1024 G> <1024 B>.
    const cifar = join(dir, 'cifar');
    mkdirSync(cifar);
    const rec = Buffer.alloc(60 * 3073);
    for (let i = 0; i < 60; i++) {
      rec[i * 3073] = labels[i]!;
      for (let ch = 0; ch < 3; ch++) for (let p = 0; p < 1024; p++) rec[i * 3073 + 1 + ch * 1024 + p] = pixels[(i * 1024 + p) * 3 + ch]!;
    }
    writeFileSync(join(cifar, 'data_batch_1.bin'), rec);
    // An image folder: class sub-folders of PNGs, named so that torchvision's order is the .npy's order.
    const folder = join(dir, 'folder');
    for (let i = 0; i < 60; i++) {
      const cls = join(folder, `class${labels[i]}`);
      mkdirSync(cls, { recursive: true });
      await sharp(Buffer.from(pixels.subarray(i * 3072, (i + 1) * 3072)), { raw: { width: 32, height: 32, channels: 3 } })
        .png()
        .toFile(join(cls, `${String(i).padStart(3, '0')}.png`));
    }
    const q = meta.knn;
    const ask = (data: string, image: number) => patchKnn(ck, data, { query: { image, x: q.x, y: q.y, size: q.size }, k: 10, stride: q.stride });
    const npy = await ask(fixturePath('viz', 'digits60.npy'), q.image);
    const viaCifar = await ask(cifar, q.image);
    expect(viaCifar.results[0]!.neighbours).toEqual(npy.results[0]!.neighbours);
    // In the folder, images are ordered by class then name: map indices through that order.
    const order = Array.from({ length: 60 }, (_, i) => i).sort((a, b) => labels[a]! - labels[b]! || a - b);
    const viaFolder = await ask(folder, order.indexOf(q.image));
    expect(viaFolder.results[0]!.neighbours.map((n) => ({ ...n, image: order[n.image] }))).toEqual(npy.results[0]!.neighbours);
  });

  it('checks the bank against the memory budget before any work, and the query against the data', async () => {
    const data = fixturePath('viz', 'digits60.npy');
    await expectError(patchKnn(ck, data, { query: { image: 0, x: 0, y: 0, size: 4 }, stride: 1, memoryMb: 1 }), 'ERR_INVALID_ARG', 'MiB, more than memoryMb 1');
    await expectError(patchKnn(ck, data, { query: { image: 60, x: 0, y: 0, size: 16 } }), 'ERR_INVALID_ARG', 'query image 60 is not among the 60 images');
    // Both spaces keep a bank each: 540 patches × (512 + 64) dims × 4 bytes = 1.19 MiB > 1.1, where either alone fits.
    await expectError(
      patchKnn(ck, data, { query: { image: 0, x: 0, y: 0, size: 16 }, stride: 8, space: 'both', memoryMb: 1.1 }),
      'ERR_INVALID_ARG',
      '512 + 64 dims',
      'needs 1.2 MiB, more than memoryMb 1.1',
    );
    await expectError(patchKnn(ck, data, { query: { image: 0, x: 0, y: 0, size: 16 }, tile: 10 }), 'ERR_INVALID_ARG', 'an integer ≥ 20');
    await expectError(patchKnn(ck, data, { query: { image: 0, x: 20, y: 0, size: 16 } }), 'ERR_INVALID_ARG', 'does not fit in the 32×32 images');
  });
});
