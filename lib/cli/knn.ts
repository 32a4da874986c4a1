/** `torch-ssl knn`: solo-learn's weighted kNN on extracted features; `--grid` scores its offline k × T grid in one pass. */
import type { Command } from 'commander';
import { knn, knnGrid, KNN_DEFAULTS } from '../eval.js';
import { numberList, oneOf, positiveInt, positiveNumber, requiresFlag } from './flags.js';
import { given, option, readOptions, switchOption, withOptions, type ParsedOptions } from './cli-option.js';
import { FEATURE_FILES, JSON_TOP1_TOP5, readFeatureFilesOf } from './options.js';

const K = option('--k <n>', 'neighbours', { default: String(KNN_DEFAULTS.k), parse: (flag, v) => positiveInt(flag, v, 'for several ks use --grid --ks 5,10') });
const TEMPERATURE = option('--temperature <t>', 'temperature of exp(sim / T) (cosine)', {
  default: String(KNN_DEFAULTS.temperature),
  parse: (flag, v) => positiveNumber(flag, v, 'for several use --grid --temperatures 0.05,0.1'),
});
const DISTANCE = option('--distance <d>', 'cosine | euclidean', {
  default: KNN_DEFAULTS.distance,
  parse: (flag, v) => oneOf(flag, v, ['cosine', 'euclidean'] as const),
});
const GRID = switchOption('--grid', `evaluate k ∈ {${KNN_DEFAULTS.gridKs.join(',')}} × T ∈ {${KNN_DEFAULTS.gridTemperatures.join(',')}} in one pass`);
const KS = option('--ks <list>', 'with --grid: the ks (comma-separated)', { parse: (flag, v) => numberList(flag, v, true) });
const TEMPERATURES = option('--temperatures <list>', 'with --grid: the temperatures (comma-separated)', { parse: (flag, v) => numberList(flag, v, false) });
const CHUNK_SIZE = option('--chunk-size <n>', 'test rows per similarity block (memory ∝ rows × train size)', { parse: positiveInt });

const OPTIONS = [...FEATURE_FILES, K, TEMPERATURE, DISTANCE, GRID, KS, TEMPERATURES, CHUNK_SIZE, JSON_TOP1_TOP5];

export function register(program: Command): void {
  const cmd = program.command('knn').description("solo-learn's weighted kNN (top-1 / top-5 %) of test features against a train bank");
  withOptions(cmd, OPTIONS).action(async (o: ParsedOptions) => {
    const { distance, chunkSize, grid } = readOptions(o, { distance: DISTANCE, chunkSize: CHUNK_SIZE, grid: GRID });
    if (!grid) {
      requiresFlag('--ks', o.ks !== undefined, '--grid (without it, --k gives the one k)');
      requiresFlag('--temperatures', o.temperatures !== undefined, '--grid (without it, --temperature gives the one T)');
    }
    const k = grid ? 0 : K.read(o);
    const temperature = grid ? 0 : TEMPERATURE.read(o);
    const { ks, temperatures } = readOptions(o, { ks: KS, temperatures: TEMPERATURES });
    const json = JSON_TOP1_TOP5.read(o);
    const files = await readFeatureFilesOf(o);
    try {
      if (grid) {
        const g = await knnGrid({ ...files, distance, ...given({ ks, temperatures, chunkSize }) });
        console.log(`kNN grid (${distance}, ${g.numClasses} classes): top-1 / top-5 %`);
        for (const e of g.results)
          console.log(
            `  k=${String(e.k).padStart(3)}  T=${String(e.temperature).padEnd(5)}  ${e.top1.toFixed(2).padStart(6)}  ${e.top5.toFixed(2).padStart(6)}`,
          );
        console.log(`best: k=${g.best.k} T=${g.best.temperature}: top-1 ${g.best.top1.toFixed(2)} %, top-5 ${g.best.top5.toFixed(2)} %`);
        if (json)
          console.log(JSON.stringify({ top1: g.best.top1, top5: g.best.top5, k: g.best.k, temperature: g.best.temperature, distance, grid: g.results }));
        return;
      }
      const r = await knn({ ...files, k, temperature, distance, ...given({ chunkSize }) });
      console.log(`kNN (${distance}, k=${k}${distance === 'cosine' ? `, T=${temperature}` : ''}): top-1 ${r.top1.toFixed(2)} %, top-5 ${r.top5.toFixed(2)} %`);
      if (json) console.log(JSON.stringify({ top1: r.top1, top5: r.top5 }));
    } finally {
      for (const t of Object.values(files)) t.dispose();
    }
  });
}
