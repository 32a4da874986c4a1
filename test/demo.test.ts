// The README's demo on real Fashion-MNIST (configs/demo.yaml), shrunk: it runs end to end, measures the random
// and the trained backbone the same way (global and local-aggregated kNN), and its kNN agrees with the
// trainer's own online kNN on the same images.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { localWindow, readDemoConfig, runDemo, DEMO_CONFIG } from '../lib/cli/demo.js';
import { resolveTrainConfig } from '../lib/train-config.js';
import { TorchSslError } from '../lib/errors.js';
import { makeTmpDir } from './helpers/tmp.js';

const work = makeTmpDir('demo');

describe('demo', () => {
  it("configs/demo.yaml is a valid training config on Debian's Fashion-MNIST", () => {
    const c = resolveTrainConfig(readDemoConfig(DEMO_CONFIG));
    expect(c.data.train).toBe('/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz');
    expect(c.knn.every).toBe(c.epochs); // online kNN before the first step and after the last
  });

  it('local windows: BagSSL 3×3/2 on a 5×5 map, 2×2/1 on 3×3 and 4×4; a 1×1 map has none', () => {
    expect(localWindow(5)).toEqual({ kernel: 3, stride: 2 });
    expect(localWindow(3)).toEqual({ kernel: 2, stride: 1 });
    expect(localWindow(4)).toEqual({ kernel: 2, stride: 1 });
    expect(() => localWindow(1)).toThrow(TorchSslError);
  });

  it('runs end to end: random vs trained, global 512-d and local 2048-d, online kNN equal to its own measurement', async () => {
    const lines: string[] = [];
    const s = await runDemo({
      overrides: {
        data: { limit: 64, valLimit: 48 },
        batchSize: 16,
        epochs: 1,
        knn: { every: 1 },
        checkpoint: { dir: join(work, 'run') },
        projector: { hiddenDims: [64], outputDim: 32 },
      },
      log: (l) => lines.push(l),
    });
    expect(s.random.global.dim).toBe(512);
    expect(s.random.local.dim).toBe(2048); // 16×16 → layer4 3×3 → 2×2 windows
    expect(s.trained.local.dim).toBe(2048);
    expect(s.onlineKnn.map((k) => k.epoch)).toEqual([0, 1]);
    // The trainer's online kNN after the last epoch and the demo's global kNN of the reloaded checkpoint are
    // two paths to the same number (same images, features, k and T).
    expect(s.trained.global.top1).toBeCloseTo(s.onlineKnn[1]!.top1, 5);
    const text = lines.join('\n');
    expect(text).toContain('random initialisation (seed 5)');
    expect(text).toContain('gain over the random initialisation');
    expect(text).toMatch(/done in \d+ s/);
    // The pictures of the trained checkpoint and the run's report; the last line says where the report is.
    expect(lines.at(-1)).toBe(`report: ${join(work, 'run', 'report.html')} (curves, config, pictures; open it in a browser)`);
    for (const f of [s.pictures.heatmap, s.pictures.patchKnn, s.pictures.report]) expect(existsSync(f), f).toBe(true);
    expect(s.pictures.sameClassShare.embedding).toBeGreaterThanOrEqual(0);
    expect(s.pictures.sameClassShare.projection).toBeGreaterThanOrEqual(0);
    expect(text).toMatch(/same-class share of the 119 nearest patches: embedding [\d.]+ %, projection [\d.]+ %/);
    const html = readFileSync(s.pictures.report, 'utf8');
    expect(html).toContain('heatmap.png');
    expect(html).toContain('patch-knn.png');
  }, 180_000);
});
