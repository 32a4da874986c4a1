// The picture commands end to end on a real (tiny) training run: heatmap and patch-knn on its checkpoint, then
// the HTML report of the run, opened in headless Chromium (Debian's) with no console errors, charts drawn,
// pictures loaded, and a screenshot written to .cache/test-output/report.png.
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { register as registerHeatmap } from '../lib/cli/heatmap.js';
import { register as registerPatchKnn } from '../lib/cli/patch-knn.js';
import { register as registerReport } from '../lib/cli/report.js';
import { train } from '../lib/train.js';
import { cliRunner } from './helpers/cli.js';
import { digitsSubset } from './helpers/datasets.js';
import { REPO_ROOT } from './helpers/paths.js';
import { makeTmpDir } from './helpers/tmp.js';

const { run: cli, fails: cliError } = cliRunner(registerHeatmap, registerPatchKnn, registerReport);

const work = makeTmpDir('viz-cli');
const run = join(work, 'run');
let data: string;
let ckpt: string;
beforeAll(async () => {
  data = await digitsSubset(work, 48);
  const r = await train({
    method: 'simclr',
    data: { train: data, val: data },
    projector: { hiddenDims: [64], outputDim: 32 },
    augmentation: [{ size: 16 }],
    batchSize: 16,
    epochs: 2,
    logEvery: 1,
    knn: { every: 1 },
    checkpoint: { dir: run, name: 'tiny' },
    seed: 4,
  });
  ckpt = r.checkpoint;
});

describe('torch-ssl heatmap / patch-knn', () => {
  it('heatmap: image N of a data set, both spaces, PNG and similarity .npy', async () => {
    const out = join(run, 'heatmap.png');
    const lines = await cli(
      'heatmap',
      '--checkpoint',
      ckpt,
      '--image',
      data,
      '--index',
      '3',
      '--query',
      '8,8,16',
      '--stride',
      '2',
      '--space',
      'both',
      '--resize',
      '16',
      '--out',
      out,
      '--similarity-out',
      join(work, 'sims.npy'),
      '--json',
    );
    const summary = JSON.parse(lines.at(-1)!) as { grid: { rows: number; cols: number }; scale: number; maps: { space: string; max: number }[] };
    expect(summary.grid).toMatchObject({ rows: 9, cols: 9 });
    expect(summary.maps.map((m) => m.space)).toEqual(['embedding', 'projection']);
    // The query patch lies on the grid (x 8 = 4 × stride 2): its own similarity is the maximum, 1.
    for (const m of summary.maps) expect(m.max).toBeCloseTo(1, 5);
    const meta = await sharp(out).metadata();
    expect([meta.width, meta.height]).toEqual([2 * 32 * summary.scale + Math.max(4, summary.scale), 32 * summary.scale]);
    expect(existsSync(join(work, 'sims.npy'))).toBe(true);
  });

  it('patch-knn: a labelled .npy, k 15, JSON with the same-class share', async () => {
    const out = join(run, 'patch-knn.png');
    const lines = await cli('patch-knn', '--checkpoint', ckpt, '--dataset', data, '--query', '2:8,8,16', '--k', '15', '--resize', '16', '--out', out, '--json');
    const r = JSON.parse(lines.at(-1)!) as { results: { space: string; sameClassShare: number; neighbours: { image: number }[] }[]; bank: { patches: number } };
    expect(r.bank.patches).toBe(48 * 9);
    expect(r.results[0]!.neighbours).toHaveLength(15);
    expect(r.results[0]!.neighbours.every((n) => n.image !== 2)).toBe(true);
    expect(r.results[0]!.sameClassShare).toBeGreaterThanOrEqual(0);
    expect(lines.some((l) => /% of 15 neighbours share the query's class/.test(l))).toBe(true);
    expect(statSync(out).size).toBeGreaterThan(1000);
  });

  it('bad flags and outputs are refused before any work, in the words typed', async () => {
    expect(
      (await cliError('heatmap', '--checkpoint', ckpt, '--image', data, '--index', '0', '--query', '1,2,3,4', '--out', join(work, 'h.png'))).message,
    ).toContain('--query: expected X,Y or X,Y,SIZE');
    expect(
      (await cliError('heatmap', '--checkpoint', ckpt, '--image', data, '--index', '0', '--query', '1,2', '--out', join(work, 'nope', 'h.png'))).message,
    ).toContain('--out');
    expect(
      (await cliError('heatmap', '--checkpoint', ckpt, '--image', data, '--index', '99', '--query', '1,2', '--out', join(work, 'h.png'))).message,
    ).toContain('--index 99');
    expect((await cliError('patch-knn', '--checkpoint', ckpt, '--dataset', data, '--query', '2:8,8', '--out', join(work, 'g.png'))).message).toContain(
      '--query: expected INDEX:X,Y,SIZE',
    );
    expect(
      (await cliError('patch-knn', '--checkpoint', ckpt, '--dataset', data, '--query', '2:8,8,16', '--space', 'latent', '--out', join(work, 'g.png'))).message,
    ).toContain('--space');
    expect((await cliError('report', join(work, 'missing-run'), '--out', join(work, 'r.html'))).code).toBe('ERR_IO');
    expect((await cliError('report', work, '--out', join(work, 'r.html'))).message).toContain('no metrics.csv');
  });
});

describe('torch-ssl report', () => {
  it('writes a self-contained page that headless Chromium renders with no console errors (screenshot in .cache/test-output)', async () => {
    const out = join(work, 'report.html');
    const lines = await cli('report', run, '--out', out, '--json');
    const r = JSON.parse(lines.at(-1)!) as { charts: string[]; pictures: string[]; steps: number };
    expect(r.charts).toEqual(expect.arrayContaining(['SSL loss', 'Loss terms', 'Online kNN (held-out set)', 'Learning rate', 'Throughput', 'Time per step']));
    expect(r.pictures.sort()).toEqual(['heatmap.png', 'patch-knn.png']);
    expect(r.steps).toBe(6);

    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
      const problems: string[] = [];
      const requests: string[] = [];
      page.on('console', (m) => (m.type() === 'error' || m.type() === 'warning') && problems.push(`${m.type()}: ${m.text()}`));
      page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
      page.on('request', (q) => !q.url().startsWith('data:') && !q.url().startsWith('file:') && requests.push(q.url()));
      await page.goto(pathToFileURL(out).href, { waitUntil: 'load' });
      await page.waitForSelector('body[data-charts-drawn]');
      expect(problems).toEqual([]);
      expect(requests).toEqual([]); // self-contained: nothing fetched
      expect(await page.getAttribute('body', 'data-charts-drawn')).toBe(String(r.charts.length));
      expect(await page.locator('.chart canvas').count()).toBe(r.charts.length);
      const sizes = await page.$$eval('figure img', (imgs) => imgs.map((i) => (i as unknown as { naturalWidth: number }).naturalWidth));
      expect(sizes).toHaveLength(2);
      expect(sizes.every((w) => w > 0)).toBe(true);
      const shots = resolve(REPO_ROOT, '.cache', 'test-output');
      mkdirSync(shots, { recursive: true });
      await page.screenshot({ path: join(shots, 'report.png'), fullPage: true });
      console.log(`report screenshot: ${join(shots, 'report.png')}`);
    } finally {
      await browser.close();
    }
    expect(readdirSync(run).some((f) => f.startsWith('events.out.tfevents.'))).toBe(true);
  }, 120_000);
});
