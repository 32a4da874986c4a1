/** `torch-ssl knn`: solo-learn's weighted kNN on extracted features; `--grid` scores its offline k × T grid in one pass. */
import type { Command } from 'commander';
import { invalidArg } from '../errors.js';
import { knn, knnGrid, KNN_DEFAULTS } from '../eval.js';

function numberList(flag: string, value: string, integer: boolean): number[] {
  const out = value.split(',').map((s) => Number(s.trim()));
  if (out.length === 0 || !out.every((n) => Number.isFinite(n) && n > 0 && (!integer || Number.isSafeInteger(n)))) {
    throw invalidArg(flag, `comma-separated ${integer ? 'positive integers' : 'numbers > 0'}`, value);
  }
  return out;
}

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
      const files = { trainFeatures: o.train as string, trainLabels: o.trainLabels as string, testFeatures: o.test as string, testLabels: o.testLabels as string };
      const distance = o.distance as 'cosine' | 'euclidean';
      const chunkSize = o.chunkSize === undefined ? undefined : numberList('--chunk-size', o.chunkSize as string, true)[0];
      if (o.grid) {
        const g = await knnGrid({
          ...files,
          distance,
          ...(o.ks !== undefined && { ks: numberList('--ks', o.ks as string, true) }),
          ...(o.temperatures !== undefined && { temperatures: numberList('--temperatures', o.temperatures as string, false) }),
          ...(chunkSize !== undefined && { chunkSize }),
        });
        console.log(`kNN grid (${distance}, ${g.numClasses} classes): top-1 / top-5 %`);
        for (const e of g.results) console.log(`  k=${String(e.k).padStart(3)}  T=${String(e.temperature).padEnd(5)}  ${e.top1.toFixed(2).padStart(6)}  ${e.top5.toFixed(2).padStart(6)}`);
        console.log(`best: k=${g.best.k} T=${g.best.temperature}: top-1 ${g.best.top1.toFixed(2)} %, top-5 ${g.best.top5.toFixed(2)} %`);
        if (o.json) console.log(JSON.stringify({ top1: g.best.top1, top5: g.best.top5, k: g.best.k, temperature: g.best.temperature, distance, grid: g.results }));
        return;
      }
      const k = numberList('--k', o.k as string, true)[0]!;
      const temperature = numberList('--temperature', o.temperature as string, false)[0]!;
      const r = await knn({ ...files, k, temperature, distance, ...(chunkSize !== undefined && { chunkSize }) });
      console.log(`kNN (${distance}, k=${k}${distance === 'cosine' ? `, T=${temperature}` : ''}): top-1 ${r.top1.toFixed(2)} %, top-5 ${r.top5.toFixed(2)} %`);
      if (o.json) console.log(JSON.stringify({ top1: r.top1, top5: r.top5 }));
    });
}
