/** `torch-ssl knn`: solo-learn's weighted kNN on extracted features; `--grid` scores its offline k × T grid in one pass. */
import type { Command } from 'commander';
import { knn, knnGrid, KNN_DEFAULTS } from '../eval.js';
import { flagError, numberList, oneNumber, readFeatureFiles, requiresFlag } from './flags.js';

export function register(program: Command): void {
  program
    .command('knn')
    .description("solo-learn's weighted kNN (top-1 / top-5 %) of test features against a train bank")
    .requiredOption('--train <file>', 'train features (N, D) .npy')
    .requiredOption('--train-labels <file>', 'train labels (N,) .npy')
    .requiredOption('--test <file>', 'test features (M, D) .npy')
    .requiredOption('--test-labels <file>', 'test labels (M,) .npy')
    .option('--k <n>', 'neighbours', String(KNN_DEFAULTS.k))
    .option('--temperature <t>', 'temperature of exp(sim / T) (cosine)', String(KNN_DEFAULTS.temperature))
    .option('--distance <d>', 'cosine | euclidean', KNN_DEFAULTS.distance)
    .option('--grid', `evaluate k ∈ {${KNN_DEFAULTS.gridKs.join(',')}} × T ∈ {${KNN_DEFAULTS.gridTemperatures.join(',')}} in one pass`)
    .option('--ks <list>', 'with --grid: the ks (comma-separated)')
    .option('--temperatures <list>', 'with --grid: the temperatures (comma-separated)')
    .option('--chunk-size <n>', 'test rows per similarity block (memory ∝ rows × train size)')
    .option('--json', 'print {"top1":…,"top5":…} as the last stdout line')
    .action(async (o: Record<string, string | boolean | undefined>) => {
      const distance = o.distance as string;
      if (distance !== 'cosine' && distance !== 'euclidean') throw flagError('--distance', 'cosine | euclidean', distance);
      const chunkSize = o.chunkSize === undefined ? undefined : oneNumber('--chunk-size', o.chunkSize as string, true, (n) => n > 0, 'a positive integer');
      if (!o.grid) {
        requiresFlag('--ks', o.ks !== undefined, '--grid (without it, --k gives the one k)');
        requiresFlag('--temperatures', o.temperatures !== undefined, '--grid (without it, --temperature gives the one T)');
      }
      const k = o.grid ? 0 : oneNumber('--k', o.k as string, true, (n) => n > 0, 'a positive integer', 'for several ks use --grid --ks 5,10');
      const temperature = o.grid ? 0 : oneNumber('--temperature', o.temperature as string, false, (n) => n > 0, 'a number > 0', 'for several use --grid --temperatures 0.05,0.1');
      const ks = o.ks !== undefined ? numberList('--ks', o.ks as string, true) : undefined;
      const temperatures = o.temperatures !== undefined ? numberList('--temperatures', o.temperatures as string, false) : undefined;
      const files = await readFeatureFiles({ train: o.train as string, trainLabels: o.trainLabels as string, test: o.test as string, testLabels: o.testLabels as string });
      try {
        if (o.grid) {
          const g = await knnGrid({ ...files, distance, ...(ks !== undefined && { ks }), ...(temperatures !== undefined && { temperatures }), ...(chunkSize !== undefined && { chunkSize }) });
          console.log(`kNN grid (${distance}, ${g.numClasses} classes): top-1 / top-5 %`);
          for (const e of g.results) console.log(`  k=${String(e.k).padStart(3)}  T=${String(e.temperature).padEnd(5)}  ${e.top1.toFixed(2).padStart(6)}  ${e.top5.toFixed(2).padStart(6)}`);
          console.log(`best: k=${g.best.k} T=${g.best.temperature}: top-1 ${g.best.top1.toFixed(2)} %, top-5 ${g.best.top5.toFixed(2)} %`);
          if (o.json) console.log(JSON.stringify({ top1: g.best.top1, top5: g.best.top5, k: g.best.k, temperature: g.best.temperature, distance, grid: g.results }));
          return;
        }
        const r = await knn({ ...files, k, temperature, distance, ...(chunkSize !== undefined && { chunkSize }) });
        console.log(`kNN (${distance}, k=${k}${distance === 'cosine' ? `, T=${temperature}` : ''}): top-1 ${r.top1.toFixed(2)} %, top-5 ${r.top5.toFixed(2)} %`);
        if (o.json) console.log(JSON.stringify({ top1: r.top1, top5: r.top5 }));
      } finally {
        for (const t of Object.values(files)) t.dispose();
      }
    });
}
